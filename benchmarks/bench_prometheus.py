"""Queries and time per diagnosis against a real Prometheus holding a 50-service stack.

Generates (fixed seed) an OpenMetrics file shaped like what prometheus_client and node_exporter
expose, scraped every 15 s for 4 hours: 50 services (job="<service>", 2 instances each on 10
hosts) with http_requests_total{method,path,code}, the default-bucket
http_request_duration_seconds histogram, the *_created gauges, process_* and python_gc_* series,
app_build_info and up; node_exporter's cpu, memory, load, filesystem and network series per host.
A few services restart once (counters back to zero, a new process_start_time_seconds); a few get
a code="500" child only from their first error on. The incident: checkout is deployed 21 minutes
before the end (its instances restart on the new version) and from 20 minutes before the end 30%
of its requests fail, the code="500" child appearing at that moment.

The file is backfilled with `promtool tsdb create-blocks-from openmetrics` into a temporary
directory and served by `prometheus` on 127.0.0.1 for the run; then `sleuth diagnose`'s
investigation (bot.investigate.investigate, with a sleuth.yml written for it: the Prometheus URL,
window 1h, baseline 3h, a changes file holding the deploys, and source_timeout 120s so that a slow
metrics source is measured rather than abandoned) answers "checkout is returning 500s" at the end
of the data, RUNS times (3). Requests are counted by Prometheus itself
(prometheus_http_requests_total and prometheus_http_response_size_bytes_sum per handler, read from
its /metrics before and after each diagnosis), beside the investigation's own count.

Prints series stored, range queries and HTTP requests per diagnosis, bytes received, wall time
per diagnosis (median, min), the top hypothesis and whether the onset is within 1 minute of the
truth. Goal: <= 3 s and <= 300 queries (HTTP requests to Prometheus) per diagnosis. One run is
capped at 120 s. Exits 0 when the goal is missed (MISSED), 1 when prometheus or promtool is missing.

Usage: python3 benchmarks/bench_prometheus.py [RUNS]
"""

from __future__ import annotations

import asyncio
import calendar
import itertools
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20260310
STEP_S = 15
START = 1_773_144_000  # 2026-03-10T12:00:00Z, on a 2 h block boundary: the data fill two blocks
HOURS = 4
N = HOURS * 3600 // STEP_S  # scrapes per target: START .. END - 15 s
END = START + HOURS * 3600  # --at: the end of the data
DEPLOY = END - 21 * 60  # the bad checkout deploy
ONSET = END - 20 * 60  # checkout starts failing 30% of its requests
TRUTH = ("code_change", "checkout")
HOSTS = 10
CAP_S = 120.0
GOAL_S, GOAL_QUERIES = 3.0, 300
SYMPTOM = "checkout is returning 500s"

SERVICES = (
    "accounts", "ads", "analytics", "api-gateway", "audit", "auth", "billing", "cart", "catalog", "checkout",
    "config", "currency", "email", "export", "feature-flags", "feed", "fraud", "fulfillment", "geo", "identity",
    "images", "import", "inventory", "invoices", "ledger", "loyalty", "media", "notifications", "orders",
    "partner-api", "payments", "pricing", "profile", "promotions", "ratings", "recommendations", "reporting",
    "returns", "reviews", "scheduler", "search", "sessions", "shipping", "sms", "subscriptions", "support",
    "tax", "uploads", "warehouse", "webhooks",
)
# prometheus_client's default histogram buckets, as it prints them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LE = tuple(repr(b) for b in BUCKETS) + ("+Inf",)


# --- the stack --------------------------------------------------------------------------------

FAMILIES = (  # name, type, help, sample name: the order they are written in
    ("http_requests", "counter", "Total HTTP requests.", "http_requests_total"),
    ("http_requests_created", "gauge", "Total HTTP requests.", "http_requests_created"),
    ("http_request_duration_seconds", "histogram", "HTTP request latency.", "http_request_duration_seconds"),
    ("http_request_duration_seconds_created", "gauge", "HTTP request latency.", "http_request_duration_seconds_created"),
    ("process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds.", "process_cpu_seconds_total"),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "process_resident_memory_bytes"),
    ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
     "process_start_time_seconds"),
    ("python_gc_objects_collected", "counter", "Objects collected during gc", "python_gc_objects_collected_total"),
    ("app_build_info", "gauge", "Build information.", "app_build_info"),
    ("up", "gauge", "Whether the target answered its scrape.", "up"),
    ("node_cpu_seconds", "counter", "Seconds the CPUs spent in each mode.", "node_cpu_seconds_total"),
    ("node_load1", "gauge", "1m load average.", "node_load1"),
    ("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes.",
     "node_memory_MemAvailable_bytes"),
    ("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.", "node_memory_MemTotal_bytes"),
    ("node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes.",
     "node_filesystem_avail_bytes"),
    ("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes.", "node_filesystem_size_bytes"),
    ("node_network_receive_bytes", "counter", "Network device statistic receive_bytes.",
     "node_network_receive_bytes_total"),
)


@dataclass
class Scalar:
    """One series: its labels, where it has samples, its values, and its target (whose scrape times it uses)."""

    labels: str
    present: np.ndarray  # bool, N
    values: np.ndarray  # N
    target: int  # index into Stack.timestamps
    decimals: int | None = None  # None: integers


@dataclass
class Histogram:
    labels: str
    present: np.ndarray
    buckets: np.ndarray  # (N, 15) cumulative; the last is +Inf, also written as _count
    total: np.ndarray  # _sum
    target: int


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    sample: str
    series: list = field(default_factory=list)


@dataclass
class Stack:
    families: list[Family]
    timestamps: list[np.ndarray]  # per target: its N scrape times as strings (object array)
    changes: list[dict]
    restarts: dict[str, int]  # service -> scrape index of its (first instance's) restart
    flaky: list[str]  # services whose code="500" children appear mid-window


@dataclass
class Process:
    """One instance over the window: restarted at scrape ``restart`` (-1: never), which then
    answers up=0 and nothing else; its process start times (before the window, after the restart)."""

    restart: int
    starts: list[float]
    uptime: float  # of the first process, at START
    target: int

    @property
    def alive(self) -> np.ndarray:
        alive = np.ones(N, dtype=bool)
        if self.restart >= 0:
            alive[self.restart] = False
        return alive

    def segments(self) -> list[tuple[int, int]]:
        if self.restart < 0:
            return [(0, N)]
        return [(0, self.restart), (self.restart + 1, N)]

    def cut(self, inc: np.ndarray) -> np.ndarray:
        """Increments with nothing counted while down, and only the new process's part of the next interval."""
        inc = inc.copy()
        if self.restart >= 0:
            inc[self.restart] = 0
            first = START + STEP_S * (self.restart + 1)
            inc[self.restart + 1] = np.floor(inc[self.restart + 1] * (first - self.starts[1]) / STEP_S)
        return inc


def _ar_noise(rng: np.random.Generator, sd: float, phi: float = 0.95) -> np.ndarray:
    """A slowly wandering multiplicative factor around 1 (no daily pattern)."""
    eps = rng.normal(0.0, sd, N)
    out = np.empty(N)
    level = 0.0
    for i in range(N):
        level = phi * level + eps[i]
        out[i] = level
    return np.exp(out)


def _counter(inc: np.ndarray, base: float, process: Process | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A counter's values (``base`` at START, from zero after a restart) and where its child exists:
    throughout if it existed before the window, else from its first increment in each process
    (prometheus_client creates a labelled child on first use)."""
    values = np.zeros(N)
    present = np.zeros(N, dtype=bool)
    for number, (lo, hi) in enumerate(process.segments() if process else [(0, N)]):
        cumulative = (base if number == 0 else 0.0) + np.cumsum(inc[lo:hi])
        values[lo:hi] = cumulative
        present[lo:hi] = cumulative > 0
    return values, present


def _created(present: np.ndarray, existed: bool, process: Process, rng: np.random.Generator) -> np.ndarray:
    """prometheus_client's *_created: when the child was first used in its process."""
    values = np.zeros(N)
    for number, (lo, hi) in enumerate(process.segments()):
        where = np.flatnonzero(present[lo:hi])
        if where.size == 0:
            continue
        started = process.starts[number]
        if number == 0 and existed:
            stamp = started + rng.uniform(0.3, 20.0)
        else:
            stamp = max(started + 0.2, START + STEP_S * (lo + where[0]) - rng.uniform(0.0, STEP_S))
        values[lo:hi] = round(stamp, 3)
    return values


class StackBuilder:
    """The stack, drawn from one seeded generator in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.times = START + STEP_S * np.arange(N)
        self.timestamps: list[np.ndarray] = []
        self.families = {name: Family(name, kind, text, sample) for name, kind, text, sample in FAMILIES}
        self.next_address = {k: 10 for k in range(1, HOSTS + 1)}
        self.host_cpu = {k: np.zeros(N) for k in range(1, HOSTS + 1)}  # cores busy
        self.host_rss = {k: np.zeros(N) for k in range(1, HOSTS + 1)}
        self.host_requests = {k: np.zeros(N) for k in range(1, HOSTS + 1)}
        self.changes: list[dict] = []

    def target(self) -> int:
        offset = self.rng.integers(0, STEP_S * 1000) / 1000.0  # each target is scraped at its own phase
        self.timestamps.append(np.array([f"{x:.3f}" for x in self.times + offset], dtype=object))
        return len(self.timestamps) - 1

    def add(self, family: str, series: Scalar | Histogram) -> None:
        self.families[family].series.append(series)

    def build(self) -> Stack:
        rng = self.rng
        others = [s for s in SERVICES if s != "checkout"]
        picked = rng.choice(len(others), 7, replace=False)
        restarting = [others[i] for i in picked[:3]]
        flaky = sorted(others[i] for i in picked[3:])
        # Deploys that restart their service: early, mid-baseline, a healthy one 10 min before the
        # onset; and checkout's bad one.
        restarts = dict(zip(restarting, (200, 560, (ONSET - START) // STEP_S - 40)))
        restarts["checkout"] = (DEPLOY - START) // STEP_S
        for service in SERVICES:
            self.service(service, restarts.get(service, -1), service in flaky)
        for host in range(1, HOSTS + 1):
            self.node(host)
        self.changes.append({"id": "", "ts": _iso(ONSET - 50 * 60), "service": "search", "kind": "config",
                             "summary": "search: synonyms feature flag on for 10% of users", "author": "hiro"})
        self.changes.sort(key=lambda c: c["ts"])
        for number, change in enumerate(self.changes, 1):
            change["id"] = f"chg-{number:04d}"
        return Stack(list(self.families.values()), self.timestamps, self.changes, restarts, flaky)

    def service(self, service: str, restart: int, flaky: bool) -> None:
        rng = self.rng
        major, minor = int(rng.integers(1, 6)), int(rng.integers(0, 30))
        old, new = (f"v{major}.{minor}.0", f"v{major}.{minor + 1}.0") if service != "checkout" else ("v3.2.0", "v3.3.0")
        noun = service.replace("-", "_")
        endpoints = (("GET", f"/v1/{noun}"), ("GET", f"/v1/{noun}/{{id}}"), ("POST", f"/v1/{noun}"))
        shares = np.array([0.55, 0.35, 0.10]) * rng.uniform(0.8, 1.2, 3)
        shares /= shares.sum()
        rps = float(np.clip(rng.lognormal(math.log(15.0), 1.0), 0.5, 300.0))
        not_found = rng.uniform(0.003, 0.03, 3)
        medians = rng.lognormal(math.log(0.03), 0.7, 3).clip(0.002, 0.6)
        sigmas = rng.uniform(0.4, 0.8, 3)
        cpu_per_request = rng.uniform(0.0005, 0.006)
        rss_base = rng.uniform(70e6, 380e6)
        for which, host in enumerate(int(h) for h in rng.choice(np.arange(1, HOSTS + 1), 2, replace=False)):
            address = f"10.0.{host}.{self.next_address[host]}:8000"
            self.next_address[host] += 1
            labels = f'job="{service}",instance="{address}"'
            uptime = rng.uniform(1.0, 9.0) * 86400
            process = Process(restart + 2 * which if restart >= 0 else -1, [round(START - uptime, 2)], uptime,
                              self.target())  # a rolling restart: 30 s apart
            if process.restart >= 0:
                process.starts.append(round(float(self.times[process.restart]) + rng.uniform(1.0, 10.0), 2))
            traffic = rps * rng.uniform(0.9, 1.1) * _ar_noise(rng, 0.02)
            requests = np.zeros(N)
            for endpoint, share, p404, median, sigma in zip(endpoints, shares, not_found, medians, sigmas):
                requests += self.endpoint(service, labels, process, endpoint, traffic * share, rps * share, p404,
                                          flaky, median, sigma)
            self.runtime(labels, process, requests, cpu_per_request, rss_base, (old, new), host)
        if restart >= 0:
            summary = ("checkout v3.2.0 -> v3.3.0 (PR #812: new payment retry logic)" if service == "checkout"
                       else f"{service} {old} -> {new} (routine release)")
            self.changes.append({"id": "", "ts": _iso(float(self.times[restart])), "service": service, "kind": "deploy",
                                 "summary": summary, "author": "ci", "version": new, "previous_version": old})

    def endpoint(self, service: str, labels: str, process: Process, endpoint: tuple[str, str], traffic: np.ndarray,
                 mean_rps: float, p404: float, flaky: bool, median: float, sigma: float) -> np.ndarray:
        """http_requests_total by code, the latency histogram and their _created gauges; -> requests per scrape."""
        rng, (method, path) = self.rng, endpoint
        n = process.cut(rng.poisson(traffic * STEP_S).astype(float))
        p500 = np.zeros(N)
        first_error = int(rng.integers(40, N - 20)) if flaky else -1
        if flaky:
            p500[first_error:] = 0.002
        if service == "checkout":
            first_error = (ONSET - START) // STEP_S
            p500[first_error:] = 0.30
        n500 = rng.binomial(n.astype(np.int64), p500).astype(float)
        if first_error >= 0 and n[first_error] > 0:
            n500[first_error] = max(n500[first_error], 1.0)  # the error that creates the child
        n404 = rng.binomial((n - n500).astype(np.int64), p404).astype(float)
        alive = process.alive
        for code, inc, rate in (("200", n - n500 - n404, mean_rps * (1 - p404)), ("404", n404, mean_rps * p404),
                                ("500", n500, 0.0)):
            base = float(np.floor(rate * process.uptime))
            values, present = _counter(inc, base, process)
            present &= alive
            if present.any():
                series = f'{labels},method="{method}",path="{path}",code="{code}"'
                self.add("http_requests", Scalar(series, present, values, process.target))
                self.add("http_requests_created",
                         Scalar(series, present, _created(present, base > 0, process, rng), process.target, 3))
        # Latency: lognormal, counted into prometheus_client's default buckets.
        cdf = np.array([0.5 * (1 + math.erf((math.log(b) - math.log(median)) / (sigma * math.sqrt(2))))
                        for b in BUCKETS])
        probs = np.clip(np.diff(np.concatenate([[0.0], cdf, [1.0]])), 0, None)
        per_bucket = rng.multinomial(n.astype(np.int64), probs / probs.sum())  # (N, 15)
        mean_latency = median * math.exp(sigma * sigma / 2)
        seconds = n * mean_latency * rng.normal(1.0, 0.05, N).clip(0.5, 1.5)
        base_n = float(np.floor(mean_rps * process.uptime))
        cumulative, total = np.zeros((N, len(LE))), np.zeros(N)
        for number, (lo, hi) in enumerate(process.segments()):
            first = number == 0
            cumulative[lo:hi] = (np.floor(base_n * np.append(cdf, 1.0)) if first else 0.0) + \
                np.cumsum(np.cumsum(per_bucket[lo:hi], axis=1), axis=0)
            total[lo:hi] = (base_n * mean_latency if first else 0.0) + np.cumsum(seconds[lo:hi])
        present = (cumulative[:, -1] > 0) & alive
        series = f'{labels},method="{method}",path="{path}"'
        self.add("http_request_duration_seconds", Histogram(series, present, cumulative, total, process.target))
        self.add("http_request_duration_seconds_created",
                 Scalar(series, present, _created(present, True, process, rng), process.target, 3))
        return n

    def runtime(self, labels: str, process: Process, requests: np.ndarray, cpu_per_request: float,
                rss_base: float, versions: tuple[str, str], host: int) -> None:
        """prometheus_client's process and gc collectors, app_build_info and up."""
        rng, alive, target, restart = self.rng, process.alive, process.target, process.restart
        cpu = (0.004 * STEP_S + requests * cpu_per_request) * rng.normal(1.0, 0.08, N).clip(0.5, 1.6)
        if restart >= 0:
            cpu[restart] = 0
            cpu[restart + 1] += 1.6  # imports at start-up
        values, _ = _counter(cpu, float(np.mean(cpu) / STEP_S * process.uptime), process)
        self.add("process_cpu_seconds", Scalar(labels, alive, np.round(values, 2), target, 2))
        self.host_cpu[host] += cpu / STEP_S
        self.host_requests[host] += requests

        rss = rss_base * (1 + np.cumsum(rng.normal(0.00002, 0.0008, N)))
        if restart >= 0:
            warm = np.arange(N - restart - 1)
            rss[restart + 1:] = rss_base * (0.55 + 0.45 * (1 - np.exp(-warm / 30.0))) * \
                (1 + rng.normal(0, 0.003, warm.size))
        rss = np.floor(rss / 4096) * 4096
        self.add("process_resident_memory_bytes", Scalar(labels, alive, rss, target))
        self.host_rss[host] += rss * alive

        started = np.full(N, process.starts[0])
        if restart >= 0:
            started[restart + 1:] = process.starts[1]
        self.add("process_start_time_seconds", Scalar(labels, alive, started, target, 2))

        for generation, per_request in (("0", 25.0), ("1", 3.0), ("2", 0.4)):
            collected = rng.poisson(requests * per_request + 2.0).astype(float)
            if restart >= 0:
                collected[restart] = 0
            values, _ = _counter(collected, float(np.mean(collected) / STEP_S * process.uptime), process)
            self.add("python_gc_objects_collected", Scalar(f'{labels},generation="{generation}"', alive, values, target))

        for number, (lo, hi) in enumerate(process.segments()):
            running = np.zeros(N, dtype=bool)
            running[lo:hi] = True
            self.add("app_build_info", Scalar(f'{labels},version="{versions[number]}"', running, np.ones(N), target))
        self.add("up", Scalar(labels, np.ones(N, dtype=bool), alive.astype(float), target))

    def node(self, host: int) -> None:
        """node_exporter on one host: cpu, load, memory, filesystem, network; and its up."""
        rng, target = self.rng, self.target()
        labels = f'job="node",instance="10.0.{host}.1:9100"'
        everywhere = np.ones(N, dtype=bool)
        boot_uptime = rng.uniform(20, 60) * 86400
        util = np.clip(0.03 + self.host_cpu[host] / 2 * rng.normal(1.0, 0.05, N), 0.01, 0.95)
        for cpu in ("0", "1"):
            busy = np.clip(util * rng.normal(1.0, 0.1, N), 0.005, 0.97)
            modes = {"user": busy * 0.72, "system": busy * 0.25, "iowait": np.clip(rng.normal(0.004, 0.002, N), 0, 0.05)}
            modes["idle"] = 1.0 - modes["user"] - modes["system"] - modes["iowait"]
            for mode in ("idle", "iowait", "system", "user"):
                inc = modes[mode] * STEP_S
                values, _ = _counter(inc, float(np.mean(inc) / STEP_S * boot_uptime))
                self.add("node_cpu_seconds",
                         Scalar(f'{labels},cpu="{cpu}",mode="{mode}"', everywhere, np.round(values, 2), target, 2))
        load = np.round(np.clip(util * 2 * _ar_noise(rng, 0.05, 0.9) + 0.05, 0, None), 2)
        self.add("node_load1", Scalar(labels, everywhere, load, target, 2))
        memory = 16_757_436_416.0
        available = memory * 0.62 - self.host_rss[host] + np.cumsum(rng.normal(0, 2e6, N))
        self.add("node_memory_MemAvailable_bytes", Scalar(labels, everywhere, np.floor(available / 4096) * 4096, target))
        self.add("node_memory_MemTotal_bytes", Scalar(labels, everywhere, np.full(N, memory), target))
        root = f'{labels},device="/dev/vda1",fstype="ext4",mountpoint="/"'
        size = 107_321_753_600.0
        avail = size * rng.uniform(0.4, 0.8) - np.cumsum(np.abs(rng.normal(50_000 * STEP_S, 20_000 * STEP_S, N)))
        self.add("node_filesystem_avail_bytes", Scalar(root, everywhere, np.floor(avail / 4096) * 4096, target))
        self.add("node_filesystem_size_bytes", Scalar(root, everywhere, np.full(N, size), target))
        eth0 = self.host_requests[host] * rng.uniform(1500, 3000) + rng.poisson(20_000 * STEP_S, N)
        lo = rng.poisson(5_000 * STEP_S, N).astype(float)
        for device, inc in (("eth0", np.floor(eth0)), ("lo", lo)):
            values, _ = _counter(inc, float(np.floor(np.mean(inc) / STEP_S * boot_uptime)))
            self.add("node_network_receive_bytes", Scalar(f'{labels},device="{device}"', everywhere, values, target))
        self.add("up", Scalar(labels, everywhere, np.ones(N), target))


def build_stack(seed: int = SEED) -> Stack:
    return StackBuilder(seed).build()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _lines(prefix: str, values: list, stamps: list) -> list[str]:
    return [f"{prefix}{v} {s}\n" for v, s in zip(values, stamps)]


def write_openmetrics(stack: Stack, path: Path) -> tuple[int, int]:
    """The OpenMetrics text: each family contiguous, a histogram's lines for one scrape together.
    -> (series, samples)"""
    series = samples = 0
    with open(path, "w", encoding="utf-8", buffering=1 << 22) as out:
        for family in stack.families:
            out.write(f"# HELP {family.name} {family.help}\n# TYPE {family.name} {family.kind}\n")
            for item in family.series:
                where = np.flatnonzero(item.present)
                if where.size == 0:
                    continue
                stamps = stack.timestamps[item.target][where].tolist()
                if isinstance(item, Histogram):
                    counts = item.buckets[where].astype(np.int64)
                    columns = [_lines(f'{family.name}_bucket{{{item.labels},le="{le}"}} ', counts[:, b].tolist(), stamps)
                               for b, le in enumerate(LE)]
                    columns.append(_lines(f"{family.name}_count{{{item.labels}}} ", counts[:, -1].tolist(), stamps))
                    columns.append(_lines(f"{family.name}_sum{{{item.labels}}} ",
                                          np.round(item.total[where], 3).tolist(), stamps))
                    out.write("".join(itertools.chain.from_iterable(zip(*columns))))
                else:
                    values = item.values[where]
                    values = values.astype(np.int64) if item.decimals is None else np.round(values, item.decimals)
                    columns = [_lines(f"{family.sample}{{{item.labels}}} ", values.tolist(), stamps)]
                    out.write("".join(columns[0]))
                series += len(columns)
                samples += len(columns) * where.size
        out.write("# EOF\n")
    return series, samples


# --- the server -------------------------------------------------------------------------------


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def backfill(promtool: str, source: Path, data: Path) -> None:
    run = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise SystemExit(f"promtool could not backfill {source}: {(run.stderr or run.stdout).strip()[-800:]}")


def start(prometheus: str, data: Path) -> Server:
    from tests.standins import free_port, wait_until_ready

    config = data / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n")  # scrapes nothing
    for _ in range(3):
        port = free_port()
        log = data / f"prometheus-{port}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                 "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = Server(process, f"http://127.0.0.1:{port}", log)
        if wait_until_ready(process, f"{server.url}/-/ready", 60.0):
            return server
        server.stop()
        if "address already in use" not in log.read_text(errors="replace"):
            break
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise SystemExit(f"prometheus did not become ready:\n{tail}")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


_SAMPLE = re.compile(r"^(prometheus_http_requests_total|prometheus_http_response_size_bytes_sum)\{([^}]*)\} (\S+)$",
                     re.M)


def served(server: Server) -> dict[tuple[str, str, str], float]:
    """Prometheus's own request counters: (metric, handler, code) -> value; its /metrics excluded."""
    out = {}
    for name, labels, value in _SAMPLE.findall(get(f"{server.url}/metrics").decode()):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if pairs.get("handler") != "/metrics":
            out[(name, pairs.get("handler", ""), pairs.get("code", ""))] = float(value)
    return out


def settled(server: Server) -> dict[tuple[str, str, str], float]:
    """The counters once they stop moving (a handler counts after its answer is written)."""
    last = served(server)
    while True:
        time.sleep(0.05)
        now = served(server)
        if now == last:
            return now
        last = now


def delta(before: dict, after: dict) -> dict[str, float]:
    diff = {key: after[key] - before.get(key, 0.0) for key in after}
    requests = {k: v for k, v in diff.items() if k[0] == "prometheus_http_requests_total" and v}
    return {
        "range": sum(v for k, v in requests.items() if k[1] == "/api/v1/query_range"),
        "requests": sum(requests.values()),
        "failed": sum(v for k, v in requests.items() if not k[2].startswith("2")),
        "bytes": sum(v for k, v in diff.items() if k[0] == "prometheus_http_response_size_bytes_sum"),
        "by_handler": {handler: sum(v for k, v in requests.items() if k[1] == handler)
                       for handler in sorted({k[1] for k in requests})},
    }


# --- the benchmark ----------------------------------------------------------------------------


def write_config(folder: Path, url: str, changes: list[dict]) -> Path:
    (folder / "changes.jsonl").write_text("".join(json.dumps(c) + "\n" for c in changes))
    path = folder / "sleuth.yml"
    path.write_text(
        "metrics:\n"
        f"  prometheus:\n    url: {url}\n"
        "  step_s: 60\n"
        "changes:\n  files: [changes.jsonl]\n"
        "investigation:\n  window: 1h\n  baseline: 3h\n"
        f"  source_timeout: {CAP_S:.0f}s   # measured, not abandoned at the default 20 s\n"
    )
    return path


def diagnose(config_path: Path):
    """One diagnosis through the public entry point, as `sleuth diagnose --config FILE --at END` runs it."""
    from bot.config import load_config
    from bot.investigate import InvestigationRequest, investigate

    config = load_config(config_path)
    return asyncio.run(asyncio.wait_for(investigate(InvestigationRequest(SYMPTOM, at=float(END)), config), CAP_S))


@dataclass
class Run:
    wall_s: float
    counted: dict
    diagnosis: object | None  # None: over the cap


def prepare(folder: Path, prometheus: str, promtool: str) -> tuple[Server, Stack]:
    """Generate, backfill, serve; prints what Prometheus holds."""
    started = time.perf_counter()
    stack = build_stack()
    source = folder / "stack.om"
    series, samples = write_openmetrics(stack, source)
    generated, size_mb = time.perf_counter() - started, source.stat().st_size / 1e6
    started = time.perf_counter()
    data = folder / "tsdb"
    data.mkdir()
    backfill(promtool, source, data)
    filled = time.perf_counter() - started
    source.unlink()  # the blocks hold it now
    server = start(prometheus, data)
    stored = json.loads(get(f"{server.url}/api/v1/series?" + urllib.parse.urlencode(
        {"match[]": '{__name__=~".+"}', "start": START, "end": END})))["data"]
    blocks = [json.loads(p.read_text())["stats"] for p in data.glob("*/meta.json")]
    print(f"prometheus: {len(SERVICES)} services x 2 instances + {HOSTS} node_exporter hosts, {HOURS} h at {STEP_S} s: "
          f"{series:,} series, {samples / 1e6:.2f} M samples written ({size_mb:.0f} MB OpenMetrics in {generated:.1f} s, "
          f"backfilled in {filled:.1f} s); stored: {len(stored):,} series, "
          f"{sum(b['numSamples'] for b in blocks) / 1e6:.2f} M samples in {len(blocks)} blocks")
    restarts = ", ".join(f"{name} {_iso(START + STEP_S * i)[11:16]}" for name, i in stack.restarts.items())
    print(f"prometheus: restarts (deploys): {restarts}; code=\"500\" children appear mid-window on "
          f"{', '.join(stack.flaky)}; checkout fails 30% from {_iso(ONSET)[11:16]}; --at {_iso(END)}")
    return server, stack


def measure(server: Server, config_path: Path, runs: int) -> list[Run]:
    results: list[Run] = []
    for number in range(1, runs + 1):
        before = settled(server)
        began = time.perf_counter()
        try:
            diagnosis = diagnose(config_path)
        except asyncio.TimeoutError:
            counted = delta(before, settled(server))
            results.append(Run(time.perf_counter() - began, counted, None))
            print(f"prometheus: run {number}: over the {CAP_S:.0f} s cap after {counted['requests']:,.0f} requests; "
                  "no further runs")
            break
        wall = time.perf_counter() - began
        counted = delta(before, settled(server))
        results.append(Run(wall, counted, diagnosis))
        metrics = diagnosis.sources["metrics"]
        handlers = ", ".join(f"{v:,.0f} {h.removeprefix('/api/v1/')}" for h, v in counted["by_handler"].items())
        print(f"prometheus: run {number}: {wall:.2f} s, {counted['requests']:,.0f} requests ({handlers}; "
              f"{counted['failed']:,.0f} not 2xx), {counted['bytes'] / 1e6:.1f} MB; metrics source {metrics.status} "
              f"in {metrics.elapsed_ms / 1000:.2f} s, its own count {metrics.queries:,} ({metrics.reason[:100]})")
    return results


def report(results: list[Run]) -> None:
    walls = [r.wall_s for r in results]
    requests = statistics.median(r.counted["requests"] for r in results)
    print(f"prometheus: per diagnosis (median of {len(results)}): "
          f"{statistics.median(r.counted['range'] for r in results):,.0f} range queries, {requests:,.0f} HTTP requests "
          f"to Prometheus, {statistics.median(r.counted['bytes'] for r in results) / 1e6:.1f} MB received "
          "(response bodies as sent, gzip)")
    print(f"prometheus: wall time per diagnosis: median {statistics.median(walls):.2f} s, min {min(walls):.2f} s")
    finished = [r.diagnosis for r in results if r.diagnosis is not None]
    if finished:
        diagnosis = finished[-1]
        top = diagnosis.hypotheses[0] if diagnosis.hypotheses else None
        found = (top.category, top.component) if top else ("none", "none")
        onset = diagnosis.incident.get("onset")
        error_s = calendar.timegm(time.strptime(onset, "%Y-%m-%dT%H:%M:%SZ")) - ONSET if onset else None
        within = error_s is not None and abs(error_s) <= 60
        print(f"prometheus: top hypothesis {found[0]} @ {found[1]} (truth {TRUTH[0]} @ {TRUTH[1]}): "
              f"{'right' if found == TRUTH else 'WRONG'}; onset {onset} (truth {_iso(ONSET)}"
              f"{'' if error_s is None else f', {error_s:+.0f} s'}): {'within' if within else 'NOT within'} 1 min")
    complete = len(finished) == len(results) and all(d.sources["metrics"].status == "ok" for d in finished)
    ok = complete and statistics.median(walls) <= GOAL_S and requests <= GOAL_QUERIES
    print(f"prometheus: goal: <= {GOAL_S:.0f} s and <= {GOAL_QUERIES} queries per diagnosis: {'ok' if ok else 'MISSED'} "
          f"(median {statistics.median(walls):.2f} s, {requests:,.0f} HTTP requests"
          f"{'' if complete else '; a run was over the cap or its metrics source failed'})")


def main() -> int:
    runs = max(1, int(sys.argv[1])) if len(sys.argv) > 1 else 3
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        missing = " and ".join(n for n, p in (("prometheus", prometheus), ("promtool", promtool)) if not p)
        print(f"bench_prometheus: {missing} not on PATH; install Debian's `prometheus` package "
              "(apt-get install -y prometheus) to run this benchmark.")
        return 1
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-prometheus-") as tmp:
        folder = Path(tmp)
        server, stack = prepare(folder, prometheus, promtool)
        try:
            results = measure(server, write_config(folder, server.url, stack.changes), runs)
        finally:
            server.stop()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
