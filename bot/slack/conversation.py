"""Conversation in a Sleuth thread: replies continue it, and what the agent produced is posted there once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents import service
from bot.slack import blocks as B
from bot.slack.decisions import note_reasons
from bot.slack.errors import undelivered
from bot.slack.mrkdwn import clip, from_slack, prose
from bot.slack.plan import PlanMessage, Progress, mark_interrupted, outcome_of, post_once
from bot.slack.sleuth import Sleuth, ephemeral, investigation, thread_id_of
from bot.slack.timeline import refresh_timeline

log = logging.getLogger("sleuth.slack")

AFTER_RESOLUTION = ("Arrived after the incident was resolved: it changes nothing on the resolved incident "
                    "(the summary stands); if the problem is back, open a new incident with /diagnose start.")


@investigation
def converse(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, thread_ts: str,
             text: str, progress: Progress | None = None) -> None:
    """A reply in a Sleuth thread (or an @mention there): the same conversation continues. When the
    reply sets an investigation going (the answer to a clarifying question, "check payments"), a
    plan message appears in the thread with the first source's report and is edited like the first.
    Run again (``progress`` says it was answered already), the agent's answer is delivered, not
    asked for twice."""
    p = progress or Progress()
    text = from_slack(text)  # as typed: Slack's escaping undone once (see blocks.py)
    thread_id = thread_id_of(team, channel, thread_ts)
    thread = sleuth.store.thread(thread_id)
    incident_id = thread.incident_id if thread else None
    if incident_id is None:
        incident, _ = sleuth.store.open_incident(team=team, channel=channel, title=clip(text, 150), opened_by=user)
        incident_id = incident.id
        sleuth.store.remember_thread(thread_id=thread_id, team=team, channel=channel, thread_ts=thread_ts,
                                     incident_id=incident_id)
    snap = sleuth.agent.snapshot(thread_id) or {}
    request = snap.get("request") or {}
    found = sleuth.store.get(incident_id)
    plan = PlanMessage(sleuth, client, channel=channel, symptom=str(request.get("symptom") or text),
                       service=request.get("service"), window=request.get("window"),
                       incident_title=found.title if found else clip(text, 150), opened=False,
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
        text, blocks = B.answer_message(prose(turn.text), kind="question" if turn.kind == "question" else "answer")
        post_once(client, p, "answer", channel=channel, thread_ts=thread_ts, after=after, text=text, blocks=blocks,
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
    post_once(client, p, "diagnosis", channel=channel, thread_ts=thread_ts, after=after, text=text, blocks=blocks,
               prefix="Diagnosis")
    if not p.get("recorded"):
        record_diagnosis(sleuth, client, incident_id=incident_id, diagnosis=turn.diagnosis)
        p.set(recorded=True)
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
        if undelivered(exc):
            raise  # Slack down or throttling: the work is tried again, the charts with it
        log.warning("chart upload failed: %s", exc.response.get("error"))
        return
    sleuth.store.add_thread_charts(thread_id, [p.name for p in charts])


def record_diagnosis(sleuth: Sleuth, client: WebClient, *, incident_id: int, diagnosis: dict[str, Any]) -> None:
    """Keep the latest diagnosis on the incident; put a changed top hypothesis and the changes to
    affected services on the timeline (bot.incidents.service), and show the timeline."""
    if service.record_diagnosis(store=sleuth.store, incident_id=incident_id, diagnosis=diagnosis):
        refresh_timeline(sleuth, client, incident_id)
