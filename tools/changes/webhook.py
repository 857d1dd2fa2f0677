"""The change webhook: CI posts changes to it, and they are kept in the store."""

from __future__ import annotations

import hmac
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools.httpbody import BodyError, read_json, reply_json


from tools.changes.records import ChangeStore, change_from_dict


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
