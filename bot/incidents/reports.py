"""Reports drafted from an incident's evidence ledger: the commander's rollup, the summary on
resolve, and the past-incident record the memory keeps once a human confirms it.

Plain data in, plain data out (no Slack here): blocks.py says them in Slack. Text is raw (see
blocks.py on escaping); people are written as ``<@U…>`` so that blocks.py shows them as
mentions, and advice meant for a terminal (``pass --config``) is worded for a Slack reader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from bot.incidents.text import duration, percent
from tools.timeparse import parse_time
from bot.incidents.store import Incident, TimelineEntry


def mention(user_id: Any) -> str:
    """A person as Slack names them (``<@U…>``), for text that blocks.py renders with prose()."""
    return f"<@{user_id}>" if user_id else "nobody"


def _live(diagnosis: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [h for h in (diagnosis or {}).get("hypotheses") or [] if h.get("status") != "refuted"]


def _label(item: dict[str, Any]) -> str:
    action = str(item.get("action", "")).replace("_", " ")
    return f"{action} → {item['target']}" if item.get("target") else action


def hypothesis_line(h: dict[str, Any] | None) -> str:
    if not h:
        return ""
    return (f"{str(h.get('category', '')).replace('_', ' ')} in {h.get('component')} "
            f"({h.get('status')}, confidence {percent(h.get('confidence'))}): {h.get('statement', '')}")


def impact_of(incident: Incident) -> str:
    """What users feel, from the symptom's evidence (or the title when nothing was measured)."""
    diagnosis = incident.diagnosis or {}
    facts = diagnosis.get("incident") or {}
    evidence = {e.get("id"): e for e in diagnosis.get("evidence") or []}
    parts = [evidence[eid]["summary"] for eid in facts.get("symptom_evidence") or [] if eid in evidence][:2]
    if not parts:
        symptoms = ", ".join(facts.get("symptoms") or [])
        service = facts.get("service") or incident.service
        if symptoms or service:
            parts.append(f"{symptoms or 'trouble'} on {service or 'the service'} (not measured)")
    knock_on = [k.get("component") for k in facts.get("knock_on") or []]
    if knock_on:
        parts.append("knock-on effects on " + ", ".join(map(str, knock_on[:5])))
    return "; ".join(parts)


@dataclass
class Rollup:
    incident_id: int
    channel: str
    title: str
    severity: str
    status: str
    commander: str | None
    duration: str
    impact: str
    hypothesis: str
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    updated_at: float = 0.0
    approvers: list[str] = field(default_factory=list)  # slack.approvers as configured (users U..., groups S...)
    alerts: str = ""  # "1 firing, 2 resolved": the alerts on its timeline, each by its latest state


def alerts_line(timeline: Sequence[TimelineEntry]) -> str:
    """The incident's alerts by their latest state, or "" when none came in."""
    from bot.alerts import alert_states

    keys = [e.key for e in timeline if e.kind == "alert" and e.key]
    if not keys:
        return ""
    states = alert_states(keys)
    return f"{states['firing']} firing, {states['resolved']} resolved"


def draft_rollup(incident: Incident, *, pending: Sequence[dict[str, Any]] = (),
                 decisions: Sequence[dict[str, Any]] = (), now: float | None = None,
                 approvers: Sequence[str] = (), alerts: str = "") -> Rollup:
    """Status, severity, commander, duration, impact, best hypothesis, decisions, open questions,
    next steps and the time of the last update, for one incident."""
    now = time.time() if now is None else now
    diagnosis = incident.diagnosis
    live = _live(diagnosis)
    approved = [d for d in decisions if d.get("approved")]
    rejected = [d for d in decisions if not d.get("approved")]
    decided = {d.get("id") for d in decisions}
    waiting = [p for p in pending if p.get("id") not in decided]

    questions = [f"approve or reject {p.get('id')}: {_label(p)}" for p in waiting]
    questions += [f"could it be {str(h.get('category')).replace('_', ' ')} in {h.get('component')} instead "
                  f"({percent(h.get('confidence'))})?" for h in live[1:3] if float(h.get("confidence") or 0) >= 0.1]
    for name, report in ((diagnosis or {}).get("sources") or {}).items():
        if (report or {}).get("status") == "error":
            questions.append(f"{name} could not be read: {report.get('reason', '')}")
    if diagnosis is None:
        questions.append("what is failing? run the diagnosis with what you see")

    steps = []
    if not incident.commander:
        steps.append("assign a commander: /diagnose commander @user")
    if not incident.severity:
        steps.append("set the severity: /diagnose sev <1-4>")
    for d in approved:
        steps.append(f"carry out {_label(d)}, then verify: {d.get('verify') or 'the symptom returns to baseline'}")
    if waiting:
        steps.append("decide on the proposed mitigations in the diagnosis thread")
    if incident.status == "monitoring":
        steps.append("once the signals hold at baseline: /diagnose resolve")
    if not steps:
        steps.append("keep investigating in the diagnosis thread")
    return Rollup(
        incident_id=incident.id, channel=incident.channel, title=incident.title, severity=incident.label,
        status=incident.status, commander=incident.commander, duration=duration(incident.duration_s(now)),
        impact=impact_of(incident), hypothesis=hypothesis_line(live[0] if live else None),
        approved=[_label(d) for d in approved], rejected=[_label(d) for d in rejected],
        open_questions=questions, next_steps=steps, updated_at=incident.updated_at, approvers=list(approvers),
        alerts=alerts,
    )


@dataclass
class Summary:
    title: str
    what_happened: str
    impact: str
    root_cause: str
    fix: str
    duration: str
    opened_at: float
    resolved_at: float
    highlights: list[TimelineEntry] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    category: str | None = None
    component: str | None = None
    action: str | None = None


_HIGHLIGHT_KINDS = ("opened", "alert", "severity", "finding", "decision", "change", "manual", "status", "resolved")


def draft_summary(incident: Incident, *, timeline: Sequence[TimelineEntry], pending: Sequence[dict[str, Any]] = (),
                  decisions: Sequence[dict[str, Any]] = (), now: float | None = None) -> Summary:
    """What happened, impact, timeline highlights, root cause (category, component, evidence),
    what fixed it, duration and follow-ups."""
    resolved_at = incident.resolved_at or (time.time() if now is None else now)
    diagnosis = incident.diagnosis or {}
    live = _live(diagnosis)
    top = live[0] if live else None
    evidence = {e.get("id"): e for e in diagnosis.get("evidence") or []}
    approved = [d for d in decisions if d.get("approved")]
    decided = {d.get("id") for d in decisions}

    what = f"{incident.title}."
    if top:
        what += f" Sleuth's best hypothesis: {hypothesis_line(top)}"
    if incident.resolution:
        what += f" Resolution note: {incident.resolution}"
    alerts = alerts_line(timeline)
    if alerts:
        what += f" Alerts: {alerts}."
    if top:
        cited = [f"{eid} ({evidence[eid].get('summary', '')[:160]})" for eid in top.get("evidence", []) if eid in evidence][:3]
        root = (f"{str(top.get('category')).replace('_', ' ')} in {top.get('component')}, confidence "
                f"{percent(top.get('confidence'))}" + (f"; evidence: {'; '.join(cited)}" if cited else ""))
    else:
        root = "not established by a diagnosis; confirm it before adding the incident to memory"
    if approved:
        fix = "; ".join(f"{_label(d)} (approved{' by ' + mention(d['by']) if d.get('by') else ''})" for d in approved)
        if incident.resolution:
            fix += f". {incident.resolution}"
    else:
        fix = incident.resolution or "not recorded: no mitigation was approved through Sleuth"

    # Keep the story short: status changes and manual entries, findings, decisions, changes, ends.
    highlights = [e for e in timeline if e.kind in _HIGHLIGHT_KINDS][:12]
    follow_ups = ["write the postmortem; Add to memory below makes this incident findable next time"]
    for d in approved:
        if d.get("verify"):
            follow_ups.append(f"check the verification held: {d['verify']}")
    for p in pending:
        if p.get("id") not in decided:
            follow_ups.append(f"decide whether {_label(p)} is still needed")
    for d in decisions:
        if not d.get("approved"):
            follow_ups.append(f"rejected: {_label(d)}; reason: {d['reason']}" if d.get("reason")
                              else f"rejected: {_label(d)}; note why in the postmortem")
    for name, report in (diagnosis.get("sources") or {}).items():
        if (report or {}).get("status") == "error":
            follow_ups.append(f"fix the {name} source: {report.get('reason', '')}")

    action = approved[0].get("action") if approved else None
    if action is None:
        mitigations = diagnosis.get("mitigations") or []
        action = mitigations[0].get("action") if mitigations else None
    return Summary(
        title=incident.title, what_happened=what, impact=impact_of(incident) or "not measured", root_cause=root,
        fix=fix, duration=duration(resolved_at - incident.opened_at), opened_at=incident.opened_at,
        resolved_at=resolved_at, highlights=highlights, follow_ups=follow_ups,
        category=top.get("category") if top else None, component=top.get("component") if top else None,
        action=action,
    )


def memory_defaults(summary: Summary, incident: Incident, decisions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """What the add-to-memory modal proposes: the best hypothesis and the approved fix."""
    live = _live(incident.diagnosis)
    approved = [d for d in decisions if d.get("approved")]
    fix = "; ".join(f"{_label(d)}" + (f" (verify: {d['verify']})" if d.get("verify") else "") for d in approved)
    if incident.resolution:
        fix = f"{fix}. {incident.resolution}" if fix else incident.resolution
    return {
        "category": summary.category,
        "root_cause": live[0].get("statement", "") if live else incident.resolution,
        "action": summary.action,
        "mitigation": fix or summary.fix,
    }


def incident_record(incident: Incident, *, summary: Summary, category: str | None, root_cause: str,
                    action: str | None, mitigation: str, source: str, redactor: Any = None) -> Any:
    """The confirmed incident as an index.records.IncidentRecord for Memory.add_incident. Its text
    is redacted (``redactor``: a bot.safety.Redactor, the default one when None): what a responder
    typed may hold a secret, and the memory keeps it and shows it to the next investigation."""
    from bot.safety import Redactor
    from index.records import IncidentRecord

    redact = (redactor or Redactor()).redact
    diagnosis = incident.diagnosis or {}
    facts = diagnosis.get("incident") or {}
    services = [s for s in dict.fromkeys([incident.service, facts.get("service"), summary.component]) if s]
    onset = parse_time(facts.get("onset")) or incident.opened_at
    return IncidentRecord(
        id=f"slack-{incident.team}-{incident.channel}-{incident.id}".lower(),
        title=redact(incident.title),
        summary=redact(summary.what_happened),
        services=services,
        date=datetime.fromtimestamp(onset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        severity=incident.label.upper() if incident.severity else None,
        category=category,
        mitigations=[action] if action else [],
        mitigation_text=redact(mitigation),
        root_cause_text=redact(root_cause),
        impact=redact(summary.impact),
        symptoms=list(facts.get("symptoms") or []),
        tags=["slack"],
        source=source,
    )
