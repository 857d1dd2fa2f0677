"""Times, durations and query steps: parsed in one place, with bounds.

Instants are Unix seconds between 1970 and 2100; anything else (year 1, NaN, Infinity, 1e308, a
negative number) is not a time any of our sources can hold, and is refused or skipped rather than
carried into a query. Durations are positive and no longer than a year; an investigation window is
at most ``MAX_WINDOW_S``. A range query's step grows with its span so that no query asks a backend
for more points than it answers (Prometheus refuses more than 11,000 per series).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = 4102444800.0  # 2100-01-01T00:00:00Z
MAX_DURATION_S = 366 * 86400.0
MAX_WINDOW_S = 7 * 86400.0  # the longest window an investigation searches for an onset
MAX_POINTS = 11000  # points per series a range query may ask for

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


class TimeInputError(ValueError):
    """A time or duration that cannot be used, as one sentence."""


def in_range(ts: float) -> bool:
    return math.isfinite(ts) and EARLIEST <= ts < LATEST


def to_seconds(number: float) -> float:
    """Seconds, milliseconds, microseconds or nanoseconds since 1970 -> seconds (by magnitude)."""
    if number > 1e17:
        return number / 1e9
    if number > 1e14:
        return number / 1e6
    if number > 1e11:
        return number / 1e3
    return number


def parse_time(value: object) -> float | None:
    """ISO-8601 (with Z or an offset; naive means UTC), or Unix seconds, milliseconds or
    nanoseconds -> Unix seconds; None when it is not a time between 1970 and 2100."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
            except ValueError:
                return None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            try:
                ts = parsed.timestamp()
            except (OverflowError, OSError, ValueError):
                return None
            return ts if in_range(ts) else None
    else:
        return None
    if not math.isfinite(number):
        return None
    ts = to_seconds(number)
    return ts if in_range(ts) else None


def parse_iso(text: str | None) -> float | None:
    """An ISO-8601 date or time (naive means UTC) -> Unix seconds; None for anything else (a bare
    number is not read as a time here: "2023" is a year in a postmortem, not a Unix second)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def iso(ts: float | None) -> str | None:
    """Unix seconds -> ISO-8601 in UTC with a trailing Z (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str, what: str = "the time") -> float:
    """An ISO-8601 time a user typed -> Unix seconds, or one sentence saying how to write it."""
    cleaned = text.strip()
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise TimeInputError(f"{what} {text!r} is not an ISO-8601 time; write it like 2026-03-10T14:30:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        ts = parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        ts = math.nan
    if not in_range(ts):
        raise TimeInputError(f"{what} {text} is outside 1970-2100; give a time our sources can hold")
    return ts


def parse_duration(text: str | int | float, *, limit_s: float = MAX_DURATION_S, what: str = "a duration") -> float:
    """'90s', '15m', '1h', '2d', '1h30m' or a number of seconds -> seconds, within (0, limit_s]."""
    if isinstance(text, bool):
        raise TimeInputError(f"{text!r} is not a duration; write it like 30m, 1h or 2h30m")
    if isinstance(text, (int, float)):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise TimeInputError(f"{text!r} is not a duration; write it like 30m, 1h or 2h30m")
    else:
        cleaned = str(text).strip().lower()
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned.replace(" ", ""):
            raise TimeInputError(f"{text!r} is not a duration; write it like 30m, 1h or 2h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise TimeInputError(f"{what} must be positive")
    if seconds > limit_s:
        raise TimeInputError(f"{what} of {text} is longer than {format_span(limit_s)}, the longest allowed")
    return seconds


def format_span(seconds: float) -> str:
    """A span in the largest whole unit that fits: 30d, 12h, 90m, 45s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def step_for(start: float, end: float, step: float, max_points: int = MAX_POINTS) -> float:
    """The step to ask for: at least ``step``, coarse enough that [start, end] holds no more than
    ``max_points`` points, in whole seconds."""
    span = max(0.0, end - start)
    needed = span / (max_points - 1) if max_points > 1 else span
    return float(step) if needed <= step else float(math.ceil(needed))
