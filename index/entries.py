"""How incidents and runbooks are laid out as Chroma entries: collection names, parts, metadata, keywords."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from index.schema import IncidentRecord

INCIDENTS = "incidents"
RUNBOOKS = "runbooks"
# The one Chroma entry of an incident record: the whole record except its labels.
INCIDENT_PART = "full"
# Stored incident parts whose vectors feed a category head. ``full`` feeds the full head (its early text,
# re-embedded, the early head); ``summary`` is the early-text entry of the earlier two-part layout.
HEAD_PARTS = {"summary": "early", "full": "full"}
# Incident entries keep the metadata keys that search filters on as keys, and the rest as one JSON
# string: each key is a row and an index entry in Chroma's SQLite, a large share of the write time.
_FILTERED = ("record_id", "part", "ts", "service_keys")
_PACKED = "info"


# --- keywords: what must match literally -------------------------------------------------------

_ERROR_CODE = re.compile(
    r"\b(?:[a-z]+[-_]?\d+[a-z0-9]*|\d{3}|0x[0-9a-f]+|[a-z]+(?:exception|error|timeout|fault))\b", re.I)
_COMPOUND = re.compile(r"\b[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+\b", re.I)
_CAMEL = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,7}\b")
_NOT_KEYWORDS = {"utc", "us", "the", "and", "for", "api", "http", "https", "sev1", "sev2", "sev3", "rca", "i/o"}


_PREFIXED_CODE = re.compile(r"\b(xid|errno|error|err|code|status|exit|signal|ora|sqlstate)\s*[-:#=]?\s*(\d{1,5})\b", re.I)
_HTTP_CODE = re.compile(r"\b([1-5](?:\d\d|xx))s?\b", re.I)


def keywords(text: str, services: Iterable[str] = ()) -> set[str]:
    """Service and component names, error codes and identifiers: the words that must match literally."""
    found: set[str] = {s.strip().lower() for s in services if s and s.strip()}
    for pattern in (_ERROR_CODE, _COMPOUND, _CAMEL):
        found.update(m.group(0).lower() for m in pattern.finditer(text))
    found.update(f"{m.group(1).lower()}-{m.group(2)}" for m in _PREFIXED_CODE.finditer(text))
    found.update(m.group(1).lower() for m in _HTTP_CODE.finditer(text))
    found.update(m.group(0).lower() for m in _ACRONYM.finditer(text))
    return {k for k in found if k not in _NOT_KEYWORDS and len(k) >= 2 and not re.fullmatch(r"(19|20)\d\d", k)}


# --- an incident's entry ---------------------------------------------------------------------


def incident_parts(record: IncidentRecord) -> list[tuple[str, str]]:
    """One part, ``full``: the whole record except its labels (the only vector stored per incident)."""
    return [(INCIDENT_PART, record.full_text())]


def incident_metadata(record: IncidentRecord, digest: str, now: float, full_text: str | None = None) -> dict[str, Any]:
    """The entry's metadata; the early text (what a responder knows early) is kept as ``early_len``,
    the length of the prefix of the full text it is (``early_text`` itself should it ever not be one)."""
    text = " ".join([record.title, record.summary, record.impact, record.root_cause_text, record.mitigation_text])
    meta: dict[str, Any] = {
        "record_id": record.id,
        "title": record.title,
        "services": ", ".join(record.services),
        "category": record.category or "",
        "categories": ",".join(record.categories),
        "mitigations": ",".join(record.mitigations),
        "date": record.date or "",
        "severity": record.severity or "",
        "source": record.source,
        "hash": digest,
        "ingested_at": now,
        "keywords": " ".join(sorted(keywords(text, record.services)))[:4000],
        "root_cause_text": record.root_cause_text[:4000],
        "mitigation_text": record.mitigation_text[:4000],
    }
    if record.services:
        meta["service_keys"] = sorted({s.lower() for s in record.services})
    ts = record.timestamp()
    if ts is not None:
        meta["ts"] = int(ts)
    early = record.early_text()
    full = record.full_text() if full_text is None else full_text
    if full.startswith(early):
        meta["early_len"] = len(early)
    else:
        meta["early_text"] = early
    return meta


def pack_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """An incident entry's metadata as written: the keys search filters on, the rest in ``info`` (JSON)."""
    packed = {k: meta[k] for k in _FILTERED if k in meta}
    packed[_PACKED] = json.dumps({k: v for k, v in meta.items() if k not in _FILTERED},
                                 ensure_ascii=False, separators=(",", ":"))
    return packed


def entry_metadata(meta: dict[str, Any] | None) -> dict[str, Any]:
    """An entry's metadata as read, ``info`` unpacked (entries written without it are returned as they are)."""
    if not meta:
        return {}
    if _PACKED not in meta:
        return meta
    out = {k: v for k, v in meta.items() if k != _PACKED}
    out.update(json.loads(meta[_PACKED]))
    return out


def early_text_of(meta: dict[str, Any], document: str | None = None) -> str | None:
    """The early text of a stored ``full`` incident entry (None: an entry without one, e.g. the
    ``full`` part of the two-part layout, whose early text was its own ``summary`` entry)."""
    if "early_text" in meta:
        return str(meta["early_text"])
    if "early_len" in meta:
        text = meta.get("text")
        if text is None:
            text = document or ""
        return str(text)[: int(meta["early_len"])]
    return None
