"""The model's tools: read-only queries over the incident's sources, bounded to the incident.

Each source's tools (tools/sources.py: ``query_metrics``, ``search_logs``, ``list_changes``,
``similar_incidents``) come with typed arguments (pydantic models) and guidance from their source's
package; the agent adds two of its own: ``check_service`` (the investigation again, focused on one
service) and ``get_evidence`` (one ledger entry in full), guided by prompts/tools.md.

A tool returns a :class:`ToolResult`: the raw output's size (for the compaction ratio), the
compacted text the model reads (capped), and one evidence entry for the ledger, whose summary is
computed by the tool, never written by the model. Nothing here writes anywhere; every output is
redacted before anyone reads it. The time range is the incident's, and the model's PromQL is
guarded (tools/metrics/guard.py).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Callable

from pydantic import ValidationError

from bot.config import SleuthConfig
from prompts import tool_guidance
from tools.compaction import cap, raw_chars
from tools.metrics.guard import check_promql
from tools.source_api import (IncidentScope, ModelTool, ToolArgumentError, ToolArguments, ToolContext, ToolResult,
                              argument_schema)
from tools.sources import source_tools

__all__ = ["IncidentScope", "ToolArgumentError", "ToolResult", "Toolbox", "add_evidence", "check_arguments",
           "check_promql", "parse_arguments", "resolve_tool_name", "tool_specs", "TOOL_NAMES"]


class CheckService(ToolArguments):
    service: str


class GetEvidence(ToolArguments):
    id: str


def check_service(ctx: ToolContext, args: CheckService) -> ToolResult:
    from bot.investigate import InvestigationRequest, run_investigation

    service = ctx.service(args.service)
    window = max(60.0, ctx.scope.end - ctx.scope.window_start)
    request = InvestigationRequest(symptom=ctx.scope.symptom, service=service, at=ctx.scope.end,
                                   window=f"{int(window)}s")
    result = ctx.run(run_investigation(request, ctx.settings))
    diagnosis = result.diagnosis.to_dict()
    top = [{"category": h["category"], "component": h["component"], "status": h["status"],
            "confidence": h["confidence"], "statement": h["statement"]} for h in diagnosis["hypotheses"][:3]]
    findings = [{"summary": e["summary"], "query": e["query"], "onset": e["onset"]}
                for e in diagnosis["evidence"][:8]]
    out = {"service": service, "onset": diagnosis["incident"].get("onset"), "hypotheses": top,
           "evidence": findings, "sources": {k: v["status"] for k, v in diagnosis["sources"].items()}}
    lead = top[0] if top else None
    summary = (f"focused on {service}: " + (f"top hypothesis {lead['category']} on {lead['component']} "
                                             f"({lead['confidence']:.2f})" if lead else "no hypothesis"))
    finding = "departed" if out["onset"] else "normal"
    return ToolResult("check_service", {"service": service}, cap(out, ctx.cap_chars), raw_chars(diagnosis),
                      {"source": "metrics", "query": f"investigation focused on {service}", "summary": summary,
                       "component": service, "details": {"compact": out, "finding": finding,
                                                         "components": [service]}})


def get_evidence(ctx: ToolContext, args: GetEvidence) -> ToolResult:
    entry = ctx.ledger.get(args.id.strip())
    if entry is None:
        raise ToolArgumentError(f"no evidence {args.id!r} in the ledger; ids: {', '.join(list(ctx.ledger)[:30])}")
    return ToolResult("get_evidence", {"id": args.id}, cap(entry, ctx.cap_chars), raw_chars(entry), None)


def _tools() -> dict[str, ModelTool]:
    """Every tool the model may call, in the order it is shown: the sources' and the agent's."""
    guidance = tool_guidance()
    return {**source_tools(),
            "check_service": ModelTool("check_service", CheckService, check_service, guidance["check_service"]),
            "get_evidence": ModelTool("get_evidence", GetEvidence, get_evidence, guidance["get_evidence"])}


TOOLS = _tools()
TOOL_NAMES = tuple(TOOLS)


def tool_specs() -> list[dict[str, Any]]:
    """The tools in the chat-completions ``tools`` format."""
    specs = []
    for name, tool in TOOLS.items():
        params = argument_schema(tool.arguments)
        params["additionalProperties"] = False
        specs.append({"type": "function", "function": {"name": name, "description": tool.guidance,
                                                       "parameters": params}})
    return specs


def resolve_tool_name(name: str) -> str | None:
    """The tool meant by ``name``: exact, case or separator slips repaired, else None."""
    if name in TOOLS:
        return name
    folded = re.sub(r"[^a-z]", "", (name or "").lower())
    for known in TOOLS:
        if folded == known.replace("_", ""):
            return known
    close = difflib.get_close_matches(name or "", list(TOOLS), n=1, cutoff=0.85)
    return close[0] if close else None


def check_arguments(name: str, arguments: Any) -> dict[str, Any]:
    """The model's arguments validated by the tool's typed model, or one sentence the model reads."""
    model = TOOLS[name].arguments
    if arguments is None or arguments == "":
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolArgumentError(f"{name} takes a JSON object of arguments, not {type(arguments).__name__}")
    schema = argument_schema(model)
    props = schema["properties"]
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolArgumentError(f"{name} has no argument {', '.join(unknown)}; its arguments are {', '.join(props)}")
    missing = [key for key in schema["required"] if arguments.get(key) in (None, "")]
    if missing:
        raise ToolArgumentError(f"{name} needs {', '.join(missing)}")
    try:
        typed = model.model_validate(arguments)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error.get("loc") else "?"
        prop = props.get(key, {})
        if "enum" in prop:
            raise ToolArgumentError(f"{name}: {key} must be one of {', '.join(prop['enum'])}") from None
        article = "an" if prop.get("type") == "integer" else "a"
        raise ToolArgumentError(f"{name}: {key} must be {article} {prop.get('type', 'value')}") from None
    return {key: getattr(typed, key) for key in arguments}


class Toolbox:
    """Runs the model's tools for one incident."""

    def __init__(self, config: SleuthConfig, scope: IncidentScope, ledger: dict[str, dict[str, Any]],
                 run: Callable[[Any], Any], redactor: Any = None) -> None:
        self.config = config
        self.redactor = redactor  # bot.safety.Redactor: outputs are redacted before anyone reads them
        self.scope = scope
        self.ledger = ledger
        self.context = ToolContext(config, scope, run, config.agent.tool_output_chars,
                                   redactor.redact if redactor is not None else None, ledger)

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        tool = TOOLS[name]
        result = tool.run(self.context, tool.arguments.model_validate(arguments))
        if self.redactor is not None:
            result.text = self.redactor.redact(result.text)
            if result.evidence is not None:
                result.evidence = self.redactor.redact_obj(result.evidence)
        return result


def add_evidence(ledger: dict[str, dict[str, Any]], evidence: dict[str, Any]) -> str:
    """Put a tool's evidence into the ledger under the next free id qN; returns the id."""
    number = 1 + max([int(k[1:]) for k in ledger if k.startswith("q") and k[1:].isdigit()] or [0])
    evidence_id = f"q{number}"
    ledger[evidence_id] = {"id": evidence_id, "score": 0.0, "onset": None, "link": None, "component": None,
                           **evidence}
    return evidence_id


def parse_arguments(raw: str | dict | None) -> Any:
    """Tool-call arguments as JSON, repairing obvious faults (fences, trailing commas, quotes)."""
    from bot.llm import parse_json_object

    if isinstance(raw, dict):
        return raw
    if raw is None or not str(raw).strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        repaired = parse_json_object(str(raw))
        if repaired is None:
            raise ToolArgumentError(f"the arguments are not valid JSON: {str(raw)[:120]!r}")
        return repaired
