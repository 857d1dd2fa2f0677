"""Compaction of tool outputs before a model reads them: summaries that keep what a diagnosis needs.

A range query returns thousands of points per series and a log search thousands of lines; a model
needs neither, and pays for every token. So the agent's tool outputs pass through here:

- ``compact_series``: per series, its size and span, min/max/mean/p50/p95/last, the baseline mean
  (before the window) against the window mean and their ratio, and the anomalous segment: a dozen
  downsampled points around the largest sustained departure from the baseline (or around the onset
  when one is given). The series that departed most are kept; the rest are counted.
- ``compact_logs``: lines mined into templates (drain3, with the masking of tools/logs.py), each with
  its count, levels, first and last time and one example line, most frequent first.
- ``compact_list``: the first k items and how many more there were.
- ``cap``: compact JSON no longer than a budget. Lists, dicts and strings are shortened step by step,
  always leaving valid JSON, and ``"truncated": true`` says so.

Token counts are estimates (``estimate_tokens``: about four characters a token, rounded up); no
tokenizer is downloaded. ``raw_chars`` against the compacted size gives the compaction ratio the
agent reports.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any, Callable, Iterable

import numpy as np

from tools.diagnosis import iso
from tools.logs import LEVELS, normalise_level, parse_line, parse_time

__all__ = ["estimate_tokens", "raw_chars", "cap", "compact_series", "compact_logs", "compact_list"]

SEGMENT_POINTS = 12
SERIES_K = 10
LOG_TEMPLATES_K = 20
EXAMPLE_CHARS = 300


def estimate_tokens(text: str) -> int:
    """An estimate of the tokens in ``text``: about four characters a token, rounded up.

    Real tokenizers differ (code, numbers and non-English text take more tokens per character);
    the estimate is for budgets and reports, not billing.
    """
    return (len(text) + 3) // 4


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def raw_chars(obj: Any) -> int:
    """The size of an uncompacted output serialised as compact JSON (for the compaction ratio)."""
    try:
        return len(_dumps(obj))
    except ValueError:  # NaN or infinity somewhere: count it as Python would write it
        return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str))


# --- cap --------------------------------------------------------------------------------------

# (items kept per list or dict, characters kept per string, nesting depth kept), loosest first
_LEVELS = (
    (200, 4000, 16), (100, 2000, 12), (50, 1000, 10), (30, 400, 8), (20, 200, 8), (12, 120, 6),
    (8, 80, 6), (5, 60, 5), (3, 40, 4), (2, 30, 3), (1, 20, 3), (1, 12, 2), (0, 8, 1),
)
_MINIMAL = '{"truncated":true}'


def _clean(obj: Any) -> Any:
    """JSON-plain and finite: tuples become lists, NaN and infinities become None, others str()."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return str(obj)


def _shrink(obj: Any, items: int, chars: int, depth: int) -> Any:
    if isinstance(obj, str):
        return obj if len(obj) <= chars else obj[:chars] + "…"
    if isinstance(obj, list):
        if depth <= 0:
            return f"[{len(obj)} items]"
        out = [_shrink(v, items, chars, depth - 1) for v in obj[:items]]
        if len(obj) > items:
            out.append(f"+{len(obj) - items} more")
        return out
    if isinstance(obj, dict):
        if depth <= 0:
            return f"{{{len(obj)} keys}}"
        keep = max(items * 2, 1)
        out = {k: _shrink(v, items, chars, depth - 1) for k, v in list(obj.items())[:keep]}
        if len(obj) > keep:
            out["…"] = f"+{len(obj) - keep} more keys"
        return out
    return obj


def _with_marker(obj: Any) -> dict:
    if isinstance(obj, dict):
        return {"truncated": True, **{k: v for k, v in obj.items() if k != "truncated"}}
    return {"truncated": True, "data": obj}


def _fit(obj: Any, cap_chars: int) -> tuple[Any, str]:
    """The object (shortened if it must be) and its JSON, no longer than ``cap_chars`` when possible."""
    obj = _clean(obj)
    text = _dumps(obj)
    if len(text) <= cap_chars:
        return obj, text
    for items, chars, depth in _LEVELS:
        shrunk = _with_marker(_shrink(obj, items, chars, depth))
        text = _dumps(shrunk)
        if len(text) <= cap_chars:
            return shrunk, text
    if len(_MINIMAL) <= cap_chars:
        return {"truncated": True}, _MINIMAL
    return {}, "{}"


def cap(obj: Any, cap_chars: int) -> str:
    """Compact JSON of ``obj`` in at most ``cap_chars`` characters, always valid JSON.

    When the whole does not fit, lists and dicts keep their first items (``"+N more"`` says how many
    were dropped), long strings are cut (ending in ``…``), deep nesting is summarised, and the result
    is a dict starting with ``"truncated": true`` (a non-dict is wrapped as ``{"truncated": true,
    "data": ...}``). Below 18 characters only ``{}`` fits; it is returned for any smaller cap.
    """
    return _fit(obj, cap_chars)[1]


# --- series -----------------------------------------------------------------------------------


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
    return _fill(head, "series", [summary for _, summary in ranked], k, cap_chars)


def _fill(head: dict, key: str, items: list[Any], k: int, cap_chars: int,
          tail: Callable[[list[Any]], dict] | None = None) -> dict:
    """``head`` plus as many of ``items`` (at most k) as fit in ``cap_chars``, and the count left out.

    ``tail`` adds keys that depend on the items chosen (placed before them in the output).
    """
    chosen: list[Any] = []
    size = len(_dumps({**head, key: [], "shown": 0, "omitted": len(items)}))
    for item in map(_clean, items[:max(k, 0)]):
        extra = len(_dumps(item)) + (1 if chosen else 0)
        if chosen and size + extra > cap_chars:
            break
        chosen.append(item)
        size += extra
    out = {**head, "shown": len(chosen), "omitted": len(items) - len(chosen)}
    if tail is not None:
        out.update(tail(chosen))
    out[key] = chosen
    return _fit(out, cap_chars)[0]


# --- logs -------------------------------------------------------------------------------------

_MESSAGE_KEYS = ("message", "msg", "line", "log", "text")
_LEVEL_KEYS = ("level", "severity", "lvl", "log.level")
_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t")
_SERVICE_KEYS = ("service", "service.name", "app", "job", "component")
_LEVEL_IN_TEXT = re.compile(
    r"\b(?:level|lvl|severity)[=:]\s*\"?(?P<kv>[a-z]+)|(?<![\w-])\[?(?P<word>DEBUG|INFO|WARN|WARNING|ERROR|FATAL"
    r"|CRITICAL|PANIC|TRACE|Debug|Info|Warn|Warning|Error|Fatal|Critical)\]?(?![\w-])",
)


def _guess_level(line: str) -> str:
    found = _LEVEL_IN_TEXT.search(line[:300])
    if found is None:
        return "info"
    return normalise_level(found.group("kv") or found.group("word"))


def _from_dict(item: dict) -> tuple[float | None, str, str, str]:
    message = next((str(item[k]) for k in _MESSAGE_KEYS if k in item), None)
    ts = next((parse_time(item[k]) for k in _TIME_KEYS if k in item), None)
    level = next((item[k] for k in _LEVEL_KEYS if k in item), None)
    service = next((str(item[k]) for k in _SERVICE_KEYS if k in item), "")
    if message is None:
        return ts, service, normalise_level(level) if level is not None else "info", _dumps(item)
    if ts is None or (level is None and message.lstrip().startswith("{")):
        inner = _record(message)  # a dict wrapping a raw line, as Loki answers
        ts = ts if ts is not None else inner[0]
        service = service or inner[1]
        level = level if level is not None else inner[2]
        message = inner[3]
    return ts, service, normalise_level(level) if level is not None else _guess_level(message), message


def _record(item: Any) -> tuple[float | None, str, str, str]:
    """(time or None, service, level, message) of a log line given as text or as a dict."""
    if isinstance(item, dict):
        return _from_dict(item)
    line = str(item).strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and any(k in obj for k in _MESSAGE_KEYS):
            return _from_dict(obj)
    parsed = parse_line(line)
    if parsed is not None:
        return parsed.ts, parsed.service, parsed.level, parsed.message
    return None, "", _guess_level(line), line


def compact_logs(lines: list[str] | list[dict], *, cap_chars: int, k: int = LOG_TEMPLATES_K) -> dict:
    """Log lines as templates: count, levels, first/last time (when lines carry one), one example.

    Lines are text (JSON lines or plain text with a timestamp, as tools/logs.py parses them; other
    text is taken whole) or dicts (``message``/``msg``/``line``, ``ts``/``time``, ``level``,
    ``service``). Templates are mined per service with the masking of tools/logs.py, sorted by
    count; the top ``k`` that fit in ``cap_chars`` are kept and the rest counted.
    """
    from tools.logs import new_miner  # the drain3 configuration the investigation mines with

    miners: dict[str, Any] = {}
    stats: dict[tuple[str, int], dict[str, Any]] = {}
    levels: Counter[str] = Counter()
    first = last = None
    total = timed = 0
    for item in lines or []:
        ts, service, level, message = _record(item)
        if not message:
            continue
        total += 1
        miner = miners.get(service)
        if miner is None:
            miner = miners[service] = new_miner()
        cluster = miner.add_log_message(message)["cluster_id"]
        entry = stats.get((service, cluster))
        if entry is None:
            entry = stats[(service, cluster)] = {
                "service": service, "cluster": cluster, "count": 0, "levels": Counter(),
                "first": None, "last": None, "example": message[:EXAMPLE_CHARS],
            }
        entry["count"] += 1
        entry["levels"][level] += 1
        levels[level] += 1
        if ts is not None:
            timed += 1
            entry["first"] = ts if entry["first"] is None else min(entry["first"], ts)
            entry["last"] = ts if entry["last"] is None else max(entry["last"], ts)
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)

    several_services = len(miners) > 1
    ranked = sorted(stats.values(), key=lambda e: (-e["count"], -max(LEVELS.index(lv) for lv in e["levels"])))
    templates = []
    for entry in ranked:
        cluster = miners[entry["service"]].drain.id_to_cluster.get(entry["cluster"])
        template: dict[str, Any] = {
            "template": cluster.get_template() if cluster is not None else entry["example"],
            "count": entry["count"],
            "levels": dict(entry["levels"].most_common()),
        }
        if several_services:
            template["service"] = entry["service"]
        if entry["first"] is not None:
            template["first"] = iso(entry["first"])
            template["last"] = iso(entry["last"])
        template["example"] = entry["example"]
        templates.append(template)

    head: dict[str, Any] = {
        "lines": total, "templates_total": len(templates), "levels": dict(levels.most_common()),
    }
    if first is not None:
        head.update(first=iso(first), last=iso(last), lines_with_time=timed)
    return _fill(head, "templates", templates, k, cap_chars,
                 tail=lambda chosen: {"omitted_lines": total - sum(t["count"] for t in chosen)})


# --- lists ------------------------------------------------------------------------------------


def compact_list(items: list[dict], *, k: int, cap_chars: int) -> dict:
    """The first ``k`` items (fewer if the budget runs out), ``total``, ``shown`` and ``omitted``."""
    items = list(items or [])
    return _fill({"total": len(items)}, "items", items, k, cap_chars)
