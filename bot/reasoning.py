"""The model's part of an investigation: a tool loop under budget, then a grounded merge.

``run_model_loop`` talks to the model with the system prompt, the incident, the deterministic
hypotheses and the evidence ledger (all data fenced as untrusted and redacted), lets it call the
read-only tools (bot.agent_tools) and ends with its JSON answer. Faults are absorbed here:

- malformed tool calls (bad JSON, an unknown tool, wrong arguments) are repaired where the fault
  is obvious, otherwise reported back to the model once; a second fault ends the model's part;
- timeouts, 5xx and 429 are retried by the client within the deadline, then the model is
  reported unavailable;
- the budgets (tool calls, prompt plus completion tokens, a wall-clock deadline) end the loop
  with the best answer so far and name the limit that was hit.

In every case the deterministic result stands; the model can only add evidence-backed statuses,
hypotheses marked as guesses, and a narrative.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bot.agent_tools import (IncidentScope, ToolArgumentError, Toolbox, add_evidence, check_arguments,
                             parse_arguments, resolve_tool_name, tool_specs)
from bot.config import parse_duration
from bot.llm import ModelClient, ModelUnavailable, parse_json_object
from bot.safety import fence
from prompts import load_prompt
from tools.http import SourceError
from tools.taxonomy import ACTIONS, CATEGORIES

_STATUSES = ("supported", "refuted", "proposed")


@dataclass
class LoopOutcome:
    final: dict[str, Any] | None
    usage: dict[str, Any]
    ledger: dict[str, dict[str, Any]]
    status: str


class _Budget:
    def __init__(self, agent_config, usage: dict[str, Any]) -> None:
        self.max_tool_calls = agent_config.max_tool_calls
        self.max_tokens = agent_config.max_tokens
        self.deadline_s = parse_duration(agent_config.deadline)
        self.deadline = time.monotonic() + self.deadline_s
        self.usage = usage
        self.tool_calls = 0

    def tokens(self) -> int:
        return self.usage["prompt_tokens"] + self.usage["completion_tokens"]

    def exhausted(self) -> str | None:
        if self.tokens() >= self.max_tokens:
            return f"tokens ({self.tokens()} of {self.max_tokens})"
        if time.monotonic() >= self.deadline:
            return f"deadline ({self.deadline_s:.0f}s)"
        return None


def system_prompt() -> str:
    return load_prompt("system").format(categories=", ".join(CATEGORIES), actions=", ".join(ACTIONS))


def incident_context(state: dict[str, Any], redact) -> str:
    """The incident for the model: trusted structure, with every data-derived string fenced."""
    diagnosis = state["diagnosis"]
    incident = diagnosis.get("incident", {})
    scope = state.get("scope", {})
    hypotheses = [{"rank": h["rank"], "category": h["category"], "component": h["component"],
                   "status": h["status"], "confidence": h["confidence"], "evidence": h["evidence"],
                   "statement": h["statement"]} for h in diagnosis.get("hypotheses", [])[:6]]
    ledger = [{"id": e["id"], "source": e["source"], "component": e.get("component"), "onset": e.get("onset"),
               "summary": e["summary"][:400], "query": e["query"][:300]} for e in state["ledger"].values()][:40]
    similar = [{"id": s["id"], "title": s["title"], "root_cause": s["root_cause"][:200],
                "mitigation": s["mitigation"][:200]} for s in diagnosis.get("similar_incidents", [])[:3]]
    parts = [
        f"Incident: service {incident.get('service') or 'not given'}, onset {incident.get('onset') or 'not found'}, "
        f"window {diagnosis.get('window', {}).get('start')}..{diagnosis.get('window', {}).get('end')}.",
        f"Services in scope: {', '.join(scope.get('services', [])[:30]) or 'unknown'}.",
        "The symptom as the responder wrote it:",
        fence("slack", redact(incident.get("title") or scope.get("symptom") or "")),
        "Deterministic hypotheses (ranked):",
        fence("analysis", redact(json.dumps(hypotheses, indent=None))),
        "Evidence ledger (ids you may cite):",
        fence("evidence", redact(json.dumps(ledger, indent=None))),
    ]
    if similar:
        parts += ["Similar past incidents:", fence("memory", redact(json.dumps(similar)))]
    return "\n".join(parts)


def run_model_loop(agent, client: ModelClient, state: dict[str, Any], *, task: str,
                   history: list[dict[str, Any]] | None = None) -> LoopOutcome:
    """The tool loop. ``task`` is the last user message (the final-answer instructions or a follow-up)."""
    usage = dict(state.get("usage") or {})
    for key, value in {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "tool_calls": 0, "limits": [],
                       "tool_output_raw_chars": 0, "tool_output_chars": 0, "prompt_tokens_if_raw": 0}.items():
        usage.setdefault(key, value if not isinstance(value, list) else [])
    usage["name"] = client.name
    ledger = dict(state["ledger"])
    redact = agent.redactor.redact
    budget = _Budget(agent.config.agent, usage)
    scope_dict = {k: v for k, v in state.get("scope", {}).items() if k != "known"}
    scope = IncidentScope(**{k: scope_dict[k] for k in ("symptom", "service", "start", "window_start", "end",
                                                       "services")})
    if state.get("request", {}).get("live"):
        scope.end = max(scope.end, agent.clock())
    toolbox = Toolbox(agent.config, scope, ledger, _run_sync, agent.redactor)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()},
                                      {"role": "user", "content": incident_context(state, redact)}]
    for message in (history or [])[-8:]:
        role = "assistant" if message["role"] == "assistant" else "user"
        content = message["text"] if role == "assistant" else fence("slack", redact(message["text"]))
        messages.append({"role": role, "content": content})
    messages.append({"role": "user", "content": task})
    tools = tool_specs() if client.tools_supported else None
    strikes = 0
    extra_raw_chars = 0
    status = "ok"
    final: dict[str, Any] | None = None

    def add_usage(result) -> None:
        usage["prompt_tokens"] += result.prompt_tokens
        usage["completion_tokens"] += result.completion_tokens
        usage["prompt_tokens_if_raw"] += result.prompt_tokens + extra_raw_chars // 4
        price = agent.config.model
        usage["cost_usd"] = round(usage["prompt_tokens"] / 1000 * price.prompt_price_per_1k
                                  + usage["completion_tokens"] / 1000 * price.completion_price_per_1k, 6)

    def run_tool(name: str, raw_arguments: Any) -> tuple[str, bool]:
        """The tool message's content and whether the call was malformed."""
        nonlocal extra_raw_chars
        resolved = resolve_tool_name(name)
        if resolved is None:
            return (f"error: there is no tool named {name!r}; the tools are "
                    f"{', '.join(spec['function']['name'] for spec in tool_specs())}. Nothing was run.", True)
        try:
            arguments = check_arguments(resolved, parse_arguments(raw_arguments))
        except ToolArgumentError as exc:
            return f"error: {exc}. Nothing was run; correct the call.", True
        budget.tool_calls += 1
        usage["tool_calls"] += 1
        try:
            result = toolbox.call(resolved, arguments)
        except ToolArgumentError as exc:
            return f"error: {exc}", False
        except SourceError as exc:
            return f"error: the source failed: {exc}", False
        except Exception as exc:  # noqa: BLE001 - one tool failing must not end the investigation
            return f"error: {resolved} failed: {type(exc).__name__}: {str(exc)[:200]}", False
        text = redact(result.text)
        usage["tool_output_raw_chars"] += result.raw_chars
        usage["tool_output_chars"] += len(text)
        extra_raw_chars += max(0, result.raw_chars - len(text))
        header = f"{resolved} answered."
        if result.evidence is not None:  # already redacted by the toolbox
            evidence_id = add_evidence(ledger, result.evidence)
            header = f"{resolved} answered; cite it as evidence {evidence_id}."
        return header + "\n" + fence(f"tool.{resolved}", text), False

    while True:
        limit = budget.exhausted()
        if limit:
            usage["limits"].append(limit)
            status = f"budget_exhausted: {limit}"
            break
        tools_now = tools if (tools and budget.tool_calls < budget.max_tool_calls) else None
        try:
            left = budget.max_tokens - budget.tokens()
            result = client.chat(messages, tools=tools_now, deadline=budget.deadline,
                                 max_tokens=max(256, min(4096, left)))
        except ModelUnavailable as exc:
            if time.monotonic() >= budget.deadline - 0.6:
                # The call was cut short by the investigation's deadline, not by the model.
                usage["limits"].append(f"deadline ({budget.deadline_s:.0f}s)")
                status = f"budget_exhausted: deadline ({budget.deadline_s:.0f}s)"
            else:
                status = f"unavailable: {exc}"
            break
        add_usage(result)
        if result.tool_calls and tools_now:
            messages.append({"role": "assistant", "content": result.content or None,
                             "tool_calls": [{"id": c["id"], "type": "function",
                                             "function": {"name": c["name"], "arguments": c["arguments"]}}
                                            for c in result.tool_calls]})
            malformed = False
            for call in result.tool_calls:
                if budget.tool_calls >= budget.max_tool_calls:
                    content = "error: the tool-call budget is used up; nothing was run. Answer now."
                else:
                    content, bad = run_tool(call["name"], call["arguments"])
                    malformed = malformed or bad
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
            if malformed:
                strikes += 1
                if strikes > 1:
                    status = "unavailable: the model's tool calls were malformed twice; the deterministic result stands"
                    break
            if budget.tool_calls >= budget.max_tool_calls:
                limit = f"tool calls ({budget.tool_calls} of {budget.max_tool_calls})"
                if limit not in usage["limits"]:
                    usage["limits"].append(limit)
                messages.append({"role": "user", "content": "The tool-call budget is used up. " + task})
            continue
        if result.tool_calls and not tools_now:
            # Tool calls after the budget (or from a model told it has no tools): not run.
            messages.append({"role": "assistant", "content": result.content or ""})
            messages.append({"role": "user", "content": "No more tools can be run. " + task})
            strikes += 1
            if strikes > 1:
                break
            continue
        parsed = parse_json_object(result.content)
        textual_call = _textual_tool_call(parsed)
        if textual_call and tools is not None and budget.tool_calls < budget.max_tool_calls:
            # A model without native tool calling wrote the call as JSON: run it (an obvious repair).
            messages.append({"role": "assistant", "content": result.content})
            content, bad = run_tool(*textual_call)
            messages.append({"role": "user", "content": f"Result of {textual_call[0]}:\n{content}\n\n{task}"})
            if bad:
                strikes += 1
                if strikes > 1:
                    status = "unavailable: the model's tool calls were malformed twice; the deterministic result stands"
                    break
            continue
        if parsed is None or textual_call:
            strikes += 1
            if strikes > 1:
                status = "unavailable: the model's answer was not the JSON asked for, twice; the deterministic result stands"
                break
            messages.append({"role": "assistant", "content": result.content or ""})
            messages.append({"role": "user", "content": "That was not the JSON object asked for. " + task})
            continue
        final = parsed
        break
    if usage["limits"] and status == "ok":
        status = f"budget_exhausted: {usage['limits'][0]}"
    if usage["tool_output_chars"]:
        usage["compaction_ratio"] = round(usage["tool_output_raw_chars"] / usage["tool_output_chars"], 2)
    usage["status"] = status
    return LoopOutcome(final, usage, ledger, status)


def _textual_tool_call(parsed: dict[str, Any] | None) -> tuple[str, Any] | None:
    if not parsed:
        return None
    name = parsed.get("tool") or parsed.get("tool_name") or (parsed.get("name") if "arguments" in parsed else None)
    if not isinstance(name, str):
        return None
    return name, parsed.get("arguments", parsed.get("args", {}))


def _run_sync(coro):
    from bot.agent import run_sync

    return run_sync(coro)


def merge_final(diagnosis: dict[str, Any], final: dict[str, Any] | None, ledger: dict[str, dict[str, Any]],
                redact) -> dict[str, Any]:
    """Fold the model's answer into the deterministic diagnosis, keeping only grounded claims.

    A model hypothesis that matches a ranked one (same category and component) may change its
    status to supported or refuted only with evidence ids that exist; a new one is appended below
    the ranked ones, and without valid evidence it is marked as a guess. Invalid ids are dropped
    and listed.
    """
    diagnosis = json.loads(json.dumps(diagnosis))
    diagnosis["evidence"] = list(ledger.values())
    if not final:
        return diagnosis
    dropped: list[str] = []
    hypotheses = diagnosis.get("hypotheses", [])
    for item in final.get("hypotheses") or []:
        if not isinstance(item, dict):
            continue
        category = str(item.get("category", "")).strip()
        component = str(item.get("component", "")).strip()
        if category not in CATEGORIES or not component:
            continue
        cited = [str(e) for e in item.get("evidence") or [] if isinstance(e, (str, int))]
        valid = [e for e in cited if e in ledger]
        dropped += [e for e in cited if e not in ledger]
        status = str(item.get("status", "proposed")).lower()
        status = status if status in _STATUSES else "proposed"
        statement = redact(str(item.get("statement", ""))[:500])
        match = next((h for h in hypotheses if h["category"] == category and h["component"] == component), None)
        if match is not None:
            if valid:
                match["evidence"] = list(dict.fromkeys(match["evidence"] + valid))
                if status in ("supported", "refuted"):
                    match["status"] = status
                match["model_statement"] = statement
            continue
        try:
            confidence = float(item.get("confidence", 0.0))
        except (TypeError, ValueError):
            confidence = 0.0
        entry = {"rank": len(hypotheses) + 1, "category": category, "component": component,
                 "statement": statement, "status": status if valid else "proposed",
                 "confidence": round(min(max(confidence, 0.0), 0.5 if valid else 0.2), 3),
                 "evidence": valid, "why_lower": "suggested by the model", "scope": {}, "source": "model"}
        if not valid:
            entry["guess"] = True
        hypotheses.append(entry)
    narrative = {
        "summary": redact(str(final.get("summary", ""))[:1500]),
        "open_questions": [redact(str(q))[:300] for q in (final.get("open_questions") or [])[:5]],
        "next_steps": [redact(str(s))[:300] for s in (final.get("next_steps") or [])[:5]],
    }
    if dropped:
        narrative["dropped_evidence_ids"] = sorted(set(dropped))
    diagnosis["narrative"] = narrative
    return diagnosis


def investigate_with_model(agent, client: ModelClient, state: dict[str, Any]) -> dict[str, Any]:
    """The reason node: the loop, then the merge; the deterministic diagnosis when anything fails."""
    outcome = run_model_loop(agent, client, state, task=load_prompt("final"))
    diagnosis = merge_final(state["diagnosis"], outcome.final, outcome.ledger, agent.redactor.redact)
    model = diagnosis.get("model", {})
    model.update({k: outcome.usage[k] for k in ("name", "status", "prompt_tokens", "completion_tokens", "cost_usd")})
    model.update({k: outcome.usage.get(k) for k in ("tool_calls", "limits", "tool_output_raw_chars",
                                                      "tool_output_chars", "compaction_ratio", "prompt_tokens_if_raw")})
    diagnosis["model"] = model
    return {"diagnosis": diagnosis, "ledger": outcome.ledger, "usage": outcome.usage}
