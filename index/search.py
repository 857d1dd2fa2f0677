"""Searching the memory: similar past incidents, the suggested category and fixes, runbooks."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Iterable, Sequence

import numpy as np

from index import learn
from index.entries import INCIDENTS, RUNBOOKS, keywords
from index.errors import SleuthIndexError
from index.heads import HeadsMixin
from index.results import MitigationSuggestion, RunbookResult, SimilarResult, Suggestion
from tools.timeparse import parse_iso
from index.validate import normalise_date


def _since_ts(since: Any) -> float | None:
    if since is None:
        return None
    if isinstance(since, (int, float)):
        return float(since)
    iso = normalise_date(since, "since")
    ts = parse_iso(iso)
    if ts is None:
        raise SleuthIndexError(f"since={since!r} is not a date; write it as YYYY-MM-DD")
    return ts


class SearchMixin(HeadsMixin):
    """Similar-incident search, suggestions and runbook search."""

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
