"""``LiveStack``: real services, exporters, Prometheus and Sleuth's webhook on 127.0.0.1, for tests.

The point is to test Sleuth against what real components emit (counter resets at a restart,
histograms under lock contention, node metrics under CPU pressure, the postgres exporter's series)
rather than against series written by hand. See the package docstring (``tests/livestack``) for
the API; this module holds the implementation.

Start order: the binaries are looked up (a missing one is ``LiveStackUnavailable`` before anything
runs); the PostgreSQL database is created (when PostgreSQL answers); the services, the exporters
and the webhook start at once, each on a free port, retried on another if the port was taken
in the meantime; then Prometheus, whose configuration needs those ports; then the wait until
every target is ``up``; then the load. ``close()`` undoes all of it in reverse, whatever happened,
and is idempotent.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import secrets
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from tests.livestack.load import LoadGenerator
from tests.livestack.processes import Child, pid_alive, spawn, wait_for_children
from tests.standins import free_port, wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES = os.environ.get("SLEUTH_LIVE_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLE = "items"
# Collectors kept on the node exporter: the ones a diagnosis reads, all of which work in a
# container. The rest are off (--collector.disable-defaults): in a container many fail every
# scrape (systemd without D-Bus) or report nothing (hwmon, nvme, rapl, zfs, ...).
NODE_COLLECTORS = ("cpu", "meminfo", "loadavg", "pressure", "filesystem", "diskstats", "netdev",
                   "stat", "vmstat", "filefd", "uname", "time")
BINARIES = {
    "prometheus": "Debian's `prometheus` package",
    "prometheus-node-exporter": "Debian's `prometheus-node-exporter` package",
    "prometheus-postgres-exporter": "Debian's `prometheus-postgres-exporter` package",
    "stress-ng": "Debian's `stress-ng` package",
}


class LiveStackUnavailable(RuntimeError):
    """Something the stack needs is missing here (a binary, PostgreSQL). Tests skip on it, except
    under CI (``CI=true``), where it is a broken setup and must fail: see ``skip_or_fail``."""


class LiveStackError(RuntimeError):
    """A part of the stack misbehaved (did not start, did not answer): a failure, never a skip."""


@dataclass
class ServiceSpec:
    """One service to run: its name (Prometheus's ``job``), whether it queries PostgreSQL, its first
    release, and the CPU work per request (raise it to make a service sensitive to CPU contention)."""

    name: str
    postgres: bool = False
    version: str = "v1"
    work_ms: float = 3.0  # CPU work per request on an idle core


@dataclass
class ServiceHandle:
    """A running service: where it listens, where it logs, the release it runs."""

    name: str
    port: int
    log: Path
    postgres: bool
    version: str
    child: Child
    error_share: float = 0.0
    work_ms: float = 3.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.child.pid


@dataclass
class FaultRecord:
    """A fault injected (or a change made) by the stack, with the times it really began and ended."""

    kind: str
    target: str
    began: float
    ended: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(exc: LiveStackUnavailable) -> None:
    """In a test: skip with the reason, or fail under CI (where the setup must provide everything)."""
    import pytest

    if _ci():
        pytest.fail(f"CI=true but the live stack cannot run: {exc}", pytrace=False)
    pytest.skip(str(exc))


def which(binary: str) -> str:
    path = shutil.which(binary)
    if not path:
        raise LiveStackUnavailable(f"{binary} not on PATH: install {BINARIES.get(binary, binary)} "
                                   f"(apt-get install -y {binary}, as .ci/run does)")
    return path


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_json(url: str, *, data: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise LiveStackError(f"{url} answered HTTP {exc.code}: {detail}") from exc


def _with_database(url: str, database: str, query: str = "") -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{database}", query or parts.query, ""))


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(eq=False)
class _Launch:
    """A process being started: how to build its command for a port, and where it says it is ready."""

    name: str
    build: Callable[[int], list[str]]
    ready: Callable[[int], str]
    env: dict[str, str] | None = None
    fixed_port: int | None = None
    port: int | None = None
    child: Child | None = None
    service: ServiceHandle | None = None  # for services: the handle, completed once ready

    def finished_service(self) -> ServiceHandle:
        assert self.service is not None and self.child is not None and self.port is not None
        self.service.port, self.service.child = self.port, self.child
        return self.service


_OPEN: set["LiveStack"] = set()
_OPEN_LOCK = threading.Lock()


def _close_open_stacks() -> None:
    with _OPEN_LOCK:
        stacks = list(_OPEN)
    for stack in stacks:
        try:
            stack.close()
        except Exception:
            pass


atexit.register(_close_open_stacks)


class LiveStack:
    """Services, node and postgres exporters, Prometheus, ``sleuth webhook`` and load, on 127.0.0.1.

    Use as a context manager; see the package docstring for the whole API.
    """

    def __init__(self, root: Path | str, services: Sequence[str | ServiceSpec] = ("checkout", "cart"), *,
                 postgres: Iterable[str] = (), require_postgres: bool = False,
                 postgres_url: str = DEFAULT_POSTGRES, rate_per_s: float = 15.0,
                 max_duration_s: float = 1800.0, scrape_interval_s: float = 5.0,
                 start_timeout_s: float = 60.0, load: bool = True, stress: bool = True) -> None:
        self.root = Path(root).resolve()
        uses_pg = set(postgres)
        specs = [replace(s, postgres=s.postgres or s.name in uses_pg) if isinstance(s, ServiceSpec)
                 else ServiceSpec(str(s), postgres=str(s) in uses_pg) for s in services]
        names = [s.name for s in specs]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"service names must be unique and at least one: {names}")
        reserved = {"node", "postgres"} & set(names)
        if reserved:
            raise ValueError(f"{', '.join(sorted(reserved))} is the job of an exporter; name the service otherwise")
        unknown = uses_pg - set(names)
        if unknown:
            raise ValueError(f"postgres= names services that are not in the stack: {sorted(unknown)}")
        self.specs = specs
        self.require_postgres = require_postgres
        self.postgres_admin_url = postgres_url
        self.rate_per_s = rate_per_s
        self.max_duration_s = max_duration_s
        self.scrape_interval_s = scrape_interval_s
        self.start_timeout_s = start_timeout_s
        self.with_load = load
        self.with_stress = stress

        self.services: dict[str, ServiceHandle] = {}
        self.skipped: dict[str, str] = {}  # part -> why it is not running (e.g. "postgres")
        self.faults: list[FaultRecord] = []
        self.database: str | None = None  # its name (kept after close, for checks)
        self.database_dropped = False
        self.database_url: str | None = None
        self.webhook_token = secrets.token_hex(16)
        self.webhook_store = self.root / "changes.sqlite3"
        self.webhook_port: int | None = None
        self.node_exporter_port: int | None = None
        self.postgres_exporter_port: int | None = None
        self.prometheus_port: int | None = None
        self.load: LoadGenerator | None = None
        self.started_at: float | None = None

        self._children: list[Child] = []  # every process ever started, restarted ones included
        self._stress: list[Child] = []
        self._closing = threading.Event()
        self._started = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._binaries: dict[str, str] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> "LiveStack":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self) -> "LiveStack":
        """Start everything and wait until Prometheus scrapes every target; on any failure
        (KeyboardInterrupt included) stop what was started and re-raise. Starting a started
        stack does nothing, so ``stack.start()`` then ``with stack:`` is fine."""
        if self._closed:
            raise LiveStackError("this stack was closed; make a new LiveStack")
        if self._started:
            return self
        self._started = True
        with _OPEN_LOCK:
            _OPEN.add(self)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        # Missing binaries are found before anything starts, so a test skips at once and cleanly.
        for binary in ("prometheus", "prometheus-node-exporter", *(("stress-ng",) if self.with_stress else ())):
            self._binaries[binary] = which(binary)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)

        self._setup_database()
        # Everything but Prometheus starts at once (the webhook alone takes ~1 s to import);
        # Prometheus comes after, as its configuration needs the others' ports.
        services = [self._service_launch(spec, spec.version) for spec in self.specs]
        node = self._node_exporter_launch()
        pg_exporter = self._postgres_exporter_launch() if self.database_url else None
        webhook = self._webhook_launch()
        launches = [webhook, *services, node, *([pg_exporter] if pg_exporter else [])]
        for launch in launches:
            self._launch(launch)
        self._await(launches, deadline)
        for launch in services:
            self.services[launch.name] = launch.finished_service()
        self.node_exporter_port = node.port
        self.postgres_exporter_port = pg_exporter.port if pg_exporter else None
        self.webhook_port = webhook.port
        # The load starts before Prometheus so that its first scrapes already see traffic (the
        # wait for the targets takes up to ~10 s: Prometheus syncs targets on a 5 s tick, then
        # spreads first scrapes over the interval); rates are then available sooner.
        if self.with_load:
            self.load = LoadGenerator(
                lambda: {name: f"{h.url}/api/{name}" for name, h in self.services.items()},
                rate_per_s=self.rate_per_s, max_duration_s=self.max_duration_s,
            ).start()
        prometheus = self._launch(self._prometheus_launch())
        self._await([prometheus], deadline)
        self.prometheus_port = prometheus.port
        self.wait_for_targets(max(5.0, deadline - time.monotonic()))
        self.started_at = time.time()

    def close(self) -> None:
        """Stop everything started, in reverse order; safe to call twice, and from atexit."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        errors: list[str] = []
        interrupted: list[BaseException] = []

        def attempt(what: str, action: Callable[[], Any]) -> None:
            try:
                action()
            except Exception as exc:  # keep stopping the rest; report at the end
                errors.append(f"{what}: {type(exc).__name__}: {exc}")
            except BaseException as exc:  # a second Ctrl-C: finish cleaning up, then re-raise it
                interrupted.append(exc)

        for timer in self._timers:
            timer.cancel()
        if self.load is not None:
            attempt("load generator", lambda: self.load.stop(wait=False))
        for child in reversed(self._children):  # all at once: stopping takes as long as the slowest
            attempt(f"signalling {child.name}", child.terminate)
        for child in reversed(self._children):
            attempt(f"stopping {child.name}", child.stop)
        for worker in self._workers:  # lock holders: released by _closing
            worker.join(timeout=10)
        if self.load is not None:
            attempt("load generator", lambda: self.load.stop(wait=True))
        if self.database and not self.database_dropped:
            attempt(f"dropping database {self.database}", self._drop_database)
        with _OPEN_LOCK:
            _OPEN.discard(self)
        if interrupted:
            raise interrupted[0]
        if errors:
            raise LiveStackError("the live stack did not stop cleanly: " + "; ".join(errors))

    # --- what is running ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Prometheus's base URL."""
        if self.prometheus_port is None:
            raise LiveStackError("Prometheus is not running")
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    @property
    def logs(self) -> dict[str, Path]:
        return {name: h.log for name, h in self.services.items()}

    def pids(self) -> list[int]:
        """Every process the stack ever started (restarted services' old processes included)."""
        return [c.pid for c in self._children]

    def ports(self) -> list[int]:
        """Every port the stack listens on."""
        found = [h.port for h in self.services.values()]
        found += [p for p in (self.node_exporter_port, self.postgres_exporter_port, self.webhook_port,
                              self.prometheus_port) if p is not None]
        return found

    def alive(self) -> list[int]:
        """The started processes still alive (none once the stack is closed)."""
        return [pid for pid in self.pids() if pid_alive(pid)]

    # --- Prometheus -----------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """An instant query: the ``data.result`` list (vector samples: ``metric`` and ``value``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        answer = _http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        if answer.get("status") != "success":
            raise LiveStackError(f"Prometheus refused {promql!r}: {answer.get('error')}")
        return answer["data"]["result"]

    def wait_for(self, promql: str, timeout_s: float = 30.0, interval_s: float = 0.5,
                 predicate: Callable[[list[dict]], bool] = bool) -> list[dict]:
        """Poll ``promql`` until ``predicate(result)`` (default: any series); LiveStackError on timeout."""
        deadline = time.monotonic() + timeout_s
        result: list[dict] = []
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise LiveStackError(f"{promql!r} did not hold within {timeout_s:.0f} s; last result: {result}")
            time.sleep(interval_s)

    def targets(self) -> list[dict]:
        """Prometheus's active targets (``labels.job``, ``health``, ``lastError``, ...)."""
        return _http_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"]

    def wait_for_targets(self, timeout_s: float = 30.0) -> None:
        """Wait until every configured job has a target and all are ``up``."""
        expected = set(self.services) | {"node"} | ({"postgres"} if self.postgres_exporter_port else set())
        deadline = time.monotonic() + timeout_s
        last: list[dict] = []
        while time.monotonic() < deadline:
            try:
                last = self.targets()
            except (LiveStackError, OSError):
                last = []
            jobs = {t["labels"].get("job"): t.get("health") for t in last}
            if set(jobs) >= expected and all(jobs[j] == "up" for j in expected):
                return
            time.sleep(0.25)
        state = ", ".join(f"{t['labels'].get('job')}={t.get('health')} {t.get('lastError') or ''}".strip()
                          for t in last) or "no targets"
        raise LiveStackError(f"Prometheus targets not all up within {timeout_s:.0f} s: {state}")

    def wait_scraped_after(self, ts: float, jobs: Iterable[str] | None = None, timeout_s: float = 20.0) -> float:
        """Wait until every target (or those of ``jobs``) was scraped successfully after unix time
        ``ts``, so that what happened at ``ts`` is in Prometheus. Returns the latest such scrape."""
        wanted = set(jobs) if jobs is not None else None
        deadline = time.monotonic() + timeout_s
        while True:
            scraped: dict[str, float] = {}
            for target in self.targets():
                job = target["labels"].get("job", "")
                if wanted is None or job in wanted:
                    last = datetime.fromisoformat(target["lastScrape"].replace("Z", "+00:00")).timestamp()
                    scraped[job] = last if target.get("health") == "up" else 0.0
            if scraped and (wanted is None or set(scraped) >= wanted) and min(scraped.values()) > ts:
                return max(scraped.values())
            if time.monotonic() >= deadline:
                raise LiveStackError(f"not every target was scraped after {ts:.3f} within {timeout_s:.0f} s: "
                                     f"{scraped}")
            time.sleep(0.25)

    # --- changes --------------------------------------------------------------------------------

    def record_change(self, service: str, kind: str, version: str = "", previous_version: str = "",
                      summary: str = "", ts: float | None = None, *, author: str = "livestack",
                      change_id: str | None = None) -> str:
        """POST one change to the running ``sleuth webhook`` (with its bearer token); returns its id."""
        change = {
            "id": change_id or f"live-{service}-{secrets.token_hex(4)}",
            "ts": time.time() if ts is None else ts,
            "service": service, "kind": kind, "summary": summary or f"{kind} of {service} {version}".strip(),
            "author": author, "version": version, "previous_version": previous_version,
        }
        answer = _http_json(f"{self.webhook_url}/changes", data=change,
                            headers={"Authorization": f"Bearer {self.webhook_token}"})
        return answer["stored"][0]

    # --- faults ---------------------------------------------------------------------------------

    def _service(self, name: str) -> ServiceHandle:
        try:
            return self.services[name]
        except KeyError:
            raise ValueError(f"no service {name!r} in the stack; it runs {sorted(self.services)}") from None

    def _post_release(self, handle: ServiceHandle, version: str, error_share: float) -> float:
        answer = _http_json(f"{handle.url}/admin/release", data={"version": version, "error_share": error_share})
        handle.version, handle.error_share = version, error_share
        return float(answer["at"])

    def bad_release(self, service: str, version: str, error_share: float, seconds: float | None = None) -> float:
        """Roll out a release in which ``error_share`` of /api requests fail with 500 and an error
        log line (no restart: counters continue). With ``seconds``, the previous release is rolled
        back after that long. Returns the unix time the release took effect in the service."""
        if not 0.0 < error_share <= 1.0:
            raise ValueError("error_share must be in (0, 1]; use release() for a harmless one")
        handle = self._service(service)
        previous = handle.version
        began = self._post_release(handle, version, error_share)
        record = FaultRecord("bad_release", service, began, detail={"version": version, "previous_version": previous,
                                                                      "error_share": error_share})
        self.faults.append(record)
        if seconds is not None:
            def rollback() -> None:
                if self._closing.is_set() or self.services.get(service) is not handle:
                    return  # closing, or the process was replaced meanwhile: nothing to roll back
                try:
                    record.ended = self._post_release(handle, previous, 0.0)
                except (LiveStackError, OSError) as exc:
                    record.detail["rollback_error"] = str(exc)

            timer = threading.Timer(seconds, rollback)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        return began

    def release(self, service: str, version: str) -> float:
        """A harmless release (no errors, no restart). Returns the unix time it took effect."""
        handle = self._service(service)
        previous = handle.version
        began = self._post_release(handle, version, 0.0)
        self.faults.append(FaultRecord("release", service, began, began,
                                       {"version": version, "previous_version": previous}))
        return began

    def restart_with_version(self, service: str, version: str, error_share: float = 0.0) -> float:
        """A real deploy: stop the service's process and start a new one on the same port running
        ``version`` (its counters start from zero), failing ``error_share`` of /api requests from
        its first one (0: a harmless deploy; a bad release before it is gone with the old
        process). Returns the unix time the new process began serving; the fault record's
        ``detail['stopped']`` has the time the old one was stopped."""
        if not 0.0 <= error_share <= 1.0:
            raise ValueError("error_share must be between 0 and 1")
        handle = self._service(service)
        previous = handle.version
        stopped_at = time.time()
        handle.child.stop()
        spec = ServiceSpec(service, handle.postgres, version, handle.work_ms)
        fresh = self._start_service(spec, version, time.monotonic() + 30.0, port=handle.port, error_share=error_share)
        began = time.time()
        self.services[service] = fresh
        self.faults.append(FaultRecord("restart", service, began, began, {
            "version": version, "previous_version": previous, "stopped": stopped_at, "error_share": error_share}))
        return began

    def lock_table(self, seconds: float, table: str = TABLE) -> float:
        """Hold ``LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE`` in an open transaction for
        ``seconds``: the services' queries queue behind it and time out after 2 s (503 and an
        error log line). Returns at once with the unix time the lock was granted; the lock is
        released by itself, at close, or by PostgreSQL if this process dies
        (idle_in_transaction_session_timeout)."""
        if not self.database_url:
            raise LiveStackUnavailable(self.skipped.get("postgres", "the stack runs without PostgreSQL"))
        import psycopg
        from psycopg import sql

        granted = threading.Event()
        outcome: dict[str, Any] = {}
        record = FaultRecord("lock_table", table, 0.0, detail={"seconds": seconds, "database": self.database})

        def hold() -> None:
            conn = None
            try:
                # PostgreSQL itself ends the transaction if this process dies without releasing it.
                give_up_ms = int((seconds + 30) * 1000)
                conn = psycopg.connect(
                    self.database_url, connect_timeout=5, application_name="livestack-lock",
                    options=f"-c lock_timeout=5000 -c idle_in_transaction_session_timeout={give_up_ms}")
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
                record.began = time.time()
                granted.set()
                self._closing.wait(seconds)
                conn.rollback()
                record.ended = time.time()
            except Exception as exc:
                outcome["error"] = exc
                granted.set()
            finally:
                if conn is not None:
                    conn.close()

        worker = threading.Thread(target=hold, name=f"livestack-lock:{table}", daemon=True)
        self._workers.append(worker)
        worker.start()
        if not granted.wait(15.0):
            raise LiveStackError(f"the lock on {table} was not granted within 15 s")
        if "error" in outcome:
            raise LiveStackError(f"could not lock {table}: {outcome['error']}")
        self.faults.append(record)
        return record.began

    def cpu_contention(self, seconds: float, workers: int | None = None) -> float:
        """``stress-ng --cpu W --timeout S``: W busy workers (default: one per CPU) for ``seconds``,
        killed at close if still running. Returns the unix time every worker was running."""
        binary = self._binaries.get("stress-ng") or which("stress-ng")
        self._binaries["stress-ng"] = binary
        workers = workers or os.cpu_count() or 1
        timeout = max(1, math.ceil(seconds))
        child = spawn("stress-ng", [binary, "--cpu", str(workers), "--timeout", f"{timeout}s", "--quiet"],
                      self.root / "logs" / f"stress-ng-{len(self._stress) + 1}.log", cwd=self.root)
        self._children.append(child)
        self._stress.append(child)
        if not wait_for_children(child.pid, workers, 10.0):
            raise LiveStackError(f"stress-ng did not start its {workers} workers: {child.log_tail()}")
        began = time.time()
        self.faults.append(FaultRecord("cpu_contention", "node", began, began + timeout,
                                       {"workers": workers, "seconds": timeout, "pid": child.pid}))
        return began

    # --- Sleuth's configuration -----------------------------------------------------------------

    def config_dict(self, **overrides: Any) -> dict[str, Any]:
        """The sleuth.yml for this stack as a dict; each keyword is a section merged in deeply."""
        config: dict[str, Any] = {
            "metrics": {"prometheus": {"url": self.url}, "step_s": self.scrape_interval_s},
            "logs": {"files": [str(h.log) for h in self.services.values()]},
            "changes": {"webhook": {"store": str(self.webhook_store), "token": self.webhook_token,
                                    "host": "127.0.0.1", "port": self.webhook_port or 8787}},
            "services": {name: ({"depends_on": ["postgres"]} if h.postgres else {})
                         for name, h in self.services.items()},
        }
        return _deep_merge(config, overrides)

    def write_config(self, path: Path | str, **overrides: Any) -> Path:
        """Write sleuth.yml for this stack (Prometheus, the services' logs, the webhook store and
        token, ``depends_on: [postgres]`` for services using it) and check it loads with
        Sleuth's own loader. Keywords are sections merged in deeply, e.g.
        ``investigation={"window": "15m"}``."""
        from bot.config import load_config

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.config_dict(**overrides), sort_keys=False), encoding="utf-8")
        load_config(target, env={})  # raises ConfigError naming the key if the file is wrong
        return target

    # --- starting the parts ---------------------------------------------------------------------

    def _launch(self, launch: "_Launch") -> "_Launch":
        """Spawn a launch's process on its fixed port or a fresh free one (does not wait)."""
        launch.port = launch.fixed_port or free_port()
        launch.child = spawn(launch.name, launch.build(launch.port), self.root / "logs" / f"{launch.name}.out",
                             env=launch.env, cwd=REPO_ROOT)
        self._children.append(launch.child)
        return launch

    def _await(self, launches: list["_Launch"], deadline: float) -> None:
        """Wait until every launched process answers its readiness URL. A port taken between
        choosing and binding it is retried on another port (or, for a restart that must keep its
        port, on the same one a moment later)."""
        for launch in launches:
            for attempt in range(3):
                assert launch.child is not None and launch.port is not None
                remaining = max(1.0, deadline - time.monotonic())
                if wait_until_ready(launch.child.process, launch.ready(launch.port), remaining):
                    break
                launch.child.stop()
                last = launch.child.log_tail()
                if "address already in use" not in last.lower() or attempt == 2:
                    raise LiveStackError(f"{launch.name} did not become ready: {last or 'no output'}")
                if launch.fixed_port:
                    time.sleep(0.5)
                self._launch(launch)

    def _service_launch(self, spec: ServiceSpec, version: str, port: int | None = None,
                        error_share: float = 0.0) -> "_Launch":
        log = self.root / "logs" / f"{spec.name}.log"
        use_pg = spec.postgres and self.database_url is not None
        if spec.postgres and not use_pg:
            self.skipped.setdefault(f"{spec.name}.postgres", "runs without its queries: see skipped['postgres']")

        def argv(p: int) -> list[str]:
            cmd = [sys.executable, "-m", "tests.livestack.service", "--name", spec.name, "--port", str(p),
                   "--log", str(log), "--version", version, "--work-ms", f"{spec.work_ms:g}",
                   "--error-share", f"{error_share:g}", "--parent-pid", str(os.getpid())]
            return cmd + (["--pg", self.database_url] if use_pg and self.database_url else [])

        launch = _Launch(spec.name, argv, lambda p: f"http://127.0.0.1:{p}/healthz", fixed_port=port)
        # Port and process are filled in once the process is ready (finished_service).
        launch.service = ServiceHandle(spec.name, 0, log, use_pg, version, None,  # type: ignore[arg-type]
                                       error_share=error_share, work_ms=spec.work_ms)
        return launch

    def _start_service(self, spec: ServiceSpec, version: str, deadline: float, port: int | None = None,
                       error_share: float = 0.0) -> ServiceHandle:
        launch = self._launch(self._service_launch(spec, version, port, error_share))
        self._await([launch], deadline)
        return launch.finished_service()

    # The exporters' readiness URL is their small landing page: a client that checks /metrics's
    # status and hangs up makes them log "connection reset by peer" for every metric family.

    def _node_exporter_launch(self) -> "_Launch":
        binary = self._binaries["prometheus-node-exporter"]
        collectors = [f"--collector.{c}" for c in NODE_COLLECTORS]
        return _Launch("node-exporter",
                       lambda p: [binary, f"--web.listen-address=127.0.0.1:{p}", "--collector.disable-defaults",
                                  *collectors],
                       lambda p: f"http://127.0.0.1:{p}/")

    def _postgres_exporter_launch(self) -> "_Launch | None":
        try:
            binary = which("prometheus-postgres-exporter")
        except LiveStackUnavailable as exc:
            if self.require_postgres:
                raise
            self.skipped["postgres-exporter"] = str(exc)
            return None
        env = {**os.environ, "DATA_SOURCE_NAME": _with_database(self.postgres_admin_url, self.database or "",
                                                                "sslmode=disable")}
        return _Launch("postgres-exporter", lambda p: [binary, f"--web.listen-address=127.0.0.1:{p}"],
                       lambda p: f"http://127.0.0.1:{p}/", env=env)

    def _webhook_launch(self) -> "_Launch":
        config = self.root / "webhook.yml"
        config.write_text(yaml.safe_dump({"changes": {"webhook": {
            "store": str(self.webhook_store), "token": self.webhook_token}}}), encoding="utf-8")
        return _Launch("sleuth-webhook",
                       lambda p: [sys.executable, "-m", "bot.cli", "webhook", "--config", str(config),
                                  "--host", "127.0.0.1", "--port", str(p)],
                       lambda p: f"http://127.0.0.1:{p}/healthz")

    def _prometheus_config(self) -> str:
        interval = f"{self.scrape_interval_s:g}s"
        timeout = f"{max(1.0, self.scrape_interval_s * 0.8):g}s"
        jobs = [(name, h.port) for name, h in self.services.items()]
        jobs.append(("node", self.node_exporter_port))
        if self.postgres_exporter_port:
            jobs.append(("postgres", self.postgres_exporter_port))
        return yaml.safe_dump({
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": timeout},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                               for job, port in jobs],
        }, sort_keys=False)

    def _prometheus_launch(self) -> "_Launch":
        binary = self._binaries["prometheus"]
        config = self.root / "prometheus.yml"
        config.write_text(self._prometheus_config(), encoding="utf-8")
        data = self.root / "tsdb"
        data.mkdir(exist_ok=True)
        return _Launch("prometheus",
                       lambda p: [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
                                  f"--web.listen-address=127.0.0.1:{p}", "--storage.tsdb.retention.time=1d"],
                       lambda p: f"http://127.0.0.1:{p}/-/ready")

    # --- the database ---------------------------------------------------------------------------

    def _setup_database(self) -> None:
        if not any(s.postgres for s in self.specs) and not self.require_postgres:
            return
        try:
            import psycopg
            from psycopg import sql
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency of the project
            raise LiveStackUnavailable(f"psycopg is not installed: {exc}") from exc
        # The creator's pid is in the name so that databases left by a killed run (no atexit, no
        # close) can be recognised and dropped by the next stack, without touching a live one.
        name = f"sleuth_live_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            with psycopg.connect(self.postgres_admin_url, autocommit=True, connect_timeout=3) as admin:
                left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'sleuth\\_live\\_%'")
                for (stale,) in left.fetchall():
                    owner = stale.split("_")[2]
                    if owner.isdigit() and not pid_alive(int(owner)):
                        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                                      .format(sql.Identifier(stale)))
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            reason = f"no PostgreSQL at {self.postgres_admin_url} ({str(exc).strip().splitlines()[0]}): " \
                     "the postgres exporter and the services' queries are left out"
            if self.require_postgres:
                raise LiveStackUnavailable(reason) from exc
            self.skipped["postgres"] = reason
            return
        self.database = name
        self.database_url = _with_database(self.postgres_admin_url, name)
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, name text NOT NULL,"
                                 " price numeric NOT NULL)").format(sql.Identifier(TABLE)))
            conn.execute(sql.SQL("INSERT INTO {} SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 1000) g")
                         .format(sql.Identifier(TABLE)))

    def _drop_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.postgres_admin_url, autocommit=True, connect_timeout=5) as admin:
            # FORCE ends sessions still connected (a lock holder, the exporter between scrapes).
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))
        self.database_dropped = True
