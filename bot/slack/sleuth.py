"""The Sleuth every flow is handed (config, store, claims, agent), its running-work bookkeeping, small Slack helpers."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import SleuthConfig
from bot.incidents.store import IncidentStore
from bot.slack.claims import WorkClaims
from bot.slack.mrkdwn import MAX_FALLBACK, clip

log = logging.getLogger("sleuth.slack")


@dataclass
class Defaults:
    """What a bare ``/diagnose`` means: the demo scenario's question (all None otherwise)."""

    symptom: str | None = None
    service: str | None = None
    at: float | None = None
    window: str | None = None


@dataclass
class Sleuth:
    """Everything the listeners need, handed in (no globals): config, store, claims, agent, defaults."""

    config: SleuthConfig
    store: IncidentStore
    claims: WorkClaims  # the claimed incoming work (its own connections: acks never wait behind the store)
    agent: Any  # bot.agent.Agent
    defaults: Defaults = field(default_factory=Defaults)
    known_services: set[str] = field(default_factory=set)
    max_investigations: int | None = None  # None: slack.max_investigations
    memory_factory: Callable[[], Any] | None = None  # -> index.store.Memory; None: from config.memory

    def __post_init__(self) -> None:
        # Investigations are CPU-bound: a few at a time finish sooner than all at once, and the
        # lighter work (reactions, decisions, timeline edits) keeps flowing beside them.
        if self.max_investigations is None:
            self.max_investigations = self.config.slack.max_investigations
        self.gate = threading.BoundedSemaphore(self.max_investigations)
        # Who holds claimed work: this process, distinguishable from an earlier one with the same pid.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.updates = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sleuth-slack-update")
        self.in_flight = InFlight()  # the work running here: a graceful stop waits for it
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.group_cache: dict[str, tuple[float, set[str]]] = {}  # user group -> (when listed, members)
        self.investigations = Investigations()  # per channel: resolve waits for them (bounded)

    @property
    def command(self) -> str:
        return self.config.slack.command

    def incident_lock(self, incident_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(incident_id, threading.Lock())

    def memory(self) -> Any:
        if self.memory_factory is not None:
            return self.memory_factory()
        if self.config.memory is None:
            return None
        from index.store import Memory

        return Memory(self.config.memory)

    def close(self) -> None:
        self.updates.shutdown(wait=True)


class InFlight:
    """The work this process is running (by work key), so a graceful stop can wait for it to end,
    and so that once the stop has begun no more starts here (it is handed back instead)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: dict[str, int] = {}
        self.stopping = False

    def enter(self, key: str) -> bool:
        """Start running ``key``; False once stopping (leave it claimed, to be handed back)."""
        with self._cond:
            if self.stopping:
                return False
            self._running[key] = self._running.get(key, 0) + 1
            return True

    def leave(self, key: str) -> None:
        with self._cond:
            left = self._running.get(key, 1) - 1
            if left > 0:
                self._running[key] = left
            else:
                self._running.pop(key, None)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopping = True

    def wait(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for the running work to end; the keys still running."""
        with self._cond:
            self._cond.wait_for(lambda: not self._running, timeout=max(0.0, timeout))
            return sorted(self._running)

    def keys(self) -> list[str]:
        with self._cond:
            return sorted(self._running)


class Investigations:
    """The investigations (``/diagnose`` and thread replies) running in this process, by channel, so
    that resolve can wait for them (bounded). Within one process: a replica resolving an incident
    another replica investigates does not wait; the late diagnosis is then marked, as when the wait
    runs out, and never reopens the incident."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: dict[tuple[str, str], set[int]] = {}
        self._ids = itertools.count(1)

    @contextmanager
    def running(self, team: str, channel: str):
        key = (team, channel)
        with self._cond:
            token = next(self._ids)
            self._running.setdefault(key, set()).add(token)
        try:
            yield token
        finally:
            with self._cond:
                found = self._running.get(key)
                if found is not None:
                    found.discard(token)
                    if not found:
                        del self._running[key]
                self._cond.notify_all()

    def count(self, team: str, channel: str) -> int:
        with self._cond:
            return len(self._running.get((team, channel), ()))

    def wait(self, team: str, channel: str, timeout: float) -> int:
        """Wait up to ``timeout`` s for the investigations running now in the channel (not later
        ones) to end; how many of them still run."""
        key = (team, channel)
        with self._cond:
            now = set(self._running.get(key, ()))
            self._cond.wait_for(lambda: not (now & self._running.get(key, set())), timeout=max(0.0, timeout))
            return len(now & self._running.get(key, set()))


def investigation(flow: Callable[..., None]) -> Callable[..., None]:
    """Count the flow as an investigation running in its channel while it runs (resolve waits for it)."""

    @functools.wraps(flow)
    def run(sleuth: Sleuth, client: WebClient, *, team: str, channel: str, **kwargs: Any) -> None:
        with sleuth.investigations.running(team, channel):
            return flow(sleuth, client, team=team, channel=channel, **kwargs)

    return run


def thread_id_of(team: str, channel: str, thread_ts: str) -> str:
    """The agent's conversation id for a Slack thread."""
    return f"{team}:{channel}:{thread_ts}"


def ephemeral(client: WebClient, *, channel: str, user: str, text: str, blocks: list | None = None,
              thread_ts: str | None = None) -> None:
    """Only ``user`` sees it. A failure to tell is logged, never raised."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=clip(text, MAX_FALLBACK), blocks=blocks,
                                  thread_ts=thread_ts)
    except SlackApiError as exc:
        log.warning("could not post an ephemeral message in %s: %s", channel, exc.response.get("error"))
