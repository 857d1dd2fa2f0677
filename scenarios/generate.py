"""Generate the bundled incident scenarios (format: docs/scenarios.md).

    python scenarios/generate.py                 # every scenario, into scenarios/<slug>/
    python scenarios/generate.py demo gpu-xid-node --out /tmp/held-out
    python scenarios/generate.py --list

The first half of this file is a small library of building blocks: series with a daily pattern and
noise, anomalies that begin at an onset (step, scale, approach, spike), log lines from templates at
a rate, and change records. The second half is one short function per scenario. Everything random
comes from a numpy generator seeded by the scenario's slug, so a run writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
STEP_S = 60
METRIC_HOURS = 28  # the window, the baseline before it and the same clock time a day earlier
LOG_HOURS = 4
MIN = 60
HOUR = 3600

# Gauges whose value is a count: written as integers.
COUNT_METRICS = {"pod_restarts", "gpu_xid_errors", "llm_queue_depth"}
RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------

def daily_shape(ts: np.ndarray, peak_hour: float) -> np.ndarray:
    """A daily cycle in [-1, 1]: one broad peak at ``peak_hour`` (UTC) and a flatter night."""
    phase = 2 * np.pi * ((ts % 86400) / 3600 - peak_hour) / 24
    shape = 0.8 * np.cos(phase) + 0.2 * np.cos(2 * phase)
    return shape / np.abs(shape).max()


def wander(rng: np.random.Generator, n: int, sigma: float, phi: float = 0.9) -> np.ndarray:
    """Slow AR(1) drift, so a series is not just a sine plus white noise."""
    out = np.empty(n)
    x = 0.0
    for i, e in enumerate(rng.normal(0, sigma, n)):
        x = phi * x + e
        out[i] = x
    return out


@dataclass
class Series:
    """One metric series: a name, its labels and a value per timestamp of the scenario's clock.

    The anomaly methods change the values in place from an onset on and return the series, so
    they chain: ``svc["errors"].step(onset, 0.12, ramp=120).spike(...)``.
    """

    name: str
    labels: dict[str, str]
    ts: np.ndarray
    values: np.ndarray
    rng: np.random.Generator = field(repr=False)
    spike_times: list[float] = field(default_factory=list)  # starts of the regular bumps, for matching logs

    def weight(self, onset: float, ramp: float = 60, until: float | None = None, recover: float = 120) -> np.ndarray:
        """0 before ``onset``, rising linearly to 1 over ``ramp`` seconds, back to 0 after ``until``."""
        if ramp <= 0:
            w = (self.ts >= onset).astype(float)
        else:
            w = np.clip((self.ts - onset) / ramp, 0, 1)
        if until is not None:
            w = w * np.clip(1 - (self.ts - until) / max(recover, 1), 0, 1)
        return w

    def step(self, onset: float, delta: float, ramp: float = 60, noise: float = 0.1, **kw: Any) -> "Series":
        """Add ``delta`` from the onset on (with its own relative noise)."""
        jitter = 1 + self.rng.normal(0, noise, len(self.ts))
        self.values = self.values + delta * jitter * self.weight(onset, ramp, **kw)
        return self

    def scale(self, onset: float, factor: float, ramp: float = 60, noise: float = 0.05, **kw: Any) -> "Series":
        """Multiply by ``factor`` from the onset on: load-dependent signals keep their shape."""
        jitter = 1 + self.rng.normal(0, noise, len(self.ts))
        self.values = self.values * (1 + (factor * jitter - 1) * self.weight(onset, ramp, **kw))
        return self

    def approach(self, onset: float, target: float, ramp: float = 300, noise: float = 0.02, **kw: Any) -> "Series":
        """Move towards a fixed level (a pool filling to its limit, a drained node going to 0)."""
        w = self.weight(onset, ramp, **kw)
        goal = target * (1 + self.rng.normal(0, noise, len(self.ts)))
        self.values = self.values * (1 - w) + goal * w
        return self

    def spike(self, at: float, height: float, duration: float = 120) -> "Series":
        """A short bump of ``height`` (added) lasting ``duration`` seconds."""
        inside = (self.ts >= at) & (self.ts < at + duration)
        self.values = self.values + height * inside * (1 + self.rng.normal(0, 0.1, len(self.ts)))
        return self

    def spikes(self, every: float, height: float, duration: float = 120, jitter: float = 240) -> "Series":
        """Regular short bumps over the whole range (a cron job, a cache flush): normal behaviour."""
        t = self.ts[0] + self.rng.uniform(0, every)
        while t < self.ts[-1]:
            start = t + self.rng.uniform(-jitter, jitter)
            self.spike(start, height * self.rng.uniform(0.8, 1.15), duration)
            self.spike_times.append(float(start))
            t += every
        return self

    def events(self, onset: float, per_minute: float, until: float | None = None) -> "Series":
        """Add Poisson counts per sample from the onset on (errors per minute on a counter gauge)."""
        active = self.weight(onset, 0, until=until, recover=1) > 0
        self.values = self.values + self.rng.poisson(per_minute, len(self.ts)) * active
        return self


# --------------------------------------------------------------------------------------------
# Log lines
# --------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")
_ALNUM = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
_HEX = np.array(list("0123456789abcdef"))


def _range(arg: str) -> tuple[float, float]:
    lo, hi = arg.split("~") if "~" in arg else arg.split("-")
    return float(lo), float(hi)


def _log_uniform(rng: np.random.Generator, arg: str) -> float:
    lo, hi = _range(arg)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# Placeholders a template may use: {name} or {name:argument}.
FILLERS: dict[str, Callable[[np.random.Generator, str], str]] = {
    "ip": lambda r, a: f"10.{r.integers(0, 16)}.{r.integers(0, 256)}.{r.integers(2, 255)}",
    "hex": lambda r, a: "".join(r.choice(_HEX, int(a or 8))),
    "id": lambda r, a: "".join(r.choice(_ALNUM, int(a or 10))),
    "int": lambda r, a: str(int(r.integers(int(_range(a)[0]), int(_range(a)[1]) + 1))),
    "ms": lambda r, a: str(int(_log_uniform(r, a or "5-800"))),  # durations are log-normal-ish
    "float": lambda r, a: f"{r.uniform(*_range(a)):.2f}",
    "pick": lambda r, a: str(r.choice(a.split("|"))),
    "user": lambda r, a: f"u{r.integers(100000, 9999999)}",
    "order": lambda r, a: "ord_" + "".join(r.choice(_ALNUM, 10)),
    "pod": lambda r, a: f"{a}-{''.join(r.choice(_ALNUM, 10))[:9]}-{''.join(r.choice(_ALNUM, 5))}",
}


def fill(template: str, rng: np.random.Generator) -> str:
    """Replace placeholders, innermost first, so ``{pick:/a/{id}|/b}`` works."""
    while True:
        filled = _PLACEHOLDER.sub(lambda m: FILLERS[m.group(1)](rng, m.group(2) or ""), template)
        if filled == template:
            return filled
        template = filled


# --------------------------------------------------------------------------------------------
# A scenario under construction
# --------------------------------------------------------------------------------------------

@dataclass
class Decoy:
    component: str | None = None
    change: dict[str, Any] | None = None  # a record returned by Scenario.change
    note: str = ""


class Scenario:
    """Collects the series, log lines and changes of one scenario and writes its folder."""

    def __init__(self, slug: str, *, at: str, title: str, symptom: str, service: str | None = None,
                 window: str = "1h", services: dict[str, list[str]] | None = None,
                 noise: float = 0.05, amplitude: float = 0.3, peak_hour: float = 15.0, first_change_id: int = 1000):
        self.slug = slug
        self.at = parse_iso(at)
        self.description: dict[str, Any] = {"title": title, "symptom": symptom}
        if service:
            self.description["service"] = service
        self.description.update({"at": iso(self.at), "window": window})
        if services:
            self.description["services"] = {name: {"depends_on": deps} for name, deps in services.items()}
        self.noise, self.amplitude, self.peak_hour = noise, amplitude, peak_hour
        self.rng = np.random.default_rng(zlib.crc32(slug.encode()))
        self.ts = np.arange(self.at - METRIC_HOURS * HOUR, self.at + 1, STEP_S, dtype=np.int64)
        self.log_start = self.at - LOG_HOURS * HOUR
        self.series: list[Series] = []
        self.lines: list[tuple[float, int, dict[str, Any]]] = []
        self.changes: list[dict[str, Any]] = []
        self.versions: dict[str, tuple[int, int, int]] = {}
        self.first_change_id = first_change_id
        self.truth_record: dict[str, Any] | None = None
        self._decoy_change: dict[str, Any] | None = None

    # ---- time -------------------------------------------------------------------------------
    def ago(self, minutes: float) -> int:
        """The time ``minutes`` before the question (``at``)."""
        return int(self.at - minutes * MIN)

    # ---- metrics ----------------------------------------------------------------------------
    def daily(self, level: float, amp: float | None = None, noise: float | None = None,
              drift: float = 0.3) -> np.ndarray:
        """``level`` following the daily cycle (``amp`` as a share of the level), with noise."""
        amp = self.amplitude if amp is None else amp
        noise = self.noise if noise is None else noise
        n = len(self.ts)
        relative = amp * daily_shape(self.ts, self.peak_hour) + wander(self.rng, n, noise * drift)
        return level * (1 + relative + self.rng.normal(0, noise, n))

    def metric(self, name: str, service: str, level: float | np.ndarray, *, amp: float | None = None,
               noise: float | None = None, **labels: str) -> Series:
        if not NAME_RE.match(name) or name.endswith(RESERVED_SUFFIXES):
            raise ValueError(f"{name!r} is not a usable gauge name")
        values = self.daily(level, amp, noise) if np.isscalar(level) else np.asarray(level, dtype=float)
        series = Series(name, {"service": service, **labels}, self.ts, values, self.rng)
        self.series.append(series)
        return series

    def http_service(self, name: str, rps: float | None, *, errors: float | None = 0.003, p99: float | None = 0.25,
                     cpu: float | None = None, memory: float | None = None, pool: float | None = None,
                     amp: float | None = None, noise: float | None = None) -> dict[str, Series]:
        """The usual series of a request-serving service; keys: rps, errors, p99, cpu, memory, pool.

        A level of None leaves that series out.
        """
        amp = self.amplitude if amp is None else amp
        noise = self.noise if noise is None else noise
        svc: dict[str, Series] = {}
        if rps is not None:
            svc["rps"] = self.metric("http_requests_per_second", name, rps, amp=amp, noise=noise)
        if errors is not None:
            svc["errors"] = self.metric("http_error_ratio", name, errors, amp=amp * 0.2, noise=max(noise * 3, 0.15))
        if p99 is not None:
            svc["p99"] = self.metric("http_request_latency_p99_seconds", name, p99, amp=amp * 0.3, noise=noise * 1.5)
        if cpu is not None:
            svc["cpu"] = self.metric("cpu_utilization_ratio", name, cpu, amp=amp * 0.8, noise=noise)
        if memory is not None:
            svc["memory"] = self.metric("memory_utilization_ratio", name, memory, amp=0.03, noise=noise * 0.3)
        if pool is not None:
            svc["pool"] = self.metric("db_connection_pool_utilization_ratio", name, pool, amp=amp, noise=noise)
        return svc

    def counter(self, name: str, service: str, per_minute: float = 0.0, **labels: str) -> Series:
        """A count-per-minute gauge (restarts, Xid errors): Poisson background, usually zero."""
        values = self.rng.poisson(per_minute, len(self.ts)).astype(float)
        return self.metric(name, service, values, **labels)

    # ---- logs -------------------------------------------------------------------------------
    def log(self, service: str, level: str, template: str, per_min: float, start: float | None = None,
            end: float | None = None, ramp: float = 0, **extra: Any) -> None:
        """Emit ``template`` at a Poisson rate of ``per_min`` lines per minute in [start, end].

        ``ramp`` thins the first seconds so a new error pattern grows instead of switching on.
        Extra keys become JSON fields: a string is a template too, a list is picked from.
        """
        start = max(self.log_start if start is None else start, self.log_start)
        end = min(self.at if end is None else end, self.at)
        if end <= start:
            return
        times = np.sort(self.rng.uniform(start, end, self.rng.poisson(per_min * (end - start) / MIN)))
        if ramp > 0:
            times = times[self.rng.uniform(0, 1, len(times)) < np.clip((times - start) / ramp, 0.05, 1)]
        for t in times:
            self.once(t, service, level, template, **extra)

    def once(self, ts: float, service: str, level: str, template: str, **extra: Any) -> None:
        """One log line at ``ts`` (a one-off event: a node cordoned, a model loaded)."""
        if not self.log_start <= ts <= self.at:
            return
        record: dict[str, Any] = {"ts": iso(ts), "service": service, "level": level, "message": fill(template, self.rng)}
        for key, value in extra.items():
            record[key] = str(self.rng.choice(value)) if isinstance(value, (list, tuple)) else fill(str(value), self.rng)
        self.lines.append((float(ts), len(self.lines), record))

    # ---- changes ----------------------------------------------------------------------------
    def change(self, ts: float, service: str, kind: str, summary: str, author: str, *,
               version: str | None = None, previous_version: str | None = None) -> dict[str, Any]:
        """A change record; ids are given when written, in time order."""
        record: dict[str, Any] = {"id": None, "ts": iso(ts), "service": service, "kind": kind,
                                  "summary": summary, "author": author}
        if version:
            record["version"] = version
        if previous_version:
            record["previous_version"] = previous_version
        self.changes.append(record)
        return record

    def deploy(self, ts: float, service: str, note: str, author: str, bump: str = "minor") -> dict[str, Any]:
        """A deploy that moves ``service`` to its next version (patch or minor bump)."""
        if service not in self.versions:
            self.versions[service] = tuple(int(self.rng.integers(lo, hi)) for lo, hi in ((1, 6), (0, 30), (0, 9)))
        major, minor, patch = self.versions[service]
        previous = f"v{major}.{minor}.{patch}"
        major, minor, patch = (major, minor + 1, 0) if bump == "minor" else (major, minor, patch + 1)
        self.versions[service] = (major, minor, patch)
        version = f"v{major}.{minor}.{patch}"
        return self.change(ts, service, "deploy", f"{service} {previous} -> {version} ({note})", author,
                           version=version, previous_version=previous)

    def routine_changes(self, services: list[str], count: int, latest_minutes_ago: float = 90) -> None:
        """Harmless background: deploys, config tweaks and flags over the previous day."""
        times = np.sort(self.rng.uniform(self.ago(26 * 60), self.ago(latest_minutes_ago), count))
        for t in times:
            service = str(self.rng.choice(services))
            roll = self.rng.uniform()
            author = str(self.rng.choice(AUTHORS))
            pick = lambda options: fill(str(self.rng.choice(options)), self.rng)  # noqa: E731
            if "db" in service.split("-"):  # databases get tuning, not releases or product flags
                self.change(t, service, "config", f"{service}: {pick(DB_CONFIGS)}", author)
            elif roll < 0.6:
                self.deploy(t, service, f"PR #{self.rng.integers(300, 4000)}: {pick(ROUTINE_PRS)}", author,
                            bump=str(self.rng.choice(["minor", "patch"])))
            elif roll < 0.85:
                self.change(t, service, "config", f"{service}: {pick(ROUTINE_CONFIGS)}", author)
            else:
                self.change(t, service, "flag", f"{service}: {pick(ROUTINE_FLAGS)}", author)

    # ---- truth ------------------------------------------------------------------------------
    def truth(self, category: str, component: str, mitigations: list[str], onset: float,
              decoy: Decoy | None = None) -> None:
        self.truth_record = {"category": category, "component": component, "mitigations": mitigations,
                             "onset": iso(onset)}
        if decoy:
            self.truth_record["decoy"] = {k: v for k, v in (("component", decoy.component), ("note", decoy.note)) if v}
            self._decoy_change = decoy.change

    # ---- output -----------------------------------------------------------------------------
    def write(self, folder: Path) -> None:
        if self.truth_record is None:
            raise ValueError(f"{self.slug}: no truth recorded")
        folder.mkdir(parents=True, exist_ok=True)
        self.changes.sort(key=lambda c: c["ts"])
        for number, record in enumerate(self.changes, start=self.first_change_id):
            record["id"] = f"chg-{number}"
        truth = dict(self.truth_record)
        if self._decoy_change is not None:
            truth["decoy"] = {**truth["decoy"], "change_id": self._decoy_change["id"]}
        (folder / "scenario.yml").write_text(_yaml(self.description), encoding="utf-8")
        (folder / "truth.yml").write_text(_yaml(truth), encoding="utf-8")
        (folder / "metrics.om").write_text(self.openmetrics(), encoding="utf-8")
        with open(folder / "logs.jsonl", "w", encoding="utf-8") as out:
            for _, _, record in sorted(self.lines, key=lambda item: (item[0], item[1])):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        with open(folder / "changes.jsonl", "w", encoding="utf-8") as out:
            for record in self.changes:
                out.write(json.dumps(record) + "\n")

    def openmetrics(self) -> str:
        families: dict[str, list[Series]] = {}
        for series in self.series:
            families.setdefault(series.name, []).append(series)
        ts = [str(int(t)) for t in self.ts]
        out: list[str] = []
        for name, members in families.items():
            out.append(f"# TYPE {name} gauge\n")
            for series in members:
                values = np.clip(series.values, 0, 1 if name.endswith("_ratio") else None)
                labels = ",".join(f'{k}="{v}"' for k, v in series.labels.items())
                prefix = f"{name}{{{labels}}} "
                out.extend(f"{prefix}{_decimal(v, _decimals(name))} {t}\n" for v, t in zip(values, ts))
        out.append("# EOF\n")
        return "".join(out)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def _decimals(name: str) -> int:
    if name in COUNT_METRICS:
        return 0
    if name.endswith(("_ratio", "_rate", "_score")):
        return 4
    if name.endswith("_seconds"):
        return 3
    return 2


def _decimal(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


AUTHORS = ["alice", "bob", "chen", "dmitri", "esra", "farid", "grace", "hiro", "ines", "jonas", "kemi", "lena",
           "ci-bot", "renovate[bot]"]
ROUTINE_PRS = [
    "bump logging library", "add request id to error responses", "refactor metrics middleware",
    "update base image to debian 12.9", "tidy feature flag checks", "fix typo in email template",
    "raise test coverage of handlers", "upgrade grpc to 1.64", "remove dead code path for v1 clients",
    "translate error strings (de, fr)", "cache warmup on startup", "structured logging for retries",
    "dependency bumps (weekly)", "add pagination to admin list", "improve healthcheck output",
]
ROUTINE_CONFIGS = [
    "log level debug -> info", "HPA max replicas {int:8-12} -> {int:13-20}", "request body limit 1MiB -> 2MiB",
    "rotate TLS certificate (expires in 21d)", "add CORS origin https://partner{int:1-9}.example.com",
    "cache TTL {int:30-60}s -> {int:61-120}s", "GOMAXPROCS pinned to limits.cpu",
]
DB_CONFIGS = [
    "work_mem 4MB -> 8MB", "log_min_duration_statement 500ms -> 1000ms", "autovacuum_vacuum_scale_factor 0.2 -> 0.1",
    "add read replica to connection string for reporting role", "statement_timeout for role reporting 30s -> 60s",
]
ROUTINE_FLAGS = [
    "enable new-onboarding-banner for {int:5-50}% of users", "disable legacy-export (no traffic for 30d)",
    "enable dark-mode-emails for internal users", "enable audit-log-v2 shadow writes",
]


# --------------------------------------------------------------------------------------------
# Shared log backgrounds
# --------------------------------------------------------------------------------------------

def access_logs(sc: Scenario, service: str, per_min: float, paths: list[str], **extra: Any) -> None:
    """Routine request lines: method, path with ids, status and duration."""
    sc.log(service, "info", "{pick:" + "|".join(paths) + "} 200 {ms:4-420}ms", per_min, **extra)


def healthcheck_noise(sc: Scenario, service: str, per_min: float = 0.3) -> None:
    sc.log(service, "info", "GC pause {ms:1-40}ms heap={int:180-900}MiB goroutines={int:80-400}", per_min)


# --------------------------------------------------------------------------------------------
# The scenarios
# --------------------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[], Scenario]] = {}


def scenario(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


@scenario
def demo() -> Scenario:
    """A checkout release with a broken payment-retry path; search deployed a few minutes earlier."""
    sc = Scenario("demo", at="2026-03-10T14:35:00Z", title="Checkout errors after 14:05",
                  symptom="checkout is returning 500s for many users", service="checkout",
                  services={"web-frontend": ["checkout", "search", "auth"], "checkout": ["payments-db", "auth"]},
                  noise=0.05, amplitude=0.35, peak_hour=14.5)
    onset = sc.ago(30)
    sc.routine_changes(["web-frontend", "checkout", "auth", "search", "payments-db"], 9)

    front = sc.http_service("web-frontend", 210, errors=0.002, p99=0.42)
    checkout = sc.http_service("checkout", 46, errors=0.003, p99=0.31)
    # payments-db stays healthy: the broken retry path fails before it reaches the database.
    sc.metric("db_connection_pool_utilization_ratio", "payments-db", 0.38)
    sc.metric("db_query_latency_p99_seconds", "payments-db", 0.018, amp=0.1)
    sc.http_service("auth", None, errors=0.001, p99=0.06)
    sc.http_service("search", 140, errors=0.002, p99=0.18)

    release = sc.deploy(sc.ago(37), "checkout", "PR #812: new payment retry logic", "alice")
    decoy = sc.deploy(sc.ago(40), "search", "PR #2291: synonyms for brand names", "hiro")
    checkout["errors"].step(onset, 0.13, ramp=120)
    checkout["p99"].step(onset, 0.55, ramp=120, noise=0.15)
    front["errors"].step(onset + 90, 0.045, ramp=120)
    front["p99"].step(onset + 90, 0.35, ramp=120, noise=0.15)

    access_logs(sc, "web-frontend", 2, ["GET /", "GET /product/{int:1000-9999}", "GET /cart", "POST /checkout/confirm"])
    access_logs(sc, "checkout", 1.5, ["POST /v2/checkout/confirm", "GET /v2/checkout/{order}", "POST /v2/checkout/quote"])
    access_logs(sc, "search", 1, ["GET /search?q={id:5}", "GET /suggest?q={id:3}"])
    sc.log("search", "warn", "cache miss for key q:{hex:12}, fetching from index shard {int:0-11}", 1)
    sc.log("auth", "info", "token refreshed for user={user} client=web ttl=3600s", 0.8)
    sc.log("payments-db", "info", "checkpoint complete: wrote {int:200-4000} buffers ({float:0.1-3.0}%); sync={ms:5-90}ms", 0.2)
    healthcheck_noise(sc, "checkout")
    sc.log("checkout", "error", "panic recovered in POST /v2/checkout/confirm: runtime error: invalid memory address or "
           "nil pointer dereference (retry/policy.go:88) order={order}", 4, start=onset, ramp=120)
    sc.log("checkout", "error", "POST /v2/checkout/confirm 500 in {ms:40-900}ms order={order} attempt={int:1-3}",
           3, start=onset, ramp=120)
    sc.log("web-frontend", "error", "upstream checkout responded 500 for POST /checkout/confirm user={user}",
           2.5, start=onset + 90, ramp=120, trace_id="{hex:16}")
    sc.once(sc.ago(37) + 41, "checkout", "info", f"starting checkout {release['version']} (commit {{hex:7}}) "
            "with retry policy exponential")
    sc.truth("code_change", "checkout", ["rollback"], onset,
             Decoy("search", decoy, "healthy search deployed 10 minutes before onset; its metrics stay normal"))
    return sc


@scenario
def orders_client_timeout() -> Scenario:
    """A config push lowers the orders service's database timeout; the database is fine."""
    sc = Scenario("orders-client-timeout", at="2026-01-21T09:20:00Z",
                  title="Intermittent order placement failures",
                  symptom="customers can't place orders, roughly one in five attempts fails with 'something went "
                          "wrong'; the orders service looks flaky",
                  services={"storefront": ["orders", "catalog"], "orders": ["orders-db", "inventory"]},
                  noise=0.09, amplitude=0.45, peak_hour=11)
    onset = sc.ago(22)
    sc.routine_changes(["storefront", "orders", "catalog", "inventory"], 8)

    store = sc.http_service("storefront", 180, errors=0.002, p99=0.5)
    orders = sc.http_service("orders", 38, errors=0.004, p99=0.45, cpu=0.35)
    sc.metric("db_connection_pool_utilization_ratio", "orders-db", 0.31)
    sc.metric("db_query_latency_p99_seconds", "orders-db", 0.19, amp=0.2, noise=0.12)
    sc.http_service("inventory", 64, errors=0.002, p99=None)
    sc.http_service("catalog", None, errors=0.001, p99=0.12)

    sc.change(sc.ago(35), "orders", "config",
              "orders: database.statement_timeout 2000ms -> 200ms (tuning to fail fast, OPS-7731)", "dmitri")
    orders["errors"].step(onset, 0.19, ramp=90)
    orders["p99"].approach(onset, 0.24, ramp=60, noise=0.05)  # nothing slower than the new timeout survives
    store["errors"].step(onset + 120, 0.06, ramp=120)

    access_logs(sc, "storefront", 2, ["GET /", "GET /p/{int:10000-99999}", "POST /api/orders", "GET /api/cart"])
    access_logs(sc, "orders", 1.5, ["POST /orders", "GET /orders/{order}", "GET /orders?customer={user}"])
    access_logs(sc, "catalog", 1, ["GET /products/{int:10000-99999}", "GET /categories/{int:1-80}"])
    sc.log("orders-db", "warn", "slow query: duration={ms:1000-4200}ms statement=SELECT ... FROM order_lines WHERE "
           "order_id = $1 rows={int:1-40}", 1.3)  # steady: the reporting replica is always like this
    sc.log("inventory", "info", "reserved {int:1-6} units of sku-{int:10000-99999} for {order}", 0.8)
    sc.log("orders", "error", "create order failed: pq: canceling statement due to statement timeout "
           "(after {int:200-201}ms) order={order}", 4, start=onset, ramp=90)
    sc.log("orders", "warn", "db call exceeded deadline: context deadline exceeded op=insert_order_lines elapsed={ms:200-215}ms",
           2, start=onset, ramp=90)
    sc.log("storefront", "error", "POST /api/orders -> orders 500 (user={user}) giving up after 1 attempt",
           2, start=onset + 120, ramp=120)
    sc.truth("config_change", "orders", ["config_revert"], onset,
             Decoy("orders-db", note="orders-db logs 'slow query' warnings at the same rate all morning; its metrics stay normal"))
    return sc


@scenario
def billing_db_connections() -> Scenario:
    """Month-end load fills billing-db's connection slots; billing-api queues and sheds load."""
    sc = Scenario("billing-db-connections", at="2026-04-30T17:50:00Z",
                  title="Billing API slow and returning 503s",
                  symptom="invoices page is timing out and the billing API throws 503 Service Unavailable",
                  service="billing-api",
                  services={"billing-api": ["billing-db", "auth"], "invoice-worker": ["billing-db"],
                            "reporting": ["billing-db"]},
                  noise=0.04, amplitude=0.25, peak_hour=16)
    saturation = sc.ago(36)  # the pool is pinned at its limit from here; it starts filling ~6 minutes earlier
    onset = sc.ago(32)
    sc.routine_changes(["billing-api", "invoice-worker", "reporting", "auth", "notifications"], 8)

    api = sc.http_service("billing-api", 85, errors=0.003, p99=0.38, cpu=0.38)
    db_pool = sc.metric("db_connection_pool_utilization_ratio", "billing-db", 0.58, noise=0.02)
    db_cpu = sc.metric("cpu_utilization_ratio", "billing-db", 0.46)
    worker_rps = sc.metric("http_requests_per_second", "invoice-worker", 12)
    sc.metric("http_error_ratio", "invoice-worker", 0.002, amp=0.05, noise=0.2)
    reports = sc.metric("cpu_utilization_ratio", "reporting", 0.22, noise=0.04).spikes(22 * MIN, 0.45, 180)
    sc.metric("http_request_latency_p99_seconds", "reporting", 1.4, noise=0.1)
    sc.http_service("auth", None, errors=0.001, p99=0.05)

    # Month-end invoicing: a little more load than usual, and each invoice run holds its connection
    # longer (bigger invoices). No flood of requests: the pool is simply too small for the day.
    worker_rps.scale(sc.ago(75), 1.12, ramp=40 * MIN)
    api["rps"].scale(sc.ago(75), 1.08, ramp=40 * MIN)
    db_pool.approach(saturation - 6 * MIN, 0.995, ramp=6 * MIN, noise=0.004)
    db_cpu.step(saturation, 0.22, ramp=300)
    api["p99"].step(onset, 4.2, ramp=120, noise=0.15)
    api["errors"].step(onset, 0.11, ramp=180)
    api["cpu"].step(onset, -0.08, ramp=180)
    sc.change(sc.ago(45), "notifications", "config", "notifications: sender pool 4 -> 6 workers", "kemi")

    access_logs(sc, "billing-api", 2.5, ["GET /v1/invoices?account={id:8}", "GET /v1/invoices/inv_{id:12}",
                                         "POST /v1/payments/intents"])
    sc.log("invoice-worker", "info", "invoice inv_{id:12} rendered ({int:1-40} lines, {ms:40-900}ms)", 2)
    for t in reports.spike_times:
        sc.once(t + 170, "reporting", "info", "scheduled report {pick:ar_aging|mrr_daily|dunning} finished in "
                "{float:150-190}s")
    sc.log("billing-db", "info", "automatic vacuum of table \"billing.public.{pick:invoices|line_items|payments}\": "
           "index scans: {int:0-2}, pages removed {int:0-300}", 0.2)
    sc.log("auth", "info", "token refreshed for user={user} client={pick:web|ios|android} ttl=3600s", 1.5)
    sc.log("notifications", "info", "sent {pick:invoice_ready|payment_failed|receipt} email to {user}", 1)
    sc.log("billing-db", "error", "FATAL: remaining connection slots are reserved for non-replication superuser "
           "connections (client {ip})", 3, start=saturation + 60, ramp=120)
    sc.log("billing-db", "warn", "connection count {int:470-500} of max_connections=500", 0.5, start=saturation - 4 * MIN)
    sc.log("billing-api", "error", "could not acquire connection from pool within 5000ms (active=50 idle=0 "
           "waiting={int:20-90}) path=/v1/invoices", 4, start=onset, ramp=120)
    sc.log("billing-api", "warn", "GET /v1/invoices?account={id:8} 503 in {ms:5000-5200}ms (load shed)", 2,
           start=onset + 60, ramp=120)
    sc.truth("capacity", "billing-db", ["scale_out"], onset,
             Decoy("reporting", note="reporting's CPU spikes every ~20 minutes all day (scheduled reports); "
                   "one lands in the window"))
    return sc


@scenario
def ledger_wrong_node_drain() -> Scenario:
    """An operator drains the node running the ledger database primary instead of the one in the ticket."""
    sc = Scenario("ledger-wrong-node-drain", at="2026-02-14T03:40:00Z", title="Ledger writes failing overnight",
                  symptom="payment ledger writes have been failing since about 3am, transfers stuck in pending",
                  services={"transfers": ["ledger-api"], "ledger-api": ["ledger-db"]},
                  noise=0.07, amplitude=0.5, peak_hour=13)
    drain = sc.ago(31)
    onset = sc.ago(28)
    sc.routine_changes(["transfers", "ledger-api", "fx-rates", "kyc"], 7)

    transfers = sc.http_service("transfers", None, errors=0.003, p99=0.6)
    ledger = sc.http_service("ledger-api", 30, errors=0.002, p99=0.12)
    db_errors = sc.metric("db_query_error_ratio", "ledger-db", 0.0005, amp=0.05, noise=0.3)
    db_cpu = {node: sc.metric("cpu_utilization_ratio", "ledger-db", level, node=node)
              for node, level in (("db-node-3", 0.34), ("db-node-4", 0.12))}
    restarts = sc.counter("pod_restarts", "ledger-db", 0.0)
    sc.http_service("fx-rates", None, errors=0.004, p99=0.2)
    sc.http_service("kyc", None, errors=0.01, p99=1.1, noise=0.1)

    sc.change(drain, "ledger-db", "operation",
              "kubectl drain db-node-3 --ignore-daemonsets --delete-emptydir-data (kernel patching, ticket OPS-4412)",
              "oncall-ops")
    db_cpu["db-node-3"].approach(drain + 60, 0.02, ramp=60, noise=0.2)
    db_cpu["db-node-4"].step(drain + 120, 0.05, ramp=120)
    restarts.events(drain + 60, 1.2, until=drain + 25 * MIN)
    db_errors.approach(onset - 60, 0.9, ramp=120, noise=0.05)
    ledger["errors"].step(onset, 0.62, ramp=90, noise=0.05)
    transfers["errors"].step(onset + 60, 0.4, ramp=120, noise=0.05)
    transfers["p99"].step(onset + 60, 2.5, ramp=120)

    access_logs(sc, "transfers", 1.5, ["POST /transfers", "GET /transfers/tr_{id:12}"])
    access_logs(sc, "ledger-api", 2, ["POST /entries", "GET /balances/{id:8}"])
    sc.log("fx-rates", "info", "refreshed {int:140-160} rates from ecb in {ms:80-600}ms", 0.5)
    sc.log("kyc", "warn", "document check for {user} pending manual review (score {float:0.4-0.6})", 0.4)
    sc.log("ledger-db", "info", "checkpoint complete: wrote {int:100-900} buffers; sync={ms:4-60}ms", 0.3)
    sc.once(drain + 4, "ledger-db", "info", "node db-node-3 cordoned; evicting pod ledger-db-0", node="db-node-3")
    sc.log("ledger-db", "warn", "pod ledger-db-0 evicted from db-node-3: The node was low on resource / drained",
           0.5, start=drain + 30, end=drain + 5 * MIN, node="db-node-3")
    sc.log("ledger-db", "error", "primary ledger-db-0 unreachable; replica ledger-db-1 not promoted: fencing lock "
           "held by ledger-db-0 (lease expires in {int:280-3600}s)", 1.5, start=drain + 90, node="db-node-4")
    sc.log("ledger-db", "error", "FailedScheduling: 0/{int:6-7} nodes are available: 1 node(s) were unschedulable, "
           "{int:5-6} node(s) didn't match pod anti-affinity rules", 1, start=drain + 60)
    sc.log("ledger-api", "error", "insert entry failed: dial tcp {ip}:5432: connect: connection refused "
           "transfer=tr_{id:12}", 4, start=onset, ramp=60)
    sc.log("transfers", "error", "ledger-api POST /entries 503, transfer tr_{id:12} left pending", 2, start=onset + 60)
    sc.truth("operation_error", "ledger-db", ["failover", "escalate", "restart"], onset)
    return sc


@scenario
def assistant_model_swap() -> Scenario:
    """A cheaper distilled model is rolled out; answers get less grounded with no errors at all."""
    sc = Scenario("assistant-model-swap", at="2026-05-06T11:10:00Z",
                  title="Support assistant inventing refund policies",
                  symptom="the support assistant is making up refund and warranty policies; several customers "
                          "quoted answers that contradict the help centre",
                  services={"chat-gateway": ["assistant-llm"], "assistant-llm": ["kb-retrieval"]},
                  noise=0.04, amplitude=0.3, peak_hour=10)
    swap = sc.ago(48)
    onset = sc.ago(40)
    sc.routine_changes(["chat-gateway", "assistant-llm", "kb-retrieval", "ticketing"], 8)

    sc.http_service("chat-gateway", 35, errors=0.004, p99=2.8)  # untouched: no errors, latency as usual
    sc.metric("llm_time_to_first_token_p99_seconds", "assistant-llm", 0.9, amp=0.15)
    sc.metric("http_error_ratio", "assistant-llm", 0.003, amp=0.05, noise=0.2)
    eval_score = sc.metric("llm_eval_score", "assistant-llm", 0.87, amp=0.0, noise=0.015)
    halluc = sc.metric("llm_hallucination_ratio", "assistant-llm", 0.03, amp=0.0, noise=0.12)
    sc.metric("retrieval_hit_rate", "kb-retrieval", 0.9, amp=0.0, noise=0.012)
    sc.metric("http_request_latency_p99_seconds", "kb-retrieval", 0.14, amp=0.1)
    sc.http_service("ticketing", 8, errors=0.003, p99=0.3)

    sc.change(swap, "assistant-llm", "model",
              "assistant-llm model support-chat-v7 -> support-chat-v8-distill (30% cheaper per token, passed offline "
              "eval 0.84 vs 0.86)", "ml-platform", version="support-chat-v8-distill", previous_version="support-chat-v7")
    decoy = sc.deploy(sc.ago(44), "chat-gateway", "PR #1502: new typing indicator and markdown tables", "grace")
    eval_score.step(onset, -0.12, ramp=8 * MIN, noise=0.08)
    halluc.step(onset, 0.085, ramp=8 * MIN, noise=0.12)

    access_logs(sc, "chat-gateway", 2, ["POST /v1/chat/messages", "GET /v1/chat/sessions/{id:12}"])
    sc.log("assistant-llm", "info", "generated {int:80-600} tokens in {ms:900-9000}ms model={pick:support-chat-v7}",
           2.5, end=swap)
    sc.log("assistant-llm", "info", "generated {int:80-600} tokens in {ms:800-8000}ms model=support-chat-v8-distill",
           2.5, start=swap)
    sc.once(swap + 75, "assistant-llm", "info", "loaded model support-chat-v8-distill (shards=2, dtype=bf16) in "
            "{float:40-90}s")
    sc.log("kb-retrieval", "info", "query top_k=8 returned {int:5-8} passages (best score {float:0.72-0.93}) "
           "in {ms:20-140}ms", 2)
    sc.log("ticketing", "info", "ticket T-{int:100000-999999} updated by agent {user}", 0.6)
    sc.log("assistant-llm", "warn", "online eval: answer judged unsupported by retrieved context "
           "(groundedness={float:0.05-0.45}) conversation={id:12}", 0.15, end=onset)
    sc.log("assistant-llm", "warn", "online eval: answer judged unsupported by retrieved context "
           "(groundedness={float:0.05-0.45}) conversation={id:12}", 0.9, start=onset, ramp=8 * MIN)
    sc.log("assistant-llm", "warn", "online eval: answer cites policy not present in context: "
           "'{pick:60-day|90-day|lifetime} {pick:refund|warranty|exchange}' conversation={id:12}", 0.6, start=onset,
           ramp=8 * MIN)
    sc.log("chat-gateway", "info", "user feedback thumbs_down conversation={id:12} reason={pick:wrong|made_up|unhelpful}",
           0.1, end=onset)
    sc.log("chat-gateway", "info", "user feedback thumbs_down conversation={id:12} reason={pick:wrong|made_up|unhelpful}",
           0.6, start=onset + 5 * MIN)
    sc.truth("data_or_model", "assistant-llm", ["model_rollback"], onset,
             Decoy("chat-gateway", decoy, "the gateway deployed 4 minutes after the model swap and stays healthy"))
    return sc


@scenario
def gpu_xid_node() -> Scenario:
    """One GPU node starts throwing Xid 79 / ECC errors; its requests stall and TTFT climbs."""
    nodes = ["gpu-node-2", "gpu-node-3", "gpu-node-4"]
    sc = Scenario("gpu-xid-node", at="2026-06-18T21:25:00Z", title="Chat responses slow to start",
                  symptom="LLM responses are super slow to start streaming, TTFT p99 alert firing on chat-api",
                  service="chat-api", services={"chat-api": ["llm-serving", "embeddings"]},
                  noise=0.05, amplitude=0.3, peak_hour=17)
    onset = sc.ago(24)
    sc.routine_changes(["chat-api", "llm-serving", "embeddings", "moderation"], 8)

    api = sc.http_service("chat-api", 28, errors=0.003, p99=3.5)
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.75, amp=0.2)
    queue = sc.metric("llm_queue_depth", "llm-serving", 3, amp=0.4, noise=0.3)
    xid = {n: sc.counter("gpu_xid_errors", "llm-serving", 0.0, node=n) for n in nodes}
    util = {n: sc.metric("gpu_utilization_ratio", "llm-serving", 0.71, node=n) for n in nodes}
    sc.metric("http_error_ratio", "embeddings", 0.001, amp=0.05, noise=0.2)

    xid["gpu-node-4"].events(onset - 2 * MIN, 3)
    util["gpu-node-4"].approach(onset, 0.08, ramp=120, noise=0.4)
    for n in ("gpu-node-2", "gpu-node-3"):
        util[n].step(onset + 60, 0.15, ramp=180)
    ttft.scale(onset, 3.4, ramp=120, noise=0.1)
    queue.step(onset, 14, ramp=180, noise=0.2)
    api["p99"].step(onset + 60, 6, ramp=180, noise=0.12)
    api["errors"].step(onset + 60, 0.025, ramp=180)

    access_logs(sc, "chat-api", 2, ["POST /v1/chat/completions", "POST /v1/chat/completions?stream=true"])
    sc.log("llm-serving", "info", "request {hex:12} finished: prompt_tokens={int:200-3000} "
           "completion_tokens={int:20-800} ttft={ms:120-700}ms", 2, node=nodes)
    sc.log("embeddings", "warn", "input truncated to 512 tokens (got {int:513-2400}) for batch {hex:8}", 1.5)
    sc.log("llm-serving", "error", "NVRM: Xid (PCI:0000:{pick:3b|5e}:00): {pick:79|48}, pid={int:20000-40000}, "
           "{pick:GPU has fallen off the bus.|An uncorrectable double bit ECC error was detected.}", 2.5,
           start=onset - 2 * MIN, node="gpu-node-4")
    sc.log("llm-serving", "error", "worker {int:0-7} on gpu-node-4: CUDA error: an illegal memory access was "
           "encountered; restarting engine", 0.8, start=onset, node="gpu-node-4")
    sc.log("llm-serving", "warn", "request {hex:12} waited {ms:4000-20000}ms in queue (engine on gpu-node-4 "
           "unhealthy, {int:6-30} waiting)", 2, start=onset + 60, node=["gpu-node-2", "gpu-node-3"])
    sc.log("chat-api", "warn", "slow first token from llm-serving: {ms:3000-15000}ms request={hex:12}", 2,
           start=onset + 60, ramp=120)
    sc.change(sc.ago(95), "llm-serving", "infra", "gpu-node-2: NVIDIA driver 550.90 -> 550.127 (fleet rollout)",
              "infra-bot")
    sc.truth("infrastructure", "llm-serving", ["drain_node"], onset,
             Decoy("embeddings", note="embeddings logs 'input truncated' warnings at a steady rate all evening"))
    return sc


@scenario
def tenant_retry_storm() -> Scenario:
    """A tenant's client retries on every streamed chunk; its requests and the token bill multiply."""
    tenants = {"acme-corp": 2.2, "globex": 0.9, "initech": 1.4, "umbrella": 0.6}
    sc = Scenario("tenant-retry-storm", at="2026-08-03T06:15:00Z", title="LLM spend alarm",
                  symptom="LLM cost per minute is about 5x normal and climbing, finance alert fired",
                  service="llm-gateway", services={"llm-gateway": ["llm-serving", "prompt-service"]},
                  noise=0.06, amplitude=0.55, peak_hour=15)
    onset = sc.ago(26)
    sc.routine_changes(["llm-gateway", "llm-serving", "prompt-service", "usage-billing"], 8)

    per_tenant = {t: sc.metric("llm_requests_per_second", "llm-gateway", rps, tenant=t) for t, rps in tenants.items()}
    gw_errors = sc.metric("http_error_ratio", "llm-gateway", 0.003, amp=0.05, noise=0.2)
    tokens = sc.metric("llm_tokens_per_request", "llm-gateway", 950, amp=0.05)
    cost = sc.metric("llm_cost_usd_per_minute", "llm-gateway", 4.1)
    queue = sc.metric("llm_queue_depth", "llm-serving", 4, amp=0.5, noise=0.3)
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.8, amp=0.2)
    sc.http_service("prompt-service", None, errors=0.002, p99=0.05)

    per_tenant["globex"].step(onset, 11, ramp=5 * MIN, noise=0.12)
    tokens.scale(onset, 1.9, ramp=5 * MIN)  # retries resend the whole conversation so far
    cost.scale(onset, 6.5, ramp=5 * MIN, noise=0.08)
    queue.step(onset + 2 * MIN, 20, ramp=5 * MIN, noise=0.2)
    ttft.scale(onset + 2 * MIN, 1.8, ramp=5 * MIN)
    gw_errors.step(onset + 4 * MIN, 0.01, ramp=5 * MIN)
    decoy = sc.deploy(sc.ago(38), "prompt-service", "PR #611: template versions in response headers", "ines")

    for tenant, rps in tenants.items():
        sc.log("llm-gateway", "info", "POST /v1/chat/completions 200 tenant=" + tenant + " model={pick:gpt-large|gpt-small} "
               "prompt_tokens={int:100-2500} completion_tokens={int:20-900} {ms:300-9000}ms", rps * 0.6)
    sc.log("prompt-service", "info", "rendered template {pick:support|summarize|classify}@v{int:3-14} in {ms:1-9}ms", 1)
    sc.log("usage-billing", "info", "flushed usage for {int:30-60} tenants, batch {hex:8}", 0.2)
    sc.log("llm-gateway", "info", "POST /v1/chat/completions 200 tenant=globex model=gpt-large "
           "prompt_tokens={int:3000-14000} completion_tokens={int:5-40} {ms:300-2000}ms retry_of=req_{hex:10} "
           "attempt={int:2-9}", 12, start=onset, ramp=5 * MIN)
    sc.log("llm-gateway", "warn", "client disconnected mid-stream tenant=globex request=req_{hex:10} "
           "after {int:1-40} chunks", 4, start=onset, ramp=5 * MIN)
    sc.log("llm-gateway", "warn", "tenant globex over soft token budget: {int:2-40}M tokens in 15m (budget 1.5M)",
           0.5, start=onset + 6 * MIN)
    sc.log("usage-billing", "warn", "tenant globex spend projection ${int:2000-9000}/day exceeds plan by {int:300-900}%",
           0.2, start=onset + 10 * MIN)
    sc.truth("traffic_surge", "llm-gateway", ["rate_limit", "block_client"], onset,
             Decoy("prompt-service", decoy, "prompt-service deployed 12 minutes before onset; its metrics stay normal"))
    return sc


@scenario
def stale_retrieval_index() -> Scenario:
    """The nightly index refresh fails and the alias falls back to a month-old snapshot."""
    sc = Scenario("stale-retrieval-index", at="2026-03-13T08:45:00Z",
                  title="Docs assistant can't find new pricing",
                  symptom="the docs assistant answers 'I don't have information about that' for anything about the "
                          "new pricing plans, and answers feel generally worse this morning",
                  service="docs-assistant",
                  services={"docs-assistant": ["vector-search", "answer-llm"], "index-refresher": ["vector-search"]},
                  noise=0.04, amplitude=0.35, peak_hour=9)
    swap = sc.ago(42)
    onset = sc.ago(36)
    sc.routine_changes(["docs-assistant", "vector-search", "answer-llm", "web-docs"], 7)

    sc.http_service("docs-assistant", 18, errors=0.003, p99=4.5, amp=0.35)
    hit = sc.metric("retrieval_hit_rate", "vector-search", 0.91, amp=0.0, noise=0.012)
    sc.metric("http_request_latency_p99_seconds", "vector-search", 0.11, amp=0.15)
    sc.metric("http_requests_per_second", "vector-search", 22)
    empty = sc.metric("llm_empty_response_ratio", "answer-llm", 0.02, amp=0.0, noise=0.15)
    score = sc.metric("llm_eval_score", "answer-llm", 0.84, amp=0.0, noise=0.015)
    sc.metric("llm_time_to_first_token_p99_seconds", "answer-llm", 0.7, amp=0.2)
    sc.http_service("web-docs", 60, errors=0.001, p99=0.2)

    sc.change(swap, "vector-search", "index", "alias docs-prod -> docs-2026-02-11 (automatic fallback: "
              "refresh docs-2026-03-13 failed validation)", "index-refresher",
              version="docs-2026-02-11", previous_version="docs-2026-03-12")
    hit.step(onset, -0.27, ramp=2 * MIN, noise=0.08)
    empty.step(onset + 2 * MIN, 0.16, ramp=4 * MIN)
    score.step(onset + 2 * MIN, -0.13, ramp=4 * MIN)

    access_logs(sc, "docs-assistant", 2.5, ["POST /ask", "GET /ask/history/{id:10}"])
    access_logs(sc, "web-docs", 2, ["GET /docs/{pick:api|billing|pricing|sdk}/{id:6}", "GET /search?q={id:5}"])
    sc.log("vector-search", "info", "knn docs-prod k=8 returned {int:6-8} hits above 0.72 in {ms:8-90}ms", 2, end=onset)
    sc.log("vector-search", "info", "knn docs-prod k=8 returned {int:0-8} hits above 0.72 in {ms:8-90}ms", 2, start=onset)
    sc.log("vector-search", "warn", "0 hits above threshold 0.72 for query_id={hex:10} (best {float:0.41-0.69})",
           1.6, start=onset, ramp=2 * MIN)
    sc.log("index-refresher", "info", "refresh docs-2026-03-13: embedded {int:1000-52000}/52310 chunks", 0.3,
           start=sc.ago(200), end=swap - 10 * MIN)
    sc.once(swap - 150, "index-refresher", "error", "refresh docs-2026-03-13 failed validation: recall@10 on canary "
            "set 0.31 < 0.85 (embedding batch 214/388 timed out, {int:11000-12000} chunks missing)")
    sc.once(swap + 2, "index-refresher", "warn", "alias docs-prod switched to fallback snapshot docs-2026-02-11 "
            "(age 30d, last good)")
    sc.log("answer-llm", "info", "answered query_id={hex:10} with {int:2-8} citations, {int:90-700} tokens", 1.8, end=onset)
    sc.log("answer-llm", "warn", "no supporting passages for query_id={hex:10}; returned fallback 'I don't have "
           "information about that'", 1.2, start=onset + 2 * MIN, ramp=4 * MIN)
    sc.truth("data_or_model", "vector-search", ["reindex", "model_rollback"], onset)
    return sc


@scenario
def upstream_llm_rate_limit() -> Scenario:
    """The primary LLM provider starts answering 429; the router's retries cannot hide it."""
    sc = Scenario("upstream-llm-rate-limit", at="2026-09-22T15:05:00Z", title="Assistant failing with 'try again later'",
                  symptom="lots of 'The assistant is busy, try again later' errors in the app since around 14:40",
                  services={"app-backend": ["llm-router"], "llm-router": ["openai-api", "anthropic-api"]},
                  noise=0.06, amplitude=0.4, peak_hour=15)
    onset = sc.ago(23)
    sc.routine_changes(["app-backend", "llm-router", "prompt-cache", "notifications"], 9, latest_minutes_ago=120)

    app = sc.http_service("app-backend", 95, errors=0.003, p99=1.9)
    router = sc.http_service("llm-router", 40, errors=0.004, p99=6.5)
    limited = sc.metric("upstream_rate_limited_ratio", "openai-api", 0.001, amp=0.1, noise=0.5)
    oa_p99 = sc.metric("http_request_latency_p99_seconds", "openai-api", 5.8)
    sc.metric("http_requests_per_second", "openai-api", 34)
    sc.metric("upstream_rate_limited_ratio", "anthropic-api", 0.001, amp=0.1, noise=0.5)
    sc.metric("http_request_latency_p99_seconds", "prompt-cache", 0.012, amp=0.1)
    sc.metric("memory_utilization_ratio", "prompt-cache", 0.72, amp=0.02, noise=0.01)

    limited.step(onset - 60, 0.34, ramp=180, noise=0.15)
    oa_p99.step(onset, 2.5, ramp=180, noise=0.2)
    router["errors"].step(onset, 0.21, ramp=180, noise=0.1)
    router["p99"].step(onset, 9, ramp=180, noise=0.1)
    app["errors"].step(onset + 90, 0.09, ramp=180, noise=0.1)
    decoy = sc.change(sc.ago(29), "prompt-cache", "config", "prompt-cache: eviction policy allkeys-lru -> "
                      "allkeys-lfu", "farid")

    access_logs(sc, "app-backend", 3, ["GET /api/home", "POST /api/assistant/ask", "GET /api/profile"])
    sc.log("llm-router", "info", "routed request {hex:12} to {pick:openai-api|openai-api|openai-api|anthropic-api} "
           "model={pick:gpt-4o|gpt-4o-mini|claude-sonnet} in {ms:400-9000}ms", 2.5)
    sc.log("llm-router", "warn", "retrying upstream request {hex:12} after 502 from openai-api (attempt 1/3)", 0.7)
    sc.log("prompt-cache", "info", "evicted {int:100-3000} keys, used_memory={float:5.1-5.9}G", 0.3)
    sc.log("llm-router", "error", "upstream openai-api returned 429 Too Many Requests: rate limit reached for "
           "gpt-4o on tokens per min (TPM): limit 2000000, used {int:1999000-2000000}; retry-after={int:5-40}s "
           "request={hex:12}", 5, start=onset - 60, ramp=180)
    sc.log("llm-router", "error", "all 3 attempts failed for request {hex:12}: upstream 429, returning 503 to caller",
           2.5, start=onset, ramp=180)
    sc.log("app-backend", "error", "assistant call failed: llm-router 503 Service Unavailable (user={user})", 2,
           start=onset + 90, ramp=180)
    sc.truth("dependency", "openai-api", ["failover"], onset,
             Decoy("prompt-cache", decoy, "prompt-cache changed its eviction policy 6 minutes before onset and stays "
                   "healthy; llm-router's '502 retry' warnings are as frequent before the onset as after"))
    return sc


@scenario
def kv_cache_exhaustion() -> Scenario:
    """Longer prompts at the daily peak fill the KV cache; requests are preempted and queue up."""
    nodes = ["gpu-a1", "gpu-a2"]
    sc = Scenario("kv-cache-exhaustion", at="2026-10-07T13:30:00Z", title="Inference latency at the afternoon peak",
                  symptom="time to first token on inference-api went from under a second to 6-8 s, no errors though",
                  service="inference-api", services={"inference-api": ["vllm-serving", "moderation"]},
                  noise=0.04, amplitude=0.35, peak_hour=13.5)
    onset = sc.ago(27)
    sc.routine_changes(["inference-api", "vllm-serving", "moderation", "usage-billing"], 7)

    api = sc.http_service("inference-api", 30, errors=0.002, p99=4.0)
    kv = sc.metric("llm_kv_cache_utilization_ratio", "vllm-serving", 0.6, amp=0.3)
    gpu_mem = {n: sc.metric("gpu_memory_utilization_ratio", "vllm-serving", 0.8, amp=0.08, noise=0.01, node=n)
               for n in nodes}
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "vllm-serving", 0.85, amp=0.2)
    queue = sc.metric("llm_queue_depth", "vllm-serving", 5, amp=0.5, noise=0.3)
    tokens = sc.metric("llm_tokens_per_request", "vllm-serving", 1800, amp=0.1)
    reloads = sc.metric("http_request_latency_p99_seconds", "moderation", 0.09, noise=0.05).spikes(25 * MIN, 0.5, 120)
    sc.metric("http_error_ratio", "moderation", 0.001, amp=0.05, noise=0.2)
    sc.metric("http_requests_per_second", "moderation", 30)

    # More long-context traffic (a customer's new document-QA feature), ramping up over an hour.
    tokens.scale(sc.ago(80), 1.45, ramp=50 * MIN)
    api["rps"].scale(sc.ago(80), 1.1, ramp=50 * MIN)
    kv.approach(onset - 7 * MIN, 0.985, ramp=6 * MIN, noise=0.008)
    for n in nodes:
        gpu_mem[n].approach(onset - 7 * MIN, 0.975, ramp=6 * MIN, noise=0.005)
    ttft.scale(onset, 7.5, ramp=4 * MIN, noise=0.12)
    queue.step(onset, 42, ramp=4 * MIN, noise=0.2)
    api["p99"].step(onset + 60, 9, ramp=4 * MIN)

    access_logs(sc, "inference-api", 3, ["POST /v1/completions", "POST /v1/chat/completions"])
    sc.log("vllm-serving", "info", "Avg prompt throughput: {float:900-4000} tokens/s, Avg generation throughput: "
           "{float:300-900} tokens/s, Running: {int:20-48} reqs, Pending: {int:0-6} reqs, GPU KV cache usage: "
           "{float:40-80}%", 1, node=nodes, end=onset - 5 * MIN)
    sc.log("vllm-serving", "info", "Avg prompt throughput: {float:900-2000} tokens/s, Avg generation throughput: "
           "{float:150-400} tokens/s, Running: {int:48-64} reqs, Pending: {int:20-90} reqs, GPU KV cache usage: "
           "{float:97-99.9}%", 1, node=nodes, start=onset - 5 * MIN)
    sc.log("vllm-serving", "warn", "Sequence group {int:10000-99999} is preempted by PreemptionMode.RECOMPUTE mode "
           "because there is not enough KV cache space. total_num_cumulative_preemption={int:1-900}", 3,
           node=nodes, start=onset - 2 * MIN, ramp=4 * MIN)
    sc.log("moderation", "info", "classified {int:1-16} inputs in {ms:5-60}ms, flagged {int:0-1}", 1.5)
    for t in reloads.spike_times:
        sc.once(t + 5, "moderation", "info", "reloading blocklist ({int:4000-4100} terms), pausing classifier")
    sc.log("inference-api", "warn", "request {hex:12} first token after {ms:4000-11000}ms (tenant {pick:t-17|t-42|t-88})",
           1.5, start=onset + 60, ramp=4 * MIN)
    sc.truth("capacity", "vllm-serving", ["scale_out"], onset,
             Decoy("moderation", note="moderation's latency spikes for 2 minutes every ~25 minutes all day "
                                      "(blocklist reload); one lands in the window"))
    return sc


@scenario
def summarizer_max_tokens() -> Scenario:
    """A config change lowers max_tokens for the summarizer: summaries end mid-sentence, no errors."""
    sc = Scenario("summarizer-max-tokens", at="2026-07-09T10:40:00Z", title="Meeting summaries cut off",
                  symptom="meeting summaries stop mid-sentence since this morning, the summarizer returns half a "
                          "paragraph",
                  services={"meetings-api": ["summarizer"], "summarizer": ["llm-serving"]},
                  noise=0.05, amplitude=0.4, peak_hour=10)
    onset = sc.ago(31)
    sc.routine_changes(["meetings-api", "summarizer", "llm-serving", "transcriber"], 8)

    sc.http_service("meetings-api", 25, errors=0.002, p99=0.7)
    tokens = sc.metric("llm_tokens_per_request", "summarizer", 420, amp=0.05)
    truncated = sc.metric("llm_empty_response_ratio", "summarizer", 0.01, amp=0.0, noise=0.2)
    score = sc.metric("llm_eval_score", "summarizer", 0.82, amp=0.0, noise=0.015)
    sc.metric("http_error_ratio", "summarizer", 0.002, amp=0.05, noise=0.2)
    p99 = sc.metric("http_request_latency_p99_seconds", "summarizer", 7.5, amp=0.1)
    sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.6, amp=0.2)
    sc.metric("gpu_utilization_ratio", "llm-serving", 0.62, amp=0.35)
    sc.metric("http_requests_per_second", "transcriber", 9)
    sc.metric("cpu_utilization_ratio", "transcriber", 0.55)

    sc.change(sc.ago(39), "summarizer", "config", "summarizer: generation.max_tokens 1024 -> 128 "
              "(align with chat defaults, PR #77 in config repo)", "lena")
    tokens.approach(onset, 125, ramp=60, noise=0.02)
    truncated.step(onset, 0.55, ramp=120, noise=0.06)
    score.step(onset, -0.3, ramp=120, noise=0.08)
    p99.scale(onset, 0.3, ramp=120)

    access_logs(sc, "meetings-api", 2.5, ["GET /meetings/{id:10}", "POST /meetings/{id:10}/summary", "GET /meetings"])
    sc.log("summarizer", "info", "summary for meeting {id:10}: transcript {int:2000-40000} tokens, "
           "{int:180-900} output tokens, finish_reason=stop", 1.6, end=onset)
    sc.log("summarizer", "info", "summary for meeting {id:10}: transcript {int:2000-40000} tokens, "
           "{int:90-128} output tokens, finish_reason={pick:length|length|length|stop}", 1.6, start=onset)
    sc.log("summarizer", "warn", "output hit max_tokens=128 (finish_reason=length) for meeting {id:10}; "
           "summary may be truncated", 1, start=onset, ramp=120)
    sc.log("transcriber", "info", "transcribed {int:5-90} min of audio for meeting {id:10} in {float:10-200}s", 0.8)
    sc.log("llm-serving", "info", "request {hex:12} finished: prompt_tokens={int:200-40000} "
           "completion_tokens={int:20-900}", 2)
    sc.log("transcriber", "warn", "low audio quality for meeting {id:10} (snr {float:2-6} dB), diarization skipped", 0.3)
    sc.truth("config_change", "summarizer", ["config_revert"], onset)
    return sc


@scenario
def router_empty_stream() -> Scenario:
    """A router release coalesces streamed chunks and drops the last one: empty answers, HTTP 200."""
    sc = Scenario("router-empty-stream", at="2026-11-19T19:55:00Z", title="Blank assistant answers",
                  symptom="users report the assistant shows an empty bubble for about one answer in ten; "
                          "no errors in the dashboards",
                  service="llm-router",
                  services={"web-app": ["llm-router"], "llm-router": ["llm-serving", "embeddings"]},
                  noise=0.05, amplitude=0.3, peak_hour=18)
    onset = sc.ago(19)
    sc.routine_changes(["web-app", "llm-router", "llm-serving", "embeddings"], 8)

    sc.http_service("web-app", 70, errors=0.002, p99=0.4)
    router = sc.http_service("llm-router", 32, errors=0.003, p99=7.0, cpu=0.3)
    empty = sc.metric("llm_empty_response_ratio", "llm-router", 0.006, amp=0.0, noise=0.25)
    sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.7, amp=0.2)
    sc.metric("llm_tokens_per_second", "llm-serving", 60, amp=-0.1)
    sc.metric("retrieval_hit_rate", "embeddings", 0.88, amp=0.0, noise=0.012)
    sc.metric("http_request_latency_p99_seconds", "embeddings", 0.07)

    sc.deploy(sc.ago(24), "llm-router", "PR #934: coalesce SSE chunks to cut syscalls", "jonas")
    decoy = sc.change(sc.ago(33), "embeddings", "model", "embeddings: re-pin text-embed-small@2026-10 -> "
                      "text-embed-small@2026-11 (same weights, new tokenizer build)", "ml-platform",
                      version="text-embed-small@2026-11", previous_version="text-embed-small@2026-10")
    empty.step(onset, 0.1, ramp=120, noise=0.1)
    router["cpu"].scale(onset, 0.85, ramp=120)

    access_logs(sc, "web-app", 3, ["GET /app", "GET /app/chat/{id:10}", "POST /api/feedback"])
    sc.log("llm-router", "info", "stream {hex:12} closed: {int:20-900} chunks, {int:50-2000} tokens, "
           "finish_reason=stop", 2.5)
    sc.log("llm-router", "warn", "stream {hex:12} closed: 0 chunks forwarded, {int:30-900} tokens received from "
           "upstream, finish_reason=stop", 2.5, start=onset, ramp=120)
    sc.log("llm-router", "error", "sse writer: flush after close on stream {hex:12}: io: read/write on closed pipe "
           "(coalesce.go:57)", 1, start=onset, ramp=120)
    sc.log("embeddings", "info", "embedded batch of {int:8-64} texts in {ms:10-90}ms", 1.5)
    sc.once(sc.ago(33) + 52, "embeddings", "info", "tokenizer build 2026-11 loaded, vocab=100277")
    sc.log("web-app", "info", "user feedback empty_answer chat={id:10}", 0.05, end=onset)
    sc.log("web-app", "warn", "user feedback empty_answer chat={id:10}", 0.8, start=onset + 3 * MIN)
    sc.truth("code_change", "llm-router", ["rollback"], onset,
             Decoy("embeddings", decoy, "embeddings re-pinned its model 14 minutes before onset; retrieval stays normal"))
    return sc


@scenario
def cache_node_packet_loss() -> Scenario:
    """A NIC on one cache node starts dropping packets; the session cache times out for a third of keys."""
    nodes = ["cache-node-1", "cache-node-2", "cache-node-3"]
    sc = Scenario("cache-node-packet-loss", at="2026-11-02T04:50:00Z", title="Logins timing out in APAC morning",
                  symptom="login and profile pages time out for some users, about a third of attempts",
                  service="accounts",
                  services={"accounts": ["session-cache", "accounts-db"], "api-gateway": ["accounts", "catalog"]},
                  noise=0.06, amplitude=0.4, peak_hour=3)
    onset = sc.ago(34)
    sc.routine_changes(["accounts", "api-gateway", "catalog", "session-cache"], 8)

    gw = sc.http_service("api-gateway", None, errors=0.002, p99=0.35)
    accounts = sc.http_service("accounts", 55, errors=0.002, p99=0.2)
    cache_p99 = sc.metric("cache_latency_p99_seconds", "session-cache", 0.0025, amp=0.1)
    cache_err = {n: sc.metric("cache_error_ratio", "session-cache", 0.0002, amp=0.0, noise=0.4, node=n) for n in nodes}
    sc.metric("db_connection_pool_utilization_ratio", "accounts-db", 0.3)
    sc.http_service("catalog", None, errors=None, p99=0.15)

    cache_p99.step(onset - 2 * MIN, 0.45, ramp=60, noise=0.3)  # a third of the keys live on cache-node-2
    cache_err["cache-node-2"].step(onset - 2 * MIN, 0.28, ramp=60, noise=0.15)
    accounts["errors"].step(onset, 0.2, ramp=120)
    accounts["p99"].step(onset, 2.8, ramp=120, noise=0.1)
    gw["errors"].step(onset + 90, 0.06, ramp=120)
    gw["p99"].step(onset + 90, 1.2, ramp=120)
    sc.change(sc.ago(170), "session-cache", "infra", "cache-node-1: kernel 6.1.112 -> 6.1.119 (monthly patching)",
              "infra-bot")

    access_logs(sc, "api-gateway", 3, ["GET /v1/me", "POST /v1/login", "GET /v1/catalog/{int:1-900}"])
    access_logs(sc, "accounts", 2, ["POST /login", "GET /profile/{user}", "POST /sessions/refresh"])
    sc.log("session-cache", "info", "background save: {int:100000-900000} keys in {ms:200-900}ms", 0.1, node=nodes)
    sc.log("session-cache", "error", "kernel: mlx5_core 0000:3b:00.0 eth1: TX timeout detected, resetting queue "
           "{int:0-15} (tx_dropped={int:1000-90000})", 0.7, start=onset - 3 * MIN, node="cache-node-2")
    sc.log("session-cache", "warn", "client {ip}:{int:30000-60000} read timeout after {int:1-3}s, closing "
           "connection", 1.5, start=onset - 2 * MIN, node="cache-node-2")
    sc.log("accounts", "error", "session lookup failed: redis: i/o timeout (addr=cache-node-2:6379) user={user}",
           4, start=onset, ramp=120)
    sc.log("api-gateway", "error", "upstream accounts timed out after 3000ms: POST /v1/login trace_id={hex:16}",
           2, start=onset + 90, ramp=120)
    sc.log("catalog", "warn", "slow query: {ms:300-900}ms SELECT ... FROM products WHERE category_id = $1", 0.6)
    sc.truth("infrastructure", "session-cache", ["drain_node", "failover"], onset)
    return sc


@scenario
def search_scraper_flood() -> Scenario:
    """A scraper hammers the search API from a handful of addresses; search saturates and sheds load."""
    sc = Scenario("search-scraper-flood", at="2026-06-01T22:10:00Z", title="Search slow and erroring late evening",
                  symptom="product search is very slow and sometimes errors out, mobile app reviews complaining",
                  services={"mobile-bff": ["search-api", "catalog"], "search-api": ["search-index"]},
                  noise=0.1, amplitude=0.5, peak_hour=19)
    onset = sc.ago(21)
    sc.routine_changes(["mobile-bff", "search-api", "catalog", "recommendations"], 8)

    bff = sc.http_service("mobile-bff", 120, errors=0.002, p99=0.6)
    search = sc.http_service("search-api", 75, errors=0.002, p99=0.22, cpu=0.4)
    index_cpu = sc.metric("cpu_utilization_ratio", "search-index", 0.35)
    sc.http_service("catalog", None, errors=0.001, p99=0.12)
    sc.metric("http_request_latency_p99_seconds", "recommendations", 0.3)

    search["rps"].step(onset, 420, ramp=180, noise=0.06)
    search["cpu"].approach(onset + 60, 0.97, ramp=240, noise=0.01)
    index_cpu.approach(onset + 60, 0.93, ramp=240, noise=0.02)
    search["p99"].step(onset + 60, 2.6, ramp=240, noise=0.12)
    search["errors"].step(onset + 2 * MIN, 0.08, ramp=240)
    bff["p99"].step(onset + 3 * MIN, 2.0, ramp=240)
    bff["errors"].step(onset + 3 * MIN, 0.03, ramp=240)
    decoy = sc.deploy(sc.ago(30), "recommendations", "PR #418: diversify carousel ranking", "chen")

    access_logs(sc, "mobile-bff", 3, ["GET /home", "GET /search?q={id:5}", "GET /product/{int:1000-99999}"])
    access_logs(sc, "search-api", 2, ["GET /v2/search?q={id:6}&page={int:1-3}"], client_ip="{ip}")
    sc.log("search-api", "info", "GET /v2/search?q={id:4}&page={int:1-400}&sort=price 200 {ms:30-900}ms", 14,
           start=onset, ramp=180, client_ip=["203.0.113.17", "203.0.113.18", "203.0.113.41", "198.51.100.9"],
           user_agent="python-httpx/0.27.0")
    sc.log("search-api", "warn", "shedding request: {int:180-256} in flight > limit 180 (client {pick:203.0.113.17|"
           "203.0.113.18|203.0.113.41|198.51.100.9})", 3, start=onset + 2 * MIN, ramp=240)
    sc.log("search-index", "warn", "search thread pool queue {int:800-1000}/1000, rejected {int:1-80} tasks", 1,
           start=onset + 60, ramp=240)
    sc.log("catalog", "info", "price update batch {hex:8}: {int:10-400} skus", 0.5)
    sc.log("recommendations", "info", "served carousel for {user} ({int:12-24} items, {ms:20-200}ms)", 1.5)
    sc.log("mobile-bff", "error", "search-api timed out after 2000ms for GET /search?q={id:5} (user={user})", 1.5,
           start=onset + 3 * MIN, ramp=240)
    sc.truth("traffic_surge", "search-api", ["rate_limit", "block_client"], onset,
             Decoy("recommendations", decoy, "recommendations deployed 9 minutes before onset; its metrics stay normal"))
    return sc


@scenario
def dashboard_nothing_departs() -> Scenario:
    """Users find the dashboard sluggish, but no signal leaves its normal range: not enough evidence."""
    sc = Scenario("dashboard-nothing-departs", at="2026-08-18T15:45:00Z", title="Dashboard feels sluggish",
                  symptom="a few customers say the analytics dashboard feels sluggish on their phones this afternoon",
                  service="dashboard-web",
                  services={"dashboard-web": ["dashboard-api", "auth"], "dashboard-api": ["warehouse"]},
                  noise=0.07, amplitude=0.35, peak_hour=14)
    sc.routine_changes(["dashboard-web", "dashboard-api", "auth", "warehouse"], 8)

    sc.http_service("dashboard-web", 40, errors=0.002, p99=0.9, cpu=0.35)
    sc.http_service("dashboard-api", 55, errors=0.002, p99=0.45)
    sc.http_service("auth", 80, errors=0.001, p99=0.08)
    sc.metric("cpu_utilization_ratio", "warehouse", 0.5, amp=0.4)
    sc.metric("db_query_latency_p99_seconds", "warehouse", 1.2, amp=0.3, noise=0.1)
    decoy = sc.deploy(sc.ago(12), "auth", "PR #902: rotate session signing key metadata", "priya")

    access_logs(sc, "dashboard-web", 3, ["GET /d/{id:8}", "GET /d/{id:8}/panel/{int:1-30}", "GET /assets/app.{hex:8}.js"])
    access_logs(sc, "dashboard-api", 3, ["POST /v1/query", "GET /v1/dashboards/{id:8}"])
    sc.log("warehouse", "warn", "slow query {hex:10} took {ms:2000-9000}ms (scan {int:1-40} GB)", 1.2)
    sc.log("auth", "info", "token refreshed for {user} in {ms:2-30}ms", 2)
    sc.truth("unknown", "dashboard-web", ["escalate", "monitor"], sc.ago(40),
             Decoy("auth", decoy, "auth deployed 12 minutes before the question; every signal stays normal"))
    return sc


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

FILES = ("scenario.yml", "truth.yml", "metrics.om", "logs.jsonl", "changes.jsonl")


def promtool_check(folder: Path) -> str | None:
    """None when promtool accepts metrics.om (or is not installed), else its complaint."""
    if shutil.which("promtool") is None:
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(folder / "metrics.om"), tmp],
                             capture_output=True, text=True)
    return None if run.returncode == 0 else (run.stderr or run.stdout).strip()[-500:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("slugs", nargs="*", help="scenarios to write (default: all)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write scenario folders into")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--check", action="store_true", help="validate each metrics.om with promtool")
    args = parser.parse_args(argv)
    if args.list:
        for slug, fn in SCENARIOS.items():
            print(f"{slug:28} {(fn.__doc__ or '').strip()}")
        return 0
    unknown = [s for s in args.slugs if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; see --list")
    status = 0
    for slug in args.slugs or list(SCENARIOS):
        sc = SCENARIOS[slug]()
        folder = args.out / slug
        sc.write(folder)
        size = sum((folder / name).stat().st_size for name in FILES)
        truth = sc.truth_record or {}
        print(f"{slug:28} {truth['category']:16} {truth['component']:16} {len(sc.series):3} series "
              f"{len(sc.lines):5} log lines {len(sc.changes):3} changes {size / 1e6:5.2f} MB")
        if args.check and (problem := promtool_check(folder)):
            print(f"  promtool rejects {folder / 'metrics.om'}: {problem}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
