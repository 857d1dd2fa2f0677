"""Sleuth's memory of past incidents and runbooks, in Chroma.

``Memory`` opens an embedded ``PersistentClient(path)`` by default or a Chroma server through
``HttpClient(host, port, ssl, headers)``, and keeps two collections, ``incidents`` and
``runbooks``, both cosine-space and built by one registered embedding function (see
:mod:`index.embeddings`). A collection remembers its function: opening it with another one is an
:class:`EmbeddingMismatch` naming ``sleuth index rebuild``.

Each document is split into parts (incidents: ``summary`` = title, summary, impact, services,
symptoms, operation; ``root_cause``; ``mitigation``; runbooks: ``overview`` plus one part per
section), each part carrying the record's metadata (record id, part, services, category, date,
severity, source, content hash) so that search can filter and results show the right part.

Idempotence and no half-written records: a part's id contains the record's content hash. The same
document twice is skipped as unchanged; a changed document first gets its new parts written under
the new hash, and only then are the old-hash parts deleted. Until the deletion, search sees both
versions of one record id and keeps the newest (``ingested_at``); the next ingest cleans up.
"""

from __future__ import annotations

import json
import math
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from index.config import ChromaServerConfig, EmbeddingConfig, MemoryConfig  # noqa: F401 - re-exported
from index.embeddings import make_embedding
from index.errors import ChromaUnavailable, EmbeddingMismatch, SleuthIndexError
from index.records import IncidentRecord, RunbookRecord, normalise_date

INCIDENTS = "incidents"
RUNBOOKS = "runbooks"
_REBUILD_SUFFIX = "-rebuilding"
_GET_PAGE = 1000


# --- configuration -----------------------------------------------------------------------------


# --- results -----------------------------------------------------------------------------------


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
    """The neighbours' weighted vote: a root-cause category with a confidence, and the fixes that worked."""

    category: str | None
    confidence: float
    votes: dict[str, float]
    mitigations: list[MitigationSuggestion]
    neighbours: list[str]

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


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _since_ts(since: Any) -> float | None:
    if since is None:
        return None
    if isinstance(since, (int, float)):
        return float(since)
    from index.records import _timestamp

    iso = normalise_date(since, "since")
    ts = _timestamp(iso)
    if ts is None:
        raise SleuthIndexError(f"since={since!r} is not a date; write it as YYYY-MM-DD")
    return ts


# --- the memory --------------------------------------------------------------------------------


class Memory:
    """Past incidents and runbooks in Chroma: ingest, similar-incident search, suggestions."""

    def __init__(self, config: MemoryConfig | None = None, *, client: Any = None, embedding: Any = None) -> None:
        self.config = config or MemoryConfig()
        self.embedding = embedding if embedding is not None else make_embedding(self.config.embedding)
        self._collections: dict[str, Any] = {}
        with self._guard():
            self.client = client if client is not None else self._make_client()

    # -- plumbing --

    def _make_client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        server = self.config.server
        if server is not None:
            return chromadb.HttpClient(host=server.host, port=server.port, ssl=server.ssl,
                                       headers=server.headers or None, settings=settings)
        path = Path(self.config.path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChromaUnavailable(f"cannot create the memory folder {path}: {exc.strerror or exc}; "
                                    "choose another with --memory") from None
        return chromadb.PersistentClient(path=str(path), settings=settings)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn 'server down' in any of its spellings into one sentence."""
        try:
            yield
        except SleuthIndexError:
            raise
        except Exception as exc:  # chromadb and httpx raise several types for the same outage
            text = f"{type(exc).__name__}: {exc}"
            down = ("Could not connect" in text or "ConnectError" in text or "Connection refused" in text
                    or "ConnectTimeout" in text or "RemoteProtocolError" in text or "ReadTimeout" in text)
            if down and self.config.server is not None:
                raise ChromaUnavailable(
                    f"the Chroma server at {self.config.server.url()} does not answer; start it "
                    f"(chroma run --path DIR --host {self.config.server.host} --port {self.config.server.port}) "
                    "or use the embedded store with --memory DIR") from None
            raise

    def collection(self, name: str) -> Any:
        """A collection built with the configured embedding function (created when missing)."""
        if name in self._collections:
            return self._collections[name]
        from chromadb.errors import NotFoundError

        with self._guard():
            try:
                col = self.client.get_collection(name, embedding_function=self.embedding)
            except NotFoundError:
                col = self.client.create_collection(name, embedding_function=self.embedding,
                                                    configuration={"hnsw": {"space": "cosine"}},
                                                    metadata={"sleuth": "incident memory"})
            except ValueError as exc:
                if "conflict" in str(exc).lower() or "embedding function" in str(exc).lower():
                    raise self._mismatch(name, None) from None
                raise
        stored = (col.configuration_json or {}).get("embedding_function") or {}
        if not self._same_function(stored):
            raise self._mismatch(name, stored)
        self._collections[name] = col
        return col

    def _same_function(self, stored: dict[str, Any]) -> bool:
        if stored.get("type") != "known" or stored.get("name") != self.embedding.name():
            return False
        norm = lambda c: json.dumps(c or {}, sort_keys=True)  # noqa: E731
        return norm(stored.get("config")) == norm(self.embedding.get_config())

    def _mismatch(self, name: str, stored: dict[str, Any] | None) -> EmbeddingMismatch:
        built = "another embedding function"
        if stored:
            built = f"{stored.get('name') or stored.get('type')} {json.dumps(stored.get('config') or {}, sort_keys=True)}"
        wanted = f"{self.embedding.name()} {json.dumps(self.embedding.get_config(), sort_keys=True)}"
        return EmbeddingMismatch(
            f"the {name} collection in {self.config.where()} was built with {built}, not the configured {wanted}; "
            "run `sleuth index rebuild` to re-embed it with the configured function, or configure the original one")

    def exists(self, name: str) -> bool:
        with self._guard():
            return name in {c if isinstance(c, str) else c.name for c in self.client.list_collections()}

    def count(self, name: str = INCIDENTS) -> int:
        """Records (not parts) in a collection (0 when it does not exist yet)."""
        if name not in self._collections and not self.exists(name):
            return 0
        with self._guard():
            col = self.collection(name)
            ids: set[str] = set()
            offset = 0
            while True:
                page = col.get(include=["metadatas"], limit=_GET_PAGE, offset=offset)
                ids.update(m.get("record_id") for m in page["metadatas"])
                if len(page["ids"]) < _GET_PAGE:
                    return len(ids)
                offset += _GET_PAGE

    def part_ids(self, record_id: str, name: str = INCIDENTS) -> list[str]:
        with self._guard():
            return sorted(self.collection(name).get(where={"record_id": record_id}, include=[])["ids"])

    # -- ingest --

    @staticmethod
    def incident_parts(record: IncidentRecord) -> list[tuple[str, str]]:
        summary = record.early_text()
        if record.tags:
            tags = [t for t in record.tags if not t.startswith("mitigation:")]
            if tags:
                summary += "\ntags: " + ", ".join(tags)
        parts = [("summary", summary)]
        if record.root_cause_text:
            parts.append(("root_cause", f"{record.title}\nRoot cause: {record.root_cause_text}"))
        if record.mitigation_text or record.mitigations:
            actions = f"\nactions: {', '.join(record.mitigations)}" if record.mitigations else ""
            parts.append(("mitigation", f"{record.title}\nMitigation: {record.mitigation_text}{actions}"))
        return parts

    @staticmethod
    def incident_metadata(record: IncidentRecord, digest: str, now: float) -> dict[str, Any]:
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
        }
        if record.services:
            meta["service_keys"] = sorted({s.lower() for s in record.services})
        ts = record.timestamp()
        if ts is not None:
            meta["ts"] = int(ts)
        return meta

    def _ingest(self, name: str, items: list[tuple[str, str, str, list[tuple[str, str]], dict[str, Any]]],
                on_progress: Callable[[int, int], None] | None = None, batch_records: int = 200) -> IngestSummary:
        """items: (record id, source, content hash, parts [(part, text)], metadata)."""
        summary = IngestSummary()
        seen: dict[str, tuple[str, str]] = {}
        unique = []
        for rid, source, digest, parts, meta in items:
            if rid in seen:
                first_source, first_hash = seen[rid]
                why = ("the same record appears twice in this ingest" if first_hash == digest
                       else f"id {rid} was already read from {first_source} in this ingest; ids must be unique")
                summary.skipped.append((rid, why))
                continue
            seen[rid] = (source, digest)
            unique.append((rid, source, digest, parts, meta))
        total, done = len(items), len(items) - len(unique)
        if on_progress:
            on_progress(done, total)
        with self._guard():
            col = self.collection(name)
            max_batch = max(1, min(getattr(self.client, "get_max_batch_size", lambda: 5000)(), 5000))
            for start in range(0, len(unique), batch_records):
                batch = unique[start:start + batch_records]
                existing = col.get(where={"record_id": {"$in": [b[0] for b in batch]}}, include=["metadatas"])
                old: dict[str, list[tuple[str, str]]] = {}
                for pid, meta in zip(existing["ids"], existing["metadatas"]):
                    old.setdefault(meta["record_id"], []).append((pid, meta.get("hash", "")))
                ids, docs, metas, stale = [], [], [], []
                now = time.time()
                for rid, source, digest, parts, meta in batch:
                    new_ids = [f"{rid}#{part}#{digest[:16]}" for part, _ in parts]
                    have = old.get(rid, [])
                    have_ids = {pid for pid, _ in have}
                    if have and set(new_ids) == have_ids:
                        summary.skipped.append((rid, "unchanged"))
                        continue
                    (summary.updated if have else summary.added).append(rid)
                    for pid, (part, text) in zip(new_ids, parts):
                        ids.append(pid)
                        docs.append(text)
                        metas.append({**meta, "part": part, "hash": digest, "ingested_at": now})
                    stale += [pid for pid in have_ids if pid not in set(new_ids)]
                # New parts first, then the old ones: an interrupted ingest never loses a record.
                for i in range(0, len(ids), max_batch):
                    col.upsert(ids=ids[i:i + max_batch], documents=docs[i:i + max_batch],
                               metadatas=metas[i:i + max_batch])
                for i in range(0, len(stale), max_batch):
                    col.delete(ids=stale[i:i + max_batch])
                done += len(batch)
                if on_progress:
                    on_progress(done, total)
        return summary

    def add_records(self, records: Sequence[IncidentRecord],
                    on_progress: Callable[[int, int], None] | None = None) -> IngestSummary:
        """Add or update past incidents; the same content twice is skipped as unchanged."""
        items = []
        for record in records:
            digest = record.content_hash()
            items.append((record.id, record.source, digest, self.incident_parts(record),
                          self.incident_metadata(record, digest, 0.0)))
        return self._ingest(INCIDENTS, items, on_progress)

    def add_incident(self, record: IncidentRecord) -> str:
        """One resolved incident (the Slack adapter calls this once a human confirms): added, updated or unchanged."""
        summary = self.add_records([record])
        if summary.added:
            return "added"
        if summary.updated:
            return "updated"
        return summary.skipped[0][1] if summary.skipped else "unchanged"

    def add_runbooks(self, runbooks: Sequence[RunbookRecord],
                     on_progress: Callable[[int, int], None] | None = None) -> IngestSummary:
        items = []
        for book in runbooks:
            digest = book.content_hash()
            head = f"{book.title}\ncategories: {', '.join(book.categories)}\nsignals: {', '.join(book.signals)}"
            if book.tags:
                head += f"\ntags: {', '.join(book.tags)}"
            parts = [("overview", head)] + [
                (re.sub(r"[^a-z0-9]+", "_", heading.lower()).strip("_") or "section", f"{book.title}: {heading}\n{body}")
                for heading, body in book.sections.items() if body]
            # Part names must be unique within a runbook.
            names: dict[str, int] = {}
            unique_parts = []
            for part, text in parts:
                names[part] = names.get(part, 0) + 1
                unique_parts.append((part if names[part] == 1 else f"{part}_{names[part]}", text))
            meta = {"record_id": book.id, "title": book.title, "categories": ",".join(book.categories),
                    "category": book.categories[0] if book.categories else "", "signals": ", ".join(book.signals),
                    "source": book.source, "hash": digest,
                    "keywords": " ".join(sorted(keywords(" ".join(book.signals + book.tags + [book.title]))))[:4000]}
            items.append((book.id, book.source, digest, unique_parts, meta))
        return self._ingest(RUNBOOKS, items, on_progress)

    # -- search --

    def _query(self, name: str, text: str, where: dict[str, Any] | None, n: int) -> list[tuple[str, str, dict, float]]:
        col = self.collection(name)
        total = col.count()
        if total == 0:
            return []
        answer = col.query(query_texts=[text], n_results=min(n, total), where=where,
                           include=["metadatas", "distances", "documents"])
        return list(zip(answer["ids"][0], answer["documents"][0], answer["metadatas"][0], answer["distances"][0]))

    def find_similar_incidents(self, text: str, service: str | None = None, since: Any = None, k: int = 5,
                               *, exclude: Iterable[str] = ()) -> list[SimilarResult]:
        """Past incidents like this one: vector similarity + literal keyword overlap + a mild recency preference.

        ``service`` keeps incidents on that service (when there are none, the nearest on any service
        are returned and say so); ``since`` (date or Unix seconds) keeps incidents from then on
        (undated ones are left out).
        """
        if not text or not text.strip():
            raise SleuthIndexError("the search text is empty; describe the symptom, e.g. \"checkout returns 500s\"")
        exclude = set(exclude)
        filters: list[dict[str, Any]] = []
        ts = _since_ts(since)
        if ts is not None:
            filters.append({"ts": {"$gte": int(ts)}})
        service_key = service.strip().lower() if service else None
        n = max(k * 8, 40) + len(exclude) * 3
        note = ""
        with self._guard():
            hits = []
            if service_key:
                where = self._and(filters + [{"service_keys": {"$contains": service_key}}])
                hits = self._query(INCIDENTS, text, where, n)
                if not hits:
                    note = f"no past incident on {service}; nearest on other services"
            if not hits:
                hits = self._query(INCIDENTS, text, self._and(filters), n)
            results = self._rank(text, service_key, hits, k, exclude, note)
            self._fill_texts(results)
        return results

    @staticmethod
    def _and(filters: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not filters:
            return None
        return filters[0] if len(filters) == 1 else {"$and": filters}

    def _rank(self, text: str, service_key: str | None, hits: list[tuple[str, str, dict, float]], k: int,
              exclude: set[str], note: str) -> list[SimilarResult]:
        query_words = keywords(text, [service_key] if service_key else [])
        lowered = text.lower()
        best: dict[str, tuple[float, str, dict]] = {}
        for _pid, _doc, meta, distance in hits:
            rid = meta["record_id"]
            if rid in exclude:
                continue
            sim = max(0.0, 1.0 - float(distance))
            current = best.get(rid)
            # A record caught mid-update has two versions: keep the newest, then the closest part.
            if current is None or (meta.get("ingested_at", 0), sim) > (current[2].get("ingested_at", 0), current[0]):
                best[rid] = (sim, meta["part"], meta)
        now = time.time()
        half_life = self.config.recency_half_life_days * 86400
        results = []
        for rid, (sim, part, meta) in best.items():
            why: list[str] = [f"{part.replace('_', ' ')} {sim:.2f} similar"]
            services = [s.strip() for s in meta.get("services", "").split(",") if s.strip()]
            record_words = set(meta.get("keywords", "").split())
            shared_services = [s for s in services if s.lower() == service_key or
                               (len(s) > 2 and re.search(rf"\b{re.escape(s.lower())}\b", lowered))]
            shared = sorted((query_words & record_words) - {s.lower() for s in services})
            bonus = 0.0
            if shared_services:
                bonus += 0.08
                why.append("same service " + ", ".join(shared_services))
            if shared:
                bonus += min(0.12, 0.04 * len(shared))
                why.append("shares " + ", ".join(shared[:5]))
            if "ts" in meta:
                age = max(0.0, now - float(meta["ts"]))
                bonus += 0.03 * math.exp(-age / half_life)
            if note:
                why.append(note)
            categories = [c for c in meta.get("categories", "").split(",") if c]
            results.append(SimilarResult(
                id=rid, title=meta.get("title", ""), similarity=round(sim, 4), score=round(sim + bonus, 4),
                category=meta.get("category") or None, categories=categories,
                mitigations=[m for m in meta.get("mitigations", "").split(",") if m], root_cause="", mitigation="",
                services=services, date=meta.get("date") or None, matched_part=part, why="; ".join(why),
                source=meta.get("source", "")))
        results.sort(key=lambda r: (-r.score, r.id))
        return results[:k]

    def _fill_texts(self, results: list[SimilarResult]) -> None:
        if not results:
            return
        col = self.collection(INCIDENTS)
        got = col.get(where={"record_id": {"$in": [r.id for r in results]}}, include=["metadatas", "documents"])
        texts: dict[tuple[str, str], tuple[float, str]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"]):
            key = (meta["record_id"], meta["part"])
            if key not in texts or meta.get("ingested_at", 0) > texts[key][0]:
                texts[key] = (meta.get("ingested_at", 0), doc)
        for r in results:
            root = texts.get((r.id, "root_cause"), (0, ""))[1]
            fix = texts.get((r.id, "mitigation"), (0, ""))[1]
            r.root_cause = root.split("Root cause: ", 1)[-1] if root else ""
            r.mitigation = re.sub(r"\nactions: .*$", "", fix.split("Mitigation: ", 1)[-1]) if fix else ""

    @staticmethod
    def suggest(results: Sequence[SimilarResult]) -> Suggestion:
        """Weighted vote of the neighbours' categories, and the mitigations that resolved them."""
        votes: dict[str, float] = {}
        actions: dict[str, tuple[float, list[str]]] = {}
        for r in results:
            weight = max(r.score, 0.0) ** 2
            cats = [c for c in (r.categories or ([r.category] if r.category else [])) if c != "unknown"]
            for c in cats:
                votes[c] = votes.get(c, 0.0) + weight / len(cats)
            for action in r.mitigations:
                w, ids = actions.get(action, (0.0, []))
                actions[action] = (w + weight, ids + [r.id])
        total = sum(votes.values())
        if not votes:
            return Suggestion(category=None, confidence=0.0, votes={}, mitigations=[], neighbours=[r.id for r in results])
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        mitigations = [MitigationSuggestion(action=a, weight=round(w, 4), worked_in=ids)
                       for a, (w, ids) in sorted(actions.items(), key=lambda kv: (-kv[1][0], kv[0]))]
        return Suggestion(category=ranked[0][0], confidence=round(ranked[0][1] / total, 3),
                          votes={c: round(v, 4) for c, v in ranked}, mitigations=mitigations,
                          neighbours=[r.id for r in results])

    def find_runbooks(self, text: str, category: str | None = None, k: int = 3) -> list[RunbookResult]:
        """Runbooks for a symptom (optionally for a root-cause category), best first."""
        if RUNBOOKS not in self._collections and not self.exists(RUNBOOKS):
            return []
        with self._guard():
            hits = self._query(RUNBOOKS, text, None, max(k * 10, 30))
        words = keywords(text)
        best: dict[str, RunbookResult] = {}
        for _pid, _doc, meta, distance in hits:
            sim = max(0.0, 1.0 - float(distance))
            categories = [c for c in meta.get("categories", "").split(",") if c]
            bonus = 0.1 if category and category in categories else 0.0
            shared = sorted(words & set(meta.get("keywords", "").split()))
            bonus += min(0.1, 0.03 * len(shared))
            score = sim + bonus
            rid = meta["record_id"]
            if rid not in best or score > best[rid].similarity:
                why = f"{meta['part'].replace('_', ' ')} {sim:.2f} similar"
                if category and category in categories:
                    why += f"; covers {category}"
                if shared:
                    why += "; shares " + ", ".join(shared[:5])
                best[rid] = RunbookResult(id=rid, title=meta.get("title", ""), similarity=round(score, 4),
                                          categories=categories, matched_part=meta["part"], why=why,
                                          source=meta.get("source", ""))
        return sorted(best.values(), key=lambda r: (-r.similarity, r.id))[:k]

    # -- rebuild --

    def rebuild(self, on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
        """Re-embed every collection with the configured function; the old one stays until the new one is complete."""
        counts: dict[str, int] = {}
        with self._guard():
            names = {c if isinstance(c, str) else c.name for c in self.client.list_collections()}
            for name in (INCIDENTS, RUNBOOKS):
                if name not in names:
                    continue
                old = self.client.get_collection(name)
                ids, docs, metas = [], [], []
                offset = 0
                while True:
                    page = old.get(include=["documents", "metadatas"], limit=_GET_PAGE, offset=offset)
                    ids += page["ids"]
                    docs += page["documents"]
                    metas += page["metadatas"]
                    if len(page["ids"]) < _GET_PAGE:
                        break
                    offset += _GET_PAGE
                temp = name + _REBUILD_SUFFIX
                if temp in names:
                    self.client.delete_collection(temp)
                new = self.client.create_collection(temp, embedding_function=self.embedding,
                                                    configuration={"hnsw": {"space": "cosine"}},
                                                    metadata={"sleuth": "incident memory"})
                step = 500
                for i in range(0, len(ids), step):
                    new.add(ids=ids[i:i + step], documents=docs[i:i + step], metadatas=metas[i:i + step])
                    if on_progress:
                        on_progress(name, min(i + step, len(ids)), len(ids))
                self.client.delete_collection(name)
                new.modify(name=name)
                self._collections.pop(name, None)
                counts[name] = len({m.get("record_id") for m in metas})
        return counts
