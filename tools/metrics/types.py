"""What a series measures, by its type, and how to read it.

Real instrumentation is mostly cumulative: a counter (``*_total``) only ever rises, and falls to
zero when its process restarts; a histogram is a family of counters (``*_bucket`` per ``le``,
``*_count``, ``*_sum``); a summary adds pre-computed ``quantile`` gauges. Read as levels, every
counter "rises" all the time and every deploy looks like a collapse. So each series found by
discovery is typed first — from what the backend declares (Prometheus's ``/api/v1/metadata``,
``# TYPE`` lines of OpenMetrics files), otherwise from the naming conventions of the exposition
formats — and then read the way Prometheus's own documentation says it should be:

- gauge, summary quantile: the level itself;
- counter: ``rate()`` (resets are handled by ``rate``);
- request counter (a counter with a status-code label): the RED pair, request rate and the share of
  5xx, with an absent error series read as 0 (a client library creates the ``code="500"`` child on
  its first error, so before that there is no series at all);
- histogram: its p99 through ``histogram_quantile`` over the rate of ``*_bucket``, and its request
  rate from ``*_count`` where no request counter says the same;
- ``*_created``, ``*_info``, ``up``, build and scrape metadata, ``*_sum`` and language-runtime
  internals: context, never an anomaly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Literal

Reading = Literal["level", "rate", "histogram", "summary_count", "context"]

# Labels that carry a response status: a counter with one of them counts requests by outcome.
STATUS_LABELS = ("code", "status", "status_code", "http_status", "response_code", "http_code")
# Status values that are server errors.
ERROR_STATUS = "5.."

_CONTEXT = re.compile(
    r"^(up|scrape_.*|.*_created|.*_info|target_info|.*_build_info|process_start_time_seconds"
    r"|process_max_fds|process_virtual_memory_max_bytes|process_virtual_memory_bytes|python_gc_.*|python_info|go_.*|promhttp_.*"
    r"|.*_last_.*_timestamp(_seconds)?|.*_timestamp_seconds|.*_scrape_.*|.*_exporter_.*)$"
)
# Host-level series: node_exporter's. They belong to a host, not to a service.
HOST_PREFIX = "node_"


def family_of(name: str) -> tuple[str, str]:
    """(family, part): ``http_requests_total`` -> (``http_requests``, ``total``), ``x_bucket`` -> (x, bucket)."""
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created", "_info"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix[1:]
    return name, ""


def declared_type(name: str, declared: dict[str, str]) -> str | None:
    """The type the backend declares for this series' family, if it declares one."""
    family, _ = family_of(name)
    for key in (name, family):
        kind = declared.get(key)
        if kind and kind not in ("unknown", "untyped"):
            return kind
    return None


def reading_of(name: str, label_names: Iterable[str], declared: dict[str, str] | None = None) -> Reading:
    """How a series with this name (and these label names) is read."""
    labels = set(label_names)
    if _CONTEXT.match(name):
        return "context"
    kind = declared_type(name, declared or {})
    _, part = family_of(name)
    if kind == "histogram" or kind == "gaugehistogram" or (kind is None and part == "bucket" and "le" in labels):
        if part == "bucket":
            return "histogram"
        if part == "count":
            return "summary_count"
        return "context"  # _sum: only meaningful divided by _count, which the quantile already says
    if kind == "summary" or (kind is None and "quantile" in labels):
        if part == "count":
            return "summary_count"
        if part == "sum":
            return "context"
        return "level"  # the quantile gauges
    if kind == "counter" or (kind is None and part == "total"):
        return "rate"
    if kind is None and part in ("count", "sum"):
        # A _count/_sum pair without a declared type is a summary or histogram without its
        # buckets: cumulative all the same.
        return "summary_count" if part == "count" else "context"
    if kind in ("info", "stateset"):
        return "context"
    return "level"


def status_label(label_sets: Iterable[dict[str, str]]) -> str | None:
    """The status-code label a request counter's series carry, if any."""
    for labels in label_sets:
        for label in STATUS_LABELS:
            if label in labels:
                return label
    return None


def is_host_series(labels: dict[str, str]) -> bool:
    """node_exporter's series about a host. One relabelled with a service (``service``/``app``) is
    that service's own reading and stays with it."""
    return (labels.get("__name__", "").startswith(HOST_PREFIX)
            and not labels.get("service") and not labels.get("app"))


def host_of(labels: dict[str, str]) -> str | None:
    """The host a series was scraped from or describes: a node label, else the instance's host part."""
    for label in ("node", "nodename", "kubernetes_node", "host", "hostname"):
        if labels.get(label):
            return labels[label]
    instance = labels.get("instance", "")
    if not instance:
        return None
    if instance.startswith("["):  # [ipv6]:port
        return instance[1:].split("]", 1)[0]
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def host_component(host: str) -> str:
    return f"node:{host}"


@dataclass(frozen=True)
class HostQuery:
    """A curated reading of node_exporter's series: what saturates a host, per instance."""

    signal: str  # catalog signal it measures
    requires: tuple[str, ...]  # metric names that must exist
    promql: str  # {rate} is the rate window


HOST_QUERIES: tuple[HostQuery, ...] = (
    HostQuery("saturation", ("node_cpu_seconds_total",),
              '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[{rate}]))'),
    HostQuery("saturation", ("node_pressure_cpu_waiting_seconds_total",),
              "max by (instance) (rate(node_pressure_cpu_waiting_seconds_total[{rate}]))"),
    HostQuery("saturation", ("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"),
              "1 - max by (instance) (node_memory_MemAvailable_bytes) / max by (instance) (node_memory_MemTotal_bytes)"),
    HostQuery("saturation", ("node_filesystem_avail_bytes", "node_filesystem_size_bytes"),
              "max by (instance) (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)"),
)


def rate_window(scrape_interval_s: float, step_s: float) -> str:
    """The range of rate(): at least four scrapes (Prometheus's advice), and no shorter than a step."""
    seconds = int(max(4 * scrape_interval_s, step_s, 1))
    return f"{seconds}s"


def regex_of(values: Iterable[str]) -> str:
    """An anchored PromQL regex matching exactly these values."""
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in sorted(set(values)))


def typed_query(query: str, selector_matchers: list | None, declared: dict[str, str], rate: str) -> tuple[str, str]:
    """A plain selector rewritten to read its series by type, and a note saying so ("" if unchanged).

    ``selector_matchers`` are the selector's matchers (tools.metrics.parse_selector), None when
    the query is not a plain selector: then it is run as written."""
    if not selector_matchers:
        return query, ""
    names = [m.value for m in selector_matchers if m.label == "__name__" and m.op == "="]
    if len(names) != 1:
        return query, ""
    name = names[0]
    reading = reading_of(name, {m.label for m in selector_matchers}, declared)
    if reading in ("rate", "summary_count"):
        return (f"rate({query}[{rate}])",
                f"{name} is a counter: read as its per-second rate, resets handled (a raw counter only ever rises)")
    if reading == "histogram":
        return (f"histogram_quantile(0.99, rate({query}[{rate}]))",
                f"{name} is a histogram's buckets: read as the p99 of their rate")
    if reading == "context":
        return query, f"{name} is metadata (build, scrape or runtime information), not a health signal"
    return query, ""
