"""Functions over range vectors (rate, increase, delta, *_over_time, ...), evaluated per window of samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tools.promql_eval.quantile import quantile_rows

# Above this many window cells a matrix function works through the grid in blocks, so a [1d]
# range at a fine step does not allocate a grid-by-samples matrix at once.
_BLOCK_CELLS = 1 << 20
# Counter resets are usually rare; up to this many per series the reset corrections are added one
# by one in time order (Prometheus's order, so the sums agree to the last bit).
_SEQUENTIAL_RESETS = 256


@dataclass
class Window:
    """One stored series' samples and, per step, the index range of its window [t - range, t]."""

    ts: np.ndarray
    vals: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray
    ref: np.ndarray
    range_ms: int
    q: np.ndarray | None


def _window_blocks(w: Window):
    """Each non-empty window as a row as wide as the widest (rows are contiguous copies of a
    sliding view over the samples) with a mask of its real cells; a block of steps at a time so
    a long range stays within memory."""
    steps = np.flatnonzero(w.n >= 1)
    if not steps.size:
        return
    width = int(w.n[steps].max())
    padded = np.concatenate((w.vals, np.full(width, np.nan)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    offsets = np.arange(width)
    block = max(1, _BLOCK_CELLS // width)
    for first in range(0, steps.size, block):
        chosen = steps[first:first + block]
        yield chosen, windows[w.lo[chosen]], offsets[None, :] < w.n[chosen][:, None]


def _fold_windows(fold: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def compute(w: Window):
        values = np.full(w.n.size, np.nan)
        for chosen, cells, mask in _window_blocks(w):
            with np.errstate(all="ignore"):
                values[chosen] = fold(cells, mask)
        return values, w.n >= 1
    return compute


def _compensated_add(total: np.ndarray, compensation: np.ndarray, increment: np.ndarray):
    """One step of Neumaier's compensated summation, which Prometheus uses over time: the lost
    low-order bits are carried in ``compensation`` and added back at the end."""
    new_total = total + increment
    lost = np.where(np.abs(total) >= np.abs(increment), (total - new_total) + increment,
                    (increment - new_total) + total)
    return new_total, compensation + lost


def _sum_cells(cells: np.ndarray, mask: np.ndarray) -> np.ndarray:
    total = np.zeros(cells.shape[0])
    compensation = np.zeros(cells.shape[0])
    for k in range(cells.shape[1]):
        stepped, carried = _compensated_add(total, compensation, cells[:, k])
        total = np.where(mask[:, k], stepped, total)
        compensation = np.where(mask[:, k], carried, compensation)
    return np.where(np.isinf(total), total, total + compensation)


def _avg_cells(cells: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # A running mean (it cannot overflow), compensated like the sum; not the sum over the count,
    # whose rounding differs in the last bit, which ceil() or a difference would show.
    mean = np.zeros(cells.shape[0])
    compensation = np.zeros(cells.shape[0])
    count = np.zeros(cells.shape[0])
    for k in range(cells.shape[1]):
        v, active = cells[:, k], mask[:, k]
        count = count + active
        update = active & ~mean_stuck(mean, v)
        stepped, carried = _compensated_add(mean, compensation, v / count - mean / count)
        mean = np.where(update, stepped, mean)
        compensation = np.where(update, carried, compensation)
    return np.where(np.isinf(mean), mean, mean + compensation)


def mean_stuck(mean: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where an infinite running mean stays as it is: against the same infinity or any finite
    number (the update would subtract infinities and give NaN)."""
    return np.isinf(mean) & ((np.isinf(v) & ((mean > 0) == (v > 0))) | np.isfinite(v))


def _extreme_windows(ufunc: np.ufunc):
    """min/max over each window straight from the samples with reduceat (no arithmetic, so no
    order question, and no steps-by-width matrix)."""
    def compute(w: Window):
        present = w.n >= 1
        values = np.full(w.n.size, np.nan)
        if present.any():
            lo, hi = w.lo[present], w.hi[present]
            # reduceat reduces between consecutive indices; the odd slots (hi to the next lo) are
            # discarded. The padding keeps an index equal to the sample count valid.
            padded = np.append(w.vals, 0.0)
            index = np.empty(2 * lo.size, dtype=np.int64)
            index[0::2], index[1::2] = lo, hi
            values[present] = ufunc.reduceat(padded, index)[0::2]
        return values, present
    return compute


def _count(w: Window):
    return w.n.astype(float), w.n >= 1


def _last(w: Window):
    present = w.n >= 1
    return np.where(present, w.vals[np.maximum(w.hi - 1, 0)], np.nan), present


def _present(w: Window):
    present = w.n >= 1
    return np.ones(w.n.size), present


def _quantile_over_time(w: Window):
    if w.q is None:  # not reached: the function's caller always evaluates its quantile argument
        raise ValueError("quantile_over_time() needs a quantile")
    values = np.full(w.n.size, np.nan)
    for chosen, cells, mask in _window_blocks(w):
        values[chosen] = quantile_rows(w.q[chosen], cells, mask)
    return values, w.n >= 1


def _pair_flags(w: Window, flags: np.ndarray):
    """How many adjacent sample pairs inside each window are flagged (flags[j] is about j-1→j)."""
    cumulative = np.concatenate(([0], np.cumsum(flags)))
    start = np.minimum(w.lo + 1, w.hi)
    return (cumulative[w.hi] - cumulative[start]).astype(float), w.n >= 1


def _resets(w: Window):
    flags = np.zeros(w.vals.size, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        flags[1:] = w.vals[1:] < w.vals[:-1]
    return _pair_flags(w, flags)


def _changes(w: Window):
    flags = np.zeros(w.vals.size, dtype=np.int64)
    both_nan = np.isnan(w.vals[1:]) & np.isnan(w.vals[:-1])
    flags[1:] = (w.vals[1:] != w.vals[:-1]) & ~both_nan
    return _pair_flags(w, flags)


def _instant_value(is_rate: bool):
    """irate/idelta: the last two samples of the window."""
    def compute(w: Window):
        present = w.n >= 2
        values = np.full(w.n.size, np.nan)
        if present.any():
            last_i = w.hi[present] - 1
            last, previous = w.vals[last_i], w.vals[last_i - 1]
            interval_ms = w.ts[last_i] - w.ts[last_i - 1]
            with np.errstate(all="ignore"):
                if is_rate:  # a drop is a counter reset: the new value is the increase
                    result = np.where(last < previous, last, last - previous) / (interval_ms / 1000.0)
                else:
                    result = last - previous
            values[present] = result
        return values, present
    return compute


def _extrapolated(is_counter: bool, is_rate: bool):
    """rate, increase and delta: the change over the window, corrected for counter resets and
    extrapolated towards the window's edges as Prometheus 2.42's extrapolatedRate does."""
    def compute(w: Window):
        present = w.n >= 2
        values = np.full(w.n.size, np.nan)
        if not present.any():
            return values, present
        first_i, last_i = w.lo[present], w.hi[present] - 1
        first, last = w.vals[first_i], w.vals[last_i]
        with np.errstate(all="ignore"):
            result = last - first
            if is_counter:
                result = _add_resets(w.vals, first_i, last_i, result)
            duration_to_start = (w.ts[first_i] - (w.ref[present] - w.range_ms)) / 1000.0
            duration_to_end = (w.ref[present] - w.ts[last_i]) / 1000.0
            sampled = (w.ts[last_i] - w.ts[first_i]) / 1000.0
            average = sampled / (w.n[present] - 1)
            if is_counter:
                # A counter cannot go below zero: extrapolate no further back than where it would be 0.
                to_zero = sampled * (first / result)
                use_zero = (result > 0) & (first >= 0) & (to_zero < duration_to_start)
                duration_to_start = np.where(use_zero, to_zero, duration_to_start)
            threshold = average * 1.1
            interval = sampled + np.where(duration_to_start < threshold, duration_to_start, average / 2)
            interval = interval + np.where(duration_to_end < threshold, duration_to_end, average / 2)
            factor = interval / sampled
            if is_rate:
                factor = factor / (w.range_ms / 1000.0)
            values[present] = result * factor
        return values, present
    return compute


def _add_resets(vals: np.ndarray, first_i: np.ndarray, last_i: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Adds, for every drop inside a window, the value before the drop (what the counter had
    reached before it restarted)."""
    with np.errstate(invalid="ignore"):
        drops = np.flatnonzero(vals[1:] < vals[:-1]) + 1
    if drops.size <= _SEQUENTIAL_RESETS:
        for j in drops:  # in time order, as Prometheus adds them
            inside = (first_i < j) & (j <= last_i)
            result = np.where(inside, result + vals[j - 1], result)
        return result
    corrections = np.zeros(vals.size + 1)
    corrections[drops] = vals[drops - 1]
    index = np.empty(2 * first_i.size, dtype=np.int64)
    index[0::2] = first_i + 1
    index[1::2] = last_i + 1
    sums = np.add.reduceat(corrections, index)[0::2]
    return result + np.where(last_i > first_i, sums, 0.0)


RANGE_FUNCTIONS: dict[str, Callable[[Window], tuple[np.ndarray, np.ndarray]]] = {
    "rate": _extrapolated(is_counter=True, is_rate=True),
    "increase": _extrapolated(is_counter=True, is_rate=False),
    "delta": _extrapolated(is_counter=False, is_rate=False),
    "irate": _instant_value(is_rate=True),
    "idelta": _instant_value(is_rate=False),
    "resets": _resets,
    "changes": _changes,
    "avg_over_time": _fold_windows(_avg_cells),
    "sum_over_time": _fold_windows(_sum_cells),
    # NaN loses to any number, as in Prometheus: fmin/fmax ignore NaN unless all are NaN.
    "min_over_time": _extreme_windows(np.fmin),
    "max_over_time": _extreme_windows(np.fmax),
    "count_over_time": _count,
    "last_over_time": _last,
    "present_over_time": _present,
    "quantile_over_time": _quantile_over_time,
}
