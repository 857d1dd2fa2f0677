"""An OpenAI-compatible stand-in on 127.0.0.1 that replays what a real model server answered.

../shared/model-transcripts/*.jsonl hold Sleuth's requests to llama.cpp's ``llama-server`` (Gemma 3
270M, Qwen2.5-0.5B) and the server's responses, joined by ``id``. Sleuth's requests have changed
since (prompts rendered once, roles merged), so a request is matched to a recording by what it asks,
not byte for byte:

- its task: the final answer of an investigation ("final"), or a follow-up, keyed by the responder's
  message as it appears in the fenced ``slack`` block after "The message:";
- whether it carried ``tools``: a recording answers only a request of the same shape.

Recordings for one key are served in the order they were recorded. A recorded ``cancelled`` (the
client gave up before the server answered) is replayed as a hang of ``hang_s`` seconds, so the
client's own timeout fires as it did; a recorded HTTP error is replayed with its status and body.
A request with no recording left is answered 501 with a body saying so: the stand-in never invents
what a model would have said.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from tests.standins import Reply, Seen, StandIn

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "model-transcripts"

_MESSAGE = re.compile(r"The message:\n(?:Sleuth's check:[^\n]*\n)?The block below is untrusted data from slack "
                      r"\(fence [0-9a-f]+\)[^\n]*\n<<<UNTRUSTED:slack:[0-9a-f]+>>>\n(.*?)\n<<<END UNTRUSTED", re.S)
_FINAL = "When you have finished testing, answer with one JSON object and nothing else"


def request_key(body: dict[str, Any]) -> tuple[str, str | None]:
    """("followup", the responder's message) or ("final", None) for a chat request body."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content") or ""
        found = _MESSAGE.findall(content)
        if found:
            return "followup", found[-1].strip()
        if _FINAL in content:
            return "final", None
    return "other", None


def load_transcript(name: str) -> list[dict[str, Any]]:
    """One transcript as exchanges in recorded order: key, tools, and the outcome."""
    path = TRANSCRIPTS / f"{name}.jsonl"
    requests: dict[int, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["phase"] == "request":
            requests[record["id"]] = record["request"]
            continue
        request = requests[record["id"]]
        out.append({"id": record["id"], "key": request_key(request), "tools": bool(request.get("tools")),
                    "phase": record["phase"], "status": record.get("status"), "response": record.get("response"),
                    "elapsed_s": record.get("elapsed_s"), "request": request})
    return out


class ReplayStandIn(StandIn):
    """Serves recorded responses to the requests they answered (see the module's docstring)."""

    def __init__(self, *names: str, hang_s: float = 30.0) -> None:
        super().__init__()
        self.hang_s = hang_s
        self.recorded = [exchange for name in names for exchange in load_transcript(name)]
        self.unused = list(self.recorded)
        self.chats: list[dict[str, Any]] = []  # every chat request body, in order
        self.served: list[dict[str, Any]] = []  # per request: key, tools, what was served (recorded id or None)
        self._pick = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def respond(self, request: Seen) -> Reply:
        body = json.loads(request.body or b"{}")
        key, tools = request_key(body), bool(body.get("tools"))
        with self._pick:
            self.chats.append(body)
            chosen = next((e for e in self.unused if e["key"] == key and e["tools"] == tools), None)
            if chosen is not None:
                self.unused.remove(chosen)
            self.served.append({"key": key, "tools": tools, "id": chosen["id"] if chosen else None,
                                "phase": chosen["phase"] if chosen else None, "status": chosen["status"] if chosen else 501})
        if chosen is None:
            return Reply.json(501, {"error": {"code": 501, "type": "not_recorded",
                                              "message": f"no recorded answer for a {key[0]} request "
                                                         f"{'with' if tools else 'without'} tools"}})
        if chosen["phase"] == "cancelled":
            self._closing.wait(self.hang_s)  # the real server was still writing when the client gave up
            return Reply.json(504, {"error": {"message": "the replayed answer never came"}})
        return Reply.json(int(chosen["status"]), chosen["response"])
