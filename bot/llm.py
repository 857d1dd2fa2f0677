"""The model: any OpenAI-compatible chat-completions endpoint, through the openai client.

``ModelClient.chat`` sends one request and returns the assistant message as a plain dict with the
token usage. One deadline holds for everything: the openai client's own retries are off
(``max_retries=0``) and this module retries instead, so every attempt's timeout, and every pause
between attempts (Retry-After honoured), is cut to the time left before the caller's deadline.
Timeouts, connection errors, 5xx, 408 and 429 are retried up to ``model.max_retries`` times.
Anything that still fails becomes :class:`ModelUnavailable`, one sentence that keeps the server's
own error text (shortened and redacted) while the deterministic result stands.

Fallbacks are keyed on behaviour, not on the wording of an error: a 4xx or 5xx answer to a request
that carried ``tools`` raises :class:`ToolsRejected` at once, and the caller sends the request again
once without tools, calling tools through the text protocol (prompts/tools_text.md). An endpoint
that fails with tools and answers without them twice (or refuses them with a 4xx once) is
remembered as one without tool calling.

``max_tokens`` is sized to the time left and the endpoint's measured writing speed (llama.cpp's
reported ``timings`` where present, else completion tokens over the call's wall time), not a fixed
4096 that a CPU model could never write before the deadline. Every attempt is logged in
``ModelClient.log`` (seconds, outcome, timeout, max_tokens), so a result can say where its time went.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from bot.config import ModelConfig
from tools.timeparse import parse_duration

# Before the first answer the endpoint's speed is unknown: a small model on a CPU writes 8-25
# tokens/s, a hosted one far more. Sizing the first answer at this speed keeps it finishable.
ASSUMED_TOKENS_PER_S = 20.0
MAX_ANSWER_TOKENS = 2048
MIN_ANSWER_TOKENS = 64
# Statuses that say nothing about tools: auth, a model that does not exist, rate limiting.
_NOT_ABOUT_TOOLS = {401, 403, 404, 429}
_RETRYABLE = {408, 409, 429}


class ModelUnavailable(Exception):
    """The model could not answer (down, slow, rate-limited, refused): one sentence.

    ``deadline`` is true when the attempt was cut short by the caller's deadline.
    """

    def __init__(self, message: str, *, deadline: bool = False) -> None:
        super().__init__(message)
        self.deadline = deadline


class ToolsRejected(Exception):
    """The endpoint answered a request with ``tools`` by an HTTP error: send it again without."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}" if text else f"HTTP {status}")
        self.status = status
        self.text = text


@dataclass
class ChatResult:
    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments" (raw str)}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    seconds: float = 0.0


def _one_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"\s+", " ", text)
    return text[:200]


def server_text(exc: Exception, limit: int = 160) -> str:
    """The server's own words in an HTTP error, one line, at most ``limit`` characters."""
    body = getattr(exc, "body", None)
    text = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            text = str(inner.get("message") or inner.get("detail") or json.dumps(inner)[:limit * 2])
        else:
            text = str(inner)
    elif isinstance(body, str):
        text = body
    if not text:
        response = getattr(exc, "response", None)
        try:
            text = response.text if response is not None else ""
        except Exception:  # noqa: BLE001 - a body that cannot be read says nothing more
            text = ""
    if not text:
        text = getattr(exc, "message", "") or str(exc)
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except Exception:  # noqa: BLE001
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reported_speed(response: Any) -> float | None:
    """Tokens per second the server says it wrote at (llama.cpp's ``timings``), if it says."""
    timings = getattr(response, "timings", None)
    if timings is None:
        extra = getattr(response, "model_extra", None) or {}
        timings = extra.get("timings")
    if isinstance(timings, dict):
        value = timings.get("predicted_per_second")
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def redacted_messages(messages: list[dict[str, Any]], redact: Callable[[str], str]) -> list[dict[str, Any]]:
    """The chat as it is sent: every text in it (contents, text parts, tool-call arguments) passed
    through ``redact`` once more. The callers redact what they put in; this is the last step before
    the endpoint, which nothing can skip."""
    out = []
    for message in messages:
        message = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = redact(content)
        elif isinstance(content, list):
            message["content"] = [dict(part, text=redact(part["text"])) if isinstance(part, dict)
                                  and isinstance(part.get("text"), str) else part for part in content]
        if message.get("tool_calls"):
            message["tool_calls"] = [_redacted_call(call, redact) for call in message["tool_calls"]]
        out.append(message)
    return out


def _redacted_call(call: Any, redact: Callable[[str], str]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    if isinstance(function.get("arguments"), str):
        function = dict(function, arguments=redact(function["arguments"]))
    return dict(call, function=function)


class ModelClient:
    def __init__(self, config: ModelConfig, *, redact: Callable[[str], str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from openai import OpenAI

        self.config = config
        self.name = config.model or ""
        self.tools_supported = config.tool_calling
        self.tools_failures = 0  # requests with tools that failed while the same without tools answered
        self.tokens_per_s: float | None = None  # measured writing speed (moving average)
        self.log: list[dict[str, Any]] = []  # one entry per attempt: where the time went
        self._redact = redact or (lambda text: text)
        self._sleep = sleep
        self._timeout = parse_duration(config.timeout)
        self._client = OpenAI(
            base_url=config.base_url or None,
            api_key=config.api_key or "not-needed",  # local servers (vLLM, Ollama, LM Studio) accept anything
            max_retries=0,  # retried here, within the caller's deadline
            timeout=self._timeout,
        )

    def where(self) -> str:
        return f"{self.name} at {self.config.base_url or 'the OpenAI API'}"

    # sizing ---------------------------------------------------------------------------------------
    def answer_tokens(self, seconds_left: float, cap: int = MAX_ANSWER_TOKENS) -> int:
        """``max_tokens`` for the next call: what the endpoint can write in the time one call may take."""
        speed = self.tokens_per_s or ASSUMED_TOKENS_PER_S
        seconds = max(0.0, min(self._timeout, seconds_left) - 1.0)
        return int(max(MIN_ANSWER_TOKENS, min(cap, speed * seconds * 0.9)))

    def _measure(self, response: Any, completion_tokens: int, seconds: float) -> None:
        speed = _reported_speed(response)
        if speed is None and completion_tokens >= 16 and seconds > 0:
            speed = completion_tokens / seconds  # includes reading the prompt: errs on the slow side
        if speed:
            self.tokens_per_s = speed if self.tokens_per_s is None else 0.5 * self.tokens_per_s + 0.5 * speed

    # the call -------------------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             deadline: float | None = None, max_tokens: int | None = None) -> ChatResult:
        """One chat completion. ``deadline`` is a time.monotonic() value no attempt, and no pause
        between attempts, may pass. Raises ToolsRejected (a request with tools refused by an HTTP
        error) or ModelUnavailable."""
        import openai

        messages = redacted_messages(messages, self._redact)
        send_tools = bool(tools) and self.tools_supported
        attempt = 0
        while True:
            attempt += 1
            timeout = self._timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0.5:
                    raise ModelUnavailable(f"no time left for the model ({self.where()})", deadline=True)
                timeout = min(timeout, left)
            kwargs: dict[str, Any] = {"model": self.name, "messages": messages,
                                      "temperature": self.config.temperature}
            if send_tools:
                kwargs["tools"] = tools
                kwargs["tool_choice"] = "auto"
            if max_tokens:
                kwargs["max_tokens"] = max_tokens
            entry: dict[str, Any] = {"attempt": attempt, "tools": send_tools, "timeout_s": round(timeout, 2),
                                     "max_tokens": max_tokens}
            began = time.monotonic()
            retry_in: float | None = None
            try:
                response = self._client.with_options(timeout=timeout).chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                status = exc.status_code
                text = self._redact(server_text(exc))
                self._record(entry, began, f"HTTP {status}")
                if send_tools and status not in _NOT_ABOUT_TOOLS:
                    raise ToolsRejected(status, text) from exc
                if status >= 500 or status in _RETRYABLE:
                    retry_in = _retry_after(exc) if status == 429 else None
                    error = ModelUnavailable(
                        f"{self.where()} is rate-limiting (429) after {attempt} tries" + (f": {text}" if text else "")
                        if status == 429 else f"{self.where()} answered HTTP {status} after {attempt} tries"
                        + (f": {text}" if text else ""))
                else:
                    raise ModelUnavailable(f"{self.where()} refused the request (HTTP {status})"
                                           + (f": {text}" if text else "")) from exc
            except openai.APITimeoutError:
                self._record(entry, began, "timeout")
                cut = deadline is not None and timeout < self._timeout and time.monotonic() >= deadline - 0.6
                error = ModelUnavailable(f"{self.where()} did not answer within {timeout:.0f}s", deadline=cut)
                if cut:
                    raise error
            except openai.APIConnectionError as exc:
                self._record(entry, began, "connection error")
                error = ModelUnavailable(f"cannot reach {self.where()}: {self._redact(_one_sentence(exc))}")
            except openai.OpenAIError as exc:
                self._record(entry, began, "error")
                raise ModelUnavailable(f"{self.where()} failed: {self._redact(_one_sentence(exc))}") from exc
            else:
                seconds = self._record(entry, began, "ok")
                return self._result(response, seconds)
            # a retryable failure: again, if the tries and the deadline allow
            if attempt > self.config.max_retries:
                raise error
            pause = retry_in if retry_in is not None else min(8.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            if deadline is not None and time.monotonic() + pause > deadline - 1.0:
                error.deadline = True  # another try would have been made, but not before the deadline
                raise error
            if pause > 0:
                self.log.append({"attempt": attempt, "pause_s": round(pause, 2)})
                self._sleep(pause)

    def note_tools_fallback(self, status: int) -> None:
        """The request failed with tools and answered without: remember it (twice, or a 4xx once,
        and this endpoint is taken to have no tool calling)."""
        self.tools_failures += 1
        if status < 500 or self.tools_failures >= 2:
            self.tools_supported = False

    def _record(self, entry: dict[str, Any], began: float, outcome: str) -> float:
        seconds = time.monotonic() - began
        entry["seconds"] = round(seconds, 3)
        entry["outcome"] = outcome
        self.log.append(entry)
        return seconds

    def _result(self, response: Any, seconds: float) -> ChatResult:
        if not getattr(response, "choices", None):
            raise ModelUnavailable(f"{self.where()} returned no choices")
        choice = response.choices[0]
        message = choice.message
        calls: list[dict[str, Any]] = []
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None:
                continue
            calls.append({"id": call.id or f"call_{len(calls) + 1}", "name": function.name or "",
                          "arguments": function.arguments or ""})
        usage = getattr(response, "usage", None)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        self._measure(response, completion, seconds)
        return ChatResult(
            content=message.content or "",
            tool_calls=calls,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=completion,
            finish_reason=choice.finish_reason or "",
            seconds=seconds,
        )


# --- reading what the model wrote ---------------------------------------------------------------------
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?|\n?\s*```\s*$")


@dataclass
class Answer:
    """A model's answer as it came: ``shape`` is json, repaired json, prose or empty."""

    shape: str
    data: dict[str, Any] | None
    text: str


def parse_json_object(text: str, keys: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The JSON object in a model's text, repaired by json-repair where it slipped (unquoted keys,
    doubled braces, trailing commas or text, code fences, single quotes, a cut-off end), or None.

    With ``keys``, only an object holding at least one of them counts: prose that merely contains
    braces (a PromQL selector) is not taken for an answer.
    """
    if not text or "{" not in text:
        return None
    cleaned = _FENCE.sub("", text.strip())
    start = cleaned.find("{")
    candidate = cleaned[start:]
    try:
        value: Any = json.loads(candidate)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        import json_repair

        try:
            value = json_repair.loads(candidate)
        except Exception:  # noqa: BLE001 - an unrepairable text is no JSON
            return None
    found = value if isinstance(value, list) else [value]
    for item in found:
        if isinstance(item, dict) and item and (not keys or any(k in item for k in keys)):
            return item
    return None


def read_answer(text: str, keys: tuple[str, ...]) -> Answer:
    """What the model answered, in whatever shape: strict JSON, JSON with slips, or prose."""
    stripped = (text or "").strip()
    if not stripped:
        return Answer("empty", None, "")
    body = _FENCE.sub("", stripped)
    try:
        strict = json.loads(body)
    except ValueError:
        strict = None
    if isinstance(strict, dict) and any(k in strict for k in keys):
        return Answer("json", strict, stripped)
    repaired = parse_json_object(stripped, keys)
    if repaired is not None:
        return Answer("repaired json", repaired, stripped)
    return Answer("prose", None, stripped)
