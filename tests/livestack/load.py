"""A bounded, open-loop load generator for the live stack's services.

Open loop: requests leave on a schedule (``rate_per_s`` per service, each gap jittered by ±20%)
whether or not earlier ones have answered, as real clients do. A closed loop (send, wait, send)
would slow down when a service slows down, and a blocked database would show as a *drop* in
traffic instead of as latency and errors. Requests in flight per service are capped; past the cap
a request is not sent and counted as ``shed``, so a hung service cannot pile up threads.

It stops by itself after ``max_duration_s``, or when ``stop()`` is called (the stack does at close).
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class LoadStats:
    """What the clients saw, per service: answers by status, transport failures, shed requests."""

    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    shed: int = 0
    in_flight: int = 0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.failures


class LoadGenerator:
    def __init__(self, targets: Callable[[], dict[str, str]], rate_per_s: float = 15.0,
                 max_duration_s: float = 1800.0, max_in_flight: int = 48, timeout_s: float = 6.0,
                 seed: int | None = None) -> None:
        """``targets()`` maps each service to the URL to request; it is called before every
        request, so a service restarted elsewhere is followed."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._targets = targets
        self.rate_per_s = rate_per_s
        self.max_duration_s = max_duration_s
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.stats: dict[str, LoadStats] = {name: LoadStats() for name in targets()}
        self._pool = ThreadPoolExecutor(max_workers=max(4, max_in_flight * len(self.stats)),
                                        thread_name_prefix="livestack-load")
        self._schedulers: list[threading.Thread] = []
        self.started_at: float | None = None

    def start(self) -> "LoadGenerator":
        self.started_at = time.time()
        for name in self.stats:
            thread = threading.Thread(target=self._schedule, args=(name,), name=f"livestack-load:{name}", daemon=True)
            thread.start()
            self._schedulers.append(thread)
        return self

    @property
    def running(self) -> bool:
        return not self._stop.is_set() and any(t.is_alive() for t in self._schedulers)

    def stop(self, wait: bool = True) -> None:
        """Stop sending; with ``wait``, also wait for the requests in flight (bounded by their timeout)."""
        self._stop.set()
        for thread in self._schedulers:
            thread.join(timeout=2)
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def snapshot(self) -> dict[str, LoadStats]:
        with self._lock:
            return {name: LoadStats(dict(s.statuses), s.failures, s.shed, s.in_flight)
                    for name, s in self.stats.items()}

    def _schedule(self, name: str) -> None:
        interval = 1.0 / self.rate_per_s
        deadline = time.monotonic() + self.max_duration_s
        next_at = time.monotonic() + self._random.uniform(0, interval)  # services out of phase
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if next_at > now and self._stop.wait(next_at - now):
                return
            next_at += interval * self._random.uniform(0.8, 1.2)
            if next_at < time.monotonic() - 1.0:  # fell far behind (a stalled machine): do not burst
                next_at = time.monotonic()
            url = self._targets().get(name)
            if url is None:
                continue
            with self._lock:
                stats = self.stats[name]
                if stats.in_flight >= self.max_in_flight:
                    stats.shed += 1
                    continue
                stats.in_flight += 1
            item = self._random.randint(1, 1000)
            try:
                self._pool.submit(self._one, name, f"{url}?id={item}")
            except RuntimeError:  # the pool was shut down between the check and the submit
                with self._lock:
                    stats.in_flight -= 1
                return

    def _one(self, name: str, url: str) -> None:
        status: int | None = None
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:
                answer.read()
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (urllib.error.URLError, OSError):
            status = None
        finally:
            with self._lock:
                stats = self.stats[name]
                stats.in_flight -= 1
                if status is None:
                    stats.failures += 1
                else:
                    stats.statuses[status] = stats.statuses.get(status, 0) + 1
