"""``sleuth index eval``: leave-one-out quality of the memory on a labelled corpus.

Two measures, as the memory issue defines them, for each embedding function available offline
(the hashed one always; MiniLM only when its files are on disk), beside the majority-class baseline:

- early suggestion: the query is what a responder knows early (``IncidentRecord.early_text``:
  title, summary, services, impact symptoms, operation; never the details, never a label); the
  score is the accuracy of the suggested category (any of a multi-label record's categories counts);
- related incidents: the query is the whole record except its labels (``IncidentRecord.full_text``);
  the score is the precision@5 of neighbours sharing a category with it.

The product's code computes both: the same embedding functions, the same record texts, the same
category head (:mod:`index.learn`, its leave-one-out in exact closed form: the query record is
removed from the head's sums) and the same re-rank of the ``learn.CANDIDATES`` most similar
records. Leave-one-out: the query record is never among its own candidates and its labels never
reach the head. Done in-process on an embedding matrix, not through Chroma (same vectors, exact
search instead of HNSW). The keyword, service and recency bonuses of ``find_similar_incidents``
are not part of the measure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from index import learn
from index.errors import SleuthIndexError
from index.records import IncidentRecord, collect

MIN_RECORDS = 10
TOP_K = 5


def _embed(function: Any, texts: Sequence[str]) -> np.ndarray:
    if hasattr(function, "matrix"):
        return np.asarray(function.matrix(texts), dtype=np.float64)
    out = []
    for start in range(0, len(texts), 256):
        out += [np.asarray(v, dtype=np.float64) for v in function(list(texts[start:start + 256]))]
    return np.vstack(out)


def offline_functions(dim: int | None = None) -> tuple[list[tuple[str, Any]], list[str]]:
    """(label, embedding function) for each function usable offline, and why others were left out."""
    from index.embeddings import DEFAULT_DIM, HashedNgramEmbedding, LocalMiniLMEmbedding, default_minilm_dir, \
        missing_minilm_files

    functions: list[tuple[str, Any]] = [("hashed", HashedNgramEmbedding(dim=dim or DEFAULT_DIM))]
    notes = []
    missing = missing_minilm_files(default_minilm_dir())
    if missing:
        notes.append(f"onnx-minilm not evaluated: its model files are not in {default_minilm_dir()} "
                     "(nothing is downloaded)")
    else:
        functions.append(("onnx-minilm", LocalMiniLMEmbedding()))
    return functions, notes


def _neighbour_vote(S: np.ndarray, T: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """The product's fallback: the k nearest records' similarity²-weighted vote (unknown never wins a vote)."""
    votes = np.zeros_like(T)
    voting = T.copy()
    if "unknown" in learn.CATEGORIES:
        voting[:, learn.CATEGORIES.index("unknown")] = 0.0
    for q in range(len(S)):
        idx = np.argsort(-S[q], kind="stable")[:k]
        weights = np.maximum(S[q, idx], 0.0) ** 2
        row = voting[idx]
        share = row / np.maximum((row > 0).sum(axis=1, keepdims=True), 1) * (row > 0)
        votes[q] = weights @ share
    return votes


def measure(Xe: np.ndarray, Xf: np.ndarray, T: np.ndarray, *, beta: float = learn.BETA) -> dict[str, float]:
    """Leave-one-out early accuracy and related precision@5 from the early and full embeddings."""
    n = len(T)
    Y = T > 0
    same = (Y.astype(float) @ Y.T.astype(float)) > 0  # two records are related when their category sets meet
    categories = [[learn.CATEGORIES[c] for c in np.flatnonzero(row)] for row in Y]

    # Early: the early head without the query record (the product's rule: the neighbours' vote below
    # MIN_LABELLED_SUGGEST labelled records).
    Se = Xe @ Xe.T
    np.fill_diagonal(Se, -np.inf)
    if n - 1 >= learn.MIN_LABELLED_SUGGEST:
        early_scores = learn.loo_predictions(Xe, T)
    else:
        early_scores = _neighbour_vote(Se, T)
    early = float(np.mean(Y[np.arange(n), early_scores.argmax(axis=1)]))
    vote = float(np.mean(Y[np.arange(n), _neighbour_vote(Se, T).argmax(axis=1)]))

    # Related: the CANDIDATES most similar records, re-ranked by similarity + beta * agreement with the
    # full head's prediction for the query (the head without the query record).
    Sf = Xf @ Xf.T
    np.fill_diagonal(Sf, -np.inf)
    rerank = n - 1 >= learn.MIN_LABELLED_RERANK and beta > 0
    Pf = learn.loo_predictions(Xf, T) if rerank else None
    hits, plain = [], []
    for q in range(n):
        order = np.argsort(-Sf[q], kind="stable")[:min(learn.CANDIDATES, n - 1)]
        scores = learn.rerank(Sf[q, order], Pf[q] if Pf is not None else None, [categories[j] for j in order],
                              beta if rerank else 0.0)
        top = order[np.argsort(-scores, kind="stable")[:TOP_K]]
        hits.append(same[q, top].mean())
        plain.append(same[q, order[:TOP_K]].mean())
    return {"early_category_accuracy": round(early, 4), "related_precision_at_5": round(float(np.mean(hits)), 4),
            "early_neighbour_vote_accuracy": round(vote, 4),
            "related_precision_at_5_similarity_only": round(float(np.mean(plain)), 4)}


def evaluate(paths: Iterable[Path], *, dim: int | None = None,
             functions: list[tuple[str, Any]] | None = None) -> dict[str, Any]:
    """The eval report (a JSON-ready dict); the top-level figures are those of the hashed embedding."""
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    records, skipped = collect(paths)
    # As `sleuth index add` does: one record per id, the first one read (a repeated id would also be
    # a near-copy of the query among its own candidates).
    unique: dict[str, IncidentRecord] = {}
    for record in records:
        if record.id in unique:
            skipped.append((record.source, f"id {record.id} was already read from {unique[record.id].source}; "
                                           "left out, as sleuth index add would"))
        else:
            unique[record.id] = record
    records = list(unique.values())
    labelled: list[IncidentRecord] = [r for r in records if any(c in learn.CATEGORIES for c in r.categories)]
    if len(labelled) < MIN_RECORDS:
        raise SleuthIndexError(f"only {len(labelled)} labelled records under {', '.join(map(str, paths))}; "
                               f"leave-one-out needs at least {MIN_RECORDS} records with a root-cause category")
    T = np.vstack([learn.targets(r.categories) for r in labelled])
    Y = T > 0
    carrying = Y.sum(axis=0)
    majority = int(np.argmax(carrying))
    notes: list[str] = []
    if functions is None:
        functions, notes = offline_functions(dim)
    early_texts = [r.early_text() for r in labelled]
    full_texts = [r.full_text() for r in labelled]
    strict_texts = [r.full_text(strict=True) for r in labelled]
    by_function: dict[str, Any] = {}
    for label, function in functions:
        t0 = time.perf_counter()
        try:
            Xe, Xf, Xs = (_embed(function, texts) for texts in (early_texts, full_texts, strict_texts))
        except SleuthIndexError as exc:
            notes.append(f"{label} not evaluated: {exc}")
            continue
        embed_s = time.perf_counter() - t0
        figures: dict[str, Any] = dict(measure(Xe, Xf, T))
        figures["related_precision_at_5_strict"] = measure(Xe, Xs, T)["related_precision_at_5"]
        figures["embedding"] = {"name": function.name(), "config": function.get_config()}
        figures["embed_seconds"] = round(embed_s, 2)
        by_function[label] = figures
    if not by_function:
        raise SleuthIndexError("no embedding function could be evaluated: " + "; ".join(notes))
    main = by_function.get("hashed") or next(iter(by_function.values()))
    baseline = round(float(carrying[majority] / len(labelled)), 4)
    report: dict[str, Any] = {
        "early_category_accuracy": main["early_category_accuracy"],
        "related_precision_at_5": main["related_precision_at_5"],
        "majority_baseline": baseline,
        "records": len(labelled),
        "majority_category": learn.CATEGORIES[majority],
        "unlabelled_records": len(records) - len(labelled),
        "category_counts": {learn.CATEGORIES[c]: int(carrying[c]) for c in np.argsort(-carrying, kind="stable")
                            if carrying[c]},
        "goals": {"early_category_accuracy": round(baseline + 0.05, 4), "related_precision_at_5": 0.55},
        "by_embedding": by_function,
        "method": ("leave-one-out; early: ridge category head on early-text embeddings (closed form, the query "
                   "removed from its sums); related: the 50 most similar whole records re-ranked by similarity "
                   "+ 1 x agreement with the full head's prediction, precision@5"),
        "notes": notes + [f"{source}: {why}" for source, why in skipped],
        "seconds": round(time.perf_counter() - started, 2),
    }
    report["meets_goals"] = bool(report["early_category_accuracy"] >= report["goals"]["early_category_accuracy"]
                                 and report["related_precision_at_5"] >= report["goals"]["related_precision_at_5"])
    return report
