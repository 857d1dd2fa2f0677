"""The shape of a diagnosis: evidence, hypotheses, mitigations and the result that carries them.

These dataclasses are the contract described in mission.md ("The shape of a diagnosis"). Keys may
be added, never renamed: the CLI's ``--json``, the Slack adapter and the evaluation all read them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tools.timeparse import iso  # noqa: F401 - the one formatter of times; most modules take it from here

SourceKind = Literal["metrics", "logs", "changes", "incidents", "runbooks"]
HypothesisStatus = Literal["proposed", "supported", "refuted"]


@dataclass
class Evidence:
    """One observation, with exactly the query that produced it."""

    id: str
    source: SourceKind
    query: str
    summary: str
    onset: str | None = None
    score: float = 0.0
    link: str | None = None
    component: str | None = None
    # Free-form facts the analysis keeps for charts and for the agent (JSON-plain only).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hypothesis:
    rank: int
    category: str
    component: str
    statement: str
    status: HypothesisStatus
    confidence: float
    evidence: list[str]
    # Why this hypothesis ranks below the one above it (empty for rank 1).
    why_lower: str = ""
    scope: dict[str, str] = field(default_factory=dict)


@dataclass
class Mitigation:
    action: str
    target: str
    rationale: str
    risk: str
    verify: str
    requires_approval: bool
    evidence: list[str]
    provenance: str = ""


@dataclass
class SimilarIncident:
    id: str
    title: str
    similarity: float
    root_cause: str
    mitigation: str
    why: str = ""


@dataclass
class SourceReport:
    """How one source fared: ``ok``, ``no_data``, ``not_configured`` or ``error`` with a reason."""

    status: Literal["ok", "no_data", "not_configured", "error"]
    reason: str = ""
    elapsed_ms: float = 0.0
    queries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    incident: dict[str, Any]
    window: dict[str, Any]
    evidence: list[Evidence] = field(default_factory=list)
    hypotheses: list[Hypothesis] = field(default_factory=list)
    mitigations: list[Mitigation] = field(default_factory=list)
    similar_incidents: list[SimilarIncident] = field(default_factory=list)
    sources: dict[str, SourceReport] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Plain sentences on what limited the investigation ("12 min of metric history: baseline
    # shortened to 6 min; ..."); empty when nothing did.
    limits: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(
        default_factory=lambda: {
            "name": None,
            "status": "not_configured",
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
        }
    )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = {name: report.to_dict() for name, report in self.sources.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Diagnosis":
        """The inverse of to_dict (extra keys, such as the agent's narrative, are dropped)."""

        def build(kind: type, item: dict[str, Any]) -> Any:
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: v for k, v in item.items() if k in names})

        return cls(
            incident=dict(data.get("incident", {})), window=dict(data.get("window", {})),
            evidence=[build(Evidence, e) for e in data.get("evidence", [])],
            hypotheses=[build(Hypothesis, h) for h in data.get("hypotheses", [])],
            mitigations=[build(Mitigation, m) for m in data.get("mitigations", [])],
            similar_incidents=[build(SimilarIncident, s) for s in data.get("similar_incidents", [])],
            sources={k: build(SourceReport, v) for k, v in data.get("sources", {}).items()},
            timings=dict(data.get("timings", {})), model=dict(data.get("model", {})),
            limits=[str(text) for text in data.get("limits") or []],
        )

    def evidence_by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}
