"""A small real web service for the live stack: one process, real metrics, real logs, real queries.

Run it as ``python3 -m tests.livestack.service --name checkout --port 8001 --log checkout.log
[--pg postgresql://postgres@127.0.0.1:5432/db] [--version v1] [--error-share 0] [--work-ms 3]``.
It stands in for a production service so that Sleuth can be tested against what such a service
really emits, not against hand-written series:

- ``GET /api/<anything>`` does a little real work: a fixed amount of hashing (calibrated at start
  to take ``--work-ms``, default 3 ms, on an idle core, so CPU contention can make it slower)
  and, with ``--pg``, a query against the ``items`` table of PostgreSQL with
  ``statement_timeout`` 2 s, so a table lock turns into an error after 2 s instead of a hang
  (waiting for a free pooled connection is bounded by 2 s as well). It answers 200, 500 when the
  current release is bad, 503 when the database failed.
- ``GET /metrics``: prometheus_client's default registry (process and Python collectors included)
  with ``http_requests_total{method,path,code}``, ``http_request_duration_seconds{method,path}``,
  ``http_requests_in_progress`` and ``app_build_info{version}``. No ``service`` label: Prometheus's
  ``job`` names the service. Counter children are created on first use, so ``code="500"`` does not
  exist until the first 500.
- ``POST /admin/release`` with ``{"version": "v2", "error_share": 0.3}``: from then on that share of
  /api requests fails with 500 and an error log line (0 is a harmless release). Answers the unix
  time at which the release took effect. ``GET /admin/state`` tells the version and the pid.
- ``GET /healthz`` answers ``ok``.

Logs are JSON lines appended to ``--log``: one per failed request, one per slow request, and
at most one ``request served`` info line per second, so the file stays small.

The process exits on SIGTERM/SIGINT, and by itself when the process that started it dies
(``--parent-pid``), so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import signal
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

QUERY_TIMEOUT_MS = 2000
POOL_SIZE = 16
WORK_TARGET_S = 0.003
SLOW_REQUEST_S = 1.0

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "path", "code"])
DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request.", ["method", "path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge("http_requests_in_progress", "HTTP requests being answered right now.")
BUILD = Info("app_build", "The release this process runs.")


class JsonLog:
    """Appends JSON lines; a lock keeps concurrent request threads from interleaving them."""

    def __init__(self, path: str, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1)
        self._last_info = 0.0

    def write(self, level: str, message: str, **fields: Any) -> None:
        now = datetime.now(timezone.utc)
        record = {"ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                  "level": level, "service": self.service, "message": message, **fields}
        line = json.dumps(record)
        with self._lock:
            self._file.write(line + "\n")

    def sampled_info(self, message: str, **fields: Any) -> None:
        """An info line, unless one was written less than a second ago (keeps volume small)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_info < 1.0:
                return
            self._last_info = now
        self.write("info", message, **fields)

    def close(self) -> None:
        with self._lock:
            self._file.close()


class DatabaseError(Exception):
    """A failed database call, worded as the error log line says it."""


class Database:
    """A small connection pool over psycopg 3 (connections opened lazily, at most POOL_SIZE).

    Written here rather than taken from psycopg_pool to depend on psycopg alone.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self._opened = 0

    def _connect(self):
        import psycopg

        # statement_timeout bounds a query blocked behind a lock; lock waits count towards it.
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=3,
                               options=f"-c statement_timeout={QUERY_TIMEOUT_MS}",
                               application_name="livestack-service")

    def _acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._opened < POOL_SIZE:
                self._opened += 1
                try:
                    return self._connect()
                except Exception as exc:
                    self._opened -= 1
                    raise DatabaseError(f"upstream database postgres connection failed: {_first_line(exc)}") from exc
        try:
            return self._idle.get(timeout=QUERY_TIMEOUT_MS / 1000)
        except queue.Empty:
            raise DatabaseError(f"upstream database postgres: no free connection after {QUERY_TIMEOUT_MS} ms "
                                f"(pool of {POOL_SIZE} busy)") from None

    def _release(self, conn, broken: bool) -> None:
        if broken or conn.closed:
            with self._lock:
                self._opened -= 1
            try:
                conn.close()
            except Exception:
                pass
        else:
            self._idle.put(conn)

    def fetch_item(self, item_id: int) -> tuple:
        import psycopg

        conn = self._acquire()
        broken = False
        try:
            row = conn.execute("SELECT id, name, price FROM items WHERE id = %s", (item_id,)).fetchone()
            return row or ()
        except psycopg.errors.QueryCanceled as exc:
            raise DatabaseError(f"upstream database postgres query timed out after {QUERY_TIMEOUT_MS} ms") from exc
        except psycopg.OperationalError as exc:
            broken = True
            raise DatabaseError(f"upstream database postgres connection lost: {_first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise DatabaseError(f"upstream database postgres query failed: {_first_line(exc)}") from exc
        finally:
            self._release(conn, broken)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
            except Exception:
                pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def calibrate_work(target_s: float = WORK_TARGET_S) -> int:
    """How many 64 KiB SHA-256 rounds take ``target_s`` on an idle core.

    The fastest of several short trials is taken, so that a busy moment at start (the rest of the
    stack starting beside it) does not shrink the work. The count is then fixed for the life of
    the process: under CPU contention the same work takes longer, which is the point.
    """
    block = os.urandom(65536)
    best = float("inf")
    for _ in range(20):
        started = time.perf_counter()
        for _ in range(4):
            hashlib.sha256(block).digest()
        best = min(best, (time.perf_counter() - started) / 4)
    return max(1, round(target_s / best))


class Service:
    """What /api does and the release state /admin changes; the HTTP plumbing is in make_server."""

    def __init__(self, name: str, version: str, log: JsonLog, db: Database | None, work_rounds: int,
                 error_share: float = 0.0) -> None:
        self.name = name
        self.log = log
        self.db = db
        self.work_rounds = work_rounds
        self._block = os.urandom(65536)
        self._lock = threading.Lock()
        self.version = version
        self.error_share = error_share
        BUILD.info({"version": version})

    def release(self, version: str, error_share: float) -> float:
        with self._lock:
            previous = self.version
            self.version = version
            self.error_share = error_share
            BUILD.info({"version": version})
            at = time.time()
        self.log.write("info", f"release {version} rolled out, replacing {previous}", version=version)
        return at

    def handle_api(self, label: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        for _ in range(self.work_rounds):
            hashlib.sha256(self._block).digest()
        with self._lock:
            version, share = self.version, self.error_share
        if share > 0 and random.random() < share:
            # The bad release's bug: a field the new code expects and the clients do not send.
            self.log.write("error", f"unhandled exception in {label}: KeyError 'cart_id' (release {version})",
                           path=label, version=version)
            return 500, {"error": "internal server error"}
        item: tuple = ()
        if self.db is not None:
            try:
                item_id = int((query.get("id") or [random.randint(1, 1000)])[0])
            except ValueError:
                item_id = 1
            try:
                item = self.db.fetch_item(item_id)
            except DatabaseError as exc:
                self.log.write("error", str(exc), path=label, version=version)
                return 503, {"error": "service unavailable"}
        return 200, {"service": self.name, "version": version, "item": [str(v) for v in item]}


def path_label(path: str) -> str:
    """``/api/<first segment>``: bounded label cardinality whatever clients request."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return f"/api/{parts[1][:40]}"
    return "/api"


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"livestack-{service.name}"

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parsed = urllib.parse.urlsplit(self.path)
            if parsed.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif parsed.path == "/healthz":
                self._send(200, b"ok", "text/plain")
            elif parsed.path == "/admin/state":
                self._json(200, {"service": service.name, "version": service.version,
                                 "error_share": service.error_share, "pid": os.getpid()})
            elif parsed.path == "/api" or parsed.path.startswith("/api/"):
                self._api(parsed)
            else:
                self._json(404, {"error": f"no route for {parsed.path}"})

        def _api(self, parsed: urllib.parse.SplitResult) -> None:
            label = path_label(parsed.path)
            started = time.perf_counter()
            with IN_PROGRESS.track_inprogress():
                try:
                    status, body = service.handle_api(label, urllib.parse.parse_qs(parsed.query))
                except Exception as exc:  # a harness bug still answers, and says what it was
                    service.log.write("error", f"unhandled exception in {label}: {type(exc).__name__} {exc}")
                    status, body = 500, {"error": "internal server error"}
                elapsed = time.perf_counter() - started
                REQUESTS.labels("GET", label, str(status)).inc()
                DURATION.labels("GET", label).observe(elapsed)
            if status == 200:
                if elapsed > SLOW_REQUEST_S:
                    service.log.write("warn", f"slow request: {label} took {elapsed * 1000:.0f} ms", path=label)
                else:
                    service.log.sampled_info("request served", path=label)
            try:
                self._json(status, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up; the request was still counted

        def do_POST(self) -> None:  # noqa: N802
            parsed = urllib.parse.urlsplit(self.path)
            if parsed.path != "/admin/release":
                self._json(404, {"error": f"no route for POST {parsed.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                version = str(payload["version"])
                share = float(payload.get("error_share", 0.0))
                if not 0.0 <= share <= 1.0:
                    raise ValueError("error_share must be between 0 and 1")
            except (KeyError, ValueError, TypeError) as exc:
                self._json(400, {"error": f"bad release body: {exc}"})
                return
            at = service.release(version, share)
            self._json(200, {"version": version, "error_share": share, "at": at})

        def log_message(self, format: str, *args: Any) -> None:  # the JSON log is the log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log", required=True, help="JSON-lines log file (appended)")
    parser.add_argument("--pg", default=None, help="PostgreSQL DSN; the service queries its items table")
    parser.add_argument("--version", default="v1", help="the release this process runs")
    parser.add_argument("--error-share", type=float, default=0.0,
                        help="share of /api requests this release fails (a bad release from the start)")
    parser.add_argument("--work-ms", type=float, default=WORK_TARGET_S * 1000,
                        help="CPU work per /api request, in ms on an idle core")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)

    log = JsonLog(args.log, args.name)
    db = Database(args.pg) if args.pg else None
    if not 0.0 <= args.error_share <= 1.0:
        parser.error("--error-share must be between 0 and 1")
    service = Service(args.name, args.version, log, db, calibrate_work(args.work_ms / 1000), args.error_share)
    try:
        server = make_server(service, args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 3

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    # serve_forever runs in a thread so that the signal handler only sets an event: calling
    # shutdown() from the handler, on the thread serving, would deadlock.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    log.write("info", f"service {args.name} started, release {args.version}", version=args.version,
              port=args.port, pid=os.getpid())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    log.write("info", f"service {args.name} shutting down", version=service.version, pid=os.getpid())
    if db is not None:
        db.close()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
