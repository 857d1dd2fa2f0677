"""Alerts in: what Alertmanager (webhook payload version 4) and any other alerting tool (a small
generic JSON shape) send, read into one form, routed to a channel, and keyed so that repeats and
retries never start a second diagnosis.

Nothing here knows Slack: the Slack app turns a routed ``AlertBatch`` into an incident, a timeline
entry and a diagnosis (bot/slack), and the CLI or a web page could do the same.

Alertmanager's payload (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
``version`` "4", ``groupKey``, ``status`` (firing/resolved), ``receiver``, ``groupLabels``,
``commonLabels``, ``commonAnnotations``, ``externalURL``, ``truncatedAlerts`` and ``alerts[]``, each
with ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL`` and
``fingerprint``. It repeats a firing group every ``repeat_interval`` and retries on 5xx.

The generic shape (``POST /alerts``), for Grafana's webhook contact point or anything else::

    {"title": "checkout error ratio above 5%", "service": "checkout", "severity": "critical",
     "status": "firing", "starts_at": "2026-03-10T14:02:00Z", "labels": {...},
     "annotations": {"summary": "..."}, "link": "https://...", "id": "optional stable id"}
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, Field, field_validator

from tools.timeparse import parse_time

SERVICE_LABELS = ("service", "app", "job", "component", "container", "deployment")
DEFAULT_SEVERITIES = {"critical": 1, "page": 1, "sev1": 1, "p1": 1, "high": 2, "error": 2, "sev2": 2, "p2": 2,
                      "warning": 3, "warn": 3, "medium": 3, "sev3": 3, "p3": 3, "low": 4, "info": 4,
                      "sev4": 4, "p4": 4}
MAX_ALERTS = 500  # alerts per payload read; Alertmanager's own max_alerts truncates similarly
ALERT_EVENT = "sleuth_alert"  # the event type an alert group travels as through the Slack app's work


class AlertError(ValueError):
    """A payload that cannot be taken, as one sentence."""


class AlertRoute(BaseModel):
    """Alerts whose labels match go to ``channel``. A matcher value is an exact label value, or a
    regular expression written ``~regex`` (anchored, as in Alertmanager)."""

    model_config = {"extra": "forbid"}

    match: dict[str, str] = Field(default_factory=dict, description="label -> value or ~regex")
    channel: str = Field(..., description="channel id (C...) the matching alerts go to")
    severity: int | None = Field(None, ge=1, le=5, description="severity for incidents this route opens")

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, wanted in value.items():
            if wanted.startswith("~"):
                try:
                    re.compile(wanted[1:])
                except re.error as exc:
                    raise ValueError(f"match.{label}: {wanted[1:]!r} is not a regular expression ({exc.msg})") from None
        return value

    def matches(self, labels: dict[str, str]) -> bool:
        for label, wanted in self.match.items():
            value = labels.get(label, "")
            if wanted.startswith("~"):
                if not re.fullmatch(wanted[1:], value):
                    return False
            elif value != wanted:
                return False
        return True


class AlertsConfig(BaseModel):
    """``alerts:`` in sleuth.yml: the intake on ``sleuth serve``."""

    model_config = {"extra": "forbid"}

    token: str | None = Field(None, description="bearer token senders must present; unset = the intake refuses all")
    channel: str | None = Field(None, description="channel id for alerts no route matches")
    routes: list[AlertRoute] = Field(default_factory=list, description="first match wins")
    listen: str | None = Field(None, description="host:port of the intake in Socket Mode, e.g. 127.0.0.1:9095 "
                                                 "(HTTP mode serves it on the Slack port)")
    severity_label: str = Field("severity", description="the label that carries the alert's severity")
    severities: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES),
                                       description="label value -> incident severity (1 is worst)")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:9095)")
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass
class Alert:
    """One alert, whatever sent it."""

    status: str  # firing | resolved
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float | None
    ends_at: float | None
    link: str
    fingerprint: str

    @property
    def summary(self) -> str:
        for key in ("summary", "description", "message", "title"):
            if self.annotations.get(key):
                return self.annotations[key]
        return self.name

    @property
    def service(self) -> str | None:
        for label in SERVICE_LABELS:
            if self.labels.get(label):
                return self.labels[label]
        return None


@dataclass
class AlertBatch:
    """What one POST carried: a group of alerts (one for the generic shape)."""

    source: str  # alertmanager | generic
    group_key: str
    status: str  # firing when any alert fires
    alerts: list[Alert]
    common_labels: dict[str, str] = field(default_factory=dict)
    link: str = ""
    truncated: int = 0

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "resolved"]

    @property
    def key(self) -> str:
        """The same group in the same state with the same alerts: a repeat or a retry."""
        parts = sorted(f"{a.fingerprint}:{a.status}" for a in self.alerts)
        digest = hashlib.sha256(json.dumps([self.group_key, parts]).encode()).hexdigest()[:24]
        return f"alert:{digest}"

    @property
    def title(self) -> str:
        first = (self.firing or self.alerts)[0]
        service = first.service
        more = f" (+{len(self.firing) - 1} more)" if len(self.firing) > 1 else ""
        return f"{first.name}{' on ' + service if service else ''}{more}"

    @property
    def service(self) -> str | None:
        for alert in self.firing or self.alerts:
            if alert.service:
                return alert.service
        return None

    @property
    def starts_at(self) -> float | None:
        times = [a.starts_at for a in self.firing if a.starts_at is not None]
        return min(times) if times else None

    def question(self) -> str:
        """What a responder would have typed into /diagnose for it."""
        first = (self.firing or self.alerts)[0]
        text = first.summary if first.summary != first.name else ""
        return f"alert {first.name}" + (f": {text}" if text else "")


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertError(f"{where} must be an object of strings")
    return {str(k)[:200]: str(v)[:2000] for k, v in value.items() if isinstance(v, (str, int, float, bool))}


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def parse_alertmanager(payload: Any) -> AlertBatch:
    """Alertmanager's webhook body (version 4)."""
    if not isinstance(payload, dict):
        raise AlertError("an Alertmanager payload is a JSON object")
    version = str(payload.get("version", "4"))
    if version != "4":
        raise AlertError(f"Alertmanager payload version {version!r} is not supported; version 4 is")
    items = payload.get("alerts")
    if not isinstance(items, list) or not items:
        raise AlertError("the payload has no alerts[]")
    alerts = []
    for position, item in enumerate(items[:MAX_ALERTS]):
        if not isinstance(item, dict):
            raise AlertError(f"alerts[{position}] is not an object")
        labels = _strings(item.get("labels"), f"alerts[{position}].labels")
        status = str(item.get("status") or payload.get("status") or "firing")
        if status not in ("firing", "resolved"):
            raise AlertError(f"alerts[{position}].status is {status!r}; firing or resolved")
        alerts.append(Alert(
            status=status,
            name=labels.get("alertname") or "alert",
            labels=labels,
            annotations=_strings(item.get("annotations"), f"alerts[{position}].annotations"),
            starts_at=parse_time(item.get("startsAt")),
            ends_at=parse_time(item.get("endsAt")),  # 0001-01-01T00:00:00Z, "not ended", is out of range: None
            link=str(item.get("generatorURL") or "")[:2000],
            fingerprint=str(item.get("fingerprint") or _fingerprint(labels))[:64],
        ))
    group_key = str(payload.get("groupKey") or json.dumps(sorted(_strings(payload.get("groupLabels"), "groupLabels").items())))
    truncated = payload.get("truncatedAlerts")
    return AlertBatch(
        source="alertmanager",
        group_key=group_key[:1000],
        status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
        alerts=alerts,
        common_labels=_strings(payload.get("commonLabels"), "commonLabels"),
        link=str(payload.get("externalURL") or "")[:2000],
        truncated=(truncated if isinstance(truncated, int) and truncated > 0 else 0) + max(0, len(items) - MAX_ALERTS),
    )


def parse_generic(payload: Any) -> AlertBatch:
    """The generic shape (see the module's docstring)."""
    if not isinstance(payload, dict):
        raise AlertError("an alert is a JSON object with at least a title")
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise AlertError("field 'title' is missing")
    labels = _strings(payload.get("labels"), "labels")
    for key in ("service", "severity"):
        if payload.get(key) is not None:
            labels.setdefault(key, str(payload[key])[:200])
    status = str(payload.get("status") or "firing")
    if status not in ("firing", "resolved"):
        raise AlertError(f"field 'status' is {status!r}; firing or resolved")
    starts_at = parse_time(payload.get("starts_at"))
    if payload.get("starts_at") is not None and starts_at is None:
        raise AlertError("field 'starts_at' is not a time (use ISO-8601 such as 2026-03-10T14:05:00Z)")
    annotations = _strings(payload.get("annotations"), "annotations")
    annotations.setdefault("summary", title.strip()[:500])
    ident = str(payload.get("id") or _fingerprint({**labels, "title": title}))[:64]
    alert = Alert(status=status, name=title.strip()[:200], labels=labels, annotations=annotations,
                  starts_at=starts_at, ends_at=None, link=str(payload.get("link") or "")[:2000], fingerprint=ident)
    return AlertBatch(source="generic", group_key=f"generic:{ident}", status=status, alerts=[alert],
                      common_labels=labels, link=alert.link)


@dataclass
class Routed:
    channel: str
    severity: int | None


def route(batch: AlertBatch, config: AlertsConfig) -> Routed | None:
    """Where the batch goes (the first matching route, else the default channel) and the severity
    for the incident it opens; None when no route matches and no default channel is set."""
    labels = {**batch.common_labels, **(batch.firing or batch.alerts)[0].labels}
    chosen = next((r for r in config.routes if r.matches(labels)), None)
    channel = chosen.channel if chosen else config.channel
    if not channel:
        return None
    severity = chosen.severity if chosen and chosen.severity else None
    if severity is None:
        value = labels.get(config.severity_label, "").strip().lower()
        severity = config.severities.get(value)
    return Routed(channel, severity)


def batch_to_dict(batch: AlertBatch) -> dict[str, Any]:
    """A batch as JSON-ready data (the work body that carries it through the store)."""
    return asdict(batch)


def batch_from_dict(data: dict[str, Any]) -> AlertBatch:
    alerts = [Alert(**item) for item in data.get("alerts") or []]
    return AlertBatch(**{**data, "alerts": alerts})


def alert_states(keys: list[str]) -> dict[str, int]:
    """From timeline entry keys ``alert:<fingerprint>:<status>:<start>`` (oldest first): how many
    alerts are firing and how many resolved, each alert counted once by its latest state."""
    latest: dict[str, str] = {}
    for key in keys:
        parts = key.split(":")
        if len(parts) >= 3 and parts[0] == "alert":
            latest[parts[1]] = parts[2]
    return {"firing": sum(1 for s in latest.values() if s == "firing"),
            "resolved": sum(1 for s in latest.values() if s == "resolved")}


def entry_key(alert: Alert) -> str:
    """The timeline key of an alert's state: a repeat finds it there, a re-fire (a new start) does not."""
    return f"alert:{alert.fingerprint}:{alert.status}:{int(alert.starts_at or 0)}"


def entry_text(alert: Alert) -> str:
    where = f" on {alert.service}" if alert.service else ""
    summary = f": {alert.summary}" if alert.summary != alert.name else ""
    return f"Alert {alert.status}: {alert.name}{where}{summary}"
