"""The incident's own flows: start, sev/commander/status, resolve and its summary, rollup, timeline, add to memory.

Each flow takes the :class:`~bot.slack.sleuth.Sleuth` (config, store, agent) and a
``slack_sdk.WebClient``; none imports slack_bolt, so they are the same behind Socket Mode and
HTTP, and app.py only wires Bolt's listeners to them. Everything a user can get wrong ends in one
sentence, ephemeral. The other flows: diagnosis.py, conversation.py, decisions.py, timeline.py,
alert_flow.py.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents import service
from bot.incidents.reports import alerts_line, draft_rollup, incident_record, memory_defaults
from bot.slack import blocks as B
from bot.slack.commands import Command
from bot.slack.decisions import authorize
from bot.slack.mrkdwn import MAX_FALLBACK, clip, escape, sections, user as mention
from bot.slack.plan import Progress
from bot.slack.sleuth import Sleuth, ephemeral
from bot.slack.timeline import refresh_timeline

log = logging.getLogger("sleuth.slack")


def _announce(client: WebClient, channel: str, text: str, p: Progress | None = None) -> None:
    """Say ``text`` in the channel, once per piece of work: a replay (after an outage) that finds it
    said already says nothing."""
    p = p or Progress()
    if p.get("announced"):
        return
    client.chat_postMessage(channel=channel, text=clip(text, MAX_FALLBACK), blocks=sections(text))
    p.set(announced=True)


def start(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command,
          progress: Progress | None = None) -> None:
    """Open the channel's incident. A replay of this very command (``progress`` knows the incident it
    opened) goes on announcing it instead of refusing its own incident."""
    p = progress or Progress()
    opened_here = sleuth.store.get(int(p.get("incident"))) if p.get("incident") is not None else None
    if opened_here is not None:
        incident = opened_here
    else:
        incident, opened = sleuth.store.open_incident(team=team, channel=channel, title=command.text,
                                                      opened_by=user, severity=command.severity)
        if not opened:
            ephemeral(client, channel=channel, user=user, text=f"This channel already has an active incident, "
                      f"“{incident.title}”; resolve it first with `{sleuth.command} resolve`.")
            return
        p.set(incident=incident.id)
    _announce(client, channel, f":rotating_light: <@{user}> opened *{escape(incident.title)}* "
                               f"({incident.label}); commander <@{user}>. The timeline is pinned to this channel.", p)
    refresh_timeline(sleuth, client, incident.id)


def change(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, command: Command,
           progress: Progress | None = None) -> None:
    """``sev``, ``commander`` and ``status``: change the incident, say so, put it on the timeline.
    A replay of a change already made (``progress``) only says it."""
    store = sleuth.store
    p = progress or Progress()
    if p.get("said") is not None:
        _announce(client, channel, str(p.get("said")), p)
        if p.get("incident") is not None:
            refresh_timeline(sleuth, client, int(p.get("incident")))
        return
    incident = store.active_incident(team=team, channel=channel)
    if incident is None:
        ephemeral(client, channel=channel, user=user, text=f"There is no active incident in this channel; open one "
                  f"with `{sleuth.command} start &lt;title&gt;` or `{sleuth.command} &lt;what is wrong&gt;`.")
        return
    if command.name == "status" and command.status == "resolved":
        resolve(sleuth, client, team=team, channel=channel, user=user, note="", progress=p)
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
        entry = f"Commander <@{command.user}> (was {mention(incident.commander)})"
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
    p.set(said=said, incident=incident.id)  # made: a replay only says it
    _announce(client, channel, said, p)
    refresh_timeline(sleuth, client, incident.id)


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
        pending, decisions = service.decisions_of(store=store, incident=incident, snapshot=sleuth.agent.snapshot)
        drafted.append(draft_rollup(incident, pending=pending, decisions=decisions,
                                    approvers=sleuth.config.slack.approvers,
                                    alerts=alerts_line(store.timeline(incident.id))))
    return B.rollup_message(drafted, everything=everything)


def timeline(sleuth: Sleuth, *, team: str, channel: str) -> tuple[str, list[dict]] | None:
    incident = sleuth.store.latest_incident(team=team, channel=channel)
    if incident is None:
        return None
    return B.timeline_message(incident, sleuth.store.timeline(incident.id))


def resolve(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, user: str, note: str,
            progress: Progress | None = None) -> None:
    """Resolve the channel's incident and post the summary with its Add to memory button. A replay
    of a resolve already made (``progress``: after an outage or a crash) posts the summary once."""
    store = sleuth.store
    p = progress or Progress()
    if p.get("resolved") is not None:
        resolved_id = int(p.get("resolved"))
        refresh_timeline(sleuth, client, resolved_id)
        if not p.get("summary"):
            post_summary(sleuth, client, incident_id=resolved_id)
            p.set(summary=True)
        return
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
    p.set(resolved=incident.id)  # resolved: a replay posts the summary, and resolves nothing again
    refresh_timeline(sleuth, client, incident.id)
    post_summary(sleuth, client, incident_id=incident.id)
    p.set(summary=True)


def post_summary(sleuth: Sleuth, client: WebClient, *, incident_id: int) -> None:
    incident = sleuth.store.get(incident_id)
    if incident is None:
        return
    summary, _ = service.summarize(store=sleuth.store, incident=incident, snapshot=sleuth.agent.snapshot)
    text, blocks = B.summary_message(summary, incident_id=incident.id)
    posted = client.chat_postMessage(channel=incident.channel, text=text, blocks=blocks)
    sleuth.store.update(incident.id, summary_ts=posted["ts"], updated_at=incident.updated_at)


# --- add to memory ----------------------------------------------------------------------------


def memory_modal(sleuth: Sleuth, *, incident_id: int) -> dict[str, Any] | None:
    incident = sleuth.store.get(incident_id)
    if incident is None:
        return None
    summary, decisions = service.summarize(store=sleuth.store, incident=incident, snapshot=sleuth.agent.snapshot)
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
    summary, _ = service.summarize(store=sleuth.store, incident=incident, snapshot=sleuth.agent.snapshot)
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
