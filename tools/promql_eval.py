"""A PromQL range-query evaluator over in-memory series, with Prometheus 2.42's semantics.

The embedded metrics backend reads OpenMetrics files and has no Prometheus to ask, yet an
investigation must read the same numbers from it as from a real server: the same ``rate`` after a
counter reset, the same ``histogram_quantile`` interpolation, the same series dropping out of an
error ratio. So this module evaluates a subset of PromQL the way Prometheus 2.42 does
(promql/engine.go and promql/functions.go describe the behaviour; the algorithms here are written
from that description) and refuses everything else with ``UnsupportedQuery`` rather than guess.

Parsing is done by the ``promql-parser`` package. Evaluation is vectorised over the evaluation
grid: an instant vector is a list of series, each a value array and a presence mask over the grid
(NaN is a legitimate sample value, so absence needs its own mask). Timestamps are integer
milliseconds internally, as in Prometheus, so window boundaries compare exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

import numpy as np
import promql_parser as pp

__all__ = ["UnsupportedQuery", "evaluate_range"]

SeriesTuple = tuple[dict[str, str], np.ndarray, np.ndarray]

NAME = "__name__"
# Above this many window cells a matrix function works through the grid in blocks, so a [1d]
# range at a fine step does not allocate a grid-by-samples matrix at once.
_BLOCK_CELLS = 1 << 20
# Counter resets are usually rare; up to this many per series the reset corrections are added one
# by one in time order (Prometheus's order, so the sums agree to the last bit).
_SEQUENTIAL_RESETS = 256


class UnsupportedQuery(ValueError):
    """The query is valid PromQL but uses a construct this evaluator does not implement."""


# --- values -------------------------------------------------------------------------------------


@dataclass
class _Series:
    labels: dict[str, str]
    values: np.ndarray  # float64 over the grid
    present: np.ndarray  # bool over the grid


@dataclass
class _Vector:
    series: list[_Series]


@dataclass
class _Scalar:
    values: np.ndarray  # float64 over the grid; a scalar has a value at every step


@dataclass
class _String:
    value: str


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _render(labels: dict[str, str]) -> str:
    name = labels.get(NAME, "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != NAME)
    return f"{name}{{{rest}}}"


def _without_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != NAME}


def _merge(items: list[tuple[dict[str, str], np.ndarray, np.ndarray]]) -> _Vector:
    """Series keyed by label set, as Prometheus assembles a range result: one label set present
    twice at the same step is the error Prometheus raises; at different steps it is one series."""
    merged: dict[tuple, _Series] = {}
    for labels, values, present in items:
        if not present.any():
            continue
        key = _key(labels)
        seen = merged.get(key)
        if seen is None:
            merged[key] = _Series(labels, values, present)
            continue
        if (seen.present & present).any():
            raise ValueError("vector cannot contain metrics with the same labelset")
        seen.values = np.where(present, values, seen.values)
        seen.present = seen.present | present
    return _Vector([merged[k] for k in sorted(merged)])


# --- arithmetic as Go's float64 does it -----------------------------------------------------------

_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
_COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
_SET = {"and", "or", "unless"}


def _arith(op: str, a, b):
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


def _compare(op: str, a, b):
    with np.errstate(invalid="ignore"):
        return {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
                ">=": np.greater_equal, "<=": np.less_equal}[op](a, b)


def _go_max(a, b):
    # Go's math.Max answers +Inf when either side is +Inf, even against NaN.
    with np.errstate(invalid="ignore"):
        return np.where(np.isposinf(a) | np.isposinf(b), np.inf, np.maximum(a, b))


def _go_min(a, b):
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(a) | np.isneginf(b), -np.inf, np.minimum(a, b))


def _go_regex(pattern: str) -> re.Pattern:
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


def _go_exp(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(values > _GO_EXP_OVERFLOW, np.inf, np.exp(values))


def _go_parse_float(text: str) -> float | None:
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


def _quantile_rows(q: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Prometheus's quantile() for each row of ``matrix`` over its ``mask``ed cells: NaN samples
    sort first, then linear interpolation between the closest ranks; q NaN → NaN, q<0 → -Inf,
    q>1 → +Inf."""
    rows = np.arange(matrix.shape[0])
    width = matrix.shape[1]
    count = mask.sum(axis=1)
    nans = (np.isnan(matrix) & mask).sum(axis=1)
    with np.errstate(invalid="ignore"):
        n = count.astype(float)
        rank = q * (n - 1)
        floor = np.floor(rank)
        lower = np.maximum(0.0, floor)
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - floor
    usable = np.isfinite(lower) & np.isfinite(upper) & (count > 0) & (q >= 0) & (q <= 1)
    lo_i = np.where(usable, lower, 0).astype(np.int64)
    hi_i = np.where(usable, upper, 0).astype(np.int64)
    # NaN stands in as -Inf (it sorts first in Prometheus) and empty cells as +Inf (after every
    # sample), so the sorted row holds the window in Prometheus's order from position 0.
    ordered = np.sort(np.where(mask, np.where(np.isnan(matrix), -np.inf, matrix), np.inf), axis=1)
    low_value = np.where(lo_i < nans, np.nan, ordered[rows, np.minimum(lo_i, max(width - 1, 0))])
    high_value = np.where(hi_i < nans, np.nan, ordered[rows, np.minimum(hi_i, max(width - 1, 0))])
    with np.errstate(invalid="ignore"):
        result = low_value * (1 - weight) + high_value * weight
    result = np.where(usable, result, np.nan)
    result = np.where(q > 1, np.inf, result)
    result = np.where(q < 0, -np.inf, result)
    return np.where(np.isnan(q), np.nan, result)


# --- the evaluator ---------------------------------------------------------------------------------


def _ms(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return int(round(delta / timedelta(milliseconds=1)))


def _is(node, name: str) -> bool:
    return type(node).__name__ == name


def _unparen(node):
    while _is(node, "ParenExpr"):
        node = node.expr
    return node


class _Evaluator:
    def __init__(self, series: Sequence[SeriesTuple], grid: np.ndarray, lookback_s: float) -> None:
        self.raw = series
        self.grid = np.asarray(grid, dtype=float)
        self.grid_ms = np.round(self.grid * 1000.0).astype(np.int64)
        self.steps = self.grid.size
        self.lookback_ms = int(round(lookback_s * 1000.0))
        self._converted: dict[int, tuple[dict[str, str], np.ndarray, np.ndarray]] = {}

    # --- dispatch ---------------------------------------------------------------------------------

    def eval(self, node):
        kind = type(node).__name__
        if kind == "ParenExpr":
            return self.eval(node.expr)
        if kind == "NumberLiteral":
            return _Scalar(np.full(self.steps, float(node.val)))
        if kind == "StringLiteral":
            return _String(node.val)
        if kind == "UnaryExpr":
            return self._negate(self.eval(node.expr))
        if kind == "VectorSelector":
            return self._instant_selector(node)
        if kind == "MatrixSelector":
            raise ValueError('invalid expression type "range vector" for range query, must be Scalar or instant Vector')
        if kind == "SubqueryExpr":
            raise UnsupportedQuery("subqueries (expr[range:step]) are not supported by the embedded evaluator")
        if kind == "Call":
            return self._call(node)
        if kind == "AggregateExpr":
            return self._aggregate(node)
        if kind == "BinaryExpr":
            return self._binary(node)
        raise UnsupportedQuery(f"the PromQL construct {kind} is not supported")

    def _negate(self, value):
        if isinstance(value, _Scalar):
            return _Scalar(-value.values)
        if isinstance(value, _Vector):
            return _merge([(_without_name(s.labels), -s.values, s.present) for s in value.series])
        raise ValueError("unary minus needs a scalar or an instant vector")

    # --- selectors --------------------------------------------------------------------------------

    def _prepared(self, index: int) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
        """A stored series with millisecond timestamps, converted when a selector first picks it
        (a file may hold far more series than a query reads)."""
        done = self._converted.get(index)
        if done is None:
            labels, stamps, values = self.raw[index]
            ts = np.round(np.asarray(stamps, dtype=float) * 1000.0).astype(np.int64)
            vals = np.asarray(values, dtype=float)
            if ts.size > 1 and np.any(np.diff(ts) < 0):
                order = np.argsort(ts, kind="stable")
                ts, vals = ts[order], vals[order]
            done = self._converted[index] = (dict(labels), ts, vals)
        return done

    def _selected(self, selector) -> tuple[list[tuple[dict[str, str], np.ndarray, np.ndarray]], int]:
        """The stored series a selector picks, and its offset in milliseconds."""
        if selector.at is not None:
            raise UnsupportedQuery("the @ modifier is not supported by the embedded evaluator")
        matchers = selector.matchers
        if matchers.or_matchers:
            raise UnsupportedQuery("'or' between label matchers is not PromQL that Prometheus 2.42 accepts")
        tests: list[Callable[[dict[str, str]], bool]] = []
        if selector.name:
            tests.append(lambda labels, want=selector.name: labels.get(NAME, "") == want)
        for matcher in matchers.matchers:
            tests.append(self._matcher(matcher))
        found = [self._prepared(i) for i, item in enumerate(self.raw) if all(test(item[0]) for test in tests)]
        return found, _ms(selector.offset)

    @staticmethod
    def _matcher(matcher) -> Callable[[dict[str, str]], bool]:
        label, value, op = matcher.name, matcher.value, matcher.op
        if op == pp.MatchOp.Equal:
            return lambda labels: labels.get(label, "") == value
        if op == pp.MatchOp.NotEqual:
            return lambda labels: labels.get(label, "") != value
        pattern = _go_regex(value)
        # Prometheus anchors label regexes at both ends; fullmatch does the same.
        if op == pp.MatchOp.Re:
            return lambda labels: pattern.fullmatch(labels.get(label, "")) is not None
        return lambda labels: pattern.fullmatch(labels.get(label, "")) is None

    def _instant_selector(self, selector) -> _Vector:
        found, offset = self._selected(selector)
        ref = self.grid_ms - offset
        out = []
        for labels, ts, vals in found:
            if ts.size == 0:
                continue
            index = np.searchsorted(ts, ref, side="right") - 1
            ok = index >= 0
            index = np.maximum(index, 0)
            # The latest sample at or before the step, at most the lookback old (inclusive in 2.42).
            ok &= (ref - ts[index]) <= self.lookback_ms
            if ok.any():
                out.append((labels, np.where(ok, vals[index], np.nan), ok))
        return _merge(out)

    # --- functions --------------------------------------------------------------------------------

    def _call(self, node):
        name = node.func.name
        args = list(node.args)
        if name in _RANGE_FUNCTIONS:
            return self._range_function(name, args)
        if name in _ELEMENTWISE:
            return self._elementwise(args, _ELEMENTWISE[name])
        handler = getattr(self, f"_fn_{name}", None)
        if handler is None:
            raise UnsupportedQuery(f"the function {name}() is not supported by the embedded evaluator")
        return handler(args)

    def _scalar_arg(self, node) -> np.ndarray:
        value = self.eval(node)
        if not isinstance(value, _Scalar):
            raise ValueError("expected a scalar argument")
        return value.values

    def _vector_arg(self, node) -> _Vector:
        value = self.eval(node)
        if not isinstance(value, _Vector):
            raise ValueError("expected an instant vector argument")
        return value

    def _string_arg(self, node) -> str:
        value = self.eval(node)
        if not isinstance(value, _String):
            raise ValueError("expected a string argument")
        return value.value

    def _elementwise(self, args, compute) -> _Vector:
        vector = self._vector_arg(args[0])
        with np.errstate(all="ignore"):
            return _merge([(_without_name(s.labels), compute(s.values), s.present) for s in vector.series])

    def _fn_round(self, args):
        to_nearest = self._scalar_arg(args[1]) if len(args) > 1 else np.ones(self.steps)
        with np.errstate(all="ignore"):
            inverse = 1.0 / to_nearest
        # Half rounds up (towards +Inf), not to even.
        return self._elementwise(args, lambda v: np.floor(v * inverse + 0.5) / inverse)

    def _fn_clamp_min(self, args):
        low = self._scalar_arg(args[1])
        return self._elementwise(args, lambda v: _go_max(low, v))

    def _fn_clamp_max(self, args):
        high = self._scalar_arg(args[1])
        return self._elementwise(args, lambda v: _go_min(high, v))

    def _fn_clamp(self, args):
        low, high = self._scalar_arg(args[1]), self._scalar_arg(args[2])
        vector = self._vector_arg(args[0])
        valid = ~(high < low)  # an empty range gives no output at that step
        return _merge([(_without_name(s.labels), _go_max(low, _go_min(high, s.values)), s.present & valid)
                       for s in vector.series])

    def _fn_sort(self, args):
        return self._vector_arg(args[0])  # order has no meaning in a range result

    _fn_sort_desc = _fn_sort

    def _fn_time(self, args):
        return _Scalar(self.grid_ms / 1000.0)

    def _fn_vector(self, args):
        return _Vector([_Series({}, self._scalar_arg(args[0]).copy(), np.ones(self.steps, dtype=bool))])

    def _fn_scalar(self, args):
        vector = self._vector_arg(args[0])
        count = np.zeros(self.steps, dtype=np.int64)
        value = np.full(self.steps, np.nan)
        for s in vector.series:
            count += s.present
            value = np.where(s.present, s.values, value)
        return _Scalar(np.where(count == 1, value, np.nan))

    def _fn_label_replace(self, args):
        vector = self._vector_arg(args[0])
        dst, replacement, src, regex = (self._string_arg(a) for a in args[1:5])
        pattern = _go_regex(regex)
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst):
            raise ValueError(f"invalid destination label name in label_replace(): {dst}")
        out = []
        for s in vector.series:
            found = pattern.fullmatch(s.labels.get(src, ""))
            labels = dict(s.labels)
            if found is not None:
                value = _go_expand(replacement, found)
                labels.pop(dst, None)
                if value:
                    labels[dst] = value
            out.append((labels, s.values, s.present))
        return _merge(out)

    def _fn_histogram_quantile(self, args):
        q = self._scalar_arg(args[0])
        vector = self._vector_arg(args[1])
        groups: dict[tuple, tuple[dict[str, str], list[float], list[_Series]]] = {}
        for s in vector.series:
            bound = _go_parse_float(s.labels.get("le", ""))
            if bound is None:
                continue  # no or malformed bucket label: Prometheus skips the sample
            # Buckets belong together when all labels but le agree (the name included).
            key = _key({k: v for k, v in s.labels.items() if k != "le"})
            group = groups.setdefault(
                key, ({k: v for k, v in s.labels.items() if k not in ("le", NAME)}, [], []))
            group[1].append(bound)
            group[2].append(s)
        out = []
        for labels, bounds, members in groups.values():
            order = np.argsort(np.asarray(bounds), kind="stable")
            upper = np.asarray(bounds)[order]
            counts = np.stack([members[i].values for i in order])
            present = np.stack([members[i].present for i in order])
            any_present = present.any(axis=0)
            result = np.full(self.steps, np.nan)
            columns = np.flatnonzero(any_present)
            if columns.size == 0:
                continue
            # Steps where the same buckets are present are computed together.
            patterns, inverse = np.unique(present[:, columns], axis=1, return_inverse=True)
            inverse = np.asarray(inverse).ravel()
            for p in range(patterns.shape[1]):
                rows = patterns[:, p]
                cols = columns[inverse == p]
                result[cols] = _bucket_quantile(q[cols], upper[rows], counts[rows][:, cols])
            out.append((labels, result, any_present))
        return _merge(out)

    def _range_function(self, name: str, args) -> _Vector:
        matrix_index = 1 if name == "quantile_over_time" else 0
        selector = _unparen(args[matrix_index])
        if _is(selector, "SubqueryExpr"):
            raise UnsupportedQuery("subqueries (expr[range:step]) are not supported by the embedded evaluator")
        if not _is(selector, "MatrixSelector"):
            raise ValueError(f"expected a range vector in call to function {name}()")
        q = self._scalar_arg(args[0]) if name == "quantile_over_time" else None
        vs = selector.vector_selector
        range_ms = _ms(selector.range)
        found, offset = self._selected(vs)
        ref = self.grid_ms - offset
        compute = _RANGE_FUNCTIONS[name]
        out = []
        for labels, ts, vals in found:
            if ts.size == 0:
                continue
            # The window is the closed interval [t - range, t] in Prometheus 2.42.
            lo = np.searchsorted(ts, ref - range_ms, side="left")
            hi = np.searchsorted(ts, ref, side="right")
            window = _Window(ts, vals, lo, hi, hi - lo, ref, range_ms, q)
            values, present = compute(window)
            if present.any():
                # last_over_time acts like a lookback, so it keeps the metric name; the others drop it.
                out.append((labels if name == "last_over_time" else _without_name(labels), values, present))
        return _merge(out)

    # --- aggregation ------------------------------------------------------------------------------

    def _aggregate(self, node) -> _Vector:
        op = str(node.op)
        if op not in _AGGREGATIONS:
            raise UnsupportedQuery(f"the aggregation {op}() is not supported by the embedded evaluator")
        param = None
        if node.param is not None:
            value = self.eval(node.param)
            if not isinstance(value, _Scalar):
                raise UnsupportedQuery(f"{op}() with a non-numeric parameter is not supported")
            param = value.values
        vector = self._vector_arg(node.expr)
        modifier = node.modifier
        grouping = set(modifier.labels) if modifier is not None else set()
        without = modifier is not None and modifier.type == pp.AggModifierType.Without

        def group_labels(labels: dict[str, str]) -> dict[str, str]:
            if without:
                return {k: v for k, v in labels.items() if k not in grouping and k != NAME}
            return {k: v for k, v in labels.items() if k in grouping}

        groups: dict[tuple, tuple[dict[str, str], list[_Series]]] = {}
        for s in vector.series:
            labels = group_labels(s.labels)
            groups.setdefault(_key(labels), (labels, []))[1].append(s)
        if op in ("topk", "bottomk"):
            return self._top(op, param, groups)
        out = []
        for labels, members in groups.values():
            values, present = _AGGREGATIONS[op](members, param, self.steps)
            out.append((labels, values, present))
        return _merge(out)

    def _top(self, op: str, param: np.ndarray, groups) -> _Vector:
        if not np.all(np.isfinite(param)) or np.any(np.abs(param) >= 2.0**63):
            bad = param[~np.isfinite(param) | (np.abs(param) >= 2.0**63)][0]
            raise ValueError(f"Scalar value {_go_format(bad)} overflows int64")
        k = np.trunc(param).astype(np.int64)
        out = []
        for _, members in groups.values():
            values = np.stack([m.values for m in members])
            present = np.stack([m.present for m in members])
            # NaN is the least preferred for both; ties keep the earlier series.
            rank_value = -values if op == "topk" else values
            nan_class = np.where(present, np.isnan(values).astype(np.int8), 2)
            order_index = np.broadcast_to(np.arange(len(members))[:, None], values.shape)
            order = np.lexsort((order_index, np.nan_to_num(rank_value, nan=0.0), nan_class), axis=0)
            position = np.empty_like(order)
            np.put_along_axis(position, order, np.arange(len(members))[:, None].repeat(self.steps, axis=1), axis=0)
            chosen = present & (position < k[None, :])
            for row, member in enumerate(members):
                out.append((member.labels, member.values, chosen[row]))
        return _merge(out)

    # --- binary operators -------------------------------------------------------------------------

    def _binary(self, node):
        op = str(node.op)
        modifier = node.modifier
        return_bool = bool(modifier is not None and modifier.return_bool)
        card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
        if card in (pp.VectorMatchCardinality.ManyToOne, pp.VectorMatchCardinality.OneToMany):
            raise UnsupportedQuery("group_left/group_right (many-to-one matching) is not supported by the embedded evaluator")
        fill = modifier.fill_values if modifier is not None else None
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            raise UnsupportedQuery("fill modifiers on binary operators are not PromQL that Prometheus 2.42 accepts")
        if op not in _ARITHMETIC | _COMPARISON | _SET:
            raise UnsupportedQuery(f"the binary operator {op!r} is not supported")
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if isinstance(lhs, _Scalar) and isinstance(rhs, _Scalar):
            if op in _COMPARISON:
                return _Scalar(_compare(op, lhs.values, rhs.values).astype(float))
            return _Scalar(_arith(op, lhs.values, rhs.values))
        if isinstance(lhs, _Vector) and isinstance(rhs, _Scalar):
            return self._vector_scalar(op, lhs, rhs.values, False, return_bool)
        if isinstance(lhs, _Scalar) and isinstance(rhs, _Vector):
            return self._vector_scalar(op, rhs, lhs.values, True, return_bool)
        if isinstance(lhs, _Vector) and isinstance(rhs, _Vector):
            matching = modifier.matching if modifier is not None else None
            on = matching is not None and matching.type == pp.LabelModifierType.Include
            names = set(matching.labels) if matching is not None else set()
            signature = _signature(on, names)
            if op in _SET:
                return self._set_operation(op, lhs, rhs, signature)
            return self._vector_vector(op, lhs, rhs, signature, on, names, return_bool)
        raise ValueError("binary expression must contain only scalar and instant vector types")

    def _vector_scalar(self, op, vector: _Vector, scalar: np.ndarray, swapped: bool, return_bool: bool) -> _Vector:
        out = []
        for s in vector.series:
            left, right = (scalar, s.values) if swapped else (s.values, scalar)
            if op in _COMPARISON:
                keep = _compare(op, left, right)
                if return_bool:
                    out.append((_without_name(s.labels), keep.astype(float), s.present))
                else:  # the vector's sample survives, whichever side it was on
                    out.append((s.labels, s.values, s.present & keep))
            else:
                out.append((_without_name(s.labels), _arith(op, left, right), s.present))
        return _merge(out)

    def _vector_vector(self, op, lhs: _Vector, rhs: _Vector, signature, on: bool, names: set[str],
                       return_bool: bool) -> _Vector:
        right: dict[tuple, list[_Series]] = {}
        for s in rhs.series:
            right.setdefault(signature(s.labels), []).append(s)
        # At a step where the left side is empty Prometheus returns before looking at the right,
        # so duplicates there are only an error where the left has samples.
        left_present = np.zeros(self.steps, dtype=bool)
        for s in lhs.series:
            left_present |= s.present
        joined: dict[tuple, _Series] = {}
        for sig, members in right.items():
            if len(members) > 1:
                twice = (np.sum([m.present for m in members], axis=0) > 1) & left_present
                if twice.any():
                    step = int(np.argmax(twice))
                    clash = [m for m in members if m.present[step]][:2]
                    raise ValueError(
                        f"found duplicate series for the match group {_render(dict(sig))} on the right "
                        f"hand-side of the operation: [{_render(clash[0].labels)}, {_render(clash[1].labels)}];"
                        "many-to-many matching not allowed: matching labels must be unique on one side")
            values = np.full(self.steps, np.nan)
            present = np.zeros(self.steps, dtype=bool)
            for m in members:
                values = np.where(m.present, m.values, values)
                present |= m.present
            joined[sig] = _Series({}, values, present)
        left: dict[tuple, list[_Series]] = {}
        for s in lhs.series:
            left.setdefault(signature(s.labels), []).append(s)
        out = []
        for sig, members in left.items():
            match = joined.get(sig)
            if match is None:
                continue
            kept = np.zeros(self.steps, dtype=np.int64)
            for s in members:
                both = s.present & match.present
                if not both.any():
                    continue
                labels = dict(s.labels)
                if op in _ARITHMETIC:
                    values, keep = _arith(op, s.values, match.values), both
                    labels.pop(NAME, None)
                else:
                    hit = _compare(op, s.values, match.values)
                    if return_bool:
                        values, keep = hit.astype(float), both
                    else:
                        values, keep = s.values, both & hit
                if on:
                    labels = {k: v for k, v in labels.items() if k in names}
                else:
                    labels = {k: v for k, v in labels.items() if k not in names}
                if return_bool:
                    labels.pop(NAME, None)
                kept += keep
                out.append((labels, values, keep))
            if (kept > 1).any():
                raise ValueError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
        return _merge(out)

    def _set_operation(self, op, lhs: _Vector, rhs: _Vector, signature) -> _Vector:
        def presence(vector: _Vector) -> dict[tuple, np.ndarray]:
            seen: dict[tuple, np.ndarray] = {}
            for s in vector.series:
                sig = signature(s.labels)
                seen[sig] = seen.get(sig, np.zeros(self.steps, dtype=bool)) | s.present
            return seen

        nothing = np.zeros(self.steps, dtype=bool)
        if op == "and":
            right = presence(rhs)
            return _merge([(s.labels, s.values, s.present & right.get(signature(s.labels), nothing))
                           for s in lhs.series])
        if op == "unless":
            right = presence(rhs)
            return _merge([(s.labels, s.values, s.present & ~right.get(signature(s.labels), nothing))
                           for s in lhs.series])
        left = presence(lhs)
        return _merge([(s.labels, s.values, s.present) for s in lhs.series]
                      + [(s.labels, s.values, s.present & ~left.get(signature(s.labels), nothing))
                         for s in rhs.series])


def _signature(on: bool, names: set[str]) -> Callable[[dict[str, str]], tuple]:
    """The labels two series are matched on: on(...) names them; otherwise all but the ignored
    ones and the metric name."""
    if on:
        return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k in names))
    return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k not in names and k != NAME))


def _go_format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _go_expand(template: str, found: re.Match) -> str:
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


# --- histogram_quantile -----------------------------------------------------------------------------


def _bucket_quantile(q: np.ndarray, bounds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """bucketQuantile's rules for buckets sorted by upper bound (rows) over some steps (columns)."""
    steps = counts.shape[1]
    result = np.full(steps, np.nan)
    if bounds.size and np.isposinf(bounds[-1]):
        # Buckets with the same upper bound count as one.
        unique, first = np.unique(bounds, return_index=True)
        merged = np.zeros((unique.size, steps))
        for row in range(bounds.size):
            merged[np.searchsorted(unique, bounds[row])] += counts[row]
        # Monotonicity fix: a bucket smaller than one below it takes that count. The envelope
        # starts from the lowest bucket's count, so a NaN there leaves the column as it is, and
        # a NaN further up stays NaN without lowering the envelope.
        with np.errstate(invalid="ignore"):
            running = np.fmax.accumulate(merged, axis=0)
        fixed = np.where(np.isnan(merged) | np.isnan(merged[0])[None, :], merged, running)
        if unique.size >= 2:
            n = unique.size
            observations = fixed[-1]
            cols = np.arange(steps)
            with np.errstate(all="ignore"):
                rank = q * observations
                # The first bucket reaching the rank, found by binary search over all but +Inf
                # (sort.Search): with NaN counts the predicate is not monotonic, and a linear scan
                # would pick a different bucket than Prometheus does.
                low, high = np.zeros(steps, dtype=np.int64), np.full(steps, n - 1, dtype=np.int64)
                while (low < high).any():
                    active = low < high
                    middle = (low + high) // 2
                    reached = fixed[np.minimum(middle, n - 1), cols] >= rank
                    low = np.where(active & ~reached, middle + 1, low)
                    high = np.where(active & reached, middle, high)
            b = low
            end = unique[b]
            below = np.where(b > 0, fixed[np.maximum(b - 1, 0), cols], 0.0)
            start = np.where(b > 0, unique[np.maximum(b - 1, 0)], 0.0)
            with np.errstate(all="ignore"):
                inside = start + (end - start) * ((rank - below) / (fixed[b, cols] - below))
            value = np.where(b == n - 1, unique[n - 2], inside)
            value = np.where((b == 0) & (unique[0] <= 0), unique[0], value)
            result = np.where(observations == 0, np.nan, value)
    result = np.where(q > 1, np.inf, result)
    result = np.where(q < 0, -np.inf, result)
    return np.where(np.isnan(q), np.nan, result)


# --- range-vector functions -------------------------------------------------------------------------


@dataclass
class _Window:
    """One stored series' samples and, per step, the index range of its window [t - range, t]."""

    ts: np.ndarray
    vals: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray
    ref: np.ndarray
    range_ms: int
    q: np.ndarray | None


def _window_blocks(w: _Window):
    """Each non-empty window as a row as wide as the widest (rows are contiguous copies of a
    sliding view over the samples) with a mask of its real cells; a block of steps at a time so
    a long range stays within memory."""
    steps = np.flatnonzero(w.n >= 1)
    if not steps.size:
        return
    width = int(w.n[steps].max())
    padded = np.concatenate((w.vals, np.full(width, np.nan)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    offsets = np.arange(width)
    block = max(1, _BLOCK_CELLS // width)
    for first in range(0, steps.size, block):
        chosen = steps[first:first + block]
        yield chosen, windows[w.lo[chosen]], offsets[None, :] < w.n[chosen][:, None]


def _fold_windows(fold: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def compute(w: _Window):
        values = np.full(w.n.size, np.nan)
        for chosen, cells, mask in _window_blocks(w):
            with np.errstate(all="ignore"):
                values[chosen] = fold(cells, mask)
        return values, w.n >= 1
    return compute


def _compensated_add(total: np.ndarray, compensation: np.ndarray, increment: np.ndarray):
    """One step of Neumaier's compensated summation, which Prometheus uses over time: the lost
    low-order bits are carried in ``compensation`` and added back at the end."""
    new_total = total + increment
    lost = np.where(np.abs(total) >= np.abs(increment), (total - new_total) + increment,
                    (increment - new_total) + total)
    return new_total, compensation + lost


def _sum_cells(cells: np.ndarray, mask: np.ndarray) -> np.ndarray:
    total = np.zeros(cells.shape[0])
    compensation = np.zeros(cells.shape[0])
    for k in range(cells.shape[1]):
        stepped, carried = _compensated_add(total, compensation, cells[:, k])
        total = np.where(mask[:, k], stepped, total)
        compensation = np.where(mask[:, k], carried, compensation)
    return np.where(np.isinf(total), total, total + compensation)


def _avg_cells(cells: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # A running mean (it cannot overflow), compensated like the sum; not the sum over the count,
    # whose rounding differs in the last bit, which ceil() or a difference would show.
    mean = np.zeros(cells.shape[0])
    compensation = np.zeros(cells.shape[0])
    count = np.zeros(cells.shape[0])
    for k in range(cells.shape[1]):
        v, active = cells[:, k], mask[:, k]
        count = count + active
        update = active & ~_mean_stuck(mean, v)
        stepped, carried = _compensated_add(mean, compensation, v / count - mean / count)
        mean = np.where(update, stepped, mean)
        compensation = np.where(update, carried, compensation)
    return np.where(np.isinf(mean), mean, mean + compensation)


def _mean_stuck(mean: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where an infinite running mean stays as it is: against the same infinity or any finite
    number (the update would subtract infinities and give NaN)."""
    return np.isinf(mean) & ((np.isinf(v) & ((mean > 0) == (v > 0))) | np.isfinite(v))


def _extreme_windows(ufunc: np.ufunc):
    """min/max over each window straight from the samples with reduceat (no arithmetic, so no
    order question, and no steps-by-width matrix)."""
    def compute(w: _Window):
        present = w.n >= 1
        values = np.full(w.n.size, np.nan)
        if present.any():
            lo, hi = w.lo[present], w.hi[present]
            # reduceat reduces between consecutive indices; the odd slots (hi to the next lo) are
            # discarded. The padding keeps an index equal to the sample count valid.
            padded = np.append(w.vals, 0.0)
            index = np.empty(2 * lo.size, dtype=np.int64)
            index[0::2], index[1::2] = lo, hi
            values[present] = ufunc.reduceat(padded, index)[0::2]
        return values, present
    return compute


def _count(w: _Window):
    return w.n.astype(float), w.n >= 1


def _last(w: _Window):
    present = w.n >= 1
    return np.where(present, w.vals[np.maximum(w.hi - 1, 0)], np.nan), present


def _present(w: _Window):
    present = w.n >= 1
    return np.ones(w.n.size), present


def _quantile_over_time(w: _Window):
    values = np.full(w.n.size, np.nan)
    for chosen, cells, mask in _window_blocks(w):
        values[chosen] = _quantile_rows(w.q[chosen], cells, mask)
    return values, w.n >= 1


def _pair_flags(w: _Window, flags: np.ndarray):
    """How many adjacent sample pairs inside each window are flagged (flags[j] is about j-1→j)."""
    cumulative = np.concatenate(([0], np.cumsum(flags)))
    start = np.minimum(w.lo + 1, w.hi)
    return (cumulative[w.hi] - cumulative[start]).astype(float), w.n >= 1


def _resets(w: _Window):
    flags = np.zeros(w.vals.size, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        flags[1:] = w.vals[1:] < w.vals[:-1]
    return _pair_flags(w, flags)


def _changes(w: _Window):
    flags = np.zeros(w.vals.size, dtype=np.int64)
    both_nan = np.isnan(w.vals[1:]) & np.isnan(w.vals[:-1])
    flags[1:] = (w.vals[1:] != w.vals[:-1]) & ~both_nan
    return _pair_flags(w, flags)


def _instant_value(is_rate: bool):
    """irate/idelta: the last two samples of the window."""
    def compute(w: _Window):
        present = w.n >= 2
        values = np.full(w.n.size, np.nan)
        if present.any():
            last_i = w.hi[present] - 1
            last, previous = w.vals[last_i], w.vals[last_i - 1]
            interval_ms = w.ts[last_i] - w.ts[last_i - 1]
            with np.errstate(all="ignore"):
                if is_rate:  # a drop is a counter reset: the new value is the increase
                    result = np.where(last < previous, last, last - previous) / (interval_ms / 1000.0)
                else:
                    result = last - previous
            values[present] = result
        return values, present
    return compute


def _extrapolated(is_counter: bool, is_rate: bool):
    """rate, increase and delta: the change over the window, corrected for counter resets and
    extrapolated towards the window's edges as Prometheus 2.42's extrapolatedRate does."""
    def compute(w: _Window):
        present = w.n >= 2
        values = np.full(w.n.size, np.nan)
        if not present.any():
            return values, present
        first_i, last_i = w.lo[present], w.hi[present] - 1
        first, last = w.vals[first_i], w.vals[last_i]
        with np.errstate(all="ignore"):
            result = last - first
            if is_counter:
                result = _add_resets(w.vals, first_i, last_i, result)
            duration_to_start = (w.ts[first_i] - (w.ref[present] - w.range_ms)) / 1000.0
            duration_to_end = (w.ref[present] - w.ts[last_i]) / 1000.0
            sampled = (w.ts[last_i] - w.ts[first_i]) / 1000.0
            average = sampled / (w.n[present] - 1)
            if is_counter:
                # A counter cannot go below zero: extrapolate no further back than where it would be 0.
                to_zero = sampled * (first / result)
                use_zero = (result > 0) & (first >= 0) & (to_zero < duration_to_start)
                duration_to_start = np.where(use_zero, to_zero, duration_to_start)
            threshold = average * 1.1
            interval = sampled + np.where(duration_to_start < threshold, duration_to_start, average / 2)
            interval = interval + np.where(duration_to_end < threshold, duration_to_end, average / 2)
            factor = interval / sampled
            if is_rate:
                factor = factor / (w.range_ms / 1000.0)
            values[present] = result * factor
        return values, present
    return compute


def _add_resets(vals: np.ndarray, first_i: np.ndarray, last_i: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Adds, for every drop inside a window, the value before the drop (what the counter had
    reached before it restarted)."""
    with np.errstate(invalid="ignore"):
        drops = np.flatnonzero(vals[1:] < vals[:-1]) + 1
    if drops.size <= _SEQUENTIAL_RESETS:
        for j in drops:  # in time order, as Prometheus adds them
            inside = (first_i < j) & (j <= last_i)
            result = np.where(inside, result + vals[j - 1], result)
        return result
    corrections = np.zeros(vals.size + 1)
    corrections[drops] = vals[drops - 1]
    index = np.empty(2 * first_i.size, dtype=np.int64)
    index[0::2] = first_i + 1
    index[1::2] = last_i + 1
    sums = np.add.reduceat(corrections, index)[0::2]
    return result + np.where(last_i > first_i, sums, 0.0)


_RANGE_FUNCTIONS: dict[str, Callable[[_Window], tuple[np.ndarray, np.ndarray]]] = {
    "rate": _extrapolated(is_counter=True, is_rate=True),
    "increase": _extrapolated(is_counter=True, is_rate=False),
    "delta": _extrapolated(is_counter=False, is_rate=False),
    "irate": _instant_value(is_rate=True),
    "idelta": _instant_value(is_rate=False),
    "resets": _resets,
    "changes": _changes,
    "avg_over_time": _fold_windows(_avg_cells),
    "sum_over_time": _fold_windows(_sum_cells),
    # NaN loses to any number, as in Prometheus: fmin/fmax ignore NaN unless all are NaN.
    "min_over_time": _extreme_windows(np.fmin),
    "max_over_time": _extreme_windows(np.fmax),
    "count_over_time": _count,
    "last_over_time": _last,
    "present_over_time": _present,
    "quantile_over_time": _quantile_over_time,
}


# --- aggregations -----------------------------------------------------------------------------------
# Each folds the group's series in order, step by step, the way Prometheus folds a group's samples.


def _fold_sum(members, _param, steps):
    total = np.full(steps, np.nan)
    seen = np.zeros(steps, dtype=bool)
    with np.errstate(all="ignore"):
        for m in members:
            total = np.where(m.present, np.where(seen, total + m.values, m.values), total)
            seen |= m.present
    return total, seen


def _fold_avg(members, _param, steps):
    mean = np.full(steps, np.nan)
    count = np.zeros(steps)
    with np.errstate(all="ignore"):
        for m in members:
            v, p = m.values, m.present
            first = p & (count == 0)
            count = count + p
            update = p & ~first & ~_mean_stuck(mean, v)
            mean = np.where(first, v, np.where(update, mean + (v / count - mean / count), mean))
    return mean, count > 0


def _fold_extreme(larger: bool):
    def fold(members, _param, steps):
        best = np.full(steps, np.nan)
        seen = np.zeros(steps, dtype=bool)
        with np.errstate(invalid="ignore"):
            for m in members:
                better = (best < m.values) if larger else (best > m.values)
                take = m.present & (~seen | better | np.isnan(best))
                best = np.where(take, m.values, best)
                seen |= m.present
        return best, seen
    return fold


def _fold_count(members, _param, steps):
    count = np.sum([m.present for m in members], axis=0).astype(float)
    return count, count > 0


def _fold_group(members, _param, steps):
    seen = np.any([m.present for m in members], axis=0)
    return np.ones(steps), seen


def _fold_variance(root: bool):
    def fold(members, _param, steps):
        # Welford's online update, as Prometheus: exactly 0 for identical values.
        mean = np.zeros(steps)
        total = np.zeros(steps)
        count = np.zeros(steps)
        with np.errstate(all="ignore"):
            for m in members:
                v, p = m.values, m.present
                first = p & (count == 0)
                count = count + p
                delta = v - mean
                new_mean = mean + delta / count
                new_total = total + delta * (v - new_mean)
                mean = np.where(first, v, np.where(p, new_mean, mean))
                total = np.where(first, 0.0, np.where(p, new_total, total))
            variance = total / count
        return (np.sqrt(variance) if root else variance), count > 0
    return fold


def _fold_quantile(members, param, steps):
    values = np.stack([m.values for m in members]).T
    present = np.stack([m.present for m in members]).T
    seen = present.any(axis=1)
    return _quantile_rows(param, values, present), seen


_AGGREGATIONS = {
    "sum": _fold_sum,
    "avg": _fold_avg,
    "min": _fold_extreme(larger=False),
    "max": _fold_extreme(larger=True),
    "count": _fold_count,
    "group": _fold_group,
    "stddev": _fold_variance(root=True),
    "stdvar": _fold_variance(root=False),
    "quantile": _fold_quantile,
    "topk": None,
    "bottomk": None,
}


def _requote_raw_strings(query: str) -> str:
    """Backtick strings are raw in PromQL (`\\d+` is a backslash and a d), but the parser applies
    escapes inside them, so they are handed over double-quoted with the escapes written out."""
    if "`" not in query:
        return query
    out: list[str] = []
    i, quote = 0, ""
    while i < len(query):
        char = query[i]
        if quote in ('"', "'"):
            out.append(char)
            if char == "\\" and i + 1 < len(query):
                out.append(query[i + 1])
                i += 1
            elif char == quote:
                quote = ""
        elif quote == "`":
            if char == "`":
                out.append('"')
                quote = ""
            else:
                out.append({"\\": "\\\\", '"': '\\"', "\n": "\\n"}.get(char, char))
        elif char == "#":  # a comment runs to the end of the line
            end = query.find("\n", i)
            end = len(query) if end < 0 else end
            out.append(query[i:end])
            i = end
            continue
        elif char in "\"'`":
            quote = char
            out.append('"' if char == "`" else char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


# Functions Prometheus 2.42 has but the parser (which follows 3.x) no longer knows: a refusal,
# not a parse error, since the query is valid where the user wrote it.
_REMOVED_AFTER_2_42 = {"holt_winters"}


# --- entry point ------------------------------------------------------------------------------------


def evaluate_range(query: str, series: Sequence[SeriesTuple], grid: np.ndarray,
                   lookback_s: float = 300.0) -> list[SeriesTuple]:
    """series: (labels incl. "__name__", sorted unix-second timestamps, values) of raw samples.
    grid: evaluation times (start + k*step). Returns one (labels, timestamps, values) per output
    series, only the grid points where it has a value, like /api/v1/query_range's matrix.
    Output labels follow Prometheus (functions like rate drop __name__, aggregations keep only
    the by-labels, etc.). Raise UnsupportedQuery for anything outside the subset, and ValueError
    with Prometheus-like wording for a parse error."""
    try:
        tree = pp.parse(_requote_raw_strings(query))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the parser's Rust panics are not Exceptions
        removed = re.search(r"unknown function with name '(\w+)'", str(exc))
        if removed and removed.group(1) in _REMOVED_AFTER_2_42:
            raise UnsupportedQuery(
                f"the function {removed.group(1)}() is not supported by the embedded evaluator") from None
        raise ValueError(f"parse error: {exc}") from None
    top = _unparen(tree)
    if _is(top, "StringLiteral"):
        raise ValueError('invalid expression type "string" for range query, must be Scalar or instant Vector')
    if _is(top, "MatrixSelector") or _is(top, "SubqueryExpr"):
        raise ValueError('invalid expression type "range vector" for range query, must be Scalar or instant Vector')
    grid = np.asarray(grid, dtype=float)
    if grid.size == 0:
        return []
    result = _Evaluator(series, grid, lookback_s).eval(tree)
    if isinstance(result, _Scalar):
        return [({}, grid.copy(), result.values.copy())]
    if not isinstance(result, _Vector):
        raise ValueError("a range query must evaluate to a scalar or an instant vector")
    out = [(dict(s.labels), grid[s.present].copy(), s.values[s.present].copy())
           for s in result.series if s.present.any()]
    out.sort(key=lambda item: _key(item[0]))
    return out


# Functions applied to each sample alone: one table rather than a method each.
_ELEMENTWISE = {"abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt, "exp": _go_exp,
                "ln": np.log, "log2": np.log2, "log10": np.log10, "sgn": np.sign}
