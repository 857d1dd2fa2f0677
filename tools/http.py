"""What every HTTP evidence source shares: a typed connection config, an async client with
timeouts, and a bounded tenacity retry policy.

Only failures that can heal are retried: transport errors (refused, reset, timed out), 5xx, and
429 (honouring Retry-After, capped). Any other answer is final and becomes a one-line reason.
"""

from __future__ import annotations

import email.utils
import json
import time
from datetime import timezone
from typing import Any

import httpx
from pydantic import BaseModel, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)


class SourceError(Exception):
    """A source failed; ``str(err)`` is one sentence a responder can act on."""


class HttpSourceConfig(BaseModel):
    """Connection settings shared by the HTTP sources (Prometheus, Loki, GitHub)."""

    model_config = {"extra": "forbid"}

    url: str
    timeout_s: float = Field(5.0, gt=0, description="per-request timeout")
    attempts: int = Field(3, ge=1, le=10, description="tries per request, the first included")
    backoff_initial_s: float = Field(0.2, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)
    retry_after_max_s: float = Field(5.0, ge=0, description="longest Retry-After honoured")
    deadline_s: float = Field(15.0, gt=0, description="all tries of one request together")
    max_answer_mb: float = Field(16.0, gt=0, le=1024, description="largest answer read; a bigger one is an error")
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    return False


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to the usual backoff
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # HTTP dates are GMT
    return max(0.0, parsed.timestamp() - time.time())


class _RetryAfterOrBackoff:
    """Wait what a 429's Retry-After asks (capped), else exponential backoff with jitter."""

    def __init__(self, config: HttpSourceConfig) -> None:
        self.cap = config.retry_after_max_s
        self.backoff = wait_exponential(multiplier=config.backoff_initial_s, max=config.backoff_max_s) + wait_random(
            0, config.backoff_initial_s
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        wait = None
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429:
            seconds = _retry_after_seconds(exc.response)
            if seconds is not None:
                wait = min(seconds, self.cap)
        return wait if wait is not None else self.backoff(state)


def make_client(config: HttpSourceConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=config.url.rstrip("/"),
        timeout=httpx.Timeout(config.timeout_s),
        headers=config.headers,
        verify=config.verify_tls,
        follow_redirects=True,
    )


def _error_text(response: httpx.Response) -> str:
    """The server's own error message: the `error`/`message` field of a JSON body, else the text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str) and body[key].strip():
                return ": " + body[key].strip().replace("\n", " ")[:500]
    text = response.text.strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""


def describe_failure(name: str, exc: BaseException) -> str:
    """One sentence for a failed request: what happened, in a responder's words."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{name} did not answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"{name} is unreachable (connection refused or no route)"
    if isinstance(exc, httpx.TransportError):
        return f"{name} connection failed ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{name} answered HTTP {exc.response.status_code}" + _error_text(exc.response)
    if isinstance(exc, SourceError):
        return str(exc)
    return f"{name} failed: {exc}"


async def request(
    client: httpx.AsyncClient,
    config: HttpSourceConfig,
    name: str,
    method: str,
    path: str,
    *,
    params: Any = None,
    json_body: Any = None,
) -> httpx.Response:
    """Send one request under the retry policy; the successful response, or SourceError."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(_retryable),
        wait=_RetryAfterOrBackoff(config),
        # stop_before_delay: a wait that would end past the deadline is not slept at all.
        stop=stop_after_attempt(config.attempts) | stop_before_delay(config.deadline_s),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                response = await _bounded(client, method, path, params, json_body,
                                          int(config.max_answer_mb * 1_000_000), name)
                response.raise_for_status()
    except (httpx.HTTPError, SourceError) as exc:
        raise SourceError(describe_failure(name, exc)) from exc
    return response


async def _bounded(client: httpx.AsyncClient, method: str, path: str, params: Any, json_body: Any,
                   limit: int, name: str) -> httpx.Response:
    """The response, read as a stream that stops past ``limit`` bytes (decoded): a source that
    answers 50 MB must not take the process' memory with it."""
    async with client.stream(method, path, params=params, json=json_body) as streamed:
        declared = streamed.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and streamed.is_success:
            raise SourceError(f"{name} answered over {limit / 1e6:g} MB ({int(declared) / 1e6:.0f} MB declared); "
                              "narrow the query or raise max_answer_mb")
        chunks: list[bytes] = []
        size = 0
        async for chunk in streamed.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise SourceError(f"{name} answered over {limit / 1e6:g} MB; narrow the query or raise max_answer_mb")
            chunks.append(chunk)
    # The body is already decoded: the copy must not claim an encoding or a length it no longer has.
    headers = [(k, v) for k, v in streamed.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(streamed.status_code, headers=headers, content=b"".join(chunks),
                          request=streamed.request, extensions=streamed.extensions)


async def request_json(
    client: httpx.AsyncClient,
    config: HttpSourceConfig,
    name: str,
    method: str,
    path: str,
    *,
    params: Any = None,
    json_body: Any = None,
) -> Any:
    """``request`` and decode the JSON body; SourceError with one sentence when it is not JSON."""
    response = await request(client, config, name, method, path, params=params, json_body=json_body)
    return decode_json(response, name)


def decode_json(response: httpx.Response, name: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{name} answered with malformed JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from exc
