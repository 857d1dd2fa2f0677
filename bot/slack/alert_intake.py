"""The alert intake of ``sleuth serve``: ``POST /alerts/alertmanager`` (Alertmanager's webhook,
payload version 4) and ``POST /alerts`` (the generic shape in bot/alerts.py).

Served on the HTTP mode's port, and in Socket Mode on a listener of its own (``alerts.listen``).
Every request needs ``Authorization: Bearer <alerts.token>``; without a token configured the
intake refuses everything. An accepted alert group is stored as claimed work before the answer
(202), exactly like a Slack event: a crash loses none, replicas process it once, the WorkKeeper
replays it if its process dies, and a repeat of the same group in the same state (Alertmanager's
``repeat_interval``, or its retry after a lost answer) is answered 200 and starts nothing.
"""

from __future__ import annotations

import hmac
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt.request import BoltRequest

from bot.alerts import (ALERT_EVENT, AlertBatch, AlertError, AlertsConfig, batch_to_dict, parse_alertmanager,
                        parse_generic, route)
from bot.slack.guard import REPLAYED
from tools.httpbody import BodyError, read_json, reply_json

log = logging.getLogger(__name__)

PATHS = ("/alerts/alertmanager", "/alerts")
MAX_ALERT_BODY = 5_000_000  # Alertmanager groups can be large; its own max_alerts bounds them too


class AlertIntake:
    def __init__(self, app: Any, sleuth: Any) -> None:
        self.app, self.sleuth = app, sleuth
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sleuth-alerts")
        self._team: str | None = None
        self._team_lock = threading.Lock()

    @property
    def config(self) -> AlertsConfig:
        return self.sleuth.config.alerts

    def team(self) -> str:
        """The workspace alerts open incidents in (the one the bot token belongs to)."""
        with self._team_lock:
            if self._team is None:
                self._team = str(self.app.client.auth_test().get("team_id") or "")
            return self._team

    def authorized(self, header: str | None) -> str | None:
        """None when the bearer token is right, else why not (one sentence)."""
        if not self.config.token:
            return "the alert intake is closed: set alerts.token in sleuth.yml (a bearer token senders present)"
        if not header or not hmac.compare_digest(header.encode(), f"Bearer {self.config.token}".encode()):
            return "missing or wrong bearer token"
        return None

    def accept(self, path: str, payload: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        """Read, route and store one alert group; the answer for the sender."""
        try:
            batch = parse_alertmanager(payload) if path == "/alerts/alertmanager" else parse_generic(payload)
        except AlertError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        routed = route(batch, self.config)
        if routed is None:
            return HTTPStatus.UNPROCESSABLE_ENTITY, {
                "error": "no route matches this alert and alerts.channel is not set; add a default channel"}
        body = self._body(batch, routed.channel, routed.severity)
        # Stored (claimed by this process) before the answer; a repeat of the group finds it there.
        if not self.sleuth.claims.claim_work(f"event:{batch.key}", body, owner=self.sleuth.owner,
                                            stale_after=self.sleuth.config.slack.takeover_after_s):
            return HTTPStatus.OK, {"duplicate": True, "key": batch.key}
        # The work itself runs as a replayed event would (its claim is held), off the sender's time.
        self._pool.submit(self._dispatch, body)
        return HTTPStatus.ACCEPTED, {"accepted": batch.key, "channel": routed.channel,
                                    "alerts": len(batch.alerts), "status": batch.status}

    def _dispatch(self, body: dict[str, Any]) -> None:
        try:
            self.app.dispatch(BoltRequest(body=body, mode="socket_mode", context={REPLAYED: True}))
        except Exception:  # noqa: BLE001 - still claimed: the WorkKeeper replays it once the claim goes stale
            log.exception("could not start the work of alert %s", body.get("event_id"))

    def _body(self, batch: AlertBatch, channel: str, severity: int | None) -> dict[str, Any]:
        return {"type": "event_callback", "event_id": batch.key, "team_id": self.team(),
                "event": {"type": ALERT_EVENT, "channel": channel, "severity": severity,
                          "batch": batch_to_dict(batch)}}

    def handle(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        """Answer one POST to an intake path on ``handler``."""
        refused = self.authorized(handler.headers.get("Authorization"))
        if refused:
            handler.close_connection = True  # the body is not read: the connection ends with the answer
            reply_json(handler, HTTPStatus.UNAUTHORIZED, {"error": refused})
            return
        try:
            payload = read_json(handler, MAX_ALERT_BODY, "the alert")
        except BodyError as exc:
            reply_json(handler, exc.status, {"error": str(exc)})
            return
        try:
            status, answer = self.accept(path, payload)
        except Exception:  # noqa: BLE001 - the sender retries on 5xx; the log has the rest
            log.exception("could not take an alert")
            status, answer = HTTPStatus.SERVICE_UNAVAILABLE, {"error": "Sleuth could not take the alert; send it again"}
        reply_json(handler, status, answer)


class AlertListener(ThreadingHTTPServer):
    """The intake on a port of its own (Socket Mode has no HTTP server): ``alerts.listen``."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, intake: AlertIntake, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] == "/healthz":
                    reply_json(self, HTTPStatus.OK, {"ok": True})
                else:
                    reply_json(self, HTTPStatus.NOT_FOUND, {"error": f"POST alerts to {' or '.join(PATHS)}"})

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                if path not in PATHS:
                    self.close_connection = True
                    reply_json(self, HTTPStatus.NOT_FOUND, {"error": f"POST alerts to {' or '.join(PATHS)}"})
                    return
                intake.handle(self, path)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        super().__init__((host, port), Handler)
