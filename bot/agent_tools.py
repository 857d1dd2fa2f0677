"""The model's tools: read-only queries over the incident's sources, bounded to the incident.

Each tool has a JSON schema (shown to the model with the guidance in prompts/tools.md), checks its
arguments, runs against the configured sources and returns a :class:`ToolResult`: the raw output
(for the compaction ratio), the compacted text the model reads (capped), and one evidence entry
for the ledger, whose summary is computed here, never written by the model.

Nothing here writes anywhere. The time range is the incident's: from the baseline before the
window to the question's time (or now, while the incident is live); PromQL is parsed, and a query
that reaches outside it (``offset``, ``@``, ranges longer than the incident), selects everything or
names other services is refused with a reason the model reads. Metric answers carry Sleuth's own
finding (departed, normal, unclear, no_data), which claims are checked against (bot.grounding).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bot.compact import cap, compact_list, compact_logs, compact_series, raw_chars
from bot.config import SleuthConfig
from prompts import tool_guidance
from tools.diagnosis import iso
from tools.http import SourceError


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool: one sentence the model reads."""


@dataclass
class IncidentScope:
    """What a tool may look at: the incident's time range and services (JSON-plain)."""

    symptom: str
    service: str | None
    start: float  # baseline start
    window_start: float
    end: float
    services: list[str] = field(default_factory=list)

    @classmethod
    def from_state(cls, scope: dict[str, Any]) -> "IncidentScope":
        return cls(**scope)


@dataclass
class ToolResult:
    name: str
    arguments: dict[str, Any]
    text: str  # what the model reads (compacted, capped)
    raw_chars: int
    evidence: dict[str, Any] | None = None  # ledger entry, without its id


_SCHEMAS: dict[str, dict[str, Any]] = {
    "query_metrics": {
        "type": "object",
        "properties": {"promql": {"type": "string", "description": "a PromQL expression"}},
        "required": ["promql"],
    },
    "search_logs": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "text": {"type": "string", "description": "only lines containing this text"},
            "level": {"type": "string", "enum": ["debug", "info", "warn", "error", "fatal"]},
        },
        "required": ["service"],
    },
    "list_changes": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "minutes": {"type": "integer", "description": "only the last N minutes before the question's time"},
        },
        "required": [],
    },
    "check_service": {
        "type": "object",
        "properties": {"service": {"type": "string"}},
        "required": ["service"],
    },
    "similar_incidents": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
    "get_evidence": {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "required": ["id"],
    },
}

TOOL_NAMES = tuple(_SCHEMAS)


def tool_specs() -> list[dict[str, Any]]:
    """The tools in the chat-completions ``tools`` format."""
    guidance = tool_guidance()
    specs = []
    for name, schema in _SCHEMAS.items():
        params = dict(schema)
        params["additionalProperties"] = False
        specs.append({"type": "function", "function": {"name": name, "description": guidance.get(name, name),
                                                       "parameters": params}})
    return specs


def resolve_tool_name(name: str) -> str | None:
    """The tool meant by ``name``: exact, case or separator slips repaired, else None."""
    if name in _SCHEMAS:
        return name
    folded = re.sub(r"[^a-z]", "", (name or "").lower())
    for known in _SCHEMAS:
        if folded == known.replace("_", ""):
            return known
    close = difflib.get_close_matches(name or "", list(_SCHEMAS), n=1, cutoff=0.85)
    return close[0] if close else None


def check_arguments(name: str, arguments: Any) -> dict[str, Any]:
    """Validate arguments against the tool's schema (types, required, unknown keys)."""
    schema = _SCHEMAS[name]
    if arguments is None or arguments == "":
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolArgumentError(f"{name} takes a JSON object of arguments, not {type(arguments).__name__}")
    props = schema["properties"]
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolArgumentError(f"{name} has no argument {', '.join(unknown)}; its arguments are {', '.join(props)}")
    missing = [key for key in schema["required"] if arguments.get(key) in (None, "")]
    if missing:
        raise ToolArgumentError(f"{name} needs {', '.join(missing)}")
    clean: dict[str, Any] = {}
    for key, value in arguments.items():
        kind = props[key]["type"]
        if kind == "integer":
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())  # an obvious slip
            if not isinstance(value, int) or isinstance(value, bool):
                raise ToolArgumentError(f"{name}: {key} must be an integer")
        elif kind == "string":
            if not isinstance(value, str):
                raise ToolArgumentError(f"{name}: {key} must be a string")
            if "enum" in props[key]:
                value = value.lower().strip()
                if value == "warning":
                    value = "warn"
                if value not in props[key]["enum"]:
                    raise ToolArgumentError(f"{name}: {key} must be one of {', '.join(props[key]['enum'])}")
        clean[key] = value
    return clean


SERVICE_LABELS = ("service", "job", "app")  # labels whose values name the incident's services
_LITERAL_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def check_promql(promql: str, scope: IncidentScope) -> str:
    """Refuse PromQL that reaches outside the incident, selects everything or other services.

    The query is parsed (promql-parser, the grammar Prometheus uses), never pattern-matched, so
    spelling does not matter: no ``offset`` and no ``@`` modifier anywhere (any case, on selectors
    and subqueries); no range, compound ranges such as ``[1d1h]`` and nested subqueries included,
    reaching further back than the incident's own time range; every selector names its metric
    (``{__name__!=""}`` and ``{job=~".+"}`` select everything); and a service, job or app label
    may only name the incident's services, exactly or as an alternation of their names.
    """
    import promql_parser as pp

    text = promql.strip()
    if not text:
        raise ToolArgumentError("promql is empty")
    if len(text) > 2000:
        raise ToolArgumentError("promql is longer than 2000 characters; ask a narrower question")
    if "`" in text:
        raise ToolArgumentError("write label values in double quotes, not backticks")
    try:
        tree = pp.parse(text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the parser's Rust panics are not Exceptions
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ToolArgumentError(f"not valid PromQL ({first}); nothing was run") from None
    longest = max(0.0, scope.end - scope.start)
    services = set(scope.services or [])

    seen: list[str] = []

    def selector(node) -> None:
        seen.append(node.name or "")
        if node.offset is not None or node.at is not None:
            raise ToolArgumentError("offset and @ modifiers are not allowed: queries stay inside the incident's time range")
        groups = [list(node.matchers.matchers)] + [list(g) for g in node.matchers.or_matchers]
        for group in groups:
            named = bool(node.name) or any(m.name == "__name__" and m.op == pp.MatchOp.Equal and m.value
                                           for m in group)
            if not named:
                raise ToolArgumentError("a selector without a metric name matches everything and is not allowed; "
                                        "name a metric, e.g. http_error_ratio{service=\"checkout\"}")
            for m in group:
                if m.name == "__name__" and m.op != pp.MatchOp.Equal:
                    raise ToolArgumentError("the metric name must be given exactly, not by a pattern or a negation")
                if m.name in SERVICE_LABELS and services:
                    _check_service_matcher(pp, m, services)

    def reach(node) -> float:
        """How far before each evaluation time the node reads, in seconds."""
        kind = type(node).__name__
        if kind == "VectorSelector":
            selector(node)
            return 0.0
        if kind == "MatrixSelector":
            selector(node.vector_selector)
            return node.range.total_seconds()
        if kind == "SubqueryExpr":
            if node.offset is not None or node.at is not None:
                raise ToolArgumentError("offset and @ modifiers are not allowed: queries stay inside the incident's time range")
            return node.range.total_seconds() + reach(node.expr)
        if kind == "Call":
            return max([reach(arg) for arg in node.args] or [0.0])
        if kind == "AggregateExpr":
            return max(reach(node.expr), reach(node.param) if node.param is not None else 0.0)
        if kind == "BinaryExpr":
            return max(reach(node.lhs), reach(node.rhs))
        if kind in ("ParenExpr", "UnaryExpr"):
            return reach(node.expr)
        if kind in ("NumberLiteral", "StringLiteral"):
            return 0.0
        raise ToolArgumentError(f"PromQL with a {kind} is not allowed here")

    back = reach(tree)
    if back > longest:
        raise ToolArgumentError(f"the query reads {pp.display_duration(_timedelta(back))} back, longer than the "
                                f"incident's time range ({pp.display_duration(_timedelta(longest))}); use a shorter range")
    if not seen:
        raise ToolArgumentError("promql selects no metric")
    return text


def _timedelta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=int(seconds))


def _check_service_matcher(pp, matcher, services: set[str]) -> None:
    if matcher.op == pp.MatchOp.Equal:
        if matcher.value and matcher.value not in services:
            raise ToolArgumentError(f"{matcher.name}={matcher.value!r} is not a service of this incident; "
                                    f"its services: {', '.join(sorted(services)[:20])}")
        return
    if matcher.op == pp.MatchOp.Re:
        names = matcher.value.split("|")
        if all(_LITERAL_NAME.fullmatch(n) and n in services for n in names):
            return
        raise ToolArgumentError(f"{matcher.name}=~{matcher.value!r} may select services outside this incident; "
                                f"name them, e.g. {matcher.name}=~\"{'|'.join(sorted(services)[:2])}\"")
    raise ToolArgumentError(f"a negative {matcher.name} matcher selects services outside this incident; "
                            "name the services instead")


class Toolbox:
    """Runs the model's tools for one incident."""

    def __init__(self, config: SleuthConfig, scope: IncidentScope, ledger: dict[str, dict[str, Any]],
                 run: Callable[[Any], Any], redactor: Any = None) -> None:
        self.config = config
        self.redactor = redactor  # bot.safety.Redactor: outputs are redacted before anyone reads them
        self.scope = scope
        self.ledger = ledger
        self._run = run  # runs a coroutine to completion from synchronous code
        self.cap_chars = config.agent.tool_output_chars

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        method = getattr(self, f"_{name}")
        result = method(**arguments)
        if self.redactor is not None:
            result.text = self.redactor.redact(result.text)
            if result.evidence is not None:
                result.evidence = self.redactor.redact_obj(result.evidence)
        return result

    # --- tools ---------------------------------------------------------------------------------
    def _service(self, service: str) -> str:
        service = service.strip()
        known = self.scope.services
        if known and service not in known:
            close = difflib.get_close_matches(service, known, n=1, cutoff=0.6)
            if close:
                return close[0]
            raise ToolArgumentError(f"unknown service {service!r}; services in this incident: {', '.join(known[:20])}")
        return service

    def _query_metrics(self, promql: str) -> ToolResult:
        from tools.metric_types import rate_window, typed_query
        from tools.metrics import open_backend, parse_selector

        query = check_promql(promql, self.scope)
        backend = open_backend(self.config.metrics)
        if backend is None:
            raise SourceError("no metrics backend is configured")
        step = self.config.metrics.step_s
        note = ""

        async def fetch():
            nonlocal query, note
            try:
                matchers = parse_selector(query)
                if matchers:
                    # A counter or a histogram asked for as a plain selector is read by its type,
                    # as the investigation reads it: a raw counter only ever rises.
                    try:
                        declared = await backend.metadata()
                    except SourceError:
                        declared = {}
                    query, note = typed_query(query, matchers, declared, rate_window(step / 4, step))
                return await backend.query_range(query, self.scope.start, self.scope.end, step)
            finally:
                await backend.aclose()

        found = self._run(fetch())
        raw = [{"labels": s.labels, "values": [[float(t), float(v)] for t, v in zip(s.timestamps, s.values)]}
               for s in found]
        compact = compact_series(raw, window_start=self.scope.window_start, cap_chars=self.cap_chars)
        if not raw:
            summary = f"{query}: no series in {iso(self.scope.start)}..{iso(self.scope.end)}"
        else:
            summary = f"{query}: {len(raw)} series; " + _series_headline(compact)
        if note:
            summary = f"{summary} ({note})"
            compact = {"note": note, **compact} if isinstance(compact, dict) else compact
        link = backend.link(query, self.scope.start, self.scope.end)
        finding = series_finding(compact, raw)
        components = sorted({str(s["labels"].get(label)) for s in raw for label in SERVICE_LABELS
                             if s["labels"].get(label) in (self.scope.services or [])})
        summary = f"{summary} [{finding}]"
        return ToolResult("query_metrics", {"promql": query}, cap(compact, self.cap_chars), raw_chars(raw),
                          {"source": "metrics", "query": query, "summary": summary, "link": link,
                           "component": components[0] if len(components) == 1 else None,
                           "details": {"compact": compact, "finding": finding, "components": components}})

    def _search_logs(self, service: str, text: str | None = None, level: str | None = None) -> ToolResult:
        from tools.logs import LokiClient, build_logql, read_files

        service = self._service(service)
        logs = self.config.logs
        if not logs.configured:
            raise SourceError("no log source is configured")
        records: list[dict[str, Any]] = []
        queries: list[str] = []
        levels = _levels_at_least(level) if level else []
        if logs.files:
            def read() -> None:
                for record in read_files(logs.files, {service}, self.scope.start, self.scope.end, logs.max_lines):
                    if text and text.lower() not in record.message.lower():
                        continue
                    if levels and record.level not in levels:
                        continue
                    records.append({"ts": record.ts, "level": record.level, "message": record.message})

            read()
            queries.append(f"{', '.join(str(p) for p in logs.files)} where service={service}"
                           + (f" and message contains {text!r}" if text else "")
                           + (f" and level>={level}" if level else ""))
        if logs.loki:
            client = LokiClient(logs.loki)
            query = build_logql(service, service_label=logs.loki.service_label, levels=levels, text=text,
                                json_lines=logs.loki.json_lines)
            queries.append(query)

            async def fetch():
                try:
                    return await client.query_range(query, self.scope.start, self.scope.end)
                finally:
                    await client.aclose()

            for record in self._run(fetch()):
                records.append({"ts": record.ts, "level": record.level, "message": record.message})
        if self.redactor is not None:  # before mining: a template's masks would hide a secret from redaction
            for record in records:
                record["message"] = self.redactor.redact(record["message"])
        compact = compact_logs(records, cap_chars=self.cap_chars)
        where = f"{iso(self.scope.start)}..{iso(self.scope.end)}"
        summary = f"{len(records)} {service} log lines{' matching ' + repr(text) if text else ''} in {where}"
        return ToolResult("search_logs", {"service": service, "text": text, "level": level},
                          cap(compact, self.cap_chars), raw_chars(records),
                          {"source": "logs", "query": "; ".join(queries) + f" in {where}", "summary": summary,
                           "component": service, "details": {"compact": compact}})

    def _list_changes(self, service: str | None = None, minutes: int | None = None) -> ToolResult:
        from tools.changes import gather_changes

        if service:
            service = self._service(service)
        if not self.config.changes.configured:
            raise SourceError("no change feed is configured")
        start = self.scope.start
        if minutes is not None:
            if minutes <= 0:
                raise ToolArgumentError("minutes must be positive")
            start = max(self.scope.start, self.scope.end - minutes * 60)
        changes, failures = self._run(gather_changes(self.config.changes, start, self.scope.end))
        items = [{"id": c.id, "time": iso(c.ts), "service": c.service, "kind": c.kind, "summary": c.summary,
                  "version": c.version, "previous_version": c.previous_version, "author": c.author}
                 for c in sorted(changes, key=lambda c: c.ts, reverse=True) if not service or c.service == service]
        compact = compact_list(items, k=20, cap_chars=self.cap_chars)
        if failures:
            compact["failures"] = failures
        query = f"changes {iso(start)}..{iso(self.scope.end)}" + (f" for {service}" if service else "")
        summary = f"{len(items)} changes" + (f" to {service}" if service else "") + f" in {iso(start)}..{iso(self.scope.end)}"
        changed: dict[str, list[str]] = {}
        for item in items:
            changed.setdefault(item["service"], [])
            if item["kind"] not in changed[item["service"]]:
                changed[item["service"]].append(item["kind"])
        # What the listing covers, for checking a claim against it: a service it covers and that is
        # absent from ``changed`` had no change in the span (only when no feed failed).
        covered = ([service] if service else list(self.scope.services)) if not failures else []
        return ToolResult("list_changes", {"service": service, "minutes": minutes}, cap(compact, self.cap_chars),
                          raw_chars(items), {"source": "changes", "query": query, "summary": summary,
                                             "component": service,
                                             "details": {"compact": compact, "changed": changed, "covered": covered,
                                                         "span": [iso(start), iso(self.scope.end)]}})

    def _check_service(self, service: str) -> ToolResult:
        from bot.investigate import InvestigationRequest, run_investigation

        service = self._service(service)
        window = max(60.0, self.scope.end - self.scope.window_start)
        request = InvestigationRequest(symptom=self.scope.symptom, service=service, at=self.scope.end,
                                       window=f"{int(window)}s")
        result = self._run(run_investigation(request, self.config))
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
        return ToolResult("check_service", {"service": service}, cap(out, self.cap_chars), raw_chars(diagnosis),
                          {"source": "metrics", "query": f"investigation focused on {service}", "summary": summary,
                           "component": service, "details": {"compact": out, "finding": finding,
                                                             "components": [service]}})

    def _similar_incidents(self, text: str) -> ToolResult:
        from index.store import Memory

        if self.config.memory is None:
            raise SourceError("no past-incident memory is configured")
        found = Memory(self.config.memory).find_similar_incidents(text[:2000], k=5)
        items = [{"id": r.id, "title": r.title, "similarity": round(r.similarity, 3), "category": r.category,
                  "mitigations": r.mitigations, "root_cause": r.root_cause[:300], "why": r.why} for r in found]
        compact = compact_list(items, k=5, cap_chars=self.cap_chars)
        summary = f"{len(items)} similar past incidents" + (f", closest {items[0]['id']} ({items[0]['category']})"
                                                            if items else "")
        return ToolResult("similar_incidents", {"text": text}, cap(compact, self.cap_chars), raw_chars(items),
                          {"source": "incidents", "query": f"similar incidents to {text[:200]!r}",
                           "summary": summary, "details": {"compact": compact}})

    def _get_evidence(self, id: str) -> ToolResult:  # noqa: A002 - the tool's argument name
        entry = self.ledger.get(id.strip())
        if entry is None:
            raise ToolArgumentError(f"no evidence {id!r} in the ledger; ids: {', '.join(list(self.ledger)[:30])}")
        return ToolResult("get_evidence", {"id": id}, cap(entry, self.cap_chars), raw_chars(entry), None)


def add_evidence(ledger: dict[str, dict[str, Any]], evidence: dict[str, Any]) -> str:
    """Put a tool's evidence into the ledger under the next free id qN; returns the id."""
    number = 1 + max([int(k[1:]) for k in ledger if k.startswith("q") and k[1:].isdigit()] or [0])
    evidence_id = f"q{number}"
    ledger[evidence_id] = {"id": evidence_id, "score": 0.0, "onset": None, "link": None, "component": None,
                           **evidence}
    return evidence_id


_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _levels_at_least(level: str) -> list[str]:
    return list(_LEVELS[_LEVELS.index(level):]) if level in _LEVELS else []


DEPARTED_Z = 6.0  # a series this far (smoothed robust z) from its baseline departed
NORMAL_Z = 3.0  # every series this close stayed normal


def series_finding(compact: dict[str, Any], raw: list[dict[str, Any]]) -> str:
    """What a query's answer shows, computed by Sleuth: departed, normal, unclear or no_data."""
    if not raw or not any(s["values"] for s in raw):
        return "no_data"
    items = compact.get("series") or []
    scores = [float(item.get("departure") or 0.0) for item in items if item.get("n")]
    if not scores or any("departure" not in item for item in items if item.get("n")):
        return "unclear"  # no baseline to compare against
    if max(scores) >= DEPARTED_Z:
        return "departed"
    if max(scores) <= NORMAL_Z:  # series are ranked by departure: those left out departed less
        return "normal"
    return "unclear"


def _series_headline(compact: dict[str, Any]) -> str:
    """One line from a compacted series answer: the most departed series and its ratio."""
    items = compact.get("series") or []
    if not items:
        return "no data"
    first = items[0]
    labels = first.get("labels") or {}
    name = labels.get("__name__", "")
    who = ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")[:80]
    ratio = first.get("ratio")
    window_mean = first.get("window_mean")
    baseline = first.get("baseline_mean")
    parts = [f"{name}{{{who}}}" if who else name or "series"]
    if baseline is not None and window_mean is not None:
        parts.append(f"window mean {window_mean:.4g} vs baseline {baseline:.4g}")
    if ratio is not None:
        parts.append(f"ratio {ratio:.3g}")
    return ", ".join(parts)


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
