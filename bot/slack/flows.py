"""The incident workflows Slack drives: diagnose in a thread, converse, decide, keep the timeline,
roll up, resolve and remember.

Each flow takes the :class:`Sleuth` (config, store, agent) and a ``slack_sdk.WebClient``; none
imports slack_bolt, so they are the same behind Socket Mode and HTTP, and app.py only wires Bolt's
listeners to them. Everything a user can get wrong ends in one sentence, ephemeral.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import SleuthConfig
from bot.slack import blocks as B
from bot.slack.commands import Command
from bot.slack.incidents import Incident, IncidentStore
from bot.slack.reports import draft_rollup, draft_summary, incident_record, memory_defaults

log = logging.getLogger("sleuth.slack")

SOURCES = ("metrics", "logs", "changes", "incidents")
GROUP_CACHE_S = 60.0


@dataclass
class Defaults:
    """What a bare ``/diagnose`` means: the demo scenario's question (all None otherwise)."""

    symptom: str | None = None
    service: str | None = None
    at: float | None = None
    window: str | None = None


@dataclass
class Sleuth:
    """Everything the listeners need, handed in (no globals): config, store, agent, defaults."""

    config: SleuthConfig
    store: IncidentStore
    agent: Any  # bot.agent.Agent
    defaults: Defaults = field(default_factory=Defaults)
    known_services: set[str] = field(default_factory=set)
    max_investigations: int | None = None  # None: slack.max_investigations
    memory_factory: Callable[[], Any] | None = None  # -> index.store.Memory; None: from config.memory

    def __post_init__(self) -> None:
        # Investigations are CPU-bound: a few at a time finish sooner than all at once, and the
        # lighter work (reactions, decisions, timeline edits) keeps flowing beside them.
        if self.max_investigations is None:
            self.max_investigations = self.config.slack.max_investigations
        self.gate = threading.BoundedSemaphore(self.max_investigations)
        # Who holds claimed work: this process, distinguishable from an earlier one with the same pid.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.updates = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sleuth-slack-update")
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._groups: dict[str, tuple[float, set[str]]] = {}

    @property
    def command(self) -> str:
        return self.config.slack.command

    def incident_lock(self, incident_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(incident_id, threading.Lock())

    def memory(self) -> Any:
        if self.memory_factory is not None:
            return self.memory_factory()
        if self.config.memory is None:
            return None
        from index.store import Memory

        return Memory(self.config.memory)

    def close(self) -> None:
        self.updates.shutdown(wait=True)


def thread_id_of(team: str, channel: str, thread_ts: str) -> str:
    """The agent's conversation id for a Slack thread."""
    return f"{team}:{channel}:{thread_ts}"


# --- small Slack helpers ----------------------------------------------------------------------


def ephemeral(client: WebClient, *, channel: str, user: str, text: str, blocks: list | None = None,
              thread_ts: str | None = None) -> None:
    """Only ``user`` sees it. A failure to tell is logged, never raised."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=B.clip(text, B.MAX_FALLBACK), blocks=blocks,
                                  thread_ts=thread_ts)
    except SlackApiError as exc:
        log.warning("could not post an ephemeral message in %s: %s", channel, exc.response.get("error"))


def slack_error(exc: SlackApiError, method: str) -> str:
    error = exc.response.get("error") if exc.response is not None else str(exc)
    hints = {"not_in_channel": "invite Sleuth to the channel (/invite @Sleuth)",
             "channel_not_found": "invite Sleuth to the channel (/invite @Sleuth)",
             "missing_scope": "reinstall the app from manifest.yml so it has every scope",
             "invalid_auth": "check SLACK_BOT_TOKEN", "ratelimited": "wait a minute and try again"}
    return f"Slack refused {method} ({error}); {hints.get(error, 'try again, and check the app log if it persists')}"


class PlanMessage:
    """The thread's first message, edited (chat.update) as each source reports.

    Progress arrives on the investigation's thread; edits go out on the update pool, coalesced,
    so a slow Slack never slows the investigation and the last state always wins.
    """

    def __init__(self, sleuth: Sleuth, client: WebClient, *, channel: str, symptom: str, service: str | None,
                 window: str | None, incident_title: str, opened: bool, requested_by: str,
                 reply_to: str | None = None, lazy: bool = False) -> None:
        self.sleuth, self.client, self.channel = sleuth, client, channel
        self.args = {"symptom": symptom, "service": service, "window": window, "incident_title": incident_title,
                     "opened": opened, "requested_by": requested_by}
        self.reply_to = reply_to
        self.sources: dict[str, dict | None] = {name: None for name in SOURCES}
        self.ts: str | None = None
        self._cond = threading.Condition()
        self._dirty = False
        self._busy = False
        self._done = False
        self._lazy = lazy  # posted by the first progress report (a reply may or may not investigate)
        self._posting = threading.Lock()

    def post(self) -> str:
        text, blocks = B.plan_message(**self.args, sources=dict(self.sources))
        answer = self.client.chat_postMessage(channel=self.channel, text=text, blocks=blocks, thread_ts=self.reply_to)
        self.ts = answer["ts"]
        return self.ts

    def progress(self, name: str, report: Any) -> None:
        if self._lazy and self.ts is None:
            with self._posting:
                if self.ts is None:
                    try:
                        self.post()
                    except SlackApiError as exc:
                        log.warning("could not post the plan message: %s", exc.response.get("error"))
                        self._lazy = False
                        return
        if self.ts is None:
            return
        with self._cond:
            if self._done:
                return
            self.sources[name] = report.to_dict() if hasattr(report, "to_dict") else dict(report)
            self._dirty = True
            if self._busy:
                return
            self._busy = True
        self.sleuth.updates.submit(self._flush)

    def _flush(self) -> None:
        while True:
            with self._cond:
                if not self._dirty or self._done:
                    self._busy = False
                    self._cond.notify_all()
                    return
                self._dirty = False
                sources = dict(self.sources)
            self._edit(sources, None)

    def _edit(self, sources: dict[str, dict | None], outcome: str | None) -> None:
        text, blocks = B.plan_message(**self.args, sources=sources, outcome=outcome)
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("could not edit the plan message: %s", exc.response.get("error"))

    def finish(self, outcome: str, sources: dict[str, Any] | None = None) -> None:
        if self.ts is None:
            return  # a lazy plan nothing reported to: there is no message to edit
        with self._cond:
            self._done = True
            self._cond.wait_for(lambda: not self._busy, timeout=30)
            merged = dict(self.sources)
            for name, report in (sources or {}).items():
                merged[name] = report
        self._edit(merged, outcome)


# --- diagnose and converse --------------------------------------------------------------------


def diagnose(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command,
             reply_to: str | None = None, on_plan: Callable[[str, str], None] | None = None) -> None:
    """``/diagnose [service] [window] [text]``: open the incident if needed, post the plan, run the
    agent, then post the diagnosis, the charts and the mitigations into the thread. ``on_plan``
    hears (channel, ts) of the plan message once it is posted."""
    from bot.investigate import RequestError, parse_at

    store = sleuth.store
    existing = store.active_incident(team=team, channel=channel)
    symptom = command.text or (existing.title if existing else None) or sleuth.defaults.symptom or ""
    service = command.service or (sleuth.defaults.service if not command.text else None)
    window = command.window or sleuth.defaults.window
    try:
        at = parse_at(command.at) if command.at else sleuth.defaults.at
    except RequestError as exc:
        ephemeral(client, channel=channel, user=user, text=B.error_text(str(exc)), thread_ts=reply_to)
        return
    if not symptom:
        ephemeral(client, channel=channel, user=user, thread_ts=reply_to,
                  text=f"Say what is wrong, e.g. `{sleuth.command} checkout is returning 500s`.")
        return
    # The plan goes out first (the user is waiting); the incident is opened right after.
    title = existing.title if existing else B.clip(symptom, 150)
    plan = PlanMessage(sleuth, client, channel=channel, symptom=symptom, service=service, window=window,
                       incident_title=title, opened=existing is None, requested_by=user, reply_to=reply_to)
    root = plan.post()
    if on_plan is not None:
        on_plan(channel, root)
    incident, opened = store.open_incident(team=team, channel=channel, title=title, opened_by=user, service=service)
    plan.args.update(incident_title=incident.title, opened=opened)
    thread_ts = reply_to or root
    thread_id = thread_id_of(team, channel, thread_ts)
    store.remember_thread(thread_id=thread_id, team=team, channel=channel, thread_ts=thread_ts,
                          incident_id=incident.id)
    incident = store.update(incident.id, thread_ts=thread_ts)
    if opened:
        refresh_timeline(sleuth, client, incident.id)
    try:
        with sleuth.gate:
            turn = sleuth.agent.start(thread_id, symptom, service=service, window=window, at=at,
                                      on_progress=plan.progress)
    except Exception as exc:
        plan.finish(f":warning: Stopped: the investigation failed ({B.escape(type(exc).__name__)}); "
                    "the app log has the details.")
        raise
    plan.finish(outcome_of(turn), (turn.diagnosis or {}).get("sources"))
    say_turn(sleuth, client, incident_id=incident.id, channel=channel, thread_ts=thread_ts, user=user, turn=turn)


INTERRUPTED = (":warning: Sleuth stopped (a restart or a crash) before this investigation finished; "
               "it has been started again and reports in a new message.")


def mark_interrupted(client: WebClient, *, channel: str, ts: str) -> None:
    """Say on a plan message whose process died that the work was started again."""
    try:
        client.chat_update(channel=channel, ts=ts, text=INTERRUPTED, blocks=B.sections(INTERRUPTED))
    except SlackApiError as exc:
        log.warning("could not mark the interrupted plan message: %s", exc.response.get("error"))


def outcome_of(turn: Any) -> str:
    """The plan message's last line for the agent's turn."""
    if turn.kind == "error":
        return f":warning: Stopped: {B.escape(B.error_text(turn.text))}"
    if turn.kind == "question":
        return ":question: One question first, in the thread."
    if turn.kind != "diagnosis":
        return ":white_check_mark: Done: the answer is in the thread."
    top = next((h for h in (turn.diagnosis or {}).get("hypotheses") or [] if h.get("status") != "refuted"), None)
    summary = (f"best hypothesis *{B.escape(str(top.get('category')).replace('_', ' '))} in "
               f"{B.escape(top.get('component'))}* ({B.percent(top.get('confidence'))})" if top
               else "no hypothesis stands out")
    return f":white_check_mark: Done: {summary}; the diagnosis is in the thread."


def converse(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, thread_ts: str,
             text: str) -> None:
    """A reply in a Sleuth thread (or an @mention there): the same conversation continues. When the
    reply sets an investigation going (the answer to a clarifying question, "check payments"), a
    plan message appears in the thread with the first source's report and is edited like the first."""
    text = B.from_slack(text)  # as typed: Slack's escaping undone once (see blocks.py)
    thread_id = thread_id_of(team, channel, thread_ts)
    thread = sleuth.store.thread(thread_id)
    incident_id = thread.incident_id if thread else None
    if incident_id is None:
        incident, _ = sleuth.store.open_incident(team=team, channel=channel, title=B.clip(text, 150), opened_by=user)
        incident_id = incident.id
        sleuth.store.remember_thread(thread_id=thread_id, team=team, channel=channel, thread_ts=thread_ts,
                                     incident_id=incident_id)
    snap = sleuth.agent.snapshot(thread_id) or {}
    request = snap.get("request") or {}
    incident = sleuth.store.get(incident_id)
    plan = PlanMessage(sleuth, client, channel=channel, symptom=str(request.get("symptom") or text),
                       service=request.get("service"), window=request.get("window"),
                       incident_title=incident.title if incident else B.clip(text, 150), opened=False,
                       requested_by=user, reply_to=thread_ts, lazy=True)
    try:
        with sleuth.gate:
            turn = sleuth.agent.reply(thread_id, text, on_progress=plan.progress)
    except Exception as exc:
        plan.finish(f":warning: Stopped: the investigation failed ({B.escape(type(exc).__name__)}); "
                    "the app log has the details.")
        raise
    plan.finish(outcome_of(turn), (turn.diagnosis or {}).get("sources"))
    say_turn(sleuth, client, incident_id=incident_id, channel=channel, thread_ts=thread_ts, user=user, turn=turn)


def say_turn(sleuth: Sleuth, client: WebClient, *, incident_id: int, channel: str, thread_ts: str, user: str,
             turn: Any) -> None:
    """Post what the agent produced into the thread; a diagnosis also feeds the incident's timeline."""
    if turn.kind == "error":
        ephemeral(client, channel=channel, user=user, text=B.error_text(turn.text), thread_ts=thread_ts)
        return
    if turn.kind in ("question", "answer") or not turn.diagnosis:
        text, blocks = B.answer_message(B.prose(turn.text), kind="question" if turn.kind == "question" else "answer")
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
        return
    thread_id = turn.thread_id
    thread = sleuth.store.thread(thread_id)
    already = set(thread.charts) if thread else set()
    # The charts may still be drawing (in the chart worker): the diagnosis goes out first.
    charts = [Path(p) for p in turn.charts or [] if Path(p).name not in already]
    text, blocks = B.diagnosis_message(turn.diagnosis, thread_id=thread_id, pending=turn.pending,
                                       decisions=turn.decisions, charts=len(charts))
    client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
    record_diagnosis(sleuth, client, incident_id=incident_id, diagnosis=turn.diagnosis)
    if charts:
        sleuth.agent.wait_for_charts(thread_id)
        drawn = [p for p in charts if p.is_file()]
        if drawn:
            upload_charts(sleuth, client, channel=channel, thread_ts=thread_ts, thread_id=thread_id, charts=drawn)


def upload_charts(sleuth: Sleuth, client: WebClient, *, channel: str, thread_ts: str, thread_id: str,
                  charts: list[Path]) -> None:
    uploads = [{"file": str(p), "filename": p.name, "title": p.stem.split("-", 1)[-1].replace("-", " "),
                "alt_text": f"chart of {p.stem}"} for p in charts[:6]]
    try:
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, file_uploads=uploads,
                               initial_comment="Charts of the anomalous signals: baseline, onset and changes.")
    except SlackApiError as exc:
        log.warning("chart upload failed: %s", exc.response.get("error"))
        return
    sleuth.store.add_thread_charts(thread_id, [p.name for p in charts])


def record_diagnosis(sleuth: Sleuth, client: WebClient, *, incident_id: int, diagnosis: dict[str, Any]) -> None:
    """Keep the latest diagnosis on the incident; put a changed top hypothesis and the changes to
    affected services on the timeline."""
    store = sleuth.store
    incident = store.get(incident_id)
    if incident is None:
        return
    live = [h for h in diagnosis.get("hypotheses") or [] if h.get("status") != "refuted"]
    top = live[0] if live else None
    key = f"{top.get('category')}:{top.get('component')}" if top else None
    changes = {"diagnosis": diagnosis}
    if key and key != incident.top:
        changes["top"] = key
    store.update(incident_id, **changes)
    if key and key != incident.top:
        store.add_entry(incident_id, kind="finding", text=(
            f"Top hypothesis: {str(top.get('category')).replace('_', ' ')} in {top.get('component')} "
            f"({top.get('status')}, confidence {B.percent(top.get('confidence'))})"))
    facts = diagnosis.get("incident") or {}
    affected = {facts.get("service"), incident.service} | {h.get("component") for h in live[:1]}
    affected |= {k.get("component") for k in facts.get("knock_on") or []}
    window_start = B.iso_to_ts((diagnosis.get("window") or {}).get("start")) or 0
    for e in diagnosis.get("evidence") or []:
        if e.get("source") != "changes" or e.get("component") not in affected:
            continue
        change_id = (e.get("details") or {}).get("change_id") or e.get("id")
        at = B.iso_to_ts(e.get("onset"))
        if at is None or at < window_start:
            continue
        store.add_entry(incident_id, kind="change", at=at, key=f"change:{change_id}",
                        text=B.clip(str(e.get("summary", "")), 300))
    refresh_timeline(sleuth, client, incident_id)


# --- decisions --------------------------------------------------------------------------------


def approver_ids(sleuth: Sleuth, client: WebClient) -> set[str]:
    """Configured approvers: user ids as they are, user groups expanded (cached for a minute)."""
    people: set[str] = set()
    for entry in sleuth.config.slack.approvers:
        if not entry.startswith("S"):
            people.add(entry)
            continue
        cached = sleuth._groups.get(entry)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_S:
            people |= cached[1]
            continue
        try:
            members = set(client.usergroups_users_list(usergroup=entry).get("users") or [])
        except SlackApiError as exc:
            log.warning("cannot list user group %s: %s", entry, exc.response.get("error"))
            members = cached[1] if cached else set()
        sleuth._groups[entry] = (time.monotonic(), members)
        people |= members
    return people


def may_decide(sleuth: Sleuth, client: WebClient, incident: Incident, user: str) -> bool:
    return user == incident.commander or user in approver_ids(sleuth, client)


def decide(sleuth: Sleuth, client: WebClient, *, channel: str, user: str, thread_id: str, mitigation_id: str,
           approved: bool, message: dict[str, Any] | None = None) -> None:
    """Approve or reject a proposed mitigation: only the commander or a configured approver."""
    store = sleuth.store
    thread = store.thread(thread_id)
    incident = store.get(thread.incident_id) if thread and thread.incident_id is not None else None
    thread_ts = thread.thread_ts if thread else None
    if incident is None:
        ephemeral(client, channel=channel, user=user, text="This diagnosis belongs to no incident Sleuth knows; "
                  f"run `{sleuth.command}` again.", thread_ts=thread_ts)
        return
    if not may_decide(sleuth, client, incident, user):
        who = f"the incident commander ({B.user(incident.commander)})" if incident.commander else "the incident commander"
        ephemeral(client, channel=channel, user=user, thread_ts=thread_ts,
                  text=f"Only {who} or a configured approver can approve or reject mitigations; ask them, or "
                       f"take command with `{sleuth.command} commander @you`.")
        return
    turn = sleuth.agent.decide(thread_id, mitigation_id, approved, by=user)
    if turn.kind == "error":
        said = re.sub(r"\b([UW][A-Z0-9]{5,})\b", r"<@\1>", B.escape(B.error_text(turn.text)))
        ephemeral(client, channel=channel, user=user, text=said, thread_ts=thread_ts)
        done = next((d for d in turn.decisions or [] if d.get("id") == mitigation_id), None)
        if done and message:
            _update_decided(client, channel, message, mitigation_id, done)
        return
    decision = next((d for d in reversed(turn.decisions) if d.get("id") == mitigation_id), {})
    what = f"{str(decision.get('action', '')).replace('_', ' ')} → {decision.get('target', '')}"
    verdict = "Approved" if approved else "Rejected"
    store.add_entry(incident.id, kind="decision", author=user, at=decision.get("ts") or time.time(),
                    key=f"decision:{thread_id}:{mitigation_id}",
                    text=f"{verdict} {mitigation_id}: {what}")
    if message:
        _update_decided(client, channel, message, mitigation_id, decision)
    if approved:
        text = (f":white_check_mark: <@{user}> approved *{B.escape(mitigation_id)}*: {B.escape(what)}.\n"
                f"Sleuth executes nothing: whoever carries it out, verify that "
                f"{B.escape(decision.get('verify') or 'the symptom signal returns to its baseline')}.\n"
                "Tell me here when it is done (\"we rolled back, is it recovering?\") and I will compare.")
    else:
        text = f":no_entry_sign: <@{user}> rejected *{B.escape(mitigation_id)}*: {B.escape(what)}."
    client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=B.clip(text, B.MAX_FALLBACK),
                            blocks=B.sections(text))
    refresh_timeline(sleuth, client, incident.id)


def _update_decided(client: WebClient, channel: str, message: dict[str, Any], mitigation_id: str,
                    decision: dict[str, Any]) -> None:
    updated = B.resolve_decision_in_message(message.get("blocks") or [], mitigation_id, decision)
    try:
        client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "Diagnosis", blocks=updated)
    except SlackApiError as exc:
        log.warning("could not update the diagnosis message: %s", exc.response.get("error"))


# --- the timeline -----------------------------------------------------------------------------


def refresh_timeline(sleuth: Sleuth, client: WebClient, incident_id: int) -> None:
    """Keep the one pinned timeline message of the incident up to date (posted and pinned once)."""
    store = sleuth.store
    with sleuth.incident_lock(incident_id):
        incident = store.get(incident_id)
        if incident is None:
            return
        text, blocks = B.timeline_message(incident, store.timeline(incident_id))
        if incident.timeline_ts:
            try:
                client.chat_update(channel=incident.channel, ts=incident.timeline_ts, text=text, blocks=blocks)
                return
            except SlackApiError as exc:
                if exc.response.get("error") not in ("message_not_found", "cant_update_message"):
                    log.warning("could not update the timeline: %s", exc.response.get("error"))
                    return
        posted = client.chat_postMessage(channel=incident.channel, text=text, blocks=blocks)
        store.update(incident_id, timeline_ts=posted["ts"], updated_at=incident.updated_at)
        try:
            client.pins_add(channel=incident.channel, timestamp=posted["ts"])
        except SlackApiError as exc:
            log.warning("could not pin the timeline: %s", exc.response.get("error"))


def _fetch_message(client: WebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """A message by its ts: from the channel's history, or from a thread when it is a reply."""
    found = client.conversations_history(channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
    for message in found.get("messages") or []:
        if message.get("ts") == ts:
            return message
    replies = client.conversations_replies(channel=channel, ts=ts, latest=ts, oldest=ts, inclusive=True, limit=1)
    for message in replies.get("messages") or []:
        if message.get("ts") == ts:
            return message
    return None


def flag_message(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, ts: str, via: str,
                 message: dict[str, Any] | None = None) -> None:
    """A message given the timeline reaction (or pinned) joins the active incident's timeline."""
    store = sleuth.store
    incident = store.active_incident(team=team, channel=channel)
    if incident is None or ts == incident.timeline_ts:
        return
    message = message or _fetch_message(client, channel, ts)
    if message is None:
        return
    permalink = message.get("permalink")
    if not permalink:
        try:
            permalink = client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        except SlackApiError:
            permalink = None
    text = B.from_slack(message.get("text") or "").strip() or "(a message without text)"
    entry = store.add_entry(incident.id, kind="manual", at=float(ts), author=message.get("user"),
                            permalink=permalink, key=f"msg:{channel}:{ts}", via=via, text=B.clip(text, 500))
    if entry is not None:
        refresh_timeline(sleuth, client, incident.id)


def unflag_message(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, ts: str) -> None:
    incident = sleuth.store.active_incident(team=team, channel=channel)
    if incident is None:
        return
    if sleuth.store.remove_entry(incident.id, key=f"msg:{channel}:{ts}", via="reaction"):
        refresh_timeline(sleuth, client, incident.id)


# --- subcommands ------------------------------------------------------------------------------


def _announce(client: WebClient, channel: str, text: str) -> None:
    client.chat_postMessage(channel=channel, text=B.clip(text, B.MAX_FALLBACK), blocks=B.sections(text))


def start(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command) -> None:
    incident, opened = sleuth.store.open_incident(team=team, channel=channel, title=command.text, opened_by=user,
                                                  severity=command.severity)
    if not opened:
        ephemeral(client, channel=channel, user=user, text=f"This channel already has an active incident, "
                  f"“{incident.title}”; resolve it first with `{sleuth.command} resolve`.")
        return
    _announce(client, channel, f":rotating_light: <@{user}> opened *{B.escape(incident.title)}* "
                               f"({incident.label}); commander <@{user}>. The timeline is pinned to this channel.")
    refresh_timeline(sleuth, client, incident.id)


def change(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command) -> None:
    """``sev``, ``commander`` and ``status``: change the incident, say so, put it on the timeline."""
    store = sleuth.store
    incident = store.active_incident(team=team, channel=channel)
    if incident is None:
        ephemeral(client, channel=channel, user=user, text=f"There is no active incident in this channel; open one "
                  f"with `{sleuth.command} start &lt;title&gt;` or `{sleuth.command} &lt;what is wrong&gt;`.")
        return
    if command.name == "status" and command.status == "resolved":
        resolve(sleuth, client, team=team, channel=channel, user=user, note="")
        return
    if command.name == "sev":
        store.update(incident.id, severity=command.severity)
        entry = f"Severity SEV{command.severity} (was {incident.label})"
        kind, said = "severity", f":bangbang: <@{user}> set the severity to *SEV{command.severity}* (was {incident.label})."
    elif command.name == "commander":
        store.update(incident.id, commander=command.user)
        entry = f"Commander <@{command.user}> (was {B.user(incident.commander)})"
        kind, said = "commander", f":bust_in_silhouette: <@{command.user}> is now the incident commander (set by <@{user}>)."
    else:
        store.update(incident.id, status=command.status)
        entry = f"Status {command.status} (was {incident.status})"
        kind, said = "status", f":arrows_counterclockwise: <@{user}> set the status to *{command.status}* (was {incident.status})."
    store.add_entry(incident.id, kind=kind, author=user, text=entry)
    _announce(client, channel, said)
    refresh_timeline(sleuth, client, incident.id)


def decisions_of(sleuth: Sleuth, incident: Incident) -> tuple[list[dict], list[dict]]:
    """Pending mitigations and decisions across the incident's diagnosis threads."""
    pending: list[dict] = []
    decisions: list[dict] = []
    _, rows = sleuth.store.db.execute(
        f"SELECT thread_id FROM {sleuth.store.prefix}threads WHERE incident_id = ? ORDER BY created_at", (incident.id,))
    for row in rows:
        snap = sleuth.agent.snapshot(row["thread_id"]) or {}
        pending.extend(snap.get("pending") or [])
        decisions.extend(snap.get("decisions") or [])
    return pending, decisions


def rollup(sleuth: Sleuth, *, team: str, channel: str, everything: bool) -> tuple[str, list[dict]] | None:
    """The rollup of this channel's incident (None without one), or of every active incident."""
    store = sleuth.store
    if everything:
        incidents = store.active_incidents(team=team)
    else:
        incident = store.active_incident(team=team, channel=channel)
        if incident is None:
            return None
        incidents = [incident]
    drafted = []
    for incident in incidents:
        pending, decisions = decisions_of(sleuth, incident)
        drafted.append(draft_rollup(incident, pending=pending, decisions=decisions))
    return B.rollup_message(drafted, everything=everything)


def timeline(sleuth: Sleuth, *, team: str, channel: str) -> tuple[str, list[dict]] | None:
    incident = sleuth.store.latest_incident(team=team, channel=channel)
    if incident is None:
        return None
    return B.timeline_message(incident, sleuth.store.timeline(incident.id))


def resolve(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, note: str) -> None:
    """Resolve the channel's incident and post the summary with its Add to memory button."""
    store = sleuth.store
    incident = store.active_incident(team=team, channel=channel)
    if incident is None:
        ephemeral(client, channel=channel, user=user, text="There is no active incident in this channel to resolve.")
        return
    now = time.time()
    store.update(incident.id, status="resolved", resolved_at=now, resolution=note)
    store.add_entry(incident.id, kind="resolved", author=user, at=now,
                    text="Resolved" + (f": {note}" if note else ""))
    refresh_timeline(sleuth, client, incident.id)
    post_summary(sleuth, client, incident_id=incident.id)


def _summary(sleuth: Sleuth, incident: Incident):
    pending, decisions = decisions_of(sleuth, incident)
    summary = draft_summary(incident, timeline=sleuth.store.timeline(incident.id), pending=pending,
                            decisions=decisions)
    return summary, decisions


def post_summary(sleuth: Sleuth, client: WebClient, *, incident_id: int) -> None:
    incident = sleuth.store.get(incident_id)
    if incident is None:
        return
    summary, _ = _summary(sleuth, incident)
    text, blocks = B.summary_message(summary, incident_id=incident.id)
    posted = client.chat_postMessage(channel=incident.channel, text=text, blocks=blocks)
    sleuth.store.update(incident.id, summary_ts=posted["ts"], updated_at=incident.updated_at)


# --- add to memory ----------------------------------------------------------------------------


def memory_modal(sleuth: Sleuth, *, incident_id: int) -> dict[str, Any] | None:
    incident = sleuth.store.get(incident_id)
    if incident is None:
        return None
    summary, decisions = _summary(sleuth, incident)
    defaults = memory_defaults(summary, incident, decisions)
    return B.memory_modal(incident_id=incident.id, title=incident.title, category=defaults["category"],
                          root_cause=defaults["root_cause"] or "", action=defaults["action"],
                          mitigation=defaults["mitigation"] or "")


def add_to_memory(sleuth: Sleuth, client: WebClient, *, incident_id: int, user: str,
                  values: dict[str, str | None]) -> None:
    """Index the confirmed incident into the past-incident memory; say so under the summary."""
    from index.errors import SleuthIndexError

    store = sleuth.store
    incident = store.get(incident_id)
    if incident is None:
        return
    memory = sleuth.memory()
    if memory is None:
        ephemeral(client, channel=incident.channel, user=user, text="No past-incident memory is configured; add a "
                  "`memory:` section to sleuth.yml (see sleuth.example.yml) and try again.")
        return
    summary, _ = _summary(sleuth, incident)
    source = f"slack:{incident.team}/{incident.channel}/{incident.summary_ts or incident.thread_ts or ''}"
    record = incident_record(incident, summary=summary, category=values.get("category"),
                             root_cause=values.get("root_cause") or "", action=values.get("action"),
                             mitigation=values.get("mitigation") or "", source=source)
    try:
        outcome = memory.add_incident(record)
    except SleuthIndexError as exc:
        ephemeral(client, channel=incident.channel, user=user, text=B.error_text(str(exc)))
        return
    store.update(incident.id, memory_id=record.id, updated_at=incident.updated_at)
    store.add_entry(incident.id, kind="memory", author=user, key="memory",
                    text=f"Added to the past-incident memory as {record.id} ({outcome})")
    note = f":brain: <@{user}> added this incident to memory as `{record.id}` ({outcome})."
    if incident.summary_ts:
        text, blocks = B.summary_message(summary, incident_id=incident.id, added_to_memory=note)
        try:
            client.chat_update(channel=incident.channel, ts=incident.summary_ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("could not update the summary: %s", exc.response.get("error"))
    refresh_timeline(sleuth, client, incident.id)
