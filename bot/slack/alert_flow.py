"""Alerts in: an alert group routed to a channel opens its incident, goes on the timeline and is diagnosed in its thread."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.slack import blocks as B
from bot.slack.commands import Command
from bot.slack.diagnosis import diagnose
from bot.slack.mrkdwn import clip
from bot.slack.plan import Progress
from bot.slack.sleuth import Sleuth
from bot.slack.timeline import refresh_timeline

log = logging.getLogger("sleuth.slack")


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
            incident, opened = store.open_incident(team=team, channel=channel, title=clip(found.title, 150),
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
