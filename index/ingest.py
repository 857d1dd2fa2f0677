"""Writing to the memory: ingesting incidents and runbooks in batches (large ones with a worker), removal."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from index import learn
from index.chroma import GET_PAGE
from index.embeddings import HashedNgramEmbedding
from index.entries import INCIDENT_PART, INCIDENTS, RUNBOOKS, early_text_of, incident_metadata, keywords, pack_metadata
from index.heads import HeadsMixin
from index.schema import IncidentRecord, RunbookRecord
from index.results import IngestSummary

# An ingest of at least this many new incidents prepares the coming batches in a worker process while
# it writes (the worker takes about a second to start).
_WORKER_MIN_RECORDS = 2000


# --- preparing new incidents, here or in a worker process ---------------------------------------


def prepare_incidents(embed: Callable[[list[str]], Any], rows: Sequence[tuple[str, IncidentRecord, str, str]],
                      now: float) -> dict[str, Any]:
    """The entries of new incident versions, ready to write: rows are (entry id, record, content hash,
    whole text). Returns their ids, vectors (float32), metadata as written (packed) and the terms they
    add to the category heads ({head: learn.CategoryHead.sums}): the stored vector to the full head,
    the early text's, embedded here and never stored, to the early head."""
    metas = []
    for _pid, record, digest, text in rows:
        meta = incident_metadata(record, digest, now, text)
        meta.update(part=INCIDENT_PART, text=text)  # the text: not a Chroma document (see the module doc)
        metas.append(meta)
    vectors = np.asarray(embed([text for *_, text in rows]), dtype=np.float32)
    sums: dict[str, Any] = {}
    labelled = [i for i, meta in enumerate(metas) if meta["categories"]]
    if labelled:
        T = np.vstack([learn.targets(metas[i]["categories"].split(",")) for i in labelled])
        early = np.asarray(embed([early_text_of(metas[i]) or "" for i in labelled]), dtype=np.float32)
        for head, X in (("early", early), ("full", vectors[labelled])):
            terms = learn.CategoryHead.sums(X, T)
            if terms is not None:
                sums[head] = terms
    return {"ids": [row[0] for row in rows], "vectors": vectors,
            "metadatas": [pack_metadata(meta) for meta in metas], "sums": sums}


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
        assert stream is not None  # the worker is started with stdin=PIPE

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
        output = self.proc.stdout
        assert output is not None  # the worker is started with stdout=PIPE
        try:
            result = pickle.load(output)
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
            if proc.stdin is not None:
                proc.stdin.close()  # the worker ends at the end of its input
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait()
        finally:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except Exception:
                    pass


class IngestMixin(HeadsMixin):
    """Adding, updating and removing incidents and runbooks, the category heads updated with every write."""

    BATCH_RECORDS = 1000  # records per Chroma write (and per category-head update) during an ingest

    def _ingest(self, name: str, items: Sequence[tuple[str, str, str, list[tuple[str, str]], Any]],
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
            page = col.get(include=[], limit=GET_PAGE, offset=offset)
            ids.update(pid.rsplit("#", 2)[0] for pid in page["ids"])  # part id = record#part#hash
            if len(page["ids"]) < GET_PAGE:
                return ids
            offset += GET_PAGE

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
