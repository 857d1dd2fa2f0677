"""Parsing a query with promql-parser, and reading its syntax tree."""

from __future__ import annotations

import re
from datetime import timedelta

import promql_parser as pp

from tools.promql_eval.values import UnsupportedQuery


def ms(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return int(round(delta / timedelta(milliseconds=1)))


def is_node(node, name: str) -> bool:
    return type(node).__name__ == name


def unparen(node):
    while is_node(node, "ParenExpr"):
        node = node.expr
    return node


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


def parse_query(query: str):
    """The syntax tree of ``query``: UnsupportedQuery for a function Prometheus 2.42 has but the parser
    no longer knows, ValueError with Prometheus-like wording for a parse error."""
    try:
        return pp.parse(_requote_raw_strings(query))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the parser's Rust panics are not Exceptions
        removed = re.search(r"unknown function with name '(\w+)'", str(exc))
        if removed and removed.group(1) in _REMOVED_AFTER_2_42:
            raise UnsupportedQuery(
                f"the function {removed.group(1)}() is not supported by the embedded evaluator") from None
        raise ValueError(f"parse error: {exc}") from None
