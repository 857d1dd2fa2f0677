"""Local HTTP stand-ins for the services Sleuth reads, speaking their documented formats.

Every stand-in listens on 127.0.0.1 on an ephemeral port, serves from a background thread, and
keeps a log of the requests it saw (arrival time included, so tests can count tries and measure the
time between them). A programmable fault layer sits in front of each one: the next N requests (or
every request) answer a status such as 500, a 429 with Retry-After, hang, return malformed JSON or
close the connection without an answer; ``latency`` delays chosen answers, to order concurrent ones.

- ``StandIn``: the fault layer and request log; answers 404 to anything it was not taught.
- ``JsonStandIn``: fixed JSON answers per path.
- ``ProxyStandIn``: the fault layer in front of a real server (e.g. Prometheus); forwards GETs.
- ``LokiStandIn``: ``GET /loki/api/v1/query_range`` (streams) and ``/loki/api/v1/label/{name}/values``.
- ``GitHubStandIn``: ``GET /repos/{owner}/{repo}/deployments`` with GitHub's deployment objects.

Use them as context managers (``with LokiStandIn(...) as loki: ...``) so they are shut down.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(process: "subprocess.Popen", url: str, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``url`` until it answers 200; False when the process exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(interval_s)
    return False


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One way to answer badly. Build with the class methods."""

    kind: str  # "status" | "hang" | "malformed" | "disconnect"
    status: int = 500
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    seconds: float = 0.0

    @classmethod
    def error(cls, status: int = 500, body: str | None = None) -> "Fault":
        text = body if body is not None else json.dumps({"status": "error", "error": f"injected HTTP {status}"})
        return cls("status", status=status, body=text)

    @classmethod
    def too_many(cls, retry_after: str | float | None = "1") -> "Fault":
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls("status", status=429, headers=headers, body='{"message": "slow down"}')

    @classmethod
    def hang(cls, seconds: float) -> "Fault":
        """Say nothing for ``seconds`` (the client's timeout should fire first), then close."""
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls) -> "Fault":
        return cls("malformed", status=200, body='{"status": "success", "data": {"resultType": ')

    @classmethod
    def disconnect(cls) -> "Fault":
        """Close the connection without sending a status line."""
        return cls("disconnect")


@dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival
    answer: str = ""  # "ok" or the fault kind
    status: int | None = None

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str) -> "Reply":
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


# --- the base stand-in ------------------------------------------------------------------------


class StandIn:
    """A threaded HTTP server on 127.0.0.1 with a fault queue and a request log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._always: Fault | None = None
        self._closing = threading.Event()
        self.requests: list[Seen] = []
        # Seconds to wait before a normal answer, per request (None: answer at once). Lets a test
        # choose the order in which concurrent requests complete.
        self.latency: Callable[[Seen], float] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "StandIn":
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"{type(self).__name__}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # releases hanging handlers at once
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # the fault layer

    def inject(self, fault: Fault, times: int = 1) -> "StandIn":
        """The next ``times`` requests answer with ``fault`` (after any already queued)."""
        with self._lock:
            self._queue.extend([fault] * times)
        return self

    def fail_next(self, times: int = 1, status: int = 500, body: str | None = None) -> "StandIn":
        return self.inject(Fault.error(status, body), times)

    def throttle_next(self, times: int = 1, retry_after: str | float | None = "1") -> "StandIn":
        return self.inject(Fault.too_many(retry_after), times)

    def hang_next(self, times: int = 1, seconds: float = 30.0) -> "StandIn":
        return self.inject(Fault.hang(seconds), times)

    def malformed_next(self, times: int = 1) -> "StandIn":
        return self.inject(Fault.malformed(), times)

    def disconnect_next(self, times: int = 1) -> "StandIn":
        return self.inject(Fault.disconnect(), times)

    def always(self, fault: Fault | None) -> "StandIn":
        """Every request (once the queue is empty) answers with ``fault``; None restores service."""
        with self._lock:
            self._always = fault
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._always = None
            self.latency = None
            self.requests.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else self._always

    # the request log

    def seen(self, path_prefix: str = "") -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def gaps(self, path_prefix: str = "") -> list[float]:
        """Seconds between the arrivals of consecutive requests."""
        times = [r.at for r in self.seen(path_prefix)]
        return [b - a for a, b in zip(times, times[1:])]

    # what a subclass answers

    def respond(self, request: Seen) -> Reply:
        return Reply.json(404, {"error": f"the stand-in does not serve {request.method} {request.path}"})

    # plumbing

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _dispatch(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Seen(
                    method=self.command,
                    path=parsed.path,
                    params=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                with standin._lock:
                    standin.requests.append(request)
                fault = standin._next_fault()
                try:
                    if fault is None:
                        delay = standin.latency(request) if standin.latency else 0.0
                        if delay > 0:
                            standin._closing.wait(delay)
                        try:
                            reply = standin.respond(request)
                        except Exception as exc:  # a stand-in bug shows as a 500 naming it
                            reply = Reply.text(500, f"stand-in error: {type(exc).__name__}: {exc}")
                        request.answer = "ok"
                        self._send(reply)
                    elif fault.kind == "hang":
                        request.answer = "hang"
                        standin._closing.wait(fault.seconds)
                        self.close_connection = True
                    elif fault.kind == "disconnect":
                        request.answer = "disconnect"
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    else:
                        request.answer = fault.kind if fault.kind != "status" else f"status {fault.status}"
                        headers = {"Content-Type": "application/json", **dict(fault.headers)}
                        self._send(Reply(fault.status, fault.body.encode(), headers))
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _send(self, reply: Reply) -> None:
                data = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


class JsonStandIn(StandIn):
    """Fixed answers: ``routes[path] = payload`` (200) or a Reply."""

    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.routes: dict[str, Any] = dict(routes or {})

    def respond(self, request: Seen) -> Reply:
        if request.path not in self.routes:
            return super().respond(request)
        answer = self.routes[request.path]
        return answer if isinstance(answer, Reply) else Reply.json(200, answer)


class ProxyStandIn(StandIn):
    """The fault layer in front of a real server: requests without a fault are forwarded."""

    _HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")

    def respond(self, request: Seen) -> Reply:
        query = urllib.parse.urlencode([(k, v) for k, vs in request.params.items() for v in vs])
        target = f"{self.upstream}{request.path}" + (f"?{query}" if query else "")
        forward = urllib.request.Request(target, data=request.body or None, method=request.method,
                                         headers={"Accept": request.headers.get("accept", "*/*")})
        try:
            with urllib.request.urlopen(forward, timeout=30) as answer:
                status, body, headers = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as exc:
            status, body, headers = exc.code, exc.read(), exc.headers
        kept = {k: v for k, v in headers.items() if k.lower() not in self._HOP}
        return Reply(status, body, kept)


# --- Loki -------------------------------------------------------------------------------------

_LOKI_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_LOKI_STAGE = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"|\s*\|\s*json\b|\s*\|\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: m.group(1), text)


def _label_ok(op: str, actual: str, want: str) -> bool:
    if op == "=":
        return actual == want
    if op == "!=":
        return actual != want
    hit = re.fullmatch(want, actual) is not None
    return hit if op == "=~" else not hit


@dataclass
class LogEntry:
    labels: dict[str, str]
    ts_ns: int
    line: str


def ns(ts: float) -> int:
    """Unix seconds -> nanoseconds, as Loki counts."""
    return int(round(ts * 1e9))


class LokiStandIn(StandIn):
    """Loki's query API over entries held in memory.

    Understands a stream selector (``=``, ``!=``, ``=~``, ``!~``) followed by line filters
    (``|= != |~ !~``) and ``| json | label op "value"``; ``start`` is inclusive and ``end``
    exclusive (nanoseconds), ``limit`` (default 100) counts lines over all streams, ``direction``
    is ``backward`` (newest first, Loki's default) or ``forward``. Malformed queries answer 400
    with a plain-text parse error, as Loki does. With ``tenant`` set, a request without that
    ``X-Scope-OrgID`` answers 401.
    """

    def __init__(self, entries: Iterable[LogEntry] = (), tenant: str | None = None) -> None:
        super().__init__()
        self.entries: list[LogEntry] = list(entries)
        self.tenant = tenant

    def add(self, labels: dict[str, str], ts: float, line: str | dict) -> None:
        text = line if isinstance(line, str) else json.dumps(line)
        self.entries.append(LogEntry(dict(labels), ns(ts), text))

    def respond(self, request: Seen) -> Reply:
        if self.tenant is not None and request.headers.get("x-scope-orgid") != self.tenant:
            return Reply.text(401, "no org id")
        if request.path == "/loki/api/v1/query_range":
            return self._query_range(request)
        found = re.fullmatch(r"/loki/api/v1/label/([^/]+)/values", request.path)
        if found:
            values = sorted({e.labels[found.group(1)] for e in self.entries if found.group(1) in e.labels})
            return Reply.json(200, {"status": "success", "data": values})
        return super().respond(request)

    def _parse(self, query: str) -> tuple[list[tuple[str, str, str]], list[tuple]]:
        found = re.match(r"\s*\{(.*?)\}", query, re.S)
        if not found:
            raise ValueError("parse error : queries require at least one regexp or equality matcher")
        body, position, matchers = found.group(1), 0, []
        while position < len(body.strip()):
            part = _LOKI_MATCHER.match(body, position)
            if not part:
                raise ValueError(f"parse error at line 1, col {position + 2}: syntax error: unexpected {body[position:]!r}")
            matchers.append((part.group(1), part.group(2), _unquote(part.group(3))))
            position = part.end()
        if not matchers:
            raise ValueError("parse error : queries require at least one regexp or equality matcher")
        rest, stages = query[found.end():], []
        while rest.strip():
            stage = _LOKI_STAGE.match(rest)
            if not stage:
                raise ValueError(f"parse error: unexpected {rest.strip()!r}")
            if stage.group(1):
                stages.append(("line", stage.group(1), _unquote(stage.group(2))))
            elif stage.group(3):
                stages.append(("label", stage.group(3), stage.group(4), _unquote(stage.group(5))))
            else:
                stages.append(("json",))
            rest = rest[stage.end():]
        return matchers, stages

    @staticmethod
    def _keep(entry: LogEntry, matchers: list, stages: list) -> bool:
        if not all(_label_ok(op, entry.labels.get(name, ""), want) for name, op, want in matchers):
            return False
        extracted = dict(entry.labels)
        for stage in stages:
            if stage[0] == "line":
                op, text = stage[1], stage[2]
                if op == "|=" and text not in entry.line or op == "!=" and text in entry.line:
                    return False
                if op in ("|~", "!~") and (re.search(text, entry.line) is not None) != (op == "|~"):
                    return False
            elif stage[0] == "json":
                try:
                    obj = json.loads(entry.line)
                except json.JSONDecodeError:
                    extracted["__error__"] = "JSONParserErr"
                    continue
                if isinstance(obj, dict):
                    extracted.update({k: str(v) for k, v in obj.items() if not isinstance(v, (dict, list))})
            else:
                _, name, op, want = stage
                if not _label_ok(op, extracted.get(name, ""), want):
                    return False
        return True

    def _query_range(self, request: Seen) -> Reply:
        query = request.param("query") or ""
        try:
            matchers, stages = self._parse(query)
            start = int(request.param("start") or 0)
            end = int(request.param("end") or time.time_ns())
            limit = int(request.param("limit") or 100)
        except ValueError as exc:
            return Reply.text(400, str(exc))
        direction = (request.param("direction") or "backward").lower()
        if direction not in ("forward", "backward"):
            return Reply.text(400, f"invalid direction {direction!r}")
        hits = [e for e in self.entries if start <= e.ts_ns < end and self._keep(e, matchers, stages)]
        hits.sort(key=lambda e: e.ts_ns, reverse=direction == "backward")
        hits = hits[:limit]
        streams: dict[tuple, dict] = {}
        for entry in hits:
            key = tuple(sorted(entry.labels.items()))
            streams.setdefault(key, {"stream": dict(entry.labels), "values": []})["values"].append(
                [str(entry.ts_ns), entry.line])
        return Reply.json(200, {
            "status": "success",
            "data": {"resultType": "streams", "result": list(streams.values()),
                     "stats": {"summary": {"totalLinesProcessed": len(hits)}}},
        })


# --- GitHub -----------------------------------------------------------------------------------


def github_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(id: int, repo: str, ts: float, *, sha: str, ref: str = "main", environment: str = "production",
               login: str = "octocat", description: str | None = None, task: str = "deploy",
               payload: dict | None = None, api_url: str = "https://api.github.com") -> dict[str, Any]:
    """A deployment object as GitHub's REST API documents it (GET /repos/{owner}/{repo}/deployments)."""
    url = f"{api_url}/repos/{repo}/deployments/{id}"
    return {
        "url": url,
        "id": id,
        "node_id": f"DE_kwDO{id:08d}",
        "sha": sha,
        "ref": ref,
        "task": task,
        "payload": payload if payload is not None else {},
        "original_environment": environment,
        "environment": environment,
        "description": description,
        "creator": {"login": login, "id": 583231, "type": "User", "site_admin": False},
        "created_at": github_time(ts),
        "updated_at": github_time(ts),
        "statuses_url": f"{url}/statuses",
        "repository_url": f"{api_url}/repos/{repo}",
        "transient_environment": False,
        "production_environment": environment == "production",
    }


class GitHubStandIn(StandIn):
    """GitHub's deployments list. Filters by sha, ref, task and environment; newest first;
    ``per_page`` (default 30, at most 100) and ``page`` with a Link header. With ``token`` set,
    a request whose Authorization is not ``Bearer <token>`` or ``token <token>`` answers 401."""

    def __init__(self, deployments: dict[str, list[dict]] | None = None, token: str | None = None) -> None:
        super().__init__()
        self.deployments: dict[str, list[dict]] = {k: list(v) for k, v in (deployments or {}).items()}
        self.token = token

    def respond(self, request: Seen) -> Reply:
        if self.token is not None:
            sent = request.headers.get("authorization", "")
            if sent not in (f"Bearer {self.token}", f"token {self.token}"):
                return Reply.json(401, {"message": "Bad credentials",
                                        "documentation_url": "https://docs.github.com/rest", "status": "401"})
        found = re.fullmatch(r"/repos/([\w.-]+)/([\w.-]+)/deployments", request.path)
        if not found or request.method != "GET":
            return Reply.json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        repo = f"{found.group(1)}/{found.group(2)}"
        if repo not in self.deployments:
            return Reply.json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        items = sorted(self.deployments[repo], key=lambda d: (d["created_at"], d["id"]), reverse=True)
        for name in ("sha", "ref", "task", "environment"):
            wanted = request.param(name)
            if wanted is not None:
                items = [d for d in items if d.get(name) == wanted]
        try:
            per_page = min(100, max(1, int(request.param("per_page") or 30)))
            page = max(1, int(request.param("page") or 1))
        except ValueError:
            return Reply.json(422, {"message": "Validation Failed"})
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.url}{request.path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return Reply.json(200, chunk, headers)
