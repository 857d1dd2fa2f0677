"""The diagnosis agent: a LangGraph conversation around the deterministic investigation.

One graph per conversation thread (a Slack thread, a ``sleuth chat`` session), checkpointed after
every step, so a process restart resumes a conversation, and a pending approval, where it was::

    intake -> investigate -> reason -> propose -> respond -> await_human
                 ^                                               |
                 |  investigate      message -> follow_up -------+
                 +-----------------  decision -> decide ---------+

- intake parses the request and asks one clarifying question (an interrupt) only when the
  service or the time is really ambiguous.
- investigate runs the deterministic investigation (all sources and similar incidents in
  parallel, then the ranking) and fills the evidence ledger.
- reason, when a model is configured, runs the model's tool loop under budget (tool calls, tokens,
  one deadline); its claims are merged into the deterministic hypotheses only where the cited
  evidence bears them out (bot.grounding), otherwise they are refused or marked as guesses, and its
  text is filtered for claims of approvals and actions. With no model it does nothing, and the
  result is the deterministic one.
- propose turns the mitigations into pending approvals; await_human interrupts until a human
  writes (a follow-up) or decides (approve/reject). Nothing the data says can reach decide: only
  :meth:`Agent.decide` resumes with a decision.

The graph and its nodes are in bot.graph; what the nodes need besides the state (the configuration,
the redactor, the clock, the model client, the progress callback, the chart drawer) is a
:class:`bot.context.AgentContext` that :class:`Agent` builds for each call and passes as LangGraph's
runtime context, never checkpointed. This module is the facade: conversations serialised per
thread, and the checkpoint savers.

The state is JSON-plain (dicts, lists, strings, numbers). Everything read from logs, metric
labels, change messages and chat is redacted and fenced before a model sees it, and redacted
before it is returned for posting.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from bot.config import SleuthConfig, StorageConfig
from bot.context import AgentContext, ChartDrawer
from bot.graph import build_graph
from bot.turns import ProgressFn, Turn


# --- checkpoints -----------------------------------------------------------------------------------
CHECKPOINT_SCHEMA_LOCK = 0x5C4E_C4E0  # advisory lock key: one replica creates or migrates the checkpoint tables


@contextmanager
def _schema_lock(conn: Any, wait_s: float = 120.0) -> Iterator[None]:
    """Hold a session advisory lock while the checkpoint tables are created or migrated: two
    replicas running them at once on a fresh database collide (``pg_type_typname_nsp_index``,
    ``checkpoint_migrations_pkey``). Not a transaction lock: langgraph's migrations include
    ``CREATE INDEX CONCURRENTLY``, which cannot run inside a transaction; and polled with
    pg_try_advisory_lock, so a waiting replica holds no snapshot that such an index build would wait
    for in turn."""
    deadline = time.monotonic() + wait_s
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS held", (CHECKPOINT_SCHEMA_LOCK,)).fetchone()["held"]:
        if time.monotonic() > deadline:
            raise TimeoutError("another Sleuth process has held the checkpoint schema lock for 2 minutes")
        time.sleep(0.05)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SCHEMA_LOCK,))


@contextmanager
def open_checkpointer(storage: StorageConfig | None) -> Iterator[Any]:
    """A checkpoint saver: SQLite (the default, a file) or PostgreSQL when storage.postgres is set."""
    from bot.config import POSTGRES_MISSING, ConfigError

    storage = storage or StorageConfig()
    if storage.postgres:
        try:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row
        except ImportError:
            raise ConfigError(POSTGRES_MISSING) from None

        try:
            conn = psycopg.connect(storage.postgres, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot connect to PostgreSQL at storage.postgres: {first}") from exc
        try:
            saver = PostgresSaver(conn)
            with _schema_lock(conn):  # replicas starting together on a fresh database
                saver.setup()
            yield saver
        finally:
            conn.close()
        return
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(storage.sqlite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the state file {path}: {exc}; set storage.sqlite to a writable path") from exc
    try:
        lite = SqliteSaver(db)
        lite.setup()
        yield lite
    finally:
        db.close()


# --- the agent -------------------------------------------------------------------------------------
class Agent:
    """Runs conversations. Methods are synchronous and serialised per thread id."""

    def __init__(self, config: SleuthConfig, *, checkpointer: Any = None, charts_dir: Path | None = None,
                 clock: Callable[[], float] = time.time, charts_per_thread: bool = True,
                 chart_executor: Any = None) -> None:
        """``chart_executor`` (a concurrent.futures Executor, e.g. a one-process pool) draws the
        charts beside the conversation: the turn names the files at once and
        :meth:`wait_for_charts` waits for them. Without one they are drawn before the turn returns."""
        from langgraph.checkpoint.memory import InMemorySaver

        from bot.safety import Redactor

        self.config = config
        self.charts_dir = Path(charts_dir) if charts_dir else None
        self.charts_per_thread = charts_per_thread
        self.chart_executor = chart_executor
        self.charts = (ChartDrawer(self.charts_dir, per_thread=charts_per_thread, executor=chart_executor)
                       if self.charts_dir is not None else None)
        self.clock = clock
        self.redactor = Redactor(config.safety)
        self._checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._model_client = None
        self.graph = build_graph(self._checkpointer)

    # public API ---------------------------------------------------------------------------------
    def start(self, thread_id: str, text: str, *, service: str | None = None, window: str | None = None,
              at: float | None = None, on_progress: ProgressFn | None = None, clarify: bool = True) -> Turn:
        """A new investigation in the thread. ``clarify=False`` never asks a question (scripts, the CLI)."""
        event = {"type": "investigate", "text": text or "", "service": service, "window": window, "at": at,
                 "received": self.clock(), "clarify": clarify}
        return self._send(thread_id, event, on_progress)

    def reply(self, thread_id: str, text: str, *, on_progress: ProgressFn | None = None, by: str | None = None) -> Turn:
        """A message in the thread. ``by``: who wrote it, where people are told apart (Slack): only
        whoever rejected a mitigation can add to the reason it was rejected."""
        if not (text or "").strip():
            return Turn(thread_id, "error", "the message is empty; ask a question or describe the symptom")
        with self._lock(thread_id):
            if not self._exists(thread_id):
                return self._send_locked(thread_id, {"type": "investigate", "text": text, "service": None,
                                                     "window": None, "at": None, "received": self.clock()}, on_progress)
            return self._send_locked(thread_id, {"type": "message", "text": text, "received": self.clock(), "by": by},
                                     on_progress)

    def decide(self, thread_id: str, mitigation_id: str, approved: bool, by: str, reason: str = "") -> Turn:
        with self._lock(thread_id):
            snap = self.snapshot(thread_id)
            if snap is None:
                return Turn(thread_id, "error", "there is no investigation in this thread to decide on")
            if snap.get("waiting") == "question":
                return Turn(thread_id, "error", "answer the open question first; there is no mitigation to decide yet")
            if not any(p["id"] == mitigation_id for p in snap["pending"]):
                done = [d for d in snap["decisions"] if d["id"] == mitigation_id]
                if done:
                    verdict = "approved" if done[-1]["approved"] else "rejected"
                    return Turn(thread_id, "error", f"mitigation {mitigation_id} was already {verdict} by "
                                                    f"{done[-1]['by']} at {done[-1]['at']}",
                                decisions=snap["decisions"], pending=snap["pending"])
                return Turn(thread_id, "error", f"no pending mitigation {mitigation_id} in this thread",
                            pending=snap["pending"], decisions=snap["decisions"])
            event = {"type": "decision", "id": mitigation_id, "approved": bool(approved), "by": by,
                     "reason": reason or "", "received": self.clock()}
            return self._send_locked(thread_id, event, None)

    def snapshot(self, thread_id: str) -> dict[str, Any] | None:
        state = self.graph.get_state(self._cfg(thread_id))
        if not state.values:
            return None
        values = state.values
        waiting = None
        for task in state.tasks:
            for pending in task.interrupts:
                waiting = (pending.value or {}).get("kind")
        return {"diagnosis": values.get("diagnosis"), "pending": values.get("pending", []),
                "decisions": values.get("decisions", []), "messages": values.get("messages", []),
                "charts": values.get("charts", []), "request": values.get("request"),
                "ledger": values.get("ledger", {}), "usage": values.get("usage"), "scope": values.get("scope"),
                "waiting": waiting}

    # plumbing -----------------------------------------------------------------------------------
    @staticmethod
    def _cfg(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 50}

    def _lock(self, thread_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(thread_id, threading.Lock())

    def _exists(self, thread_id: str) -> bool:
        return bool(self.graph.get_state(self._cfg(thread_id)).values)

    def _send(self, thread_id: str, event: dict[str, Any], on_progress: ProgressFn | None) -> Turn:
        with self._lock(thread_id):
            return self._send_locked(thread_id, event, on_progress)

    def _send_locked(self, thread_id: str, event: dict[str, Any], on_progress: ProgressFn | None) -> Turn:
        from langgraph.types import Command

        cfg = self._cfg(thread_id)
        ctx = self.context(on_progress)
        state = self.graph.get_state(cfg)
        if state.values and state.next:
            self.graph.invoke(Command(resume=event), cfg, context=ctx)
        else:
            self.graph.invoke({"thread_id": thread_id, "event": event, "ledger": {}, "pending": [],
                               "decisions": [], "messages": [], "charts": [], "diagnosis": None}, cfg, context=ctx)
        return self.last_turn(thread_id) or Turn(thread_id, "error", "")

    def context(self, on_progress: ProgressFn | None = None) -> AgentContext:
        """What the graph's nodes need for one call (LangGraph's runtime context; never checkpointed)."""
        return AgentContext(config=self.config, redactor=self.redactor, clock=self.clock,
                            model_client=self.model_client, progress=on_progress, charts=self.charts)

    def last_turn(self, thread_id: str) -> Turn | None:
        """What the thread's last step produced, read back from its checkpoint (None for a thread
        never started): a process resuming work another one left sees the same Turn it would have."""
        cfg = self._cfg(thread_id)
        state = self.graph.get_state(cfg)
        if not state.values:
            return None
        for task in state.tasks:
            for pending in task.interrupts:
                value = pending.value or {}
                if value.get("kind") == "question":
                    return Turn(thread_id, "question", value.get("text", ""),
                                diagnosis=state.values.get("diagnosis"))
        turn = dict(state.values.get("turn") or {})
        turn.setdefault("thread_id", thread_id)
        turn.setdefault("kind", "error")
        turn.setdefault("text", "")
        return Turn(**turn)

    def model_client(self):
        if not self.config.model.configured:
            return None
        if self._model_client is None:
            from bot.llm import ModelClient

            self._model_client = ModelClient(self.config.model, redact=self.redactor.redact)
        return self._model_client

    def wait_for_charts(self, thread_id: str, timeout: float = 60.0) -> None:
        """Wait until the charts of the thread's last investigation are drawn (at most ``timeout``
        seconds); a chart that failed or is late is logged and left out, never raised."""
        if self.charts is not None:
            self.charts.wait(thread_id, timeout)
