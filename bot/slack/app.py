"""The Bolt app: one app for Socket Mode and HTTP mode, wiring Slack's requests to the flows.

Every listener acknowledges at once (``process_before_response=True``: the ack function runs in
the request's own thread, so acks never queue behind running investigations) and does its work
in a lazy listener. Incoming work (events by ``event_id``, slash commands by ``trigger_id``) is
claimed, with its body, in a middleware before any listener runs, and marked done when its lazy
listener ends: Slack's redeliveries (``X-Slack-Retry-Num``, over HTTP or Socket Mode) find the
claim and stop. The :class:`WorkKeeper` beats for this process's claims and replays work whose
process died (its claim stopped beating), so a crash mid-diagnosis loses nothing. Signature
checks (HTTP mode) come first, in Bolt's own middleware: a bad or stale signature gets 401 and
claims nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
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
from bot.slack.outgoing import RedactingWebClient, speak_through
from bot.slack.commands import Command, UsageError, parse, usage
from bot.slack.flows import Sleuth, ephemeral, thread_id_of

log = logging.getLogger("sleuth.slack")

DEFAULT_API_URL = "https://slack.com/api/"
HANDLED_EVENTS = frozenset({"app_mention", "message", "reaction_added", "reaction_removed", "pin_added"})
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


def _guarded(work: Callable[..., None], finish: Callable[[str], None] | None = None) -> Callable[..., None]:
    """A lazy listener that never dies silently: a Slack refusal becomes one ephemeral sentence.
    Work that ends, well or with the user told why, is marked done (``finish``); only a process
    that dies leaves it claimed, for the :class:`WorkKeeper` to replay."""

    @functools.wraps(work)
    def run(**kwargs: Any) -> None:
        try:
            work(**kwargs)
        except SlackApiError as exc:
            log.warning("%s: %s", work.__name__, exc)
            _tell(kwargs, flows.slack_error(exc, getattr(exc.response, "api_url", "") and
                                            str(exc.response.api_url).rsplit("/", 1)[-1] or "a call"))
        except Exception as exc:  # noqa: BLE001 - the user hears one sentence; the log has the rest
            log.exception("%s failed", work.__name__)
            _tell(kwargs, f"Sleuth could not finish: {type(exc).__name__}: {B.clip(str(exc), 200)}; "
                          "the app log has the details.")
        key = work_key(kwargs.get("body") or {})
        if finish is not None and key:
            try:
                finish(key)
            except Exception:  # noqa: BLE001 - a store hiccup here means one harmless replay later
                log.exception("could not mark %s done", key)

    return run


def _tell(kwargs: dict[str, Any], text: str) -> None:
    body, client = kwargs.get("body") or {}, kwargs.get("client")
    event = body.get("event") or {}
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id") or event.get("channel") or \
        (event.get("item") or {}).get("channel")
    user = body.get("user_id") or (body.get("user") or {}).get("id") or event.get("user")
    if client is not None and channel and user and isinstance(user, str):
        ephemeral(client, channel=channel, user=user, text=text, thread_ts=event.get("thread_ts"))


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
        return _guarded(work, store.finish_work)

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
            # The plan's ts goes with the claimed work: a process taking it over marks that message.
            noted = (lambda at, ts: store.note_work(work, {"plan": [at, ts]})) if work else None
            flows.diagnose(sleuth, client, team=team, channel=channel, user=user, command=command, reply_to=reply_to,
                           on_plan=noted)
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
            flows.converse(sleuth, client, team=team, channel=channel, user=user, thread_ts=thread_ts, text=text)
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
                       text=text)

    app.event("message")(ack=ack_only, lazy=[message_work])

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

    @_guarded_here
    def reject_work(body: dict[str, Any], client: WebClient) -> None:
        _decision(body, client, False)

    app.action(B.APPROVE)(ack=ack_only, lazy=[approve_work])
    app.action(B.REJECT)(ack=ack_only, lazy=[reject_work])

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
    """Beats for this process's claimed work and replays work whose process died.

    Every ``interval`` seconds: refresh this process's claims, then take over and dispatch again
    (as Socket Mode would, past signature checks: the body was verified when it first arrived)
    any claim that stopped beating ``stale_after`` seconds ago. Work that already killed its
    process ``REPLAY_ATTEMPTS`` times is given up with a log line rather than replayed forever.
    """

    def __init__(self, app: App, sleuth: Sleuth, *, interval: float | None = None) -> None:
        from bot.slack.incidents import REPLAY_ATTEMPTS

        self.app, self.sleuth = app, sleuth
        self.stale_after = sleuth.config.slack.takeover_after_s
        self.interval = interval or max(1.0, self.stale_after / 4)
        self.attempts = REPLAY_ATTEMPTS
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        self.sleuth.store.heartbeat(self.sleuth.owner)

    def sweep(self) -> list[str]:
        """Replay stale work once; the keys replayed."""
        store, replayed = self.sleuth.store, []
        for work in store.stale_work(stale_after=self.stale_after):
            if work.attempts >= self.attempts:
                log.error("giving up %s: it was started %d times and never finished", work.key, work.attempts)
                store.give_up_work(work.key)
                continue
            if not store.take_over(work.key, owner=self.sleuth.owner, stale_after=self.stale_after):
                continue  # another process took it first
            log.warning("replaying %s: the process that claimed it stopped before finishing", work.key)
            plan = work.note.get("plan")
            if isinstance(plan, list) and len(plan) == 2:
                flows.mark_interrupted(self.app.client, channel=str(plan[0]), ts=str(plan[1]))
            self.app.dispatch(BoltRequest(body=work.body, mode="socket_mode", context={REPLAYED: True}))
            replayed.append(work.key)
        return replayed

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
