"""Change evidence: deploys, config and flag changes, model and index swaps, manual operations.

Three feeds, merged: a JSON-lines file, a webhook that CI/CD posts to (kept in SQLite, so nothing
posted is lost across restarts), and the GitHub Deployments API.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, Field

from tools.http import HttpSourceConfig, SourceError, decode_json, make_client, request
from tools.httpbody import BodyError, read_json, reply_json
from tools.logs import parse_time

KINDS = ("deploy", "config", "flag", "model", "index", "infra", "operation", "prompt", "data", "release", "rollback")


@dataclass
class Change:
    id: str
    ts: float
    service: str
    kind: str
    summary: str
    author: str = ""
    version: str = ""
    previous_version: str = ""
    url: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_KNOWN = {"id", "ts", "time", "timestamp", "service", "kind", "type", "summary", "description",
          "author", "version", "previous_version", "url"}


def change_from_dict(obj: dict[str, Any], source: str) -> Change:
    """Validate one change record; raises ValueError naming the field at fault."""
    if not isinstance(obj, dict):
        raise ValueError("a change must be a JSON object")
    ts = next((parse_time(obj[k]) for k in ("ts", "time", "timestamp") if k in obj), None)
    if ts is None:
        raise ValueError("field 'ts' is missing or not a time (use ISO-8601 such as 2026-03-10T14:05:00Z)")
    service = str(obj.get("service") or "").strip()
    if not service:
        raise ValueError("field 'service' is missing")
    kind = str(obj.get("kind") or obj.get("type") or "deploy").strip().lower()
    if kind not in KINDS:
        raise ValueError(f"field 'kind' is {kind!r}; use one of {', '.join(KINDS)}")
    summary = str(obj.get("summary") or obj.get("description") or f"{kind} of {service}")
    change_id = str(obj.get("id") or f"{source}-{service}-{int(ts)}")
    return Change(
        id=change_id, ts=ts, service=service, kind=kind, summary=summary,
        author=str(obj.get("author") or ""), version=str(obj.get("version") or ""),
        previous_version=str(obj.get("previous_version") or ""), url=str(obj.get("url") or ""),
        source=source, extra={k: v for k, v in obj.items() if k not in _KNOWN},
    )


def read_change_file(path: Path, start: float, end: float) -> list[Change]:
    """Changes in [start, end] from a JSON-lines file; a bad line is an error naming the line."""
    out = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    change = change_from_dict(json.loads(line), "file")
                except (json.JSONDecodeError, ValueError) as exc:
                    raise SourceError(f"{path}, line {number}: {exc}") from exc
                if start <= change.ts <= end:
                    out.append(change)
    except OSError as exc:
        raise SourceError(f"cannot read changes file {path}: {exc.strerror or exc}") from exc
    return out


# --- the webhook store ------------------------------------------------------------------------


class ChangeStore:
    """Changes posted by CI/CD, in SQLite. Safe across threads; the same id posted twice is one row."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS changes (id TEXT PRIMARY KEY, ts REAL NOT NULL, service TEXT NOT NULL,"
            " kind TEXT NOT NULL, body TEXT NOT NULL, received REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS changes_ts ON changes (ts)")
        self._db.commit()

    def add(self, changes: Iterable[Change]) -> list[str]:
        ids = []
        with self._lock, self._db:
            for change in changes:
                self._db.execute(
                    "INSERT INTO changes (id, ts, service, kind, body, received) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET ts=excluded.ts, service=excluded.service,"
                    " kind=excluded.kind, body=excluded.body",
                    (change.id, change.ts, change.service, change.kind, json.dumps(asdict(change)), time.time()),
                )
                ids.append(change.id)
        return ids

    def between(self, start: float, end: float) -> list[Change]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM changes WHERE ts BETWEEN ? AND ? ORDER BY ts", (start, end)
            ).fetchall()
        return [Change(**json.loads(body)) for (body,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class WebhookConfig(BaseModel):
    model_config = {"extra": "forbid"}

    store: Path = Field(Path(".sleuth/changes.sqlite3"), description="SQLite file the webhook writes")
    token: str | None = Field(None, description="bearer token CI/CD must send; unset = no auth (loopback only)")
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)


MAX_CHANGES_PER_POST = 1000


def make_webhook_server(config: WebhookConfig, store: ChangeStore) -> ThreadingHTTPServer:
    """An HTTP server for ``POST /changes`` (one change or a list). Call ``serve_forever()``.

    Answers 202 with the stored ids, 400 with one sentence for a bad body, 401 for a bad token.
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "sleuth-webhook"

        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            reply_json(self, status, body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") == "/healthz":
                self._reply(HTTPStatus.OK, {"ok": True})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": "POST changes to /changes"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/changes":
                self._reply(HTTPStatus.NOT_FOUND, {"error": "POST changes to /changes"})
                return
            if config.token:
                sent = self.headers.get("Authorization", "")
                if not hmac.compare_digest(sent.encode(), f"Bearer {config.token}".encode()):
                    self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
                    return
            try:
                payload = read_json(self)
                items = payload if isinstance(payload, list) else [payload]
                if len(items) > MAX_CHANGES_PER_POST:
                    raise ValueError(f"{len(items)} changes in one body; send at most {MAX_CHANGES_PER_POST}")
                changes = []
                for position, item in enumerate(items):
                    try:
                        changes.append(change_from_dict(item, "webhook"))
                    except ValueError as exc:
                        raise ValueError(f"change {position}: {exc}" if len(items) > 1 else str(exc)) from exc
            except BodyError as exc:
                self._reply(exc.status, {"error": str(exc)})
                return
            except ValueError as exc:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            try:
                stored = store.add(changes)
            except Exception:  # noqa: BLE001 - the sender gets an answer whatever the store does
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the change store could not save it; send it again"})
                return
            self._reply(HTTPStatus.ACCEPTED, {"stored": stored})

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            return

    return ThreadingHTTPServer((config.host, config.port), Handler)


# --- GitHub Deployments -----------------------------------------------------------------------


class GitHubRepo(BaseModel):
    model_config = {"extra": "forbid"}

    repo: str = Field(..., pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    service: str
    environment: str | None = "production"


class GitHubConfig(HttpSourceConfig):
    url: str = "https://api.github.com"
    token: str | None = None
    web_url: str = "https://github.com"
    repos: list[GitHubRepo] = Field(default_factory=list)
    max_pages: int = Field(5, ge=1, le=50, description="pages of 100 deployments read per repo, at most")


class GitHubDeployments:
    def __init__(self, config: GitHubConfig) -> None:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", **config.headers}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self.config = config
        self.client = make_client(config.model_copy(update={"headers": headers}))

    async def between(self, start: float, end: float) -> list[Change]:
        out = []
        unreadable = 0
        for repo in self.config.repos:
            items = await self._deployments(repo, start)
            for item in items:
                ts = parse_time(item.get("created_at"))
                if ts is None or not (start <= ts <= end):
                    continue
                change = self._change(repo, item, ts)
                if change is None:
                    unreadable += 1
                else:
                    out.append(change)
        if unreadable and not out:
            raise SourceError(f"GitHub answered {unreadable} deployment{'s' if unreadable > 1 else ''} "
                              "in a shape Sleuth cannot read (no id, sha or ref as text)")
        return out

    def _change(self, repo: GitHubRepo, item: dict, ts: float) -> Change | None:
        """One deployment as a change; None when its fields are not what GitHub documents."""
        fields = ("id", "sha", "ref", "description", "environment")
        if any(isinstance(item.get(k), (dict, list)) for k in fields) or item.get("id") is None:
            return None
        sha = str(item.get("sha") or "")
        ref = str(item.get("ref") or sha[:7])
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        creator = item.get("creator") if isinstance(item.get("creator"), dict) else {}
        kind = payload.get("kind")
        return Change(
            id=f"gh-{item.get('id')}",
            ts=ts,
            service=repo.service,
            kind=kind if isinstance(kind, str) and kind in KINDS else "deploy",
            summary=str(item.get("description") or f"{repo.repo} {ref} to {item.get('environment')}"),
            author=str(creator.get("login") or ""),
            version=ref,
            url=f"{self.config.web_url.rstrip('/')}/{repo.repo}/commit/{sha}" if sha else "",
            source="github",
        )

    async def _deployments(self, repo: GitHubRepo, start: float) -> list[dict]:
        """Deployments newest first, following ``Link: rel="next"`` until they predate ``start``."""
        params: dict[str, str] | None = {"per_page": "100"}
        if repo.environment:
            params["environment"] = repo.environment
        url = f"/repos/{repo.repo}/deployments"
        items: list[dict] = []
        for _ in range(self.config.max_pages):
            response = await request(self.client, self.config, "GitHub", "GET", url, params=params)
            page = decode_json(response, "GitHub")
            if not isinstance(page, list):
                raise SourceError("GitHub answered the deployments list with something other than a list")
            items.extend(i for i in page if isinstance(i, dict))
            oldest = min((parse_time(i.get("created_at")) or 0.0 for i in page if isinstance(i, dict)), default=0.0)
            following = response.links.get("next", {}).get("url")
            if not page or not following or oldest < start:
                break
            url, params = following, None  # the next link carries its own query
        return items

    async def aclose(self) -> None:
        await self.client.aclose()


class ChangesConfig(BaseModel):
    """``changes:`` in sleuth.yml."""

    model_config = {"extra": "forbid"}

    files: list[Path] = Field(default_factory=list)
    webhook: WebhookConfig | None = None
    github: GitHubConfig | None = None

    @property
    def configured(self) -> bool:
        return bool(self.files or self.webhook or self.github)


async def gather_changes(config: ChangesConfig, start: float, end: float) -> tuple[list[Change], list[str]]:
    """Every change in [start, end] from all configured feeds, and the feeds' failures.

    A failing feed does not hide the others: its reason comes back beside the changes found.
    """
    changes: list[Change] = []
    failures: list[str] = []
    for path in config.files:
        try:
            changes.extend(read_change_file(path, start, end))
        except SourceError as exc:
            failures.append(str(exc))
    if config.webhook:
        try:
            store = ChangeStore(config.webhook.store)
            try:
                changes.extend(store.between(start, end))
            finally:
                store.close()
        except sqlite3.Error as exc:
            failures.append(f"change store {config.webhook.store} unreadable: {exc}")
    if config.github and config.github.repos:
        client = GitHubDeployments(config.github)
        try:
            changes.extend(await client.between(start, end))
        except SourceError as exc:
            failures.append(str(exc))
        except Exception:  # noqa: BLE001 - one feed's surprise must not drop the others' changes
            failures.append("GitHub answered something Sleuth could not read; the other change feeds are used")
        finally:
            await client.aclose()
    unique = {c.id: c for c in sorted(changes, key=lambda c: c.ts)}
    return list(unique.values()), failures
