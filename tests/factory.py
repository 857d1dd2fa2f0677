"""Small builders for test telemetry: series with a daily pattern and noise, scenario folders.

Independent of the bundled scenarios and of their generator, so tests do not lean on the data
the evaluation is scored on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

AT = datetime(2026, 3, 10, 14, 35, tzinfo=timezone.utc).timestamp()
STEP = 60.0


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timeline(at: float = AT, hours: float = 28) -> np.ndarray:
    return np.arange(at - hours * 3600, at + 1, STEP)


def daily(ts: np.ndarray, level: float, amplitude: float = 0.3, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """A level with a daily sine (amplitude as a share of the level) and gaussian noise (share too)."""
    rng = np.random.default_rng(seed)
    values = level * (1 + amplitude * np.sin(2 * np.pi * (ts % 86400) / 86400))
    return values + rng.normal(0, noise * level, len(ts))


def step_up(ts: np.ndarray, values: np.ndarray, onset: float, by: float) -> np.ndarray:
    out = values.copy()
    out[ts >= onset] += by
    return out


@dataclass
class ScenarioBuilder:
    """Writes a scenario folder in the documented format (docs/scenarios.md)."""

    at: float = AT
    symptom: str = "checkout is returning 500s"
    service: str | None = None
    window: str = "1h"
    services: dict[str, list[str]] = field(default_factory=dict)
    series: list[tuple[str, dict[str, str], np.ndarray]] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)
    truth: dict | None = None

    def __post_init__(self) -> None:
        self.ts = timeline(self.at)

    def metric(self, name: str, labels: dict[str, str], values: np.ndarray) -> "ScenarioBuilder":
        self.series.append((name, labels, values))
        return self

    def log(self, ts: float, service: str, level: str, message: str, **extra: str) -> "ScenarioBuilder":
        self.logs.append({"ts": iso(ts), "service": service, "level": level, "message": message, **extra})
        return self

    def change(self, change_id: str, ts: float, service: str, kind: str, summary: str, **extra: str) -> "ScenarioBuilder":
        self.changes.append({"id": change_id, "ts": iso(ts), "service": service, "kind": kind,
                             "summary": summary, "author": "test", **extra})
        return self

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        families: dict[str, list[tuple[dict[str, str], np.ndarray]]] = {}
        for name, labels, values in self.series:
            families.setdefault(name, []).append((labels, values))
        for name, members in families.items():
            lines.append(f"# TYPE {name} gauge")
            for labels, values in members:
                rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                lines.extend(f"{name}{{{rendered}}} {v:.6f} {int(t)}" for t, v in zip(self.ts, values))
        lines.append("# EOF")
        (folder / "metrics.om").write_text("\n".join(lines) + "\n")
        self.logs.sort(key=lambda r: r["ts"])
        (folder / "logs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.logs))
        (folder / "changes.jsonl").write_text("".join(json.dumps(c) + "\n" for c in self.changes))
        description = {"title": self.symptom, "symptom": self.symptom, "at": iso(self.at), "window": self.window}
        if self.service:
            description["service"] = self.service
        if self.services:
            description["services"] = {k: {"depends_on": v} for k, v in self.services.items()}
        import yaml

        (folder / "scenario.yml").write_text(yaml.safe_dump(description, sort_keys=False))
        if self.truth:
            (folder / "truth.yml").write_text(yaml.safe_dump(self.truth, sort_keys=False))
        return folder


def bad_deploy(folder: Path, seed: int = 1) -> Path:
    """checkout deploys a bad build 8 minutes before its 5xx ratio jumps; search deploys a
    harmless build 5 minutes before (the decoy); search also logs a loud but steady warning."""
    rng = np.random.default_rng(seed)
    b = ScenarioBuilder(symptom="checkout is returning 500s for many users", services={"checkout": ["payments", "auth"]})
    ts, onset = b.ts, AT - 30 * 60
    for i, svc in enumerate(("checkout", "search", "auth", "payments")):
        errors = np.clip(daily(ts, 0.002, noise=0.15, seed=seed + i), 0, 1)
        if svc == "checkout":
            errors = step_up(ts, errors, onset, 0.12)
        b.metric("http_error_ratio", {"service": svc}, errors)
        b.metric("http_request_latency_p99_seconds", {"service": svc}, daily(ts, 0.25, noise=0.08, seed=seed + 10 + i))
    for t in np.arange(AT - 4 * 3600, AT, 6.0):
        svc = ("checkout", "search", "auth", "payments")[int(rng.integers(4))]
        b.log(t, svc, "info", f"GET /api/v1/items/{rng.integers(1000)} 200 {rng.integers(5, 90)}ms")
        if rng.random() < 0.25:
            b.log(t, "search", "warn", f"cache miss for key prod:{rng.integers(99999)}")
        if t > onset and svc == "checkout" and rng.random() < 0.6:
            b.log(t, "checkout", "error", f"NullPointerException in PaymentRetryPolicy.apply order={rng.integers(10**6)}")
    b.change("chg-1", onset - 8 * 60, "checkout", "deploy", "checkout v2.15.0: new payment retry logic",
             version="v2.15.0", previous_version="v2.14.0")
    b.change("chg-2", onset - 5 * 60, "search", "deploy", "search v1.2.0: ranking tweaks",
             version="v1.2.0", previous_version="v1.1.9")
    b.change("chg-3", onset - 6 * 3600, "auth", "config", "auth: session ttl 30m")
    b.truth = {"category": "code_change", "component": "checkout", "mitigations": ["rollback"],
               "onset": iso(onset), "decoy": {"component": "search", "change_id": "chg-2"}}
    return b.write(folder)
