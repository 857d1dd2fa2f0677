"""The memory's Chroma connection: the client, its collections and their embedding function, rebuild."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from index import learn
from index.config import MemoryConfig
from index.embeddings import HashedNgramEmbedding, make_embedding
from index.entries import INCIDENT_PART, INCIDENTS, RUNBOOKS, early_text_of, entry_metadata, incident_metadata, \
    incident_parts, pack_metadata
from index.errors import ChromaUnavailable, EmbeddingMismatch, SleuthIndexError

_REBUILD_SUFFIX = "-rebuilding"
GET_PAGE = 1000  # entries per paged Chroma get()
# First use under concurrency: chromadb registers a client's system in a class-level table before
# starting it, so two threads opening the same path at once see a half-started system (KeyError,
# AttributeError, "could not connect to tenant"). Clients are opened, and collections fetched or
# created, one at a time in this process; once open they are used concurrently.
_OPENING = threading.RLock()


class ChromaCollections:
    """The Chroma client and the memory's collections; the base of :class:`index.store.Memory`."""

    # How an incident is laid out as entries (see :mod:`index.entries`).
    incident_parts = staticmethod(incident_parts)
    incident_metadata = staticmethod(incident_metadata)
    pack_metadata = staticmethod(pack_metadata)
    entry_metadata = staticmethod(entry_metadata)
    early_text_of = staticmethod(early_text_of)

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
                page = col.get(include=[], limit=GET_PAGE, offset=offset)
                ids.update(pid.rsplit("#", 2)[0] for pid in page["ids"])  # part id = record#part#hash
                if len(page["ids"]) < GET_PAGE:
                    return len(ids)
                offset += GET_PAGE

    def part_ids(self, record_id: str, name: str = INCIDENTS) -> list[str]:
        with self._guard():
            return sorted(self.collection(name).get(where={"record_id": record_id}, include=[])["ids"])

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
                    page = old.get(include=["documents", "metadatas"], limit=GET_PAGE, offset=offset)
                    ids += page["ids"]
                    plain = [self.entry_metadata(m) for m in page["metadatas"]]
                    docs += [d if d is not None else m.get("text", "") for d, m in zip(page["documents"], plain)]
                    metas += plain
                    if len(page["ids"]) < GET_PAGE:
                        break
                    offset += GET_PAGE
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
            if meta.get("part") == INCIDENT_PART and key in summaries and early_text_of(meta, doc) is None:
                early = summaries[key]
                meta = dict(meta)
                if doc.startswith(early):
                    meta["early_len"] = len(early)
                else:
                    meta["early_text"] = early
            for column, value in zip(out, (pid, doc, meta)):
                column.append(value)
        return out
