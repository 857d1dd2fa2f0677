"""The record types: IncidentRecord and RunbookRecord, the texts an incident is embedded as, its timestamp."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from tools.timeparse import parse_iso

# Section headings -> the record field they fill (lower-cased, compared by prefix).
SECTION_FIELDS = {
    "summary": "summary",
    "overview": "summary",
    "what happened": "summary",
    "description": "summary",
    "impact": "impact",
    "customer impact": "impact",
    "root cause": "root_cause_text",
    "root-cause": "root_cause_text",
    "cause": "root_cause_text",
    "rca": "root_cause_text",
    "mitigation": "mitigation_text",
    "mitigations": "mitigation_text",
    "resolution": "mitigation_text",
    "remediation": "mitigation_text",
    "fix": "mitigation_text",
}


# --- the record --------------------------------------------------------------------------------


@dataclass


class IncidentRecord:
    """One past incident, in the project's vocabulary (taxonomy category and action ids)."""

    id: str
    title: str
    summary: str = ""
    services: list[str] = field(default_factory=list)
    date: str | None = None  # ISO-8601: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    severity: str | None = None
    category: str | None = None  # primary taxonomy category (None: not labelled)
    categories: list[str] = field(default_factory=list)  # every category the labels map to
    mitigations: list[str] = field(default_factory=list)  # taxonomy action ids
    mitigation_text: str = ""
    root_cause_text: str = ""
    impact: str = ""
    symptoms: list[str] = field(default_factory=list)
    operation: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    sections: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category and self.category not in self.categories:
            self.categories = [self.category, *self.categories]
        if not self.category and self.categories:
            self.category = self.categories[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IncidentRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def content_hash(self) -> str:
        """A stable hash of the content (the source path excluded: moving a file changes nothing)."""
        # The fields as to_dict() gives them (plain values), without its deep copy.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "source"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def timestamp(self) -> float | None:
        """The date as Unix seconds (UTC), or None."""
        return parse_iso(self.date)

    def tag_tokens(self) -> str:
        """Structured values as whole tokens (svc_azure_sql_database, sym_availability, op_deployment)."""
        out = []
        for prefix, values in (("svc_", self.services), ("sym_", self.symptoms), ("op_", self.operation)):
            for value in values:
                token = re.sub(r"\W+", "_", str(value).strip().lower()).strip("_")
                if token:
                    out.append(prefix + token)
        return " ".join(out)

    def early_text(self) -> str:
        """What a responder knows early: title, summary, services, impact symptoms, operation in progress.

        Never the details, the impact narrative, the cause, the fix or a label.
        """
        parts = [self.title, self.summary, ", ".join(self.services), ", ".join(self.symptoms),
                 ", ".join(self.operation), self.tag_tokens()]
        return " . ".join(p for p in parts if p)

    def full_text(self, strict: bool = False) -> str:
        """The whole record except its labels (categories, mitigation action ids, label tags).

        ``strict`` also leaves out the root-cause and mitigation free text.
        """
        parts = [self.early_text(), self.impact]
        used = {self.title, self.summary, self.impact, self.root_cause_text, self.mitigation_text}
        for heading, body in self.sections.items():
            key = heading.strip().lower()
            target = SECTION_FIELDS.get(key) or next((f for h, f in SECTION_FIELDS.items() if key.startswith(h)), None)
            if not body or body in used:
                continue
            if strict and (target in ("root_cause_text", "mitigation_text") or key.startswith("troubleshooting")):
                continue
            parts.append(body)
        if not strict:
            parts += [self.root_cause_text, self.mitigation_text]
        tags = [t for t in self.tags if not t.startswith("mitigation:") and t != "human-error"]
        if tags:
            parts.append(", ".join(tags))
        return " . ".join(p for p in parts if p)


@dataclass


class RunbookRecord:
    """One runbook: what to check, measure, triage, remediate and verify for a failure mode."""

    id: str
    title: str
    categories: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def content_hash(self) -> str:
        data = self.to_dict()
        data.pop("source", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


