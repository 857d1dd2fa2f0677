"""The agent's LangGraph graph: the nodes, as functions of the state and the runtime context.

::

    START -> intake -> investigate -> reason -> propose -> respond -> await_human
                          |                                            ^    |
                          +---- failed (the error is the turn) --------+    |
                                                                            |
    await_human, by what the human sent:  investigate -> intake
                                          message     -> follow_up -> await_human
                                          decision    -> decide    -> await_human
                                          stop        -> END

Every node takes ``(state, runtime)``; what it needs besides the state (the configuration, the
redactor, the clock, the model client, the progress callback, the chart drawer) is
``runtime.context``, a :class:`bot.context.AgentContext` that :class:`bot.agent.Agent` passes with
each call and that is never checkpointed. The node names and the state's keys are what existing
checkpoints hold: they are never renamed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, cast

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from bot.context import AgentContext
from bot.phrases import mentioned_services, parse_span, parse_time_phrase, says_vague_time
from bot.turns import AgentState, Turn, empty_usage, run_sync
from tools.diagnosis import iso


def build_graph(checkpointer: Any):
    """The conversation graph, compiled with ``checkpointer``; invoke it with ``context=AgentContext(...)``."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("intake", intake)
    graph.add_node("investigate", investigate)
    graph.add_node("reason", reason)
    graph.add_node("propose", propose)
    graph.add_node("respond", respond)
    graph.add_node("await_human", await_human)
    graph.add_node("follow_up", follow_up)
    graph.add_node("decide", decide)
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "investigate")
    graph.add_conditional_edges("investigate", after_investigate, {"reason": "reason", "failed": "await_human"})
    graph.add_edge("reason", "propose")
    graph.add_edge("propose", "respond")
    graph.add_edge("respond", "await_human")
    graph.add_conditional_edges("await_human", after_await_human,
                                {"investigate": "intake", "message": "follow_up", "decision": "decide", "stop": END})
    graph.add_edge("follow_up", "await_human")
    graph.add_edge("decide", "await_human")
    return graph.compile(checkpointer=checkpointer)


def after_investigate(state: AgentState) -> str:
    """reason, or failed (the request could not be investigated: its error is the turn)."""
    return state.get("route", "reason")


def after_await_human(state: AgentState) -> str:
    """What the human sent: investigate, message, decision or stop."""
    return state["event"]["type"]


# --- intake -----------------------------------------------------------------------------------------
def intake(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Parse the request; ask one clarifying question (an interrupt) only when the service or the
    time is really ambiguous."""
    ctx = runtime.context
    event = state["event"]
    # What people write is redacted before it is stored, searched or shown to a model.
    text = ctx.redactor.redact((event.get("text") or "").strip())
    now = event.get("received") or ctx.clock()
    request = {"symptom": text, "service": event.get("service"), "window": event.get("window"),
               "at": event.get("at"), "live": event.get("at") is None, "started": now}
    interactive = event.get("clarify", True)
    # A script's request is taken as given (the same as the core's); a person's is read for a
    # service and a time, against the services the metrics know.
    known = known_services(ctx, request) if interactive and request["service"] is None else sorted(ctx.config.services)
    if interactive and request["service"] is None and text:
        named = mentioned_services(text, known)
        if len(named) == 1:
            request["service"] = named[0]
    if interactive and request["at"] is None and text:
        when = parse_time_phrase(text, now)
        if when is not None:
            span = now - when
            if request["window"] is None and span > 0:
                request["window"] = f"{int(max(span * 1.5, 1800))}s"  # the onset lies inside the window
    if interactive and request["window"] is None and text:
        span = parse_span(text)
        if span:
            request["window"] = f"{int(span)}s"
    question = clarifying_question(request, known, ctx.clock) if interactive else None
    if question:
        answer = interrupt({"kind": "question", "text": question})
        reply = (answer.get("text") or "").strip() if isinstance(answer, dict) else str(answer)
        reply = ctx.redactor.redact(reply)
        named = mentioned_services(reply, known)
        if named:
            request["service"] = named[0]
        when = parse_time_phrase(reply, now)
        if when is not None and request["window"] is None:
            request["window"] = f"{int(max((now - when) * 1.5, 1800))}s"
        request["clarified"] = reply
    messages = list(state.get("messages") or [])
    messages.append({"role": "user", "text": text, "at": iso(now)})
    return {"request": request, "messages": messages, "usage": empty_usage(ctx.config.model.model, "not_configured"),
            "scope": {"known": known}}


def clarifying_question(request: dict[str, Any], known: list[str], clock: Callable[[], float]) -> str | None:
    """One question, only when the service or the time is really ambiguous."""
    text = request["symptom"]
    if request["service"] is None:
        named = mentioned_services(text, known)
        if len(named) >= 2:
            return (f"Which service do users see failing: {', '.join(named[:-1])} or {named[-1]}? "
                    "(or say 'all')")
    if request["at"] is None and parse_time_phrase(text, clock()) is None and says_vague_time(text):
        return "When did it start? Say a time like 'at 14:05 UTC' or '40 minutes ago'."
    return None


def known_services(ctx: AgentContext, request: dict[str, Any]) -> list[str]:
    """Service names for intake and the tools: the config's, and what the metrics discover."""
    from tools.metrics import DISCOVERY_LABELS, open_backend

    names = set(ctx.config.services)
    for svc in ctx.config.services.values():
        names.update(svc.depends_on)
    backend = open_backend(ctx.config.metrics)
    if backend is not None:
        at = request.get("at") or ctx.clock()

        async def discover() -> list[str]:
            try:
                found: list[str] = []
                for label in DISCOVERY_LABELS[:3]:
                    found += await asyncio.wait_for(backend.label_values(label, at - 2 * 86400, at), 5)
                return found
            except Exception:  # noqa: BLE001 - discovery is a convenience; the investigation reports failures
                return []
            finally:
                await backend.aclose()

        names.update(run_sync(discover()))
    return sorted(n for n in names if n)


# --- investigate --------------------------------------------------------------------------------------
def investigate(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The deterministic investigation (all sources and similar incidents in parallel, then the
    ranking); it fills the evidence ledger."""
    from bot.investigate import InvestigationRequest, RequestError, run_investigation

    ctx = runtime.context
    request = state["request"]
    inv_request = InvestigationRequest(symptom=request["symptom"], service=request["service"],
                                       at=request["at"], window=request["window"])
    try:
        result = run_sync(run_investigation(inv_request, ctx.config, on_progress=ctx.progress))
    except RequestError as exc:
        turn = Turn(state["thread_id"], "error", str(exc))
        return {"route": "failed", "turn": turn.to_dict(), "diagnosis": None}
    diagnosis = ctx.redactor.redact_obj(result.diagnosis.to_dict())
    charts: list[str] = []
    if ctx.charts is not None:
        charts = ctx.charts.draw(state["thread_id"], result, diagnosis)
    ledger = {e["id"]: e for e in diagnosis["evidence"]}
    obs = result.observations
    known = sorted(set(state.get("scope", {}).get("known", [])) | set(obs.series) |
                   {t.service for t in obs.templates} | {c.service for c in obs.changes})
    at = obs.at
    scope = {"symptom": request["symptom"], "service": request["service"],
             "start": obs.window_start - obs.baseline_s, "window_start": obs.window_start, "end": at,
             "services": known, "known": known}
    return {"route": "reason", "diagnosis": diagnosis, "ledger": ledger, "charts": charts, "scope": scope,
            "pending": [], "usage": empty_usage(ctx.config.model.model, "not_configured")}


# --- reason: the model's tool loop -------------------------------------------------------------------
def reason(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """With a model configured, its tool loop and the grounded merge (bot.reasoning); without one, nothing."""
    ctx = runtime.context
    client = ctx.model_client()
    if client is None:
        return {}
    from bot.reasoning import investigate_with_model

    return investigate_with_model(ctx, client, cast(dict[str, Any], state))


# --- propose, respond ------------------------------------------------------------------------------------
def propose(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The mitigations that require approval become pending approvals (fix1, fix2, ...)."""
    diagnosis = state["diagnosis"] or {}
    pending = []
    for number, mitigation in enumerate(diagnosis.get("mitigations", []), start=1):
        entry = dict(mitigation)
        entry["id"] = f"fix{number}"
        mitigation["id"] = entry["id"]
        if mitigation.get("requires_approval"):
            pending.append(entry)
    return {"pending": pending, "diagnosis": diagnosis}


def respond(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The diagnosis as the turn to show."""
    from bot.narrate import describe_diagnosis

    ctx = runtime.context
    diagnosis = state["diagnosis"] or {}
    text = ctx.redactor.redact(describe_diagnosis(diagnosis, state.get("pending", [])))
    messages = list(state.get("messages") or []) + [{"role": "assistant", "text": text, "at": iso(ctx.clock())}]
    turn = Turn(state["thread_id"], "diagnosis", text, diagnosis=diagnosis, pending=state.get("pending", []),
                decisions=state.get("decisions", []), charts=state.get("charts", []),
                model=diagnosis.get("model", {}))
    return {"turn": turn.to_dict(), "messages": messages}


# --- the conversation ------------------------------------------------------------------------------------
def await_human(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Interrupt until a human writes (a follow-up) or decides (approve/reject). Nothing the data
    says can reach decide: only :meth:`bot.agent.Agent.decide` resumes with a decision."""
    event = interrupt({"kind": "await"})
    if not isinstance(event, dict) or event.get("type") not in ("investigate", "message", "decision", "stop"):
        event = {"type": "message", "text": str(event)}
    return {"event": event}


def follow_up(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A message in the thread, answered from its state with fresh queries (bot.followup)."""
    from bot.followup import answer_follow_up

    return answer_follow_up(runtime.context, cast(dict[str, Any], state))


def decide(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A human's approval or rejection of a pending mitigation, recorded (never executed)."""
    ctx = runtime.context
    event = state["event"]
    pending = [p for p in state.get("pending", []) if p["id"] != event["id"]]
    chosen = next((p for p in state.get("pending", []) if p["id"] == event["id"]), None)
    decisions = list(state.get("decisions") or [])
    if chosen is None:  # decided concurrently; Agent.decide checks first, so this is a race
        turn = Turn(state["thread_id"], "error", f"no pending mitigation {event['id']}",
                    pending=pending, decisions=decisions)
        return {"turn": turn.to_dict()}
    when = event.get("received") or ctx.clock()
    decision = {"id": chosen["id"], "approved": event["approved"], "by": event["by"], "at": iso(when),
                "ts": when, "reason": ctx.redactor.redact(event.get("reason", "")), "action": chosen["action"],
                "target": chosen["target"], "verify": chosen.get("verify", "")}
    decisions.append(decision)
    what = f"{chosen['action']} {chosen['target']}".strip()
    if event["approved"]:
        text = (f"{event['by']} approved {chosen['id']}: {what}. Sleuth does not execute it; whoever runs it, "
                f"verify: {chosen.get('verify') or 'watch the symptom signal return to its baseline'}. "
                "Tell me when it is done (\"we rolled back, is it recovering?\") and I will compare.")
    else:
        text = f"{event['by']} rejected {chosen['id']}: {what}." + (
            f" Reason: {decision['reason']}." if decision["reason"] else "")
    messages = list(state.get("messages") or []) + [{"role": "assistant", "text": text, "at": iso(when)}]
    turn = Turn(state["thread_id"], "decision", text, diagnosis=state.get("diagnosis"), pending=pending,
                decisions=decisions, charts=state.get("charts", []),
                model=(state.get("diagnosis") or {}).get("model", {}))
    return {"pending": pending, "decisions": decisions, "turn": turn.to_dict(), "messages": messages}
