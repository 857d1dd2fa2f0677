"""Incidents, their timelines and the threads Sleuth converses in, in SQLite or PostgreSQL.

One durable store for the incident domain: SQLite by default (``storage.sqlite``), PostgreSQL when
``storage.postgres`` is set (psycopg 3), so several bot replicas can share it. The same SQL runs on
both; only the DDL differs (bot.incidents.database).

- An incident belongs to its channel: at most one unresolved incident per (team, channel), kept by
  a partial unique index, so two concurrent ``/diagnose`` commands cannot open two.
- A timeline entry may carry a ``key`` (``change:chg-1010``, ``msg:C1:1712.0001``) unique within
  its incident: the same deploy or the same flagged message never lands twice.
- The schema is created under a PostgreSQL advisory lock (one transaction), so replicas starting
  together on a fresh database do not race each other's ``CREATE TABLE``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.config import StorageConfig
from bot.incidents.database import Database, StoreError, check_prefix, create_schema

STATUSES = ("investigating", "identified", "mitigating", "monitoring", "resolved")
ACTIVE = STATUSES[:-1]


@dataclass
class Incident:
    id: int
    team: str
    channel: str
    title: str
    status: str = "investigating"
    severity: int | None = None
    commander: str | None = None
    opened_by: str | None = None
    opened_at: float = 0.0
    updated_at: float = 0.0
    resolved_at: float | None = None
    service: str | None = None
    thread_ts: str | None = None  # the latest diagnosis thread
    timeline_ts: str | None = None  # the pinned, living timeline message
    summary_ts: str | None = None  # the summary posted on resolve
    top: str | None = None  # "category:component" of the top hypothesis last put on the timeline
    diagnosis: dict[str, Any] | None = None  # the latest Diagnosis.to_dict()
    resolution: str = ""  # the note given with resolve
    memory_id: str | None = None  # the record id once added to the past-incident memory

    @property
    def active(self) -> bool:
        return self.status != "resolved"

    @property
    def label(self) -> str:
        return f"SEV{self.severity}" if self.severity else "sev unset"

    def duration_s(self, now: float | None = None) -> float:
        end = self.resolved_at or (time.time() if now is None else now)
        return max(0.0, end - self.opened_at)


@dataclass
class TimelineEntry:
    id: int
    incident_id: int
    at: float
    kind: str  # opened, status, severity, commander, finding, decision, change, manual, resolved, memory, note
    text: str
    author: str | None = None
    permalink: str | None = None
    key: str | None = None
    via: str | None = None  # how a manual entry came: "reaction" or "pin"


@dataclass
class ConversationThread:
    """A Slack thread Sleuth converses in; ``thread_id`` is the agent's (team:channel:thread_ts)."""

    thread_id: str
    team: str
    channel: str
    thread_ts: str
    incident_id: int | None
    created_at: float
    charts: list[str] = field(default_factory=list)  # chart file names already uploaded here


_INCIDENT_COLUMNS = ("id", "team", "channel", "title", "status", "severity", "commander", "opened_by", "opened_at",
                     "updated_at", "resolved_at", "service", "thread_ts", "timeline_ts", "summary_ts", "top",
                     "diagnosis", "resolution", "memory_id")
_UPDATABLE = set(_INCIDENT_COLUMNS) - {"id", "team", "channel", "opened_at"}


def _ddl(prefix: str, postgres: bool) -> list[str]:
    ident = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "DOUBLE PRECISION" if postgres else "REAL"
    p = prefix
    return [
        f"""CREATE TABLE IF NOT EXISTS {p}incidents (
            id {ident}, team TEXT NOT NULL, channel TEXT NOT NULL, title TEXT NOT NULL,
            status TEXT NOT NULL, severity INTEGER, commander TEXT, opened_by TEXT,
            opened_at {real} NOT NULL, updated_at {real} NOT NULL, resolved_at {real}, service TEXT,
            thread_ts TEXT, timeline_ts TEXT, summary_ts TEXT, top TEXT, diagnosis TEXT,
            resolution TEXT NOT NULL DEFAULT '', memory_id TEXT)""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS {p}one_active_incident
            ON {p}incidents (team, channel) WHERE status <> 'resolved'""",
        f"""CREATE TABLE IF NOT EXISTS {p}timeline (
            id {ident}, incident_id BIGINT NOT NULL, at {real} NOT NULL, kind TEXT NOT NULL,
            text TEXT NOT NULL, author TEXT, permalink TEXT, key TEXT, via TEXT, created_at {real} NOT NULL,
            UNIQUE (incident_id, key))""",
        f"CREATE INDEX IF NOT EXISTS {p}timeline_by_incident ON {p}timeline (incident_id, at)",
        f"""CREATE TABLE IF NOT EXISTS {p}threads (
            thread_id TEXT PRIMARY KEY, team TEXT NOT NULL, channel TEXT NOT NULL, thread_ts TEXT NOT NULL,
            incident_id BIGINT, created_at {real} NOT NULL, charts TEXT NOT NULL DEFAULT '[]')""",
    ]


class IncidentStore:
    """Incidents per channel, their timelines and conversation threads.

    ``prefix`` names the tables (``sleuth_incidents``...); tests give each run its own.
    """

    def __init__(self, storage: StorageConfig, *, prefix: str = "sleuth_") -> None:
        self.prefix = check_prefix(prefix)
        self.db = Database(storage)
        # Reads have their own connection: a lookup (the first thing /diagnose does) never queues
        # behind a write that waits for SQLite's write lock (WAL lets a reader proceed beside a writer).
        self.read_db = Database(storage)
        create_schema(self.db, _ddl(prefix, self.db.postgres), prefix=prefix)

    @property
    def backend(self) -> str:
        return "postgresql" if self.db.postgres else "sqlite"

    def close(self) -> None:
        self.db.close()
        self.read_db.close()

    def _read(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        db = self.db if self.db.in_transaction_here() else self.read_db
        return db.execute(sql, params)[1]

    def drop(self) -> None:
        """Remove this prefix's tables (tests)."""
        for table in ("incidents", "timeline", "threads"):
            self.db.execute(f"DROP TABLE IF EXISTS {self.prefix}{table}")

    # --- incidents ------------------------------------------------------------------------------

    @staticmethod
    def _incident(row: dict[str, Any]) -> Incident:
        data = dict(row)
        data["diagnosis"] = json.loads(data["diagnosis"]) if data.get("diagnosis") else None
        data["id"] = int(data["id"])
        return Incident(**data)

    def active_incident(self, *, team: str, channel: str) -> Incident | None:
        rows = self._read(
            f"SELECT * FROM {self.prefix}incidents WHERE team = ? AND channel = ? AND status <> 'resolved'",
            (team, channel))
        return self._incident(rows[0]) if rows else None

    def latest_incident(self, *, team: str, channel: str) -> Incident | None:
        """The channel's active incident, or else its most recently resolved one."""
        rows = self._read(
            f"SELECT * FROM {self.prefix}incidents WHERE team = ? AND channel = ? "
            f"ORDER BY (status <> 'resolved') DESC, opened_at DESC LIMIT 1", (team, channel))
        return self._incident(rows[0]) if rows else None

    def get(self, incident_id: int) -> Incident | None:
        rows = self._read(f"SELECT * FROM {self.prefix}incidents WHERE id = ?", (incident_id,))
        return self._incident(rows[0]) if rows else None

    def active_incidents(self, *, team: str | None = None) -> list[Incident]:
        """Every unresolved incident (of one team), most severe first, then oldest first."""
        where, params = ("AND team = ?", (team,)) if team else ("", ())
        rows = self._read(
            f"SELECT * FROM {self.prefix}incidents WHERE status <> 'resolved' {where}", params)
        found = [self._incident(r) for r in rows]
        return sorted(found, key=lambda i: (i.severity or 99, i.opened_at, i.id))

    def open_incident(self, *, team: str, channel: str, title: str, opened_by: str | None,
                      severity: int | None = None, service: str | None = None,
                      at: float | None = None) -> tuple[Incident, bool]:
        """The channel's active incident, opened now if there is none: (incident, opened)."""
        now = time.time() if at is None else at
        with self.db.transaction():
            count, rows = self.db.execute(
                f"INSERT INTO {self.prefix}incidents (team, channel, title, status, severity, commander, opened_by, "
                f"opened_at, updated_at, service, resolution) VALUES (?, ?, ?, 'investigating', ?, ?, ?, ?, ?, ?, '') "
                f"ON CONFLICT DO NOTHING RETURNING id",
                (team, channel, title, severity, opened_by, opened_by, now, now, service))
            if rows:
                incident = self.get(int(rows[0]["id"]))
                assert incident is not None
                self.add_entry(incident.id, kind="opened", at=now, author=opened_by,
                               text=f"Incident opened: {title}" + (f" (SEV{severity})" if severity else ""))
                return incident, True
        existing = self.active_incident(team=team, channel=channel)
        if existing is None:  # resolved between the two statements: try once more
            return self.open_incident(team=team, channel=channel, title=title, opened_by=opened_by,
                                      severity=severity, service=service, at=at)
        return existing, False

    def update(self, incident_id: int, **changes: Any) -> Incident:
        """Change columns of an incident (``updated_at`` moves along); returns it as stored."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        changes.setdefault("updated_at", time.time())
        if "diagnosis" in changes and changes["diagnosis"] is not None:
            changes["diagnosis"] = json.dumps(changes["diagnosis"])
        columns = ", ".join(f"{name} = ?" for name in changes)
        self.db.execute(f"UPDATE {self.prefix}incidents SET {columns} WHERE id = ?", (*changes.values(), incident_id))
        incident = self.get(incident_id)
        if incident is None:
            raise StoreError(f"incident {incident_id} does not exist")
        return incident

    def touch(self, incident_id: int) -> None:
        self.db.execute(f"UPDATE {self.prefix}incidents SET updated_at = ? WHERE id = ?", (time.time(), incident_id))

    def set_if_empty(self, incident_id: int, column: str, value: str) -> bool:
        """Set ``column`` only while it is NULL: True for the caller that set it (one pinned timeline)."""
        if column not in ("timeline_ts", "summary_ts", "memory_id"):
            raise ValueError(column)
        count, _ = self.db.execute(
            f"UPDATE {self.prefix}incidents SET {column} = ? WHERE id = ? AND {column} IS NULL", (value, incident_id))
        return count == 1

    def set_commander(self, incident_id: int, *, commander: str, by: str, expected: str | None,
                      text: str) -> Incident | None:
        """Make ``commander`` the commander, set by ``by`` (kept on the timeline: who appointed whom),
        only while the commander is still ``expected`` and the incident is active; None otherwise
        (someone changed it meanwhile, or it was resolved)."""
        now = time.time()
        was, params = ("commander IS NULL", ()) if expected is None else ("commander = ?", (expected,))
        with self.db.transaction():
            count, _ = self.db.execute(
                f"UPDATE {self.prefix}incidents SET commander = ?, updated_at = ? WHERE id = ? "
                f"AND status <> 'resolved' AND {was}", (commander, now, incident_id, *params))
            if count != 1:
                return None
            self.add_entry(incident_id, kind="commander", at=now, author=by, text=text)
            return self.get(incident_id)

    def commander_appointed_by(self, incident: Incident) -> str | None:
        """Who made the current commander commander: the author of the latest commander change, else
        whoever opened the incident (the opener commands from the start)."""
        if not incident.commander:
            return None
        rows = self._read(
            f"SELECT author FROM {self.prefix}timeline WHERE incident_id = ? AND kind = 'commander' "
            "ORDER BY at DESC, id DESC LIMIT 1", (incident.id,))
        return rows[0]["author"] if rows else incident.opened_by

    def resolve_incident(self, incident_id: int, *, by: str | None, note: str = "",
                         at: float | None = None) -> Incident | None:
        """Resolve the incident (and put it on the timeline) unless it already is: None for the
        caller that came second (two resolves at once give one summary)."""
        now = time.time() if at is None else at
        with self.db.transaction():
            count, _ = self.db.execute(
                f"UPDATE {self.prefix}incidents SET status = 'resolved', resolved_at = ?, resolution = ?, "
                "updated_at = ? WHERE id = ? AND status <> 'resolved'", (now, note, now, incident_id))
            if count != 1:
                return None
            self.add_entry(incident_id, kind="resolved", author=by, at=now,
                           text="Resolved" + (f": {note}" if note else ""))
            return self.get(incident_id)

    # --- the timeline ---------------------------------------------------------------------------

    def add_entry(self, incident_id: int, *, kind: str, text: str, at: float | None = None,
                  author: str | None = None, permalink: str | None = None, key: str | None = None,
                  via: str | None = None) -> TimelineEntry | None:
        """Add an entry; None when an entry with the same ``key`` is already there."""
        now = time.time()
        count, rows = self.db.execute(
            f"INSERT INTO {self.prefix}timeline (incident_id, at, kind, text, author, permalink, key, via, created_at) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
            (incident_id, now if at is None else at, kind, text, author, permalink, key, via, now))
        if not rows:
            return None
        self.touch(incident_id)
        return TimelineEntry(int(rows[0]["id"]), incident_id, now if at is None else at, kind, text, author,
                             permalink, key, via)

    def remove_entry(self, incident_id: int, *, key: str, via: str | None = None) -> bool:
        """Remove the entry with ``key`` (only one that came ``via`` this way, when given)."""
        sql = f"DELETE FROM {self.prefix}timeline WHERE incident_id = ? AND key = ?"
        params: tuple = (incident_id, key)
        if via:
            sql += " AND via = ?"
            params += (via,)
        count, _ = self.db.execute(sql, params)
        if count:
            self.touch(incident_id)
        return count > 0

    def set_entry_text(self, incident_id: int, *, key: str, text: str) -> bool:
        """Rewrite the text of the entry with ``key`` (a decision given its reason later); True if it changed."""
        count, _ = self.db.execute(
            f"UPDATE {self.prefix}timeline SET text = ? WHERE incident_id = ? AND key = ? AND text <> ?",
            (text, incident_id, key, text))
        if count:
            self.touch(incident_id)
        return count > 0

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = self._read(
            f"SELECT id, incident_id, at, kind, text, author, permalink, key, via FROM {self.prefix}timeline "
            f"WHERE incident_id = ? ORDER BY at, id", (incident_id,))
        return [TimelineEntry(**{**r, "id": int(r["id"]), "incident_id": int(r["incident_id"])}) for r in rows]

    # --- conversation threads -------------------------------------------------------------------

    def remember_thread(self, *, thread_id: str, team: str, channel: str, thread_ts: str,
                        incident_id: int | None) -> None:
        self.db.execute(
            f"INSERT INTO {self.prefix}threads (thread_id, team, channel, thread_ts, incident_id, created_at) "
            f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (thread_id, team, channel, thread_ts, incident_id, time.time()))

    def thread(self, thread_id: str) -> ConversationThread | None:
        rows = self._read(f"SELECT * FROM {self.prefix}threads WHERE thread_id = ?", (thread_id,))
        if not rows:
            return None
        row = dict(rows[0])
        row["charts"] = json.loads(row.get("charts") or "[]")
        if row["incident_id"] is not None:
            row["incident_id"] = int(row["incident_id"])
        return ConversationThread(**row)

    def add_thread_charts(self, thread_id: str, names: list[str]) -> None:
        with self.db.transaction():
            found = self.thread(thread_id)
            if found is None:
                return
            merged = sorted(set(found.charts) | set(names))
            self.db.execute(f"UPDATE {self.prefix}threads SET charts = ? WHERE thread_id = ?",
                            (json.dumps(merged), thread_id))

    def thread_ids(self, incident_id: int) -> list[str]:
        """The incident's conversation threads (their agent thread ids), oldest first."""
        _, rows = self.db.execute(
            f"SELECT thread_id FROM {self.prefix}threads WHERE incident_id = ? ORDER BY created_at", (incident_id,))
        return [row["thread_id"] for row in rows]
