"""``/diagnose``: the plan message, the investigation and its delivery, resumed where it stopped on a replay."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.slack import blocks as B
from bot.slack.commands import Command
from bot.slack.conversation import say_turn
from bot.slack.mrkdwn import clip
from bot.slack.plan import PlanMessage, Progress, mark_interrupted, outcome_of
from bot.slack.sleuth import Sleuth, ephemeral, investigation, thread_id_of
from bot.slack.timeline import refresh_timeline

log = logging.getLogger("sleuth.slack")

NOT_RUN_RESOLVED = (":white_check_mark: Not run: the incident was resolved before this investigation's turn "
                    "came; if the problem is back, open a new incident with `{command} start` and a title.")


@investigation
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
    title = existing.title if existing else clip(symptom, 150)
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


def _still_active(sleuth: Sleuth, incident_id: int) -> bool:
    incident = sleuth.store.get(incident_id)
    return incident is not None and incident.active
