"""Sleuth's memory of past incidents and runbooks, in Chroma.

``Memory`` opens an embedded ``PersistentClient(path)`` by default or a Chroma server through
``HttpClient(host, port, ssl, headers)``, and keeps two collections, ``incidents`` and
``runbooks``, both cosine-space and built by one registered embedding function (see
:mod:`index.embeddings`). A collection remembers its function: opening it with another one is an
:class:`EmbeddingMismatch` naming ``sleuth index rebuild``.

Entries and their metadata: an incident is ONE entry (part ``full``: the whole record except its
labels; id ``record#full#hash``), one vector in the HNSW index; a runbook is an ``overview`` entry
plus one per section. Every entry carries the record's metadata (record id, part, title, services,
categories, mitigations, date, severity, source, content hash, keywords, the root-cause and
mitigation text) so that search can filter and results show the record. An incident entry also
keeps its text (``text``; not a Chroma document, whose full-text index would double the ingest
time) and its early text, what a responder knows early (title, summary, services, impact symptoms,
operation), as ``early_len``: the length of the prefix of ``text`` it is. An incident entry's
metadata is written as the keys search filters on (``record_id``, ``part``, ``ts``,
``service_keys``) and everything else as one JSON string, ``info`` (each key is a row and an index
entry in Chroma's SQLite); :meth:`Memory.entry_metadata` reads both this and the earlier flat form.

Category heads (:mod:`index.learn`): ridge sums over two embeddings of each labelled incident, the
early text's (the early head) and the whole record's (the full head), updated on every write. The
early text is embedded at ingest for the early head only and never stored as a vector; the full
embedding is the one stored. The sums are kept beside the collection (the embedded store:
``incidents.heads.npz`` in the memory folder; a server: a local cache file) and checked against a
token in the collection's metadata; when they do not match (another client wrote, a write was
interrupted, a rebuild), they are recomputed from Chroma: the stored vectors for the full head,
the early texts embedded again for the early head. With enough labelled records, the early head
suggests the category and the full head re-ranks related incidents (similarity + agreement with
the likely category). Search matches a question against the whole records.

An ingest writes 1000 records per Chroma call. With the offline hashed embedding and at least
2000 new incidents, a worker process (:mod:`index.ingest_worker`) prepares the next batch (metadata,
embeddings, head sums) while this process writes the current one; the result is the same.

Idempotence and no half-written records: an entry's id contains the record's content hash. The
same document twice is skipped as unchanged; a changed document first gets its new entry written
under the new hash, and only then is the old-hash entry deleted. Until the deletion, search sees
both versions of one record id and keeps the newest (``ingested_at``); the next ingest cleans up.

The earlier two-part layout (an incident as a ``summary`` entry holding the early text and a
``full`` entry) is still read: search ranks its entries like any other, its ``summary`` vectors
feed the early head, and the next ingest of the same documents counts each such record as
updated and rewrites it as one entry; ``sleuth index rebuild`` converts the whole memory.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from index.config import ChromaServerConfig, EmbeddingConfig, MemoryConfig  # noqa: F401 - re-exported
import numpy as np

from index import learn
from index.embeddings import HashedNgramEmbedding, make_embedding
from index.errors import ChromaUnavailable, EmbeddingMismatch, SleuthIndexError
from index.records import IncidentRecord, RunbookRecord, normalise_date

INCIDENTS = "incidents"
RUNBOOKS = "runbooks"
_REBUILD_SUFFIX = "-rebuilding"
_GET_PAGE = 1000
# Heads loaded in this process, by (heads file, token): every investigation opens its own Memory,
# and reading two (dim+1)² float64 sums from disk each time cost more than the search itself.
# The token changes on every write of the sums, so a stale entry is never used; bounded, oldest out.
_LOADED_HEADS: dict[tuple[str, str], dict] = {}
_LOADED_HEADS_MAX = 4
_LOADED_HEADS_GUARD = threading.Lock()
# First use under concurrency: chromadb registers a client's system in a class-level table before
# starting it, so two threads opening the same path at once see a half-started system (KeyError,
# AttributeError, "could not connect to tenant"). Clients are opened, and collections fetched or
# created, one at a time in this process; once open they are used concurrently.
_OPENING = threading.RLock()
# Heads computed and saved by one thread per heads file at a time (the others then load them).
_HEADS_LOCKS: dict[str, threading.Lock] = {}
# The one Chroma entry of an incident record: the whole record except its labels.
INCIDENT_PART = "full"
# Stored incident parts whose vectors feed a category head. ``full`` feeds the full head (its early text,
# re-embedded, the early head); ``summary`` is the early-text entry of the earlier two-part layout.
HEAD_PARTS = {"summary": "early", "full": "full"}
# Incident entries keep the metadata keys that search filters on as keys, and the rest as one JSON
# string: each key is a row and an index entry in Chroma's SQLite, a large share of the write time.
_FILTERED = ("record_id", "part", "ts", "service_keys")
_PACKED = "info"
_HEAD_KEY = "sleuth_head"  # collection metadata: the token of the head sums that match the collection
_HEAD_CHECK_S = 10.0
# An ingest of at least this many new incidents prepares the coming batches in a worker process while
# it writes (the worker takes about a second to start).
_WORKER_MIN_RECORDS = 2000


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
    from index.records import record_timestamp

    iso = normalise_date(since, "since")
    ts = record_timestamp(iso)
    if ts is None:
        raise SleuthIndexError(f"since={since!r} is not a date; write it as YYYY-MM-DD")
    return ts


# --- preparing new incidents, here or in a worker process ---------------------------------------


def prepare_incidents(embed: Callable[[list[str]], Any], rows: Sequence[tuple[str, IncidentRecord, str, str]],
                      now: float) -> dict[str, Any]:
    """The entries of new incident versions, ready to write: rows are (entry id, record, content hash,
    whole text). Returns their ids, vectors (float32), metadata as written (packed) and the terms they
    add to the category heads ({head: learn.CategoryHead.sums}): the stored vector to the full head,
    the early text's, embedded here and never stored, to the early head."""
    metas = []
    for _pid, record, digest, text in rows:
        meta = Memory.incident_metadata(record, digest, now, text)
        meta.update(part=INCIDENT_PART, text=text)  # the text: not a Chroma document (see the module doc)
        metas.append(meta)
    vectors = np.asarray(embed([text for *_, text in rows]), dtype=np.float32)
    sums: dict[str, Any] = {}
    labelled = [i for i, meta in enumerate(metas) if meta["categories"]]
    if labelled:
        T = np.vstack([learn.targets(metas[i]["categories"].split(",")) for i in labelled])
        early = np.asarray(embed([Memory.early_text_of(metas[i]) or "" for i in labelled]), dtype=np.float32)
        for head, X in (("early", early), ("full", vectors[labelled])):
            terms = learn.CategoryHead.sums(X, T)
            if terms is not None:
                sums[head] = terms
    return {"ids": [row[0] for row in rows], "vectors": vectors,
            "metadatas": [Memory.pack_metadata(meta) for meta in metas], "sums": sums}


class _Worker:
    """Prepares the coming batches of new incidents (:func:`prepare_incidents`) in a worker process
    while the current batch is written: Chroma's writes hold the GIL, so a thread would not run.

    For the offline hashed embedding only (CPU-bound; deterministic, so the worker's vectors are the
    ones this process would compute). A plain ``python -m index.ingest_worker`` subprocess, not
    multiprocessing, whose spawned children import the caller's main script again. ``jobs[i]``: the
    rows of batch i; batch 0 is left to the caller, who prepares it while the worker starts. One job
    is in flight at a time. :meth:`get` returns None when there is no result for that batch (the
    worker failed or could not start): the caller then prepares it itself.
    """

    def __init__(self, config: dict[str, Any], jobs: list[list[tuple]]) -> None:
        self.config, self.jobs = config, jobs
        self.pending: int | None = None
        self.sending: threading.Thread | None = None
        self.proc: subprocess.Popen | None = None
        root = str(Path(__file__).resolve().parent.parent)  # the folder holding the index package
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "index.ingest_worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            self._send_after(0)
        except Exception:  # no worker: the caller prepares every batch
            self.close()

    def _send_after(self, number: int) -> None:
        """Send the next batch with new incidents; written by a thread, so that this process does not
        wait while the worker starts (its input pipe holds far less than a job)."""
        following = next((i for i in range(number + 1, len(self.jobs)) if self.jobs[i]), None)
        if self.proc is None or following is None:
            return
        job = pickle.dumps((self.config, time.time(), self.jobs[following]), protocol=pickle.HIGHEST_PROTOCOL)
        stream = self.proc.stdin

        def write() -> None:
            try:
                stream.write(job)
                stream.flush()
            except Exception:  # the worker is gone: get() finds no result
                pass

        self.sending = threading.Thread(target=write, name="sleuth-ingest-worker-input", daemon=True)
        self.sending.start()
        self.pending = following

    def get(self, number: int) -> dict[str, Any] | None:
        if self.proc is None or self.pending != number:
            return None
        try:
            result = pickle.load(self.proc.stdout)
        except Exception:
            self.close()
            return None
        self.pending = None
        if self.sending is not None:
            self.sending.join()
        try:
            self._send_after(number)
        except Exception:
            self.close()
        return result

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if self.pending is not None:
                raise TimeoutError  # a job in flight: no need to wait for it
            if self.sending is not None:
                self.sending.join()
            proc.stdin.close()  # the worker ends at the end of its input
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait()
        finally:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:
                    pass


# --- the memory --------------------------------------------------------------------------------


class Memory:
    """Past incidents and runbooks in Chroma: ingest, similar-incident search, suggestions."""

    BATCH_RECORDS = 1000  # records per Chroma write (and per category-head update) during an ingest

    def __init__(self, config: MemoryConfig | None = None, *, client: Any = None, embedding: Any = None) -> None:
        self.config = config or MemoryConfig()
        self._embedding = embedding if embedding is not None else make_embedding(self.config.embedding)
        # An unset hashed dimension is settled by what the memory already holds, on first use.
        self._settled = embedding is not None or self.config.embedding.kind != "hashed" or \
            self.config.embedding.dim is not None
        self._collections: dict[str, Any] = {}
        self._heads_cache: tuple[dict[str, learn.CategoryHead], float, str | None] | None = None
        self._last_search: tuple[tuple[str, ...], np.ndarray] | None = None  # (result ids, query embedding)
        self._settling = threading.Lock()
        with self._guard():
            if client is not None:
                self.client = client
            else:
                with _OPENING:
                    self.client = self._make_client()

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

        function = self.embedding
        with self._guard(), _OPENING:  # two first uses at once: one creates, the other then finds it
            try:
                col = self.client.get_collection(name, embedding_function=function)
            except NotFoundError:
                col = self.client.create_collection(name, embedding_function=function,
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

    def _adopt(self, stored: dict[str, Any]) -> bool:
        """Take the stored hashed function when it differs from ours in its dimension only (called
        while settling an unset dimension: the default changed from 2048 to 1024, and older
        memories keep working without a rebuild)."""
        if stored.get("type") != "known" or stored.get("name") != self._embedding.name():
            return False
        config = dict(stored.get("config") or {})
        mine = dict(self._embedding.get_config())
        if {k: v for k, v in config.items() if k != "dim"} != {k: v for k, v in mine.items() if k != "dim"}:
            return False
        self._embedding = HashedNgramEmbedding.build_from_config(config)
        return True

    @property
    def embedding(self) -> Any:
        """The embedding function; an unset hashed dimension first takes the one the memory's
        collections were built with (2048 before the default became 1024)."""
        if not self._settled:
            with self._settling:  # settled once: a second thread waits rather than using the unsettled one
                if not self._settled:
                    try:
                        existing = self.client.list_collections()
                    except Exception:  # noqa: BLE001 - an unreachable store says so on the next real call
                        existing = []
                    for col in existing:
                        if not isinstance(col, str) and \
                                self._adopt((col.configuration_json or {}).get("embedding_function") or {}):
                            break
                    self._settled = True
        return self._embedding

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

    def is_empty(self, name: str = INCIDENTS) -> bool:
        """True when the collection holds nothing: one id fetched at most (Chroma's count() scans, and
        :meth:`count` pages through every id; the investigation asks this on every diagnosis)."""
        if name not in self._collections and not self.exists(name):
            return True
        with self._guard():
            return not self.collection(name).get(limit=1, include=[])["ids"]

    def count(self, name: str = INCIDENTS) -> int:
        """Records (not parts) in a collection (0 when it does not exist yet)."""
        if name not in self._collections and not self.exists(name):
            return 0
        with self._guard():
            col = self.collection(name)
            ids: set[str] = set()
            offset = 0
            while True:
                page = col.get(include=[], limit=_GET_PAGE, offset=offset)
                ids.update(pid.rsplit("#", 2)[0] for pid in page["ids"])  # part id = record#part#hash
                if len(page["ids"]) < _GET_PAGE:
                    return len(ids)
                offset += _GET_PAGE

    def part_ids(self, record_id: str, name: str = INCIDENTS) -> list[str]:
        with self._guard():
            return sorted(self.collection(name).get(where={"record_id": record_id}, include=[])["ids"])

    # -- ingest --

    @staticmethod
    def incident_parts(record: IncidentRecord) -> list[tuple[str, str]]:
        """One part, ``full``: the whole record except its labels (the only vector stored per incident)."""
        return [(INCIDENT_PART, record.full_text())]

    @staticmethod
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

    @staticmethod
    def pack_metadata(meta: dict[str, Any]) -> dict[str, Any]:
        """An incident entry's metadata as written: the keys search filters on, the rest in ``info`` (JSON)."""
        packed = {k: meta[k] for k in _FILTERED if k in meta}
        packed[_PACKED] = json.dumps({k: v for k, v in meta.items() if k not in _FILTERED},
                                     ensure_ascii=False, separators=(",", ":"))
        return packed

    @staticmethod
    def entry_metadata(meta: dict[str, Any] | None) -> dict[str, Any]:
        """An entry's metadata as read, ``info`` unpacked (entries written without it are returned as they are)."""
        if not meta:
            return {}
        if _PACKED not in meta:
            return meta
        out = {k: v for k, v in meta.items() if k != _PACKED}
        out.update(json.loads(meta[_PACKED]))
        return out

    @staticmethod
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

    def _ingest(self, name: str, items: list[tuple[str, str, str, list[tuple[str, str]], dict[str, Any]]],
                on_progress: Callable[[int, int], None] | None = None, batch_records: int | None = None) -> IngestSummary:
        """items: (record id, source, content hash, parts [(part, text)], metadata; for incidents the record)."""
        batch_records = batch_records or self.BATCH_RECORDS
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
            track = name == INCIDENTS  # the category heads follow every write of incident parts
            heads = self.heads() if track else None
            try:
                self._write_batches(col, unique, summary, heads, batch_records, total, on_progress)
            except BaseException:
                self._heads_cache = None  # the sums in memory may be half-updated: reload them
                raise
        return summary

    @staticmethod
    def _record_ids(col: Any) -> set[str]:
        """Ids of the records with parts in ``col`` (paged, entry ids only; an empty collection costs one call)."""
        ids: set[str] = set()
        if col.count() == 0:
            return ids
        offset = 0
        while True:
            page = col.get(include=[], limit=_GET_PAGE, offset=offset)
            ids.update(pid.rsplit("#", 2)[0] for pid in page["ids"])  # part id = record#part#hash
            if len(page["ids"]) < _GET_PAGE:
                return ids
            offset += _GET_PAGE

    def _write_batches(self, col: Any, unique: list, summary: IngestSummary, heads: dict | None,
                       batch_records: int, total: int, on_progress: Callable[[int, int], None] | None) -> None:
        # One scan of the record ids already there, so batches of new records skip the filtered
        # lookup (which costs more the larger the collection grows).
        present = self._record_ids(col)
        worker = self._worker(unique, present, batch_records) if heads is not None else None
        try:
            self._write_each_batch(col, unique, summary, heads, batch_records, total, on_progress, present, worker)
        finally:
            if worker is not None:
                worker.close()

    def _worker(self, unique: list, present: set[str], batch_records: int) -> _Worker | None:
        """A worker preparing the new incidents of the coming batches: for a large ingest with the hashed embedding."""
        if not isinstance(self.embedding, HashedNgramEmbedding):
            return None
        if sum(1 for item in unique if item[0] not in present) < _WORKER_MIN_RECORDS:
            return None
        jobs = [[(f"{rid}#{part}#{digest[:16]}", record, digest, text)
                 for rid, _source, digest, parts, record in unique[start:start + batch_records]
                 if rid not in present  # a known record may be unchanged: prepared only if it is written
                 for part, text in parts]
                for start in range(0, len(unique), batch_records)]
        return _Worker(self.embedding.get_config(), jobs)

    def _write_each_batch(self, col: Any, unique: list, summary: IngestSummary, heads: dict | None,
                          batch_records: int, total: int, on_progress: Callable[[int, int], None] | None,
                          present: set[str], worker: _Worker | None) -> None:
        """items in ``unique``: incidents (``heads`` given) carry their IncidentRecord last, runbooks their metadata."""
        track = heads is not None
        dirty = False
        done = total - len(unique)
        max_batch = max(1, min(getattr(self.client, "get_max_batch_size", lambda: 5000)(), 5000))
        for number, start in enumerate(range(0, len(unique), batch_records)):
            batch = unique[start:start + batch_records]
            # The worker's result covers exactly this batch's records that were not in the collection.
            prepared = worker.get(number) if worker is not None else None
            known = [b[0] for b in batch if b[0] in present]
            existing = col.get(where={"record_id": {"$in": known}},
                               include=["metadatas", "embeddings"] if track else ["metadatas"]) \
                if known else {"ids": [], "metadatas": [], "embeddings": []}
            old: dict[str, list[tuple[str, dict, Any]]] = {}
            old_vectors = existing.get("embeddings") if track else None
            for i, (pid, meta) in enumerate(zip(existing["ids"], existing["metadatas"])):
                vector = old_vectors[i] if old_vectors is not None else None
                old.setdefault(meta["record_id"], []).append((pid, self.entry_metadata(meta), vector))
            ids, docs, metas, stale = [], [], [], []
            rows: list[tuple[str, Any, str, str]] = []  # incidents to prepare here
            removed: list[tuple[dict, Any]] = []  # (metadata, embedding) of the entries leaving the heads
            now = time.time()
            for rid, source, digest, parts, meta in batch:
                new_ids = [f"{rid}#{part}#{digest[:16]}" for part, _ in parts]
                have = old.get(rid, [])
                have_ids = {pid for pid, _, _ in have}
                if have and set(new_ids) == have_ids:
                    summary.skipped.append((rid, "unchanged"))
                    continue
                (summary.updated if have else summary.added).append(rid)
                if track:
                    if prepared is None or rid in present:
                        rows += [(pid, meta, digest, text) for pid, (part, text) in zip(new_ids, parts)]
                else:
                    for pid, (part, text) in zip(new_ids, parts):
                        ids.append(pid)
                        docs.append(text)
                        metas.append({**meta, "part": part, "hash": digest, "ingested_at": now})
                stale += [pid for pid in have_ids if pid not in set(new_ids)]
                # Every old part is overwritten or deleted: all of them leave the heads (an entry of the
                # two-part layout counts as changed: its record is rewritten as one entry).
                removed += [(m, v) for _, m, v in have]
            groups = [prepared] if prepared is not None and prepared["ids"] else []
            if rows:
                groups.append(prepare_incidents(self.embedding, rows, now))
            if track:
                ids = [pid for group in groups for pid in group["ids"]]
                metas = [meta for group in groups for meta in group["metadatas"]]
            if not ids:
                done += len(batch)
                if on_progress:
                    on_progress(done, total)
                continue
            if track and not dirty:
                self._mark_heads(col, "writing-" + uuid.uuid4().hex)  # until the sums are saved
                dirty = True
            if track:
                vectors: Any = np.concatenate([group["vectors"] for group in groups])
                leaving = self._head_rows(removed)
            else:
                vectors = self.embedding(docs)
            # New parts first, then the old ones: an interrupted ingest never loses a record.
            for i in range(0, len(ids), max_batch):
                col.upsert(ids=ids[i:i + max_batch], documents=None if track else docs[i:i + max_batch],
                           metadatas=metas[i:i + max_batch], embeddings=vectors[i:i + max_batch])
            for i in range(0, len(stale), max_batch):
                col.delete(ids=stale[i:i + max_batch])
            if track and heads is not None:
                self._update_heads(heads, leaving, -1.0)
                for group in groups:
                    for head, terms in group["sums"].items():
                        if head not in heads:
                            heads[head] = learn.CategoryHead(terms[0].shape[0] - 1)
                        heads[head].add_sums(*terms)
            done += len(batch)
            if on_progress:
                on_progress(done, total)
        if dirty and heads is not None:
            self._save_heads(col, heads)

    # -- the category heads --

    def _head_rows(self, entries: Iterable[tuple[dict[str, Any], Any]]) -> list[tuple[str, Any, str]]:
        """(head, embedding, comma-joined categories) for stored incident entries [(metadata, embedding)].

        A ``full`` entry gives its stored vector to the full head and its early text, embedded here,
        to the early head; a ``summary`` entry (two-part layout) gives its stored vector to the early head.
        """
        rows: list[tuple[str, Any, str]] = []
        early_texts: list[str] = []
        early_cats: list[str] = []
        for meta, vector in entries:
            meta = self.entry_metadata(meta)
            categories = meta.get("categories", "")
            head = HEAD_PARTS.get(meta.get("part", ""))
            if head is None or not categories:
                continue  # unlabelled records teach the heads nothing
            if head == "early":
                rows.append(("early", vector, categories))
                continue
            rows.append(("full", vector, categories))
            early = self.early_text_of(meta)
            if early is not None:
                early_texts.append(early)
                early_cats.append(categories)
        if early_texts:
            rows += [("early", v, c) for v, c in zip(self.embedding(early_texts), early_cats)]
        return rows

    @staticmethod
    def _update_heads(heads: dict[str, learn.CategoryHead], rows: list[tuple[str, Any, str]], sign: float) -> None:
        """Add (sign=+1) or remove (sign=-1) rows [(head, embedding, comma-joined categories)] from the heads."""
        grouped: dict[str, tuple[list, list]] = {}
        for head, vector, categories in rows:
            cats = [c for c in (categories or "").split(",") if c]
            if head not in learn.HEADS or vector is None or not cats:
                continue
            xs, ts = grouped.setdefault(head, ([], []))
            xs.append(np.asarray(vector, dtype=np.float32))
            ts.append(learn.targets(cats))
        for head, (xs, ts) in grouped.items():
            X = np.vstack(xs)
            if head not in heads:
                heads[head] = learn.CategoryHead(X.shape[1])
            heads[head].update(X, np.vstack(ts), sign)

    def _heads_path(self, col: Any) -> Path:
        if self.config.server is None:
            return Path(self.config.path) / f"{col.name}.heads.npz"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        server = re.sub(r"[^A-Za-z0-9.]+", "_", f"{self.config.server.host}_{self.config.server.port}")
        return cache / "sleuth" / "heads" / server / f"{col.id}.npz"

    def _stored_token(self, col: Any) -> str | None:
        fresh = self.client.get_collection(col.name, embedding_function=self.embedding)
        return (fresh.metadata or {}).get(_HEAD_KEY)

    def _mark_heads(self, col: Any, token: str) -> None:
        fresh = self.client.get_collection(col.name, embedding_function=self.embedding)
        metadata = {k: v for k, v in (fresh.metadata or {}).items() if not k.startswith("hnsw:")}
        metadata[_HEAD_KEY] = token
        col.modify(metadata=metadata)

    def _save_heads(self, col: Any, heads: dict[str, learn.CategoryHead]) -> None:
        token = uuid.uuid4().hex
        path = self._heads_path(col)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")  # per writer
        temp.write_bytes(learn.dump_heads(heads, token))
        os.replace(temp, path)  # whole or nothing
        self._mark_heads(col, token)
        self._heads_cache = (heads, time.monotonic(), token)

    def heads(self) -> dict[str, learn.CategoryHead]:
        """The category heads of the incidents ({'early': ..., 'full': ...}), checked against the collection."""
        cached = self._heads_cache
        if cached is not None and time.monotonic() - cached[1] < _HEAD_CHECK_S:
            return cached[0]
        with self._guard():
            col = self.collection(INCIDENTS)
            path = self._heads_path(col)
            with _LOADED_HEADS_GUARD:
                lock = _HEADS_LOCKS.setdefault(str(path), threading.Lock())
            with lock:  # one thread loads or recomputes a heads file; the others then share its result
                return self._heads_locked(col, path, cached)

    def _heads_locked(self, col: Any, path: Path,
                      cached: tuple[dict[str, learn.CategoryHead], float, str | None] | None
                      ) -> dict[str, learn.CategoryHead]:
        token = self._stored_token(col)
        heads: dict[str, learn.CategoryHead] | None = None
        shared = _LOADED_HEADS.get((str(path), token)) if token else None
        if shared is not None:
            heads = shared  # loaded (and perhaps solved) by another Memory of this process
        elif token and path.is_file():
            try:
                loaded, saved = learn.load_heads(path.read_bytes())
                if saved == token:
                    heads = loaded
                    if cached is not None and cached[0] and cached[2] == token:
                        heads = cached[0]  # keep the solved weights
            except (OSError, ValueError, KeyError):
                heads = None
        if heads is None:
            heads = self._heads_from_collection(col)
            self._save_heads(col, heads)
            token = self._stored_token(col)
        self._heads_cache = (heads, time.monotonic(), token)
        if token:
            with _LOADED_HEADS_GUARD:
                _LOADED_HEADS[(str(path), token)] = heads
                while len(_LOADED_HEADS) > _LOADED_HEADS_MAX:
                    _LOADED_HEADS.pop(next(iter(_LOADED_HEADS)))
        return heads

    def _heads_from_collection(self, col: Any) -> dict[str, learn.CategoryHead]:
        """Recompute the sums from what Chroma stores (the source of truth): the stored vectors, and
        the early texts (kept in the entries' metadata) embedded again."""
        heads: dict[str, learn.CategoryHead] = {}
        offset = 0
        while True:
            page = col.get(where={"part": {"$in": sorted(HEAD_PARTS)}}, include=["embeddings", "metadatas"],
                           limit=_GET_PAGE, offset=offset)
            vectors = page.get("embeddings")
            if vectors is not None and len(page["ids"]):
                self._update_heads(heads, self._head_rows(zip(page["metadatas"], vectors)), 1.0)
            if len(page["ids"]) < _GET_PAGE:
                return heads
            offset += _GET_PAGE

    def remove_incidents(self, record_ids: Sequence[str]) -> list[str]:
        """Delete past incidents (all their parts); returns the ids that were there."""
        with self._guard():
            col = self.collection(INCIDENTS)
            heads = self.heads()
            got = col.get(where={"record_id": {"$in": list(record_ids)}}, include=["metadatas", "embeddings"])
            if not got["ids"]:
                return []
            leaving = self._head_rows(zip(got["metadatas"], got["embeddings"]))
            self._mark_heads(col, "writing-" + uuid.uuid4().hex)
            col.delete(ids=list(got["ids"]))
            self._update_heads(heads, leaving, -1.0)
            self._save_heads(col, heads)
            return sorted({m["record_id"] for m in got["metadatas"]})

    def add_records(self, records: Sequence[IncidentRecord],
                    on_progress: Callable[[int, int], None] | None = None) -> IngestSummary:
        """Add or update past incidents; the same content twice is skipped as unchanged."""
        # The metadata is made with the entries (prepare_incidents), in a worker for a large ingest.
        items = [(record.id, record.source, record.content_hash(), [(INCIDENT_PART, record.full_text())], record)
                 for record in records]
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

    def _query(self, name: str, text: str, where: dict[str, Any] | None, n: int,
               vector: Any = None) -> list[tuple[str, str, dict, float]]:
        col = self.collection(name)
        query: dict[str, Any] = {"query_embeddings": [vector]} if vector is not None else {"query_texts": [text]}
        # No count() first: it scans the collection (about 20 ms at 100k records), and Chroma answers
        # fewer than n_results (or none) by itself when the collection holds fewer.
        answer = col.query(**query, n_results=n, where=where, include=["metadatas", "distances"])
        return [(pid, "", self.entry_metadata(meta), dist) for pid, meta, dist in
                zip(answer["ids"][0], answer["metadatas"][0], answer["distances"][0])]

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
        # One entry per record (two while a record is caught mid-update or still in the two-part
        # layout): about CANDIDATES records to re-rank.
        n = max(k * 4, learn.CANDIDATES) + len(exclude) * 2
        note = ""
        with self._guard():
            if INCIDENTS not in self._collections and not self.exists(INCIDENTS):
                return []
            vector = np.asarray(self.embedding([text])[0], dtype=np.float32)
            hits = []
            if service_key:
                where = self._and(filters + [{"service_keys": {"$contains": service_key}}])
                hits = self._query(INCIDENTS, text, where, n, vector)
                if not hits:
                    note = f"no past incident on {service}; nearest on other services"
            if not hits:
                hits = self._query(INCIDENTS, text, self._and(filters), n, vector)
            likely = None
            if hits:
                full = self.heads().get("full")
                if full is not None and full.n >= learn.MIN_LABELLED_RERANK and full.dim == vector.shape[0]:
                    likely = full.predict(vector)[0]
            results = self._rank(text, service_key, hits, k, exclude, note, likely)
            self._fill_texts(results)
            self._last_search = (tuple(r.id for r in results), vector)
        return results

    @staticmethod
    def _and(filters: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not filters:
            return None
        return filters[0] if len(filters) == 1 else {"$and": filters}

    def _rank(self, text: str, service_key: str | None, hits: list[tuple[str, str, dict, float]], k: int,
              exclude: set[str], note: str, likely: np.ndarray | None = None) -> list[SimilarResult]:
        """similarity + keyword and service overlap + mild recency + β · agreement with the likely category.

        ``likely``: the full head's category probabilities for the query (None: too few labelled records).
        """
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
        ranked = list(best.items())
        agree = learn.agreement(likely, [m.get("categories", "").split(",") for _, (_, _, m) in ranked]) \
            if likely is not None and ranked else np.zeros(len(ranked))
        top = learn.CATEGORIES[int(np.argmax(likely))] if likely is not None else None
        for (rid, (sim, part, meta)), agrees in zip(ranked, agree):
            label = "whole record" if part == "full" else part.replace("_", " ")
            why: list[str] = [f"{label} {sim:.2f} similar"]
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
            if agrees > 0:
                bonus += learn.BETA * float(agrees)
                if agrees >= 0.05:
                    why.append(f"fits the likely cause ({top}, agreement {agrees:.2f})")
            if note:
                why.append(note)
            categories = [c for c in meta.get("categories", "").split(",") if c]
            results.append(SimilarResult(
                id=rid, title=meta.get("title", ""), similarity=round(sim, 4), score=round(sim + bonus, 4),
                category=meta.get("category") or None, categories=categories,
                mitigations=[m for m in meta.get("mitigations", "").split(",") if m],
                root_cause=meta.get("root_cause_text", ""), mitigation=meta.get("mitigation_text", ""),
                services=services, date=meta.get("date") or None, matched_part=part, why="; ".join(why),
                source=meta.get("source", "")))
        results.sort(key=lambda r: (-r.score, r.id))
        return results[:k]

    def _fill_texts(self, results: list[SimilarResult]) -> None:
        """Root-cause and mitigation text of records stored before they were kept in the metadata."""
        results = [r for r in results if not (r.root_cause or r.mitigation)]
        if not results:
            return
        col = self.collection(INCIDENTS)
        got = col.get(where={"record_id": {"$in": [r.id for r in results]}}, include=["metadatas", "documents"])
        texts: dict[tuple[str, str], tuple[float, str]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"]):
            meta = self.entry_metadata(meta)
            key = (meta["record_id"], meta["part"])
            if key not in texts or meta.get("ingested_at", 0) > texts[key][0]:
                texts[key] = (meta.get("ingested_at", 0), doc)
        for r in results:
            root = texts.get((r.id, "root_cause"), (0, ""))[1]
            fix = texts.get((r.id, "mitigation"), (0, ""))[1]
            r.root_cause = root.split("Root cause: ", 1)[-1] if root else ""
            r.mitigation = re.sub(r"\nactions: .*$", "", fix.split("Mitigation: ", 1)[-1]) if fix else ""

    def suggest(self, results: Sequence[SimilarResult], text: str | None = None) -> Suggestion:
        """A root-cause category with a confidence, and the mitigations that resolved the neighbours.

        With at least ``learn.MIN_LABELLED_SUGGEST`` labelled records, the early category head
        decides (for ``text``, or for the query of the search that returned ``results``); otherwise
        the neighbours' similarity-weighted vote does.
        """
        suggestion = self.neighbour_vote(results)
        vector = None
        if text is not None and text.strip():
            vector = np.asarray(self.embedding([text])[0], dtype=np.float32)
        elif self._last_search is not None and self._last_search[0] == tuple(r.id for r in results):
            vector = self._last_search[1]
        if vector is None or (INCIDENTS not in self._collections and not self.exists(INCIDENTS)):
            return suggestion
        head = self.heads().get("early")
        if head is None or head.n < learn.MIN_LABELLED_SUGGEST or head.dim != vector.shape[0]:
            return suggestion
        p = head.predict(vector)[0]
        order = np.argsort(-p, kind="stable")
        suggestion.category = learn.CATEGORIES[int(order[0])]
        suggestion.confidence = round(float(p[order[0]]), 3)
        suggestion.votes = {learn.CATEGORIES[int(i)]: round(float(p[i]), 4) for i in order if p[i] > 0}
        suggestion.basis = f"category head over {head.n} labelled incidents"
        return suggestion

    @staticmethod
    def neighbour_vote(results: Sequence[SimilarResult]) -> Suggestion:
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
        mitigations = [MitigationSuggestion(action=a, weight=round(w, 4), worked_in=ids)
                       for a, (w, ids) in sorted(actions.items(), key=lambda kv: (-kv[1][0], kv[0]))]
        if not votes:
            return Suggestion(category=None, confidence=0.0, votes={}, mitigations=mitigations,
                              neighbours=[r.id for r in results])
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
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
                    plain = [self.entry_metadata(m) for m in page["metadatas"]]
                    docs += [d if d is not None else m.get("text", "") for d, m in zip(page["documents"], plain)]
                    metas += plain
                    if len(page["ids"]) < _GET_PAGE:
                        break
                    offset += _GET_PAGE
                if name == INCIDENTS:
                    ids, docs, metas = self._one_entry_per_record(ids, docs, metas)
                temp = name + _REBUILD_SUFFIX
                if temp in names:
                    self.client.delete_collection(temp)
                new = self.client.create_collection(temp, embedding_function=self.embedding,
                                                    configuration={"hnsw": {"space": "cosine"}},
                                                    metadata={"sleuth": "incident memory"})
                step = 500
                for i in range(0, len(ids), step):
                    # Incident texts stay in the metadata (``text``), packed as the ingest writes them.
                    if name == INCIDENTS:
                        new.add(ids=ids[i:i + step], metadatas=[self.pack_metadata(m) for m in metas[i:i + step]],
                                embeddings=self.embedding(docs[i:i + step]))
                    else:
                        new.add(ids=ids[i:i + step], documents=docs[i:i + step], metadatas=metas[i:i + step],
                                embeddings=self.embedding(docs[i:i + step]))
                    if on_progress:
                        on_progress(name, min(i + step, len(ids)), len(ids))
                self.client.delete_collection(name)
                new.modify(name=name)
                self._collections.pop(name, None)
                self._heads_cache = None  # recomputed from the re-embedded collection on first use
                counts[name] = len({m.get("record_id") for m in metas})
        return counts

    @staticmethod
    def _one_entry_per_record(ids: list[str], docs: list[str], metas: list[dict]) -> tuple[list, list, list]:
        """The two-part layout's incidents as one entry each: a ``summary`` entry is dropped and its text
        (the early text) recorded on the ``full`` entry of the same record and content hash."""
        summaries = {(m.get("record_id"), m.get("hash")): d for d, m in zip(docs, metas) if m.get("part") == "summary"}
        fulls = {(m.get("record_id"), m.get("hash")) for m in metas if m.get("part") == INCIDENT_PART}
        out: tuple[list, list, list] = ([], [], [])
        for pid, doc, meta in zip(ids, docs, metas):
            key = (meta.get("record_id"), meta.get("hash"))
            if meta.get("part") == "summary" and key in fulls:
                continue
            if meta.get("part") == INCIDENT_PART and key in summaries and Memory.early_text_of(meta, doc) is None:
                early = summaries[key]
                meta = dict(meta)
                if doc.startswith(early):
                    meta["early_len"] = len(early)
                else:
                    meta["early_text"] = early
            for column, value in zip(out, (pid, doc, meta)):
                column.append(value)
        return out
