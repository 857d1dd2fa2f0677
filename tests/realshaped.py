"""Real-shaped telemetry for tests: what prometheus_client and node_exporter actually expose.

Counters only rise and fall to zero when a process restarts (a deploy); a ``code="500"`` child
exists only from the first error on; histograms are cumulative ``_bucket``/``_count``/``_sum``
families; ``up``, ``*_info``, ``*_created`` and runtime internals sit beside them; host series
carry no service label, only their instance. Written as OpenMetrics text with ``# TYPE`` lines, so
the same file feeds the embedded backend and, backfilled with promtool, a real Prometheus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from tests.factory import iso

def _stamp(t: float) -> str:
    # Whole seconds as integers: the OpenMetrics parser groups a histogram's samples by timestamp,
    # and "100.000" does not compare equal to itself there.
    return str(int(t)) if float(t).is_integer() else repr(float(t))


BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Service:
    name: str
    host: str
    rps: float = 20.0
    latency_s: float = 0.02
    # (start, end, share): requests failing with 500 in [start, end)
    failures: list[tuple[float, float, float]] = field(default_factory=list)
    # (start, end, factor): latency multiplied in [start, end)
    slow: list[tuple[float, float, float]] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)  # process restarts: counters back to 0


@dataclass
class Host:
    name: str  # an IP
    busy: float = 0.15
    # (start, end, busy share): CPU contention
    contention: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass
class RealStack:
    """A small stack sampled every ``scrape_s`` from ``start`` to ``at``."""

    start: float
    at: float
    scrape_s: float = 15.0
    seed: int = 7
    services: list[Service] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)

    def _ts(self) -> np.ndarray:
        return np.arange(self.start, self.at + 1e-6, self.scrape_s)

    def openmetrics(self) -> str:
        rng = np.random.default_rng(self.seed)
        ts = self._ts()
        # family -> (type, [(group, time, order, line)]): a histogram's buckets, count and sum at
        # one time form one point of the format, so they are written together, in time order.
        fam: dict[str, tuple[str, list[tuple[tuple, float, int, str]]]] = {}

        def add(family: str, kind: str, sample: str, labels: dict[str, str], values: np.ndarray) -> None:
            rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            group = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            lines = fam.setdefault(family, (kind, []))[1]
            order = len(lines)
            for t, v in zip(ts, values):
                if np.isfinite(v):
                    lines.append((group, float(t), order, f"{sample}{{{rendered}}} {float(v)!r} {_stamp(t)}"))

        for index, svc in enumerate(self.services):
            base = {"job": svc.name, "instance": f"{svc.host}:{8000 + index}"}
            since_restart = np.zeros(ts.size)
            restart_at = [self.start] + sorted(svc.restarts)
            epoch = np.searchsorted(restart_at, ts, side="right") - 1
            n = rng.poisson(svc.rps * self.scrape_s, ts.size).astype(float)
            share = np.zeros(ts.size)
            for lo, hi, s in svc.failures:
                share[(ts >= lo) & (ts < hi)] = s
            errors = rng.binomial(n.astype(int), share).astype(float)
            ok = n - errors
            factor = np.ones(ts.size)
            for lo, hi, f in svc.slow:
                factor[(ts >= lo) & (ts < hi)] = f

            def cumulative(increments: np.ndarray) -> np.ndarray:
                out = np.zeros(ts.size)
                for e in np.unique(epoch):
                    mask = epoch == e
                    out[mask] = np.cumsum(increments[mask])
                return out

            ok_total = cumulative(ok)
            err_total = cumulative(errors)
            add("http_requests", "counter", "http_requests_total",
                {**base, "method": "GET", "path": "/api", "code": "200"}, ok_total)
            # The 500 child exists from its first error on, and after a restart only once it fails again.
            first_err = np.full(ts.size, np.nan)
            for e in np.unique(epoch):
                mask = epoch == e
                seen = np.cumsum(errors[mask]) > 0
                first_err[np.flatnonzero(mask)[seen]] = err_total[mask][seen]
            if np.isfinite(first_err).any():
                add("http_requests", "counter", "http_requests_total",
                    {**base, "method": "GET", "path": "/api", "code": "500"}, first_err)
            # Latency histogram: lognormal around the service's latency.
            counts = np.zeros((len(BUCKETS) + 1, ts.size))
            sums = np.zeros(ts.size)
            for i in range(ts.size):
                k = int(n[i])
                if k == 0:
                    continue
                lat = rng.lognormal(np.log(svc.latency_s * factor[i]), 0.35, k)
                sums[i] = lat.sum()
                for b, bound in enumerate(BUCKETS):
                    counts[b, i] = np.sum(lat <= bound)
                counts[-1, i] = k
            for b, bound in enumerate(BUCKETS):
                add("http_request_duration_seconds", "histogram", "http_request_duration_seconds_bucket",
                    {**base, "method": "GET", "path": "/api", "le": repr(bound)}, cumulative(counts[b]))
            add("http_request_duration_seconds", "histogram", "http_request_duration_seconds_bucket",
                {**base, "method": "GET", "path": "/api", "le": "+Inf"}, cumulative(counts[-1]))
            add("http_request_duration_seconds", "histogram", "http_request_duration_seconds_count",
                {**base, "method": "GET", "path": "/api"}, cumulative(counts[-1]))
            add("http_request_duration_seconds", "histogram", "http_request_duration_seconds_sum",
                {**base, "method": "GET", "path": "/api"}, cumulative(sums))
            add("process_cpu_seconds", "counter", "process_cpu_seconds_total", base,
                cumulative(np.full(ts.size, 0.05 * self.scrape_s) + rng.normal(0, 0.01, ts.size).clip(-0.04, 0.04)))
            add("process_resident_memory_bytes", "gauge", "process_resident_memory_bytes", base,
                6e7 + rng.normal(0, 5e5, ts.size))
            add("process_start_time_seconds", "gauge", "process_start_time_seconds", base,
                np.asarray(restart_at)[epoch])
            add("python_gc_objects_collected", "counter", "python_gc_objects_collected_total",
                {**base, "generation": "0"}, cumulative(rng.poisson(30, ts.size).astype(float)))
            add("up", "gauge", "up", base, np.ones(ts.size))
            del since_restart

        for host in self.hosts:
            base = {"job": "node", "instance": f"{host.name}:9100"}
            busy = np.full(ts.size, host.busy) + rng.normal(0, 0.02, ts.size)
            for lo, hi, share in host.contention:
                busy[(ts >= lo) & (ts < hi)] = share + rng.normal(0, 0.01, ((ts >= lo) & (ts < hi)).sum())
            busy = busy.clip(0, 1)
            for cpu in ("0", "1"):
                add("node_cpu_seconds", "counter", "node_cpu_seconds_total", {**base, "cpu": cpu, "mode": "idle"},
                    1e5 + np.cumsum((1 - busy) * self.scrape_s))
                add("node_cpu_seconds", "counter", "node_cpu_seconds_total", {**base, "cpu": cpu, "mode": "user"},
                    2e4 + np.cumsum(busy * self.scrape_s))
            add("node_memory_MemAvailable_bytes", "gauge", "node_memory_MemAvailable_bytes", base,
                4e9 + rng.normal(0, 2e7, ts.size))
            add("node_memory_MemTotal_bytes", "gauge", "node_memory_MemTotal_bytes", base, np.full(ts.size, 8e9))
            add("node_load1", "gauge", "node_load1", base, 0.5 + busy * 2)
            add("up", "gauge", "up", base, np.ones(ts.size))

        lines: list[str] = []
        for family, (kind, samples) in fam.items():
            lines.append(f"# TYPE {family} {kind}")
            samples.sort(key=lambda item: (item[0], item[1], item[2]))
            lines.extend(item[3] for item in samples)
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def log(self, ts: float, service: str, level: str, message: str) -> None:
        self.logs.append({"ts": iso(ts), "service": service, "level": level, "message": message})

    def change(self, change_id: str, ts: float, service: str, summary: str, version: str,
               previous_version: str, kind: str = "deploy") -> None:
        self.changes.append({"id": change_id, "ts": iso(ts), "service": service, "kind": kind, "summary": summary,
                             "author": "ci", "version": version, "previous_version": previous_version})

    def write(self, folder: Path, symptom: str, window: str = "1h", baseline: str | None = None,
              services: dict[str, list[str]] | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.om").write_text(self.openmetrics())
        self.logs.sort(key=lambda r: r["ts"])
        (folder / "logs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.logs))
        (folder / "changes.jsonl").write_text("".join(json.dumps(c) + "\n" for c in self.changes))
        description: dict = {"title": symptom, "symptom": symptom, "at": iso(self.at), "window": window}
        if baseline:
            description["baseline"] = baseline
        if services:
            description["services"] = {k: {"depends_on": v} for k, v in services.items()}
        (folder / "scenario.yml").write_text(yaml.safe_dump(description, sort_keys=False))
        return folder
