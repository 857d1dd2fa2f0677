"""Anomaly onset on one series: when did it leave its normal range, how far, and for how long.

Each point of the window is scored against a baseline that precedes it, in two views: the raw level
(median and MAD of the baseline), and, when the same clock time a day earlier is present, the
residual after subtracting yesterday (which removes daily patterns). A point counts as anomalous
only where both views agree, so a morning ramp is not an incident and neither is yesterday's
outage. An onset needs a sustained run, and the level reached must exceed what the baseline itself
reached (a spike as tall as the baseline's own spikes is normal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAY_S = 86400.0
Z_THRESHOLD = 4.0
RUN_LENGTH = 5  # points inspected for a sustained departure
RUN_HITS = 4  # of which at least this many must be anomalous
Z_CAP = 200.0


@dataclass
class Anomaly:
    onset: float  # unix seconds
    direction: str  # "up" or "down"
    magnitude: float  # robust z reached after onset (75th percentile), capped
    persistence: float  # share of points after onset that stay anomalous
    score: float  # 0..1, what ranking uses
    baseline_median: float
    baseline_upper: float  # the baseline's own extreme (in the bad direction)
    level_after: float  # median raw value after onset
    peak: float  # most extreme raw value after onset


def _robust_scale(values: np.ndarray, level: float) -> float:
    mad = float(np.median(np.abs(values - np.median(values)))) * 1.4826
    iqr = float(np.subtract(*np.percentile(values, [75, 25]))) / 1.349
    # A floor keeps a perfectly flat baseline from turning a tiny wobble into a huge z.
    return max(mad, iqr, 0.01 * abs(level), 1e-9)


def _day_ago(ts: np.ndarray, values: np.ndarray, at: np.ndarray, step: float) -> np.ndarray:
    """Values one day before each time in ``at`` (NaN where none within a step)."""
    target = at - DAY_S
    idx = np.clip(np.searchsorted(ts, target), 0, len(ts) - 1)
    prev = np.clip(idx - 1, 0, len(ts) - 1)
    best = np.where(np.abs(ts[prev] - target) < np.abs(ts[idx] - target), prev, idx)
    out = values[best].astype(float)
    out[np.abs(ts[best] - target) > step] = np.nan
    return out


def _zscores(base: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    level = float(np.median(base))
    scale = _robust_scale(base, level)
    return (base - level) / scale, (window - level) / scale


def detect(
    ts: np.ndarray,
    values: np.ndarray,
    window_start: float,
    window_end: float,
    baseline_s: float,
    direction: str = "both",
    step: float = 60.0,
) -> Anomaly | None:
    """The sustained departure from normal that begins inside [window_start, window_end], if any.

    ``direction`` is the bad direction of the signal ("up", "down" or "both").
    """
    ts = np.asarray(ts, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    ts, values = ts[keep], values[keep]
    base_mask = (ts >= window_start - baseline_s) & (ts < window_start)
    win_mask = (ts >= window_start) & (ts <= window_end)
    if base_mask.sum() < 10 or win_mask.sum() < RUN_LENGTH:
        return None
    base, win = values[base_mask], values[win_mask]
    win_ts = ts[win_mask]

    z_base, z_win = _zscores(base, win)
    views = [(z_base, z_win)]
    ref_base = _day_ago(ts, values, ts[base_mask], step)
    ref_win = _day_ago(ts, values, win_ts, step)
    if np.isfinite(ref_base).mean() > 0.8 and np.isfinite(ref_win).mean() > 0.8:
        rb, rw = base - ref_base, win - ref_win
        rb_ok = np.isfinite(rb)
        residual_base, residual_win = _zscores(rb[rb_ok], np.nan_to_num(rw, nan=0.0))
        full = np.zeros_like(z_base)
        full[rb_ok] = residual_base
        views.append((full, residual_win))

    best: Anomaly | None = None
    for sign, name in ((1.0, "up"), (-1.0, "down")):
        if direction not in ("both", name):
            continue
        # Elementwise minimum across views: anomalous only where every view agrees.
        z = np.min(np.vstack([sign * w for _, w in views]), axis=0)
        zb = np.min(np.vstack([sign * b for b, _ in views]), axis=0)
        candidate = _sustained(z, zb, win_ts, win, base, sign, name)
        if candidate and (best is None or candidate.score > best.score):
            best = candidate
    return best


def _sustained(z: np.ndarray, z_base: np.ndarray, win_ts: np.ndarray, win: np.ndarray,
               base: np.ndarray, sign: float, name: str) -> Anomaly | None:
    hits = z > Z_THRESHOLD
    n = len(z)
    onset_idx = None
    for i in range(0, n - 1):
        run = hits[i : i + RUN_LENGTH]
        needed = min(RUN_HITS, len(run))
        if hits[i] and run.sum() >= needed and len(run) >= 2:
            onset_idx = i
            break
    if onset_idx is None:
        return None
    # Walk back over the rising edge: the departure starts before it crosses the threshold.
    while onset_idx > 0 and z[onset_idx - 1] > Z_THRESHOLD / 2 and onset_idx > 0:
        onset_idx -= 1
    after = z[onset_idx:]
    magnitude = float(min(np.percentile(after, 75), Z_CAP))
    persistence = float((after > Z_THRESHOLD).mean())
    upper = float(np.percentile(z_base, 99.5)) if z_base.size else 0.0
    raw_after = win[onset_idx:]
    level_after = float(np.median(raw_after))
    peak = float(raw_after.max() if sign > 0 else raw_after.min())
    base_extreme = float(base.max() if sign > 0 else base.min())
    # Within the baseline's own range: as tall as the spikes it already had.
    if magnitude <= max(upper * 1.2, Z_THRESHOLD):
        return None
    strength = 1 - math.exp(-(magnitude - Z_THRESHOLD) / 12)
    score = round(strength * (0.4 + 0.6 * persistence), 4)
    return Anomaly(
        onset=float(win_ts[onset_idx]),
        direction=name,
        magnitude=round(magnitude, 2),
        persistence=round(persistence, 3),
        score=score,
        baseline_median=float(np.median(base)),
        baseline_upper=base_extreme,
        level_after=level_after,
        peak=peak,
    )
