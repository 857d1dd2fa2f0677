"""Compaction of tool outputs before a model reads them: summaries that keep what a diagnosis needs.

A range query returns thousands of points per series and a log search thousands of lines; a model
needs neither, and pays for every token. So the agent's tool outputs pass through here:

- each source compacts its own answers with these: ``compact_series`` (tools/metrics/compact.py):
  per series, the baseline against the window and the anomalous segment; ``compact_logs``
  (tools/logs/compact.py): lines mined into templates with counts, levels, first and last time.
- ``fill``: a head and as many items as fit, and how many were left out.
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
from typing import Any, Callable

import numpy as np

__all__ = ["estimate_tokens", "raw_chars", "cap", "fill", "compact_list"]



def estimate_tokens(text: str) -> int:
    """An estimate of the tokens in ``text``: about four characters a token, rounded up.

    Real tokenizers differ (code, numbers and non-English text take more tokens per character);
    the estimate is for budgets and reports, not billing.
    """
    return (len(text) + 3) // 4


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def raw_chars(obj: Any) -> int:
    """The size of an uncompacted output serialised as compact JSON (for the compaction ratio)."""
    try:
        return len(dumps(obj))
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
        kept = {k: _shrink(v, items, chars, depth - 1) for k, v in list(obj.items())[:keep]}
        if len(obj) > keep:
            kept["…"] = f"+{len(obj) - keep} more keys"
        return kept
    return obj


def _with_marker(obj: Any) -> dict:
    if isinstance(obj, dict):
        return {"truncated": True, **{k: v for k, v in obj.items() if k != "truncated"}}
    return {"truncated": True, "data": obj}


def _fit(obj: Any, cap_chars: int) -> tuple[Any, str]:
    """The object (shortened if it must be) and its JSON, no longer than ``cap_chars`` when possible."""
    obj = _clean(obj)
    text = dumps(obj)
    if len(text) <= cap_chars:
        return obj, text
    for items, chars, depth in _LEVELS:
        shrunk = _with_marker(_shrink(obj, items, chars, depth))
        text = dumps(shrunk)
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


def fill(head: dict, key: str, items: list[Any], k: int, cap_chars: int,
          tail: Callable[[list[Any]], dict] | None = None) -> dict:
    """``head`` plus as many of ``items`` (at most k) as fit in ``cap_chars``, and the count left out.

    ``tail`` adds keys that depend on the items chosen (placed before them in the output).
    """
    chosen: list[Any] = []
    size = len(dumps({**head, key: [], "shown": 0, "omitted": len(items)}))
    for item in map(_clean, items[:max(k, 0)]):
        extra = len(dumps(item)) + (1 if chosen else 0)
        if chosen and size + extra > cap_chars:
            break
        chosen.append(item)
        size += extra
    out = {**head, "shown": len(chosen), "omitted": len(items) - len(chosen)}
    if tail is not None:
        out.update(tail(chosen))
    out[key] = chosen
    return _fit(out, cap_chars)[0]


def compact_list(items: list[dict], *, k: int, cap_chars: int) -> dict:
    """The first ``k`` items (fewer if the budget runs out), ``total``, ``shown`` and ``omitted``."""
    items = list(items or [])
    return fill({"total": len(items)}, "items", items, k, cap_chars)
