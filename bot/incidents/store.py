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
  owner's work is never doubled. The work's ``note`` records what it already did (its plan
  message, the diagnosis posted...) before the next step, so whoever takes it over resumes.
- Work Slack could not take (an outage, 429s) waits in state ``retry`` until ``next_at``, for any
  process's keeper to take again; work handed back by a stopping process waits there too, due at
  once. Past its deadline it becomes ``failed`` until the channel has been told, then ``abandoned``.
- The schema is created and migrated under a PostgreSQL advisory lock (one transaction), so
  replicas starting together on a fresh database do not race each other's ``CREATE TABLE``.
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
# pg_advisory_xact_lock key serialising schema creation and migrations across replicas ("sleuth-schema").
SCHEMA_LOCK = 0x5C4E_D0C5
# Columns added after the first release of each table: (table, column, type), added where missing.
_MIGRATIONS = (
    ("work", "next_at", "{real}"),  # state retry/failed: when it is due again
    ("work", "tries", "INTEGER NOT NULL DEFAULT 0"),  # deliveries Slack did not take
    ("work", "last_error", "TEXT"),
)


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
    tries: int = 0  # deliveries Slack did not take
    last_error: str | None = None


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
            if self._conn is None:  # closed (the process is stopping): one sentence, never a NoneType error
                raise StoreError("the state database is closed: Sleuth is stopping")
            for attempt in (1, 2):
                try:
                    cur = self._conn.execute(self._sql(sql), params)
                    rows: list[dict[str, Any]] = []
                    if cur.description:
                        names = [d[0] for d in cur.description]
                        rows = [dict(zip(names, row)) for row in cur.fetchall()]
                    return cur.rowcount, rows
                except Exception:  # a dropped PostgreSQL connection is reopened once
                    if self.postgres and attempt == 1 and self._tx_thread is None and self._conn.closed:
                        self._connect()
                        continue
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._conn is None:
                raise StoreError("the state database is closed: Sleuth is stopping")
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
        self._notes = threading.Lock()
        self._create_schema()
        self.db.execute(f"DELETE FROM {prefix}work WHERE received_at < ?", (time.time() - CLAIM_TTL_S,))

    def _create_schema(self) -> None:
        """Create the tables and add missing columns, in one transaction. On PostgreSQL it holds an
        advisory lock first: two replicas running ``CREATE TABLE IF NOT EXISTS`` at once on a fresh
        database collide in the catalog (``pg_type_typname_nsp_index``); the second one waits
        instead and then finds everything there."""
        with self.db.transaction():
            if self.db.postgres:
                self.db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in _ddl(self.prefix, self.db.postgres):
                self.db.execute(statement)
            real = "DOUBLE PRECISION" if self.db.postgres else "REAL"
            for table, column, kind in _MIGRATIONS:
                name = f"{self.prefix}{table}"
                if self.db.postgres:
                    _, rows = self.db.execute(
                        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = ? AND column_name = ?", (name, column))
                else:
                    rows = [r for r in self.db.execute(f"PRAGMA table_info({name})")[1] if r["name"] == column]
                if not rows:
                    self.db.execute(f"ALTER TABLE {name} ADD COLUMN {column} {kind.format(real=real)}")

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

    def release_work(self, owner: str, keys: list[str] | None = None) -> int:
        """Hand back ``owner``'s unfinished claims (a stopping process): due at once for any process,
        with their notes, so whoever takes them resumes. The number handed back."""
        sql = (f"UPDATE {self.prefix}work SET state = 'retry', owner = '', next_at = ? "
               "WHERE owner = ? AND state = 'claimed'")
        params: tuple = (time.time(), owner)
        if keys is not None:
            if not keys:
                return 0
            sql += f" AND key IN ({', '.join('?' for _ in keys)})"
            params += tuple(keys)
        count, _ = self.work_db.execute(sql, params)
        return count

    def retry_work(self, key: str, *, owner: str, at: float, error: str) -> bool:
        """Slack did not take the work: due again at ``at`` for any process's keeper."""
        count, _ = self.work_db.execute(
            f"UPDATE {self.prefix}work SET state = 'retry', owner = '', next_at = ?, tries = tries + 1, "
            "last_error = ? WHERE key = ? AND owner = ? AND state = 'claimed'", (at, error[:500], key, owner))
        return count == 1

    def fail_work(self, key: str, *, error: str, owner: str | None = None) -> bool:
        """Past its deadline: never run again; the channel is owed a notice (due now)."""
        sql = (f"UPDATE {self.prefix}work SET state = 'failed', owner = '', next_at = ?, last_error = ? "
               "WHERE key = ? AND state IN ('claimed', 'retry')")
        params: tuple = (time.time(), error[:500], key)
        if owner is not None:
            sql += " AND owner = ?"
            params += (owner,)
        count, _ = self.work_db.execute(sql, params)
        return count == 1

    def due_work(self, *, state: str = "retry", limit: int = 50) -> list[Work]:
        """Work in ``state`` (retry, or failed: a notice owed) whose time has come, oldest first."""
        _, rows = self.work_db.execute(
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work "
            "WHERE state = ? AND next_at <= ? ORDER BY received_at LIMIT ?", (state, time.time(), limit))
        return [self._work(r) for r in rows]

    def take_due(self, key: str, *, owner: str) -> bool:
        """Claim work due for a retry; exactly one contender wins."""
        now = time.time()
        count, _ = self.work_db.execute(
            f"UPDATE {self.prefix}work SET state = 'claimed', owner = ?, heartbeat_at = ? "
            "WHERE key = ? AND state = 'retry' AND next_at <= ?", (owner, now, key, now))
        return count == 1

    def take_notice(self, key: str, *, again_at: float) -> bool:
        """The right to tell the channel about failed work now (the next try at ``again_at``)."""
        count, _ = self.work_db.execute(
            f"UPDATE {self.prefix}work SET next_at = ? WHERE key = ? AND state = 'failed' AND next_at <= ?",
            (again_at, key, time.time()))
        return count == 1

    def next_due(self) -> float | None:
        """When the next retry or notice is due (None: nothing waits)."""
        _, rows = self.work_db.execute(
            f"SELECT MIN(next_at) AS due FROM {self.prefix}work WHERE state IN ('retry', 'failed')")
        due = rows[0]["due"] if rows else None
        return float(due) if due is not None else None

    def heartbeat(self, owner: str) -> int:
        """Keep every unfinished claim of ``owner`` fresh; the number of claims it holds."""
        count, _ = self.work_db.execute(f"UPDATE {self.prefix}work SET heartbeat_at = ? WHERE owner = ? AND state = 'claimed'",
                                   (time.time(), owner))
        return count

    def finish_work(self, key: str) -> None:
        """The work is over (done, or failed with the user told): never run again; the body is dropped."""
        self.work_db.execute(f"UPDATE {self.prefix}work SET state = 'done', done_at = ?, body = '{{}}' WHERE key = ?",
                        (time.time(), key))

    def note_work(self, key: str, note: dict[str, Any]) -> dict[str, Any]:
        """Add ``note`` to what unfinished work has recorded for whoever takes it over (its plan
        message, the diagnosis it posted...); the whole note as stored."""
        with self._notes:
            merged = {**self.work_note(key), **note}
            self.work_db.execute(f"UPDATE {self.prefix}work SET note = ? WHERE key = ? AND state IN ('claimed', 'retry')",
                                 (json.dumps(merged, separators=(",", ":")), key))
        return merged

    def work_note(self, key: str) -> dict[str, Any]:
        _, rows = self.work_db.execute(f"SELECT note FROM {self.prefix}work WHERE key = ?", (key,))
        return json.loads(rows[0]["note"] or "{}") if rows else {}

    def work(self, key: str) -> Work | None:
        _, rows = self.work_db.execute(
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work WHERE key = ?",
            (key,))
        return self._work(rows[0]) if rows else None

    @staticmethod
    def _work(r: dict[str, Any]) -> Work:
        return Work(r["key"], json.loads(r["body"] or "{}"), int(r["attempts"]), float(r["received_at"]),
                    json.loads(r["note"] or "{}"), int(r.get("tries") or 0), r.get("last_error"))

    def give_up_work(self, key: str) -> None:
        """Never run again (nothing is owed to anyone: a notice was given, or it kept killing its process)."""
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
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work "
            "WHERE state = 'claimed' AND heartbeat_at < ? AND received_at >= ? ORDER BY received_at LIMIT ?",
            (now - stale_after, now - newer_than_s, limit))
        return [self._work(r) for r in rows]

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
