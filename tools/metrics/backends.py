"""Metrics evidence: the Prometheus HTTP API, and an embedded backend over OpenMetrics text.

Both backends answer the same four questions (range query, instant query, series discovery, label
values) with the same semantics, so an investigation reads the same numbers from either: a range
query is evaluated at ``start + k*step``, each point taking the latest sample at or before it
within Prometheus's 5-minute lookback.
"""

from __future__ import annotations

import os
import threading

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np
from pydantic import BaseModel, Field, model_validator

from tools.http import HttpSourceConfig, SourceError, make_client, request_json
from tools.links import grafana_explore, prometheus_graph
from tools.timeparse import in_range, step_for, to_seconds

LOOKBACK_S = 300.0
DISCOVERY_LABELS = ("service", "job", "app", "pod", "namespace")


@dataclass
class Series:
    """One time series as returned by a range query."""

    labels: dict[str, str]
    timestamps: np.ndarray
    values: np.ndarray
    query: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def selector(self) -> str:
        return selector_for(self.labels)

    @property
    def title(self) -> str:
        """How a person reads it: the typed query (``rate(...)``) where there is one, else the selector."""
        return self.query if self.query and parse_selector(self.query) is None else self.selector


def selector_for(labels: dict[str, str]) -> str:
    """The plain selector that picks exactly this label set: ``name{a="x",b="y"}``."""
    name = labels.get("__name__", "")
    pairs = ",".join(
        f'{key}="{escape_value(value)}"' for key, value in sorted(labels.items()) if key != "__name__"
    )
    return f"{name}{{{pairs}}}" if pairs or not name else name


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- plain selectors -------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf"^\s*(?P<name>{_NAME})?\s*(?:\{{(?P<body>.*)\}})?\s*$", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)'
)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit


def parse_selector(query: str) -> list[Matcher] | None:
    """Matchers of a plain selector (``name{l="v",m=~"re"}``), or None for anything else."""
    found = _SELECTOR.match(query)
    if not found or (not found.group("name") and found.group("body") is None):
        return None
    matchers: list[Matcher] = []
    if found.group("name"):
        matchers.append(Matcher("__name__", "=", found.group("name")))
    body = (found.group("body") or "").strip()
    position = 0
    while position < len(body):
        part = _MATCHER.match(body, position)
        if not part:
            return None
        value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), part.group("value"))
        matchers.append(Matcher(part.group("label"), part.group("op"), value))
        position = part.end()
    if not matchers:
        return None
    return matchers


# --- backends ---------------------------------------------------------------------------------


class MetricsBackend(Protocol):
    name: str

    async def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]: ...

    async def query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]: ...

    async def series(self, matchers: list[str], start: float, end: float) -> list[dict[str, str]]: ...

    async def label_values(self, label: str, start: float, end: float) -> list[str]: ...

    async def metadata(self) -> dict[str, str]: ...

    async def raw_samples(self, selector: str, at: float, range_s: float) -> list[np.ndarray]: ...

    def link(self, query: str, start: float, end: float) -> str | None: ...

    async def aclose(self) -> None: ...


class LinkConfig(BaseModel):
    """Where a human opens a query: Grafana Explore (preferred when set) or Prometheus's graph."""

    model_config = {"extra": "forbid"}

    grafana_url: str | None = None
    grafana_datasource: str | None = Field(None, description="datasource uid for Explore links")
    prometheus_url: str | None = Field(None, description="public URL of Prometheus, if not the API URL")


def query_link(links: LinkConfig, api_url: str | None, query: str, start: float, end: float) -> str | None:
    if links.grafana_url:
        return grafana_explore(links.grafana_url, links.grafana_datasource or "prometheus", query, start, end)
    base = links.prometheus_url or api_url
    return prometheus_graph(base, query, start, end) if base else None


class PrometheusBackend:
    """The Prometheus HTTP API (also Thanos, Mimir, VictoriaMetrics)."""

    name = "prometheus"

    def __init__(self, config: HttpSourceConfig, links: LinkConfig | None = None) -> None:
        self.config = config
        self.links = links or LinkConfig()
        self.client = make_client(config)

    async def _get(self, path: str, params: list[tuple[str, str]] | dict) -> object:
        payload = await request_json(self.client, self.config, "Prometheus", "GET", path, params=params)
        if not isinstance(payload, dict) or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else None
            raise SourceError(f"Prometheus refused the query: {error or 'unexpected answer'}")
        return payload.get("data")

    async def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        # Prometheus refuses more than 11,000 points per series: a long span gets a coarser step.
        step = step_for(start, end, step)
        data = await self._get(
            "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step}
        )
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise SourceError("Prometheus answered a range query without data.result")
        out = []
        for item in data["result"]:
            try:
                pairs = item["values"]
                ts = np.array([float(p[0]) for p in pairs], dtype=float)
                vals = np.array([float(p[1]) for p in pairs], dtype=float)
                out.append(Series(dict(item.get("metric", {})), ts, vals, query))
            except (AttributeError, KeyError, TypeError, ValueError, IndexError):
                raise SourceError("Prometheus answered a range series that is not a label set with "
                                  "[time, value] pairs") from None
        return out

    async def query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        data = await self._get("/api/v1/query", {"query": query, "time": at})
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            return []
        if not isinstance(data.get("result"), list):
            raise SourceError("Prometheus answered an instant query without a result list")
        try:
            return [(dict(i.get("metric", {})), float(i["value"][1])) for i in data["result"]]
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise SourceError("Prometheus answered an instant query with a malformed sample") from None

    async def series(self, matchers: list[str], start: float, end: float) -> list[dict[str, str]]:
        params = [("match[]", m) for m in matchers] + [("start", str(start)), ("end", str(end))]
        data = await self._get("/api/v1/series", params)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise SourceError("Prometheus answered a series query without a list of label sets")
        return [{str(k): str(v) for k, v in item.items()} for item in data]

    async def label_values(self, label: str, start: float, end: float) -> list[str]:
        data = await self._get(f"/api/v1/label/{label}/values", {"start": start, "end": end})
        if data is not None and not isinstance(data, list):
            raise SourceError(f"Prometheus answered the values of {label} without a list")
        return sorted(str(v) for v in data or [])

    async def metadata(self) -> dict[str, str]:
        """Each metric family's declared type (counter, gauge, histogram, summary, ...), from what
        the scraped targets said; empty where the backend keeps no metadata (backfilled blocks)."""
        data = await self._get("/api/v1/metadata", {})
        if not isinstance(data, dict):
            return {}
        return {str(name): str(entries[0].get("type", "unknown")) for name, entries in data.items()
                if isinstance(entries, list) and entries and isinstance(entries[0], dict)}

    async def raw_samples(self, selector: str, at: float, range_s: float) -> list[np.ndarray]:
        """Timestamps of the raw samples of ``selector`` in (at - range_s, at]: how often it is scraped."""
        data = await self._get("/api/v1/query", {"query": f"{selector}[{int(range_s)}s]", "time": at})
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            return []
        out = []
        for item in data.get("result") or []:
            try:
                out.append(np.array([float(p[0]) for p in item["values"]], dtype=float))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise SourceError(f"Prometheus answered malformed samples ({exc})") from exc
        return out

    def link(self, query: str, start: float, end: float) -> str | None:
        return query_link(self.links, self.config.url, query, start, end)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class _StoredSeries:
    labels: dict[str, str]
    timestamps: np.ndarray
    values: np.ndarray


# OpenMetrics text, read line by line. prometheus_client's parser is written for one scrape: it
# rejects a histogram family holding several timestamped points (it reports the +Inf bucket
# missing), which is exactly what a file of history for backfilling is. The grammar of a sample
# line is small: name, optional {labels}, value, optional timestamp, optional " # exemplar".
_SAMPLE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>(?:[^\"}}]|\"(?:[^\"\\]|\\.)*\")*)\}})?"
    r"\s+(?P<value>\S+)(?:\s+(?P<ts>[^\s#]+))?\s*(?:#.*)?$"
)
_LABEL = re.compile(r'\s*(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')
_TYPES = frozenset({"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"})


def _openmetrics_samples(lines: Iterable[str], types: dict[str, str], path: Path):
    """(labels with __name__, value, timestamp or None) for each sample line; ``types`` gets the
    ``# TYPE`` lines. A malformed line is a SourceError naming the file and line."""
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if parts[:2] == ["#", "EOF"]:
                return
            if len(parts) >= 4 and parts[1] == "TYPE" and parts[3] in _TYPES:
                types[parts[2]] = parts[3]
            continue
        found = _SAMPLE.match(line)
        try:
            if not found:
                raise ValueError("not a sample line")
            labels = {"__name__": found.group("name")}
            body, position = found.group("labels") or "", 0
            while position < len(body):
                pair = _LABEL.match(body, position)
                if not pair:
                    raise ValueError("malformed labels")
                labels[pair.group("key")] = re.sub(
                    r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), pair.group("value"))
                position = pair.end()
            value = float(found.group("value"))
            stamp = float(found.group("ts")) if found.group("ts") else None
            if stamp is not None:
                # OpenMetrics writes seconds, Prometheus' text format milliseconds: read by magnitude.
                stamp = to_seconds(stamp)
                if not in_range(stamp):
                    raise ValueError("the timestamp is not a time between 1970 and 2100")
        except ValueError as exc:
            raise SourceError(f"metrics file {path} is not valid OpenMetrics text: line {number}: {exc}: "
                              f"{line[:120]!r}") from exc
        yield labels, value, stamp


# Parsed files, keyed by (path, size, mtime) of each: an investigation, its follow-ups and the
# agent's tools read the same files again and again; a file that changes is parsed again.
_PARSED: dict[tuple, tuple[list[_StoredSeries], dict[str, str]]] = {}
_PARSED_MAX = 8
_PARSING = threading.Lock()  # concurrent investigations wait for one parse rather than each doing it


def _files_key(paths: list[Path]) -> tuple | None:
    try:
        return tuple((str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
    except OSError:
        return None  # let the load report the unreadable file


@dataclass
class EmbeddedBackend:
    """Answers PromQL over OpenMetrics text files, with Prometheus's evaluation rules.

    Every type of the format is accepted (gauges, counters, histograms, summaries); ``# TYPE`` lines
    are the metadata. Plain selectors are answered directly; anything else goes to the evaluator
    (tools/promql_eval/), which follows Prometheus 2.42's semantics (rate's extrapolation and
    reset handling, histogram_quantile's interpolation, NaN in aggregations). Loaded once per instance;
    the demo and the bundled scenarios need no server.
    """

    paths: list[Path]
    links: LinkConfig = field(default_factory=LinkConfig)
    name: str = "embedded"
    _series: list[_StoredSeries] | None = None
    _types: dict[str, str] = field(default_factory=dict)

    def _load(self) -> list[_StoredSeries]:
        if self._series is None:
            files = _files_key(self.paths)
            with _PARSING:
                if files is not None and files in _PARSED:
                    self._series, self._types = _PARSED[files]
                    return self._series
                self._series, self._types = self._parse()
                if files is not None:
                    while len(_PARSED) >= _PARSED_MAX:
                        _PARSED.pop(next(iter(_PARSED)))
                    _PARSED[files] = (self._series, self._types)
        return self._series

    def _parse(self) -> tuple[list[_StoredSeries], dict[str, str]]:
        collected: dict[tuple, tuple[list[float], list[float], dict[str, str]]] = {}
        types: dict[str, str] = {}
        for path in self.paths:
            try:
                with open(path, encoding="utf-8") as handle:
                    for labels, value, stamp in _openmetrics_samples(handle, types, path):
                        if stamp is None:
                            continue
                        series_key = tuple(sorted(labels.items()))
                        ts_list, val_list, _ = collected.setdefault(series_key, ([], [], labels))
                        ts_list.append(stamp)
                        val_list.append(value)
            except OSError as exc:
                raise SourceError(f"cannot read metrics file {path}: {exc.strerror or exc}") from exc
            except UnicodeDecodeError as exc:
                raise SourceError(f"metrics file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        stored = []
        for ts_list, val_list, labels in collected.values():
            order = np.argsort(np.asarray(ts_list), kind="stable")
            stored.append(_StoredSeries(labels, np.asarray(ts_list)[order], np.asarray(val_list)[order]))
        return stored, types

    def span(self) -> tuple[float, float] | None:
        """(first, last) sample time over the files; None when they hold no timestamped sample."""
        series = [s for s in self._load() if len(s.timestamps)]
        if not series:
            return None
        return min(float(s.timestamps[0]) for s in series), max(float(s.timestamps[-1]) for s in series)

    def _select(self, query: str) -> list[_StoredSeries]:
        matchers = parse_selector(query)
        if matchers is None:
            raise SourceError(f"the embedded metrics backend cannot select {query!r}")
        return [s for s in self._load() if all(m.matches(s.labels) for m in matchers)]

    async def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        if step <= 0:
            raise SourceError("a range query needs a positive step")
        grid = start + step * np.arange(int(math.floor((end - start) / step)) + 1)
        if parse_selector(query) is not None:
            return [Series(labels, ts, values, query) for labels, ts, values in self._evaluate(query, grid)]
        from tools.promql_eval import UnsupportedQuery, evaluate_range

        stored = [(s.labels, s.timestamps, s.values) for s in self._load()]
        try:
            found = evaluate_range(query, stored, grid, LOOKBACK_S)
        except UnsupportedQuery as exc:
            raise SourceError(f"the embedded metrics backend does not support this query: {exc}") from exc
        except ValueError as exc:
            raise SourceError(f"bad PromQL {query!r}: {exc}") from exc
        return [Series(labels, ts, values, query) for labels, ts, values in found]

    def _evaluate(self, query: str, grid: np.ndarray) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        out = []
        for stored in self._select(query):
            idx = np.searchsorted(stored.timestamps, grid, side="right") - 1
            valid = idx >= 0
            valid[valid] &= (grid[valid] - stored.timestamps[idx[valid]]) <= LOOKBACK_S
            values = stored.values[idx[valid]]
            if values.size:
                out.append((dict(stored.labels), grid[valid].copy(), values.copy()))
        return out

    async def query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        return [
            (s.labels, float(s.values[-1]))
            for s in await self.query_range(query, at, at, 1.0)
        ]

    async def series(self, matchers: list[str], start: float, end: float) -> list[dict[str, str]]:
        seen: dict[tuple, dict[str, str]] = {}
        for matcher in matchers:
            for stored in self._select(matcher):
                lo = np.searchsorted(stored.timestamps, start, side="left")
                if lo < stored.timestamps.size and stored.timestamps[lo] <= end:
                    seen[tuple(sorted(stored.labels.items()))] = dict(stored.labels)
        return list(seen.values())

    async def label_values(self, label: str, start: float, end: float) -> list[str]:
        labels = await self.series([f'{{{label}=~".+"}}'], start, end)
        return sorted({found[label] for found in labels})

    async def metadata(self) -> dict[str, str]:
        self._load()
        return dict(self._types)

    async def raw_samples(self, selector: str, at: float, range_s: float) -> list[np.ndarray]:
        out = []
        for stored in self._select(selector):
            keep = (stored.timestamps > at - range_s) & (stored.timestamps <= at)
            out.append(stored.timestamps[keep].copy())
        return out

    def link(self, query: str, start: float, end: float) -> str | None:
        return query_link(self.links, None, query, start, end)

    async def aclose(self) -> None:
        return None


# --- configuration ----------------------------------------------------------------------------


class MetricsConfig(BaseModel):
    """``metrics:`` in sleuth.yml: a Prometheus-compatible API, or OpenMetrics files."""

    model_config = {"extra": "forbid"}

    prometheus: HttpSourceConfig | None = None
    openmetrics: list[Path] = Field(default_factory=list, description="OpenMetrics text files")
    step_s: float = Field(60.0, gt=0, description="coarsest resolution of range queries; finer where the "
                                                  "scrape interval and a short history call for it")
    links: LinkConfig = Field(default_factory=LinkConfig)

    @model_validator(mode="after")
    def _one_backend(self) -> "MetricsConfig":
        if self.prometheus and self.openmetrics:
            raise ValueError("set either prometheus or openmetrics, not both")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.prometheus or self.openmetrics)


def open_backend(config: MetricsConfig) -> MetricsBackend | None:
    if config.prometheus:
        return PrometheusBackend(config.prometheus, config.links)
    if config.openmetrics:
        return EmbeddedBackend(list(config.openmetrics), config.links)
    return None


# Pods carry the workload name plus a generated suffix (a Deployment's "<hash>-<5>", a
# StatefulSet's ordinal), so "checkout" matches checkout-7d9f8c6b5-x2x9q but not checkout-db-0.
POD_SUFFIX = "-([a-z0-9]{4,10}-[a-z0-9]{5}|[0-9]+)"


def pod_regex(component: str) -> str:
    """The regex (Python's and PromQL's) of the pods of a workload named ``component``."""
    return re.escape(component) + POD_SUFFIX


def discovery_matchers(component: str, labels: Iterable[str] = DISCOVERY_LABELS) -> list[str]:
    """Selectors that find every series belonging to a component, by its usual labels."""
    value = escape_value(component)
    pod = escape_value(pod_regex(component))
    return [f'{{{label}=~"{pod}"}}' if label == "pod" else f'{{{label}="{value}"}}' for label in labels]
