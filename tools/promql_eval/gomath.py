"""Go's float64 arithmetic, comparisons, regular expressions and number parsing, as Prometheus 2.42 applies them."""

from __future__ import annotations

import math
import re

import numpy as np

from tools.promql_eval.values import UnsupportedQuery

ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPERATORS = {"and", "or", "unless"}


def arith(op: str, a, b):
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.true_divide(a, b)
        if op == "%":  # Go's math.Mod: the sign of the dividend, NaN for a zero divisor (as C's fmod)
            return np.fmod(a, b)
        if op == "^":  # Go's math.Pow follows C99 pow's special cases, as numpy does
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
    raise UnsupportedQuery(f"the binary operator {op!r} is not supported")


def compare(op: str, a, b):
    with np.errstate(invalid="ignore"):
        return {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
                ">=": np.greater_equal, "<=": np.less_equal}[op](a, b)


def go_max(a, b):
    # Go's math.Max answers +Inf when either side is +Inf, even against NaN.
    with np.errstate(invalid="ignore"):
        return np.where(np.isposinf(a) | np.isposinf(b), np.inf, np.maximum(a, b))


def go_min(a, b):
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(a) | np.isneginf(b), -np.inf, np.minimum(a, b))


def go_regex(pattern: str) -> re.Pattern:
    """A Go (RE2) regular expression as a Python one. \\d, \\w, \\s and \\b are ASCII in Go,
    hence re.ASCII; syntax Python reads differently or cannot run is refused rather than matched
    differently (POSIX classes such as [[:alpha:]] would be a plain character set to Python)."""
    if "[:" in pattern:
        raise UnsupportedQuery(
            f"the regular expression {pattern!r} uses a POSIX character class, which the embedded evaluator does not support")
    try:
        return re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise UnsupportedQuery(
            f"the regular expression {pattern!r} uses syntax the embedded evaluator cannot run ({exc})") from None


# Go's math.Exp on amd64 (an assembly routine) overflows to +Inf above this, although the result
# is finite up to 709.78; measured against Prometheus 2.42 on x86_64. Builds for other
# architectures use Go's portable Exp and do not.
_GO_EXP_OVERFLOW = 709.4361393031039


def go_exp(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(values > _GO_EXP_OVERFLOW, np.inf, np.exp(values))


def go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat's accepted forms (the ``le`` label): no surrounding blanks, no digit
    separators, hexadecimal only with a binary exponent; None where Go would fail."""
    if not text or text != text.strip() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    if "x" in text.lower() and "p" in text.lower():
        try:
            return float.fromhex(text)
        except ValueError:
            return None
    return None


def go_format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def go_expand(template: str, found: re.Match) -> str:
    """Go's Regexp.ExpandString: $1, ${1}, $name, ${name}; $$ is a dollar; an unknown group is
    empty; a malformed reference is kept as text."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        rest = template[i + 1:]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        reference = re.match(r"\{(\w+)\}|(\w+)", rest)
        if reference is None:
            out.append("$")
            i += 1
            continue
        name = reference.group(1) or reference.group(2)
        i += 1 + reference.end()
        if name.isdigit() and not (name[0] == "0" and len(name) > 1):
            number = int(name)
            if number <= found.re.groups:
                out.append(found.group(number) or "")
        elif name in found.re.groupindex:
            out.append(found.group(name) or "")
    return "".join(out)
