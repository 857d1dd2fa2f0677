"""One SQLite or PostgreSQL connection for the durable tables, and their schema created under an advisory lock.

The same SQL runs on both (written with ``?`` placeholders); only the DDL differs. Each table
owner (the incident store, the Slack adapter's claimed work) opens its own connections and
creates its own tables with :func:`create_schema`: in one transaction which, on PostgreSQL,
first takes an advisory lock, so replicas starting together on a fresh database do not race
each other's ``CREATE TABLE``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from bot.config import POSTGRES_MISSING, StorageConfig

# pg_advisory_xact_lock key serialising schema creation and migrations across replicas ("sleuth-schema").
SCHEMA_LOCK = 0x5C4E_D0C5


class StoreError(RuntimeError):
    """The incident store cannot be reached or written, as one sentence."""


def check_prefix(prefix: str) -> str:
    """The table prefix, when it is letters, digits and underscores (it is written into SQL)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", prefix):
        raise ValueError(f"table prefix {prefix!r} must be letters, digits and underscores")
    return prefix


class Database:
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
            try:
                import psycopg
            except ImportError:
                raise StoreError(POSTGRES_MISSING) from None

            try:
                self._conn = psycopg.connect(self._url or "", autocommit=True, connect_timeout=10)
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


def create_schema(db: Database, statements: Sequence[str], *, prefix: str,
                  migrations: Sequence[tuple[str, str, str]] = ()) -> None:
    """Run ``statements`` (``CREATE ... IF NOT EXISTS``) and add the columns of ``migrations``
    ((table, column, type), the type may say ``{real}``) where missing, in one transaction. On
    PostgreSQL it holds an advisory lock first: two replicas running ``CREATE TABLE IF NOT EXISTS``
    at once on a fresh database collide in the catalog (``pg_type_typname_nsp_index``); the second
    one waits instead and then finds everything there."""
    with db.transaction():
        if db.postgres:
            db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
        for statement in statements:
            db.execute(statement)
        real = "DOUBLE PRECISION" if db.postgres else "REAL"
        for table, column, kind in migrations:
            name = f"{prefix}{table}"
            if db.postgres:
                _, rows = db.execute(
                    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = ? AND column_name = ?", (name, column))
            else:
                rows = [r for r in db.execute(f"PRAGMA table_info({name})")[1] if r["name"] == column]
            if not rows:
                db.execute(f"ALTER TABLE {name} ADD COLUMN {column} {kind.format(real=real)}")
