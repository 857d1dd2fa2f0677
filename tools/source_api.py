"""What an evidence source provides, and what it is given: the contract behind tools/sources.py.

A source (tools/metrics, tools/logs, tools/changes, tools/memory) is one package holding its typed
config, its backends, its gathering for the deterministic investigation, its model tools with typed
arguments, its compaction and its guidance for the model (``guidance.md`` beside its code). The
registry (tools/sources.py) lists them once; the investigation and the agent's toolbox only ever go
through it.

Nothing here knows Slack, LangGraph or the model client. Redaction is passed in as a function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from prompts import sections
from tools.diagnosis import SourceReport

ProgressFn = Callable[[str, SourceReport], None]  # hears about each source as it finishes


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


@dataclass
class GatherRequest:
    """One investigation's question to every source: what, where and when."""

    settings: Any  # the whole configuration (bot.config.SleuthConfig): each source reads its own section
    symptom: str
    service: str | None
    at: float  # the end of the window
    window_start: float
    baseline_s: float
    lookback_s: float  # how long before the window a change may be the cause
    redact: Callable[[str], str] = str  # secrets leave a log line before it is mined
    redaction_key: str = ""  # what ``redact`` depends on (cached redacted files are keyed by it)

    @property
    def baseline_start(self) -> float:
        return self.window_start - self.baseline_s


@dataclass
class Gathered:
    """What one source found: its report (status, reason, queries), the Observations fields it
    fills, and anything else the investigation uses (``extras``: e.g. the services it knows).

    A source fills it as it goes (``keep``): what a source finished before its deadline (one log
    backend of two) is used even when the rest of it is abandoned.
    """

    report: SourceReport = field(default_factory=lambda: SourceReport("error", "the source did not report"))
    observations: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def keep(self, observations: dict[str, Any] | None = None, **extras: Any) -> None:
        self.observations.update(observations or {})
        self.extras.update(extras)


@dataclass
class ToolContext:
    """What a model tool runs with: the configuration, the incident's scope and the means to run."""

    settings: Any
    scope: IncidentScope
    run: Callable[[Any], Any]  # runs a coroutine to completion from synchronous code
    cap_chars: int
    redact: Callable[[str], str] | None = None
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # the evidence so far, by id

    def service(self, name: str) -> str:
        """``name`` as one of the incident's services (a near miss corrected), or a refusal."""
        import difflib

        name = name.strip()
        known = self.scope.services
        if known and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                return close[0]
            raise ToolArgumentError(f"unknown service {name!r}; services in this incident: {', '.join(known[:20])}")
        return name


class ToolArguments(BaseModel):
    """Base of a tool's typed arguments: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ModelTool:
    """A read-only tool the model may call: its name, typed arguments and what runs it."""

    name: str
    arguments: type[ToolArguments]
    run: Callable[[ToolContext, Any], ToolResult]
    guidance: str


@dataclass(frozen=True)
class Source:
    """One evidence source, as the registry lists it."""

    name: str
    describe: Callable[[Any], str]  # e.g. "logs (Loki at http://...)" for a failure sentence
    configured: Callable[[Any], bool]
    gather: Callable[[GatherRequest, Gathered], Awaitable[SourceReport]]  # fills the Gathered, returns its report
    tools: tuple[ModelTool, ...] = ()


def read_guidance(package_file: str) -> dict[str, str]:
    """The ``## tool_name`` sections of the ``guidance.md`` beside a source's module."""
    return sections((Path(package_file).resolve().parent / "guidance.md").read_text(encoding="utf-8"))


def _json_type(annotation: Any) -> tuple[str, list[str] | None]:
    """The JSON type of an argument's annotation (``X | None`` is X), and its enum if a Literal."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and get_origin(annotation) is not Literal and len(args) == 1:
        annotation = args[0]
    if get_origin(annotation) is Literal:
        return "string", [str(a) for a in get_args(annotation)]
    return {int: "integer", str: "string", float: "number", bool: "boolean"}.get(annotation, "string"), None


def argument_schema(model: type[ToolArguments]) -> dict[str, Any]:
    """A tool's arguments as the plain JSON schema models are shown: type, description, enum."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        kind, enum = _json_type(info.annotation)
        prop: dict[str, Any] = {"type": kind}
        if info.description:
            prop["description"] = info.description
        if enum:
            prop["enum"] = enum
        properties[name] = prop
        if info.is_required():
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}
