"""The guard on the model's PromQL: queries stay inside the incident's time range and services.

The query is parsed (promql-parser, the grammar Prometheus uses), never pattern-matched.
"""

from __future__ import annotations

import re

from tools.source_api import IncidentScope, ToolArgumentError

SERVICE_LABELS = ("service", "job", "app")  # labels whose values name the incident's services
_LITERAL_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def check_promql(promql: str, scope: IncidentScope) -> str:
    """Refuse PromQL that reaches outside the incident, selects everything or other services.

    The query is parsed (promql-parser, the grammar Prometheus uses), never pattern-matched, so
    spelling does not matter: no ``offset`` and no ``@`` modifier anywhere (any case, on selectors
    and subqueries); no range, compound ranges such as ``[1d1h]`` and nested subqueries included,
    reaching further back than the incident's own time range; every selector names its metric
    (``{__name__!=""}`` and ``{job=~".+"}`` select everything); and a service, job or app label
    may only name the incident's services, exactly or as an alternation of their names.
    """
    import promql_parser as pp

    text = promql.strip()
    if not text:
        raise ToolArgumentError("promql is empty")
    if len(text) > 2000:
        raise ToolArgumentError("promql is longer than 2000 characters; ask a narrower question")
    if "`" in text:
        raise ToolArgumentError("write label values in double quotes, not backticks")
    try:
        tree = pp.parse(text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the parser's Rust panics are not Exceptions
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ToolArgumentError(f"not valid PromQL ({first}); nothing was run") from None
    longest = max(0.0, scope.end - scope.start)
    services = set(scope.services or [])

    seen: list[str] = []

    def selector(node) -> None:
        seen.append(node.name or "")
        if node.offset is not None or node.at is not None:
            raise ToolArgumentError("offset and @ modifiers are not allowed: queries stay inside the incident's time range")
        groups = [list(node.matchers.matchers)] + [list(g) for g in node.matchers.or_matchers]
        for group in groups:
            named = bool(node.name) or any(m.name == "__name__" and m.op == pp.MatchOp.Equal and m.value
                                           for m in group)
            if not named:
                raise ToolArgumentError("a selector without a metric name matches everything and is not allowed; "
                                        "name a metric, e.g. http_error_ratio{service=\"checkout\"}")
            for m in group:
                if m.name == "__name__" and m.op != pp.MatchOp.Equal:
                    raise ToolArgumentError("the metric name must be given exactly, not by a pattern or a negation")
                if m.name in SERVICE_LABELS and services:
                    _check_service_matcher(pp, m, services)

    def reach(node) -> float:
        """How far before each evaluation time the node reads, in seconds."""
        kind = type(node).__name__
        if kind == "VectorSelector":
            selector(node)
            return 0.0
        if kind == "MatrixSelector":
            selector(node.vector_selector)
            return node.range.total_seconds()
        if kind == "SubqueryExpr":
            if node.offset is not None or node.at is not None:
                raise ToolArgumentError("offset and @ modifiers are not allowed: queries stay inside the incident's time range")
            return node.range.total_seconds() + reach(node.expr)
        if kind == "Call":
            return max([reach(arg) for arg in node.args] or [0.0])
        if kind == "AggregateExpr":
            return max(reach(node.expr), reach(node.param) if node.param is not None else 0.0)
        if kind == "BinaryExpr":
            return max(reach(node.lhs), reach(node.rhs))
        if kind in ("ParenExpr", "UnaryExpr"):
            return reach(node.expr)
        if kind in ("NumberLiteral", "StringLiteral"):
            return 0.0
        raise ToolArgumentError(f"PromQL with a {kind} is not allowed here")

    back = reach(tree)
    if back > longest:
        raise ToolArgumentError(f"the query reads {pp.display_duration(_timedelta(back))} back, longer than the "
                                f"incident's time range ({pp.display_duration(_timedelta(longest))}); use a shorter range")
    if not seen:
        raise ToolArgumentError("promql selects no metric")
    return text


def _timedelta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=int(seconds))


def _check_service_matcher(pp, matcher, services: set[str]) -> None:
    if matcher.op == pp.MatchOp.Equal:
        if matcher.value and matcher.value not in services:
            raise ToolArgumentError(f"{matcher.name}={matcher.value!r} is not a service of this incident; "
                                    f"its services: {', '.join(sorted(services)[:20])}")
        return
    if matcher.op == pp.MatchOp.Re:
        names = matcher.value.split("|")
        if all(_LITERAL_NAME.fullmatch(n) and n in services for n in names):
            return
        raise ToolArgumentError(f"{matcher.name}=~{matcher.value!r} may select services outside this incident; "
                                f"name them, e.g. {matcher.name}=~\"{'|'.join(sorted(services)[:2])}\"")
    raise ToolArgumentError(f"a negative {matcher.name} matcher selects services outside this incident; "
                            "name the services instead")
