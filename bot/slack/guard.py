"""Claimed work in a lazy listener: its key, a guard so it never dies silently, a retry when Slack did not take it."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from bot.alerts import ALERT_EVENT
from bot.incidents.database import StoreError
from bot.slack.blocks import APPROVE, REJECT_MODAL
from bot.slack.errors import retry_after, slack_error, undelivered as not_delivered, why as why_failed
from bot.slack.sleuth import InFlight, Sleuth, ephemeral

log = logging.getLogger("sleuth.slack")

HANDLED_EVENTS = frozenset({"app_mention", "message", "reaction_added", "reaction_removed", "pin_added",
                            ALERT_EVENT})
REPLAYED = "sleuth_replayed"  # set in the context of work replayed after its process died


def work_key(body: dict[str, Any]) -> str | None:
    """The durable identity of a request whose lazy work must happen exactly once: an event Sleuth
    handles (by ``event_id``), a slash command (by ``trigger_id``), or a decision (an Approve
    click by its ``trigger_id``, a Reject form by its view). None for everything else."""
    if body.get("type") == "event_callback" and body.get("event_id") and \
            (body.get("event") or {}).get("type") in HANDLED_EVENTS:
        return f"event:{body['event_id']}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    # Decisions: an Approve click, and the Reject form's submission (the Reject click itself only
    # opens the form, which its trigger allows for 3 s: nothing to replay).
    if body.get("type") == "block_actions" and body.get("trigger_id") and \
            any(a.get("action_id") == APPROVE for a in body.get("actions") or []):
        return f"action:{body['trigger_id']}"
    view = body.get("view") or {}
    if body.get("type") == "view_submission" and view.get("callback_id") == REJECT_MODAL and view.get("id"):
        # One form is submitted again after a refusal (a blank reason): what it held tells them apart.
        held = hashlib.sha256(json.dumps((view.get("state") or {}).get("values") or {}, sort_keys=True).encode())
        return f"view:{view['id']}:{held.hexdigest()[:16]}"
    return None


def guarded(work: Callable[..., None], finish: Callable[[str], None] | None = None, *,
             in_flight: InFlight | None = None,
             undelivered: Callable[[str, BaseException], object] | None = None) -> Callable[..., None]:
    """A lazy listener that never dies silently: a Slack refusal becomes one ephemeral sentence,
    anything else a plain one (never Python's error text). Work that ends, well or with the user
    told why, is marked done (``finish``). Work Slack did not take (unreachable, 5xx, 429 past
    the client's retries) goes to ``undelivered``, to be tried again. Work runs registered in
    ``in_flight``, so a graceful stop can wait for it; once the stop began, none starts (its claim
    is handed back). Only a process that dies leaves work claimed, for the :class:`WorkKeeper`."""

    @functools.wraps(work)
    def run(**kwargs: Any) -> None:
        key = work_key(kwargs.get("body") or {})
        slot = key or f"unclaimed:{uuid.uuid4().hex}"
        if in_flight is not None and not in_flight.enter(slot):
            log.info("not starting %s: Sleuth is stopping; it is handed back for another process", slot)
            return
        try:
            done = True
            try:
                work(**kwargs)
            except Exception as exc:  # noqa: BLE001 - the user hears one sentence; the log has the rest
                done = _failed(work.__name__, key, exc, kwargs, in_flight, undelivered)
            if done and finish is not None and key:
                try:
                    finish(key)
                except Exception:  # noqa: BLE001 - a store hiccup here means one harmless replay later
                    log.exception("could not mark %s done", key)
        finally:
            if in_flight is not None:
                in_flight.leave(slot)

    return run


def _failed(name: str, key: str | None, exc: Exception, kwargs: dict[str, Any], in_flight: InFlight | None,
            undelivered: Callable[[str, BaseException], object] | None) -> bool:
    """Say (or schedule) what a failed piece of work needs; True when it is over (mark it done)."""
    if in_flight is not None and in_flight.stopping and isinstance(exc, StoreError):
        log.warning("%s stopped with Sleuth: %s", key or name, exc)
        return False  # handed back at the stop; nobody is told a thing about it
    if key and undelivered is not None and not_delivered(exc):
        log.warning("%s: Slack did not take it (%s); it will be tried again", key, why_failed(exc))
        try:
            undelivered(key, exc)
        except Exception:  # noqa: BLE001 - left claimed: a takeover replays it later
            log.exception("could not schedule %s for another try", key)
        return False
    if isinstance(exc, SlackApiError):
        log.warning("%s: %s", name, exc)
        _tell(kwargs, slack_error(exc, getattr(exc.response, "api_url", "") and
                                        str(exc.response.api_url).rsplit("/", 1)[-1] or "a call"))
    else:
        log.error("%s failed", name, exc_info=exc)
        _tell(kwargs, "Sleuth could not finish this request; the app log has the details. Try again, "
                      "and tell whoever runs Sleuth if it keeps failing.")
    return True


def backoff_s(tries: int, *, initial: float, maximum: float, retry_after: float | None = None) -> float:
    """How long to wait before try ``tries + 1`` (tenacity's exponential backoff with jitter), never
    less than Slack's Retry-After."""
    import tenacity

    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # only the wait is computed
    state.attempt_number = max(1, tries)
    wait = tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial / 2)(state)
    return max(float(wait), retry_after or 0.0)


def schedule_retry(sleuth: Sleuth, key: str, exc: BaseException) -> str:
    """Slack did not take ``key``'s work: due again after a backoff (Retry-After honoured), or,
    past ``slack.delivery_deadline_s`` since it arrived, failed (the channel is told once Slack
    answers). The state it is left in."""
    claims, settings = sleuth.claims, sleuth.config.slack
    work = claims.work(key)
    if work is None:
        return "missing"
    now = time.time()
    deadline = work.received_at + settings.delivery_deadline_s
    why = why_failed(exc)
    if now >= deadline:
        log.error("giving up %s: Slack did not take it for %.0f s (%s); the channel will be told", key,
                  now - work.received_at, why)
        claims.fail_work(key, error=why, owner=sleuth.owner)
        return "failed"
    wait = backoff_s(work.tries + 1, initial=settings.retry_backoff_s, maximum=settings.retry_backoff_max_s,
                     retry_after=retry_after(exc))
    claims.retry_work(key, owner=sleuth.owner, at=min(now + wait, deadline), error=why)
    return "retry"


def where_from(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(channel, user, thread_ts) a request came from."""
    event = body.get("event") or {}
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id") or event.get("channel") or \
        (event.get("item") or {}).get("channel") or event.get("channel_id")
    user = body.get("user_id") or (body.get("user") or {}).get("id") or event.get("user")
    return channel, (user if isinstance(user, str) else None), event.get("thread_ts")


def what_of(body: dict[str, Any]) -> str:
    """A request in a few words, for the notice that it was given up (no user text repeated)."""
    channel, user, _ = where_from(body)
    who = f"<@{user}>'s " if user else "a "
    if body.get("command"):
        return f"{who}`{body['command']}` request"
    kind = (body.get("event") or {}).get("type")
    return {"app_mention": f"{who}message to Sleuth", "message": f"{who}reply in a Sleuth thread",
            "reaction_added": f"{who}timeline reaction", "reaction_removed": f"{who}removed timeline reaction",
            "pin_added": f"{who}pinned message", ALERT_EVENT: "an alert"}.get(kind or "", f"{who}request")


def _tell(kwargs: dict[str, Any], text: str) -> None:
    body, client = kwargs.get("body") or {}, kwargs.get("client")
    channel, user, thread_ts = where_from(body)
    if client is not None and channel and user:
        try:
            ephemeral(client, channel=channel, user=user, text=text, thread_ts=thread_ts)
        except Exception as exc:  # noqa: BLE001 - Slack unreachable: the log has it
            log.warning("could not tell %s in %s: %s", user, channel, why_failed(exc))
