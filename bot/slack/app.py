"""The Bolt app: one app for Socket Mode and HTTP mode, wiring Slack's requests to the flows.

Every listener acknowledges at once (``process_before_response=True``: the ack function runs in
the request's own thread, so acks never queue behind running investigations) and does its work
in a lazy listener. Incoming work (events by ``event_id``, slash commands by ``trigger_id``) is
claimed, with its body, in a middleware before any listener runs, and marked done when its lazy
listener ends: Slack's redeliveries (``X-Slack-Retry-Num``, over HTTP or Socket Mode) find the
claim and stop (guard.py, claims.py). The :class:`~bot.slack.keeper.WorkKeeper` beats for this
process's claims and replays work whose process died (its claim stopped beating), so a crash
mid-diagnosis loses nothing; the work's note (:class:`bot.slack.plan.Progress`) makes the replay
resume rather than post again. Work Slack did not take (an outage, 429s) is marked for a retry
with backoff, which the keeper of this (or any) process runs until ``slack.delivery_deadline_s``;
then the channel is told, once Slack answers again. Signature checks (HTTP mode) come first, in
Bolt's own middleware: a bad or stale signature gets 401 and claims nothing.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.alerts import ALERT_EVENT
from bot.slack import blocks as B
from bot.slack import flows
from bot.slack.alert_flow import alert
from bot.slack.commands import Command, UsageError, parse, usage
from bot.slack.conversation import converse
from bot.slack.decisions import decide, reject_modal, reject_with_reason
from bot.slack.diagnosis import diagnose
from bot.slack.guard import REPLAYED, guarded, schedule_retry, work_key
from bot.slack.mrkdwn import escape, section, sections
from bot.slack.outgoing import speak_through
from bot.slack.plan import Progress
from bot.slack.sleuth import Sleuth, ephemeral, thread_id_of
from bot.slack.timeline import flag_message, unflag_message

log = logging.getLogger("sleuth.slack")


def _team(body: dict[str, Any]) -> str:
    team = body.get("team_id") or body.get("team") or (body.get("user") or {}).get("team_id") or ""
    return team.get("id", "") if isinstance(team, dict) else str(team)


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
    store, claims = sleuth.store, sleuth.claims
    name = sleuth.config.slack.command
    stale_after = sleuth.config.slack.takeover_after_s

    def _guarded_here(work: Callable[..., None]) -> Callable[..., None]:
        return guarded(work, claims.finish_work, in_flight=sleuth.in_flight,
                        undelivered=lambda key, exc: schedule_retry(sleuth, key, exc))

    def progress_of(work: str | None) -> Progress:
        return Progress(claims, work) if work else Progress()

    @app.middleware
    def claim_work(body: dict[str, Any], context: Any, next: Callable[[], None]) -> BoltResponse | None:  # noqa: A002
        key = work_key(body)
        if key and not context.get(REPLAYED) and \
                not claims.claim_work(key, body, owner=sleuth.owner, stale_after=stale_after):
            return BoltResponse(status=200, body="")
        next()
        return None

    def parse_text(text: str) -> Command:
        return parse(text, known_services=sleuth.known_services, command=name)

    def usage_blocks(sentence: str | None = None) -> tuple[str, list[dict]]:
        text = usage(name)
        blocks = ([section(f":warning: {escape(sentence)}")] if sentence else []) + sections(text)
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
                    progress: Progress, reply_to: str | None = None) -> None:
        # What it did goes with the claimed work (``progress``), step by step: a replay resumes it.
        if command.name == "diagnose":
            diagnose(sleuth, client, team=team, channel=channel, user=user, command=command, reply_to=reply_to,
                     progress=progress)
        elif command.name == "start":
            flows.start(sleuth, client, team=team, channel=channel, user=user, command=command, progress=progress)
        elif command.name in ("sev", "commander", "status"):
            flows.change(sleuth, client, team=team, channel=channel, user=user, command=command, progress=progress)
        elif command.name == "resolve":
            flows.resolve(sleuth, client, team=team, channel=channel, user=user, note=command.text,
                          progress=progress)
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
        progress = progress_of(work_key(body))
        # What the ack could say by itself was said by the ack. A replay of work that already made
        # progress goes on, whatever the channel's state now (its incident resolved meanwhile).
        if not progress.note and quick_answer(command, team=team, channel=channel) is not None:
            return
        run_command(client, command, team=team, channel=channel, user=user, progress=progress)

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
            converse(sleuth, client, team=team, channel=channel, user=user, thread_ts=thread_ts, text=text,
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
                        progress=progress_of(work_key(body)))

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
        converse(sleuth, client, team=team, channel=channel, user=event.get("user", ""), thread_ts=thread_ts,
                       text=text, progress=progress_of(work_key(body)))

    app.event("message")(ack=ack_only, lazy=[message_work])

    # --- alerts in (bot/slack/alert_intake.py stores them as work of this event type) --------

    @_guarded_here
    def alert_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        alert(sleuth, client, team=_team(body), channel=event.get("channel", ""), batch=event.get("batch") or {},
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
        flag_message(sleuth, client, team=_team(body), channel=item.get("channel", ""), ts=item.get("ts", ""),
                           via="reaction")

    @_guarded_here
    def reaction_removed_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        item = event.get("item") or {}
        if event.get("reaction") != reaction or item.get("type") != "message":
            return
        unflag_message(sleuth, client, team=_team(body), channel=item.get("channel", ""), ts=item.get("ts", ""))

    @_guarded_here
    def pin_added_work(body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        item = event.get("item") or {}
        message = item.get("message") or {}
        channel = item.get("channel") or event.get("channel_id", "")
        if item.get("type") != "message" or not message.get("ts"):
            return
        flag_message(sleuth, client, team=_team(body), channel=channel, ts=message["ts"], via="pin",
                           message=message)

    app.event("reaction_added")(ack=ack_only, lazy=[reaction_added_work])
    app.event("reaction_removed")(ack=ack_only, lazy=[reaction_removed_work])
    app.event("pin_added")(ack=ack_only, lazy=[pin_added_work])

    # --- approvals --------------------------------------------------------------------------

    def _decision(body: dict[str, Any], client: WebClient, approved: bool) -> None:
        """An Approve click: claimed work (guard.work_key), resumed by its progress on a replay."""
        action = (body.get("actions") or [{}])[0]
        try:
            value = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            return
        decide(sleuth, client, channel=(body.get("channel") or {}).get("id", ""),
                     user=(body.get("user") or {}).get("id", ""), thread_id=str(value.get("thread", "")),
                     mitigation_id=str(value.get("m", "")), approved=approved, message=body.get("message"),
                     progress=progress_of(work_key(body)))

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
        return reject_modal(sleuth, client, channel=(body.get("channel") or {}).get("id", ""),
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
            reject_with_reason(sleuth, client, user=(body.get("user") or {}).get("id", ""),
                               metadata=view.get("private_metadata") or "", reason=reason,
                               progress=progress_of(work_key(body)))

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
