"""What the memory answers: ingest summaries, similar incidents, suggestions and runbooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass


class IngestSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record id or file, why)

    def merge(self, other: "IngestSummary") -> "IngestSummary":
        self.added += other.added
        self.updated += other.updated
        self.skipped += other.skipped
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "updated": self.updated,
                "skipped": [{"id": i, "reason": r} for i, r in self.skipped]}


@dataclass


class SimilarResult:
    """One past incident close to the question, and why it matched."""

    id: str
    title: str
    similarity: float  # vector similarity of the best-matching part (cosine, 0..1)
    score: float  # similarity + keyword overlap + recency: the ranking key
    category: str | None
    categories: list[str]
    mitigations: list[str]
    root_cause: str
    mitigation: str
    services: list[str]
    date: str | None
    matched_part: str
    why: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_similar_incident(self):
        """The shape a diagnosis carries (tools.diagnosis.SimilarIncident)."""
        from tools.diagnosis import SimilarIncident

        root = self.category or "unknown"
        if self.root_cause:
            root = f"{root}: {_clip(self.root_cause, 200)}"
        fix = ", ".join(self.mitigations)
        if self.mitigation:
            fix = f"{fix}: {_clip(self.mitigation, 200)}" if fix else _clip(self.mitigation, 200)
        return SimilarIncident(id=self.id, title=self.title, similarity=round(self.score, 3), root_cause=root,
                               mitigation=fix, why=self.why)


@dataclass


class MitigationSuggestion:
    action: str
    weight: float
    worked_in: list[str]

    @property
    def provenance(self) -> str:
        return "worked in " + ", ".join(self.worked_in)


@dataclass


class Suggestion:
    """A root-cause category with a confidence, and the fixes that worked in the neighbours.

    ``basis``: ``category head`` (the ridge head over all labelled records, once there are enough)
    or ``neighbour vote`` (the neighbours' similarity-weighted vote).
    """

    category: str | None
    confidence: float
    votes: dict[str, float]
    mitigations: list[MitigationSuggestion]
    neighbours: list[str]
    basis: str = "neighbour vote"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for item, m in zip(data["mitigations"], self.mitigations):
            item["provenance"] = m.provenance
        return data


@dataclass


class RunbookResult:
    id: str
    title: str
    similarity: float
    categories: list[str]
    matched_part: str
    why: str
    source: str = ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
