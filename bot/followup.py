"""Follow-up messages in a thread: answered from the thread's state, with fresh queries.

Deterministic intents, recognised from the text, each producing ledger evidence:

- recovery ("we rolled back, is it recovering?"): the symptom's signals re-queried from before the
  onset to now, comparing the baseline, the incident before the action and the time since the
  action (the time said in the message, else the last approved mitigation, else the message);
- changes ("what changed in the last 2 hours?"): the change feeds over that span;
- another service ("check the database", "what about payments?"): the investigation again,
  focused on that service.

With a model configured, the model answers (with its tools and the conversation), given the
deterministic finding as evidence; if the model fails, the deterministic answer is returned.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from bot.agent import Turn, mentioned_services, parse_span, parse_time_phrase, run_sync
from bot.agent_tools import IncidentScope, Toolbox, ToolArgumentError, add_evidence
from bot.safety import fence
from bot.narrate import describe_hypothesis, top_hypothesis
from tools.diagnosis import iso
from tools.http import SourceError

_RECOVERY = re.compile(r"\b(recover\w*|rolled back|roll(?:ed)?[- ]?back|reverted|restarted|failed over|"
                       r"mitigated|better now|is it (?:back|ok|fixed|fine)|fixed|back to normal)\b", re.I)
_CHANGES = re.compile(r"\b(what(?:'s| has| have)? changed|changes?|deploy(?:s|ments|ed)?|releases?|rollouts?)\b", re.I)
_CHECK = re.compile(r"\b(check|look at|what about|how about|investigate|dig into|how is|is)\b", re.I)


def classify(text: str, known: list[str]) -> tuple[str, Any]:
    if _RECOVERY.search(text):
        return "recovery", None
    services = mentioned_services(text, known)
    if services and _CHECK.search(text):
        return "service", services[0]
    if _CHANGES.search(text):
        return "changes", services[0] if services else None
    if services:
        return "service", services[0]
    return "other", None


def _scope(agent, state: dict[str, Any], end: float | None = None) -> IncidentScope:
    scope = state["scope"]
    live_end = scope["end"]
    if state.get("request", {}).get("live"):
        live_end = max(live_end, agent.clock())
    return IncidentScope(symptom=scope["symptom"], service=scope["service"], start=scope["start"],
                         window_start=scope["window_start"], end=end or live_end, services=scope["services"])


def _recovery(agent, state: dict[str, Any], text: str) -> tuple[str, list[str], dict[str, Any]]:
    """Re-query the symptom's signals and compare baseline, incident and since-the-action."""
    from tools.metrics import open_backend

    ledger = dict(state["ledger"])
    diagnosis = state.get("diagnosis") or {}
    now = agent.clock()
    action = parse_time_phrase(text, now)
    approved = [d for d in state.get("decisions", []) if d.get("approved")]
    if action is None and approved:
        action = approved[-1].get("ts")
    scope = _scope(agent, state, end=max(now, state["scope"]["end"]))
    if action is None:
        action = scope.end
    onset_text = diagnosis.get("incident", {}).get("onset")
    onset = _parse_iso(onset_text) or scope.window_start
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
    backend = open_backend(agent.config.metrics)
    if backend is None:
        return "No metrics backend is configured, so I cannot check recovery.", [], ledger

    async def fetch():
        try:
            out = []
            for query in queries:
                out.append((query, await backend.query_range(query, scope.start, scope.end, agent.config.metrics.step_s)))
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


def _parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _changes(agent, state: dict[str, Any], text: str, service: str | None) -> tuple[str, list[str], dict[str, Any]]:
    ledger = dict(state["ledger"])
    span = parse_span(text)
    scope = _scope(agent, state)
    toolbox = Toolbox(agent.config, scope, ledger, run_sync, agent.redactor)
    minutes = int(span // 60) if span else None
    if span and scope.end - span < scope.start:
        # Further back than the incident's range: widen the start for this read-only listing.
        scope.start = scope.end - span
    try:
        result = toolbox.call("list_changes", {"service": service, "minutes": minutes})
    except (SourceError, ToolArgumentError) as exc:
        return f"I could not list the changes: {exc}", [], ledger
    evidence_id = add_evidence(ledger, result.evidence)
    compact = result.evidence["details"]["compact"]
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


def _service(agent, state: dict[str, Any], service: str) -> tuple[str, list[str], dict[str, Any]]:
    ledger = dict(state["ledger"])
    toolbox = Toolbox(agent.config, _scope(agent, state), ledger, run_sync, agent.redactor)
    try:
        result = toolbox.call("check_service", {"service": service})
    except (SourceError, ToolArgumentError) as exc:
        return f"I could not check {service}: {exc}", [], ledger
    evidence_id = add_evidence(ledger, result.evidence)
    found = result.evidence["details"]["compact"]
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


def answer_follow_up(agent, state: dict[str, Any]) -> dict[str, Any]:
    event = state["event"]
    text = (event.get("text") or "").strip()
    messages = list(state.get("messages") or []) + [{"role": "user", "text": agent.redactor.redact(text),
                                                     "at": iso(event.get("received") or agent.clock())}]
    if not state.get("diagnosis"):
        turn = Turn(state["thread_id"], "error", "there is no diagnosis in this thread yet; start one with a symptom")
        return {"turn": turn.to_dict(), "messages": messages}
    intent, target = classify(text, state["scope"].get("services", []))
    cited: list[str] = []
    ledger = state["ledger"]
    if intent == "recovery":
        answer, cited, ledger = _recovery(agent, state, text)
    elif intent == "changes":
        answer, cited, ledger = _changes(agent, state, text, target)
    elif intent == "service":
        answer, cited, ledger = _service(agent, state, target)
    else:
        answer = _other(state)
    usage = state.get("usage") or {}
    client = agent._model()
    if client is not None:
        from bot.reasoning import run_model_loop
        from prompts import load_prompt

        task = load_prompt("followup") + "\nThe message:\n" + fence("slack", agent.redactor.redact(text))
        if cited:
            task += "\nWhat Sleuth found for it (evidence " + ", ".join(cited) + "):\n" + fence("finding", agent.redactor.redact(answer))
        loop_state = dict(state, ledger=ledger)
        outcome = run_model_loop(agent, client, loop_state, task=task, history=state.get("messages"))
        usage = outcome.usage
        ledger = outcome.ledger
        reply = (outcome.final or {}).get("answer")
        if isinstance(reply, str) and reply.strip():
            model_cites = [str(e) for e in (outcome.final or {}).get("evidence") or [] if str(e) in ledger]
            answer = agent.redactor.redact(reply.strip()[:3000])
            if not model_cites:
                answer += "\n(The model cited no evidence for this answer: treat it as a guess.)"
            cited = list(dict.fromkeys(cited + model_cites))
        elif outcome.status != "ok":
            answer += f"\n(Model: {outcome.status}.)"
    answer = agent.redactor.redact(answer)
    messages.append({"role": "assistant", "text": answer, "at": iso(agent.clock())})
    diagnosis = dict(state["diagnosis"])
    diagnosis["evidence"] = list(ledger.values())
    turn = Turn(state["thread_id"], "answer", answer, diagnosis=diagnosis, pending=state.get("pending", []),
                decisions=state.get("decisions", []), charts=state.get("charts", []), model=usage, evidence=cited)
    return {"turn": turn.to_dict(), "messages": messages, "ledger": ledger, "diagnosis": diagnosis, "usage": usage}

