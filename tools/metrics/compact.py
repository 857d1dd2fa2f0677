"""A range query's series summarised for the model: baseline against window, the departed segment."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from tools.compaction import fill
from tools.diagnosis import iso

SEGMENT_POINTS = 12
SERIES_K = 10

def _num(value: float | None) -> float | int | None:
    """Four significant digits: enough to read a level, few enough to keep the output small."""
    if value is None or not math.isfinite(value):
        return None
    if value == int(value) and abs(value) < 1e15:
        return int(value)
    return float(f"{value:.4g}")


def _points(values: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    ts, vs = [], []
    for point in values or ():
        try:
            t, v = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(t) and math.isfinite(v):
            ts.append(t)
            vs.append(v)
    t_arr, v_arr = np.asarray(ts, dtype=float), np.asarray(vs, dtype=float)
    order = np.argsort(t_arr, kind="stable")
    return t_arr[order], v_arr[order]


def _rolling_mean(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) < width:
        return values
    sums = np.cumsum(np.concatenate(([0.0], values)))
    means = (sums[width:] - sums[:-width]) / width  # means[i] covers values[i : i + width]
    out = np.empty_like(values)
    half = width // 2
    out[half: half + len(means)] = means
    out[:half] = means[0]
    out[half + len(means):] = means[-1]
    return out


def _segment(ts: np.ndarray, vs: np.ndarray, center: float, half_span: float) -> list[list[Any]]:
    """Up to SEGMENT_POINTS bucket means over [center - half_span, center + half_span]."""
    lo, hi = center - half_span, center + half_span
    mask = (ts >= lo) & (ts <= hi)
    if not mask.any():
        return []
    t_in, v_in = ts[mask], vs[mask]
    if len(t_in) <= SEGMENT_POINTS:
        return [[iso(float(t)), _num(float(v))] for t, v in zip(t_in, v_in)]
    edges = np.linspace(lo, hi, SEGMENT_POINTS + 1)
    which = np.clip(np.searchsorted(edges, t_in, side="right") - 1, 0, SEGMENT_POINTS - 1)
    out = []
    for bucket in range(SEGMENT_POINTS):
        chosen = which == bucket
        if chosen.any():
            out.append([iso(float(t_in[chosen][0])), _num(float(v_in[chosen].mean()))])
    return out


def _summarise_series(item: dict, window_start: float | None, onset: float | None) -> tuple[float, dict]:
    """(departure score, summary) of one series."""
    labels = item.get("labels") or item.get("metric") or {}
    ts, vs = _points(item.get("values") or [])
    n = len(vs)
    summary: dict[str, Any] = {"labels": labels, "n": n}
    if n == 0:
        return 0.0, summary
    summary.update({
        "first_ts": iso(float(ts[0])), "last_ts": iso(float(ts[-1])),
        "min": _num(float(vs.min())), "max": _num(float(vs.max())), "mean": _num(float(vs.mean())),
        "p50": _num(float(np.percentile(vs, 50))), "p95": _num(float(np.percentile(vs, 95))),
        "last": _num(float(vs[-1])),
    })
    # the baseline: before the window (or the onset); without either, the earlier half of the span
    split = window_start if window_start is not None else onset
    if split is None or not (ts[0] < split <= ts[-1]):
        split = float(ts[0] + (ts[-1] - ts[0]) / 2) if n > 1 else float(ts[0])
        summary["baseline_from"] = "first half"
    before = ts < split
    if not before.any() or before.all():
        summary["window_mean"] = summary["mean"]
        return 0.0, summary
    base, window = vs[before], vs[~before]
    base_mean, window_mean = float(base.mean()), float(window.mean())
    summary["baseline_mean"] = _num(base_mean)
    summary["window_mean"] = _num(window_mean)
    summary["ratio"] = _num(window_mean / base_mean) if base_mean else None

    # departure: robust z of each window point against the baseline, smoothed so that one noisy
    # point does not outrank a sustained shift; its start is where the smoothed z first reaches
    # half its peak, walking back from the peak
    center = float(np.median(base))
    scale = 1.4826 * float(np.median(np.abs(base - center)))
    if scale <= 0:
        scale = float(base.std()) or abs(center) * 0.01 or 1e-9
    z = np.abs(window - center) / scale
    smooth = _rolling_mean(z, max(1, min(25, len(z) // 100)))
    peak = int(np.argmax(smooth))
    start = peak
    while start > 0 and smooth[start - 1] >= smooth[peak] / 2:
        start -= 1
    t_window = ts[~before]
    score = float(min(smooth[peak], 1e6))
    summary["departure"] = _num(score)
    summary["peak"] = [iso(float(t_window[peak])), _num(float(window[peak]))]
    anchor = float(onset) if onset is not None else float(t_window[start])
    summary["departure_start"] = iso(float(t_window[start]))
    step = float(np.median(np.diff(ts))) if n > 1 else 60.0
    half_span = max(6 * step, 0.03 * float(ts[-1] - ts[0]))
    summary["segment"] = _segment(ts, vs, anchor, half_span)
    return score, summary


def compact_series(series: list[dict], *, window_start: float | None = None, onset: float | None = None,
                   cap_chars: int, k: int = SERIES_K) -> dict:
    """Series of a range query (``{"labels": {...}, "values": [[unix_ts, value], ...]}``) summarised.

    Series are ranked by departure (the smoothed robust z of the window against the baseline) and
    the top ``k`` are kept, fewer when the budget runs out; ``omitted`` counts the rest. The
    segment is centred on ``onset`` when given, else on where the largest departure began.
    """
    ranked = sorted((_summarise_series(item, window_start, onset) for item in series or []),
                    key=lambda pair: -pair[0])
    head: dict[str, Any] = {"total_series": len(ranked)}
    if window_start is not None:
        head["window_start"] = iso(window_start)
    if onset is not None:
        head["onset"] = iso(onset)
    return fill(head, "series", [summary for _, summary in ranked], k, cap_chars)
