"""The claimed-work table: Slack events, slash commands and alerts claimed so each runs exactly once.

Incoming work (events by ``event_id``, slash commands by ``trigger_id``, alert groups by their key)
is claimed with its body before it starts and marked done when it ends. The owner's heartbeat
keeps a claim fresh while it runs; a claim whose owner stopped beating (the process died) is taken
over, by Slack's redelivery or by the next process's start-up replay, so a crash loses no work and
a live owner's work is never doubled. The work's ``note`` records what it already did (its plan
message, the diagnosis posted...) before the next step, so whoever takes it over resumes.

Work Slack could not take (an outage, 429s) waits in state ``retry`` until ``next_at``, for any
process's keeper to take again; work handed back by a stopping process waits there too, due at
once. Past its deadline it becomes ``failed`` until the channel has been told, then ``abandoned``.

The table lives in the same database as the incident store (``storage``, the same table prefix),
created and migrated under the same advisory lock (bot.incidents.database), on connections of its
own: an ack never waits behind another thread's store work.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bot.config import StorageConfig
from bot.incidents.database import Database, check_prefix, create_schema

CLAIM_TTL_S = 7 * 86400  # Slack stops redelivering after minutes; a week is ample
STALE_AFTER_S = 45.0  # a claim whose owner has not beaten for this long is taken over
REPLAY_ATTEMPTS = 3  # a piece of work that killed its process this often is given up, not replayed again
# Columns added after the first release of the table: (table, column, type), added where missing.
_MIGRATIONS = (
    ("work", "next_at", "{real}"),  # state retry/failed: when it is due again
    ("work", "tries", "INTEGER NOT NULL DEFAULT 0"),  # deliveries Slack did not take
    ("work", "last_error", "TEXT"),
)


def _ddl(prefix: str, postgres: bool) -> list[str]:
    real = "DOUBLE PRECISION" if postgres else "REAL"
    p = prefix
    return [
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


class WorkClaims:
    """Claimed incoming work: claim, heartbeat, done, retry, hand back, take over.

    ``prefix`` names the table (``sleuth_work``), as the incident store's prefix names its own.
    """

    def __init__(self, storage: StorageConfig, *, prefix: str = "sleuth_") -> None:
        self.prefix = check_prefix(prefix)
        # Claims have their own connection: an ack never waits behind another thread's store work.
        self.db = Database(storage)
        self._notes = threading.Lock()
        create_schema(self.db, _ddl(prefix, self.db.postgres), prefix=prefix, migrations=_MIGRATIONS)
        self.db.execute(f"DELETE FROM {prefix}work WHERE received_at < ?", (time.time() - CLAIM_TTL_S,))

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Remove this prefix's table (tests)."""
        self.db.execute(f"DROP TABLE IF EXISTS {self.prefix}work")

    def claim_work(self, key: str, body: dict[str, Any] | None, *, owner: str,
                   stale_after: float = STALE_AFTER_S) -> bool:
        """True when ``owner`` now holds ``key``: its first delivery, or a redelivery of work whose
        owner stopped beating ``stale_after`` seconds ago. False for done work and for work a live
        owner is doing (Slack's retries while it runs)."""
        now = time.time()
        count, _ = self.db.execute(
            f"INSERT INTO {self.prefix}work (key, body, state, owner, attempts, received_at, heartbeat_at) "
            "VALUES (?, ?, 'claimed', ?, 1, ?, ?) ON CONFLICT DO NOTHING",
            (key, json.dumps(body or {}, separators=(",", ":")), owner, now, now))
        return count == 1 or self.take_over(key, owner=owner, stale_after=stale_after)

    def take_over(self, key: str, *, owner: str, stale_after: float = STALE_AFTER_S) -> bool:
        """Claim unfinished work whose owner stopped beating; exactly one contender wins."""
        now = time.time()
        count, _ = self.db.execute(
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
        count, _ = self.db.execute(sql, params)
        return count

    def retry_work(self, key: str, *, owner: str, at: float, error: str) -> bool:
        """Slack did not take the work: due again at ``at`` for any process's keeper."""
        count, _ = self.db.execute(
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
        count, _ = self.db.execute(sql, params)
        return count == 1

    def due_work(self, *, state: str = "retry", limit: int = 50) -> list[Work]:
        """Work in ``state`` (retry, or failed: a notice owed) whose time has come, oldest first."""
        _, rows = self.db.execute(
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work "
            "WHERE state = ? AND next_at <= ? ORDER BY received_at LIMIT ?", (state, time.time(), limit))
        return [self._work(r) for r in rows]

    def take_due(self, key: str, *, owner: str) -> bool:
        """Claim work due for a retry; exactly one contender wins."""
        now = time.time()
        count, _ = self.db.execute(
            f"UPDATE {self.prefix}work SET state = 'claimed', owner = ?, heartbeat_at = ? "
            "WHERE key = ? AND state = 'retry' AND next_at <= ?", (owner, now, key, now))
        return count == 1

    def take_notice(self, key: str, *, again_at: float) -> bool:
        """The right to tell the channel about failed work now (the next try at ``again_at``)."""
        count, _ = self.db.execute(
            f"UPDATE {self.prefix}work SET next_at = ? WHERE key = ? AND state = 'failed' AND next_at <= ?",
            (again_at, key, time.time()))
        return count == 1

    def next_due(self) -> float | None:
        """When the next retry or notice is due (None: nothing waits)."""
        _, rows = self.db.execute(
            f"SELECT MIN(next_at) AS due FROM {self.prefix}work WHERE state IN ('retry', 'failed')")
        due = rows[0]["due"] if rows else None
        return float(due) if due is not None else None

    def heartbeat(self, owner: str) -> int:
        """Keep every unfinished claim of ``owner`` fresh; the number of claims it holds."""
        count, _ = self.db.execute(f"UPDATE {self.prefix}work SET heartbeat_at = ? WHERE owner = ? AND state = 'claimed'",
                                   (time.time(), owner))
        return count

    def finish_work(self, key: str) -> None:
        """The work is over (done, or failed with the user told): never run again; the body is dropped."""
        self.db.execute(f"UPDATE {self.prefix}work SET state = 'done', done_at = ?, body = '{{}}' WHERE key = ?",
                        (time.time(), key))

    def note_work(self, key: str, note: dict[str, Any]) -> dict[str, Any]:
        """Add ``note`` to what unfinished work has recorded for whoever takes it over (its plan
        message, the diagnosis it posted...); the whole note as stored."""
        with self._notes:
            merged = {**self.work_note(key), **note}
            self.db.execute(f"UPDATE {self.prefix}work SET note = ? WHERE key = ? AND state IN ('claimed', 'retry')",
                            (json.dumps(merged, separators=(",", ":")), key))
        return merged

    def work_note(self, key: str) -> dict[str, Any]:
        _, rows = self.db.execute(f"SELECT note FROM {self.prefix}work WHERE key = ?", (key,))
        return json.loads(rows[0]["note"] or "{}") if rows else {}

    def work(self, key: str) -> Work | None:
        _, rows = self.db.execute(
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work WHERE key = ?",
            (key,))
        return self._work(rows[0]) if rows else None

    @staticmethod
    def _work(r: dict[str, Any]) -> Work:
        return Work(r["key"], json.loads(r["body"] or "{}"), int(r["attempts"]), float(r["received_at"]),
                    json.loads(r["note"] or "{}"), int(r.get("tries") or 0), r.get("last_error"))

    def give_up_work(self, key: str) -> None:
        """Never run again (nothing is owed to anyone: a notice was given, or it kept killing its process)."""
        self.db.execute(f"UPDATE {self.prefix}work SET state = 'abandoned', done_at = ?, body = '{{}}' WHERE key = ?",
                        (time.time(), key))

    def work_state(self, key: str) -> str | None:
        _, rows = self.db.execute(f"SELECT state FROM {self.prefix}work WHERE key = ?", (key,))
        return rows[0]["state"] if rows else None

    def stale_work(self, *, stale_after: float = STALE_AFTER_S, newer_than_s: float = 3600.0,
                   limit: int = 50) -> list[Work]:
        """Unfinished work whose owner stopped beating, oldest first; work older than ``newer_than_s``
        is left to lie (an hour-old /diagnose answered now would mislead)."""
        now = time.time()
        _, rows = self.db.execute(
            f"SELECT key, body, attempts, received_at, note, tries, last_error FROM {self.prefix}work "
            "WHERE state = 'claimed' AND heartbeat_at < ? AND received_at >= ? ORDER BY received_at LIMIT ?",
            (now - stale_after, now - newer_than_s, limit))
        return [self._work(r) for r in rows]
