"""Decisions on proposed mitigations: who may decide (user groups expanded), approve, reject with a reason."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents import service
from bot.incidents.store import Incident
from bot.slack import blocks as B
from bot.slack.errors import why
from bot.slack.mrkdwn import MAX_FALLBACK, clip, escape, sections
from bot.slack.plan import Progress, post_once
from bot.slack.sleuth import Sleuth, ephemeral
from bot.slack.timeline import refresh_timeline

log = logging.getLogger("sleuth.slack")

GROUP_CACHE_S = 60.0


def approver_ids(sleuth: Sleuth, client: WebClient) -> set[str]:
    """Configured approvers: user ids as they are, user groups expanded (cached for a minute)."""
    people: set[str] = set()
    for entry in sleuth.config.slack.approvers:
        if not entry.startswith("S"):
            people.add(entry)
            continue
        cached = sleuth.group_cache.get(entry)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_S:
            people |= cached[1]
            continue
        try:
            members = set(client.usergroups_users_list(usergroup=entry).get("users") or [])
        except SlackApiError as exc:
            log.warning("cannot list user group %s: %s", entry, exc.response.get("error"))
            members = cached[1] if cached else set()
        sleuth.group_cache[entry] = (time.monotonic(), members)
        people |= members
    return people


def authorize(sleuth: Sleuth, client: WebClient, incident: Incident, user: str, action: str) -> str | None:
    """None when ``user`` may do ``action`` (commander, severity, status, resolve, decide) to the
    incident under ``slack.roles``; else the one-sentence refusal naming who may."""
    settings = sleuth.config.slack
    approvers = approver_ids(sleuth, client) if settings.approvers else set()
    refused = service.authorize(store=sleuth.store, config=settings, incident=incident, user=user, action=action,
                                approvers=approvers, command=sleuth.command)
    if refused is not None:
        log.info("refused %s to %s on incident %s", action, user, incident.id)
    return refused


def may_decide(sleuth: Sleuth, client: WebClient, incident: Incident, user: str) -> bool:
    """May ``user`` approve or reject this incident's mitigations (see bot.incidents.roles)?"""
    return authorize(sleuth, client, incident, user, "decide") is None


def note_reasons(sleuth: Sleuth, client: WebClient, *, incident_id: int, thread_id: str,
                 decisions: list[dict[str, Any]] | None) -> None:
    """A rejection given (more of) its reason later, in the thread: its timeline entry says it."""
    if service.note_reasons(store=sleuth.store, incident_id=incident_id, thread_id=thread_id, decisions=decisions):
        refresh_timeline(sleuth, client, incident_id)


def reject_modal(sleuth: Sleuth, client: WebClient, *, channel: str, user: str, thread_id: str,
                 mitigation_id: str, message: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The form asking why a mitigation is rejected, when ``user`` may reject it and it still awaits
    a decision; None otherwise (:func:`decide` then says why, privately)."""
    thread = sleuth.store.thread(thread_id)
    incident = sleuth.store.get(thread.incident_id) if thread and thread.incident_id is not None else None
    if incident is None or not may_decide(sleuth, client, incident, user):
        return None
    snap = sleuth.agent.snapshot(thread_id) or {}
    if snap.get("waiting") == "question":
        return None
    pending = next((m for m in snap.get("pending") or [] if m.get("id") == mitigation_id), None)
    if pending is None:
        return None
    label = f"{str(pending.get('action', '')).replace('_', ' ')} → {pending.get('target') or ''}".rstrip(" →")
    where = {"thread": thread_id, "m": mitigation_id, "channel": channel,
             "ts": (message or {}).get("ts"), "thread_ts": thread.thread_ts if thread else None}
    return B.reject_modal(metadata=json.dumps(where, separators=(",", ":")), mitigation_id=mitigation_id,
                          label=label)


def reject_with_reason(sleuth: Sleuth, client: WebClient, *, user: str, metadata: str, reason: str,
                       progress: Progress | None = None) -> None:
    """The reject form was submitted: record the rejection with its reason (rights checked again)."""
    try:
        where = json.loads(metadata or "{}")
    except json.JSONDecodeError:
        return
    channel, ts, thread_ts = str(where.get("channel") or ""), where.get("ts"), where.get("thread_ts")
    message = _fetch_reply(client, channel, str(thread_ts), str(ts)) if ts and thread_ts else None
    decide(sleuth, client, channel=channel, user=user, thread_id=str(where.get("thread") or ""),
           mitigation_id=str(where.get("m") or ""), approved=False, message=message, reason=reason.strip(),
           progress=progress)


def _fetch_reply(client: WebClient, channel: str, thread_ts: str, ts: str) -> dict[str, Any] | None:
    """A message of a thread by its ts (the diagnosis whose buttons a decision replaces)."""
    try:
        found = client.conversations_replies(channel=channel, ts=thread_ts, latest=ts, oldest=ts, inclusive=True,
                                             limit=1)
    except SlackApiError as exc:
        log.warning("could not read the diagnosis message to update its buttons: %s", why(exc))
        return None
    return next((m for m in found.get("messages") or [] if m.get("ts") == ts), None)


def decide(sleuth: Sleuth, client: WebClient, *, channel: str, user: str, thread_id: str, mitigation_id: str,
           approved: bool, message: dict[str, Any] | None = None, reason: str = "",
           progress: Progress | None = None) -> None:
    """Approve or reject a proposed mitigation, as ``slack.roles.decide`` allows (a rejection with
    the reason its form asked for). A click is claimed work: ``progress`` records that the decision
    was taken and announced, so a replay after an outage or a crash announces it once, never
    deciding twice nor telling the person their own click was "already decided"."""
    p = progress or Progress()
    store = sleuth.store
    thread = store.thread(thread_id)
    incident = store.get(thread.incident_id) if thread and thread.incident_id is not None else None
    if thread is None or incident is None:
        ephemeral(client, channel=channel, user=user, text="This diagnosis belongs to no incident Sleuth knows; "
                  f"run `{sleuth.command}` again.", thread_ts=thread.thread_ts if thread else None)
        return
    thread_ts = thread.thread_ts
    decision: dict[str, Any] | None = p.get("decision")
    if decision is None:
        refused = authorize(sleuth, client, incident, user, "decide")
        if refused:
            ephemeral(client, channel=channel, user=user, thread_ts=thread_ts, text=refused)
            return
        turn = sleuth.agent.decide(thread_id, mitigation_id, approved, by=user, reason=reason)
        if turn.kind == "error":
            said = re.sub(r"\b([UW][A-Z0-9]{5,})\b", r"<@\1>", escape(B.error_text(turn.text)))
            ephemeral(client, channel=channel, user=user, text=said, thread_ts=thread_ts)
            done = next((d for d in turn.decisions or [] if d.get("id") == mitigation_id), None)
            if done and message:
                _update_decided(client, channel, message, mitigation_id, done)
            return
        decision = next((d for d in reversed(turn.decisions) if d.get("id") == mitigation_id), {})
        p.set(decision=decision)  # taken: a replay announces it, and decides nothing again
    what = f"{str(decision.get('action', '')).replace('_', ' ')} → {decision.get('target', '')}"
    service.record_decision(store=store, incident_id=incident.id, thread_id=thread_id, mitigation_id=mitigation_id,
                            decision=decision, by=user)
    if message:
        _update_decided(client, channel, message, mitigation_id, decision)
    if approved:
        text = (f":white_check_mark: <@{user}> approved *{escape(mitigation_id)}*: {escape(what)}.\n"
                f"Sleuth executes nothing: whoever carries it out, verify that "
                f"{escape(decision.get('verify') or 'the symptom signal returns to its baseline')}.\n"
                "Tell me here when it is done (\"we rolled back, is it recovering?\") and I will compare.")
    else:
        text = f":no_entry_sign: <@{user}> rejected *{escape(mitigation_id)}*: {escape(what)}."
        if decision.get("reason"):
            text += f"\nReason: {clip(escape(decision['reason']), 1000)}"
    post_once(client, p, "announced", channel=channel, thread_ts=thread_ts, after=None,
              text=clip(text, MAX_FALLBACK), blocks=sections(text), prefix=text[:60])
    refresh_timeline(sleuth, client, incident.id)


def _update_decided(client: WebClient, channel: str, message: dict[str, Any], mitigation_id: str,
                    decision: dict[str, Any]) -> None:
    updated = B.resolve_decision_in_message(message.get("blocks") or [], mitigation_id, decision)
    try:
        client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "Diagnosis", blocks=updated)
    except SlackApiError as exc:
        log.warning("could not update the diagnosis message: %s", exc.response.get("error"))
