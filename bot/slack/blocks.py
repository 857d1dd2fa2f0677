"""What Sleuth says in Slack, as Block Kit: the plan, the diagnosis, answers, the timeline,
rollups, the summary on resolve, the add-to-memory and reject modals, and alerts.

Everything here is a pure function of plain data (Diagnosis.to_dict(), the agent's pending and
decisions, incidents and timeline entries), so it is tested without Slack. Text is escaped here,
once, as it is rendered (see mrkdwn.py on when text is escaped); the primitives in mrkdwn.py keep
Slack's limits, clipping long content and dropping the least important blocks first.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Sequence

from bot.incidents.text import clip, duration, percent
from bot.narrate import narrative_parts
from bot.slack.mrkdwn import (MAX_BLOCKS, MAX_FALLBACK, MAX_OPTION, MAX_SECTION, button, code, context, divider,
                              escape, fit, header, link, prose, section, sections, slack_words, user, when)
from bot.slack.mrkdwn import from_slack  # noqa: F401 - the way in, beside the way out: read as blocks.from_slack
from tools.taxonomy import ACTIONS, CATEGORIES

APPROVE = "sleuth_approve"
REJECT = "sleuth_reject"
ADD_TO_MEMORY = "sleuth_add_to_memory"
MEMORY_MODAL = "sleuth_memory_modal"
REJECT_MODAL = "sleuth_reject_modal"

_SOURCE_ICON = {None: ":hourglass_flowing_sand:", "ok": ":white_check_mark:", "no_data": ":grey_question:",
                "not_configured": ":heavy_minus_sign:", "error": ":warning:"}
_STATUS_ICON = {"supported": ":large_green_circle:", "proposed": ":large_yellow_circle:", "refuted": ":white_circle:"}


# --- the plan ---------------------------------------------------------------------------------

SOURCE_NAMES = {"metrics": "metrics", "logs": "logs", "changes": "changes (deploys, config)",
                "incidents": "past incidents", "runbooks": "runbooks"}


def plan_message(*, symptom: str, service: str | None, window: str | None, incident_title: str,
                 opened: bool, requested_by: str | None, sources: dict[str, dict | None],
                 outcome: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The thread's first message: what is being investigated and how each source fared so far.

    ``sources`` maps a source name to None (still querying) or a SourceReport dict.
    """
    scope = ", ".join(p for p in (f"service *{escape(service)}*" if service else "all services",
                                  f"window {escape(window)}" if window else "") if p)
    lines = [f":mag: *Investigating* “{prose(clip(symptom, 300))}” ({scope})"]
    if opened:
        lines.append(f":rotating_light: Opened the incident *{prose(clip(incident_title, 200))}* for this channel; "
                     f"commander {user(requested_by)}")
    steps = []
    for name, report in sources.items():
        label = SOURCE_NAMES.get(name, name)
        if report is None:
            steps.append(f"{_SOURCE_ICON[None]} {label}: querying…")
        else:
            status = report.get("status")
            reason = clip(prose(slack_words(report.get("reason", ""))), 240)
            elapsed = report.get("elapsed_ms") or 0
            steps.append(f"{_SOURCE_ICON.get(status, ':grey_question:')} {label}: {str(status).replace('_', ' ')}"
                         + (f" — {reason}" if reason else "") + (f" ({elapsed / 1000:.1f} s)" if elapsed else ""))
    blocks = [section("\n".join(lines)), section("*Plan:* gather every source at once, find the onset, rank "
                                                 "hypotheses with their evidence, propose mitigations.\n"
                                                 + "\n".join(steps))]
    if outcome:
        blocks.append(context(outcome))
    text = f"Investigating: {escape(clip(symptom, 200))}"
    return text, blocks


# --- the diagnosis ----------------------------------------------------------------------------


def _evidence_line(e: dict[str, Any]) -> str:
    parts = [f"*{escape(e.get('id'))}* {escape(e.get('source'))}: {clip(prose(e.get('summary', '')), 350)}",
             f"query {code(e.get('query', ''), 300)}"]
    opened = link(e.get("link"), "open")
    if opened:
        parts.append(opened)
    return " · ".join(parts)


def mitigation_value(thread_id: str, mitigation_id: str) -> str:
    return json.dumps({"thread": thread_id, "m": mitigation_id}, separators=(",", ":"))


def decision_line(d: dict[str, Any]) -> str:
    verdict = ":white_check_mark: Approved" if d.get("approved") else ":no_entry_sign: Rejected"
    reason = f" — {clip(prose(d.get('reason')), 300)}" if d.get("reason") else ""
    return f"{verdict} by {user(d.get('by'))} {when(d.get('at'))}{reason}"


def diagnosis_message(diagnosis: dict[str, Any], *, thread_id: str, pending: Sequence[dict[str, Any]] = (),
                      decisions: Sequence[dict[str, Any]] = (), charts: int = 0,
                      note: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The diagnosis as a message: hypotheses with confidence and evidence (query, link), similar
    incidents, mitigations with Approve/Reject for those awaiting a decision, and the sources."""
    incident = diagnosis.get("incident") or {}
    evidence = {e.get("id"): e for e in diagnosis.get("evidence") or []}
    hypotheses = diagnosis.get("hypotheses") or []
    live = [h for h in hypotheses if h.get("status") != "refuted"]
    refuted = [h for h in hypotheses if h.get("status") == "refuted"]
    blocks: list[tuple[int, dict[str, Any]]] = []

    title = incident.get("title") or "the incident"
    blocks.append((0, header(f"Diagnosis: {title}")))
    facts = [f"*Service* {escape(incident.get('service') or 'not given')}",
             f"*Onset* {when(incident.get('onset')) if incident.get('onset') else 'not found'}"]
    window = diagnosis.get("window") or {}
    if window.get("start"):
        facts.append(f"*Window* {when(window.get('start'), '{time}')}–{when(window.get('end'), '{time}')}")
    knock_on = incident.get("knock_on") or []
    if knock_on:
        facts.append("*Knock-on* " + ", ".join(escape(k.get("component")) for k in knock_on[:6]))
    if note:
        facts.append(clip(prose(note), 500))
    blocks.append((0, section(" · ".join(facts))))
    limits = diagnosis.get("limits") or []
    if limits:
        # What limited the investigation comes right under the facts: a thin basis is read first.
        blocks.append((1, context(*[f":warning: {clip(prose(text), 300)}" for text in limits[:4]])))

    if not live:
        blocks.append((0, section(":grey_question: No hypothesis stands out; keep the thread going with what you see.")))
    for index, h in enumerate(live[:5]):
        rank_priority = 0 if index == 0 else 2 + index
        icon = _STATUS_ICON.get(h.get("status"), "")
        head = (f"{icon} *{h.get('rank')}. {escape(h.get('category', '').replace('_', ' '))} in "
                f"{escape(h.get('component'))}* — {escape(h.get('status'))}, confidence *{percent(h.get('confidence'))}*")
        body = clip(prose(h.get("statement", "")), 1200)
        why = f"\n_{clip(prose(h.get('why_lower')), 400)}_" if h.get("why_lower") else ""
        blocks.append((rank_priority, section(f"{head}\n{body}{why}")))
        lines = [_evidence_line(evidence[eid]) for eid in h.get("evidence", []) if eid in evidence]
        if lines:
            shown = lines[:4] if index == 0 else lines[:2]
            extra = len(lines) - len(shown)
            if extra:
                shown.append(f"_and {extra} more evidence: {', '.join(h['evidence'][len(shown):])}_")
            blocks.append((rank_priority + 1, context(*shown)))
    parts = narrative_parts(diagnosis)
    warnings = [line for line in (parts["removed"], parts["suspicious"]) if line]
    if warnings:
        # What Sleuth took out of the model's text, and data that tried to steer it: read first.
        blocks.append((1, context(*[f":warning: {clip(escape(line), 600)}" for line in warnings])))
    # The model's words are shown as text: escaped whole, so they can mention nobody and link nowhere.
    reading = parts["reading"] + ([parts["rejected"]] if parts["rejected"] else [])
    if reading:
        blocks.append((5, section("\n".join(clip(escape(line), 900) for line in reading))))
    if refuted:
        lines = [f"• {escape(h.get('category', '').replace('_', ' '))} in {escape(h.get('component'))}: "
                 f"{clip(prose(h.get('why_lower') or h.get('statement', '')), 300)}" for h in refuted[:6]]
        blocks.append((8, section("*Ruled out*\n" + "\n".join(lines))))

    similar = diagnosis.get("similar_incidents") or []
    if similar:
        lines = [f"• *{escape(s.get('id'))}* {clip(prose(s.get('title', '')), 150)} (similarity "
                 f"{float(s.get('similarity') or 0):.2f})\n   cause: {clip(prose(s.get('root_cause', '')), 250)}\n"
                 f"   fixed by: {clip(prose(s.get('mitigation', '')), 250)}" for s in similar[:3]]
        blocks.append((6, section("*Similar past incidents*\n" + "\n".join(lines))))

    blocks.extend(mitigation_blocks(diagnosis, thread_id=thread_id, pending=pending, decisions=decisions))

    sources = diagnosis.get("sources") or {}
    status = " · ".join(f"{_SOURCE_ICON.get((r or {}).get('status'), '')} {escape(n)}" for n, r in sources.items())
    timing = (diagnosis.get("timings") or {}).get("total_ms")
    model = (diagnosis.get("model") or {}).get("status", "not_configured")
    footer = [status, f"{float(timing) / 1000:.1f} s" if timing else "", f"model: {escape(model)}"]
    if charts:
        footer.append(f"{charts} chart{'s' if charts > 1 else ''} below")
    blocks.append((1, context(*[f for f in footer if f])))

    top = live[0] if live else None
    text = (f"Diagnosis: {escape(str(top.get('category', '')).replace('_', ' '))} in {escape(top.get('component'))} "
            f"({percent(top.get('confidence'))})" if top else "Diagnosis: no hypothesis stands out")
    return clip(text, MAX_FALLBACK), fit(blocks)


def mitigation_blocks(diagnosis: dict[str, Any], *, thread_id: str, pending: Sequence[dict[str, Any]],
                      decisions: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    pending_by_id = {p.get("id"): p for p in pending}
    decided = {d.get("id"): d for d in decisions}
    items: list[dict[str, Any]] = list(pending) + [d for d in decisions if d.get("id") not in pending_by_id]
    known = {i.get("id") for i in items}
    # Mitigations that need no decision (monitor, escalate) are listed too, without buttons.
    others = [m for m in diagnosis.get("mitigations") or []
              if not any(m.get("action") == i.get("action") and m.get("target") == i.get("target") for i in items)]
    if not items and not others:
        return []
    out: list[tuple[int, dict[str, Any]]] = [
        (1, divider()),
        (1, section("*Proposed mitigations* — Sleuth executes none of them; an approval records the decision "
                    "and the verification plan.")),
    ]
    for item in items[:8]:
        mid = str(item.get("id"))
        target = f" → {escape(item.get('target'))}" if item.get("target") else ""
        lines = [f"*{escape(mid)} · {escape(str(item.get('action', '')).replace('_', ' '))}*{target}"]
        if item.get("rationale"):
            lines.append(f"_Why:_ {clip(prose(item.get('rationale')), 400)}")
        if item.get("risk"):
            lines.append(f"_Risk:_ {clip(prose(item.get('risk')), 300)}")
        if item.get("verify"):
            lines.append(f"_Verify:_ {clip(prose(item.get('verify')), 400)}")
        if item.get("provenance"):
            lines.append(f"_Provenance:_ {clip(prose(item.get('provenance')), 300)}")
        out.append((2, section("\n".join(lines), block_id=f"mitigation:{mid}")))
        if mid in decided:
            out.append((1, context(decision_line(decided[mid]))))
        elif mid in known and mid in pending_by_id:
            value = mitigation_value(thread_id, mid)
            label = f"{str(item.get('action', '')).replace('_', ' ')} {item.get('target') or ''}".strip()
            confirm = {
                "title": {"type": "plain_text", "text": "Approve this mitigation?"},
                "text": {"type": "mrkdwn", "text": clip(f"Approve *{escape(label)}*? Sleuth records the decision and "
                                                        "posts the verification plan; it executes nothing.", 300)},
                "confirm": {"type": "plain_text", "text": "Approve"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
            out.append((1, {"type": "actions", "block_id": f"decide:{mid}"[:255], "elements": [
                button("Approve", APPROVE, value, style="primary", confirm=confirm),
                button("Reject", REJECT, value, style="danger"),
            ]}))
    if others:
        lines = [f"• *{escape(str(m.get('action', '')).replace('_', ' '))}* → {escape(m.get('target'))}: "
                 f"{clip(prose(m.get('rationale', '')), 200)} _(no approval needed)_" for m in others[:5]]
        out.append((4, section("\n".join(lines))))
    return out


def resolve_decision_in_message(blocks: list[dict[str, Any]], mitigation_id: str,
                                decision: dict[str, Any]) -> list[dict[str, Any]]:
    """The clicked message's blocks with that mitigation's buttons replaced by the decision."""
    out = []
    for block in blocks:
        if block.get("type") == "actions" and block.get("block_id") == f"decide:{mitigation_id}":
            out.append(context(decision_line(decision)))
        else:
            out.append(block)
    return out


# --- answers ----------------------------------------------------------------------------------


def answer_message(text: str, *, kind: str = "answer") -> tuple[str, list[dict[str, Any]]]:
    """A follow-up answer or a clarifying question: the agent's text (already mrkdwn-safe)."""
    prefix = ":question: " if kind == "question" else ""
    body = prefix + (text or "(no answer)")
    blocks = sections(body)[: MAX_BLOCKS - 1]
    if kind == "question":
        blocks.append(context("_Reply in this thread to answer._"))
    return clip(body, MAX_FALLBACK), blocks


def error_text(text: str) -> str:
    """A user error as one sentence."""
    first = slack_words((text or "something went wrong").strip().split("\n")[0])
    return clip(first, 500)


# --- the timeline -----------------------------------------------------------------------------

_KIND_ICON = {"opened": ":rotating_light:", "status": ":arrows_counterclockwise:", "severity": ":bangbang:",
              "commander": ":bust_in_silhouette:", "finding": ":mag:", "decision": ":ballot_box_with_check:",
              "change": ":package:", "manual": ":round_pushpin:", "resolved": ":white_check_mark:",
              "memory": ":brain:", "note": ":memo:", "alert": ":bell:"}


def timeline_line(entry: Any) -> str:
    icon = _KIND_ICON.get(entry.kind, "•")
    by = f" — {user(entry.author)}" if entry.author and entry.kind != "change" else ""
    opened = f" {link(entry.permalink, 'message')}" if entry.permalink else ""
    return f"{icon} {when(entry.at, '{date_short} {time}')}  {clip(prose(str(entry.text).replace(chr(10), ' ')), 400)}{by}{opened}"


def incident_facts(incident: Any, now: float | None = None) -> str:
    return (f"*{escape(incident.label)}* · {escape(incident.status)} · commander {user(incident.commander)} · "
            f"open {duration(incident.duration_s(now))}")


def timeline_message(incident: Any, entries: Sequence[Any], *, limit: int = MAX_BLOCKS) -> tuple[str, list[dict[str, Any]]]:
    """The living timeline: the newest entries that fit, oldest first."""
    top = [header(f"Timeline: {incident.title}"),
           context(incident_facts(incident), f"updated {when(time.time(), '{time}')}")]
    room = limit - len(top) - 1
    lines = [timeline_line(e) for e in entries]
    chunks: list[str] = []
    current = ""
    for line in reversed(lines):  # newest first while packing, so the newest always fit
        candidate = f"{line}\n{current}" if current else line
        if len(candidate) > MAX_SECTION:
            chunks.append(current)
            current = line
            if len(chunks) >= room:
                break
        else:
            current = candidate
    else:
        if current:
            chunks.append(current)
    shown = sum(c.count("\n") + 1 for c in chunks)
    blocks = top + [section(c) for c in reversed(chunks)]
    if shown < len(lines):
        blocks.insert(2, context(f"_{len(lines) - shown} earlier entries not shown_"))
    if not lines:
        blocks.append(section("_Nothing yet._"))
    text = f"Timeline: {escape(clip(incident.title, 200))} ({len(lines)} entries)"
    return text, blocks[:limit]


# --- rollups and the summary ------------------------------------------------------------------


def rollup_blocks(rollup: Any) -> list[dict[str, Any]]:
    """One incident's rollup (bot.incidents.reports.Rollup)."""
    r = rollup
    lines = [f"*<#{r.channel}>* {prose(clip(r.title, 200))}",
             f"*{escape(r.severity)}* · {escape(r.status)} · commander {user(r.commander)} · open {escape(r.duration)}"
             f" · last update {when(r.updated_at, '{time}')}"]
    lines.append("*Approvers:* " + (", ".join(f"<!subteam^{a}>" if a.startswith("S") else user(a)
                                              for a in getattr(r, "approvers", [])[:10])
                                    or "none configured; the commander decides"))
    if getattr(r, "alerts", ""):
        lines.append(f"*Alerts:* {escape(r.alerts)}")
    if r.impact:
        lines.append(f"*Impact:* {clip(prose(r.impact), 500)}")
    lines.append(f"*Best hypothesis:* {clip(prose(r.hypothesis), 500)}" if r.hypothesis
                 else "*Best hypothesis:* none yet; run the diagnosis")
    if r.approved:
        lines.append("*Approved:* " + "; ".join(clip(prose(a), 200) for a in r.approved[:5]))
    if r.rejected:
        lines.append("*Rejected:* " + "; ".join(clip(prose(a), 200) for a in r.rejected[:5]))
    if r.open_questions:
        lines.append("*Open questions:*\n" + "\n".join(f"• {clip(prose(slack_words(q)), 250)}" for q in r.open_questions[:5]))
    if r.next_steps:
        lines.append("*Next steps:*\n" + "\n".join(f"• {clip(prose(s), 250)}" for s in r.next_steps[:5]))
    return sections("\n".join(lines))


def rollup_message(rollups: Sequence[Any], *, everything: bool) -> tuple[str, list[dict[str, Any]]]:
    if everything:
        head = header(f"Active incidents: {len(rollups)}")
        if not rollups:
            return "No active incidents", [head, section("No active incidents. :tada:")]
    else:
        head = header(f"Rollup: {rollups[0].title}" if rollups else "Rollup")
    blocks: list[tuple[int, dict[str, Any]]] = [(0, head)]
    for index, r in enumerate(rollups):
        if index:
            blocks.append((index, divider()))
        blocks.extend((index, b) for b in rollup_blocks(r))
    text = (f"{len(rollups)} active incidents" if everything else f"Rollup: {escape(rollups[0].title)}") \
        if rollups else "Rollup"
    return clip(text, MAX_FALLBACK), fit(blocks, note="More incidents than fit one message; the most severe are shown.")


def summary_message(summary: Any, *, incident_id: int, added_to_memory: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The summary posted on resolve, with the Add to memory button."""
    s = summary
    parts = [
        f"*What happened:* {clip(prose(s.what_happened), 900)}",
        f"*Impact:* {clip(prose(s.impact), 500)}",
        f"*Root cause:* {clip(prose(s.root_cause), 900)}",
        f"*What fixed it:* {clip(prose(s.fix), 600)}",
        f"*Duration:* {escape(s.duration)} ({when(s.opened_at)} → {when(s.resolved_at)})",
    ]
    blocks: list[tuple[int, dict[str, Any]]] = [(0, header(f"Resolved: {s.title}"))]
    blocks.extend((0, b) for b in sections("\n".join(parts)))
    if s.highlights:
        blocks.extend((2, b) for b in sections("*Timeline highlights*\n" + "\n".join(timeline_line(e) for e in s.highlights)))
    if s.follow_ups:
        blocks.extend((3, b) for b in sections("*Follow-ups*\n" + "\n".join(f"• {clip(prose(slack_words(f)), 300)}"
                                                                            for f in s.follow_ups[:8])))
    if added_to_memory:
        blocks.append((0, context(added_to_memory)))
    else:
        blocks.append((0, {"type": "actions", "block_id": "memory", "elements": [
            button("Add to memory", ADD_TO_MEMORY, str(incident_id), style="primary")]}))
        blocks.append((1, context("A human confirms the root cause and the fix before the incident joins the "
                                  "past-incident memory.")))
    return clip(f"Resolved: {escape(s.title)}", MAX_FALLBACK), fit(blocks)


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(value.replace("_", " "), MAX_OPTION)}, "value": value}


def memory_modal(*, incident_id: int, title: str, category: str | None, root_cause: str,
                 action: str | None, mitigation: str) -> dict[str, Any]:
    """The modal that confirms (or corrects) root cause and mitigation before indexing."""
    category_element: dict[str, Any] = {"type": "static_select", "action_id": "value",
                                        "options": [_option(c) for c in CATEGORIES]}
    if category in CATEGORIES:
        category_element["initial_option"] = _option(category)
    action_element: dict[str, Any] = {"type": "static_select", "action_id": "value",
                                      "options": [_option(a) for a in ACTIONS]}
    if action in ACTIONS:
        action_element["initial_option"] = _option(action)
    return _modal(MEMORY_MODAL, str(incident_id), "Add to memory", "Add", [
            section(f"*{prose(clip(title, 500))}*\nConfirm or correct what caused it and what fixed it; the next "
                    "investigation will find this incident among similar ones."),
            {"type": "input", "block_id": "category", "label": {"type": "plain_text", "text": "Root-cause category"},
             "element": category_element},
            {"type": "input", "block_id": "root_cause", "label": {"type": "plain_text", "text": "Root cause"},
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000,
                         "initial_value": clip(root_cause, 3000)}},
            {"type": "input", "block_id": "action", "label": {"type": "plain_text", "text": "What fixed it (action)"},
             "element": action_element},
            {"type": "input", "block_id": "mitigation", "label": {"type": "plain_text", "text": "What fixed it"},
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000,
                         "initial_value": clip(mitigation, 3000)}},
    ])


def reject_modal(*, metadata: str, mitigation_id: str, label: str) -> dict[str, Any]:
    """The form the Reject button opens: why (required); the reason goes on the timeline and into
    the summary. ``metadata`` says which mitigation (private_metadata, at most 3,000 characters)."""
    return _modal(REJECT_MODAL, metadata[:3000], "Reject mitigation", "Reject", [
            section(f"Reject *{escape(clip(mitigation_id, 100))}*: {escape(clip(label, 400))}?\nSay why: the reason "
                    "goes on the incident's timeline and into the summary."),
            {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why reject it?"},
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 1000,
                         "placeholder": {"type": "plain_text", "text": "e.g. the schema migration cannot be undone"}}},
    ])


def _modal(callback_id: str, metadata: str, title: str, submit: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A modal view with a Cancel button; ``metadata`` comes back with its submission."""
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": title}, "submit": {"type": "plain_text", "text": submit},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def modal_values(view: dict[str, Any]) -> dict[str, str | None]:
    """The submitted modal's values by block id."""
    out: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        value: dict[str, Any] = actions.get("value") or next(iter(actions.values()), {})
        if value.get("type") == "static_select":
            selected = value.get("selected_option") or {}
            out[block_id] = selected.get("value")
        else:
            out[block_id] = value.get("value")
    return out


def bullet(lines: Iterable[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


def alert_message(batch: Any, alerts: Sequence[Any], *, incident_title: str | None, opened: bool) -> tuple[str, list[dict[str, Any]]]:
    """An alert as it arrives in the channel: what fires (or resolved), its labels, summary and link."""
    lines = []
    for alert in alerts:
        icon = ":rotating_light:" if alert.status == "firing" else ":white_check_mark:"
        where = f" on *{escape(alert.service)}*" if alert.service else ""
        head = f"{icon} *Alert {escape(alert.status)}*: {escape(alert.name)}{where}"
        if alert.summary != alert.name:
            head += f"\n{prose(clip(alert.summary, 500))}"
        labels = ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(alert.labels.items())
                           if k not in ("alertname",))[:1500]
        if labels:
            head += f"\n{labels}"
        since = f"since {when(alert.starts_at)}" if alert.starts_at else ""
        source = link(alert.link, "source") if alert.link else ""
        tail = " · ".join(p for p in (since, source) if p)
        lines.append(head + (f"\n{tail}" if tail else ""))
    if batch.truncated:
        lines.append(f"_{batch.truncated} more alerts in this group were not sent by the alerting tool_")
    if opened and incident_title:
        lines.append(f":rotating_light: Opened the incident *{prose(clip(incident_title, 200))}* for this channel; "
                     "a diagnosis follows in this thread")
    text = "\n\n".join(lines)
    fallback = clip(f"Alert {alerts[0].status}: {alerts[0].name}" if alerts else "Alert", MAX_FALLBACK)
    return escape(fallback), sections(text)[:MAX_BLOCKS]
