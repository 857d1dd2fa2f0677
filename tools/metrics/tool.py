"""The metrics source's model tool: ``query_metrics``, a guarded PromQL range query over the incident,
summarised for the model with Sleuth's own finding (departed, normal, unclear, no_data)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.compaction import cap, raw_chars
from tools.diagnosis import iso
from tools.http import SourceError
from tools.metrics.backends import open_backend, parse_selector
from tools.metrics.compact import compact_series
from tools.metrics.guard import SERVICE_LABELS, check_promql
from tools.source_api import ToolArguments, ToolContext, ToolResult


class QueryMetrics(ToolArguments):
    promql: str = Field(description="a PromQL expression")


def query_metrics(ctx: ToolContext, args: QueryMetrics) -> ToolResult:
    from tools.metrics.types import rate_window, typed_query

    scope = ctx.scope
    query = check_promql(args.promql, scope)
    backend = open_backend(ctx.settings.metrics)
    if backend is None:
        raise SourceError("no metrics backend is configured")
    step = ctx.settings.metrics.step_s
    note = ""

    async def fetch():
        nonlocal query, note
        try:
            matchers = parse_selector(query)
            if matchers:
                # A counter or a histogram asked for as a plain selector is read by its type,
                # as the investigation reads it: a raw counter only ever rises.
                try:
                    declared = await backend.metadata()
                except SourceError:
                    declared = {}
                query, note = typed_query(query, matchers, declared, rate_window(step / 4, step))
            return await backend.query_range(query, scope.start, scope.end, step)
        finally:
            await backend.aclose()

    found = ctx.run(fetch())
    raw = [{"labels": s.labels, "values": [[float(t), float(v)] for t, v in zip(s.timestamps, s.values)]}
           for s in found]
    compact = compact_series(raw, window_start=scope.window_start, cap_chars=ctx.cap_chars)
    if not raw:
        summary = f"{query}: no series in {iso(scope.start)}..{iso(scope.end)}"
    else:
        summary = f"{query}: {len(raw)} series; " + series_headline(compact)
    if note:
        summary = f"{summary} ({note})"
        compact = {"note": note, **compact} if isinstance(compact, dict) else compact
    link = backend.link(query, scope.start, scope.end)
    finding = series_finding(compact, raw)
    components = sorted({str(s["labels"].get(label)) for s in raw for label in SERVICE_LABELS
                         if s["labels"].get(label) in (scope.services or [])})
    summary = f"{summary} [{finding}]"
    return ToolResult("query_metrics", {"promql": query}, cap(compact, ctx.cap_chars), raw_chars(raw),
                      {"source": "metrics", "query": query, "summary": summary, "link": link,
                       "component": components[0] if len(components) == 1 else None,
                       "details": {"compact": compact, "finding": finding, "components": components}})


DEPARTED_Z = 6.0  # a series this far (smoothed robust z) from its baseline departed
NORMAL_Z = 3.0  # every series this close stayed normal


def series_finding(compact: dict[str, Any], raw: list[dict[str, Any]]) -> str:
    """What a query's answer shows, computed by Sleuth: departed, normal, unclear or no_data."""
    if not raw or not any(s["values"] for s in raw):
        return "no_data"
    items = compact.get("series") or []
    scores = [float(item.get("departure") or 0.0) for item in items if item.get("n")]
    if not scores or any("departure" not in item for item in items if item.get("n")):
        return "unclear"  # no baseline to compare against
    if max(scores) >= DEPARTED_Z:
        return "departed"
    if max(scores) <= NORMAL_Z:  # series are ranked by departure: those left out departed less
        return "normal"
    return "unclear"


def series_headline(compact: dict[str, Any]) -> str:
    """One line from a compacted series answer: the most departed series and its ratio."""
    items = compact.get("series") or []
    if not items:
        return "no data"
    first = items[0]
    labels = first.get("labels") or {}
    name = labels.get("__name__", "")
    who = ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")[:80]
    ratio = first.get("ratio")
    window_mean = first.get("window_mean")
    baseline = first.get("baseline_mean")
    parts = [f"{name}{{{who}}}" if who else name or "series"]
    if baseline is not None and window_mean is not None:
        parts.append(f"window mean {window_mean:.4g} vs baseline {baseline:.4g}")
    if ratio is not None:
        parts.append(f"ratio {ratio:.3g}")
    return ", ".join(parts)
