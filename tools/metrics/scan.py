"""The metrics scan: which series exist, how much history there is, and the typed queries to read them.

One scan per investigation, in three steps:

1. **Discovery** in a few calls: the component names (label values of service/job/app), every
   series of the wanted components and the host series node_exporter serves (``/api/v1/series``),
   and the declared metric types (``/api/v1/metadata``, ``# TYPE`` lines).
2. **Timing**: when the history starts and how often it is scraped (two small queries), from which
   the step, the baseline and the window actually used follow. A young stack gets a shorter
   baseline and a finer step, and the result says so in plain words (``limits``); the day-earlier
   range is fetched only where data exists.
3. **Typed queries**, batched by metric across components (``job=~"a|b|c"``): gauges and summary
   quantiles as levels in one query per discovery label; counters through ``rate()``; request
   counters as request rate and 5xx share (an absent error series reads as 0); histograms as p99;
   host series through a few curated queries per host. Context series (``up``, ``*_info``,
   ``*_created``, scrape and runtime internals) are never read.

Every returned series carries the query that gives exactly its numbers (the batch restricted to its
labels), so a responder who clicks the evidence sees what Sleuth saw.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from tools.metrics.catalog import DEFAULT_SIGNALS, GENERIC, classify
from tools.http import SourceError
from tools.metrics.types import (
    ERROR_STATUS, HOST_QUERIES, declared_type, host_component, host_of, is_host_series, reading_of, rate_window, regex_of,
    status_label,
)
from tools.metrics.backends import MetricsBackend, Series, escape_value, pod_regex, selector_for
from tools.timeparse import MAX_POINTS  # Prometheus refuses a range query with more points per series

COMPONENT_LABELS = ("service", "job", "app")
MIN_BASELINE_POINTS = 10  # the detector needs this many baseline points
MAX_COUNTER_FAMILIES = 100  # counter families read per investigation, most relevant first
DAY_S = 86400.0
SEL = "{sel}"


@dataclass
class Timing:
    """The time frame actually investigated (what the history allowed)."""

    window_start: float
    baseline_s: float
    step_s: float
    fetch_start: float
    rate: str  # the rate() window, e.g. "60s"
    scrape_interval_s: float | None = None
    history_start: float | None = None
    limits: list[str] = field(default_factory=list)


@dataclass
class ScanResult:
    series: dict[str, list[Series]] = field(default_factory=dict)  # component -> series
    signal_names: dict[str, str] = field(default_factory=dict)  # per-series query -> catalog signal
    links: dict[str, str] = field(default_factory=dict)
    known: list[str] = field(default_factory=list)  # component names seen in the labels
    hosts: dict[str, list[str]] = field(default_factory=dict)  # node:<host> -> services on it
    queries: int = 0
    notes: list[str] = field(default_factory=list)
    timing: Timing | None = None


@dataclass
class _Planned:
    """One query to run. ``template`` holds ``{sel}`` where the component matcher goes."""

    template: str
    label: str | None  # the label whose value names the component (None: ``component`` is fixed)
    values: list[str]  # the components it covers
    signal: str | None = None  # the catalog signal its series measure (None: by metric name)
    component: str | None = None
    per_series: str = "selector"  # how one result series' own query is written: selector | rate | template
    name: str = ""  # the metric name (for rate: results lose it)

    def query(self) -> str:
        if self.label is None:
            return self.template
        if len(self.values) == 1:
            return self.template.replace("{sel}", f'{self.label}="{escape_value(self.values[0])}"')
        return self.template.replace("{sel}", f'{self.label}=~"{regex_of(self.values)}"')


def _fmt_span(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _owner(labels: dict[str, str], components: set[str], pods: dict[str, re.Pattern]) -> tuple[str, str] | None:
    """(component, label) a series belongs to: the first of service, job, app naming a wanted
    component, else a pod of one."""
    for label in COMPONENT_LABELS:
        value = labels.get(label)
        if value in components:
            return value, label
    pod = labels.get("pod")
    if pod:
        for component, pattern in pods.items():
            if pattern.fullmatch(pod):
                return component, "pod"
    return None


def _pod_pattern(component: str) -> re.Pattern:
    return re.compile(pod_regex(component))


async def _timing(backend: MetricsBackend, probe: str | None, window_start: float, baseline_s: float,
                  at: float, configured_step: float, out: ScanResult) -> Timing:
    """How much history exists and how often it is sampled, and the frame that follows from them."""
    earliest_wanted = window_start - baseline_s - DAY_S
    history_start: float | None = None
    scrape: float | None = None
    limits: list[str] = []
    if probe:
        try:
            history_start, scrape = await _history(backend, probe, earliest_wanted, at, configured_step, out)
        except SourceError as exc:
            # The investigation goes on with the configured frame; the result says what is unknown.
            limits.append(f"could not tell how much metric history exists ({exc}); the configured window, "
                          "baseline and step are used as they are")
    return _frame(history_start, scrape, window_start, baseline_s, at, configured_step, limits)


async def _history(backend: MetricsBackend, probe: str, earliest_wanted: float, at: float,
                   configured_step: float, out: ScanResult) -> tuple[float | None, float | None]:
    """(when the history starts, or None when it reaches back as far as wanted; the scrape interval)."""
    history_start: float | None = None
    scrape: float | None = None
    coarse = max(configured_step, (at - earliest_wanted) / 240)
    out.queries += 1
    found = await backend.query_range(f"count({probe})", earliest_wanted, at, coarse)
    if found and found[0].timestamps.size:
        first = float(found[0].timestamps[0])
        if first > earliest_wanted + coarse / 2:
            # The history begins inside the range: find where to the second.
            out.queries += 1
            fine = await backend.query_range(f"count({probe})", first - coarse, first, max(1.0, coarse / 240))
            history_start = float(fine[0].timestamps[0]) if fine and fine[0].timestamps.size else first
        else:
            history_start = None  # there is data at least as far back as wanted
    out.queries += 1
    try:
        samples = await backend.raw_samples(probe, at, 600.0)
    except SourceError:
        samples = []
    gaps = [np.diff(ts) for ts in samples if ts.size >= 3]
    if gaps:
        scrape = float(np.median(np.concatenate(gaps)))
    return history_start, scrape


def _frame(history_start: float | None, scrape: float | None, window_start: float, baseline_s: float,
           at: float, configured_step: float, limits: list[str]) -> Timing:
    """The window, baseline and step the history allows, and sentences on what it limited."""
    window_s = at - window_start
    step = configured_step
    if history_start is not None and history_start > window_start - baseline_s:
        history = max(0.0, at - history_start)
        before_window = window_start - history_start
        floor_s = MIN_BASELINE_POINTS * (scrape or configured_step)
        if before_window >= max(floor_s, 0.0) and before_window >= 0:
            new_baseline = before_window
            limits.append(f"{_fmt_span(history)} of metric history: baseline shortened to "
                          f"{_fmt_span(new_baseline)} (configured {_fmt_span(baseline_s)})")
            baseline_s = new_baseline
        else:
            # The window reaches back before the history: the older half of what exists is the
            # baseline, the newer half the window searched for an onset.
            new_baseline = max(history / 2, min(floor_s, history * 0.75))
            baseline_s = new_baseline
            window_start = history_start + new_baseline
            window_s = at - window_start
            limits.append(f"{_fmt_span(history)} of metric history: baseline shortened to "
                          f"{_fmt_span(new_baseline)}, onset searched in the last {_fmt_span(window_s)}")
        if history < 2 * floor_s:
            limits.append(f"too little metric history ({_fmt_span(history)}) to tell a departure from normal")
    if history_start is not None and history_start > window_start - baseline_s - DAY_S + 60:
        if not any("day-earlier" in text for text in limits):
            limits.append("no day-earlier comparison (the history is shorter than a day plus the baseline)")
    # The step: no finer than the scrape interval, no coarser than configured, fine enough for the
    # detector's points in a short baseline or window, and within the backend's points per query.
    wanted = min(configured_step, baseline_s / (3 * MIN_BASELINE_POINTS), window_s / 20)
    step = max(scrape or 1.0, wanted)
    fetch_start = window_start - baseline_s - DAY_S
    if history_start is not None:
        fetch_start = max(fetch_start, math.floor(history_start))
    step = max(step, (at - fetch_start) / MAX_POINTS)
    step = float(math.ceil(step))
    # Points on whole multiples of the step counted back from ``at``, as for a full history: the
    # grid does not shift with where the history happens to begin.
    fetch_start = at - math.floor((at - fetch_start) / step) * step
    if step < configured_step and limits:
        limits[0] += f"; step {step:.0f} s"
    return Timing(window_start, baseline_s, step, fetch_start, rate_window(scrape or step, step), scrape,
                  history_start, limits)


def _sel(name: str, extra: str = "") -> str:
    """``name{<component matcher>[,extra]}``; the matcher is filled in per batch or per component."""
    return name + "{" + SEL + ("," + extra if extra else "") + "}"


def _counts_up(series: Series) -> bool:
    """An untyped series that behaves like a counter: it never goes down (but for a reset to a
    smaller value) and grows at most steps. Exporters that cannot type a value (``untyped``:
    "time spent executing statements, in ms") still count."""
    values = series.values[np.isfinite(series.values)]
    if len(values) < 10 or values.min() < 0:
        return False
    steps = np.diff(values)
    falls = steps < 0
    resets = falls & (values[1:] < 0.5 * values[:-1])  # a restart starts again from near zero
    return bool((falls & ~resets).sum() == 0 and resets.sum() <= 2 and (steps > 0).mean() >= 0.5)


def _as_rate(series: Series) -> None:
    """Read a cumulative series as its per-second increase, a reset counting from zero."""
    keep = np.isfinite(series.values)
    ts, values = series.timestamps[keep], series.values[keep]
    steps = np.diff(values)
    steps = np.where(steps < 0, values[1:], steps)
    series.timestamps, series.values = ts[1:], steps / np.maximum(np.diff(ts), 1e-9)
    series.query = f"rate({series.selector}[{int(np.median(np.diff(ts)))}s])"


def _plan(by_component: dict[str, list[dict[str, str]]], label_of: dict[str, str], declared: dict[str, str],
          rate: str, focus: set[str]) -> list[_Planned]:
    """Typed queries for every component's series, batched by metric across components."""
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)  # (metric, discovery label) -> components
    label_sets: dict[str, list[dict[str, str]]] = defaultdict(list)
    for component, sets in by_component.items():
        for labels in sets:
            name = labels.get("__name__", "")
            groups[(name, label_of[component])].add(component)
            label_sets[name].append(labels)
    readings = {name: reading_of(name, {k for s in sets for k in s}, declared) for name, sets in label_sets.items()}
    planned: list[_Planned] = []
    gauges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # label -> metric -> comps
    counters: list[tuple[tuple, _Planned]] = []
    with_requests: set[str] = set()  # components whose request counter already gives the request rate
    for (name, label), comps in sorted(groups.items()):
        reading, values = readings[name], sorted(comps)
        if reading == "level":
            gauges[label][name] |= comps
        elif reading == "rate" and (status := status_label(label_sets[name])):
            total = f"sum by ({label}) (rate({_sel(name)}[{rate}]))"
            failed = _sel(name, status + '=~"' + ERROR_STATUS + '"')
            errors = f"sum by ({label}) (rate({failed}[{rate}]))"
            planned.append(_Planned(total, label, values, "request_rate", per_series="template", name=name))
            # No error series yet (the client creates it on the first 5xx) reads as a ratio of 0.
            planned.append(_Planned(f"({errors} or 0 * {total}) / {total}", label, values, "error_rate",
                                    per_series="template", name=name))
            with_requests |= comps
        elif reading == "rate":
            signal = classify(name)
            priority = (not (comps & focus), signal is GENERIC, name)
            counters.append((priority, _Planned(f"rate({_sel(name)}[{rate}])", label, values,
                                                per_series="rate", name=name)))
        elif reading == "histogram":
            family = name[: -len("_bucket")]
            signal = classify(family)
            planned.append(_Planned(f"histogram_quantile(0.99, sum by ({label}, le) (rate({_sel(name)}[{rate}])))",
                                    label, values, signal.name if signal is not GENERIC else None,
                                    per_series="template", name=f"{family} p99"))
    for (name, label), comps in sorted(groups.items()):
        names_left = sorted(comps - with_requests)
        if readings[name] == "summary_count" and names_left:
            planned.append(_Planned(f"sum by ({label}) (rate({_sel(name)}[{rate}]))", label, names_left,
                                    "request_rate", per_series="template", name=name))
    for label, names in sorted(gauges.items()):
        members = sorted(set().union(*names.values()))
        planned.append(_Planned("{" + SEL + f',__name__=~"{regex_of(names)}"' + "}", label, members))
    counters.sort(key=lambda item: item[0])
    planned += [p for _, p in counters[:MAX_COUNTER_FAMILIES]]
    return planned


def _restricted(planned: _Planned, component: str) -> str:
    if planned.label is None:
        return planned.template
    return planned.template.replace("{sel}", f'{planned.label}="{escape_value(component)}"')


def _catalog_names(query: str) -> set[str]:
    return {m for m in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", query)}


def _by_distance(named: str | None, services: dict, names: list[str]) -> list[str]:
    """``names`` nearest first to the named service through the topology (what it depends on and
    what depends on it, at any depth), the rest after them in name order."""
    if not named:
        return sorted(names)
    links: dict[str, set[str]] = defaultdict(set)
    for name, svc in services.items():
        for dep in getattr(svc, "depends_on", []) or []:
            links[name].add(dep)
            links[dep].add(name)
    distance = {named: 0}
    frontier = [named]
    while frontier:
        nxt = []
        for name in frontier:
            for other in sorted(links[name]):
                if other not in distance:
                    distance[other] = distance[name] + 1
                    nxt.append(other)
        frontier = nxt
    return sorted(names, key=lambda n: (distance.get(n, len(distance) + 1), n))


async def scan(backend: MetricsBackend, *, window_start: float, baseline_s: float, at: float,
               configured_step: float, service: str | None, symptom: str, services: dict,
               max_components: int, components: list[str] | None = None) -> ScanResult:
    """Discover, time and read the metrics of an investigation (see the module docstring).

    ``services`` is sleuth.yml's ``services:`` (depends_on, custom signals); ``components`` limits
    the scan to those names (None: every component found)."""
    out = ScanResult()
    discover_start = window_start - baseline_s
    # 1. Discovery: names, series, types.
    out.queries += len(COMPONENT_LABELS)
    names: set[str] = set()
    for values in await asyncio.gather(*(backend.label_values(label, discover_start, at) for label in COMPONENT_LABELS)):
        names.update(values)
    wanted = sorted(names | set(services)) if components is None else list(components)
    named = service or _named_in(symptom, names | set(services))
    deps = list(services[named].depends_on) if named in services else []
    ordered = list(dict.fromkeys(([named] if named else []) + deps + _by_distance(named, services, wanted)))
    matchers = [f'{{{label}=~"{regex_of(ordered)}"}}' for label in COMPONENT_LABELS] if ordered else []
    if ordered:
        matchers.append(f'{{pod=~"{escape_value("|".join(pod_regex(c) for c in ordered))}"}}')
    host_names = sorted({n for q in HOST_QUERIES for n in q.requires})
    matchers += [f'{{__name__="{n}"}}' for n in host_names]
    out.queries += 2
    label_sets, declared = await asyncio.gather(backend.series(matchers, discover_start, at), _metadata(backend))
    # Series without a name cannot be typed or queried; keep the rest.
    label_sets = [labels for labels in label_sets if labels.get("__name__")]
    anywhere = {labels["__name__"] for labels in label_sets}
    component_set = set(ordered)
    pods = {c: _pod_pattern(c) for c in ordered}
    by_component: dict[str, list[dict[str, str]]] = defaultdict(list)
    label_of: dict[str, str] = {}
    host_metrics: set[str] = set()
    hosts_of: dict[str, set[str]] = defaultdict(set)
    exporters: set[str] = set()  # components that serve host series: a host's exporter, not a service
    for labels in label_sets:
        if is_host_series(labels):
            host_metrics.add(labels["__name__"])
            owner = _owner(labels, component_set, pods)
            if owner:
                exporters.add(owner[0])
            continue
        owner = _owner(labels, component_set, pods)
        if owner is None:
            continue
        component, label = owner
        by_component[component].append(labels)
        label_of.setdefault(component, label)
        host = host_of(labels)
        if host:
            hosts_of[host].add(component)
    # A component seen only through its exporter's series (job="node": node_* plus the exporter's
    # own process and runtime series) is a host, read through the host queries.
    for component in exporters - set(services):
        by_component.pop(component, None)
    out.known = sorted(c for c in names if c in by_component or c in services)
    found = [c for c in ordered if c in by_component]
    scanned, left_out = found[:max_components], found[max_components:]
    by_component = {c: by_component[c] for c in scanned}
    # A component found by a label other than its first (job here, service there) is queried by the
    # label most of its series carry.
    for component in scanned:
        counts: dict[str, int] = defaultdict(int)
        for labels in by_component[component]:
            owner = _owner(labels, {component}, {component: pods[component]})
            if owner:
                counts[owner[1]] += 1
        label_of[component] = max(sorted(counts), key=lambda k: counts[k]) if counts else "job"
        by_component[component] = [labels for labels in by_component[component]
                                   if labels.get(label_of[component]) == component
                                   or (label_of[component] == "pod" and pods[component].fullmatch(labels.get("pod", "")))]

    # 2. Timing.
    probe = None
    if any(labels.get("__name__") == "up" for sets in by_component.values() for labels in sets):
        probe = "up"
    elif by_component:
        first = sorted(sets[0]["__name__"] for sets in by_component.values() if sets)
        probe = first[0] if first else None
    timing = await _timing(backend, probe, window_start, baseline_s, at, configured_step, out)
    out.timing = timing
    if left_out:
        shown = ", ".join(left_out[:8]) + (", ..." if len(left_out) > 8 else "")
        timing.limits.append(f"{len(left_out)} components not scanned, the farthest from "
                             f"{named or 'the symptom'} (investigation.max_components is {max_components}): {shown}")
    start, step, rate = timing.fetch_start, timing.step_s, timing.rate

    # 3. Queries.
    focus = {c for c in ([named] if named else []) + deps}
    planned = _plan(by_component, label_of, declared, rate, focus)
    counters_found = len({p.name for p in planned if p.per_series == "rate"})
    for component in scanned:
        custom = services[component].signals if component in services else {}
        catalog = dict(custom)
        if component in focus:
            have = {labels["__name__"] for labels in by_component.get(component, [])}
            for signal in DEFAULT_SIGNALS:
                query = signal.query_for(component)
                if not query or signal.name in catalog:
                    continue
                # Typed discovery already reads these series, or none of them exists: either way
                # the catalog's query adds nothing.
                names = _catalog_names(query)
                if names & have or names.isdisjoint(anywhere):
                    continue
                catalog[signal.name] = query.replace("[5m]", f"[{rate}]")
        for name, query in catalog.items():
            planned.append(_Planned(query, None, [component], name, component=component, per_series="template"))
    if host_metrics:
        for host_query in HOST_QUERIES:
            if all(n in host_metrics for n in host_query.requires):
                planned.append(_Planned(host_query.promql.replace("{rate}", rate).replace(
                    "{sel}", 'instance=~".+"'), None, [], host_query.signal, per_series="host"))
    limit = asyncio.Semaphore(8)

    async def run(item: _Planned) -> None:
        query = item.query()
        async with limit:
            out.queries += 1
            try:
                found = await backend.query_range(query, start, at, step)
            except SourceError as exc:
                if item.component is not None and "not supported" in str(exc):
                    out.notes.append(f"{item.component}: {exc}")
                    return
                raise
        for series in found:
            if item.per_series == "host":
                host = host_of(series.labels)
                if not host:
                    continue
                component = host_component(host)
                series.query = query.replace('instance=~".+"', f'instance="{escape_value(series.labels["instance"])}"') \
                    if "instance" in series.labels else query
            else:
                component = item.component or series.labels.get(item.label or "", "")
                if item.label == "pod":
                    component = next((c for c in item.values if pods[c].fullmatch(series.labels.get("pod", ""))), "")
                if not component:
                    continue
                if item.per_series == "selector":
                    series.query = series.selector
                    if declared_type(series.name, declared) is None and _counts_up(series):
                        _as_rate(series)
                elif item.per_series == "rate":
                    series.labels = {"__name__": item.name, **series.labels}
                    series.query = f"rate({selector_for(series.labels)}[{rate}])"
                else:
                    series.query = query if item.component else _restricted(item, component)
            out.series.setdefault(component, []).append(series)
            if item.signal:
                out.signal_names[series.query] = item.signal
            link = backend.link(series.query, start, at)
            if link:
                out.links[series.query] = link

    await asyncio.gather(*(run(p) for p in planned))
    out.hosts = {host_component(h): sorted(c for c in comps if c in by_component)
                 for h, comps in sorted(hosts_of.items())}
    if counters_found >= MAX_COUNTER_FAMILIES:
        out.notes.append(f"read the {MAX_COUNTER_FAMILIES} most relevant counter families, not all")
    return out


async def _metadata(backend: MetricsBackend) -> dict[str, str]:
    try:
        return await backend.metadata()
    except SourceError:
        return {}  # compatible backends without the metadata API: naming conventions decide


def _named_in(symptom: str, names: Iterable[str]) -> str | None:
    """A component the symptom names ("checkout is returning 500s" -> checkout), longest first."""
    text = symptom.lower()
    for name in sorted(names, key=len, reverse=True):
        if name and re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", text):
            return name
    return None
