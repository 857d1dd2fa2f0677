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

from index.config import ChromaServerConfig, EmbeddingConfig, MemoryConfig
from index.entries import HEAD_PARTS, INCIDENT_PART, INCIDENTS, RUNBOOKS, keywords
from index.ingest import IngestMixin, prepare_incidents
from index.results import IngestSummary, MitigationSuggestion, RunbookResult, SimilarResult, Suggestion
from index.search import SearchMixin

__all__ = [
    "HEAD_PARTS", "INCIDENTS", "INCIDENT_PART", "RUNBOOKS", "ChromaServerConfig", "EmbeddingConfig", "IngestSummary",
    "Memory", "MemoryConfig", "MitigationSuggestion", "RunbookResult", "SimilarResult", "Suggestion", "keywords",
    "prepare_incidents",
]


class Memory(IngestMixin, SearchMixin):
    """Past incidents and runbooks in Chroma: ingest, similar-incident search, suggestions.

    Its parts: the Chroma connection and collections (:mod:`index.chroma`), the category heads
    (:mod:`index.heads`), writing (:mod:`index.ingest`) and searching (:mod:`index.search`).
    """
