"""The incident workflows Slack drives: diagnose in a thread, converse, decide, keep the timeline,
roll up, resolve and remember.

Each flow takes the :class:`Sleuth` (config, store, agent) and a ``slack_sdk.WebClient``; none
imports slack_bolt, so they are the same behind Socket Mode and HTTP, and app.py only wires Bolt's
listeners to them. Everything a user can get wrong ends in one sentence, ephemeral.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import SleuthConfig
from bot.slack import blocks as B
from bot.incidents import roles as R
from bot.slack.commands import Command
from bot.incidents.store import Incident, IncidentStore
from bot.incidents.reports import alerts_line, draft_rollup, draft_summary, incident_record, memory_defaults

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
        self.in_flight = InFlight()  # the work running here: a graceful stop waits for it
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._groups: dict[str, tuple[float, set[str]]] = {}
        self.investigations = Investigations()  # per channel: resolve waits for them (bounded)

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


class InFlight:
    """The work this process is running (by work key), so a graceful stop can wait for it to end,
    and so that once the stop has begun no more starts here (it is handed back instead)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: dict[str, int] = {}
        self.stopping = False

    def enter(self, key: str) -> bool:
        """Start running ``key``; False once stopping (leave it claimed, to be handed back)."""
        with self._cond:
            if self.stopping:
                return False
            self._running[key] = self._running.get(key, 0) + 1
            return True

    def leave(self, key: str) -> None:
        with self._cond:
            left = self._running.get(key, 1) - 1
            if left > 0:
                self._running[key] = left
            else:
                self._running.pop(key, None)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopping = True

    def wait(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for the running work to end; the keys still running."""
        with self._cond:
            self._cond.wait_for(lambda: not self._running, timeout=max(0.0, timeout))
            return sorted(self._running)

    def keys(self) -> list[str]:
        with self._cond:
            return sorted(self._running)


class Progress:
    """What one piece of claimed work has done so far (its plan message, that the investigation
    finished, the diagnosis it posted...), written to the store (the claim's note) before the next
    step, so that a replay, after a crash, a stop or a failed delivery, resumes where it was
    instead of posting again. Without a store and key it remembers nothing (unclaimed work)."""

    def __init__(self, store: IncidentStore | None = None, key: str | None = None) -> None:
        self.store, self.key = store, key
        self.note: dict[str, Any] = store.work_note(key) if store is not None and key else {}

    def get(self, name: str, default: Any = None) -> Any:
        return self.note.get(name, default)

    def set(self, **items: Any) -> None:
        self.note.update(items)
        if self.store is not None and self.key:
            self.note = self.store.note_work(self.key, items)


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
                 reply_to: str | None = None, lazy: bool = False,
                 on_posted: Callable[[str], None] | None = None) -> None:
        self.sleuth, self.client, self.channel = sleuth, client, channel
        self.on_posted = on_posted  # hears the ts once posted (recorded with the work before anything else)
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
        if self.on_posted is not None:
            self.on_posted(self.ts)
        return self.ts

    def progress(self, name: str, report: Any) -> None:
        if self._lazy and self.ts is None:
            with self._posting:
                if self.ts is None:
                    try:
                        self.post()
                    except Exception as exc:  # noqa: BLE001 - progress never breaks the investigation
                        log.warning("could not post the plan message: %s", why(exc))
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
        try:
            while True:
                with self._cond:
                    if not self._dirty or self._done:
                        return
                    self._dirty = False
                    sources = dict(self.sources)
                self._edit(sources, None)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _edit(self, sources: dict[str, dict | None], outcome: str | None, *, strict: bool = False) -> None:
        """Edit the message; a failure is logged. ``strict``: a failure Slack may recover from (an
        outage, 429s) is raised, for the work to be tried again."""
        text, blocks = B.plan_message(**self.args, sources=sources, outcome=outcome)
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - a progress edit is never worth failing the work
            if strict and undelivered(exc):
                raise
            log.warning("could not edit the plan message: %s", why(exc))

    def finish(self, outcome: str, sources: dict[str, Any] | None = None, *, strict: bool = False) -> None:
        if self.ts is None:
            return  # a lazy plan nothing reported to: there is no message to edit
        with self._cond:
            self._done = True
            self._cond.wait_for(lambda: not self._busy, timeout=30)
            merged = dict(self.sources)
            for name, report in (sources or {}).items():
                merged[name] = report
        self._edit(merged, outcome, strict=strict)


# --- diagnose and converse --------------------------------------------------------------------


def _investigation(flow: Callable[..., None]) -> Callable[..., None]:
    """Count the flow as an investigation running in its channel while it runs (resolve waits for it)."""

    @functools.wraps(flow)
    def run(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, **kwargs: Any) -> None:
        with sleuth.investigations.running(team, channel):
            return flow(sleuth, client, team=team, channel=channel, **kwargs)

    return run


@_investigation
def diagnose(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command,
             reply_to: str | None = None, progress: Progress | None = None) -> None:
    """``/diagnose [service] [window] [text]``: open the incident if needed, post the plan, run the
    agent, then post the diagnosis, the charts and the mitigations into the thread.

    Each step is recorded in ``progress`` (the claimed work's note) before the next one: run again
    (a crash, a stop, Slack down), it resumes. An investigation that finished is never run or
    posted again and its plan never marked interrupted; one that did not finish starts over in a
    new message, and the plan message it left says so."""
    from bot.investigate import RequestError, parse_at

    p = progress or Progress()
    if p.get("investigated") and _resume_diagnosis(sleuth, client, p, user=user):
        return
    store = sleuth.store
    # The incident this work began with stays its incident, even once resolved: work never reopens one.
    known = store.get(int(p.get("incident"))) if p.get("incident") is not None else None
    existing = known or store.active_incident(team=team, channel=channel)
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
    left = p.get("plan")
    if left:  # an earlier run's plan, whose investigation never finished: it says so; this run reports anew
        mark_interrupted(client, channel=str(left[0]), ts=str(left[1]))
        p.set(plan=None, investigated=False, interrupted=[*(p.get("interrupted") or []), left])
    # The plan goes out first (the user is waiting); the incident is opened right after.
    title = existing.title if existing else B.clip(symptom, 150)
    plan = PlanMessage(sleuth, client, channel=channel, symptom=symptom, service=service, window=window,
                       incident_title=title, opened=existing is None, requested_by=user, reply_to=reply_to)
    plan.on_posted = lambda ts: p.set(plan=[channel, ts], plan_args=plan.args)
    root = plan.post()
    if existing is not None:  # resolved meanwhile or not, it is this work's incident (never a new one)
        incident, opened = existing, False
    else:
        incident, opened = store.open_incident(team=team, channel=channel, title=title, opened_by=user,
                                               service=service)
    plan.args.update(incident_title=incident.title, opened=opened)
    thread_ts = reply_to or root
    thread_id = thread_id_of(team, channel, thread_ts)
    store.remember_thread(thread_id=thread_id, team=team, channel=channel, thread_ts=thread_ts,
                          incident_id=incident.id)
    incident = store.update(incident.id, thread_ts=thread_ts)
    p.set(incident=incident.id, thread_ts=thread_ts, thread_id=thread_id, plan_args=plan.args)
    if opened:
        refresh_timeline(sleuth, client, incident.id)
    try:
        with sleuth.gate:
            if not _still_active(sleuth, incident.id):  # resolved while this waited its turn: not run
                plan.finish(NOT_RUN_RESOLVED.format(command=sleuth.command))
                return
            turn = sleuth.agent.start(thread_id, symptom, service=service, window=window, at=at,
                                      on_progress=plan.progress)
    except Exception:
        plan.finish(":warning: Stopped: the investigation failed; the app log has the details.")
        raise
    p.set(investigated=True)  # from here on, a replay takes this turn from the checkpoint
    _deliver_diagnosis(sleuth, client, p, plan=plan, turn=turn, incident_id=incident.id, channel=channel,
                       thread_ts=thread_ts, user=user)


def _resume_diagnosis(sleuth: Sleuth, client: WebClient, p: Progress, *, user: str) -> bool:
    """Deliver what an earlier run of this work investigated (its turn is in the agent's
    checkpoint): the plan's last edit, the diagnosis (unless already posted), the timeline, the
    charts. False when there is nothing to resume from (the checkpoint is gone)."""
    plan_at, thread_id, thread_ts, incident_id = p.get("plan"), p.get("thread_id"), p.get("thread_ts"), p.get("incident")
    turn = sleuth.agent.last_turn(thread_id) if thread_id else None
    if not plan_at or turn is None or incident_id is None:
        log.warning("cannot resume %s (no investigation in its checkpoint): starting it again", p.key)
        p.set(investigated=False)
        return False
    channel = str(plan_at[0])
    log.info("resuming %s: its investigation finished before; delivering it", p.key)
    plan = PlanMessage(sleuth, client, channel=channel, **(p.get("plan_args") or {
        "symptom": "", "service": None, "window": None, "incident_title": "", "opened": False,
        "requested_by": user}))
    plan.ts = str(plan_at[1])
    _deliver_diagnosis(sleuth, client, p, plan=plan, turn=turn, incident_id=int(incident_id), channel=channel,
                       thread_ts=str(thread_ts), user=user)
    return True


def _deliver_diagnosis(sleuth: Sleuth, client: WebClient, p: Progress, *, plan: PlanMessage, turn: Any,
                       incident_id: int, channel: str, thread_ts: str, user: str) -> None:
    if not p.get("plan_done"):
        plan.finish(outcome_of(turn), (turn.diagnosis or {}).get("sources"), strict=True)
        p.set(plan_done=True)
    say_turn(sleuth, client, incident_id=incident_id, channel=channel, thread_ts=thread_ts, user=user, turn=turn,
             progress=p, after=plan.ts)


INTERRUPTED = (":warning: Sleuth stopped (a restart or a crash) before this investigation finished; "
               "it has been started again and reports in a new message.")


def mark_interrupted(client: WebClient, *, channel: str, ts: str) -> None:
    """Say on a plan message whose investigation never finished that the work was started again
    (never on one whose investigation finished: that run is resumed instead). Slack being
    unreachable is raised, for the work to be tried again."""
    try:
        client.chat_update(channel=channel, ts=ts, text=INTERRUPTED, blocks=B.sections(INTERRUPTED))
    except Exception as exc:  # noqa: BLE001 - a message deleted meanwhile is no reason to fail the work
        if undelivered(exc):
            raise
        log.warning("could not mark the interrupted plan message: %s", why(exc))


# Errors by which Slack says "not now" rather than "no": the work is tried again later.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "timeout"})


def undelivered(exc: BaseException) -> bool:
    """True when Slack did not take a call but may later: no connection, a timeout, 5xx, 429."""
    import http.client
    import urllib.error

    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200) or 200
        error = response.get("error") if response is not None and hasattr(response, "get") else None
        return status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException))


def retry_after(exc: BaseException) -> float | None:
    """Slack's Retry-After (seconds) on a 429, if it gave one."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return None
    headers = getattr(exc.response, "headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or getattr(exc.response, "status_code", "") or exc)
    return f"{type(exc).__name__}: {exc}"


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


@_investigation
def converse(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, thread_ts: str,
             text: str, progress: Progress | None = None) -> None:
    """A reply in a Sleuth thread (or an @mention there): the same conversation continues. When the
    reply sets an investigation going (the answer to a clarifying question, "check payments"), a
    plan message appears in the thread with the first source's report and is edited like the first.
    Run again (``progress`` says it was answered already), the agent's answer is delivered, not
    asked for twice."""
    p = progress or Progress()
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
                       requested_by=user, reply_to=thread_ts, lazy=True,
                       on_posted=lambda ts: p.set(plan=[channel, ts]))
    turn = sleuth.agent.last_turn(thread_id) if p.get("replied") else None
    if turn is not None:
        plan.ts = (p.get("plan") or [None, None])[1]
    else:
        if p.get("plan"):  # an earlier run's plan, whose investigation never finished
            mark_interrupted(client, channel=channel, ts=str(p.get("plan")[1]))
            p.set(plan=None)
        try:
            with sleuth.gate:
                turn = sleuth.agent.reply(thread_id, text, on_progress=plan.progress, by=user)
        except Exception:
            plan.finish(":warning: Stopped: the investigation failed; the app log has the details.")
            raise
        p.set(replied=True)
    if not p.get("plan_done"):
        plan.finish(outcome_of(turn), (turn.diagnosis or {}).get("sources"), strict=True)
        p.set(plan_done=True)
    say_turn(sleuth, client, incident_id=incident_id, channel=channel, thread_ts=thread_ts, user=user, turn=turn,
             progress=p, after=plan.ts)
    note_reasons(sleuth, client, incident_id=incident_id, thread_id=thread_id, decisions=turn.decisions)


def say_turn(sleuth: Sleuth, client: WebClient, *, incident_id: int, channel: str, thread_ts: str, user: str,
             turn: Any, progress: Progress | None = None, after: str | None = None) -> None:
    """Post what the agent produced into the thread; a diagnosis also feeds the incident's timeline.
    With ``progress``, each post is recorded before the next step and never made twice."""
    p = progress or Progress()
    if turn.kind == "error":
        if not p.get("told"):
            ephemeral(client, channel=channel, user=user, text=B.error_text(turn.text), thread_ts=thread_ts)
            p.set(told=True)
        return
    if turn.kind in ("question", "answer") or not turn.diagnosis:
        text, blocks = B.answer_message(B.prose(turn.text), kind="question" if turn.kind == "question" else "answer")
        _post_once(client, p, "answer", channel=channel, thread_ts=thread_ts, after=after, text=text, blocks=blocks,
                   prefix=text[:40])
        return
    thread_id = turn.thread_id
    thread = sleuth.store.thread(thread_id)
    already = set(thread.charts) if thread else set()
    # The charts may still be drawing (in the chart worker): the diagnosis goes out first.
    charts = [Path(c) for c in turn.charts or [] if Path(c).name not in already]
    incident = sleuth.store.get(incident_id)
    late = AFTER_RESOLUTION if incident is not None and not incident.active else None  # never reopens it
    text, blocks = B.diagnosis_message(turn.diagnosis, thread_id=thread_id, pending=turn.pending,
                                       decisions=turn.decisions, charts=len(charts), note=late)
    _post_once(client, p, "diagnosis", channel=channel, thread_ts=thread_ts, after=after, text=text, blocks=blocks,
               prefix="Diagnosis")
    if not p.get("recorded"):
        record_diagnosis(sleuth, client, incident_id=incident_id, diagnosis=turn.diagnosis)
        p.set(recorded=True)
    if charts:
        sleuth.agent.wait_for_charts(thread_id)
        drawn = [p for p in charts if p.is_file()]
        if drawn:
            upload_charts(sleuth, client, channel=channel, thread_ts=thread_ts, thread_id=thread_id, charts=drawn)


def _post_once(client: WebClient, p: Progress, name: str, *, channel: str, thread_ts: str, after: str | None,
               text: str, blocks: list[dict], prefix: str) -> str:
    """Post a message into the thread once per piece of work: its ts is recorded in ``p`` as soon
    as Slack answers. A run that died while Slack had the post in hand (recorded as ``posting``)
    first looks for it in the thread (a bot message starting with ``prefix``, after ``after``)."""
    done = p.get(name)
    if done and done != "posting":
        return str(done)
    if done == "posting":
        found = _find_posted(client, channel=channel, thread_ts=thread_ts, after=after, prefix=prefix)
        if found:
            p.set(**{name: found})
            return found
    p.set(**{name: "posting"})
    ts = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)["ts"]
    p.set(**{name: ts})
    return ts


def _find_posted(client: WebClient, *, channel: str, thread_ts: str, after: str | None, prefix: str) -> str | None:
    try:
        found = client.conversations_replies(channel=channel, ts=thread_ts, oldest=after or thread_ts, limit=100)
    except SlackApiError as exc:
        if undelivered(exc):
            raise
        log.warning("could not read the thread to look for an earlier post: %s", why(exc))
        return None
    for message in found.get("messages") or []:
        if (message.get("bot_id") or message.get("app_id")) and message.get("ts") != thread_ts and \
                str(message.get("text") or "").startswith(prefix):
            return str(message["ts"])
    return None


def upload_charts(sleuth: Sleuth, client: WebClient, *, channel: str, thread_ts: str, thread_id: str,
                  charts: list[Path]) -> None:
    uploads = [{"file": str(p), "filename": p.name, "title": p.stem.split("-", 1)[-1].replace("-", " "),
                "alt_text": f"chart of {p.stem}"} for p in charts[:6]]
    try:
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, file_uploads=uploads,
                               initial_comment="Charts of the anomalous signals: baseline, onset and changes.")
    except SlackApiError as exc:
        if undelivered(exc):
            raise  # Slack down or throttling: the work is tried again, the charts with it
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
    if not incident.active:
        # After resolution: the resolved record (and its summary) stands; one line says what came late.
        store.add_entry(incident_id, kind="note", text="A diagnosis arrived after resolution: " + (
            f"top hypothesis {str(top.get('category')).replace('_', ' ')} in {top.get('component')} "
            f"(confidence {B.percent(top.get('confidence'))})" if top else "no hypothesis stands out"))
        refresh_timeline(sleuth, client, incident_id)
        return
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


def authorize(sleuth: Sleuth, client: WebClient, incident: Incident, user: str, action: str) -> str | None:
    """None when ``user`` may do ``action`` (commander, severity, status, resolve, decide) to the
    incident under ``slack.roles``; else the one-sentence refusal naming who may."""
    settings = sleuth.config.slack
    approvers = approver_ids(sleuth, client) if settings.approvers else set()
    appointed = sleuth.store.commander_appointed_by(incident) if action == "decide" else None
    verdict = R.check(settings, action, user=user, incident=incident, approvers=approvers, appointed_by=appointed,
                      command=sleuth.command)
    if not verdict.allowed:
        log.info("refused %s to %s on incident %s", action, user, incident.id)
    return None if verdict.allowed else verdict.refusal


def may_decide(sleuth: Sleuth, client: WebClient, incident: Incident, user: str) -> bool:
    """May ``user`` approve or reject this incident's mitigations (see bot.incidents.roles)?"""
    return authorize(sleuth, client, incident, user, "decide") is None


def decision_entry(decision: dict[str, Any]) -> str:
    """A decision as its timeline entry: the verdict, the mitigation and, for a rejection, why."""
    what = f"{str(decision.get('action', '')).replace('_', ' ')} → {decision.get('target', '')}"
    verdict = "Approved" if decision.get("approved") else "Rejected"
    reason = str(decision.get("reason") or "").strip()
    return f"{verdict} {decision.get('id')}: {what}" + (f"; reason: {B.clip(reason, 300)}" if reason else "")


def note_reasons(sleuth: Sleuth, client: WebClient, *, incident_id: int, thread_id: str,
                 decisions: list[dict[str, Any]] | None) -> None:
    """A rejection given (more of) its reason later, in the thread: its timeline entry says it."""
    changed = False
    for d in decisions or []:
        if not d.get("approved") and d.get("reason"):
            changed |= sleuth.store.set_entry_text(incident_id, key=f"decision:{thread_id}:{d.get('id')}",
                                                   text=decision_entry(d))
    if changed:
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
             "ts": (message or {}).get("ts"), "thread_ts": thread.thread_ts}
    return B.reject_modal(metadata=json.dumps(where, separators=(",", ":")), mitigation_id=mitigation_id,
                          label=label)


def reject_with_reason(sleuth: Sleuth, client: WebClient, *, user: str, metadata: str, reason: str) -> None:
    """The reject form was submitted: record the rejection with its reason (rights checked again)."""
    try:
        where = json.loads(metadata or "{}")
    except json.JSONDecodeError:
        return
    channel, ts, thread_ts = str(where.get("channel") or ""), where.get("ts"), where.get("thread_ts")
    message = _fetch_reply(client, channel, str(thread_ts), str(ts)) if ts and thread_ts else None
    decide(sleuth, client, channel=channel, user=user, thread_id=str(where.get("thread") or ""),
           mitigation_id=str(where.get("m") or ""), approved=False, message=message, reason=reason.strip())


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
           approved: bool, message: dict[str, Any] | None = None, reason: str = "") -> None:
    """Approve or reject a proposed mitigation, as ``slack.roles.decide`` allows (a rejection with
    the reason its form asked for)."""
    store = sleuth.store
    thread = store.thread(thread_id)
    incident = store.get(thread.incident_id) if thread and thread.incident_id is not None else None
    thread_ts = thread.thread_ts if thread else None
    if incident is None:
        ephemeral(client, channel=channel, user=user, text="This diagnosis belongs to no incident Sleuth knows; "
                  f"run `{sleuth.command}` again.", thread_ts=thread_ts)
        return
    refused = authorize(sleuth, client, incident, user, "decide")
    if refused:
        ephemeral(client, channel=channel, user=user, thread_ts=thread_ts, text=refused)
        return
    turn = sleuth.agent.decide(thread_id, mitigation_id, approved, by=user, reason=reason)
    if turn.kind == "error":
        said = re.sub(r"\b([UW][A-Z0-9]{5,})\b", r"<@\1>", B.escape(B.error_text(turn.text)))
        ephemeral(client, channel=channel, user=user, text=said, thread_ts=thread_ts)
        done = next((d for d in turn.decisions or [] if d.get("id") == mitigation_id), None)
        if done and message:
            _update_decided(client, channel, message, mitigation_id, done)
        return
    decision = next((d for d in reversed(turn.decisions) if d.get("id") == mitigation_id), {})
    what = f"{str(decision.get('action', '')).replace('_', ' ')} → {decision.get('target', '')}"
    store.add_entry(incident.id, kind="decision", author=user, at=decision.get("ts") or time.time(),
                    key=f"decision:{thread_id}:{mitigation_id}", text=decision_entry(decision))
    if message:
        _update_decided(client, channel, message, mitigation_id, decision)
    if approved:
        text = (f":white_check_mark: <@{user}> approved *{B.escape(mitigation_id)}*: {B.escape(what)}.\n"
                f"Sleuth executes nothing: whoever carries it out, verify that "
                f"{B.escape(decision.get('verify') or 'the symptom signal returns to its baseline')}.\n"
                "Tell me here when it is done (\"we rolled back, is it recovering?\") and I will compare.")
    else:
        text = f":no_entry_sign: <@{user}> rejected *{B.escape(mitigation_id)}*: {B.escape(what)}."
        if decision.get("reason"):
            text += f"\nReason: {B.clip(B.escape(decision['reason']), 1000)}"
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
                if not incident.active:  # a resolved incident's timeline is edited, never posted and pinned anew
                    log.warning("the resolved incident %s's timeline is gone; not posting it again", incident_id)
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
    refused = authorize(sleuth, client, incident, user, {"sev": "severity"}.get(command.name, command.name))
    if refused:
        ephemeral(client, channel=channel, user=user, text=refused)
        return
    if command.name == "sev":
        store.update(incident.id, severity=command.severity)
        entry = f"Severity SEV{command.severity} (was {incident.label})"
        kind, said = "severity", f":bangbang: <@{user}> set the severity to *SEV{command.severity}* (was {incident.label})."
    elif command.name == "commander":
        entry = f"Commander <@{command.user}> (was {B.user(incident.commander)})"
        # Only while the commander is still the one the rights were checked against (two at once: one wins).
        if store.set_commander(incident.id, commander=str(command.user), by=user, expected=incident.commander,
                               text=entry) is None:
            ephemeral(client, channel=channel, user=user, text="The commander changed meanwhile; see "
                      f"`{sleuth.command} rollup` and try again if it is still needed.")
            return
        kind, said = None, f":bust_in_silhouette: <@{command.user}> is now the incident commander (set by <@{user}>)."
    else:
        store.update(incident.id, status=command.status)
        entry = f"Status {command.status} (was {incident.status})"
        kind, said = "status", f":arrows_counterclockwise: <@{user}> set the status to *{command.status}* (was {incident.status})."
    if kind is not None:
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
        drafted.append(draft_rollup(incident, pending=pending, decisions=decisions,
                                    approvers=sleuth.config.slack.approvers,
                                    alerts=alerts_line(store.timeline(incident.id))))
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
    refused = authorize(sleuth, client, incident, user, "resolve")
    if refused:
        ephemeral(client, channel=channel, user=user, text=refused)
        return
    # The channel's running investigation gets a bounded while to finish, so its diagnosis makes the
    # summary; one still running after that posts in its thread as after resolution, one still
    # waiting its turn does not run, and neither reopens the incident.
    wait = sleuth.config.slack.resolve_wait_s
    if wait > 0 and sleuth.investigations.count(team, channel):
        ephemeral(client, channel=channel, user=user, text=f":hourglass_flowing_sand: An investigation is still "
                  f"running in this channel; resolving once it finishes (at most {wait:g} s).")
        still = sleuth.investigations.wait(team, channel, wait)
        if still:
            log.info("resolving incident %s with %d investigation(s) still running", incident.id, still)
    resolved = store.resolve_incident(incident.id, by=user, note=note)
    if resolved is None:
        ephemeral(client, channel=channel, user=user, text="This incident was resolved meanwhile; its summary is "
                  "in the channel.")
        return
    refresh_timeline(sleuth, client, incident.id)
    post_summary(sleuth, client, incident_id=incident.id)


# --- investigations running in a channel ------------------------------------------------------

NOT_RUN_RESOLVED = (":white_check_mark: Not run: the incident was resolved before this investigation's turn "
                    "came; if the problem is back, open a new incident with `{command} start` and a title.")
AFTER_RESOLUTION = ("Arrived after the incident was resolved: it changes nothing on the resolved incident "
                    "(the summary stands); if the problem is back, open a new incident with /diagnose start.")


def _still_active(sleuth: Sleuth, incident_id: int) -> bool:
    incident = sleuth.store.get(incident_id)
    return incident is not None and incident.active


class Investigations:
    """The investigations (``/diagnose`` and thread replies) running in this process, by channel, so
    that resolve can wait for them (bounded). Within one process: a replica resolving an incident
    another replica investigates does not wait; the late diagnosis is then marked, as when the wait
    runs out, and never reopens the incident."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: dict[tuple[str, str], set[int]] = {}
        self._ids = itertools.count(1)

    @contextmanager
    def running(self, team: str, channel: str):
        key = (team, channel)
        with self._cond:
            token = next(self._ids)
            self._running.setdefault(key, set()).add(token)
        try:
            yield token
        finally:
            with self._cond:
                found = self._running.get(key)
                if found is not None:
                    found.discard(token)
                    if not found:
                        del self._running[key]
                self._cond.notify_all()

    def count(self, team: str, channel: str) -> int:
        with self._cond:
            return len(self._running.get((team, channel), ()))

    def wait(self, team: str, channel: str, timeout: float) -> int:
        """Wait up to ``timeout`` s for the investigations running now in the channel (not later
        ones) to end; how many of them still run."""
        key = (team, channel)
        with self._cond:
            now = set(self._running.get(key, ()))
            self._cond.wait_for(lambda: not (now & self._running.get(key, set())), timeout=max(0.0, timeout))
            return len(now & self._running.get(key, set()))


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


# --- alerts in ----------------------------------------------------------------------------------


def alert(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, batch: dict[str, Any],
          severity: int | None, progress: Progress | None = None) -> None:
    """An alert group routed to ``channel`` (bot.alerts): open the channel's incident if none is
    active (title and severity from the alert), put each alert's state on the timeline, post the
    alert, and diagnose it in the alert's thread exactly as ``/diagnose`` would, once per service
    per incident. A repeat of a state already on the timeline adds nothing; a resolved alert goes on
    the timeline, never resolves the incident (a human decides that). Each step is recorded in
    ``progress`` first, so a replay resumes."""
    from bot.alerts import batch_from_dict, entry_key, entry_text

    p = progress or Progress()
    found = batch_from_dict(batch)
    store = sleuth.store
    known = store.get(int(p.get("incident"))) if p.get("incident") is not None else None
    incident, opened = known, bool(p.get("opened"))
    if incident is None:
        incident = store.active_incident(team=team, channel=channel)
        if incident is None and found.firing:
            incident, opened = store.open_incident(team=team, channel=channel, title=B.clip(found.title, 150),
                                                   opened_by=None, severity=severity, service=found.service)
        if incident is None:  # only resolutions, and nothing open here: the channel's latest incident
            incident = store.latest_incident(team=team, channel=channel)
        p.set(incident=incident.id if incident else None, opened=opened)
    if p.get("fresh") is None:
        # The states not yet on the timeline: a repeat of the group, or Alertmanager's retry, has none.
        fresh = [item for item in found.alerts if incident is None or store.add_entry(
            incident.id, kind="alert", text=entry_text(item), key=entry_key(item),
            at=item.starts_at if item.status == "firing" and item.starts_at else None) is not None]
        p.set(fresh=[a.fingerprint for a in fresh])
    else:
        fresh = [a for a in found.alerts if a.fingerprint in p.get("fresh")]
    if not fresh:
        log.info("alert group %s: every state is already on the timeline (a repeat)", found.group_key[:80])
        return
    posted = p.get("alert_ts")
    if not posted:
        text, blocks = B.alert_message(found, fresh, incident_title=incident.title if incident else None, opened=opened)
        posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks)["ts"]
        p.set(alert_ts=posted)
    if incident is not None:
        refresh_timeline(sleuth, client, incident.id)
    firing = [a for a in fresh if a.status == "firing"]
    if incident is None or not firing or not incident.active:
        return
    service = next((a.service for a in firing if a.service), None)
    known_service = service if service and (service in sleuth.known_services or not sleuth.known_services) else None
    # One diagnosis per service per incident: a new alert on the same service joins the first one's.
    if not p.get("diagnosing") and store.add_entry(
            incident.id, kind="note", key=f"alert-diagnosis:{service or '*'}",
            text=f"Sleuth diagnoses the alert {firing[0].name}" + (f" on {service}" if service else "")) is None:
        return
    p.set(diagnosing=True)
    question = found.question() + (f" (service {service})" if service and not known_service else "")
    diagnose(sleuth, client, team=team, channel=channel, user="", reply_to=posted, progress=p,
             command=Command(name="diagnose", text=question, service=known_service))
