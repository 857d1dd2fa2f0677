"""The plan message a diagnosis reports in, and the progress claimed work records so a replay resumes."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents.text import percent
from bot.slack import blocks as B
from bot.slack.claims import WorkClaims
from bot.slack.errors import undelivered, why
from bot.slack.mrkdwn import escape, sections
from bot.slack.sleuth import Sleuth

log = logging.getLogger("sleuth.slack")

SOURCES = ("metrics", "logs", "changes", "incidents")


class Progress:
    """What one piece of claimed work has done so far (its plan message, that the investigation
    finished, the diagnosis it posted...), written to the claim's note before the next
    step, so that a replay, after a crash, a stop or a failed delivery, resumes where it was
    instead of posting again. Without claims and a key it remembers nothing (unclaimed work)."""

    def __init__(self, claims: WorkClaims | None = None, key: str | None = None) -> None:
        self.claims, self.key = claims, key
        self.note: dict[str, Any] = claims.work_note(key) if claims is not None and key else {}

    def get(self, name: str, default: Any = None) -> Any:
        return self.note.get(name, default)

    def set(self, **items: Any) -> None:
        self.note.update(items)
        if self.claims is not None and self.key:
            self.note = self.claims.note_work(self.key, items)


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
        self.args: dict[str, Any] = {"symptom": symptom, "service": service, "window": window, "incident_title": incident_title,
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
        if self.ts is None:  # not posted: nothing to edit (callers post first)
            return
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


INTERRUPTED = (":warning: Sleuth stopped (a restart or a crash) before this investigation finished; "
               "it has been started again and reports in a new message.")


def mark_interrupted(client: WebClient, *, channel: str, ts: str) -> None:
    """Say on a plan message whose investigation never finished that the work was started again
    (never on one whose investigation finished: that run is resumed instead). Slack being
    unreachable is raised, for the work to be tried again."""
    try:
        client.chat_update(channel=channel, ts=ts, text=INTERRUPTED, blocks=sections(INTERRUPTED))
    except Exception as exc:  # noqa: BLE001 - a message deleted meanwhile is no reason to fail the work
        if undelivered(exc):
            raise
        log.warning("could not mark the interrupted plan message: %s", why(exc))


def outcome_of(turn: Any) -> str:
    """The plan message's last line for the agent's turn."""
    if turn.kind == "error":
        return f":warning: Stopped: {escape(B.error_text(turn.text))}"
    if turn.kind == "question":
        return ":question: One question first, in the thread."
    if turn.kind != "diagnosis":
        return ":white_check_mark: Done: the answer is in the thread."
    top = next((h for h in (turn.diagnosis or {}).get("hypotheses") or [] if h.get("status") != "refuted"), None)
    summary = (f"best hypothesis *{escape(str(top.get('category')).replace('_', ' '))} in "
               f"{escape(top.get('component'))}* ({percent(top.get('confidence'))})" if top
               else "no hypothesis stands out")
    return f":white_check_mark: Done: {summary}; the diagnosis is in the thread."


def post_once(client: WebClient, p: Progress, name: str, *, channel: str, thread_ts: str, after: str | None,
               text: str, blocks: list[dict], prefix: str) -> str:
    """Post a message into the thread once per piece of work: its ts is recorded in ``p`` as soon
    as Slack answers. A run that died while Slack had the post in hand (recorded as ``posting``)
    first looks for it in the thread (a bot message starting with ``prefix``, after ``after``)."""
    done = p.get(name)
    if done and done != "posting":
        return str(done)
    if done == "posting":
        found = find_posted(client, channel=channel, thread_ts=thread_ts, after=after, prefix=prefix)
        if found:
            p.set(**{name: found})
            return found
    p.set(**{name: "posting"})
    ts = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)["ts"]
    p.set(**{name: ts})
    return ts


def find_posted(client: WebClient, *, channel: str, thread_ts: str, after: str | None, prefix: str) -> str | None:
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
