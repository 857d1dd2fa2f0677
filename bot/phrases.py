"""Reading what people write: a time ('20 minutes ago', 'at 14:05 UTC'), a span ('in the last 2
hours'), the services a message names. A leaf: it imports nothing from the agent's modules."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from tools.timeparse import parse_duration

_AGO = re.compile(r"\b(\d+)\s*(minutes?|mins?|m|hours?|hrs?|h)\s+ago\b", re.I)
_CLOCK = re.compile(r"\b(?:at|since|around|from)\s+(\d{1,2}):(\d{2})\s*(?:utc|z)?\b", re.I)
_LAST = re.compile(r"\b(?:last|past)\s+(\d+)\s*(minutes?|mins?|m|hours?|hrs?|h|days?|d)\b", re.I)
_VAGUE_TIME = re.compile(r"\b(yesterday|last night|this morning|earlier today|overnight|a while ago)\b", re.I)


def _seconds(amount: str, unit: str) -> float:
    return parse_duration(f"{amount}{unit[0].lower()}")  # minutes -> m, hours -> h, days -> d


def parse_time_phrase(text: str, now: float) -> float | None:
    """'20 minutes ago', 'at 14:05 UTC', 'since 9:30' -> unix seconds (None if none is given)."""
    match = _AGO.search(text)
    if match:
        return now - _seconds(match.group(1), match.group(2))
    match = _CLOCK.search(text)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            day = datetime.fromtimestamp(now, tz=timezone.utc)
            when = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if when.timestamp() > now + 60:
                when -= timedelta(days=1)
            return when.timestamp()
    return None


def parse_span(text: str) -> float | None:
    """'in the last 2 hours' -> 7200.0."""
    match = _LAST.search(text)
    return _seconds(match.group(1), match.group(2)) if match else None


def says_vague_time(text: str) -> bool:
    """'yesterday', 'this morning', 'a while ago': a time too vague to investigate."""
    return bool(_VAGUE_TIME.search(text))


_DB_WORDS = ("database", "db", "postgres", "mysql", "sql")


def mentioned_services(text: str, known: list[str]) -> list[str]:
    """Known service names the text mentions (whole words), plus 'the database' style aliases."""
    lowered = text.lower()
    found = [s for s in known if re.search(rf"(?<![\w-]){re.escape(s.lower())}(?![\w-])", lowered)]
    if not found and re.search(r"\b(database|db)\b", lowered):
        found = [s for s in known if any(w in s.lower() for w in _DB_WORDS)]
    return found
