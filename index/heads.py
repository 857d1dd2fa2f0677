"""The category heads kept beside the incidents collection: saved, checked against Chroma, recomputed."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from index import learn
from index.chroma import GET_PAGE, ChromaCollections
from index.entries import HEAD_PARTS, INCIDENTS

# Heads loaded in this process, by (heads file, token): every investigation opens its own Memory,
# and reading two (dim+1)² float64 sums from disk each time cost more than the search itself.
# The token changes on every write of the sums, so a stale entry is never used; bounded, oldest out.
_LOADED_HEADS: dict[tuple[str, str], dict] = {}
_LOADED_HEADS_MAX = 4
_LOADED_HEADS_GUARD = threading.Lock()
# Heads computed and saved by one thread per heads file at a time (the others then load them).
_HEADS_LOCKS: dict[str, threading.Lock] = {}
_HEAD_KEY = "sleuth_head"  # collection metadata: the token of the head sums that match the collection
_HEAD_CHECK_S = 10.0


class HeadsMixin(ChromaCollections):
    """The category heads of the incidents (:mod:`index.learn`), kept in step with the collection."""

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
                           limit=GET_PAGE, offset=offset)
            vectors = page.get("embeddings")
            if vectors is not None and len(page["ids"]):
                self._update_heads(heads, self._head_rows(zip(page["metadatas"], vectors)), 1.0)
            if len(page["ids"]) < GET_PAGE:
                return heads
            offset += GET_PAGE
