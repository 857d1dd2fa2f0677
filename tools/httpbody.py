"""Request bodies for Sleuth's own HTTP listeners (the change webhook, Slack's HTTP mode, alerts):
read with a size limit, parsed strictly, and every problem answered as a JSON 4xx.

A body over the limit gets 413 after the rest of it is read and dropped (up to a bound), so the
sender sees the answer instead of a broken pipe; a missing or negative Content-Length gets 411 or
400; JSON with NaN, Infinity or deep nesting gets 400 (see tools.safeload).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from tools.safeload import InputError, load_json

MAX_BODY_BYTES = 1_000_000
DRAIN_MAX_BYTES = 64_000_000  # beyond this the connection is closed without reading on


class BodyError(Exception):
    """A request that cannot be taken: the status to answer and one sentence."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_body(handler: BaseHTTPRequestHandler, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes; ``BodyError`` otherwise."""
    declared = handler.headers.get("Content-Length")
    if declared is None:
        if handler.headers.get("Transfer-Encoding"):
            handler.close_connection = True
            raise BodyError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        return b""
    try:
        length = int(declared.strip())
    except ValueError:
        length = -1
    if length < 0:
        handler.close_connection = True
        raise BodyError(HTTPStatus.BAD_REQUEST, "Content-Length must be a whole number of bytes, 0 or more")
    if length > limit:
        if length <= DRAIN_MAX_BYTES:
            _drain(handler, length)
        else:
            handler.close_connection = True
        raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"the body is {length / 1e6:.1f} MB; at most {limit / 1e6:g} MB is accepted")
    data = handler.rfile.read(length)
    if len(data) < length:
        handler.close_connection = True
        raise BodyError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(data)} of {length} bytes")
    return data


def _drain(handler: BaseHTTPRequestHandler, length: int) -> None:
    left = length
    while left > 0:
        chunk = handler.rfile.read(min(left, 1 << 16))
        if not chunk:
            handler.close_connection = True
            return
        left -= len(chunk)


def read_json(handler: BaseHTTPRequestHandler, limit: int = MAX_BODY_BYTES, what: str = "the body") -> Any:
    """The request body as strict JSON; ``BodyError`` (400, 411 or 413) otherwise."""
    data = read_body(handler, limit)
    try:
        return load_json(data or b"null", what)
    except InputError as exc:
        raise BodyError(HTTPStatus.BAD_REQUEST, str(exc)) from None


def reply_json(handler: BaseHTTPRequestHandler, status: HTTPStatus, body: dict[str, Any]) -> None:
    """A JSON answer; a client that already hung up is not an error of ours."""
    data = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
