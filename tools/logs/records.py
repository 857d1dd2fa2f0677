"""A log line as a record: its time, service, level and message; the one parser of log lines,
for mining and for the model's compaction alike."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tools.timeparse import parse_time

LEVELS = ("debug", "info", "warn", "error", "fatal")
LEVEL_ALIASES = {
    "warning": "warn", "err": "error", "critical": "fatal", "crit": "fatal", "panic": "fatal",
    "trace": "debug", "notice": "info", "information": "info", "severe": "error",
}


@dataclass
class LogRecord:
    ts: float
    service: str
    level: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)


def normalise_level(value: object) -> str:
    text = str(value or "info").strip().lower()
    text = LEVEL_ALIASES.get(text, text)
    return text if text in LEVELS else "info"


_PLAIN = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
    r"(?:\[?(?P<level>DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL|TRACE)\]?\s+)?"
    r"(?:(?P<service>[\w.-]+)(?:\[\d+\])?:\s+)?(?P<message>.*)$",
    re.I,
)
# The fields of a structured line, most usual first. Mining and the model's compaction read lines
# with these same lists (one parser; see ``loose_record``).
TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t")
MESSAGE_KEYS = ("message", "msg", "log", "text", "line")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level")
SERVICE_KEYS = ("service", "service.name", "app", "job", "component")


def parse_line(line: str, default_service: str = "") -> LogRecord | None:
    """One line of a JSON-lines or plain-text log; None when it carries no timestamp."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            ts = next((parse_time(obj[k]) for k in TIME_KEYS if k in obj), None)
            if ts is None:
                return None
            message = next((str(obj[k]) for k in MESSAGE_KEYS if k in obj), "")
            level = next((obj[k] for k in LEVEL_KEYS if k in obj), "info")
            service = next((str(obj[k]) for k in SERVICE_KEYS if k in obj), default_service)
            skip = set(TIME_KEYS) | set(MESSAGE_KEYS) | set(LEVEL_KEYS) | set(SERVICE_KEYS)
            extra = {k: str(v) for k, v in obj.items() if k not in skip and isinstance(v, (str, int, float))}
            return LogRecord(ts, service, normalise_level(level), message, extra)
    found = _PLAIN.match(line)
    if not found:
        return None
    ts = parse_time(found.group("ts").replace(",", "."))
    if ts is None:
        return None
    return LogRecord(
        ts,
        found.group("service") or default_service,
        normalise_level(found.group("level")),
        found.group("message"),
    )


MAX_LINE_CHARS = 64 * 1024  # longer lines are cut here: a 100 MB line must not be read whole


def clip_line(line: str) -> str:
    """A log line no longer than ``MAX_LINE_CHARS``; a cut JSON line no longer parses, and is then
    read (if at all) as plain text."""
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS]


_LEVEL_IN_TEXT = re.compile(
    r"\b(?:level|lvl|severity)[=:]\s*\"?(?P<kv>[a-z]+)|(?<![\w-])\[?(?P<word>DEBUG|INFO|WARN|WARNING|ERROR|FATAL"
    r"|CRITICAL|PANIC|TRACE|Debug|Info|Warn|Warning|Error|Fatal|Critical)\]?(?![\w-])",
)


def guess_level(line: str) -> str:
    """The level a line of text states (``level=error``, ``[ERROR]``...), else info."""
    found = _LEVEL_IN_TEXT.search(line[:300])
    if found is None:
        return "info"
    return normalise_level(found.group("kv") or found.group("word"))


def _from_dict(item: dict) -> tuple[float | None, str, str, str]:
    message = next((str(item[k]) for k in MESSAGE_KEYS if k in item), None)
    ts = next((parse_time(item[k]) for k in TIME_KEYS if k in item), None)
    level = next((item[k] for k in LEVEL_KEYS if k in item), None)
    service = next((str(item[k]) for k in SERVICE_KEYS if k in item), "")
    if message is None:
        return ts, service, normalise_level(level) if level is not None else "info", \
            json.dumps(item, separators=(",", ":"), default=str, ensure_ascii=False)
    if ts is None or (level is None and message.lstrip().startswith("{")):
        inner = loose_record(message)  # a dict wrapping a raw line, as Loki answers
        ts = ts if ts is not None else inner[0]
        service = service or inner[1]
        level = level if level is not None else inner[2]
        message = inner[3]
    return ts, service, normalise_level(level) if level is not None else guess_level(message), message


def loose_record(item: Any) -> tuple[float | None, str, str, str]:
    """(time or None, service, level, message) of a log line given as text or as a dict: lines
    without a timestamp are kept (the model's search results), unlike ``parse_line``."""
    if isinstance(item, dict):
        return _from_dict(item)
    line = str(item).strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and any(k in obj for k in MESSAGE_KEYS):
            return _from_dict(obj)
    parsed = parse_line(line)
    if parsed is not None:
        return parsed.ts, parsed.service, parsed.level, parsed.message
    return None, "", guess_level(line), line
