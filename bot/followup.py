"""Follow-up messages in a thread: answered from the thread's state, with fresh queries.

Deterministic intents, recognised from the text, each producing ledger evidence:

- recovery ("we rolled back, is it recovering?"): the symptom's signals re-queried from before the
  onset to now, comparing the baseline, the incident before the action and the time since the
  action (the time said in the message, else the last approved mitigation, else the message);
- changes ("what changed in the last 2 hours?"): the change feeds over that span;
- another service ("check the database", "what about payments?"): the investigation again,
  focused on that service;
- the reason for a rejection: the first statement (not a question, not a request to check a
  service or list changes) in the thread within 15 minutes of a rejection, by whoever rejected it
  (when the front end says who wrote), is noted as why it was rejected, on the decision, and never answered as a recovery check ("we can't roll back, the
  migration already ran"). An action that is negated ("don't roll back") claims no recovery.

With a model configured, the model answers (with its tools and the conversation), given the
deterministic finding as evidence. Its answer is used in whatever shape it comes (JSON, JSON with
slips, prose); what it merely copied from the prompt is dropped; claims of approvals or actions
that no human recorded are removed and flagged, commands shown as text only (bot.grounding); an
answer that cites no evidence is marked unverified. If the model fails, or says nothing of its
own, the deterministic answer is returned with a note.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from bot.agent_tools import IncidentScope, Toolbox, ToolArgumentError, add_evidence
from bot.context import AgentContext
from bot.narrate import describe_hypothesis, top_hypothesis
from bot.phrases import mentioned_services, parse_span, parse_time_phrase
from bot.turns import Turn, as_list, run_sync
from tools.diagnosis import iso
from tools.timeparse import parse_iso
from tools.http import SourceError

_RECOVERY = re.compile(r"\b(recover\w*|rolled back|roll(?:ed)?[- ]?back|reverted|restarted|failed over|"
                       r"mitigated|better now|is it (?:back|ok|fixed|fine)|fixed|back to normal)\b", re.I)
_CHANGES = re.compile(r"\b(what(?:'s| has| have)? changed|changes?|deploy(?:s|ments|ed)?|releases?|rollouts?)\b", re.I)
_CHECK = re.compile(r"\b(check|look at|what about|how about|investigate|dig into|how is|is)\b", re.I)


# A recovery word said not to have happened, or not to happen: "don't roll back", "we can't revert".
_NEGATED = re.compile(r"\b(?:not|no|never|don't|do not|can't|cannot|can not|won't|will not|shouldn't|should not|"
                      r"mustn't|must not|didn't|did not|haven't|have not|instead of|rather than|without)"
                      r"(?:\s+\w+){0,2}\s*$", re.I)
_REASON_START = re.compile(r"^\s*(?:because|since|as|reason|due to|too|it would|that would|we can't|we cannot|"
                           r"can't|cannot|not|no\b|don't|rejected)", re.I)
_ACTION = re.compile(r"rolled back|roll(?:ed)?[- ]?back|reverted|restarted|failed over|mitigated", re.I)
REASON_WINDOW_S = 900.0  # a statement this soon after a rejection is its reason


def _claims_recovery(text: str) -> bool:
    """A recovery word that is not negated ("we rolled back", "is it recovering?", not "don't roll back")."""
    return any(not (_ACTION.fullmatch(m.group(0)) and _NEGATED.search(text[: m.start()].replace("’", "'")))
               for m in _RECOVERY.finditer(text))


def classify(text: str, known: list[str]) -> tuple[str, Any]:
    if _claims_recovery(text):
        return "recovery", None
    services = mentioned_services(text, known)
    if services and _CHECK.search(text):
        return "service", services[0]
    if _CHANGES.search(text):
        return "changes", services[0] if services else None
    if services:
        return "service", services[0]
    return "other", None


def _scope(ctx: AgentContext, state: dict[str, Any], end: float | None = None) -> IncidentScope:
    scope = state["scope"]
    live_end = scope["end"]
    if state.get("request", {}).get("live"):
        live_end = max(live_end, ctx.clock())
    return IncidentScope(symptom=scope["symptom"], service=scope["service"], start=scope["start"],
                         window_start=scope["window_start"], end=end or live_end, services=scope["services"])


def _recovery(ctx: AgentContext, state: dict[str, Any], text: str) -> tuple[str, list[str], dict[str, Any]]:
    """Re-query the symptom's signals and compare baseline, incident and since-the-action."""
    from tools.metrics import open_backend

    ledger = dict(state["ledger"])
    diagnosis = state.get("diagnosis") or {}
    now = ctx.clock()
    action = parse_time_phrase(text, now)
    approved = [d for d in state.get("decisions", []) if d.get("approved")]
    if action is None and approved:
        action = approved[-1].get("ts")
    scope = _scope(ctx, state, end=max(now, state["scope"]["end"]))
    if action is None:
        action = scope.end
    onset_text = diagnosis.get("incident", {}).get("onset")
    onset = parse_iso(onset_text) or scope.window_start
    top = top_hypothesis(diagnosis)
    ids = list(top["evidence"]) if top else []
    service = diagnosis.get("incident", {}).get("service")
    queries: list[str] = []
    for e in diagnosis.get("evidence", []):
        if e.get("source") != "metrics" or not e.get("query"):
            continue
        if e["id"] in ids or (service and e.get("component") == service):
            if e["query"] not in queries:
                queries.append(e["query"])
    queries = queries[:4]
    if not queries:
        return ("I have no metric from this incident to re-check; name a signal or a service and I will look.",
                [], ledger)
    backend = open_backend(ctx.config.metrics)
    if backend is None:
        return "No metrics backend is configured, so I cannot check recovery.", [], ledger

    async def fetch():
        try:
            out = []
            for query in queries:
                out.append((query, await backend.query_range(query, scope.start, scope.end, ctx.config.metrics.step_s)))
            return out
        finally:
            await backend.aclose()

    try:
        answers = run_sync(fetch())
    except SourceError as exc:
        return f"I could not re-query the metrics: {exc}", [], ledger
    verdicts: list[str] = []
    cited: list[str] = []
    worst = "recovered"
    rank = {"recovered": 0, "recovering": 1, "no data since the action yet": 2, "not recovering": 3}
    for query, found in answers:
        for series in found[:2]:
            ts, values = series.timestamps, series.values
            baseline = values[ts < scope.window_start]
            during = values[(ts >= onset) & (ts < action)]
            after = values[ts >= action]
            if baseline.size == 0 or during.size == 0:
                continue
            base, bad = float(np.median(baseline)), float(np.median(during))
            if after.size == 0:
                verdict = "no data since the action yet"
                level = None
            else:
                recent = after[-max(1, min(after.size, 5)):]
                level = float(np.median(recent))
                departure = bad - base
                share = (bad - level) / departure if abs(departure) > 1e-12 else 0.0
                if share >= 0.8:
                    verdict = "recovered"
                elif share >= 0.3:
                    verdict = "recovering"
                else:
                    verdict = "not recovering"
            if rank[verdict] > rank[worst]:
                worst = verdict
            summary = (f"{query}: baseline {base:.4g}, during the incident {bad:.4g}, "
                       + (f"since {iso(action)} {level:.4g}" if level is not None else f"no points since {iso(action)}")
                       + f": {verdict}")
            evidence_id = add_evidence(ledger, {"source": "metrics", "query": query, "summary": summary,
                                                 "component": service,
                                                 "details": {"baseline": base, "incident": bad, "since_action": level,
                                                             "action_at": iso(action), "verdict": verdict}})
            cited.append(evidence_id)
            verdicts.append(f"{summary} [{evidence_id}]")
    if not verdicts:
        return "The symptom's signals have no data around the incident to compare.", [], ledger
    head = {"recovered": "It has recovered", "recovering": "It is recovering",
            "not recovering": "It is not recovering yet",
            "no data since the action yet": "There is no data since the action yet"}[worst]
    return f"{head} (compared since {iso(action)}).\n" + "\n".join(verdicts), cited, ledger


def _changes(ctx: AgentContext, state: dict[str, Any], text: str, service: str | None) -> tuple[str, list[str], dict[str, Any]]:
    ledger = dict(state["ledger"])
    span = parse_span(text)
    scope = _scope(ctx, state)
    toolbox = Toolbox(ctx.config, scope, ledger, run_sync, ctx.redactor)
    minutes = int(span // 60) if span else None
    if span and scope.end - span < scope.start:
        # Further back than the incident's range: widen the start for this read-only listing.
        scope.start = scope.end - span
    try:
        result = toolbox.call("list_changes", {"service": service, "minutes": minutes})
    except (SourceError, ToolArgumentError) as exc:
        return f"I could not list the changes: {exc}", [], ledger
    evidence = result.evidence or {}  # the change listing always gives its evidence
    evidence_id = add_evidence(ledger, evidence)
    compact = evidence["details"]["compact"]
    items = compact.get("items", [])
    if not items:
        return f"No changes recorded {_span_words(span)}{' for ' + service if service else ''} [{evidence_id}].", \
            [evidence_id], ledger
    lines = [f"{len(items) + compact.get('omitted', 0)} changes {_span_words(span)}"
             f"{' for ' + service if service else ''} [{evidence_id}]:"]
    for item in items[:10]:
        version = f" {item['previous_version']} -> {item['version']}" if item.get("version") else ""
        lines.append(f"- {item['time']} {item['service']} {item['kind']}{version}: {item['summary']} ({item['id']})")
    return "\n".join(lines), [evidence_id], ledger


def _span_words(span: float | None) -> str:
    if not span:
        return "in the incident's window"
    hours = span / 3600
    return f"in the last {hours:g} hours" if hours >= 1 else f"in the last {span / 60:g} minutes"


def _service(ctx: AgentContext, state: dict[str, Any], service: str) -> tuple[str, list[str], dict[str, Any]]:
    ledger = dict(state["ledger"])
    toolbox = Toolbox(ctx.config, _scope(ctx, state), ledger, run_sync, ctx.redactor)
    try:
        result = toolbox.call("check_service", {"service": service})
    except (SourceError, ToolArgumentError) as exc:
        return f"I could not check {service}: {exc}", [], ledger
    evidence = result.evidence or {}  # the focused investigation always gives its evidence
    evidence_id = add_evidence(ledger, evidence)
    found = evidence["details"]["compact"]
    lines = [f"{service}: onset {found.get('onset') or 'none found'} [{evidence_id}]."]
    for h in found.get("hypotheses", [])[:2]:
        lines.append(f"- {h['category']} on {h['component']} ({round(h['confidence'] * 100)}%): {h['statement']}")
    for e in found.get("evidence", [])[:3]:
        lines.append(f"- {e['summary']}")
    failed = [k for k, v in found.get("sources", {}).items() if v == "error"]
    if failed:
        lines.append(f"(sources that failed: {', '.join(failed)})")
    return "\n".join(lines), [evidence_id], ledger


def _other(state: dict[str, Any]) -> str:
    top = top_hypothesis(state.get("diagnosis"))
    lead = ("Current best hypothesis: " + describe_hypothesis(top)) if top else "No hypothesis stands out yet."
    return (lead + "\nI can check another service (\"check payments\"), list recent changes (\"what changed in the "
            "last 2 hours?\"), or compare after a mitigation (\"we rolled back, is it recovering?\").")


def awaiting_reason(state: dict[str, Any], now: float, by: str | None = None) -> dict[str, Any] | None:
    """The thread's latest decision when it is a rejection made less than REASON_WINDOW_S ago (by
    ``by``, when the front end says who writes) and its author has not written in the thread
    since: what they write next may be why."""
    decisions = [d for d in state.get("decisions") or [] if d.get("ts") is not None]
    if not decisions:
        return None
    last = max(decisions, key=lambda d: float(d["ts"]))
    if last.get("approved") or now - float(last["ts"]) > REASON_WINDOW_S:
        return None
    if by is not None and last.get("by") != by:
        return None  # only whoever rejected it says why
    for message in reversed(state.get("messages") or []):
        if message.get("role") == "user" and (by is None or message.get("by") in (None, by)):
            said = parse_iso(message.get("at"))
            if said is not None and said > float(last["ts"]):
                return None
            break
    return last


def is_reason(text: str, intent: str) -> bool:
    """After a rejection: a statement that is not a question, nor a request to check a service or
    list changes, unless it starts like a reason ("because the deploy changed the schema")."""
    if "?" in text:
        return False
    return intent in ("recovery", "other") or bool(_REASON_START.search(text))


def _note_reason(ctx: AgentContext, state: dict[str, Any], text: str, rejected: dict[str, Any],
                 messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Record ``text`` as (more of) the reason ``rejected`` was rejected; say so in one line."""
    said = ctx.redactor.redact(" ".join(text.split()))[:1000]
    decisions = [dict(d) for d in state.get("decisions") or []]
    for d in decisions:
        if d.get("id") == rejected.get("id") and d.get("ts") == rejected.get("ts"):
            d["reason"] = f"{d['reason']}; {said}"[:1000] if d.get("reason") else said
    what = f"{str(rejected.get('action', '')).replace('_', ' ')} {rejected.get('target') or ''}".strip()
    answer = (f"Noted as the reason {rejected.get('id')} ({what}) was rejected: {said}\n"
              "To compare the signals after an action, ask \"is it recovering?\".")
    messages.append({"role": "assistant", "text": answer, "at": iso(ctx.clock())})
    turn = Turn(state["thread_id"], "answer", answer, diagnosis=state.get("diagnosis"),
                pending=state.get("pending", []), decisions=decisions, charts=state.get("charts", []),
                model=state.get("usage") or {})
    return {"turn": turn.to_dict(), "messages": messages, "decisions": decisions}


def answer_follow_up(ctx: AgentContext, state: dict[str, Any]) -> dict[str, Any]:
    event = state["event"]
    text = (event.get("text") or "").strip()
    said = {"role": "user", "text": ctx.redactor.redact(text), "at": iso(event.get("received") or ctx.clock())}
    if event.get("by"):
        said["by"] = event["by"]  # who wrote (Slack): a rejection's reason is its author's to give
    messages = list(state.get("messages") or []) + [said]
    if not state.get("diagnosis"):
        turn = Turn(state["thread_id"], "error", "there is no diagnosis in this thread yet; start one with a symptom")
        return {"turn": turn.to_dict(), "messages": messages}
    intent, target = classify(text, state["scope"].get("services", []))
    rejected = awaiting_reason(state, float(event.get("received") or ctx.clock()), by=event.get("by"))
    if rejected is not None and is_reason(text, intent):
        return _note_reason(ctx, state, text, rejected, messages)
    cited: list[str] = []
    ledger = state["ledger"]
    if intent == "recovery":
        answer, cited, ledger = _recovery(ctx, state, text)
    elif intent == "changes":
        answer, cited, ledger = _changes(ctx, state, text, target)
    elif intent == "service":
        answer, cited, ledger = _service(ctx, state, target)
    else:
        answer = _other(state)
    usage = state.get("usage") or {}
    client = ctx.model_client()
    if client is not None:
        answer, cited, ledger, usage = _with_model(ctx, client, state, text, answer, cited, ledger)
    answer = ctx.redactor.redact(answer)
    messages.append({"role": "assistant", "text": answer, "at": iso(ctx.clock())})
    diagnosis = dict(state["diagnosis"])
    diagnosis["evidence"] = list(ledger.values())
    turn = Turn(state["thread_id"], "answer", answer, diagnosis=diagnosis, pending=state.get("pending", []),
                decisions=state.get("decisions", []), charts=state.get("charts", []), model=usage, evidence=cited)
    return {"turn": turn.to_dict(), "messages": messages, "ledger": ledger, "diagnosis": diagnosis, "usage": usage}



def _with_model(ctx: AgentContext, client, state: dict[str, Any], text: str, answer: str, cited: list[str],
                ledger: dict[str, Any]) -> tuple[str, list[str], dict[str, Any], dict[str, Any]]:
    """The model's answer to the message (given Sleuth's own finding), checked before it is shown."""
    from bot.grounding import clean_model_text, cited_ids, fence_data, filter_actions, is_echo
    from bot.reasoning import FOLLOW_UP_KEYS, follow_up_task, run_model_loop

    redact = ctx.redactor.redact
    found: list[dict[str, Any]] = []
    instructions = follow_up_task(ledger)
    task = instructions + "\nThe message:\n" + fence_data("slack", redact(text), "the message", found)
    if cited:
        task += ("\nWhat Sleuth found for it (evidence " + ", ".join(cited) + "):\n"
                 + fence_data("finding", redact(answer), "Sleuth's finding", found))
    loop_state = dict(state, ledger=ledger)
    outcome = run_model_loop(ctx, client, loop_state, task=task, keys=FOLLOW_UP_KEYS,
                             history=state.get("messages"), found=found, instructions=instructions)
    usage = dict(outcome.usage)
    ledger = outcome.ledger
    final = outcome.final or {}
    reply = final.get("answer")
    reply = clean_model_text(redact(reply if isinstance(reply, str) else json.dumps(reply) if reply else ""))
    if reply and is_echo(reply, outcome.prompt):
        reply = ""
    humans = [m["text"] for m in state.get("messages") or [] if m.get("role") == "user"] + [text]
    if reply:
        filtered = filter_actions(reply[:3000], state.get("decisions") or [], humans)
        listed = [str(e) for e in as_list(final.get("evidence"))]
        model_cites = list(dict.fromkeys(cited_ids(" ".join(listed), ledger) + cited_ids(filtered.text, ledger)))
        notes = []
        if filtered.removed or filtered.withheld:
            notes.append(f"Sleuth removed {len(filtered.removed) + len(filtered.withheld)} part(s) of the model's "
                         "answer that claimed an approval or an action no human recorded, or held a destructive command.")
        if filtered.text:
            body = filtered.text
            if not model_cites:
                notes.append("The model cited no evidence for this answer: treat it as unverified.")
            answer = body + "".join(f"\n({n})" for n in notes)
            cited = list(dict.fromkeys(cited + model_cites))
        else:
            answer += "".join(f"\n({n})" for n in notes)
        usage["note"] = _note(outcome.shape, bool(model_cites), filtered)
        if filtered.flags:
            usage["flags"] = filtered.flags
    elif outcome.status != "ok":
        answer += f"\n(Model: {outcome.status}.)"
    else:
        answer += "\n(Model: its answer only repeated Sleuth's own text; the answer above is Sleuth's.)"
        usage["note"] = f"{outcome.shape or 'an'} answer that only repeated the prompt"
    return answer, cited, ledger, usage


def _note(shape: str, cites: bool, filtered) -> str:
    parts = [{"json": "a JSON answer", "repaired json": "a JSON answer with slips, repaired",
              "prose": "a prose answer"}.get(shape, shape or "an answer")]
    if not cites:
        parts.append("citing no evidence (shown as unverified)")
    if filtered.removed or filtered.withheld:
        parts.append(f"{len(filtered.removed) + len(filtered.withheld)} claim(s) of actions or destructive commands removed")
    return "; ".join(parts)
