"""Local stand-ins for Slack: the Web API over HTTP and the Socket Mode WebSocket, on 127.0.0.1.

- ``SlackWebStandIn``: the Web API methods Sleuth calls, answered in Slack's shapes (HTTP 200 with
  ``ok``/``error``; 429 with Retry-After on demand per method). It keeps the workspace's messages
  (posted, updated, pinned, threaded), ephemerals, uploaded files (the files_upload_v2 flow:
  files.getUploadURLExternal, the upload URL, files.completeUploadExternal) and opened views, and
  records every call. Blocks are checked against Slack's limits: a message that breaks them gets
  ``invalid_blocks``, as from Slack, so rendering mistakes fail tests.
  ``apps.connections.open`` answers the URL of a ``SocketModeStandIn`` when one is attached.
- ``SocketModeStandIn``: a WebSocket server (the ``websockets`` package) that says hello, sends
  envelopes (``events_api``, ``slash_commands``, ``interactive``) and collects the app's acks.
- Payload builders for slash commands, events, block actions and view submissions, and
  ``SignedSender`` for HTTP mode: requests signed for real with slack_sdk's SignatureVerifier.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.standins import Reply, Seen, StandIn

TEAM = "T0SLEUTH"
BOT_USER = "U0SLEUTHBOT"
BOT_ID = "B0SLEUTH"
APP_ID = "A0SLEUTH"


# --- Slack's limits ---------------------------------------------------------------------------


def check_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """What Slack would reject in ``blocks`` (empty when they are valid)."""
    errors: list[str] = []
    if blocks is None:
        return errors
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    limit = 100 if surface == "modal" else 50
    if len(blocks) > limit:
        errors.append(f"{len(blocks)} blocks; at most {limit}")
    ids: set[str] = set()

    def text_ok(obj: Any, where: str, max_len: int = 3000, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            errors.append(f"{where}: a text object of type {'/'.join(kinds)} is required")
            return
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            errors.append(f"{where}: text must be a non-empty string")
        elif len(text) > max_len:
            errors.append(f"{where}: {len(text)} characters; at most {max_len}")

    def element_ok(element: dict, where: str) -> None:
        kind = element.get("type")
        if len(element.get("action_id", "")) > 255:
            errors.append(f"{where}: action_id longer than 255")
        if kind == "button":
            text_ok(element.get("text"), f"{where}.text", 75, ("plain_text",))
            if len(element.get("value", "")) > 2000:
                errors.append(f"{where}: value longer than 2000")
            if element.get("style") not in (None, "primary", "danger"):
                errors.append(f"{where}: style must be primary or danger")
            if "confirm" in element:
                confirm = element["confirm"]
                text_ok(confirm.get("title"), f"{where}.confirm.title", 100, ("plain_text",))
                text_ok(confirm.get("text"), f"{where}.confirm.text", 300)
                text_ok(confirm.get("confirm"), f"{where}.confirm.confirm", 30, ("plain_text",))
                text_ok(confirm.get("deny"), f"{where}.confirm.deny", 30, ("plain_text",))
        elif kind == "static_select":
            options = element.get("options") or []
            if not 1 <= len(options) <= 100:
                errors.append(f"{where}: 1 to 100 options")
            for i, option in enumerate(options):
                text_ok(option.get("text"), f"{where}.options[{i}]", 75, ("plain_text",))
                if len(option.get("value", "")) > 150:
                    errors.append(f"{where}.options[{i}]: value longer than 150")
        elif kind == "plain_text_input":
            if len(element.get("initial_value", "")) > 3000:
                errors.append(f"{where}: initial_value longer than 3000")
        else:
            errors.append(f"{where}: element type {kind!r} not expected here")

    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type")
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > 255:
                errors.append(f"{where}: block_id longer than 255")
            if block_id in ids:
                errors.append(f"{where}: duplicate block_id {block_id!r}")
            ids.add(block_id)
        if kind == "section":
            if "text" in block:
                text_ok(block["text"], f"{where}.text")
            fields = block.get("fields") or []
            if len(fields) > 10:
                errors.append(f"{where}: more than 10 fields")
            for i, f in enumerate(fields):
                text_ok(f, f"{where}.fields[{i}]", 2000)
            if "text" not in block and not fields:
                errors.append(f"{where}: a section needs text or fields")
            if block.get("accessory"):
                element_ok(block["accessory"], f"{where}.accessory")
        elif kind == "header":
            text_ok(block.get("text"), f"{where}.text", 150, ("plain_text",))
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                errors.append(f"{where}: 1 to 10 context elements")
            for i, element in enumerate(elements):
                text_ok(element, f"{where}.elements[{i}]")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                errors.append(f"{where}: 1 to 25 elements")
            for i, element in enumerate(elements):
                element_ok(element, f"{where}.elements[{i}]")
        elif kind == "input" and surface == "modal":
            text_ok(block.get("label"), f"{where}.label", 2000, ("plain_text",))
            element_ok(block.get("element") or {}, f"{where}.element")
        elif kind == "divider":
            pass
        else:
            errors.append(f"{where}: block type {kind!r} not expected in a {surface}")
    return errors


def check_view(view: dict[str, Any]) -> list[str]:
    errors = check_blocks(view.get("blocks"), surface="modal")
    for key, limit in (("title", 24), ("submit", 24), ("close", 24)):
        value = (view.get(key) or {}).get("text", "")
        if key == "title" and not value:
            errors.append("view.title is required")
        if len(value) > limit:
            errors.append(f"view.{key}: {len(value)} characters; at most {limit}")
    if len(view.get("private_metadata", "")) > 3000:
        errors.append("view.private_metadata longer than 3000")
    return errors


# --- the Web API ------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float  # time.monotonic()
    token: str | None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    blocks: list | None = None
    thread_ts: str | None = None
    files: list = field(default_factory=list)
    pinned: bool = False
    edits: int = 0
    posted_at: float = 0.0  # time.monotonic()

    def to_slack(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user:
            out["user"] = self.user
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.files:
            out["files"] = self.files
        return out


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class SlackWebStandIn(StandIn):
    """The Slack Web API at ``{url}/api/``; see the module docstring."""

    def __init__(self, *, bot_token: str = "xoxb-test-token", app_token: str = "xapp-test-token") -> None:
        super().__init__()
        self.bot_token, self.app_token = bot_token, app_token
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.socket_url: str | None = None
        self.rejected: list[tuple[str, list[str]]] = []  # (method, errors) for invalid blocks
        self._throttles: dict[str, list[str]] = {}
        self._stalls: dict[str, list[float]] = {}
        self._clock = itertools.count(1)
        self._cond = threading.Condition()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # --- test-side helpers ------------------------------------------------------------------

    def throttle(self, method: str, times: int = 1, retry_after: str = "1") -> None:
        """The next ``times`` calls of ``method`` answer 429 with Retry-After."""
        with self._cond:
            self._throttles.setdefault(method, []).extend([retry_after] * times)

    def stall(self, method: str, seconds: float, times: int = 1, *, drop: bool = False) -> None:
        """The next ``times`` calls of ``method`` are recorded, then answered only after ``seconds``
        (a Slack that hangs: the caller is stuck mid-work); ``drop``: and then not carried out."""
        with self._cond:
            self._stalls.setdefault(method, []).extend([(seconds, drop)] * times)

    def next_ts(self) -> str:
        return f"{1773150000 + next(self._clock)}.{next(self._clock):06d}"

    def human_message(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Message:
        """A message a person wrote (for reactions and pins to point at)."""
        message = Message(channel, self.next_ts(), text, user=user, thread_ts=thread_ts, posted_at=time.monotonic())
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()
        return message

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def bot_messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.bot_id and (channel is None or m.channel == channel)
                    and (thread_ts is None or m.thread_ts == thread_ts)]

    def message(self, channel: str, ts: str) -> Message | None:
        with self._cond:
            return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def ephemerals_for(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.ephemerals if (user is None or e["user"] == user)
                    and (channel is None or e["channel"] == channel)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "a condition") -> Any:
        """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                         f"calls so far: {[c.method for c in self.calls][-30:]}")
                self._cond.wait(min(remaining, 0.05))

    # --- the API ----------------------------------------------------------------------------

    def respond(self, request: Seen) -> Reply:
        if request.path.startswith("/upload/"):
            return self._upload(request)
        if not request.path.startswith("/api/"):
            return super().respond(request)
        method = request.path[len("/api/"):]
        args: dict[str, Any] = {k: v[0] for k, v in request.params.items()}
        content_type = request.headers.get("content-type", "")
        if request.body:
            if "json" in content_type:
                args.update(json.loads(request.body))
            else:
                args.update({k: v[0] for k, v in urllib.parse.parse_qs(request.body.decode(), keep_blank_values=True).items()})
        args = {k: _decode(v) for k, v in args.items()}
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or args.pop("token", None)
        with self._cond:
            self.calls.append(Call(method, args, time.monotonic(), token))
            queued = self._throttles.get(method)
            retry_after = queued.pop(0) if queued else None
            stalls = self._stalls.get(method)
            stall, drop = stalls.pop(0) if stalls else (0.0, False)
            self._cond.notify_all()
        if stall:
            time.sleep(stall)
            if drop:
                return Reply.json(200, {"ok": False, "error": "request_timeout"})
        if retry_after is not None:
            return Reply.json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after})
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return Reply.json(200, {"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return Reply.json(200, {"ok": False, "error": "unknown_method"})
        with self._cond:
            answer = handler(args)
            self._cond.notify_all()
        return Reply.json(200, answer)

    def _invalid(self, method: str, blocks: Any, surface: str = "message") -> dict[str, Any] | None:
        errors = check_blocks(blocks, surface=surface)
        if errors:
            self.rejected.append((method, errors))
            return {"ok": False, "error": "invalid_blocks", "errors": errors}
        return None

    def _auth_test(self, args: dict) -> dict:
        return {"ok": True, "url": "https://sleuth-test.slack.com/", "team": "Sleuth Test", "user": "sleuth",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _apps_connections_open(self, args: dict) -> dict:
        if not self.socket_url:
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": f"{self.socket_url}/link/?ticket={uuid.uuid4()}&app_id={APP_ID}"}

    def _chat_postMessage(self, args: dict) -> dict:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if len(args.get("text") or "") > 40000:
            return {"ok": False, "error": "msg_too_long"}
        invalid = self._invalid("chat.postMessage", args.get("blocks"))
        if invalid:
            return invalid
        thread_ts = args.get("thread_ts") or None
        message = Message(args["channel"], self.next_ts(), args.get("text") or "", user=BOT_USER, bot_id=BOT_ID,
                          blocks=args.get("blocks"), thread_ts=thread_ts, posted_at=time.monotonic())
        self.messages.append(message)
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": message.to_slack()}

    def _chat_update(self, args: dict) -> dict:
        message = next((m for m in self.messages if m.channel == args.get("channel") and m.ts == args.get("ts")), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.bot_id != BOT_ID:
            return {"ok": False, "error": "cant_update_message"}
        invalid = self._invalid("chat.update", args.get("blocks"))
        if invalid:
            return invalid
        message.text = args.get("text") or message.text
        if "blocks" in args:
            message.blocks = args["blocks"]
        message.edits += 1
        return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text,
                "message": message.to_slack()}

    def _chat_delete(self, args: dict) -> dict:
        message = next((m for m in self.messages if m.channel == args.get("channel") and m.ts == args.get("ts")), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self.messages.remove(message)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_postEphemeral(self, args: dict) -> dict:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        invalid = self._invalid("chat.postEphemeral", args.get("blocks"))
        if invalid:
            return invalid
        self.ephemerals.append({"channel": args["channel"], "user": args["user"], "text": args.get("text") or "",
                                "blocks": args.get("blocks"), "thread_ts": args.get("thread_ts"),
                                "at": time.monotonic()})
        return {"ok": True, "message_ts": self.next_ts()}

    def _chat_getPermalink(self, args: dict) -> dict:
        channel, ts = args.get("channel", ""), args.get("message_ts", "")
        if self.message(channel, ts) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel,
                "permalink": f"https://sleuth-test.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _conversations_history(self, args: dict) -> dict:
        found = self._between([m for m in self.messages if m.channel == args.get("channel")
                               and (m.thread_ts is None or m.thread_ts == m.ts)], args)
        return {"ok": True, "messages": [m.to_slack() for m in found], "has_more": False}

    def _conversations_replies(self, args: dict) -> dict:
        root = args.get("ts")
        thread = [m for m in self.messages if m.channel == args.get("channel") and (m.ts == root or m.thread_ts == root)]
        if not thread:
            reply = self.message(args.get("channel", ""), root or "")
            if reply is None:
                return {"ok": False, "error": "thread_not_found"}
            thread = [m for m in self.messages if m.channel == reply.channel
                      and (m.ts == reply.thread_ts or m.thread_ts == reply.thread_ts)]
        return {"ok": True, "messages": [m.to_slack() for m in self._between(thread, args)], "has_more": False}

    @staticmethod
    def _between(messages: list[Message], args: dict) -> list[Message]:
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or 9e12)

        def keep(m: Message) -> bool:
            ts = float(m.ts)
            return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

        kept = sorted((m for m in messages if keep(m)), key=lambda m: float(m.ts), reverse=True)
        return kept[: int(args.get("limit") or 100)]

    def _pins_add(self, args: dict) -> dict:
        message = self.message(args.get("channel", ""), args.get("timestamp", ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.pinned:
            return {"ok": False, "error": "already_pinned"}
        message.pinned = True
        return {"ok": True}

    def _usergroups_users_list(self, args: dict) -> dict:
        group = args.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _views_open(self, args: dict) -> dict:
        view = args.get("view") or {}
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        errors = check_view(view)
        if errors:
            self.rejected.append(("views.open", errors))
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
        stored = {**view, "id": f"V{len(self.views) + 1:08d}", "team_id": TEAM, "state": {"values": {}}}
        self.views.append(stored)
        return {"ok": True, "view": stored}

    def _files_getUploadURLExternal(self, args: dict) -> dict:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = {"id": file_id, "name": args["filename"], "length": int(args["length"]),
                               "data": None, "shared": False}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _upload(self, request: Seen) -> Reply:
        file_id = request.path.rsplit("/", 1)[-1]
        with self._cond:
            entry = self.files.get(file_id)
            if entry is None or request.method != "POST":
                return Reply.text(404, "not found")
            entry["data"] = request.body
            self._cond.notify_all()
        return Reply.text(200, f"OK - {len(request.body)}")

    def _files_completeUploadExternal(self, args: dict) -> dict:
        listed = args.get("files") or []
        done = []
        for item in listed:
            entry = self.files.get(item.get("id"))
            if entry is None or entry["data"] is None:
                return {"ok": False, "error": "upload_not_completed" if entry else "file_not_found"}
            if len(entry["data"]) != entry["length"]:
                return {"ok": False, "error": "invalid_upload_length"}
            entry.update(shared=True, title=item.get("title") or entry["name"], channel=args.get("channel_id"),
                         thread_ts=args.get("thread_ts"))
            done.append({"id": entry["id"], "name": entry["name"], "title": entry["title"], "mimetype": "image/png",
                         "size": entry["length"]})
        if args.get("channel_id"):
            self.messages.append(Message(args["channel_id"], self.next_ts(), args.get("initial_comment") or "",
                                         user=BOT_USER, bot_id=BOT_ID, thread_ts=args.get("thread_ts"), files=done,
                                         posted_at=time.monotonic()))
        return {"ok": True, "files": done}


# --- Socket Mode ------------------------------------------------------------------------------


class SocketModeStandIn:
    """Slack's Socket Mode WebSocket: hello on connect, envelopes out, acks in."""

    def __init__(self) -> None:
        self.port = 0
        self.acks: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[Any] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "SocketModeStandIn":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True, name="socket-standin")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Socket Mode stand-in did not start")
        return self

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handler(self, websocket: Any) -> None:
        with self._cond:
            self._sockets.append(websocket)
            self.connections += 1
            self._cond.notify_all()
        await websocket.send(json.dumps({"type": "hello", "num_connections": 1,
                                         "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                                         "connection_info": {"app_id": APP_ID}}))
        try:
            async for raw in websocket:
                try:
                    message = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if isinstance(message, dict) and message.get("envelope_id"):
                    with self._cond:
                        self.acks[message["envelope_id"]] = message
                        self._cond.notify_all()
        except Exception:  # noqa: BLE001 - a dropped connection ends the handler
            pass
        finally:
            with self._cond:
                if websocket in self._sockets:
                    self._sockets.remove(websocket)
                self._cond.notify_all()

    def wait_connected(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._sockets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("no Socket Mode client connected")
                self._cond.wait(remaining)

    def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
             accepts_response_payload: bool = True) -> str:
        """Send one envelope to the connected app; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": accepts_response_payload}
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        self.wait_connected()
        with self._cond:
            socket = self._sockets[-1]
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(socket.send(json.dumps(envelope)), self._loop).result(5)
        return envelope_id

    def ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no ack for envelope {envelope_id}")
                self._cond.wait(remaining)
            return self.acks[envelope_id]

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "SocketModeStandIn":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


# --- payloads ---------------------------------------------------------------------------------


def slash_command(text: str, *, channel: str, user: str, command: str = "/diagnose", team: str = TEAM,
                  response_url: str = "https://hooks.slack.invalid/commands/1") -> dict[str, str]:
    return {"token": "legacy", "team_id": team, "team_domain": "sleuth-test", "channel_id": channel,
            "channel_name": "incident", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:8]}"}


_EVENTS = itertools.count(1)


def event_callback(event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM) -> dict[str, Any]:
    event = {"event_ts": event.get("ts") or f"{time.time():.6f}", **event}
    return {"token": "legacy", "team_id": team, "api_app_id": APP_ID, "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{next(_EVENTS):08d}{uuid.uuid4().hex[:6].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False}


def block_action(action_id: str, value: str, *, user: str, channel: str, message: dict[str, Any],
                 team: str = TEAM, block_id: str = "b") -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": team},
            "api_app_id": APP_ID, "token": "legacy", "container": {"type": "message", "message_ts": message["ts"],
                                                                  "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:8]}", "team": {"id": team, "domain": "sleuth-test"},
            "channel": {"id": channel, "name": "incident"}, "message": message,
            "response_url": "https://hooks.slack.invalid/actions/1",
            "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                         "action_ts": f"{time.time():.6f}"}]}


def view_submission(view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str,
                    team: str = TEAM) -> dict[str, Any]:
    submitted = {**view, "state": {"values": values}}
    return {"type": "view_submission", "team": {"id": team, "domain": "sleuth-test"},
            "user": {"id": user, "username": user.lower(), "team_id": team}, "api_app_id": APP_ID,
            "token": "legacy", "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:8]}", "view": submitted}


# --- HTTP mode --------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: str
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SignedSender:
    """Slack's side of HTTP mode: requests to /slack/events signed with the signing secret."""

    def __init__(self, url: str, secret: str) -> None:
        from slack_sdk.signature import SignatureVerifier

        self.url = url
        self.verifier = SignatureVerifier(secret)

    def post(self, body: str, content_type: str, *, timestamp: int | None = None, signature: str | None = None,
             retry_num: int | None = None, timeout: float = 10.0) -> Answer:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": signature or self.verifier.generate_signature(timestamp=ts, body=body)}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        request = urllib.request.Request(self.url, data=body.encode(), headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Answer(answer.status, answer.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode(), time.perf_counter() - started)

    def command(self, payload: dict[str, str], **kw: Any) -> Answer:
        return self.post(urllib.parse.urlencode(payload), "application/x-www-form-urlencoded", **kw)

    def event(self, payload: dict[str, Any], **kw: Any) -> Answer:
        return self.post(json.dumps(payload), "application/json", **kw)

    def interactive(self, payload: dict[str, Any], **kw: Any) -> Answer:
        return self.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded", **kw)


# --- the app under test -----------------------------------------------------------------------


class SlackHarness:
    """Sleuth's real Bolt app over the demo scenario, in this process, with its state under
    ``root``: the Web API stand-in behind its WebClient and, in HTTP mode, the real threaded
    server of ``sleuth serve --http`` in front of it, reached with signed requests.

    ``restart()`` drops the app, the agent and the store and builds them again over the same
    files, as a process restart would.
    """

    SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

    def __init__(self, root: Any, web: SlackWebStandIn, *, approvers: list[str] | None = None,
                 storage: Any = None, prefix: str = "sleuth_", memory: bool = True) -> None:
        import shutil
        from contextlib import ExitStack
        from pathlib import Path

        from bot.config import StorageConfig
        from bot.slack.serve import demo_setup

        self.root = Path(root)
        self.web = web
        self.prefix = prefix
        config, self.defaults = demo_setup(None)
        config.storage = storage or StorageConfig(sqlite=self.root / "state.db")
        if memory and config.memory is not None:
            copy = self.root / "memory"
            if not copy.exists():
                shutil.copytree(config.memory.path, copy)
            config.memory = config.memory.model_copy(update={"path": copy})
        elif not memory:
            config.memory = None
        config.slack.approvers = list(approvers or [])
        self.config = config
        self._stack: ExitStack | None = None
        self.server: Any = None
        self.sleuth: Any = None
        self.app: Any = None
        self.sender: SignedSender | None = None
        self.start()

    def start(self) -> None:
        from contextlib import ExitStack

        from bot.slack.app import build_app
        from bot.slack.outgoing import make_client
        from bot.slack.serve import SlackHttpServer, open_sleuth

        self._stack = ExitStack()
        self.sleuth = open_sleuth(self.config, self.defaults, self._stack, prefix=self.prefix)
        client = make_client(self.web.bot_token, base_url=self.web.api_url)
        self.app = build_app(self.sleuth, client=client, signing_secret=self.SECRET)
        self.server = SlackHttpServer(self.app, "127.0.0.1", 0)
        thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._stack.callback(self.server.server_close)
        self._stack.callback(self.server.shutdown)
        self.sender = SignedSender(f"http://127.0.0.1:{self.server.server_address[1]}/slack/events", self.SECRET)

    @property
    def store(self) -> Any:
        return self.sleuth.store

    def restart(self) -> None:
        self.close()
        self.start()

    def close(self) -> None:
        if self._stack is not None:
            # Let lazy listeners still running finish before their store goes away.
            self.app.listener_runner.listener_executor.shutdown(wait=True)
            self._stack.close()
            self._stack = None

    # what Slack would send

    def command(self, text: str, *, channel: str, user: str, **kw: Any) -> Answer:
        assert self.sender is not None
        return self.sender.command(slash_command(text, channel=channel, user=user), **kw)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any) -> Answer:
        assert self.sender is not None
        return self.sender.event(event_callback(event, event_id=event_id), **kw)

    def click(self, action_id: str, value: str, *, user: str, channel: str, message: Message) -> Answer:
        assert self.sender is not None
        return self.sender.interactive(block_action(action_id, value, user=user, channel=channel,
                                                    message=message.to_slack()))

    def submit(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str) -> Answer:
        assert self.sender is not None
        return self.sender.interactive(view_submission(view, values, user=user))


# --- PostgreSQL -------------------------------------------------------------------------------

POSTGRES_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


def _ci() -> bool:
    import os

    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class postgres_schema:
    """A fresh schema in the local PostgreSQL (127.0.0.1:5432, database test) for one test, and a
    URL whose connections use it (``options=-csearch_path=...``), dropped afterwards. Skips with
    the reason where no server answers, except under CI=true, where it fails."""

    def __enter__(self) -> str:
        import pytest
        import psycopg

        problems = []
        for url in POSTGRES_CANDIDATES:
            try:
                self.admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
                break
            except psycopg.Error as exc:
                problems.append(f"{url}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
        else:
            reason = "no PostgreSQL answers at 127.0.0.1:5432 (database test): " + "; ".join(problems)
            if _ci():
                pytest.fail(f"CI=true but {reason}", pytrace=False)
            pytest.skip(reason)
        self.schema = f"sleuth_t_{uuid.uuid4().hex[:12]}"
        self.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        return f"{url}?options=-csearch_path%3D{self.schema}"

    def __exit__(self, *_: object) -> None:
        self.admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.admin.close()
