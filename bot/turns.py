"""The conversation's plain shapes, shared by the agent, its graph and the model's part.

A leaf: it imports nothing from bot.agent, bot.graph, bot.followup or bot.reasoning.

- :class:`Turn`: what one step of the conversation produced, for the CLI or Slack to show;
- :class:`AgentState`: the graph's checkpointed state (JSON-plain; its keys are what existing
  checkpoints hold, so they are never renamed);
- :func:`empty_usage`: the model's usage before it has run;
- :func:`run_sync`: a coroutine run to completion from synchronous code.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from tools.source_api import ProgressFn  # noqa: F401 - the one definition; the agent's modules take it from here



@dataclass
class Turn:
    """What one step of the conversation produced, for the CLI or Slack to show."""

    thread_id: str
    kind: str  # question | diagnosis | answer | decision | error
    text: str
    diagnosis: dict[str, Any] | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)  # ids an answer relied on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AgentState(TypedDict, total=False):
    thread_id: str
    event: dict[str, Any]
    request: dict[str, Any]
    scope: dict[str, Any]
    diagnosis: dict[str, Any] | None
    ledger: dict[str, dict[str, Any]]
    pending: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    charts: list[str]
    usage: dict[str, Any]
    turn: dict[str, Any]
    route: str


def empty_usage(name: str | None, status: str) -> dict[str, Any]:
    return {"name": name, "status": status, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
            "tool_calls": 0, "limits": [], "tool_output_raw_chars": 0, "tool_output_chars": 0,
            "compaction_ratio": None, "prompt_tokens_if_raw": 0}


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code, inside or outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def as_list(value: Any) -> list[Any]:
    """A model's field as a list: None is empty, a single value is a list of one."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
