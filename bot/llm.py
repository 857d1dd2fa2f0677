"""The model: any OpenAI-compatible chat-completions endpoint, through the openai client.

``ModelClient.chat`` sends one request and returns the assistant message as a plain dict with the
token usage. Timeouts, connection errors, 5xx and 429 are retried (by the openai client, which
honours Retry-After) but never past the caller's deadline: the timeout of each attempt is the time
left. Anything that still fails becomes :class:`ModelUnavailable`, one sentence the investigation
reports while the deterministic result stands. An endpoint that rejects ``tools`` is remembered,
so the agent can go on without tool calling.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from bot.config import ModelConfig, parse_duration


class ModelUnavailable(Exception):
    """The model could not answer (down, slow, rate-limited, refused): one sentence."""


@dataclass
class ChatResult:
    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments" (raw str)}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""


def _one_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"\s+", " ", text)
    return text[:200]


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
    def __init__(self, config: ModelConfig, *, redact: Callable[[str], str] | None = None) -> None:
        from openai import OpenAI

        self.config = config
        self._redact = redact or (lambda text: text)
        self.name = config.model or ""
        self.tools_supported = config.tool_calling
        self._timeout = parse_duration(config.timeout)
        self._client = OpenAI(
            base_url=config.base_url or None,
            api_key=config.api_key or "not-needed",  # local servers (vLLM, Ollama, LM Studio) accept anything
            max_retries=config.max_retries,
            timeout=self._timeout,
        )

    def where(self) -> str:
        return f"{self.name} at {self.config.base_url or 'the OpenAI API'}"

    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             deadline: float | None = None, max_tokens: int | None = None) -> ChatResult:
        """One chat completion. ``deadline`` is a time.monotonic() value no attempt may pass."""
        import openai

        messages = redacted_messages(messages, self._redact)
        timeout = self._timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0.5:
                raise ModelUnavailable(f"no time left for the model ({self.where()})")
            timeout = min(timeout, left)
        kwargs: dict[str, Any] = {"model": self.name, "messages": messages, "temperature": self.config.temperature}
        if tools and self.tools_supported:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = "auto"
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        try:
            response = self._client.with_options(timeout=timeout).chat.completions.create(**kwargs)
        except openai.BadRequestError as exc:
            if tools and self.tools_supported and "tool" in str(exc).lower():
                # The endpoint or model has no tool calling: go on without it.
                self.tools_supported = False
                return self.chat(messages, tools=None, deadline=deadline, max_tokens=max_tokens)
            raise ModelUnavailable(f"{self.where()} refused the request: {_one_sentence(exc)}") from exc
        except openai.APITimeoutError as exc:
            raise ModelUnavailable(f"{self.where()} did not answer within {timeout:.0f}s") from exc
        except openai.RateLimitError as exc:
            raise ModelUnavailable(f"{self.where()} is rate-limiting (429) after retries") from exc
        except openai.APIStatusError as exc:
            raise ModelUnavailable(f"{self.where()} answered HTTP {exc.status_code} after retries") from exc
        except openai.APIConnectionError as exc:
            raise ModelUnavailable(f"cannot reach {self.where()}: {_one_sentence(exc)}") from exc
        except openai.OpenAIError as exc:
            raise ModelUnavailable(f"{self.where()} failed: {_one_sentence(exc)}") from exc
        if not getattr(response, "choices", None):
            raise ModelUnavailable(f"{self.where()} returned no choices")
        choice = response.choices[0]
        message = choice.message
        calls = []
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None:
                continue
            calls.append({"id": call.id or f"call_{len(calls) + 1}", "name": function.name or "",
                          "arguments": function.arguments or ""})
        usage = getattr(response, "usage", None)
        return ChatResult(
            content=message.content or "",
            tool_calls=calls,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=choice.finish_reason or "",
        )


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's text, repaired where the fault is obvious, or None.

    Handles code fences, prose around the object, trailing commas and Python-style literals.
    """
    if not text:
        return None
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip(), flags=re.IGNORECASE)
    candidates = [cleaned]
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start != -1 and end > start:
        candidates.append(cleaned[start:end + 1])
    for candidate in candidates:
        for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
            try:
                value = json.loads(attempt)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
        fixed = re.sub(r",\s*([}\]])", r"\1", candidate)
        fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
        if "'" in fixed and '"' not in fixed:
            fixed = fixed.replace("'", '"')
        try:
            value = json.loads(fixed)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
