"""The incident's one pinned timeline message, kept up to date, and the messages flagged onto it (reaction, pin)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import blocks as B
from bot.slack.mrkdwn import clip, from_slack
from bot.slack.sleuth import Sleuth

log = logging.getLogger("sleuth.slack")


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
    text = from_slack(message.get("text") or "").strip() or "(a message without text)"
    entry = store.add_entry(incident.id, kind="manual", at=float(ts), author=message.get("user"),
                            permalink=permalink, key=f"msg:{channel}:{ts}", via=via, text=clip(text, 500))
    if entry is not None:
        refresh_timeline(sleuth, client, incident.id)


def unflag_message(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, ts: str) -> None:
    incident = sleuth.store.active_incident(team=team, channel=channel)
    if incident is None:
        return
    if sleuth.store.remove_entry(incident.id, key=f"msg:{channel}:{ts}", via="reaction"):
        refresh_timeline(sleuth, client, incident.id)
