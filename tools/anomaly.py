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
from dataclasses import dataclass, field

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
    short: bool = False  # 2-3 points only: counts when another signal of the component confirms it
    end: float = math.inf  # the last point still out of range (unix seconds)
    # Every departure of the window that qualified, in time order (this one among them): the
    # analysis picks the one that matters for the incident's onset.
    episodes: list["Anomaly"] = field(default_factory=list, repr=False)
    stopped: bool = False  # the series stopped reporting (a dead pod, process or node)
    weak: bool = False  # a slow drift below the sustained-departure rule: a lead, not a finding


def _robust_scale(values: np.ndarray, level: float) -> float:
    mad = float(np.median(np.abs(values - np.median(values)))) * 1.4826
    iqr = float(np.subtract(*np.percentile(values, [75, 25]))) / 1.349
    # A floor keeps a perfectly flat baseline from turning a tiny wobble into a huge z.
    return max(mad, iqr, 0.01 * abs(level), _resolution(values), 1e-9)


def _resolution(values: np.ndarray) -> float:
    """The step between the few values a quantized series can take (0 for a continuous one).

    A low-traffic p99 read from histogram buckets sits on a handful of values (0.005, 0.01,
    0.025 s); moving one of those steps is the smallest change it can show, not a departure of
    hundreds of deviations from a flat line.
    """
    distinct = np.unique(values)
    if len(distinct) < 2 or len(distinct) > max(6, len(values) // 5):
        return 0.0
    return float(np.median(np.diff(distinct)))


def _finite(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points with a value (NaN and infinities dropped), as float arrays."""
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    return ts[keep], values[keep]


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
    ts, values = _finite(ts, values)
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


def _runs(hits: np.ndarray, gap: int = 1) -> list[tuple[int, int]]:
    """Stretches of hits as (first, last) indexes, bridging gaps of up to ``gap`` missed points."""
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(hits):
        if runs and i - runs[-1][1] <= gap + 1:
            runs[-1] = (runs[-1][0], int(i))
        else:
            runs.append((int(i), int(i)))
    return runs


def _bar(z_base: np.ndarray) -> float:
    """How far the baseline itself went, in z, leaving out earlier incidents.

    Isolated points count (noise that spikes is normal for that series), and so do episodes that
    recur (a cron job's bursts): the third tallest of them sets the bar. One or two episodes are
    earlier incidents, and an incident an hour ago must not hide the one happening now.
    """
    z_base = np.minimum(z_base, Z_CAP)
    hits = z_base > Z_THRESHOLD
    episodes = [(a, b) for a, b in _runs(hits, gap=0) if b > a]
    clean = np.ones(len(z_base), dtype=bool)
    for a, b in episodes:
        clean[max(0, a - 1): b + 2] = False
    upper = float(np.percentile(z_base[clean], 99.5)) if clean.sum() >= 5 else float(np.percentile(z_base, 90))
    heights = sorted((float(z_base[a: b + 1].max()) for a, b in episodes), reverse=True)
    recurring = heights[2] if len(heights) >= 3 else 0.0
    return max(upper, recurring)


def _sustained(z: np.ndarray, z_base: np.ndarray, win_ts: np.ndarray, win: np.ndarray,
               base: np.ndarray, sign: float, name: str) -> Anomaly | None:
    """The strongest departure of the window: a sustained one (4 of 5 points out of range, or out
    of range from its start to the window's end), or a short one (2-3 points in a row) that the
    caller keeps only when another signal of the same component confirms it."""
    hits = z > Z_THRESHOLD
    n = len(z)
    upper = _bar(z_base)
    found: list[Anomaly] = []
    for first, last in _runs(hits):
        count = int(hits[first: last + 1].sum())
        to_end = last == n - 1 and count == last - first + 1
        consecutive = max(b - a + 1 for a, b in _runs(hits[first: last + 1], gap=0))
        sustained = (count >= RUN_HITS and count >= 0.75 * (last - first + 1)) or (to_end and count >= 2)
        if not sustained and consecutive < 2:
            continue
        onset_idx = first
        # Walk back over the rising edge: the departure starts before it crosses the threshold.
        while onset_idx > 0 and z[onset_idx - 1] > Z_THRESHOLD / 2 and not hits[onset_idx - 1]:
            onset_idx -= 1
        episode = np.minimum(z[onset_idx: last + 1], Z_CAP)
        magnitude = float(np.percentile(episode, 75))
        # Within the baseline's own range: as tall as the spikes it already had.
        if magnitude <= max(upper * 1.2, Z_THRESHOLD):
            continue
        persistence = float((z[onset_idx:] > Z_THRESHOLD).mean())
        strength = 1 - math.exp(-(magnitude - Z_THRESHOLD) / 12)
        score = round(strength * (0.4 + 0.6 * persistence), 4)
        raw_after = win[onset_idx: last + 1]
        found.append(Anomaly(
            onset=float(win_ts[onset_idx]),
            direction=name,
            magnitude=round(magnitude, 2),
            persistence=round(persistence, 3),
            score=score,
            baseline_median=float(np.median(base)),
            baseline_upper=float(base.max() if sign > 0 else base.min()),
            level_after=float(np.median(raw_after)),
            peak=float(raw_after.max() if sign > 0 else raw_after.min()),
            short=not sustained,
            end=float(win_ts[last]),
        ))
    if not found:
        return None
    best = max(found, key=lambda a: (a.score, a.onset))
    best.episodes = found
    return best


STOP_STEPS = 3  # missing for this many steps at the end of the window: stopped, not late


def stopped(ts: np.ndarray, values: np.ndarray, window_start: float, window_end: float,
            baseline_s: float, step: float, data_until: float) -> Anomaly | None:
    """A series that reported through its baseline and stopped inside the window, while the
    source kept answering for other series until ``data_until``: what measured it is gone."""
    if not len(ts):
        return None
    # A point that is NaN still says the series exists (a p99 with no requests is 0/0): only the
    # points' absence is a stop.
    last = float(ts[-1])
    ts, values = _finite(ts, values)
    base = values[(ts >= window_start - baseline_s) & (ts < window_start)]
    if len(base) < 10:
        return None
    gone_for = min(window_end, data_until) - last
    if last < window_start - step or gone_for < STOP_STEPS * step:
        return None
    level = float(np.median(base))
    return Anomaly(onset=last + step, direction="down", magnitude=Z_CAP, persistence=1.0, score=0.8,
                   baseline_median=level, baseline_upper=float(base.min()), level_after=0.0, peak=0.0,
                   end=window_end, stopped=True)


DRIFT_Z = 3.0  # how far the end of the window must have drifted, in robust sd
DRIFT_TREND = 0.6  # rank correlation with time over the window


def drift(ts: np.ndarray, values: np.ndarray, window_start: float, window_end: float, baseline_s: float,
          direction: str = "both") -> Anomaly | None:
    """A slow, steady drift through the window that never made a sustained departure: the end of
    the window sits well off the baseline and the values move with time. Weak by construction."""
    ts, values = _finite(ts, values)
    base = values[(ts >= window_start - baseline_s) & (ts < window_start)]
    win_mask = (ts >= window_start) & (ts <= window_end)
    win, win_ts = values[win_mask], ts[win_mask]
    if len(base) < 10 or len(win) < 6:
        return None
    level = float(np.median(base))
    scale = _robust_scale(base, level)
    ranks = np.argsort(np.argsort(win)).astype(float)
    trend = float(np.corrcoef(np.arange(len(win), dtype=float), ranks)[0, 1]) if np.ptp(ranks) else 0.0
    tail = win[-max(3, len(win) // 4):]
    best: Anomaly | None = None
    for sign, name in ((1.0, "up"), (-1.0, "down")):
        if direction not in ("both", name):
            continue
        z_tail = sign * (float(np.median(tail)) - level) / scale
        if z_tail < DRIFT_Z or sign * trend < DRIFT_TREND:
            continue
        z = sign * (win - level) / scale
        started = int(np.argmax(z > DRIFT_Z / 2)) if (z > DRIFT_Z / 2).any() else 0
        candidate = Anomaly(onset=float(win_ts[started]), direction=name, magnitude=round(min(z_tail, Z_CAP), 2),
                            persistence=round(float((z[started:] > DRIFT_Z / 2).mean()), 3),
                            score=round(min(0.3, 0.15 + z_tail / 100), 4), baseline_median=level,
                            baseline_upper=float(base.max() if sign > 0 else base.min()),
                            level_after=float(np.median(tail)), peak=float(win.max() if sign > 0 else win.min()),
                            end=float(win_ts[-1]), weak=True)
        if best is None or candidate.magnitude > best.magnitude:
            best = candidate
    return best
