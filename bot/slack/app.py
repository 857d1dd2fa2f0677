"""The Bolt app: one app for Socket Mode and HTTP mode, wiring Slack's requests to the flows.

Every listener acknowledges at once (``process_before_response=True``: the ack function runs in
the request's own thread, so acks never queue behind running investigations) and does its work
in a lazy listener. Incoming work (events by ``event_id``, slash commands by ``trigger_id``) is
claimed, with its body, in a middleware before any listener runs, and marked done when its lazy
listener ends: Slack's redeliveries (``X-Slack-Retry-Num``, over HTTP or Socket Mode) find the
claim and stop. The :class:`WorkKeeper` beats for this process's claims and replays work whose
process died (its claim stopped beating), so a crash mid-diagnosis loses nothing; the work's
note (:class:`bot.slack.flows.Progress`) makes the replay resume rather than post again. Work
Slack did not take (an outage, 429s) is marked for a retry with backoff, which the keeper of
this (or any) process runs until ``slack.delivery_deadline_s``; then the channel is told, once
Slack answers again. Signature checks (HTTP mode) come first, in Bolt's own middleware: a bad or
stale signature gets 401 and claims nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import SafetyConfig
from bot.safety import Redactor
from bot.slack import blocks as B
from bot.slack import flows
from bot.alerts import ALERT_EVENT
from bot.slack.outgoing import RedactingWebClient, speak_through
from bot.slack.commands import Command, UsageError, parse, usage
from bot.slack.flows import Sleuth, ephemeral, thread_id_of

log = logging.getLogger("sleuth.slack")

DEFAULT_API_URL = "https://slack.com/api/"
HANDLED_EVENTS = frozenset({"app_mention", "message", "reaction_added", "reaction_removed", "pin_added",
                            ALERT_EVENT})
REPLAYED = "sleuth_replayed"  # set in the context of work replayed after its process died


def api_url(explicit: str | None = None) -> str:
    """The Web API base URL: explicit, else SLEUTH_SLACK_API_URL, else Slack's (always ending in /)."""
    url = explicit or os.environ.get("SLEUTH_SLACK_API_URL") or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def make_client(token: str, *, base_url: str | None = None, timeout: int = 30,
                safety: SafetyConfig | None = None) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After) and connection errors, and redacts
    everything it sends with ``safety``'s redactor (bot.slack.outgoing): the one way Sleuth
    makes a Slack client, so nothing said to Slack skips redaction."""
    return RedactingWebClient(
        token=token, base_url=api_url(base_url), timeout=timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                        RateLimitErrorRetryHandler(max_retry_count=3)],
        redactor=Redactor(safety),
    )


def _team(body: dict[str, Any]) -> str:
    team = body.get("team_id") or body.get("team") or (body.get("user") or {}).get("team_id") or ""
    return team.get("id", "") if isinstance(team, dict) else str(team)


def work_key(body: dict[str, Any]) -> str | None:
    """The durable identity of a request whose lazy work must happen exactly once: an event Sleuth
    handles (by ``event_id``) or a slash command (by ``trigger_id``). None for everything else."""
    if body.get("type") == "event_callback" and body.get("event_id") and \
            (body.get("event") or {}).get("type") in HANDLED_EVENTS:
        return f"event:{body['event_id']}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None


def _guarded(work: Callable[..., None], finish: Callable[[str], None] | None = None, *,
             in_flight: flows.InFlight | None = None,
             undelivered: Callable[[str, BaseException], None] | None = None) -> Callable[..., None]:
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


def _failed(name: str, key: str | None, exc: Exception, kwargs: dict[str, Any], in_flight: flows.InFlight | None,
            undelivered: Callable[[str, BaseException], None] | None) -> bool:
    """Say (or schedule) what a failed piece of work needs; True when it is over (mark it done)."""
    from bot.incidents.store import StoreError

    if in_flight is not None and in_flight.stopping and isinstance(exc, StoreError):
        log.warning("%s stopped with Sleuth: %s", key or name, exc)
        return False  # handed back at the stop; nobody is told a thing about it
    if key and undelivered is not None and flows.undelivered(exc):
        log.warning("%s: Slack did not take it (%s); it will be tried again", key, flows.why(exc))
        try:
            undelivered(key, exc)
        except Exception:  # noqa: BLE001 - left claimed: a takeover replays it later
            log.exception("could not schedule %s for another try", key)
        return False
    if isinstance(exc, SlackApiError):
        log.warning("%s: %s", name, exc)
        _tell(kwargs, flows.slack_error(exc, getattr(exc.response, "api_url", "") and
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

    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = max(1, tries)
    wait = tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial / 2)(state)
    return max(float(wait), retry_after or 0.0)


def schedule_retry(sleuth: Sleuth, key: str, exc: BaseException) -> str:
    """Slack did not take ``key``'s work: due again after a backoff (Retry-After honoured), or,
    past ``slack.delivery_deadline_s`` since it arrived, failed (the channel is told once Slack
    answers). The state it is left in."""
    store, settings = sleuth.store, sleuth.config.slack
    work = store.work(key)
    if work is None:
        return "missing"
    now = time.time()
    deadline = work.received_at + settings.delivery_deadline_s
    why = flows.why(exc)
    if now >= deadline:
        log.error("giving up %s: Slack did not take it for %.0f s (%s); the channel will be told", key,
                  now - work.received_at, why)
        store.fail_work(key, error=why, owner=sleuth.owner)
        return "failed"
    wait = backoff_s(work.tries + 1, initial=settings.retry_backoff_s, maximum=settings.retry_backoff_max_s,
                     retry_after=flows.retry_after(exc))
    store.retry_work(key, owner=sleuth.owner, at=min(now + wait, deadline), error=why)
    return "retry"


def _where(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(channel, user, thread_ts) a request came from."""
    event = body.get("event") or {}
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id") or event.get("channel") or \
        (event.get("item") or {}).get("channel") or event.get("channel_id")
    user = body.get("user_id") or (body.get("user") or {}).get("id") or event.get("user")
    return channel, (user if isinstance(user, str) else None), event.get("thread_ts")


def _what(body: dict[str, Any]) -> str:
    """A request in a few words, for the notice that it was given up (no user text repeated)."""
    channel, user, _ = _where(body)
    who = f"<@{user}>'s " if user else "a "
    if body.get("command"):
        return f"{who}`{body['command']}` request"
    kind = (body.get("event") or {}).get("type")
    return {"app_mention": f"{who}message to Sleuth", "message": f"{who}reply in a Sleuth thread",
            "reaction_added": f"{who}timeline reaction", "reaction_removed": f"{who}removed timeline reaction",
            "pin_added": f"{who}pinned message", ALERT_EVENT: "an alert"}.get(kind or "", f"{who}request")


def _tell(kwargs: dict[str, Any], text: str) -> None:
    body, client = kwargs.get("body") or {}, kwargs.get("client")
    channel, user, thread_ts = _where(body)
    if client is not None and channel and user:
        try:
            ephemeral(client, channel=channel, user=user, text=text, thread_ts=thread_ts)
        except Exception as exc:  # noqa: BLE001 - Slack unreachable: the log has it
            log.warning("could not tell %s in %s: %s", user, channel, flows.why(exc))


class _UnusedTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that it goes unused beside our client (the
    client holds that same token, with retries and the API URL): a warning about nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_UnusedTokenNotice())


def build_app(sleuth: Sleuth, *, client: WebClient, signing_secret: str | None = None,
              token_verification: bool = True, workers: int = 32) -> App:
    """The Bolt app over ``sleuth``. ``signing_secret`` is needed in HTTP mode only."""
    app = App(
        client=client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        token_verification_enabled=token_verification,
        listener_executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sleuth-slack"),
        ignoring_self_events_enabled=True,
    )
    app.middleware(speak_through(client))  # every listener's client and ack redact what they send
    store = sleuth.store
    name = sleuth.config.slack.command
    stale_after = sleuth.config.slack.takeover_after_s

    def _guarded_here(work: Callable[..., None]) -> Callable[..., None]:
        return _guarded(work, store.finish_work, in_flight=sleuth.in_flight,
                        undelivered=lambda key, exc: schedule_retry(sleuth, key, exc))

    def progress_of(work: str | None) -> flows.Progress:
        return flows.Progress(store, work) if work else flows.Progress()

    @app.middleware
    def claim_work(body: dict[str, Any], context: Any, next: Callable[[], None]) -> BoltResponse | None:  # noqa: A002
        key = work_key(body)
        if key and not context.get(REPLAYED) and \
                not store.claim_work(key, body, owner=sleuth.owner, stale_after=stale_after):
            return BoltResponse(status=200, body="")
        next()
        return None

    def parse_text(text: str) -> Command:
        return parse(text, known_services=sleuth.known_services, command=name)

    def usage_blocks(sentence: str | None = None) -> tuple[str, list[dict]]:
        text = usage(name)
        blocks = ([B.section(f":warning: {B.escape(sentence)}")] if sentence else []) + B.sections(text)
        return (sentence or "Sleuth usage"), blocks

    def quick_answer(command: Command, *, team: str, channel: str) -> tuple[str, list[dict]] | str | None:
        """What the command's ack can say by itself: usage, a one-sentence refusal, or a read-only view."""
        if command.name == "help":
            return usage_blocks()
        if command.name == "diagnose" and (command.text or sleuth.defaults.symptom):
            return None  # the common case answers without touching the store
        active = store.active_incident(team=team, channel=channel)
        if command.name == "diagnose" and not command.text and active is None and not sleuth.defaults.symptom:
            return usage_blocks(f"Say what is wrong, e.g. `{name} checkout is returning 500s`.")
        if command.name in ("sev", "commander", "status", "resolve") and active is None:
            return (f"There is no active incident in this channel; open one with `{name} start &lt;title&gt;` "
                    f"or `{name} &lt;what is wrong&gt;`.")
        if command.name == "start" and active is not None:
            return (f"This channel already has an active incident, “{active.title}”; resolve it first with "
                    f"`{name} resolve`.")
        if command.name == "timeline":
            shown = flows.timeline(sleuth, team=team, channel=channel)
            return shown or f"There is no incident in this channel yet; `{name} start &lt;title&gt;` opens one."
        if command.name == "rollup" and not command.post:
            shown = flows.rollup(sleuth, team=team, channel=channel, everything=command.all)
            return shown or f"There is no active incident in this channel; try `{name} rollup all`."
        if command.name == "rollup" and not command.all and active is None:
            return f"There is no active incident in this channel; try `{name} rollup all --post`."
        return None

    def run_command(client: WebClient, command: Command, *, team: str, channel: str, user: str,
                    reply_to: str | None = None, work: str | None = None) -> None:
        if command.name == "diagnose":
            # What it did goes with the claimed work, step by step: a replay resumes it.
            flows.diagnose(sleuth, client, team=team, channel=channel, user=user, command=command, reply_to=reply_to,
                           progress=progress_of(work))
        elif command.name == "start":
            flows.start(sleuth, client, team=team, channel=channel, user=user, command=command)
        elif command.name in ("sev", "commander", "status"):
            flows.change(sleuth, client, team=team, channel=channel, user=user, command=command)
        elif command.name == "resolve":
            flows.resolve(sleuth, client, team=team, channel=channel, user=user, note=command.text)
        elif command.name == "rollup" and command.post:
            shown = flows.rollup(sleuth, team=team, channel=channel, everything=command.all)
            if shown:
                client.chat_postMessage(channel=channel, text=shown[0], blocks=shown[1])

    # --- the slash command ------------------------------------------------------------------

    def command_ack(ack: Callable[..., None], body: dict[str, Any]) -> None:
        team, channel = _team(body), body.get("channel_id", "")
        try:
            command = parse_text(body.get("text", ""))
        except UsageError as exc:
            text, blocks = usage_blocks(str(exc))
            ack(text=text, blocks=blocks, response_type="ephemeral")
            return
        answer = quick_answer(command, team=team, channel=channel)
        if isinstance(answer, str):
            ack(text=answer, response_type="ephemeral")
        elif answer is not None:
            ack(text=answer[0], blocks=answer[1], response_type="ephemeral")
        else:
            ack()

    @_guarded_here
    def command_work(body: dict[str, Any], client: WebClient) -> None:
        team, channel, user = _team(body), body.get("channel_id", ""), body.get("user_id", "")
        try:
            command = parse_text(body.get("text", ""))
        except UsageError:
            return  # the ack said so
        if quick_answer(command, team=team, channel=channel) is not None:
            return
        run_command(client, command, team=team, channel=channel, user=user, work=work_key(body))

    app.command(name)(ack=command_ack, lazy=[command_work])

    # --- mentions and thread replies --------------------------------------------------------

    def ack_only(ack: Callable[..., None]) -> None:
        ack()

    @_guarded_here
    def mention_work(body: dict[str, Any], client: WebClient, context: Any) -> None:
        event = body.get("event") or {}
        team, channel, user = _team(body), event.get("channel", ""), event.get("user", "")
        text = re.sub(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>", " ", event.get("text", "")).strip() if context.bot_user_id \
            else event.get("text", "")
        thread_ts = event.get("thread_ts")
        if thread_ts and store.thread(thread_id_of(team, channel, thread_ts)):
            flows.converse(sleuth, client, team=team, channel=channel, user=user, thread_ts=thread_ts, text=text,
                           progress=progress_of(work_key(body)))
            return
        reply_to = thread_ts or event.get("ts")
        try:
            command = parse_text(text)
        except UsageError as exc:
            ephemeral(client, channel=channel, user=user, text=str(exc), thread_ts=thread_ts)
            return
        answer = quick_answer(command, team=team, channel=channel)
        if isinstance(answer, str):
            ephemeral(client, channel=channel, user=user, text=answer, thread_ts=thread_ts)
        elif answer is not None:
            ephemeral(client, channel=channel, user=user, text=answer[0], blocks=answer[1], thread_ts=thread_ts)
        else:
            run_command(client, command, team=team, channel=channel, user=user, reply_to=reply_to,
                        work=work_key(body))

    app.event("app_mention")(ack=ack_only, lazy=[mention_work])

    @_guarded_here
    def message_work(body: dict[str, Any], client: WebClient, context: Any) -> None:
        event = body.get("event") or {}
        thread_ts = event.get("thread_ts")
        if event.get("subtype") or event.get("bot_id") or not thread_ts or thread_ts == event.get("ts"):
            return
        text = event.get("text") or ""
        if context.bot_user_id and f"<@{context.bot_user_id}" in text:
            return  # the app_mention event carries it
        team, channel = _team(body), event.get("channel", "")
        if store.thread(thread_id_of(team, channel, thread_ts)) is None:
            return
        flows.converse(sleuth, client, team=team, channel=channel, user=event.get("user", ""), thread_ts=thread_ts,
                       text=text, progress=progress_of(work_key(body)))

    app.event("message")(ack=ack_only, lazy=[message_work])

    # --- alerts in (bot/slack/alert_intake.py stores them as work of this event type) --------

    @_guarded_here
    def alert_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        flows.alert(sleuth, client, team=_team(body), channel=event.get("channel", ""), batch=event.get("batch") or {},
                    severity=event.get("severity"), progress=progress_of(work_key(body)))

    app.event(ALERT_EVENT)(ack=ack_only, lazy=[alert_work])

    # --- the timeline: reactions and pins ---------------------------------------------------

    reaction = sleuth.config.slack.timeline_reaction.strip(":")

    @_guarded_here
    def reaction_added_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        item = event.get("item") or {}
        if event.get("reaction") != reaction or item.get("type") != "message":
            return
        flows.flag_message(sleuth, client, team=_team(body), channel=item.get("channel", ""), ts=item.get("ts", ""),
                           via="reaction")

    @_guarded_here
    def reaction_removed_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        item = event.get("item") or {}
        if event.get("reaction") != reaction or item.get("type") != "message":
            return
        flows.unflag_message(sleuth, client, team=_team(body), channel=item.get("channel", ""), ts=item.get("ts", ""))

    @_guarded_here
    def pin_added_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        item = event.get("item") or {}
        message = item.get("message") or {}
        channel = item.get("channel") or event.get("channel_id", "")
        if item.get("type") != "message" or not message.get("ts"):
            return
        flows.flag_message(sleuth, client, team=_team(body), channel=channel, ts=message["ts"], via="pin",
                           message=message)

    app.event("reaction_added")(ack=ack_only, lazy=[reaction_added_work])
    app.event("reaction_removed")(ack=ack_only, lazy=[reaction_removed_work])
    app.event("pin_added")(ack=ack_only, lazy=[pin_added_work])

    # --- approvals --------------------------------------------------------------------------

    def _decision(body: dict[str, Any], client: WebClient, approved: bool) -> None:
        action = (body.get("actions") or [{}])[0]
        try:
            value = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            return
        flows.decide(sleuth, client, channel=(body.get("channel") or {}).get("id", ""),
                     user=(body.get("user") or {}).get("id", ""), thread_id=str(value.get("thread", "")),
                     mitigation_id=str(value.get("m", "")), approved=approved, message=body.get("message"))

    @_guarded_here
    def approve_work(body: dict[str, Any], client: WebClient) -> None:
        _decision(body, client, True)

    def _reject_form(body: dict[str, Any], client: WebClient) -> dict[str, Any] | None:
        """The reason form for this Reject click, when its user may reject and the mitigation waits."""
        action = (body.get("actions") or [{}])[0]
        try:
            value = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            return None
        return flows.reject_modal(sleuth, client, channel=(body.get("channel") or {}).get("id", ""),
                                  user=(body.get("user") or {}).get("id", ""), thread_id=str(value.get("thread", "")),
                                  mitigation_id=str(value.get("m", "")), message=body.get("message"))

    def reject_ack(ack: Callable[..., None], body: dict[str, Any], client: WebClient) -> None:
        ack()
        # Reject asks why, in a modal: the trigger id lives 3 seconds, so it opens here, not behind the queue.
        view = _reject_form(body, client)
        if view is None:
            return  # the lazy listener says why not (not allowed, already decided...)
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the reject form: %s", exc.response.get("error"))
            ephemeral(client, channel=(body.get("channel") or {}).get("id", ""),
                      user=(body.get("user") or {}).get("id", ""),
                      text="Slack did not open the form asking why; click Reject again.")

    @_guarded_here
    def reject_work(body: dict[str, Any], client: WebClient) -> None:
        if _reject_form(body, client) is None:
            _decision(body, client, False)  # refused, or already decided: decide says so, privately

    app.action(B.APPROVE)(ack=ack_only, lazy=[approve_work])
    app.action(B.REJECT)(ack=reject_ack, lazy=[reject_work])

    def reject_modal_ack(ack: Callable[..., None], view: dict[str, Any]) -> None:
        if not (B.modal_values(view).get("reason") or "").strip():
            ack(response_action="errors", errors={"reason": "Say why it is rejected."})
        else:
            ack()

    @_guarded_here
    def reject_modal_work(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        reason = (B.modal_values(view).get("reason") or "").strip()
        if reason:
            flows.reject_with_reason(sleuth, client, user=(body.get("user") or {}).get("id", ""),
                                     metadata=view.get("private_metadata") or "", reason=reason)

    app.view(B.REJECT_MODAL)(ack=reject_modal_ack, lazy=[reject_modal_work])

    # --- add to memory ----------------------------------------------------------------------

    def _incident_of(body: dict[str, Any]):
        action = (body.get("actions") or [{}])[0]
        try:
            return store.get(int(action.get("value") or 0))
        except ValueError:
            return None

    def memory_ack(ack: Callable[..., None], body: dict[str, Any], client: WebClient) -> None:
        ack()
        incident = _incident_of(body)
        if incident is None or incident.memory_id or (sleuth.config.memory is None and sleuth.memory_factory is None):
            return  # the lazy listener says why
        # The trigger id lives 3 seconds: open the modal here, not behind the work queue.
        view = flows.memory_modal(sleuth, incident_id=incident.id)
        if view is not None:
            client.views_open(trigger_id=body["trigger_id"], view=view)

    @_guarded_here
    def memory_work(body: dict[str, Any], client: WebClient) -> None:
        incident = _incident_of(body)
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id", "")
        if incident is None:
            ephemeral(client, channel=channel, user=user, text="That incident is no longer in Sleuth's store.")
        elif incident.memory_id:
            ephemeral(client, channel=channel, user=user,
                      text=f"This incident is already in the memory as `{incident.memory_id}`.")
        elif sleuth.config.memory is None and sleuth.memory_factory is None:
            ephemeral(client, channel=channel, user=user, text="No past-incident memory is configured; add a "
                      "`memory:` section to sleuth.yml (see sleuth.example.yml) and try again.")

    app.action(B.ADD_TO_MEMORY)(ack=memory_ack, lazy=[memory_work])

    def modal_ack(ack: Callable[..., None], view: dict[str, Any]) -> None:
        values = B.modal_values(view)
        errors = {}
        if not (values.get("root_cause") or "").strip():
            errors["root_cause"] = "Say what caused the incident."
        if not values.get("category"):
            errors["category"] = "Choose the root-cause category."
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

    @_guarded_here
    def modal_work(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        values = B.modal_values(view)
        if not (values.get("root_cause") or "").strip() or not values.get("category"):
            return
        try:
            incident_id = int(view.get("private_metadata") or 0)
        except ValueError:
            return
        flows.add_to_memory(sleuth, client, incident_id=incident_id, user=(body.get("user") or {}).get("id", ""),
                            values=values)

    app.view(B.MEMORY_MODAL)(ack=modal_ack, lazy=[modal_work])

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error for a %s request: %s", body.get("type") or body.get("command"), error)

    return app


class WorkKeeper:
    """Beats for this process's claimed work, runs work that is due again, and replays work whose
    process died.

    Every ``interval`` seconds (``slack.sweep_interval_s``; by default a quarter of
    ``takeover_after_s``, between 1 and 5 s): refresh this process's claims; tell the channel about
    work given up after ``slack.delivery_deadline_s`` (once Slack answers again); take and
    dispatch again work that Slack did not take and whose retry is due (or that a stopping
    process handed back); and take over and dispatch again (as Socket Mode would, past signature
    checks: the body was verified when it first arrived) any claim that stopped beating
    ``stale_after`` seconds ago. Work that already killed its process ``REPLAY_ATTEMPTS`` times is
    given up with a log line rather than replayed forever. The work's note makes each replay
    resume where the last run stopped.
    """

    def __init__(self, app: App, sleuth: Sleuth, *, interval: float | None = None) -> None:
        from bot.incidents.store import REPLAY_ATTEMPTS

        self.app, self.sleuth = app, sleuth
        settings = sleuth.config.slack
        self.stale_after = settings.takeover_after_s
        self.interval = interval or settings.sweep_interval_s or max(1.0, min(5.0, self.stale_after / 4))
        self.attempts = REPLAY_ATTEMPTS
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        self.sleuth.store.heartbeat(self.sleuth.owner)

    def pause(self) -> None:
        """Take no more work (a stopping process); keep beating for the work still running."""
        self._paused.set()

    def sweep(self) -> list[str]:
        """Tell what was given up, run due retries, replay stale work, once; the keys dispatched."""
        if self._paused.is_set():
            return []
        store, settings = self.sleuth.store, self.sleuth.config.slack
        for work in store.due_work(state="failed"):
            self._tell_given_up(work)
        dispatched = []
        for work in store.due_work(state="retry"):
            if self._paused.is_set():
                break
            # Work Slack did not take has until the delivery deadline; work a stopping process handed
            # back (no error) has as long as a crashed process's work would (an hour at least).
            limit = settings.delivery_deadline_s if work.last_error else max(3600.0, settings.delivery_deadline_s)
            if time.time() >= work.received_at + limit:
                log.error("giving up %s: not delivered within %.0f s (%s); the channel will be told",
                          work.key, limit, work.last_error or "handed back by stopping processes")
                if store.fail_work(work.key, error=work.last_error or "Slack did not answer"):
                    found = store.work(work.key)
                    if found is not None:
                        self._tell_given_up(found)
                continue
            if not store.take_due(work.key, owner=self.sleuth.owner):
                continue  # another process took it first
            log.warning("trying %s again (%d earlier tries Slack did not take; last: %s)", work.key, work.tries,
                        work.last_error or "handed back by a stopping process")
            self._dispatch(work.body)
            dispatched.append(work.key)
        newer_than = max(3600.0, settings.delivery_deadline_s)
        for work in store.stale_work(stale_after=self.stale_after, newer_than_s=newer_than):
            if self._paused.is_set():
                break
            if work.attempts >= self.attempts:
                log.error("giving up %s: it was started %d times and never finished", work.key, work.attempts)
                store.give_up_work(work.key)
                continue
            if not store.take_over(work.key, owner=self.sleuth.owner, stale_after=self.stale_after):
                continue  # another process took it first
            log.warning("replaying %s: the process that claimed it stopped before finishing", work.key)
            self._dispatch(work.body)
            dispatched.append(work.key)
        return dispatched

    def _dispatch(self, body: dict[str, Any]) -> None:
        self.app.dispatch(BoltRequest(body=body, mode="socket_mode", context={REPLAYED: True}))

    def _tell_given_up(self, work: Any) -> None:
        """Say in the channel that a piece of work was given up; until Slack takes the message, it
        is tried again with the same backoff (and for at most a day)."""
        store, settings = self.sleuth.store, self.sleuth.config.slack
        now = time.time()
        channel, _, thread_ts = _where(work.body)
        if not channel or now > work.received_at + settings.delivery_deadline_s + 86400:
            store.give_up_work(work.key)
            return
        again = now + backoff_s(work.tries + 1, initial=settings.retry_backoff_s,
                                maximum=settings.retry_backoff_max_s)
        if not store.take_notice(work.key, again_at=again):
            return  # another process is telling it
        why = "Slack could not be reached" if work.last_error else "Sleuth was restarting"
        text = (f":warning: {why}, so Sleuth gave up on {_what(work.body)} from "
                f"{B.when(work.received_at)} after trying for {B.duration(now - work.received_at)}. "
                "Please run it again.")
        try:
            self.app.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=B.clip(text, B.MAX_FALLBACK),
                                             blocks=B.sections(text))
        except Exception as exc:  # noqa: BLE001 - still down: told on a later sweep
            if flows.undelivered(exc):
                log.warning("could not yet tell %s that %s was given up: %s", channel, work.key, flows.why(exc))
                return
            log.error("cannot tell %s that %s was given up: %s", channel, work.key, flows.why(exc))
        store.give_up_work(work.key)  # told (or it never can be)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.sweep()
            except Exception:  # noqa: BLE001 - a store outage must not kill the keeper; next beat retries
                log.exception("the work keeper could not reach the store")
            self._stop.wait(self.interval)

    def start(self) -> "WorkKeeper":
        self._thread = threading.Thread(target=self._run, name="sleuth-work-keeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def drain(sleuth: Sleuth, keeper: WorkKeeper | None, grace_s: float) -> list[str]:
    """A graceful stop, once no more requests arrive: no work starts here any more, running work
    gets ``grace_s`` seconds to finish (the keeper still beats for it), then every claim of this
    process that is not done (still running, or queued and never started) is handed back, due at
    once for another process, its note intact so that it resumes. The keys still running."""
    if keeper is not None:
        keeper.pause()
    sleuth.in_flight.stop()
    running = sleuth.in_flight.wait(grace_s)
    handed = sleuth.store.release_work(sleuth.owner)
    if running:
        log.warning("stopping with %d pieces of work still running after %.0f s (%s): handed back for another "
                    "process to resume", len(running), grace_s, ", ".join(running))
    elif handed:
        log.warning("stopping: %d claimed pieces of work that never started are handed back", handed)
    return running
