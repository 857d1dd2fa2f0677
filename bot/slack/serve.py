"""``sleuth serve``: the Slack app, over Socket Mode (default) or HTTP (``--http``).

Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN and no public URL. HTTP mode needs
SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and answers Slack at ``/slack/events`` (``/healthz``
says whether it is up). ``--demo`` serves the bundled demo scenario's sources, so the bot can be
tried in a real workspace before any telemetry is wired. SLEUTH_SLACK_API_URL overrides the Web
API base URL (a proxy, or a local stand-in in tests).

SIGTERM (or Ctrl-C) stops gracefully: no more requests are taken, running work gets
``slack.shutdown_grace_s`` to finish, and whatever is still running then is handed back through
the store, due at once for another replica (or the next process) to resume; this process then
exits without touching the store again, so nothing it was doing fails in front of a user.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from tools.httpbody import BodyError, read_body
from tools.safeload import InputError, decode_text

EVENTS_PATH = "/slack/events"
SLACK_BODY_MAX_BYTES = 1_000_000  # Slack's largest payloads (view submissions) are far smaller


class ServeError(Exception):
    """Why the app cannot start, as one sentence naming the fix."""


@dataclass
class Tokens:
    bot: str
    app: str | None = None
    signing_secret: str | None = None


def read_tokens(*, http: bool, env: dict[str, str] | None = None) -> Tokens:
    env = dict(os.environ) if env is None else env
    bot = env.get("SLACK_BOT_TOKEN", "").strip()
    if not bot:
        raise ServeError("SLACK_BOT_TOKEN is not set; install the app (see manifest.yml) and export its bot token "
                         "(xoxb-...)")
    if not bot.startswith("xoxb-"):
        raise ServeError("SLACK_BOT_TOKEN must be the bot token starting with xoxb- (OAuth & Permissions page)")
    if http:
        secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        if not secret:
            raise ServeError("SLACK_SIGNING_SECRET is not set; HTTP mode needs it (Basic Information > App "
                             "Credentials)")
        return Tokens(bot, signing_secret=secret)
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    if not app_token:
        raise ServeError("SLACK_APP_TOKEN is not set; Socket Mode needs an app-level token (xapp-...) with "
                         "connections:write, or run with --http")
    if not app_token.startswith("xapp-"):
        raise ServeError("SLACK_APP_TOKEN must be the app-level token starting with xapp- (Basic Information > "
                         "App-Level Tokens)")
    return Tokens(bot, app=app_token)


class SlackHttpServer(ThreadingHTTPServer):
    """Slack's requests at /slack/events, one thread each, dispatched to the Bolt app."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts: Slack's retries would then double the work

    def __init__(self, app: Any, host: str, port: int, intake: Any = None) -> None:
        from slack_bolt.request import BoltRequest

        from bot.slack.alert_intake import PATHS as ALERT_PATHS

        bolt_app = app

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] == "/healthz":
                    self._send(200, {"content-type": ["text/plain"]}, "ok")
                else:
                    self._send(404, {}, "")

            def do_POST(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                if path.rstrip("/") in ALERT_PATHS:
                    if intake is None:
                        self.close_connection = True
                        self._send(404, {"content-type": ["application/json"]},
                                   json.dumps({"error": "this server takes no alerts"}))
                    else:
                        intake.handle(self, path.rstrip("/"))
                    return
                try:
                    # Slack's payloads are small: a limit, a real length and UTF-8, or a JSON 4xx.
                    body = decode_text(read_body(self, SLACK_BODY_MAX_BYTES), "the body")
                except (BodyError, InputError) as exc:
                    status = exc.status if isinstance(exc, BodyError) else 400
                    self._send(int(status), {"content-type": ["application/json"]}, json.dumps({"error": str(exc)}))
                    return
                if path != EVENTS_PATH:
                    self._send(404, {}, "")
                    return
                headers: dict[str, str | Sequence[str]] = {k.lower(): [v] for k, v in self.headers.items()}
                response = bolt_app.dispatch(BoltRequest(body=body, query=query, headers=headers))
                self._send(response.status, response.headers, response.body or "")

            def _send(self, status: int, headers: dict[str, Any], body: str) -> None:
                data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                self.send_response(status)
                for name, values in headers.items():
                    if name.lower() == "content-length":
                        continue
                    for value in values if isinstance(values, (list, tuple)) else [values]:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        super().__init__((host, port), Handler)


def demo_setup(config_path: Optional[Path]):
    """The demo scenario's config and question; its memory copied somewhere writable, so an
    incident added to memory from Slack is found by the next one."""
    from bot.config import load_config
    from bot.scenario import DEMO_SCENARIO, SCENARIOS_DIR, load_scenario
    from bot.slack.sleuth import Defaults

    base = load_config(config_path)
    scenario = load_scenario(SCENARIOS_DIR / DEMO_SCENARIO, base)
    config = scenario.config
    if config.memory is not None and base.memory is None:
        target = Path(config.storage.sqlite).parent / "demo-memory"
        if not target.exists():
            shutil.copytree(config.memory.path, target)
        config.memory = config.memory.model_copy(update={"path": target})
    request = scenario.request
    return config, Defaults(symptom=request.symptom, service=request.service, at=request.at, window=request.window)


def known_services(config) -> set[str]:
    names = set(config.services)
    for service in config.services.values():
        names.update(service.depends_on)
    return names


def chart_worker(stack: ExitStack):
    """One worker process that draws charts: the drawing runs on another core, outside this
    process's GIL, while the diagnosis is posted. Spawned (not forked: this process has threads)
    and warmed, so the first incident does not wait for matplotlib's import."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tools.charts import warm_up, worker_init

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_init, initargs=(os.getpid(),))
    stack.callback(pool.shutdown, wait=False, cancel_futures=True)
    pool.submit(warm_up)
    return pool


def open_sleuth(config, defaults, stack: ExitStack, *, prefix: str = "sleuth_"):
    """The store, the claimed work, the agent (checkpointed in the same storage) and the Sleuth around them."""
    from bot.agent import Agent, open_checkpointer
    from bot.incidents.store import IncidentStore
    from bot.slack.claims import WorkClaims
    from bot.slack.sleuth import Sleuth

    saver = stack.enter_context(open_checkpointer(config.storage))
    store = IncidentStore(config.storage, prefix=prefix)
    stack.callback(store.close)
    claims = WorkClaims(config.storage, prefix=prefix)
    stack.callback(claims.close)
    charts = Path(config.storage.sqlite).parent / "charts"
    agent = Agent(config, checkpointer=saver, charts_dir=charts, chart_executor=chart_worker(stack))
    sleuth = Sleuth(config=config, store=store, claims=claims, agent=agent, defaults=defaults,
                    known_services=known_services(config))
    stack.callback(sleuth.close)
    return sleuth


def serve(
    http: bool = typer.Option(False, "--http", help="HTTP mode (SLACK_SIGNING_SECRET) instead of Socket Mode"),
    port: int = typer.Option(3000, "--port", help="HTTP mode: the port for /slack/events"),
    host: str = typer.Option("0.0.0.0", "--host", help="HTTP mode: the address to listen on"),
    demo: bool = typer.Option(False, "--demo", help="serve the bundled demo scenario's sources"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml"),
) -> None:
    """Run the Slack app: /diagnose, threads, the timeline, rollups and summaries."""
    from bot.config import ConfigError, load_config
    from bot.incidents.database import StoreError
    from bot.slack.alert_intake import AlertIntake
    from bot.slack.app import build_app
    from bot.slack.keeper import WorkKeeper, drain
    from bot.slack.outgoing import api_url, make_client
    from bot.slack.sleuth import Defaults

    # Acks and first messages are short and must not queue behind investigations for the GIL:
    # hand it over every millisecond rather than every 5 (Python's default).
    sys.setswitchinterval(0.001)
    logging.basicConfig(level=os.environ.get("SLEUTH_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tokens = read_tokens(http=http)
        if demo:
            cfg, defaults = demo_setup(config)
        else:
            cfg, defaults = load_config(config), Defaults()
        with ExitStack() as stack:
            sleuth = open_sleuth(cfg, defaults, stack)
            client = make_client(tokens.bot, safety=cfg.safety)
            try:
                app = build_app(sleuth, client=client, signing_secret=tokens.signing_secret)
            except Exception as exc:  # Bolt's auth.test at start: a refused token or an unreachable Slack
                raise ServeError(f"Slack did not accept SLACK_BOT_TOKEN at {api_url()}: {exc}") from exc
            keeper = WorkKeeper(app, sleuth).start()  # heartbeats; retries; replays work a dead process left
            if not http and cfg.alerts.address:  # Socket Mode has no HTTP server: alerts get a listener
                listener = _alert_listener(AlertIntake(app, sleuth), cfg.alerts.address)
                stack.callback(listener.server_close)
                stack.callback(listener.shutdown)
            stack.callback(keeper.stop)
            grace = cfg.slack.shutdown_grace_s
            if http:
                try:
                    server = SlackHttpServer(app, host, port, intake=AlertIntake(app, sleuth))
                except OSError as exc:
                    raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") \
                        from exc
                stack.callback(server.server_close)
                signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
                typer.echo(f"sleuth: HTTP mode on http://{host}:{server.server_address[1]}{EVENTS_PATH}"
                           f" ({'demo scenario' if demo else 'config sources'}, state in {sleuth.store.backend})",
                           err=True)
                try:
                    server.serve_forever(poll_interval=0.2)
                except KeyboardInterrupt:
                    pass
                server.server_close()  # no more requests: Slack's retries go to another replica
                _stop_gracefully(sleuth, keeper, grace, drain)
            else:
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                handler = SocketModeHandler(app, tokens.app)
                stopped = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stopped.set())
                try:
                    handler.connect()
                except Exception as exc:  # apps.connections.open refused (a wrong app token) or no route
                    raise ServeError(f"Slack refused the Socket Mode connection with SLACK_APP_TOKEN: {exc}") from exc
                stack.callback(handler.close)
                typer.echo(f"sleuth: Socket Mode connected ({'demo scenario' if demo else 'config sources'}, "
                           f"state in {sleuth.store.backend})", err=True)
                try:
                    stopped.wait()
                except KeyboardInterrupt:
                    pass
                handler.close()  # no more envelopes: Slack gives them to another connection
                _stop_gracefully(sleuth, keeper, grace, drain)
    except (ServeError, ConfigError, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        pass


def _alert_listener(intake, address: tuple[str, int]):
    from bot.slack.alert_intake import AlertListener

    try:
        listener = AlertListener(intake, *address)
    except OSError as exc:
        raise ServeError(f"cannot listen for alerts on {address[0]}:{address[1]}: {exc.strerror or exc}; "
                         "change alerts.listen") from exc
    threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                     name="sleuth-alerts").start()
    typer.echo(f"sleuth: alerts on http://{address[0]}:{listener.server_address[1]}/alerts/alertmanager", err=True)
    return listener


def _stop_gracefully(sleuth, keeper, grace: float, drain) -> None:
    """Let running work finish within ``grace`` seconds, else hand it back and leave at once: the
    threads still running never see the store close under them (their users would see the error),
    and never post anything after their work was handed back."""
    typer.echo(f"sleuth: stopping; running work has {grace:.0f} s to finish", err=True)
    running = drain(sleuth, keeper, grace)
    if running:
        typer.echo(f"sleuth: handed back {len(running)} unfinished pieces of work; exiting", err=True)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def register(app: typer.Typer) -> None:
    """Add ``sleuth serve`` to the CLI."""
    app.command("serve")(serve)
