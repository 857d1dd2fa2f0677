"""A change (deploy, config, flag, model...) as a record; change files and the webhook's store."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable


from tools.http import SourceError
from tools.timeparse import parse_time


KINDS = ("deploy", "config", "flag", "model", "index", "infra", "operation", "prompt", "data", "release", "rollback")


@dataclass
class Change:
    id: str
    ts: float
    service: str
    kind: str
    summary: str
    author: str = ""
    version: str = ""
    previous_version: str = ""
    url: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_KNOWN = {"id", "ts", "time", "timestamp", "service", "kind", "type", "summary", "description",
          "author", "version", "previous_version", "url"}


def change_from_dict(obj: dict[str, Any], source: str) -> Change:
    """Validate one change record; raises ValueError naming the field at fault."""
    if not isinstance(obj, dict):
        raise ValueError("a change must be a JSON object")
    ts = next((parse_time(obj[k]) for k in ("ts", "time", "timestamp") if k in obj), None)
    if ts is None:
        raise ValueError("field 'ts' is missing or not a time (use ISO-8601 such as 2026-03-10T14:05:00Z)")
    service = str(obj.get("service") or "").strip()
    if not service:
        raise ValueError("field 'service' is missing")
    kind = str(obj.get("kind") or obj.get("type") or "deploy").strip().lower()
    if kind not in KINDS:
        raise ValueError(f"field 'kind' is {kind!r}; use one of {', '.join(KINDS)}")
    summary = str(obj.get("summary") or obj.get("description") or f"{kind} of {service}")
    change_id = str(obj.get("id") or f"{source}-{service}-{int(ts)}")
    return Change(
        id=change_id, ts=ts, service=service, kind=kind, summary=summary,
        author=str(obj.get("author") or ""), version=str(obj.get("version") or ""),
        previous_version=str(obj.get("previous_version") or ""), url=str(obj.get("url") or ""),
        source=source, extra={k: v for k, v in obj.items() if k not in _KNOWN},
    )


def read_change_file(path: Path, start: float, end: float) -> list[Change]:
    """Changes in [start, end] from a JSON-lines file; a bad line is an error naming the line."""
    out = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    change = change_from_dict(json.loads(line), "file")
                except (json.JSONDecodeError, ValueError) as exc:
                    raise SourceError(f"{path}, line {number}: {exc}") from exc
                if start <= change.ts <= end:
                    out.append(change)
    except OSError as exc:
        raise SourceError(f"cannot read changes file {path}: {exc.strerror or exc}") from exc
    return out


# --- the webhook store ------------------------------------------------------------------------


class ChangeStore:
    """Changes posted by CI/CD, in SQLite. Safe across threads; the same id posted twice is one row."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS changes (id TEXT PRIMARY KEY, ts REAL NOT NULL, service TEXT NOT NULL,"
            " kind TEXT NOT NULL, body TEXT NOT NULL, received REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS changes_ts ON changes (ts)")
        self._db.commit()

    def add(self, changes: Iterable[Change]) -> list[str]:
        ids = []
        with self._lock, self._db:
            for change in changes:
                self._db.execute(
                    "INSERT INTO changes (id, ts, service, kind, body, received) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET ts=excluded.ts, service=excluded.service,"
                    " kind=excluded.kind, body=excluded.body",
                    (change.id, change.ts, change.service, change.kind, json.dumps(asdict(change)), time.time()),
                )
                ids.append(change.id)
        return ids

    def between(self, start: float, end: float) -> list[Change]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM changes WHERE ts BETWEEN ? AND ? ORDER BY ts", (start, end)
            ).fetchall()
        return [Change(**json.loads(body)) for (body,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
