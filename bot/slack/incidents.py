"""Incidents, their timelines, the threads Sleuth converses in, and claimed Slack events.

One durable store for the Slack adapter: SQLite by default (``storage.sqlite``), PostgreSQL when
``storage.postgres`` is set (psycopg 3), so several bot replicas can share it. The same SQL runs on
both; only the DDL differs.

- An incident belongs to its channel: at most one unresolved incident per (team, channel), kept by
  a partial unique index, so two concurrent ``/diagnose`` commands cannot open two.
- A timeline entry may carry a ``key`` (``change:chg-1010``, ``msg:C1:1712.0001``) unique within
  its incident: the same deploy or the same flagged message never lands twice.
- Incoming work (events by ``event_id``, slash commands by ``trigger_id``) is claimed with its
  body before it starts and marked done when it ends. The owner's heartbeat keeps a claim fresh
  while it runs; a claim whose owner stopped beating (the process died) is taken over, by Slack's
  redelivery or by the next process's start-up replay, so a crash loses no work and a live
  owner's work is never doubled.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bot.config import StorageConfig

STATUSES = ("investigating", "identified", "mitigating", "monitoring", "resolved")
ACTIVE = STATUSES[:-1]
CLAIM_TTL_S = 7 * 86400  # Slack stops redelivering after minutes; a week is ample
STALE_AFTER_S = 45.0  # a claim whose owner has not beaten for this long is taken over
REPLAY_ATTEMPTS = 3  # a piece of work that killed its process this often is given up, not replayed again


class StoreError(RuntimeError):
    """The incident store cannot be reached or written, as one sentence."""


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
        f"""CREATE TABLE IF NOT EXISTS {p}work (
            key TEXT PRIMARY KEY, body TEXT NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL,
            attempts INTEGER NOT NULL, received_at {real} NOT NULL, heartbeat_at {real} NOT NULL,
            done_at {real}, note TEXT NOT NULL DEFAULT '{{}}')""",
        f"CREATE INDEX IF NOT EXISTS {p}work_by_state ON {p}work (state, heartbeat_at)",
    ]


@dataclass
class Work:
    """A claimed piece of incoming work whose owner stopped before finishing it."""

    key: str
    body: dict[str, Any]
    attempts: int
    received_at: float
    note: dict[str, Any] = field(default_factory=dict)  # what the dead owner left: e.g. its plan message


class _Database:
    """One connection, serialized by a lock; SQL written with ``?`` placeholders for both dialects."""

    def __init__(self, storage: StorageConfig) -> None:
        self.postgres = bool(storage.postgres)
        self._lock = threading.RLock()
        self._url = storage.postgres
        self._sqlite_path = Path(storage.sqlite)
        self._conn: Any = None
        self._tx_thread: int | None = None  # the thread running a transaction, if one is open
        self._connect()

    def in_transaction_here(self) -> bool:
        """True in the thread running a transaction on this connection (its reads must see its writes)."""
        return self._tx_thread == threading.get_ident()

    def _connect(self) -> None:
        if self.postgres:
            import psycopg

            try:
                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to PostgreSQL at {self._safe_url()}: {str(exc).strip().splitlines()[0]}; "
                                 "check storage.postgres in sleuth.yml") from exc
        else:
            try:
                self._sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self._sqlite_path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the bot in WAL mode
                conn.execute("PRAGMA busy_timeout=30000")
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the state database {self._sqlite_path}: {exc}; "
                                 "check storage.sqlite in sleuth.yml") from exc
            self._conn = conn

    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self._url or "")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: tuple = ()) -> tuple[int, list[dict[str, Any]]]:
        """Run one statement: (rows affected, rows returned as dicts)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    cur = self._conn.execute(self._sql(sql), params)
                    rows: list[dict[str, Any]] = []
                    if cur.description:
                        names = [d[0] for d in cur.description]
                        rows = [dict(zip(names, row)) for row in cur.fetchall()]
                    return cur.rowcount, rows
                except Exception as exc:  # a dropped PostgreSQL connection is reopened once
                    if self.postgres and attempt == 1 and self._tx_thread is None and self._conn.closed:
                        self._connect()
                        continue
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._tx_thread is not None:  # nested: the outer one commits
                yield
                return
            self._tx_thread = threading.get_ident()
            try:
                if self.postgres:
                    with self._conn.transaction():
                        yield
                else:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                    self._conn.execute("COMMIT")
            finally:
                self._tx_thread = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class IncidentStore:
    """Incidents per channel, their timelines, conversation threads and event claims.

    ``prefix`` names the tables (``sleuth_incidents``...); tests give each run its own.
    """

    def __init__(self, storage: StorageConfig, *, prefix: str = "sleuth_") -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", prefix):
            raise ValueError(f"table prefix {prefix!r} must be letters, digits and underscores")
        self.prefix = prefix
        self.db = _Database(storage)
        # Claims have their own connection: an ack never waits behind another thread's store work.
        self.work_db = _Database(storage)
        # So do reads: a lookup (the first thing /diagnose does) never queues behind a write that
        # waits for SQLite's write lock (WAL lets a reader proceed beside a writer).
        self.read_db = _Database(storage)
        for statement in _ddl(prefix, self.db.postgres):
            self.db.execute(statement)
        self.db.execute(f"DELETE FROM {prefix}work WHERE received_at < ?", (time.time() - CLAIM_TTL_S,))

    @property
    def backend(self) -> str:
        return "postgresql" if self.db.postgres else "sqlite"

    def close(self) -> None:
        self.db.close()
        self.work_db.close()
        self.read_db.close()

    def _read(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        db = self.db if self.db.in_transaction_here() else self.read_db
        return db.execute(sql, params)[1]

    def drop(self) -> None:
        """Remove this prefix's tables (tests)."""
        for table in ("incidents", "timeline", "threads", "work"):
            self.db.execute(f"DROP TABLE IF EXISTS {self.prefix}{table}")

    # --- incoming work: claim, heartbeat, done, take over ------------------------------------------

    def claim_work(self, key: str, body: dict[str, Any] | None, *, owner: str,
                   stale_after: float = STALE_AFTER_S) -> bool:
        """True when ``owner`` now holds ``key``: its first delivery, or a redelivery of work whose
        owner stopped beating ``stale_after`` seconds ago. False for done work and for work a live
        owner is doing (Slack's retries while it runs)."""
        now = time.time()
        count, _ = self.work_db.execute(
            f"INSERT INTO {self.prefix}work (key, body, state, owner, attempts, received_at, heartbeat_at) "
            "VALUES (?, ?, 'claimed', ?, 1, ?, ?) ON CONFLICT DO NOTHING",
            (key, json.dumps(body or {}, separators=(",", ":")), owner, now, now))
        return count == 1 or self.take_over(key, owner=owner, stale_after=stale_after)

    def take_over(self, key: str, *, owner: str, stale_after: float = STALE_AFTER_S) -> bool:
        """Claim unfinished work whose owner stopped beating; exactly one contender wins."""
        now = time.time()
        count, _ = self.work_db.execute(
            f"UPDATE {self.prefix}work SET owner = ?, heartbeat_at = ?, attempts = attempts + 1 "
            "WHERE key = ? AND state = 'claimed' AND heartbeat_at < ?", (owner, now, key, now - stale_after))
        return count == 1

    def heartbeat(self, owner: str) -> int:
        """Keep every unfinished claim of ``owner`` fresh; the number of claims it holds."""
        count, _ = self.work_db.execute(f"UPDATE {self.prefix}work SET heartbeat_at = ? WHERE owner = ? AND state = 'claimed'",
                                   (time.time(), owner))
        return count

    def finish_work(self, key: str) -> None:
        """The work is over (done, or failed with the user told): never run again; the body is dropped."""
        self.work_db.execute(f"UPDATE {self.prefix}work SET state = 'done', done_at = ?, body = '{{}}' WHERE key = ?",
                        (time.time(), key))

    def note_work(self, key: str, note: dict[str, Any]) -> None:
        """Remember something about unfinished work for whoever takes it over (its plan message)."""
        self.work_db.execute(f"UPDATE {self.prefix}work SET note = ? WHERE key = ? AND state = 'claimed'",
                             (json.dumps(note, separators=(",", ":")), key))

    def give_up_work(self, key: str) -> None:
        self.work_db.execute(f"UPDATE {self.prefix}work SET state = 'abandoned', done_at = ?, body = '{{}}' WHERE key = ?",
                        (time.time(), key))

    def work_state(self, key: str) -> str | None:
        _, rows = self.work_db.execute(f"SELECT state FROM {self.prefix}work WHERE key = ?", (key,))
        return rows[0]["state"] if rows else None

    def stale_work(self, *, stale_after: float = STALE_AFTER_S, newer_than_s: float = 3600.0,
                   limit: int = 50) -> list[Work]:
        """Unfinished work whose owner stopped beating, oldest first; work older than ``newer_than_s``
        is left to lie (an hour-old /diagnose answered now would mislead)."""
        now = time.time()
        _, rows = self.work_db.execute(
            f"SELECT key, body, attempts, received_at, note FROM {self.prefix}work WHERE state = 'claimed' "
            "AND heartbeat_at < ? AND received_at >= ? ORDER BY received_at LIMIT ?",
            (now - stale_after, now - newer_than_s, limit))
        return [Work(r["key"], json.loads(r["body"] or "{}"), int(r["attempts"]), float(r["received_at"]),
                     json.loads(r["note"] or "{}")) for r in rows]

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
