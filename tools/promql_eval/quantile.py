"""Prometheus's quantile() over sets of samples and bucketQuantile over histogram buckets."""

from __future__ import annotations

import numpy as np


def quantile_rows(q: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Prometheus's quantile() for each row of ``matrix`` over its ``mask``ed cells: NaN samples
    sort first, then linear interpolation between the closest ranks; q NaN → NaN, q<0 → -Inf,
    q>1 → +Inf."""
    rows = np.arange(matrix.shape[0])
    width = matrix.shape[1]
    count = mask.sum(axis=1)
    nans = (np.isnan(matrix) & mask).sum(axis=1)
    with np.errstate(invalid="ignore"):
        n = count.astype(float)
        rank = q * (n - 1)
        floor = np.floor(rank)
        lower = np.maximum(0.0, floor)
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - floor
    usable = np.isfinite(lower) & np.isfinite(upper) & (count > 0) & (q >= 0) & (q <= 1)
    lo_i = np.where(usable, lower, 0).astype(np.int64)
    hi_i = np.where(usable, upper, 0).astype(np.int64)
    # NaN stands in as -Inf (it sorts first in Prometheus) and empty cells as +Inf (after every
    # sample), so the sorted row holds the window in Prometheus's order from position 0.
    ordered = np.sort(np.where(mask, np.where(np.isnan(matrix), -np.inf, matrix), np.inf), axis=1)
    low_value = np.where(lo_i < nans, np.nan, ordered[rows, np.minimum(lo_i, max(width - 1, 0))])
    high_value = np.where(hi_i < nans, np.nan, ordered[rows, np.minimum(hi_i, max(width - 1, 0))])
    with np.errstate(invalid="ignore"):
        result = low_value * (1 - weight) + high_value * weight
    result = np.where(usable, result, np.nan)
    result = np.where(q > 1, np.inf, result)
    result = np.where(q < 0, -np.inf, result)
    return np.where(np.isnan(q), np.nan, result)


def bucket_quantile(q: np.ndarray, bounds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """bucketQuantile's rules for buckets sorted by upper bound (rows) over some steps (columns)."""
    steps = counts.shape[1]
    result = np.full(steps, np.nan)
    if bounds.size and np.isposinf(bounds[-1]):
        # Buckets with the same upper bound count as one.
        unique, first = np.unique(bounds, return_index=True)
        merged = np.zeros((unique.size, steps))
        for row in range(bounds.size):
            merged[np.searchsorted(unique, bounds[row])] += counts[row]
        # Monotonicity fix: a bucket smaller than one below it takes that count. The envelope
        # starts from the lowest bucket's count, so a NaN there leaves the column as it is, and
        # a NaN further up stays NaN without lowering the envelope.
        with np.errstate(invalid="ignore"):
            running = np.fmax.accumulate(merged, axis=0)
        fixed = np.where(np.isnan(merged) | np.isnan(merged[0])[None, :], merged, running)
        if unique.size >= 2:
            n = unique.size
            observations = fixed[-1]
            cols = np.arange(steps)
            with np.errstate(all="ignore"):
                rank = q * observations
                # The first bucket reaching the rank, found by binary search over all but +Inf
                # (sort.Search): with NaN counts the predicate is not monotonic, and a linear scan
                # would pick a different bucket than Prometheus does.
                low, high = np.zeros(steps, dtype=np.int64), np.full(steps, n - 1, dtype=np.int64)
                while (low < high).any():
                    active = low < high
                    middle = (low + high) // 2
                    reached = fixed[np.minimum(middle, n - 1), cols] >= rank
                    low = np.where(active & ~reached, middle + 1, low)
                    high = np.where(active & reached, middle, high)
            b = low
            end = unique[b]
            below = np.where(b > 0, fixed[np.maximum(b - 1, 0), cols], 0.0)
            start = np.where(b > 0, unique[np.maximum(b - 1, 0)], 0.0)
            with np.errstate(all="ignore"):
                inside = start + (end - start) * ((rank - below) / (fixed[b, cols] - below))
            value = np.where(b == n - 1, unique[n - 2], inside)
            value = np.where((b == 0) & (unique[0] <= 0), unique[0], value)
            result = np.where(observations == 0, np.nan, value)
    result = np.where(q > 1, np.inf, result)
    result = np.where(q < 0, -np.inf, result)
    return np.where(np.isnan(q), np.nan, result)
