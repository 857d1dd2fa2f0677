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

The state is JSON-plain (dicts, lists, strings, numbers). Everything read from logs, metric
labels, change messages and chat is redacted and fenced before a model sees it, and redacted
before it is returned for posting.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypedDict

from bot.config import SleuthConfig, StorageConfig, parse_duration
from tools.diagnosis import SourceReport, iso

log = logging.getLogger("sleuth.agent")

ProgressFn = Callable[[str, SourceReport], None]


# --- the public shape ------------------------------------------------------------------------------
@dataclass
class Turn:
    """What one step of the conversation produced, for the CLI or Slack to show."""

    thread_id: str
    kind: str  # question | diagnosis | answer | decision | error
    text: str
    diagnosis: dict[str, Any] | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)  # ids an answer relied on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AgentState(TypedDict, total=False):
    thread_id: str
    event: dict[str, Any]
    request: dict[str, Any]
    scope: dict[str, Any]
    diagnosis: dict[str, Any] | None
    ledger: dict[str, dict[str, Any]]
    pending: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    charts: list[str]
    usage: dict[str, Any]
    turn: dict[str, Any]
    route: str


def _usage(name: str | None, status: str) -> dict[str, Any]:
    return {"name": name, "status": status, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
            "tool_calls": 0, "limits": [], "tool_output_raw_chars": 0, "tool_output_chars": 0,
            "compaction_ratio": None, "prompt_tokens_if_raw": 0}


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code, inside or outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


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
    from bot.config import ConfigError

    storage = storage or StorageConfig()
    if storage.postgres:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

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
        conn = sqlite3.connect(str(path), check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the state file {path}: {exc}; set storage.sqlite to a writable path") from exc
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


# --- reading what people write -----------------------------------------------------------------------
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


_DB_WORDS = ("database", "db", "postgres", "mysql", "sql")


def mentioned_services(text: str, known: list[str]) -> list[str]:
    """Known service names the text mentions (whole words), plus 'the database' style aliases."""
    lowered = text.lower()
    found = [s for s in known if re.search(rf"(?<![\w-]){re.escape(s.lower())}(?![\w-])", lowered)]
    if not found and re.search(r"\b(database|db)\b", lowered):
        found = [s for s in known if any(w in s.lower() for w in _DB_WORDS)]
    return found


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
        self._chart_jobs: dict[str, Any] = {}
        self.clock = clock
        self.redactor = Redactor(config.safety)
        self._checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._progress: dict[str, ProgressFn | None] = {}
        self._model_client = None
        self.graph = self._build()

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
                "ledger": values.get("ledger", {}), "usage": values.get("usage"), "waiting": waiting}

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
        self._progress[thread_id] = on_progress
        try:
            state = self.graph.get_state(cfg)
            if state.values and state.next:
                self.graph.invoke(Command(resume=event), cfg)
            else:
                self.graph.invoke({"thread_id": thread_id, "event": event, "ledger": {}, "pending": [],
                                   "decisions": [], "messages": [], "charts": [], "diagnosis": None}, cfg)
        finally:
            self._progress.pop(thread_id, None)
        return self.last_turn(thread_id) or Turn(thread_id, "error", "")

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

    def _known_services(self, request: dict[str, Any]) -> list[str]:
        """Service names for intake and the tools: the config's, and what the metrics discover."""
        from tools.metrics import DISCOVERY_LABELS, open_backend

        names = set(self.config.services)
        for svc in self.config.services.values():
            names.update(svc.depends_on)
        backend = open_backend(self.config.metrics)
        if backend is not None:
            at = request.get("at") or self.clock()

            async def discover() -> list[str]:
                try:
                    found: list[str] = []
                    for label in DISCOVERY_LABELS[:3]:
                        found += await asyncio.wait_for(backend.label_values(label, at - 2 * 86400, at), 5)
                    return found
                except Exception:  # noqa: BLE001 - discovery is a convenience; the investigation reports failures
                    return []
                finally:
                    await backend.aclose()

            names.update(run_sync(discover()))
        return sorted(n for n in names if n)

    # graph --------------------------------------------------------------------------------------
    def _build(self):
        from langgraph.graph import END, START, StateGraph

        graph = StateGraph(AgentState)
        graph.add_node("intake", self._intake)
        graph.add_node("investigate", self._investigate)
        graph.add_node("reason", self._reason)
        graph.add_node("propose", self._propose)
        graph.add_node("respond", self._respond)
        graph.add_node("await_human", self._await_human)
        graph.add_node("follow_up", self._follow_up)
        graph.add_node("decide", self._decide)
        graph.add_edge(START, "intake")
        graph.add_edge("intake", "investigate")
        graph.add_conditional_edges("investigate", lambda s: s.get("route", "reason"),
                                    {"reason": "reason", "failed": "await_human"})
        graph.add_edge("reason", "propose")
        graph.add_edge("propose", "respond")
        graph.add_edge("respond", "await_human")
        graph.add_conditional_edges("await_human", lambda s: s["event"]["type"],
                                    {"investigate": "intake", "message": "follow_up", "decision": "decide",
                                     "stop": END})
        graph.add_edge("follow_up", "await_human")
        graph.add_edge("decide", "await_human")
        return graph.compile(checkpointer=self._checkpointer)

    # intake -------------------------------------------------------------------------------------
    def _intake(self, state: AgentState) -> dict[str, Any]:
        from langgraph.types import interrupt

        event = state["event"]
        # What people write is redacted before it is stored, searched or shown to a model.
        text = self.redactor.redact((event.get("text") or "").strip())
        now = event.get("received") or self.clock()
        request = {"symptom": text, "service": event.get("service"), "window": event.get("window"),
                   "at": event.get("at"), "live": event.get("at") is None, "started": now}
        interactive = event.get("clarify", True)
        # A script's request is taken as given (the same as the core's); a person's is read for a
        # service and a time, against the services the metrics know.
        known = self._known_services(request) if interactive and request["service"] is None else sorted(self.config.services)
        if interactive and request["service"] is None and text:
            named = mentioned_services(text, known)
            if len(named) == 1:
                request["service"] = named[0]
        if interactive and request["at"] is None and text:
            when = parse_time_phrase(text, now)
            if when is not None:
                span = now - when
                if request["window"] is None and span > 0:
                    request["window"] = f"{int(max(span * 1.5, 1800))}s"  # the onset lies inside the window
        if interactive and request["window"] is None and text:
            span = parse_span(text)
            if span:
                request["window"] = f"{int(span)}s"
        question = self._clarifying_question(request, known) if interactive else None
        if question:
            answer = interrupt({"kind": "question", "text": question})
            reply = (answer.get("text") or "").strip() if isinstance(answer, dict) else str(answer)
            reply = self.redactor.redact(reply)
            named = mentioned_services(reply, known)
            if named:
                request["service"] = named[0]
            when = parse_time_phrase(reply, now)
            if when is not None and request["window"] is None:
                request["window"] = f"{int(max((now - when) * 1.5, 1800))}s"
            request["clarified"] = reply
        messages = list(state.get("messages") or [])
        messages.append({"role": "user", "text": text, "at": iso(now)})
        return {"request": request, "messages": messages, "usage": _usage(self.config.model.model,
                                                                          "not_configured"),
                "scope": {"known": known}}

    def _clarifying_question(self, request: dict[str, Any], known: list[str]) -> str | None:
        """One question, only when the service or the time is really ambiguous."""
        text = request["symptom"]
        if request["service"] is None:
            named = mentioned_services(text, known)
            if len(named) >= 2:
                return (f"Which service do users see failing: {', '.join(named[:-1])} or {named[-1]}? "
                        "(or say 'all')")
        if request["at"] is None and parse_time_phrase(text, self.clock()) is None and _VAGUE_TIME.search(text):
            return "When did it start? Say a time like 'at 14:05 UTC' or '40 minutes ago'."
        return None

    # investigate ----------------------------------------------------------------------------------
    def _investigate(self, state: AgentState) -> dict[str, Any]:
        from bot.investigate import InvestigationRequest, RequestError, run_investigation

        request = state["request"]
        progress = self._progress.get(state["thread_id"])
        inv_request = InvestigationRequest(symptom=request["symptom"], service=request["service"],
                                           at=request["at"], window=request["window"])
        try:
            result = run_sync(run_investigation(inv_request, self.config, on_progress=progress))
        except RequestError as exc:
            turn = Turn(state["thread_id"], "error", str(exc))
            return {"route": "failed", "turn": turn.to_dict(), "diagnosis": None}
        diagnosis = self.redactor.redact_obj(result.diagnosis.to_dict())
        charts: list[str] = []
        if self.charts_dir is not None:
            charts = self._draw_charts(state["thread_id"], result, diagnosis)
        ledger = {e["id"]: e for e in diagnosis["evidence"]}
        obs = result.observations
        known = sorted(set(state.get("scope", {}).get("known", [])) | set(obs.series) |
                       {t.service for t in obs.templates} | {c.service for c in obs.changes})
        at = obs.at
        scope = {"symptom": request["symptom"], "service": request["service"],
                 "start": obs.window_start - obs.baseline_s, "window_start": obs.window_start, "end": at,
                 "services": known, "known": known}
        return {"route": "reason", "diagnosis": diagnosis, "ledger": ledger, "charts": charts, "scope": scope,
                "pending": [], "usage": _usage(self.config.model.model, "not_configured")}

    def _draw_charts(self, thread_id: str, result: Any, diagnosis: dict[str, Any]) -> list[str]:
        from tools.charts import chart_specs, render_charts

        folder = self.charts_dir
        if self.charts_per_thread:
            folder = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", thread_id)
        specs = chart_specs(result.diagnosis, result.observations)
        try:
            if self.chart_executor is not None and specs:
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    self._chart_jobs[thread_id] = self.chart_executor.submit(render_charts, specs, folder)
                    return [str(folder / spec.filename) for spec in specs]
                except RuntimeError as exc:  # the executor is shutting down or broken: draw here instead
                    log.warning("chart worker unavailable (%s); drawing in this thread", exc)
            return [str(p) for p in render_charts(specs, folder)]
        except OSError as exc:
            diagnosis.setdefault("notes", []).append(f"charts could not be written: {exc.strerror or exc}")
            return []

    def wait_for_charts(self, thread_id: str, timeout: float = 60.0) -> None:
        """Wait until the charts of the thread's last investigation are drawn (at most ``timeout``
        seconds); a chart that failed or is late is logged and left out, never raised."""
        job = self._chart_jobs.pop(thread_id, None)
        if job is None:
            return
        try:
            job.result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a missing chart never costs the diagnosis
            log.warning("charts for %s were not drawn: %s: %s", thread_id, type(exc).__name__, exc)

    # reason: the model's tool loop ---------------------------------------------------------------
    def _reason(self, state: AgentState) -> dict[str, Any]:
        client = self.model_client()
        if client is None:
            return {}
        from bot.reasoning import investigate_with_model

        return investigate_with_model(self, client, state)

    # propose ----------------------------------------------------------------------------------------
    def _propose(self, state: AgentState) -> dict[str, Any]:
        diagnosis = state["diagnosis"]
        pending = []
        for number, mitigation in enumerate(diagnosis.get("mitigations", []), start=1):
            entry = dict(mitigation)
            entry["id"] = f"fix{number}"
            mitigation["id"] = entry["id"]
            if mitigation.get("requires_approval"):
                pending.append(entry)
        return {"pending": pending, "diagnosis": diagnosis}

    def _respond(self, state: AgentState) -> dict[str, Any]:
        from bot.narrate import describe_diagnosis

        diagnosis = state["diagnosis"]
        text = self.redactor.redact(describe_diagnosis(diagnosis, state.get("pending", [])))
        messages = list(state.get("messages") or []) + [{"role": "assistant", "text": text,
                                                         "at": iso(self.clock())}]
        turn = Turn(state["thread_id"], "diagnosis", text, diagnosis=diagnosis, pending=state.get("pending", []),
                    decisions=state.get("decisions", []), charts=state.get("charts", []),
                    model=diagnosis.get("model", {}))
        return {"turn": turn.to_dict(), "messages": messages}

    # the conversation --------------------------------------------------------------------------------
    def _await_human(self, state: AgentState) -> dict[str, Any]:
        from langgraph.types import interrupt

        event = interrupt({"kind": "await"})
        if not isinstance(event, dict) or event.get("type") not in ("investigate", "message", "decision", "stop"):
            event = {"type": "message", "text": str(event)}
        return {"event": event}

    def _follow_up(self, state: AgentState) -> dict[str, Any]:
        from bot.followup import answer_follow_up

        return answer_follow_up(self, state)

    def _decide(self, state: AgentState) -> dict[str, Any]:
        event = state["event"]
        pending = [p for p in state.get("pending", []) if p["id"] != event["id"]]
        chosen = next((p for p in state.get("pending", []) if p["id"] == event["id"]), None)
        decisions = list(state.get("decisions") or [])
        if chosen is None:  # decided concurrently; Agent.decide checks first, so this is a race
            turn = Turn(state["thread_id"], "error", f"no pending mitigation {event['id']}",
                        pending=pending, decisions=decisions)
            return {"turn": turn.to_dict()}
        when = event.get("received") or self.clock()
        decision = {"id": chosen["id"], "approved": event["approved"], "by": event["by"], "at": iso(when),
                    "ts": when, "reason": self.redactor.redact(event.get("reason", "")), "action": chosen["action"],
                    "target": chosen["target"], "verify": chosen.get("verify", "")}
        decisions.append(decision)
        what = f"{chosen['action']} {chosen['target']}".strip()
        if event["approved"]:
            text = (f"{event['by']} approved {chosen['id']}: {what}. Sleuth does not execute it; whoever runs it, "
                    f"verify: {chosen.get('verify') or 'watch the symptom signal return to its baseline'}. "
                    "Tell me when it is done (\"we rolled back, is it recovering?\") and I will compare.")
        else:
            text = f"{event['by']} rejected {chosen['id']}: {what}." + (
                f" Reason: {decision['reason']}." if decision["reason"] else "")
        messages = list(state.get("messages") or []) + [{"role": "assistant", "text": text, "at": iso(when)}]
        turn = Turn(state["thread_id"], "decision", text, diagnosis=state.get("diagnosis"), pending=pending,
                    decisions=decisions, charts=state.get("charts", []),
                    model=(state.get("diagnosis") or {}).get("model", {}))
        return {"pending": pending, "decisions": decisions, "turn": turn.to_dict(), "messages": messages}
