"""A scripted OpenAI-compatible server on 127.0.0.1: /v1/chat/completions (tool calls included)
and /v1/embeddings, answering in the API's shapes so the real openai client (and its retries) is
exercised.

A test queues steps; each chat completion takes the next one:

- ``{"tool_calls": [("query_metrics", '{"promql": "..."}'), ...]}``: an assistant message with tool calls;
- ``{"content": "..."}``: an assistant message with text;
- a callable ``(request_json) -> step``: decided from what the model was sent;
- faults from the StandIn layer (``fail_next``, ``throttle_next``, ``hang_next``) come first.

With the script empty it answers ``default`` (a plain final answer). Usage is counted as about
one token per four characters of the request and of the answer, so budgets can be tested.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import deque
from typing import Any, Callable

from tests.standins import Reply, Seen, StandIn

Step = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]

DEFAULT_FINAL = json.dumps({"summary": "The evidence gathered supports the top hypothesis.", "hypotheses": [],
                            "open_questions": [], "next_steps": []})


class OpenAIStandIn(StandIn):
    def __init__(self, default: Step | None = None) -> None:
        super().__init__()
        self.script: deque[Step] = deque()
        self.default: Step = default or {"content": DEFAULT_FINAL}
        self.chats: list[dict[str, Any]] = []  # every chat request body, in order
        self._script_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def queue(self, *steps: Step) -> "OpenAIStandIn":
        with self._script_lock:
            self.script.extend(steps)
        return self

    def respond(self, request: Seen) -> Reply:
        if request.method != "POST":
            return Reply.json(405, {"error": {"message": "POST only"}})
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return Reply.json(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
        if request.path.endswith("/chat/completions"):
            return self._chat(body)
        if request.path.endswith("/embeddings"):
            return self._embeddings(body)
        return Reply.json(404, {"error": {"message": f"no route {request.path}"}})

    def _chat(self, body: dict[str, Any]) -> Reply:
        with self._script_lock:
            self.chats.append(body)
            step = self.script.popleft() if self.script else self.default
        if callable(step):
            step = step(body)
        if "status" in step:
            return Reply.json(step["status"], {"error": {"message": step.get("message", "scripted error"),
                                                         "type": step.get("type", "server_error")}})
        prompt_chars = len(json.dumps(body.get("messages", [])))
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        finish = "stop"
        if step.get("tool_calls"):
            message["tool_calls"] = [
                {"id": f"call_{len(self.chats)}_{i}", "type": "function",
                 "function": {"name": name, "arguments": arguments}}
                for i, (name, arguments) in enumerate(step["tool_calls"])
            ]
            finish = "tool_calls"
        completion_chars = len(json.dumps(message))
        usage = {"prompt_tokens": math.ceil(prompt_chars / 4), "completion_tokens": math.ceil(completion_chars / 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if "usage" in step:
            usage.update(step["usage"])
        return Reply.json(200, {
            "id": f"chatcmpl-{len(self.chats)}", "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        })

    def _embeddings(self, body: dict[str, Any]) -> Reply:
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        data = []
        for i, text in enumerate(inputs):
            vector = [0.0] * 64
            for word in str(text).lower().split():
                vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % 64] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vector]})
        return Reply.json(200, {"object": "list", "data": data, "model": body.get("model", "scripted"),
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    # what the model was sent
    def prompt_text(self, index: int = -1) -> str:
        return json.dumps(self.chats[index].get("messages", []))

    def tool_messages(self, index: int = -1) -> list[dict[str, Any]]:
        return [m for m in self.chats[index].get("messages", []) if m.get("role") == "tool"]
