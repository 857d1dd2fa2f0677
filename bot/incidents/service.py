"""The incident rules any chat adapter applies: who may act, and what diagnoses and decisions put on the timeline."""

from __future__ import annotations

import time
from typing import Any, Callable

from bot.config import SlackConfig
from bot.incidents import roles as R
from bot.incidents.reports import Summary, draft_summary
from bot.incidents.store import Incident, IncidentStore
from bot.incidents.text import clip, percent
from tools.timeparse import parse_time

Snapshot = Callable[[str], dict[str, Any] | None]  # the agent's snapshot of a conversation thread


def authorize(*, store: IncidentStore, config: SlackConfig, incident: Incident, user: str, action: str,
              approvers: set[str], command: str) -> str | None:
    """None when ``user`` may do ``action`` (commander, severity, status, resolve, decide) to the
    incident under ``config.roles``; else the one-sentence refusal naming who may. ``approvers``:
    the configured approvers with user groups expanded (the adapter asks its chat for those)."""
    appointed = store.commander_appointed_by(incident) if action == "decide" else None
    verdict = R.check(config, action, user=user, incident=incident, approvers=approvers, appointed_by=appointed,
                      command=command)
    return None if verdict.allowed else verdict.refusal


def decision_key(*, thread_id: str, mitigation_id: Any) -> str:
    """The timeline key of a decision on a mitigation proposed in a thread (one entry per decision)."""
    return f"decision:{thread_id}:{mitigation_id}"


def decision_entry(decision: dict[str, Any]) -> str:
    """A decision as its timeline entry: the verdict, the mitigation and, for a rejection, why."""
    what = f"{str(decision.get('action', '')).replace('_', ' ')} → {decision.get('target', '')}"
    verdict = "Approved" if decision.get("approved") else "Rejected"
    reason = str(decision.get("reason") or "").strip()
    return f"{verdict} {decision.get('id')}: {what}" + (f"; reason: {clip(reason, 300)}" if reason else "")


def record_decision(*, store: IncidentStore, incident_id: int, thread_id: str, mitigation_id: str,
                    decision: dict[str, Any], by: str) -> None:
    """Put a decision on the incident's timeline (once: its key is the thread and the mitigation)."""
    store.add_entry(incident_id, kind="decision", author=by, at=decision.get("ts") or time.time(),
                    key=decision_key(thread_id=thread_id, mitigation_id=mitigation_id), text=decision_entry(decision))


def note_reasons(*, store: IncidentStore, incident_id: int, thread_id: str,
                 decisions: list[dict[str, Any]] | None) -> bool:
    """A rejection given (more of) its reason later: its timeline entry says it. True if one changed."""
    changed = False
    for d in decisions or []:
        if not d.get("approved") and d.get("reason"):
            changed |= store.set_entry_text(incident_id, key=decision_key(thread_id=thread_id, mitigation_id=d.get("id")),
                                            text=decision_entry(d))
    return changed


def record_diagnosis(*, store: IncidentStore, incident_id: int, diagnosis: dict[str, Any]) -> bool:
    """Keep the latest diagnosis on the incident; put a changed top hypothesis and the changes to
    affected services on the timeline. After resolution the resolved record stands and one line
    says what came late. False when the incident is gone (nothing recorded)."""
    incident = store.get(incident_id)
    if incident is None:
        return False
    live = [h for h in diagnosis.get("hypotheses") or [] if h.get("status") != "refuted"]
    top = live[0] if live else None
    if not incident.active:
        # After resolution: the resolved record (and its summary) stands; one line says what came late.
        store.add_entry(incident_id, kind="note", text="A diagnosis arrived after resolution: " + (
            f"top hypothesis {str(top.get('category')).replace('_', ' ')} in {top.get('component')} "
            f"(confidence {percent(top.get('confidence'))})" if top else "no hypothesis stands out"))
        return True
    key = f"{top.get('category')}:{top.get('component')}" if top else None
    changes: dict[str, Any] = {"diagnosis": diagnosis}
    if key and key != incident.top:
        changes["top"] = key
    store.update(incident_id, **changes)
    if top and key and key != incident.top:
        store.add_entry(incident_id, kind="finding", text=(
            f"Top hypothesis: {str(top.get('category')).replace('_', ' ')} in {top.get('component')} "
            f"({top.get('status')}, confidence {percent(top.get('confidence'))})"))
    facts = diagnosis.get("incident") or {}
    affected = {facts.get("service"), incident.service} | {h.get("component") for h in live[:1]}
    affected |= {k.get("component") for k in facts.get("knock_on") or []}
    window_start = parse_time((diagnosis.get("window") or {}).get("start")) or 0
    for e in diagnosis.get("evidence") or []:
        if e.get("source") != "changes" or e.get("component") not in affected:
            continue
        change_id = (e.get("details") or {}).get("change_id") or e.get("id")
        at = parse_time(e.get("onset"))
        if at is None or at < window_start:
            continue
        store.add_entry(incident_id, kind="change", at=at, key=f"change:{change_id}",
                        text=clip(str(e.get("summary", "")), 300))
    return True


def decisions_of(*, store: IncidentStore, incident: Incident, snapshot: Snapshot) -> tuple[list[dict], list[dict]]:
    """Pending mitigations and decisions across the incident's diagnosis threads."""
    pending: list[dict] = []
    decisions: list[dict] = []
    for thread_id in store.thread_ids(incident.id):
        snap = snapshot(thread_id) or {}
        pending.extend(snap.get("pending") or [])
        decisions.extend(snap.get("decisions") or [])
    return pending, decisions


def summarize(*, store: IncidentStore, incident: Incident, snapshot: Snapshot) -> tuple[Summary, list[dict]]:
    """The incident's summary (drafted from its timeline and its threads' mitigations), and its decisions."""
    pending, decisions = decisions_of(store=store, incident=incident, snapshot=snapshot)
    summary = draft_summary(incident, timeline=store.timeline(incident.id), pending=pending, decisions=decisions)
    return summary, decisions
