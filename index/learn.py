"""The category head: a ridge classifier over the embeddings, kept as running sums.

For each labelled record with embedding ``x`` and categories ``cs``: ``xb = [x, 1]`` and ``t`` =
the taxonomy categories with ``1/|cs|`` on each of the record's. The head keeps ``A = sum xb xbᵀ``
and ``B = sum xb tᵀ`` (removing a record subtracts its terms), and solves
``W = (A + λI)⁻¹ B`` on demand (λ = 1). A prediction is ``p = max(0, [x, 1] W)`` normalised.

Used twice by the memory (see ``index.store``): the ``early`` head (trained on what a responder
knows early) suggests a category; the ``full`` head (trained on whole records) re-ranks related
incidents by ``similarity + β · Σ_c p_c · y_jc / |y_j|``.

:func:`loo_predictions` is the exact leave-one-out of the same head in closed form (identical to
removing a record from the sums and solving again), for ``sleuth index eval``.
"""

from __future__ import annotations

import io
from typing import Iterable, Sequence

import numpy as np

from tools.taxonomy import CATEGORIES

LAMBDA = 1.0  # ridge regularisation (REPORT.md: goals hold for 0.1..3; not tuned to one corpus)
BETA = 1.0  # weight of category agreement when re-ranking related incidents
MIN_LABELLED_SUGGEST = 20  # below this, the neighbours' vote suggests the category
MIN_LABELLED_RERANK = 30  # below this, related incidents are ranked by similarity alone
CANDIDATES = 50  # related incidents: candidates fetched by similarity before the re-rank

HEADS = ("early", "full")


def targets(categories: Iterable[str]) -> np.ndarray:
    """A record's categories as the head's target row: 1/|cs| on each known taxonomy category."""
    cats = [c for c in dict.fromkeys(categories) if c in CATEGORIES]
    row = np.zeros(len(CATEGORIES))
    for c in cats:
        row[CATEGORIES.index(c)] = 1.0 / len(cats)
    return row


def normalise(scores: np.ndarray) -> np.ndarray:
    """max(0, f) normalised to sum 1 (row-wise); uniform when nothing is positive."""
    scores = np.maximum(np.atleast_2d(scores), 0.0)
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    return np.where(total > 0, scores / np.where(total > 0, total, 1.0), uniform)


def agreement(p: np.ndarray, candidate_categories: Sequence[Iterable[str]]) -> np.ndarray:
    """Σ_c p_c · y_jc / |y_j| for each candidate j (0 for an unlabelled candidate)."""
    if not len(candidate_categories):
        return np.zeros(0)
    Y = np.vstack([targets(cs) for cs in candidate_categories])
    return Y @ np.asarray(p, dtype=np.float64).ravel()


def rerank(similarities: np.ndarray, p: np.ndarray | None, candidate_categories: Sequence[Iterable[str]],
           beta: float = BETA) -> np.ndarray:
    """The related-incident score: similarity + β · agreement with the query's likely category."""
    sims = np.asarray(similarities, dtype=np.float64)
    if p is None or beta == 0:
        return sims
    return sims + beta * agreement(p, candidate_categories)


class CategoryHead:
    """Running sums A (d+1 x d+1) and B (d+1 x C) of a ridge classifier; W solved on demand and cached."""

    def __init__(self, dim: int, lam: float = LAMBDA) -> None:
        self.dim = int(dim)
        self.lam = float(lam)
        self.A = np.zeros((self.dim + 1, self.dim + 1))
        self.B = np.zeros((self.dim + 1, len(CATEGORIES)))
        self.n = 0  # labelled records in the sums
        self._W: np.ndarray | None = None

    @staticmethod
    def _bias(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return np.hstack([X, np.ones((X.shape[0], 1))])

    @staticmethod
    def sums(X: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
        """The terms records add to the sums: (Σ x̃x̃ᵀ, Σ x̃tᵀ, how many), None when none is labelled.

        Bulk (64 records or more): the products in float32 (2x faster), to be summed in float64.
        """
        X = np.atleast_2d(np.asarray(X))
        T = np.atleast_2d(np.asarray(T, dtype=np.float64))
        keep = T.sum(axis=1) > 0  # unlabelled records teach nothing
        if not keep.any():
            return None
        if not keep.all():
            X, T = X[keep], T[keep]
        if X.shape[0] >= 64:
            Xb = np.empty((X.shape[0], X.shape[1] + 1), dtype=np.float32)
            Xb[:, :-1] = X
            Xb[:, -1] = 1.0
        else:
            Xb = CategoryHead._bias(X)
        return Xb.T @ Xb, Xb.T.astype(np.float64) @ T, int(keep.sum())

    def add_sums(self, A: np.ndarray, B: np.ndarray, n: int, sign: float = 1.0) -> None:
        """Add (sign=+1) or remove (sign=-1) terms computed by :meth:`sums`."""
        if A.shape[0] != self.dim + 1:
            raise ValueError(f"the head has {self.dim} dimensions, the embeddings {A.shape[0] - 1}")
        if sign == 1.0:
            self.A += A
            self.B += B
        else:
            self.A += sign * A
            self.B += sign * B
        self.n += int(sign) * int(n)
        self._W = None

    def update(self, X: np.ndarray, T: np.ndarray, sign: float = 1.0) -> None:
        """Add (sign=+1) or remove (sign=-1) records: embeddings X (n x d), targets T (n x C)."""
        X = np.atleast_2d(np.asarray(X))
        if X.shape[1] != self.dim:
            raise ValueError(f"the head has {self.dim} dimensions, the embeddings {X.shape[1]}")
        terms = self.sums(X, T)
        if terms is not None:
            self.add_sums(*terms, sign)

    def add(self, X: np.ndarray, T: np.ndarray) -> None:
        self.update(X, T, 1.0)

    def remove(self, X: np.ndarray, T: np.ndarray) -> None:
        self.update(X, T, -1.0)

    def weights(self) -> np.ndarray:
        if self._W is None:
            A = self.A + self.lam * np.eye(self.dim + 1)
            self._W = np.linalg.solve(A, self.B)
        return self._W

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self._bias(X) @ self.weights()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Category probabilities (rows sum to 1), one row per embedding."""
        return normalise(self.scores(X))

    # -- persistence (numpy's npz format, in bytes so that any store can keep it) --

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_A": self.A, f"{prefix}_B": self.B, f"{prefix}_n": np.array(self.n),
                f"{prefix}_lam": np.array(self.lam)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "CategoryHead":
        A = arrays[f"{prefix}_A"]
        head = cls(A.shape[0] - 1, float(arrays[f"{prefix}_lam"]))
        head.A = np.array(A, dtype=np.float64)
        head.B = np.array(arrays[f"{prefix}_B"], dtype=np.float64)
        head.n = int(arrays[f"{prefix}_n"])
        return head


def dump_heads(heads: dict[str, CategoryHead], token: str) -> bytes:
    arrays: dict[str, np.ndarray] = {"token": np.array(token), "categories": np.array(list(CATEGORIES))}
    for name, head in heads.items():
        arrays.update(head.to_arrays(name))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle
    return buffer.getvalue()


def load_heads(data: bytes) -> tuple[dict[str, CategoryHead], str]:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        loaded = {k: arrays[k] for k in arrays.files}
    if list(loaded["categories"]) != list(CATEGORIES):
        raise ValueError("the head was built for another taxonomy")
    heads = {name: CategoryHead.from_arrays(loaded, name) for name in HEADS if f"{name}_A" in loaded}
    return heads, str(loaded["token"])


def loo_predictions(X: np.ndarray, T: np.ndarray, lam: float = LAMBDA) -> np.ndarray:
    """Leave-one-out probabilities of the head: row i = predict(x_i) with record i removed from the sums.

    Closed form of ridge with an intercept (kernel K = XXᵀ + 1): f₋ᵢ = (fᵢ - Hᵢᵢ tᵢ) / (1 - Hᵢᵢ) with
    H = K (K + λI)⁻¹. Exactly the same as ``CategoryHead`` without record i (tests check it), in
    O(n³) instead of n solves of size d + 1.
    """
    X = np.asarray(X, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    K = X @ X.T + 1.0
    n = K.shape[0]
    H = np.linalg.solve((K + lam * np.eye(n)).T, K.T).T  # K (K + λI)^-1
    F = H @ T
    h = np.diag(H)[:, None]
    return normalise((F - h * T) / (1.0 - h))
