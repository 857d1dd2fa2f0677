#!/usr/bin/env python3
"""Held-out evaluation set #2 for Sleuth: an independent scenario generator.

Written from scratch (numpy + PyYAML only), following docs/scenarios.md's format contract.
Every scenario is seeded from its slug, so output is byte-identical on every run.

    python scenarios/validation/set2.py   # write all scenarios to $SLEUTH_VALIDATION_OUT (default /tmp/sleuth-validation-set2)
    python scenarios/validation/set2.py --check   # ... and validate every metrics.om with promtool
    python scenarios/validation/set2.py SLUG ...   # only some
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone

import numpy as np
import yaml

OUT = os.environ.get("SLEUTH_VALIDATION_OUT", "/tmp/sleuth-validation-set2")
N = 1681                 # samples: at-28h .. at, one a minute
LAST = N - 1             # index of `at`
LOG_FROM = LAST - 240    # logs cover at-4h .. at
UTC = timezone.utc

AUTHORS = ["priya.n", "tomasz.w", "jlee", "m.okafor", "sam.r", "ines.v", "kwame.a", "yuki.t",
           "renovate-bot", "argo-cd", "platform-bot"]
DEPLOY_NOTES = [
    "bump grpc-go to 1.66.2", "structured logging for retry paths", "remove dead A/B arm 'legacy_sort'",
    "tighten input validation on query params", "base image debian 12.6 -> 12.7",
    "add request-size histogram", "fix typo in 404 message", "refactor config loader",
    "refresh CA bundle", "renovate: minor dependency bumps", "drop unused /v1/debug endpoint",
    "trim health-check log noise", "add tenant id to audit events", "upgrade otel sdk 1.28 -> 1.29",
]
CONFIG_EDITS = [
    ("log sampling ratio", "0.10", "0.05"), ("http idle_timeout", "60s", "90s"),
    ("GOGC", "100", "120"), ("HPA minReplicas", "6", "8"), ("rate limit burst", "200", "250"),
    ("otel trace sampling", "0.05", "0.02"), ("readiness initialDelaySeconds", "5", "10"),
    ("JVM -Xmx", "3g", "3500m"), ("pod CPU request", "500m", "750m"),
    ("metrics scrape interval", "30s", "15s"),
]
FLAG_EDITS = [
    ("otel_exemplars", "off", "on"), ("http2_keepalive", "off", "on"), ("verbose_audit", "on", "off"),
    ("gzip_small_responses", "off", "on"), ("compact_json", "off", "on"),
]
INFRA_EDITS = [
    "node pool {s}-pool: kernel 6.1.0-25 -> 6.1.0-26 (rolling, surge 1)",
    "TLS cert rotation for {s}.internal ingress",
    "{s}: move log shipping to collector v0.104",
    "{s}: PodDisruptionBudget maxUnavailable 1 -> 2",
]


# --------------------------------------------------------------------------------------------
# series


class Series:
    def __init__(self, sc: "Scn", name: str, labels: dict, level: float, amp: float, noise: float,
                 kind: str, peak: float, dec: int | None):
        self.sc, self.name, self.labels, self.kind, self.level, self.noise = sc, name, labels, kind, level, noise
        rng = sc.rng
        h = sc.hours
        shape = np.cos(2 * np.pi * (h - peak) / 24) + 0.3 * np.cos(4 * np.pi * (h - peak - 3) / 24)
        shape /= 1.3
        i = np.arange(N)
        drift = sum(rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * i / rng.uniform(250, 1100) + rng.uniform(0, 6.3))
                    for _ in range(2))
        self.base = level * (1 + amp * shape) * (1 + drift)
        self.nscale = np.ones(N)
        self.dec = dec
        self.spike_times: list[int] = []
        # an occasional small harmless blip, as real series have
        for _ in range(rng.poisson(1.2)):
            t = int(rng.integers(0, N - 90))
            d = int(rng.integers(2, 5))
            self.base[t:t + d] *= 1 + rng.uniform(0.05, 0.15)

    # anomaly shapes ---------------------------------------------------------------------------
    @staticmethod
    def _w(t0, ramp=0.0, until=None, fall=3.0):
        i = np.arange(N, dtype=float)
        if ramp <= 0:
            w = (i >= t0).astype(float)
        else:
            x = np.clip((i - t0) / ramp, 0, 1)
            w = x * x * (3 - 2 * x)
        if until is not None:
            y = np.clip((i - until) / max(fall, 1e-6), 0, 1)
            w = w * (1 - y)
        return w

    def step(self, t0, delta, ramp=0, until=None):
        self.base = self.base + delta * self._w(t0, ramp, until)
        return self

    def scale(self, t0, factor, ramp=0, until=None):
        self.base = self.base * (1 + (factor - 1) * self._w(t0, ramp, until))
        return self

    def approach(self, t0, target, ramp=0, until=None, noise=None):
        w = self._w(t0, ramp, until)
        self.base = self.base * (1 - w) + target * w
        if noise is not None:
            self.nscale = self.nscale * (1 - w) + (noise / self.noise) * w
        return self

    def grow(self, t0, per_min, accel=0.0, until=None):
        """Linear (+ quadratic) growth from t0: a backlog that keeps building."""
        i = np.arange(N, dtype=float)
        x = np.clip(i - t0, 0, None)
        if until is not None:
            x = np.minimum(x, max(until - t0, 0))
        self.base = self.base + per_min * x + accel * x * x
        return self

    def noisier(self, t0, mult, ramp=0):
        self.nscale = self.nscale * (1 + (mult - 1) * self._w(t0, ramp))
        return self

    def erratic(self, t0, sigma, ramp=0):
        """Heavy-tailed per-minute jitter from t0 (a failing disk, a flapping link)."""
        w = self._w(t0, ramp)
        self.base = self.base * np.exp(w * self.sc.rng.normal(0, sigma, N))
        return self

    def spike(self, t, height, dur):
        t = int(t)
        ramp = np.ones(dur)
        if dur >= 3:
            ramp[0] = ramp[-1] = 0.55
        self.base[t:t + dur] += height * ramp[: max(0, min(dur, N - t))]
        self.spike_times.append(t)
        return self

    def spikes(self, every, height, dur, jitter=4):
        t = int(self.sc.rng.integers(0, every))
        while t < N - dur:
            self.spike(t, height * self.sc.rng.uniform(0.8, 1.2), dur)
            t += every + int(self.sc.rng.integers(-jitter, jitter + 1))
        return self

    # rendering --------------------------------------------------------------------------------
    def values(self) -> np.ndarray:
        rng = self.sc.rng
        phi = 0.9
        e = rng.normal(0, self.noise * 0.5 * np.sqrt(1 - phi * phi), N)
        ar = np.zeros(N)
        ar[0] = rng.normal(0, self.noise * 0.5)
        for k in range(1, N):
            ar[k] = phi * ar[k - 1] + e[k]
        white = rng.normal(0, self.noise * 0.85, N)
        factor = np.maximum(1 + self.nscale * (ar + white), 0.05)
        v = self.base * factor
        if self.kind == "ratio":
            v = np.clip(v, 0, 1)
        elif self.kind == "count":
            v = rng.poisson(np.clip(self.base, 0, None)).astype(float)
        elif self.kind == "int":
            v = np.round(np.clip(v, 0, None))
        else:
            v = np.clip(v, 0, None)
        return v

    def decimals(self) -> int:
        if self.kind in ("count", "int"):
            return 0
        if self.dec is not None:
            return self.dec
        lv = abs(self.level)
        return 1 if lv >= 100 else 2 if lv >= 10 else 3 if lv >= 1 else 4 if lv >= 0.1 else 6


def fmt(v: float, dec: int) -> str:
    if dec == 0:
        return str(int(round(v)))
    s = np.format_float_positional(round(float(v), dec), trim="-")
    return "0" if s in ("-0", "0.", "-0.") else s.rstrip(".")


# --------------------------------------------------------------------------------------------
# scenario

_PH = re.compile(r"<(\w+)(?::([^<>]*))?>")


class Scn:
    def __init__(self, slug, at, title, symptom, service=None, services=None, window=None,
                 baseline=None, noise=(0.03, 0.07), amp=0.3, peak=15.0):
        self.slug, self.title, self.symptom, self.service = slug, title, symptom, service
        self.services, self.window, self.baseline = services, window, baseline
        self.rng = np.random.default_rng(zlib.crc32(slug.encode()))
        self.at = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        self.start = self.at - timedelta(hours=28)
        self.hours = ((self.start.hour * 60 + self.start.minute + np.arange(N)) / 60.0) % 24
        self.noise_rng, self.amp, self.peak = noise, amp, peak
        self.series: list[Series] = []
        self.logs: list[tuple[float, int, dict]] = []
        self.changes: list[dict] = []
        self.versions: dict[str, str] = {}
        self.truth_: dict | None = None
        self._seq = 0

    # time
    def ago(self, minutes: float) -> float:
        return LAST - minutes

    def when(self, idx: float) -> datetime:
        return self.start + timedelta(seconds=round(float(idx) * 60))

    def iso(self, idx: float) -> str:
        return self.when(idx).strftime("%Y-%m-%dT%H:%M:%SZ")

    # metrics
    def metric(self, name, service, level, amp=None, noise=None, kind="pos", peak=None, dec=None, **labels):
        if amp is None:
            amp = self.amp * self.rng.uniform(0.7, 1.3)
        if noise is None:
            noise = self.rng.uniform(*self.noise_rng)
        kind = kind if kind != "pos" or not name.endswith("_ratio") else "ratio"
        s = Series(self, name, {"service": service, **labels}, level, amp, noise, kind,
                   self.peak if peak is None else peak, dec)
        self.series.append(s)
        return s

    def http(self, service, rps=None, err=None, p99=None, cpu=None, mem=None, pool=None, **labels):
        d = {}
        if rps is not None:
            d["rps"] = self.metric("http_requests_per_second", service, rps, **labels)
        if err is not None:
            d["err"] = self.metric("http_error_ratio", service, err, amp=self.amp * 0.3,
                                   noise=self.rng.uniform(0.06, 0.10), **labels)
        if p99 is not None:
            d["p99"] = self.metric("http_request_latency_p99_seconds", service, p99,
                                   amp=self.amp * self.rng.uniform(0.2, 0.5), **labels)
        if cpu is not None:
            d["cpu"] = self.metric("cpu_utilization_ratio", service, cpu, **labels)
        if mem is not None:
            d["mem"] = self.metric("memory_utilization_ratio", service, mem, amp=0.05,
                                   noise=self.rng.uniform(0.02, 0.03), **labels)
        if pool is not None:
            d["pool"] = self.metric("db_connection_pool_utilization_ratio", service, pool, **labels)
        return d

    # logs
    def _fill(self, tmpl: str) -> str:
        r = self.rng

        def sub(m):
            k, a = m.group(1), m.group(2)
            if k == "ip":
                return f"10.{r.integers(0, 64)}.{r.integers(0, 256)}.{r.integers(1, 255)}"
            if k == "pip":
                return f"{r.choice([81, 92, 146, 185, 203])}.{r.integers(0, 256)}.{r.integers(0, 256)}.{r.integers(1, 255)}"
            if k == "hex":
                n = int(a or 8)
                return "".join(r.choice(list("0123456789abcdef"), n))
            if k in ("n", "ms"):
                lo, hi = (int(x) for x in a.split("-"))
                return str(int(r.integers(lo, hi + 1)))
            if k == "f":
                lo, hi = (float(x) for x in a.split("-"))
                return f"{r.uniform(lo, hi):.2f}"
            if k == "pick":
                return str(r.choice(a.split("|")))
            if k == "user":
                return f"u{r.integers(1000000, 9999999)}"
            if k == "order":
                return "ord_" + "".join(r.choice(list("0123456789abcdefghjkmnpqrstvwxyz"), 10))
            if k == "id":
                return "".join(r.choice(list("0123456789abcdefghijklmnopqrstuvwxyz"), int(a or 8)))
            return m.group(0)

        out = tmpl
        for _ in range(3):          # inner placeholders first, then the ones around them
            new = _PH.sub(sub, out)
            if new == out:
                break
            out = new
        return out

    def _add(self, t: float, service: str, level: str, tmpl: str, fields: dict):
        rec = {"ts": None, "service": service, "level": level, "message": self._fill(tmpl)}
        for k, v in fields.items():
            if k == "trace":
                if v:
                    rec["trace_id"] = "".join(self.rng.choice(list("0123456789abcdef"), 16))
                continue
            if isinstance(v, (list, tuple)):
                v = v[int(self.rng.integers(0, len(v)))]
            rec[k] = self._fill(v) if isinstance(v, str) else v
        self._seq += 1
        self.logs.append((t, self._seq, rec))

    def log(self, service, level, tmpl, per_min, start=None, end=None, ramp=0, follow=None, **fields):
        s0 = LOG_FROM if start is None else max(start, LOG_FROM)
        e0 = LAST if end is None else min(end, LAST)
        ref = None
        if follow is not None:
            ref = float(np.median(follow.base[LOG_FROM:LOG_FROM + 60]))
        for m in range(int(np.floor(s0)), int(np.ceil(e0))):
            rate = per_min
            if ramp > 0:
                rate *= min(1.0, max(0.05, (m + 0.5 - s0) / ramp))
            if ref:
                rate *= follow.base[m] / ref
            for _ in range(self.rng.poisson(rate)):
                t = m + self.rng.uniform(0, 1)
                if s0 <= t < e0:
                    self._add(t, service, level, tmpl, fields)

    def every(self, service, level, tmpl, period, start=None, end=None, jitter=0.2, **fields):
        t = (LOG_FROM if start is None else max(start, LOG_FROM)) + self.rng.uniform(0, period)
        e0 = LAST if end is None else min(end, LAST)
        while t < e0:
            self._add(t, service, level, tmpl, fields)
            t += period * self.rng.uniform(1 - jitter, 1 + jitter)

    def once(self, t, service, level, tmpl, **fields):
        if LOG_FROM <= t < LAST:
            self._add(t, service, level, tmpl, fields)

    # changes
    def version(self, service):
        if service not in self.versions:
            r = self.rng
            self.versions[service] = f"v{r.integers(1, 7)}.{r.integers(0, 40)}.{r.integers(0, 9)}"
        return self.versions[service]

    def bump(self, service, part="patch"):
        prev = self.version(service)
        a, b, c = (int(x) for x in prev[1:].split("."))
        new = f"v{a}.{b + 1}.0" if part == "minor" else f"v{a}.{b}.{c + 1}"
        self.versions[service] = new
        return prev, new

    def change(self, t, service, kind, summary, author, version=None, previous_version=None):
        c = {"id": None, "ts": self.iso(t), "service": service, "kind": kind, "summary": summary,
             "author": author}
        if version:
            c["version"] = version
        if previous_version:
            c["previous_version"] = previous_version
        c["_t"] = t
        self.changes.append(c)
        return c

    def deploy(self, t, service, note, author, part="patch"):
        prev, new = self.bump(service, part)
        pr = int(self.rng.integers(1200, 9800))
        return self.change(t, service, "deploy", f"{service} {prev} -> {new} (PR #{pr}: {note})",
                           author, version=new, previous_version=prev)

    def routine(self, services, count, latest=80):
        """Harmless background changes over the previous day, oldest first."""
        r = self.rng
        times = np.sort(r.uniform(self.ago(27 * 60), self.ago(latest), count))
        kinds = r.choice(["deploy", "deploy", "deploy", "config", "config", "flag", "infra"], count)
        for t, k in zip(times, kinds):
            s = str(r.choice(services))
            if k == "deploy":
                self.deploy(float(t), s, str(r.choice(DEPLOY_NOTES)), str(r.choice(AUTHORS)))
            elif k == "config":
                key, a, b = CONFIG_EDITS[int(r.integers(0, len(CONFIG_EDITS)))]
                self.change(float(t), s, "config", f"{s}: {key} {a} -> {b}", str(r.choice(AUTHORS[:8])))
            elif k == "flag":
                key, a, b = FLAG_EDITS[int(r.integers(0, len(FLAG_EDITS)))]
                self.change(float(t), s, "flag", f"flag {s}.{key}: {a} -> {b}", str(r.choice(AUTHORS[:8])))
            else:
                self.change(float(t), s, "infra", str(r.choice(INFRA_EDITS)).format(s=s),
                            str(r.choice(["platform-bot", "kwame.a", "yuki.t"])))

    # truth
    def truth(self, category, component, mitigations, onset, decoy=None):
        self.truth_ = {"category": category, "component": component, "mitigations": mitigations,
                       "onset": onset, "decoy": decoy}

    # output
    def write(self, root):
        d = os.path.join(root, self.slug)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        q = {"title": self.title, "symptom": self.symptom}
        if self.service:
            q["service"] = self.service
        q["at"] = self.iso(LAST)
        if self.window:
            q["window"] = self.window
        if self.services:
            q["services"] = {k: {"depends_on": v} for k, v in self.services.items()}
        if self.baseline:
            q["baseline"] = self.baseline
        with open(os.path.join(d, "scenario.yml"), "w") as f:
            yaml.safe_dump(q, f, sort_keys=False, default_flow_style=False, width=100)

        # changes: ids in time order
        chs = sorted(self.changes, key=lambda c: c["_t"])
        base_id = int(self.rng.integers(2000, 8000))
        for k, c in enumerate(chs):
            c["id"] = f"chg-{base_id + k}"
        with open(os.path.join(d, "changes.jsonl"), "w") as f:
            for c in chs:
                f.write(json.dumps({k: v for k, v in c.items() if k != "_t"}) + "\n")

        t = self.truth_
        tr = {"category": t["category"], "component": t["component"], "mitigations": t["mitigations"],
              "onset": self.iso(t["onset"])}
        if t["decoy"]:
            dc = {"component": t["decoy"]["component"]}
            if t["decoy"].get("change"):
                dc["change_id"] = t["decoy"]["change"]["id"]
            dc["note"] = t["decoy"]["note"]
            tr["decoy"] = dc
        with open(os.path.join(d, "truth.yml"), "w") as f:
            yaml.safe_dump(tr, f, sort_keys=False, default_flow_style=False, width=100)

        # metrics: families contiguous, in first-seen order
        fams: dict[str, list[Series]] = {}
        for s in self.series:
            fams.setdefault(s.name, []).append(s)
        ts = [int(self.when(i).timestamp()) for i in range(N)]
        with open(os.path.join(d, "metrics.om"), "w") as f:
            for name, ss in fams.items():
                f.write(f"# TYPE {name} gauge\n")
                for s in ss:
                    lab = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
                    v = s.values()
                    dec = s.decimals()
                    f.write("".join(f"{name}{{{lab}}} {fmt(x, dec)} {tt}\n" for x, tt in zip(v, ts)))
            f.write("# EOF\n")

        logs = sorted(self.logs, key=lambda x: (x[0], x[1]))
        with open(os.path.join(d, "logs.jsonl"), "w") as f:
            for tt, _, rec in logs:
                rec["ts"] = self.when(np.floor(tt * 60) / 60).strftime("%Y-%m-%dT%H:%M:%SZ")
                f.write(json.dumps(rec) + "\n")
        return d, len(self.series), len(logs), len(chs)


SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


# ============================================================================================
# 1. code_change: N+1 query in a catalog release -> p99 only; DB CPU follows 1-2 min later


@scenario
def catalog_n_plus_one():
    sc = Scn("catalog-n-plus-one", at="2026-08-13T15:42:00Z",
             title="Listing pages slow since mid-afternoon",
             symptom="category/listing pages are crawling - p99 on the catalog API is through the roof, "
                     "but nothing is actually failing",
             service="catalog-api",
             services={"edge-gateway": ["catalog-api", "pricing-svc", "image-resizer"],
                       "catalog-api": ["catalog-pg", "pricing-svc"]},
             noise=(0.02, 0.06), amp=0.35, peak=17.5)
    onset = sc.ago(27)
    sc.routine(["catalog-api", "catalog-pg", "edge-gateway", "pricing-svc", "image-resizer"], 8)
    rel = sc.deploy(onset - 4, "catalog-api", "show per-variant availability on listing cards", "jlee", "minor")

    gw = sc.http("edge-gateway", rps=840, err=0.0012, p99=0.41)
    api = sc.http("catalog-api", rps=310, err=0.0009, p99=0.27, cpu=0.41, pool=0.33)
    pg_cpu = sc.metric("cpu_utilization_ratio", "catalog-pg", 0.34, noise=0.03)
    pg_lat = sc.metric("db_query_latency_p99_seconds", "catalog-pg", 0.011, noise=0.05)
    sc.http("pricing-svc", err=0.0021, p99=0.065)
    sc.metric("cpu_utilization_ratio", "image-resizer", 0.52, noise=0.09, amp=0.5)
    img_p99 = sc.metric("http_request_latency_p99_seconds", "image-resizer", 0.9, noise=0.08)
    img_p99.spikes(every=180, height=0.35, dur=4)

    # rolling deploy reaches all pods over ~4 minutes; p99 climbs with it, errors do not move
    api["p99"].step(onset - 1, 0.95, ramp=5)
    api["cpu"].step(onset, 0.09, ramp=4)
    api["pool"].step(onset, 0.31, ramp=4)
    gw["p99"].step(onset + 1, 0.62, ramp=5)
    # knock-on: 50x more point lookups land on the database 1-2 minutes later
    pg_cpu.step(onset + 1.5, 0.41, ramp=4)
    pg_lat.step(onset + 2, 0.006, ramp=4)

    cats = "shoes|outdoor|kitchen|toys|garden|lighting|audio|sale"
    sc.log("edge-gateway", "info", "GET /api/v2/listings?cat=<pick:" + cats + ">&page=<n:1-9> 200 <ms:40-380>ms ua=<pick:ios/7.31|android/7.30|web>", 2.6, follow=gw["rps"], client_ip="<pip>")
    sc.log("edge-gateway", "info", "GET /api/v2/listings?cat=<pick:" + cats + ">&page=<n:1-9> 200 <ms:900-2900>ms ua=<pick:ios/7.31|android/7.30|web>", 1.6, start=onset + 1, ramp=4, client_ip="<pip>")
    sc.log("catalog-api", "info", "listing rendered cat=<pick:" + cats + "> items=48 db_calls=<n:2-4> took=<ms:35-240>ms", 3.0, end=onset, follow=api["rps"])
    sc.log("catalog-api", "info", "listing rendered cat=<pick:" + cats + "> items=48 db_calls=<n:2-4> took=<ms:35-240>ms", 3.0, start=onset, end=onset + 4, follow=api["rps"])
    sc.log("catalog-api", "info", "listing rendered cat=<pick:" + cats + "> items=48 db_calls=<n:50-97> took=<ms:700-2600>ms", 3.0, start=onset - 1, ramp=5, follow=api["rps"])
    sc.log("catalog-api", "warn", "slow handler GET /api/v2/listings took <ms:800-3100>ms (budget 750ms) sql_statements=<n:50-97> trace=<hex:16>", 2.2, start=onset - 1, ramp=5)
    sc.log("catalog-api", "warn", "request body for POST /api/v2/admin/reindex larger than 1MiB, streaming", 0.08)
    sc.once(onset - 4 + 0.7, "catalog-api", "info", "catalog-api " + rel["version"] + " starting, git_sha=<hex:12>, pool_size=40")
    sc.log("catalog-pg", "info", "checkpoint complete: wrote <n:900-4200> buffers (<f:1-9>%); <n:0-3> WAL file(s) added, sync=<f:0-2> s", 0.2)
    sc.log("catalog-pg", "info", "automatic vacuum of table \"catalog.public.<pick:variant_stock|listing_cache|price_points>\": index scans: 1, pages: <n:0-90> removed", 0.15)
    sc.log("catalog-pg", "warn", "duration: <ms:101-190> ms  statement: SELECT qty, warehouse_id FROM variant_stock WHERE variant_id = $1", 1.4, start=onset + 2, ramp=5)
    sc.log("catalog-pg", "warn", "duration: <ms:240-900> ms  statement: SELECT * FROM listing_cache WHERE refreshed_at < now() - interval '1 hour'", 0.12)
    sc.log("pricing-svc", "info", "quote batch size=<n:10-48> currency=<pick:EUR|USD|GBP> took=<ms:8-60>ms", 1.8)
    sc.log("pricing-svc", "warn", "fx rate for <pick:JPY|CHF|SEK|PLN> older than 10m, serving cached rate", 0.35)
    sc.log("image-resizer", "info", "resized img_<id:10> to <pick:320|640|1280>w in <ms:30-400>ms", 2.0)
    sc.log("image-resizer", "warn", "source image img_<id:10> is <n:21-48>MB, downscaling before crop", 0.25)

    sc.truth("code_change", "catalog-api", ["rollback"], onset,
             {"component": "catalog-pg", "note": "database CPU and statement-time warnings rise 1-2 min after the "
                                                 "release; it is the N+1 query's victim, not the cause"})
    return sc


# ============================================================================================
# 2. config_change: recommendation flag -> error ratio on recs; decoy deploy on search 5 min before


@scenario
def recs_ranker_flag():
    sc = Scn("recs-ranker-flag", at="2026-06-02T19:18:00Z",
             title="Home page recommendations failing",
             symptom="home page 'picked for you' carousel is failing for a chunk of users, we see 5xx from the "
                     "recommendations call in the browser",
             services={"shop-web": ["recs-service", "search-svc", "profile-svc"],
                       "recs-service": ["feature-store", "profile-svc"]},
             noise=(0.03, 0.08), amp=0.45, peak=19.5)
    onset = sc.ago(22)
    sc.routine(["shop-web", "recs-service", "search-svc", "profile-svc", "feature-store"], 9)
    decoy = sc.deploy(onset - 5, "search-svc", "synonym dictionary refresh + bm25 tuning", "ines.v", "minor")
    sc.change(onset - 2, "recs-service", "flag",
                     "flag recs.ranker.two_tower_v2: rollout 5% -> 100% (EXP-812 ship decision)", "m.okafor")

    web = sc.http("shop-web", rps=1250, err=0.0018, p99=0.62)
    recs = sc.http("recs-service", rps=430, err=0.0014, p99=0.14, cpu=0.47)
    sc.http("search-svc", err=0.0025, p99=0.21, cpu=0.38)
    sc.http("profile-svc", err=0.0007, p99=0.045)
    sc.metric("cache_latency_p99_seconds", "feature-store", 0.0042, noise=0.05)
    fs_rps = sc.metric("http_requests_per_second", "feature-store", 2900, noise=0.04)

    recs["err"].step(onset, 0.105, ramp=2)
    recs["p99"].step(onset, 0.05, ramp=2)
    recs["cpu"].step(onset, 0.05, ramp=3)
    fs_rps.step(onset - 0.5, 700, ramp=2)        # the new path asks for one more feature view
    web["err"].step(onset + 1, 0.0065, ramp=2)   # the page degrades gracefully for most slots

    slots = "home_hero|home_grid|pdp_similar|cart_addons"
    sc.log("shop-web", "info", "GET / 200 <ms:80-600>ms session=<hex:12> ab=<pick:ctrl|t1|t2>", 3.2, follow=web["rps"])
    sc.log("shop-web", "warn", "recs widget degraded: recs-service answered 500 for slot=<pick:" + slots + "> session=<hex:12>", 2.6, start=onset + 0.5, ramp=2, trace=True)
    sc.log("shop-web", "warn", "third-party pixel <pick:adnet|tagmgr> load exceeded 1500ms, deferring", 0.5)
    sc.log("recs-service", "info", "recs served slot=<pick:" + slots + "> n=<n:8-24> ranker=<pick:gbdt_v7|gbdt_v7|gbdt_v7|two_tower_v2> took=<ms:20-130>ms", 3.0, end=onset)
    sc.log("recs-service", "info", "recs served slot=<pick:" + slots + "> n=<n:8-24> ranker=gbdt_v7 took=<ms:20-130>ms", 0.3, start=onset)
    sc.log("recs-service", "error", "POST /v1/recs failed: KeyError: 'item_embedding_v2' in TwoTowerRanker.score (ranker/two_tower.py:212) slot=<pick:" + slots + "> req=<hex:10>", 3.4, start=onset, ramp=2, trace=True)
    sc.log("recs-service", "warn", "feature view item_embedding_v2 not materialised for <n:12-50> of 50 candidates", 1.5, start=onset - 0.5, ramp=2)
    sc.log("recs-service", "warn", "candidate pool for user <user> below 20 after filtering, padding with trending", 0.4)
    sc.once(onset - 2 + 0.3, "recs-service", "info", "flag update received: recs.ranker.two_tower_v2 rollout=100 (was 5)")
    sc.log("search-svc", "info", "q=\"<pick:running shoes|desk lamp|usb c hub|tent|espresso|yoga mat>\" hits=<n:0-900> took=<ms:9-140>ms", 2.2)
    sc.log("search-svc", "warn", "query parse fallback to keyword mode for q_hash=<hex:8>: unbalanced quotes", 0.45)
    sc.once(onset - 5 + 0.8, "search-svc", "info", "search-svc " + decoy["version"] + " ready: synonyms=41,882 shards=12")
    sc.once(onset - 5 + 1.6, "search-svc", "info", "search index warmup complete in 41s, 12/12 shards")
    sc.log("profile-svc", "info", "profile fetch user=<user> fields=<n:3-11> cache=<pick:hit|hit|hit|miss> took=<ms:2-30>ms", 1.4)
    sc.log("feature-store", "info", "online read view=<pick:user_recent_clicks|item_popularity|user_affinity> keys=<n:1-50> took=<ms:1-9>ms", 1.0)

    sc.truth("config_change", "recs-service", ["config_revert", "disable_feature"], onset,
             {"component": "search-svc", "change": decoy,
              "note": "search-svc deployed 5 minutes before onset and stays healthy"})
    return sc


# ============================================================================================
# 3. data_or_model: nightly KB index rebuild with an empty shard -> retrieval hit rate halves


@scenario
def kb_index_empty_shard():
    sc = Scn("kb-index-empty-shard", at="2026-09-21T06:50:00Z",
             title="Support assistant answers got worse overnight",
             symptom="the support bot's answers got noticeably worse this morning - lots of 'I couldn't find "
                     "anything about that' and made-up steps. No errors on any dashboard",
             noise=(0.02, 0.05), amp=0.2, peak=14.0)
    onset = sc.ago(34)
    sc.routine(["help-assistant", "kb-retriever", "embedder", "gen-llm", "ticket-api"], 7)
    # yesterday's nightly rebuild went fine
    sc.change(onset - 4 - 1440 + 7, "kb-retriever", "index",
              "nightly rebuild: alias kb-live kb-articles-20260919 -> kb-articles-20260920 (kb-nightly-build #411)",
              "kb-indexer-bot", version="kb-articles-20260920", previous_version="kb-articles-20260919")
    sc.change(onset - 4, "kb-retriever", "index",
              "nightly rebuild: alias kb-live kb-articles-20260920 -> kb-articles-20260921 (kb-nightly-build #412)",
              "kb-indexer-bot", version="kb-articles-20260921", previous_version="kb-articles-20260920")

    ev = sc.metric("llm_eval_score", "help-assistant", 0.85, amp=0.02, noise=0.02)
    hal = sc.metric("llm_hallucination_ratio", "help-assistant", 0.04, amp=0.05, noise=0.07)
    sc.http("help-assistant", rps=38, err=0.0035, p99=6.2)
    hit = sc.metric("retrieval_hit_rate", "kb-retriever", 0.81, amp=0.03, noise=0.025)
    kr = sc.http("kb-retriever", err=0.0008, p99=0.085)
    sc.http("embedder", p99=0.032, cpu=0.29)
    sc.metric("llm_time_to_first_token_p99_seconds", "gen-llm", 1.35, noise=0.06)
    tpr = sc.metric("llm_tokens_per_request", "gen-llm", 2650, amp=0.06, noise=0.04)
    tk = sc.http("ticket-api", rps=6.5, err=0.0011)

    hit.step(onset - 3, -0.41, ramp=3)
    kr["p99"].scale(onset - 3, 0.8, ramp=3)      # half the shards answer instantly with nothing
    ev.step(onset, -0.17, ramp=7)                 # online eval is a rolling judge, so it lags
    hal.step(onset, 0.085, ramp=7)
    tpr.scale(onset - 2, 0.74, ramp=3)            # fewer passages stuffed into the prompt
    tk["rps"].scale(onset + 12, 1.22, ramp=10)    # users give up and open tickets

    sc.log("help-assistant", "info", "answered conv=<hex:10> passages=<n:4-8> grounded=true latency=<ms:1800-6400>ms", 1.9, end=onset - 2)
    sc.log("help-assistant", "info", "answered conv=<hex:10> passages=<n:0-3> grounded=<pick:true|false|false> latency=<ms:1500-5200>ms", 1.9, start=onset - 2)
    sc.log("help-assistant", "info", "answered conv=<hex:10> passages=<n:4-8> grounded=true latency=<ms:1800-6400>ms", 0.4, start=onset - 2)
    sc.log("help-assistant", "warn", "no passage above relevance 0.45 for conv=<hex:10>, answering without grounding", 0.15, end=onset - 2)
    sc.log("help-assistant", "warn", "no passage above relevance 0.45 for conv=<hex:10>, answering without grounding", 1.1, start=onset - 2, ramp=3)
    sc.log("help-assistant", "info", "thumbs_down conv=<hex:10> reason=<pick:not_helpful|wrong|outdated>", 0.12, end=onset + 3)
    sc.log("help-assistant", "info", "thumbs_down conv=<hex:10> reason=<pick:not_helpful|wrong|not_helpful|made_up>", 0.5, start=onset + 3, ramp=8)
    sc.log("help-assistant", "warn", "conversation <hex:10> exceeded 12 turns, summarising history", 0.3)
    sc.log("kb-retriever", "info", "search ns=kb-live k=8 returned=<n:6-8> top=<f:0.55-0.89> took=<ms:20-110>ms", 1.9, end=onset - 3)
    sc.log("kb-retriever", "info", "search ns=kb-live k=8 returned=<n:1-4> top=<f:0.28-0.71> took=<ms:12-80>ms", 1.9, start=onset - 3)
    sc.every("kb-retriever", "info", "shard stats index=<pick:kb-articles-20260920> shard=<pick:0|1> docs=<n:18800-19100> segments=<n:8-14>", 5, end=onset - 4)
    sc.every("kb-retriever", "info", "shard stats index=kb-articles-20260921 shard=0 docs=<n:19000-19150> segments=<n:8-14>", 5, start=onset - 4)
    sc.every("kb-retriever", "info", "shard stats index=kb-articles-20260921 shard=1 docs=0 segments=0", 5, start=onset - 4)
    sc.once(onset - 4 + 0.2, "kb-retriever", "info", "alias kb-live -> kb-articles-20260921 (requested by kb-nightly-build #412)")
    sc.once(onset - 4 + 0.25, "kb-retriever", "info", "opened index kb-articles-20260921: 2 shards, 19,072 vectors, dim=768")
    sc.log("kb-retriever", "warn", "slow segment merge on shard <pick:0|1>: <ms:900-2400>ms", 0.1)
    sc.log("embedder", "info", "embedded batch size=<n:1-16> model=e5-base-v2 took=<ms:8-40>ms", 2.0)
    sc.log("embedder", "warn", "input truncated to 512 tokens doc=<id:9>", 0.35)
    sc.log("gen-llm", "info", "completion model=helpdesk-8b prompt_tokens=<n:1600-3300> output_tokens=<n:90-420> ttft=<ms:300-1400>ms", 1.8, end=onset - 2)
    sc.log("gen-llm", "info", "completion model=helpdesk-8b prompt_tokens=<n:700-2100> output_tokens=<n:90-420> ttft=<ms:300-1400>ms", 1.8, start=onset - 2)
    sc.log("ticket-api", "info", "ticket created tkt_<id:8> channel=<pick:chat|email|web> priority=<pick:p3|p3|p2>", 0.5, follow=tk["rps"])

    sc.truth("data_or_model", "kb-retriever", ["model_rollback", "reindex"], onset)
    return sc


# ============================================================================================
# 4. infrastructure: failing disk on one broker node -> that node's latency; consumers lag


@scenario
def bus_node_disk_errors():
    sc = Scn("bus-node-disk-errors", at="2026-10-07T02:35:00Z",
             title="Order confirmations delayed overnight",
             symptom="order confirmation emails are arriving 10+ minutes late and the fulfilment board is way "
                     "behind",
             services={"order-ingest": ["event-bus"], "fulfillment-worker": ["event-bus"],
                       "audit-sink": ["event-bus"]},
             noise=(0.03, 0.08), amp=0.5, peak=18.0)
    onset = sc.ago(20)          # consumers start falling behind
    sc.routine(["event-bus", "order-ingest", "fulfillment-worker", "audit-sink"], 6)
    sc.change(sc.ago(19 * 60), "event-bus", "infra",
              "bus-1: kernel 6.1.0-26 -> 6.1.0-27, rolling broker restart (1/3)", "platform-bot")
    decoy = sc.deploy(onset - 12, "audit-sink", "write parquet with zstd instead of snappy", "kwame.a")

    lat = {n: sc.metric("http_request_latency_p99_seconds", "event-bus", 0.019, noise=0.06, node=n)
           for n in ("bus-1", "bus-2", "bus-3")}
    disk = {n: sc.metric("disk_utilization_ratio", "event-bus", 0.23, amp=0.3, noise=0.05, node=n)
            for n in ("bus-1", "bus-2", "bus-3")}
    oi = sc.http("order-ingest", rps=62, err=0.0009, p99=0.085)
    lag = sc.metric("order_events_queue_depth", "fulfillment-worker", 35, noise=0.1, kind="int")
    fw_cpu = sc.metric("cpu_utilization_ratio", "fulfillment-worker", 0.31)
    sc.http("audit-sink", err=0.0015, p99=0.31)

    # the disk on bus-2 degrades: I/O busy climbs, flushes stall, latency erratic and high
    disk["bus-2"].approach(onset - 4, 0.97, ramp=5, noise=0.01)
    lat["bus-2"].step(onset - 2, 1.35, ramp=3).erratic(onset - 2, 0.35, ramp=3)
    oi["p99"].step(onset - 1, 0.9, ramp=3)
    oi["err"].step(onset, 0.017, ramp=3)
    lag.grow(onset, 260, accel=4)
    fw_cpu.scale(onset, 0.7, ramp=4)        # idle: waiting on the stalled partitions

    sc.log("event-bus", "info", "Rolled new log segment for orders-<n:0-11> at offset <n:81000000-89999999> in <ms:1-9> ms", 0.9, node=["bus-1", "bus-2", "bus-3"])
    sc.log("event-bus", "info", "[GroupCoordinator <n:1-3>]: Stabilized group <pick:fulfillment|audit|email-sender> generation <n:1200-1400> with <n:3-6> members", 0.1, node=["bus-1", "bus-2", "bus-3"])
    sc.log("event-bus", "warn", "[ReplicaFetcher replicaId=<pick:1|3>, leaderId=<pick:1|3>] fetch session <n:100000-999999> evicted, creating new one", 0.25, node=["bus-1", "bus-3"])
    sc.log("event-bus", "error", "kernel: blk_update_request: I/O error, dev nvme1n1, sector <n:10000000-99999999> op 0x1:(WRITE) flags 0x8800 phys_seg <n:1-32> prio class 0", 1.8, start=onset - 4, ramp=4, node="bus-2")
    sc.log("event-bus", "error", "kernel: nvme nvme1: I/O <n:100-999> QID <n:1-16> timeout, reset controller", 0.3, start=onset - 3, ramp=4, node="bus-2")
    sc.log("event-bus", "warn", "[Log partition=orders-<pick:2|5|8>, dir=/var/lib/bus/data] fsync of segment took <ms:1100-5400> ms", 1.6, start=onset - 2, ramp=3, node="bus-2")
    sc.log("event-bus", "warn", "[ReplicaFetcher replicaId=<pick:1|3>, leaderId=2] error sending fetch request to node 2: request timed out after 30000ms", 0.6, start=onset, ramp=3, node=["bus-1", "bus-3"])
    sc.log("event-bus", "warn", "[Partition orders-<pick:2|5|8>] ISR shrinking from 2,1,3 to 2", 0.2, start=onset + 2, node="bus-2")
    sc.log("order-ingest", "info", "order accepted <order> items=<n:1-9> partition=<n:0-11> took=<ms:9-70>ms", 3.4, follow=oi["rps"])
    sc.log("order-ingest", "warn", "produce to orders-<pick:2|5|8> (leader bus-2) timed out after 1500ms, retry <n:1-3>/5 order=<order>", 1.9, start=onset - 1, ramp=3)
    sc.log("order-ingest", "error", "giving up on order <order> after 5 produce retries, parking in outbox", 0.35, start=onset + 2, ramp=4)
    sc.log("fulfillment-worker", "info", "picked <order> for warehouse <pick:AMS1|LHR2|FRA1> lines=<n:1-9>", 2.6, end=onset, follow=oi["rps"])
    sc.log("fulfillment-worker", "info", "picked <order> for warehouse <pick:AMS1|LHR2|FRA1> lines=<n:1-9>", 1.3, start=onset, follow=oi["rps"])
    sc.every("fulfillment-worker", "info", "consumer lag group=fulfillment partitions=12 total=<n:0-90>", 1.0, end=onset)
    sc.every("fulfillment-worker", "warn", "consumer lag group=fulfillment partitions=12 total=<n:2000-40000> (stalled: 2,5,8)", 1.0, start=onset)
    sc.log("fulfillment-worker", "warn", "carrier label API slow for <pick:dhl|ups|postnl>: <ms:1500-4000>ms", 0.2)
    sc.log("audit-sink", "info", "flushed <n:800-5200> records to s3://audit-lake/orders/dt=2026-10-07/part-<hex:8>.parquet", 0.6)
    sc.log("audit-sink", "warn", "schema registry cache miss for subject orders-value, refetching", 0.15)
    sc.once(onset - 12 + 0.5, "audit-sink", "info", "audit-sink " + decoy["version"] + " started, codec=zstd level=3")

    sc.truth("infrastructure", "event-bus", ["drain_node", "failover"], onset,
             {"component": "audit-sink", "change": decoy,
              "note": "audit-sink (a consumer of the same bus) deployed 12 minutes earlier and is healthy"})
    return sc


# ============================================================================================
# 5. capacity: media workers saturate at the afternoon peak; decoy config change 10 min before


@scenario
def thumbnail_backlog():
    sc = Scn("thumbnail-backlog", at="2026-07-16T13:05:00Z",
             title="Thumbnails taking ages to appear",
             symptom="users say uploaded photos sit on the grey placeholder for ages; thumbnails are taking "
                     "10+ minutes to show up",
             service="media-worker",
             noise=(0.03, 0.07), amp=0.55, peak=13.5)
    onset = sc.ago(31)
    sc.routine(["upload-api", "media-worker", "cdn-edge", "notify-svc", "metadata-db"], 8)
    decoy = sc.change(onset - 10, "notify-svc", "config",
                      "notify-svc: push digest batch size 200 -> 500", "yuki.t")

    up = sc.http("upload-api", rps=48, err=0.0021, p99=1.6)
    cpu = sc.metric("cpu_utilization_ratio", "media-worker", 0.58, amp=0.45, noise=0.04)
    q = sc.metric("job_queue_depth", "media-worker", 45, amp=0.5, noise=0.09, kind="int")
    jl = sc.metric("job_latency_p99_seconds", "media-worker", 4.2, amp=0.25, noise=0.07)
    mem = sc.metric("memory_utilization_ratio", "media-worker", 0.61, amp=0.08, noise=0.02)
    cdn = sc.http("cdn-edge", err=0.0031, p99=0.12)
    sc.http("notify-svc", rps=140, err=0.0012)
    sc.metric("db_query_latency_p99_seconds", "metadata-db", 0.018, noise=0.05)

    # a heavier day than yesterday: uploads run ~25% above the usual afternoon peak
    up["rps"].scale(onset - 120, 1.25, ramp=110)
    cpu.approach(onset - 9, 0.985, ramp=9, noise=0.006)
    q.grow(onset - 3, 38, accel=0.9)
    jl.step(onset, 10.0, ramp=4).grow(onset + 4, 22)
    mem.step(onset - 2, 0.07, ramp=6)
    cdn["err"].step(onset + 3, 0.006, ramp=5)       # 404s for thumbnails not generated yet

    sc.log("upload-api", "info", "POST /v1/uploads 201 asset=ast_<id:10> bytes=<n:200000-9000000> took=<ms:300-2200>ms", 2.8, follow=up["rps"])
    sc.log("upload-api", "warn", "client aborted multipart upload ast_<id:10> after <n:1-9> parts", 0.3)
    sc.log("media-worker", "info", "job <hex:12> done kind=thumbnail sizes=4 took=<ms:300-900>ms queue_wait=<ms:5-900>ms", 3.0, end=onset - 2)
    sc.log("media-worker", "info", "job <hex:12> done kind=thumbnail sizes=4 took=<ms:900-2400>ms queue_wait=<ms:30000-600000>ms", 2.9, start=onset - 2)
    sc.log("media-worker", "info", "job <hex:12> done kind=<pick:exif_strip|video_poster> took=<ms:200-3000>ms", 0.6)
    sc.log("media-worker", "warn", "queue media-jobs backlog <n:600-9000> above soft limit 500 (workers 24/24 busy)", 1.0, start=onset, ramp=4)
    sc.log("media-worker", "warn", "job <hex:12> ran past 30s visibility timeout, extending lease", 0.7, start=onset + 4, ramp=6)
    sc.log("media-worker", "warn", "libvips: corrupt JPEG data: <n:1-400> extraneous bytes before marker 0xd9 asset=ast_<id:10>", 0.3)
    sc.log("cdn-edge", "info", "GET /thumb/<hex:12>/<pick:sm|md|lg>.webp 200 cache=<pick:HIT|HIT|HIT|MISS> <ms:1-40>ms", 2.4)
    sc.log("cdn-edge", "warn", "origin 404 for /thumb/<hex:12>/<pick:sm|md|lg>.webp (not generated yet)", 0.15, end=onset + 3)
    sc.log("cdn-edge", "warn", "origin 404 for /thumb/<hex:12>/<pick:sm|md|lg>.webp (not generated yet)", 1.6, start=onset + 3, ramp=6)
    sc.log("notify-svc", "info", "push digest batch sent n=<n:150-200> provider=<pick:apns|fcm> took=<ms:80-400>ms", 0.9, end=onset - 10)
    sc.log("notify-svc", "info", "push digest batch sent n=<n:380-500> provider=<pick:apns|fcm> took=<ms:120-600>ms", 0.4, start=onset - 10)
    sc.log("notify-svc", "warn", "apns token invalid for device <hex:16>, pruning", 0.4)
    sc.once(onset - 10 + 0.4, "notify-svc", "info", "config reloaded: push.digest.batch_size=500 (was 200)")
    sc.log("metadata-db", "info", "checkpoint complete: wrote <n:400-2600> buffers", 0.2)

    sc.truth("capacity", "media-worker", ["scale_out"], onset,
             {"component": "notify-svc", "change": decoy,
              "note": "routine batch-size change on an unrelated service 10 minutes before the backlog"})
    return sc


# ============================================================================================
# 6. traffic_surge: promo email triples storefront traffic; steady cache-miss noise as decoy


@scenario
def flash_sale_surge():
    sc = Scn("flash-sale-surge", at="2026-11-13T18:10:00Z",
             title="Storefront sluggish during flash sale",
             symptom="site feels sluggish and some shoppers are getting the 'something went wrong' page since "
                     "the flash sale went out",
             service="storefront",
             services={"storefront": ["cart-svc", "session-cache", "product-db"],
                       "cart-svc": ["product-db", "payments-gw"]},
             noise=(0.03, 0.06), amp=0.4, peak=19.0)
    onset = sc.ago(24)
    sc.routine(["storefront", "cart-svc", "session-cache", "product-db", "payments-gw"], 7)

    sf = sc.http("storefront", rps=520, err=0.0016, p99=0.48, cpu=0.44)
    cart = sc.http("cart-svc", rps=95, err=0.0011, p99=0.19)
    sess_lat = sc.metric("cache_latency_p99_seconds", "session-cache", 0.0021, noise=0.06)
    sc.metric("cache_error_ratio", "session-cache", 0.0004, noise=0.08, amp=0.05)
    pdb_lat = sc.metric("db_query_latency_p99_seconds", "product-db", 0.024, noise=0.05)
    pdb_cpu = sc.metric("cpu_utilization_ratio", "product-db", 0.37)
    sc.http("payments-gw", err=0.0024, p99=0.72)

    surge = onset - 8
    sf["rps"].scale(surge, 3.05, ramp=10)
    sf["cpu"].approach(surge + 3, 0.95, ramp=9, noise=0.015)
    sf["p99"].step(onset, 2.1, ramp=5)
    sf["err"].step(onset + 1, 0.045, ramp=5)
    cart["rps"].scale(surge + 2, 2.3, ramp=10)
    cart["p99"].step(onset + 2, 0.21, ramp=5)
    pdb_cpu.step(surge + 3, 0.24, ramp=8)
    pdb_lat.step(onset + 1, 0.012, ramp=5)
    sess_lat.scale(surge + 4, 1.12, ramp=8)

    sc.log("storefront", "info", "GET /<pick:|deals|deals|c/shoes|c/coats|p/sku-<n:10000-99999>> 200 <ms:40-700>ms utm=<pick:none|none|newsletter|gads>", 3.0, end=surge, client_ip="<pip>")
    sc.log("storefront", "info", "GET /<pick:|deals|deals|c/shoes|c/coats|p/sku-<n:10000-99999>> 200 <ms:40-700>ms utm=<pick:none|none|newsletter|gads>", 3.0, start=surge, follow=sf["rps"], client_ip="<pip>")
    sc.log("storefront", "info", "GET /<pick:deals|deals|p/sku-<n:10000-99999>> 200 <ms:60-2600>ms utm=nov-flash-40", 0.1, end=surge, client_ip="<pip>")
    sc.log("storefront", "info", "GET /<pick:deals|deals|p/sku-<n:10000-99999>> 200 <ms:60-2600>ms utm=nov-flash-40", 6.0, start=surge, ramp=10, client_ip="<pip>")
    sc.log("storefront", "warn", "worker pool saturated: in_flight=<n:480-512>/512, request queued", 1.5, start=onset - 1, ramp=5)
    sc.log("storefront", "error", "503 for GET /<pick:deals|checkout|p/sku-<n:10000-99999>>: queue wait exceeded 2000ms (in_flight=512)", 1.8, start=onset + 1, ramp=5, client_ip="<pip>", trace=True)
    sc.log("storefront", "warn", "render of /deals exceeded 1500ms budget (<ms:1500-4800>ms)", 0.9, start=onset, ramp=5)
    # the decoy: loud, steady
    sc.log("session-cache", "warn", "cache miss for key sess:<hex:16> (ttl expired), loading from origin", 5.5)
    sc.log("session-cache", "warn", "evicted <n:200-1800> keys under maxmemory-policy allkeys-lru", 0.4)
    sc.log("cart-svc", "info", "cart <hex:10> updated items=<n:1-12> total=<n:10-900>.<n:10-99> EUR", 1.6, follow=cart["rps"])
    sc.log("cart-svc", "warn", "stock check for sku-<n:10000-99999> took <ms:400-1200>ms", 0.8, start=onset + 2, ramp=5)
    sc.log("product-db", "warn", "duration: <ms:150-600> ms  statement: SELECT * FROM offers WHERE campaign_id = $1 AND sku = ANY($2)", 0.2, end=surge + 3)
    sc.log("product-db", "warn", "duration: <ms:150-900> ms  statement: SELECT * FROM offers WHERE campaign_id = $1 AND sku = ANY($2)", 0.9, start=surge + 3, ramp=8)
    sc.log("payments-gw", "info", "authorised pmt_<id:12> amount=<n:5-900>.<n:10-99> EUR psp=<pick:adyen|stripe> took=<ms:200-1400>ms", 0.9)
    sc.log("payments-gw", "warn", "3DS challenge timeout for pmt_<id:12>, customer abandoned", 0.3)

    sc.truth("traffic_surge", "storefront", ["scale_out", "rate_limit"], onset,
             {"component": "session-cache",
              "note": "'cache miss ... ttl expired' warnings are loud but just as frequent before the sale"})
    return sc


# ============================================================================================
# 7. dependency: third-party geocoder times out; visible only in the caller's client series + logs


@scenario
def geocoder_timeouts():
    sc = Scn("geocoder-timeouts", at="2026-05-19T10:25:00Z",
             title="Delivery ETAs stuck on 'calculating'",
             symptom="delivery ETAs stuck on 'calculating...' for lots of customers, and the eta endpoint is "
                     "throwing errors",
             service="delivery-eta",
             services={"order-api": ["delivery-eta"], "delivery-eta": ["mapgrid-api", "routing-engine"],
                       "courier-api": ["routing-engine"]},
             noise=(0.03, 0.07), amp=0.3, peak=11.5)
    onset = sc.ago(17)
    sc.routine(["order-api", "delivery-eta", "routing-engine", "courier-api"], 7)
    decoy = sc.deploy(onset - 7, "routing-engine", "road graph loader: mmap instead of read", "tomasz.w")

    geo_p99 = sc.metric("http_request_latency_p99_seconds", "mapgrid-api", 0.21, noise=0.07, amp=0.1)
    geo_err = sc.metric("http_error_ratio", "mapgrid-api", 0.0031, noise=0.09, amp=0.1)
    eta = sc.http("delivery-eta", rps=175, err=0.0014, p99=0.36, cpu=0.43)
    oa = sc.http("order-api", rps=88, err=0.0012, p99=0.52)
    sc.http("routing-engine", p99=0.085, cpu=0.51)
    sc.http("courier-api", rps=41, p99=0.15)

    geo_p99.approach(onset - 1, 3.0, ramp=2, noise=0.02)   # the client's 3s timeout caps it
    geo_err.step(onset - 1, 0.36, ramp=2)
    eta["err"].step(onset, 0.14, ramp=2)
    eta["p99"].step(onset, 2.75, ramp=2)
    eta["cpu"].scale(onset, 0.85, ramp=3)
    oa["err"].step(onset + 2, 0.022, ramp=3)
    oa["p99"].step(onset + 1, 1.1, ramp=3)

    zones = "nl-ams-03|nl-ams-07|nl-rtm-01|be-ant-02|de-dus-04"
    sc.log("delivery-eta", "info", "eta quote order=<order> zone=<pick:" + zones + "> eta=<n:18-75>min geocode=<pick:cache|cache|mapgrid> took=<ms:30-400>ms", 3.2, follow=eta["rps"])
    sc.log("delivery-eta", "warn", "geocode cache miss addr_hash=<hex:10>, asking mapgrid", 1.5)
    sc.log("delivery-eta", "error", "geocode failed: GET https://api.mapgrid.io/v3/geocode: context deadline exceeded (Client.Timeout exceeded while awaiting headers) after 3000ms addr_hash=<hex:10>", 3.6, start=onset - 1, ramp=2, trace=True)
    sc.log("delivery-eta", "warn", "falling back to zone centroid for order=<order> zone=<pick:" + zones + "> (mapgrid unavailable)", 1.4, start=onset, ramp=2)
    sc.log("delivery-eta", "warn", "circuit breaker mapgrid: closed -> open (failures <n:41-80>/100 in 30s)", 0.12, start=onset + 1)
    sc.log("delivery-eta", "info", "circuit breaker mapgrid: open -> half-open after 30s", 0.12, start=onset + 2)
    sc.log("order-api", "info", "POST /v2/orders/<order>/quote 200 <ms:60-500>ms", 2.0, follow=oa["rps"])
    sc.log("order-api", "error", "POST /v2/orders/<order>/quote 502: delivery-eta returned 500 (eta unavailable)", 0.9, start=onset + 2, ramp=3, trace=True)
    sc.log("order-api", "warn", "idempotency key reused by client <ip>, returning cached response", 0.3)
    sc.log("routing-engine", "info", "route solved stops=<n:2-14> region=<pick:benelux|rhine> took=<ms:12-190>ms", 2.2)
    sc.log("routing-engine", "warn", "road graph tile <n:1000-9999> missing speed profile, using default 30km/h", 0.4)
    sc.once(onset - 7 + 0.6, "routing-engine", "info", "routing-engine " + decoy["version"] + " ready: graph benelux loaded (mmap) in 4.1s")
    sc.once(onset - 7 + 0.9, "routing-engine", "info", "routing-engine " + decoy["version"] + " ready: graph rhine loaded (mmap) in 3.7s")
    sc.log("courier-api", "info", "courier <id:8> position update lat=52.<n:30000-39999> lon=4.<n:80000-99999>", 2.4)

    sc.truth("dependency", "mapgrid-api", ["failover", "escalate"], onset,
             {"component": "routing-engine", "change": decoy,
              "note": "routing-engine (another dependency of delivery-eta) deployed 7 minutes before; healthy"})
    return sc


# ============================================================================================
# 8. operation_error: maintenance failover points the writer at a read-only standby


@scenario
def ledger_failover_wrong_replica():
    sc = Scn("ledger-failover-wrong-replica", at="2026-03-28T01:20:00Z",
             title="Wallet transfers failing since ~01:00",
             symptom="wallet top-ups and transfers have been failing since around 1am; balances and history "
                     "still load fine",
             services={"wallet-api": ["ledger-svc", "auth-svc"], "ledger-svc": ["ledger-pg"],
                       "reporting-etl": ["ledger-pg"]},
             noise=(0.02, 0.05), amp=0.45, peak=16.0)
    onset = sc.ago(20)
    sc.routine(["wallet-api", "ledger-svc", "ledger-pg", "auth-svc", "reporting-etl"], 6, latest=120)
    sc.change(onset - 14, "ledger-pg", "operation",
              "[CR-4471] maintenance window opened for ledger-pg: pausing base backups, silencing disk alerts",
              "dmitri.k")
    sc.change(onset - 1, "ledger-pg", "operation",
              "[CR-4471] switchover: ledger-pg writer endpoint pg-ledger-a -> pg-ledger-c before kernel "
              "patching of pg-ledger-a", "dmitri.k")
    sc.change(onset + 3, "ledger-pg", "infra", "pg-ledger-a: kernel 5.15.0-119 -> 5.15.0-122, reboot (CR-4471)",
              "dmitri.k")

    led = sc.http("ledger-svc", rps=46, err=0.0008, p99=0.11)
    qerr = sc.metric("db_query_error_ratio", "ledger-pg", 0.0003, noise=0.09, amp=0.05)
    sc.metric("db_query_latency_p99_seconds", "ledger-pg", 0.0085, noise=0.05)
    cpu_a = sc.metric("cpu_utilization_ratio", "ledger-pg", 0.33, node="pg-ledger-a")
    cpu_c = sc.metric("cpu_utilization_ratio", "ledger-pg", 0.12, noise=0.06, node="pg-ledger-c")
    wal = sc.http("wallet-api", rps=71, err=0.0011, p99=0.24)
    etl = sc.metric("cpu_utilization_ratio", "reporting-etl", 0.22, noise=0.1, amp=0.15)
    etl.spikes(every=60, height=0.45, dur=6)           # hourly extract job
    sc.http("auth-svc", err=0.0006, p99=0.038)

    led["err"].step(onset, 0.43, ramp=1)               # every write; reads are fine
    led["p99"].scale(onset, 0.7, ramp=1)               # failures are fast
    qerr.step(onset, 0.37, ramp=1)
    cpu_a.approach(onset, 0.03, ramp=3, noise=0.02)
    cpu_a.approach(onset + 4, 0.0, ramp=1, noise=0.001)   # rebooting for the kernel patch
    cpu_c.step(onset, 0.16, ramp=2)
    wal["err"].step(onset + 1, 0.31, ramp=2)

    sc.log("ledger-svc", "info", "POST /v1/ledger/<pick:transfers|topups> committed tx=<id:12> entries=2 took=<ms:8-90>ms", 1.6, end=onset, follow=led["rps"])
    sc.log("ledger-svc", "info", "GET /v1/ledger/accounts/acc_<hex:10>/<pick:balance|entries> 200 <ms:3-40>ms", 2.0, follow=led["rps"])
    sc.log("ledger-svc", "error", "commit failed tx=<id:12> account=acc_<hex:10>: pq: cannot execute INSERT in a read-only transaction (SQLSTATE 25006)", 1.7, start=onset, follow=led["rps"], trace=True)
    sc.log("ledger-svc", "warn", "idempotency key <hex:16> replayed, returning stored result", 0.3)
    sc.log("ledger-pg", "info", "checkpoint complete: wrote <n:300-2200> buffers (<f:0-5>%); sync=<f:0-1> s", 0.2, end=onset, node="pg-ledger-a")
    sc.log("ledger-pg", "info", "restartpoint complete: wrote <n:100-900> buffers; redo at <hex:2>/<hex:8>", 0.2, node="pg-ledger-c")
    sc.log("ledger-pg", "warn", "archive command for WAL segment 0000000100000<hex:3>000000<hex:2> deferred (backups paused)", 0.3, start=onset - 14, node="pg-ledger-a")
    sc.once(onset - 1 + 0.3, "ledger-pg", "info", "pgbouncer: writer pool target changed host=pg-ledger-c port=5432 (admin console, user dmitri.k)", node="pg-ledger-c")
    sc.log("ledger-pg", "error", "ERROR:  cannot execute INSERT in a read-only transaction; STATEMENT:  INSERT INTO ledger_entries (tx_id, account_id, amount_minor, currency) VALUES ($1, $2, $3, $4)", 1.5, start=onset, node="pg-ledger-c")
    sc.log("ledger-pg", "error", "ERROR:  cannot execute UPDATE in a read-only transaction; STATEMENT:  UPDATE accounts SET balance_minor = balance_minor + $1, version = version + 1 WHERE id = $2 AND version = $3", 0.8, start=onset, node="pg-ledger-c")
    sc.once(onset + 3 + 0.2, "ledger-pg", "info", "LOG:  received fast shutdown request", node="pg-ledger-a")
    sc.once(onset + 3 + 0.3, "ledger-pg", "info", "LOG:  database system is shut down", node="pg-ledger-a")
    sc.log("wallet-api", "info", "GET /wallet/<pick:balance|history|cards> 200 <ms:12-160>ms user=<user>", 2.5, follow=wal["rps"])
    sc.log("wallet-api", "info", "POST /wallet/<pick:topup|transfer> 200 <ms:40-300>ms user=<user>", 1.0, end=onset + 1)
    sc.log("wallet-api", "error", "POST /wallet/<pick:topup|transfer> failed user=<user>: ledger-svc 503 write unavailable", 1.0, start=onset + 1, trace=True)
    sc.log("auth-svc", "info", "token refreshed sub=<user> client=<pick:ios|android|web> ttl=900s", 1.4)
    sc.log("auth-svc", "warn", "login throttled for <pip>: <n:6-12> failures in 60s", 0.2)
    sc.log("reporting-etl", "info", "extract ledger_entries since <n:1774600000-1774659999> rows=<n:1000-90000> took=<ms:2000-40000>ms", 0.1)

    sc.truth("operation_error", "ledger-pg", ["failover", "escalate"], onset)
    return sc


# ============================================================================================
# 9. GenAI capacity: KV cache fills as traffic ramps into the daily peak; TTFT and queue climb


@scenario
def chat_kv_cache_peak():
    sc = Scn("chat-kv-cache-peak", at="2026-10-22T16:40:00Z",
             title="Assistant slow to start replying this afternoon",
             symptom="assistant is painfully slow to start replying this afternoon - people stare at the spinner "
                     "for 10+ seconds before the first word shows up",
             noise=(0.03, 0.07), amp=0.4, peak=16.0)
    onset = sc.ago(26)
    sc.routine(["chat-frontend", "inference-pool", "prompt-guard", "embedding-svc", "conversation-store"], 8)

    rps = sc.metric("http_requests_per_second", "inference-pool", 21, noise=0.04)
    kv = sc.metric("llm_kv_cache_utilization_ratio", "inference-pool", 0.58, amp=0.35, noise=0.03)
    gm = {n: sc.metric("gpu_memory_utilization_ratio", "inference-pool", 0.79, amp=0.1, noise=0.02, node=n)
          for n in ("gpu-a1", "gpu-a2")}
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "inference-pool", 0.95, amp=0.3, noise=0.06)
    qd = sc.metric("llm_queue_depth", "inference-pool", 2.5, amp=0.6, noise=0.1, kind="count")
    tps = sc.metric("llm_tokens_per_second", "inference-pool", 41, amp=0.12, noise=0.04)
    cf = sc.http("chat-frontend", err=0.0021, p99=4.8)
    sc.metric("http_request_latency_p99_seconds", "prompt-guard", 0.06, noise=0.05)
    emb = sc.http("embedding-svc", err=0.0009, p99=0.045)
    emb["p99"].spikes(every=47, height=0.16, dur=3)   # scheduled re-embed batches
    sc.metric("db_query_latency_p99_seconds", "conversation-store", 0.014, noise=0.04)

    ramp0 = onset - 30
    rps.scale(ramp0, 1.5, ramp=30)
    kv.approach(ramp0 + 5, 0.985, ramp=26, noise=0.004)
    for n, g in gm.items():
        g.approach(ramp0 + 6, 0.975, ramp=25, noise=0.004)
    qd.approach(onset - 2, 55, ramp=8).grow(onset + 6, 1.4)
    ttft.step(onset, 8.2, ramp=5)
    tps.scale(onset - 3, 0.62, ramp=6)
    cf["p99"].step(onset + 1, 9.5, ramp=5)
    cf["err"].step(onset + 5, 0.014, ramp=5)

    nodes = ["gpu-a1", "gpu-a2"]
    for n in nodes:
        sc.every("inference-pool", "info", "Avg prompt throughput: <n:900-2600> tokens/s, Avg generation throughput: <n:600-1400> tokens/s, Running: <n:18-46> reqs, Waiting: <n:0-3> reqs, GPU KV cache usage: <n:38-79>%", 0.5, end=ramp0 + 20, node=n)
        sc.every("inference-pool", "info", "Avg prompt throughput: <n:1800-3600> tokens/s, Avg generation throughput: <n:500-1000> tokens/s, Running: <n:52-64> reqs, Waiting: <n:20-90> reqs, GPU KV cache usage: <n:96-100>%", 0.5, start=ramp0 + 20, node=n)
    sc.log("inference-pool", "warn", "Sequence group <hex:12> is preempted by PreemptionMode.RECOMPUTE because there is not enough KV cache space. total_num_cumulative_preemption=<n:1-9000>", 3.2, start=onset - 3, ramp=6, node=nodes)
    sc.log("inference-pool", "warn", "request <hex:12> waited <ms:5000-21000>ms in scheduler queue", 1.2, start=onset, ramp=5, node=nodes)
    sc.log("inference-pool", "info", "finished request <hex:12> prompt_tokens=<n:400-6000> completion_tokens=<n:30-900>", 2.4, follow=rps, node=nodes)
    sc.log("chat-frontend", "info", "stream opened conv=<hex:10> user=<user> model=asst-large", 2.0, follow=rps)
    sc.log("chat-frontend", "warn", "no first token after 8s for conv=<hex:10>, showing 'still thinking' banner", 1.6, start=onset + 1, ramp=5)
    sc.log("chat-frontend", "error", "stream aborted conv=<hex:10>: upstream idle timeout 60s", 0.35, start=onset + 5, ramp=5, trace=True)
    sc.log("chat-frontend", "warn", "websocket closed by client conv=<hex:10> code=1001", 0.6)
    sc.log("prompt-guard", "info", "screened prompt conv=<hex:10> verdict=<pick:allow|allow|allow|allow|flag> took=<ms:10-70>ms", 1.6, follow=rps)
    sc.log("embedding-svc", "warn", "GC pause <ms:120-480>ms (G1 Young)", 0.5)
    for t in emb["p99"].spike_times:
        sc.once(t + 0.1, "embedding-svc", "info", "scheduled re-embed batch started docs=<n:4000-9000> priority=low")
    sc.log("conversation-store", "info", "appended turn conv=<hex:10> bytes=<n:200-9000>", 1.2)

    sc.truth("capacity", "inference-pool", ["scale_out", "rate_limit"], onset,
             {"component": "embedding-svc",
              "note": "embedding-svc's regular re-embed latency spikes (every ~47 min) also land in the window"})
    return sc


# ============================================================================================
# 10. GenAI traffic: one tenant's agent loops on a tool; tokens/cost explode, others get 429


@scenario
def agent_loop_tenant():
    sc = Scn("agent-loop-tenant", at="2026-04-09T21:55:00Z",
             title="LLM spend spike and 429s for customers",
             symptom="the LLM spend chart went vertical in the last half hour and several customers are getting "
                     "429s from the API",
             services={"ai-gateway": ["llm-router", "tool-runner", "vector-store"]},
             noise=(0.03, 0.08), amp=0.25, peak=15.0)
    onset = sc.ago(29)
    sc.routine(["ai-gateway", "llm-router", "tool-runner", "vector-store"], 7)
    decoy = sc.deploy(onset - 6, "tool-runner", "add get_shipment_status tool, sandbox timeout 10s -> 20s",
                      "sam.r", "minor")

    ten = {t: sc.metric("llm_requests_per_second", "ai-gateway", lv, noise=nz, tenant=t)
           for t, lv, nz in (("northwind-freight", 0.9, 0.08), ("lumen-health", 3.4, 0.05), ("kitebox", 1.7, 0.06))}
    tpr = sc.metric("llm_tokens_per_request", "ai-gateway", 2300, amp=0.08, noise=0.05)
    cost = sc.metric("llm_cost_usd_per_minute", "ai-gateway", 4.1, noise=0.06)
    gw = sc.http("ai-gateway", err=0.0028, p99=7.5)
    rl = sc.metric("upstream_rate_limited_ratio", "llm-router", 0.0015, amp=0.1, noise=0.09)
    rt = sc.metric("llm_time_to_first_token_p99_seconds", "llm-router", 1.1, noise=0.05)
    tr = sc.http("tool-runner", p99=0.34, cpu=0.26)
    sc.metric("http_request_latency_p99_seconds", "vector-store", 0.052, noise=0.04)

    loop = onset - 2
    ten["northwind-freight"].step(loop, 8.6, ramp=5)
    tpr.scale(loop + 1, 3.1, ramp=12)              # each turn carries the whole growing transcript
    cost.step(loop + 1, 41.0, ramp=10)
    rl.step(onset + 2, 0.16, ramp=4)               # the shared provider quota runs out
    gw["err"].step(onset + 3, 0.064, ramp=4)
    gw["p99"].step(onset + 2, 5.5, ramp=5)
    rt.step(onset + 2, 1.6, ramp=4)
    tr["cpu"].step(loop + 1, 0.21, ramp=5)         # the looping agent calls one tool every turn
    for t in ("lumen-health", "kitebox"):
        ten[t].scale(onset + 4, 0.85, ramp=4)      # throttled by 429s

    tenants = ["lumen-health", "lumen-health", "kitebox", "northwind-freight"]
    sc.log("ai-gateway", "info", "chat.completions tenant=<pick:lumen-health|lumen-health|kitebox> model=<pick:gpt-large|gpt-small> tokens_in=<n:300-4200> tokens_out=<n:20-800> took=<ms:400-9000>ms", 3.2, trace=True)
    sc.log("ai-gateway", "info", "agent run ar_<hex:8> step=<n:1-9> tool=<pick:search_docs|get_order|create_ticket> tokens_in=<n:900-4000>", 0.9, tenant=tenants)
    sc.log("ai-gateway", "info", "agent run ar_<hex:8> step=<n:30-420> tool=get_shipment_status tokens_in=<n:9000-31000>", 6.5, start=loop, ramp=5, tenant="northwind-freight")
    sc.log("ai-gateway", "warn", "agent run ar_7c1e09d4 repeated identical tool call get_shipment_status(shp_<id:8>) <n:5-90> times", 0.8, start=loop + 3, ramp=5, tenant="northwind-freight")
    sc.log("ai-gateway", "warn", "429 to tenant=<pick:lumen-health|kitebox|lumen-health> path=/v1/chat/completions: upstream capacity exhausted, retry_after=<n:2-8>s", 2.4, start=onset + 3, ramp=4)
    sc.log("ai-gateway", "warn", "tenant <pick:kitebox|lumen-health> request body truncated to 128k context", 0.2)
    sc.log("llm-router", "info", "routed model=<pick:gpt-large|gpt-small> provider=primary ttft=<ms:300-1400>ms", 2.6)
    sc.log("llm-router", "warn", "provider=primary answered 429 Too Many Requests (tpm limit) model=gpt-large retry_after=<n:1-6>s attempt=<n:1-3>", 3.0, start=onset + 2, ramp=4)
    sc.log("llm-router", "warn", "provider=primary slow stream, <ms:2000-4000>ms between chunks", 0.15)
    sc.log("tool-runner", "info", "tool <pick:search_docs|get_order|create_ticket> ok in <ms:20-600>ms", 0.9)
    sc.log("tool-runner", "info", "tool get_shipment_status ok in <ms:40-300>ms shipment=shp_<id:8>", 4.0, start=loop, ramp=5)
    sc.log("tool-runner", "warn", "sandbox cold start for tool <pick:search_docs|get_order> took <ms:800-2500>ms", 0.25)
    sc.once(onset - 6 + 0.7, "tool-runner", "info", "tool-runner " + decoy["version"] + " ready, 14 tools registered (new: get_shipment_status)")
    sc.log("vector-store", "info", "query collection=<pick:kb_kitebox|kb_lumen|kb_northwind> k=<n:5-20> took=<ms:4-60>ms", 1.3)

    sc.truth("traffic_surge", "ai-gateway", ["rate_limit", "block_client"], onset,
             {"component": "tool-runner", "change": decoy,
              "note": "tool-runner shipped the very tool the agent loops on, 6 minutes before; the tool works"})
    return sc


# ============================================================================================


def main(argv):
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")] or list(SCENARIOS)
    for name in names:
        sc = SCENARIOS[name]()
        d, ns, nl, nc = sc.write(OUT)
        size = os.path.getsize(os.path.join(d, "metrics.om")) / 1e6
        print(f"{sc.slug:32s} series={ns:2d} logs={nl:5d} changes={nc:2d} metrics={size:.2f}MB")
        if check:
            tmp = f"/tmp/h2-{sc.slug}"
            shutil.rmtree(tmp, ignore_errors=True)
            r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                                os.path.join(d, "metrics.om"), tmp], capture_output=True, text=True)
            print("   promtool:", "ok" if r.returncode == 0 else "FAILED\n" + r.stderr + r.stdout)
            if r.returncode:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
