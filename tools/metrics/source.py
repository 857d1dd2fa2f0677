"""The metrics source as the registry lists it: gathering for the investigation, and ``query_metrics``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.diagnosis import SourceReport, iso
from tools.metrics.backends import Series, open_backend, parse_selector
from tools.metrics.scan import scan
from tools.metrics.tool import QueryMetrics, query_metrics
from tools.source_api import GatherRequest, Gathered, ModelTool, Source, read_guidance


def describe(settings: Any) -> str:
    if settings.metrics.prometheus:
        return f"metrics (Prometheus at {settings.metrics.prometheus.url})"
    return "metrics (OpenMetrics files)"


def configured(settings: Any) -> bool:
    return settings.metrics.configured


async def gather(request: GatherRequest, found: Gathered) -> SourceReport:
    """Scan the metrics of the window and its baseline; the series found, by component."""
    settings = request.settings
    backend = open_backend(settings.metrics)
    if backend is None:
        return SourceReport("not_configured",
                                     "no metrics backend in the config (metrics.prometheus or metrics.openmetrics)")
    span: tuple[float, float] | None = None
    try:
        scanned = await scan(backend, window_start=request.window_start, baseline_s=request.baseline_s, at=request.at,
                           configured_step=settings.metrics.step_s, service=request.service, symptom=request.symptom,
                           services=settings.services, max_components=settings.investigation.max_components,
                           components=None)
        if not any(scanned.series.values()) and hasattr(backend, "span"):
            span = backend.span()
    finally:
        await backend.aclose()
    series = {component: distinct(scanned.series[component]) for component in sorted(scanned.series)}
    fields = {"series": series, "signal_names": dict(scanned.signal_names), "links": dict(scanned.links),
              "hosts": scanned.hosts}
    extras = {"known": list(scanned.known), "timing": scanned.timing}
    found.keep(fields, **extras)
    count = sum(len(v) for v in series.values())
    notes = "".join(f"; {note}" for note in scanned.notes)
    if not count:
        if span is not None and (span[1] < request.baseline_start or span[0] > request.at):
            notes += f"; the metrics files hold samples from {iso(span[0])} to {iso(span[1])}, outside it"
        elif span is None and hasattr(backend, "span"):
            notes += "; the metrics files hold no timestamped samples"
        return SourceReport("no_data", f"no series for {request.service or 'any service'} in the window{notes}",
                            queries=scanned.queries)
    return SourceReport("ok", f"{count} series from {len(series)} components via {backend.name}{notes}",
                        queries=scanned.queries)


def distinct(series_list: list[Series]) -> list[Series]:
    """Series in a stable order (answers arrive in any order), each distinct signal once.

    A catalog query over a single series (``avg(x{service="a"})``) returns the very numbers that
    discovery found as ``x{service="a"}``: the discovered one, with its full labels, is kept.
    """
    ordered = sorted(series_list, key=lambda s: (parse_selector(s.query) is None, s.selector, s.query))
    kept: list[Series] = []
    for series in ordered:
        if not any(k.timestamps.size == series.timestamps.size and np.array_equal(k.timestamps, series.timestamps)
                   and np.array_equal(k.values, series.values) for k in kept):
            kept.append(series)
    return kept


GUIDANCE = read_guidance(__file__)

SOURCE = Source(
    name="metrics", describe=describe, configured=configured, gather=gather,
    tools=(ModelTool("query_metrics", QueryMetrics, query_metrics, GUIDANCE["query_metrics"]),),
)
