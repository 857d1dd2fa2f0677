"""What the agent's graph needs to run, injected per call through LangGraph's runtime context.

:class:`AgentContext` is built by :class:`bot.agent.Agent` for each invocation (``graph.invoke(...,
context=ctx)``) and read by the nodes as ``runtime.context``. It is never checkpointed: the state
holds the conversation, the context holds the process's things (the configuration, the redactor,
the clock, the model client, the progress callback, the chart drawer). A leaf beside bot.turns: it
imports nothing from bot.agent, bot.graph, bot.followup or bot.reasoning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bot.turns import ProgressFn

if TYPE_CHECKING:
    from bot.config import SleuthConfig
    from bot.llm import ModelClient
    from bot.safety import Redactor

log = logging.getLogger("sleuth.agent")


@dataclass(frozen=True)
class AgentContext:
    """The run-scoped dependencies of the graph's nodes (and of bot.followup and bot.reasoning)."""

    config: SleuthConfig
    redactor: Redactor
    clock: Callable[[], float]
    model_client: Callable[[], ModelClient | None]  # None when no model is configured
    progress: ProgressFn | None = None  # hears about each source of the investigation as it finishes
    charts: ChartDrawer | None = None  # None: no charts are drawn


class ChartDrawer:
    """Draws an investigation's charts into ``folder`` (one sub-folder per thread when
    ``per_thread``). With an ``executor`` (a concurrent.futures Executor, e.g. a one-process pool)
    they are drawn beside the conversation: :meth:`draw` names the files at once and :meth:`wait`
    waits for them. Without one they are drawn before :meth:`draw` returns."""

    def __init__(self, folder: Path, *, per_thread: bool = True, executor: Any = None) -> None:
        self.folder = Path(folder)
        self.per_thread = per_thread
        self.executor = executor
        self.jobs: dict[str, Any] = {}

    def draw(self, thread_id: str, result: Any, diagnosis: dict[str, Any]) -> list[str]:
        """The chart files of the investigation ``result``; a folder that cannot be written is
        noted on ``diagnosis`` and no chart is returned."""
        from tools.charts import chart_specs, render_charts

        folder = self.folder
        if self.per_thread:
            folder = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", thread_id)
        specs = chart_specs(result.diagnosis, result.observations)
        try:
            if self.executor is not None and specs:
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    self.jobs[thread_id] = self.executor.submit(render_charts, specs, folder)
                    return [str(folder / spec.filename) for spec in specs]
                except RuntimeError as exc:  # the executor is shutting down or broken: draw here instead
                    log.warning("chart worker unavailable (%s); drawing in this thread", exc)
            return [str(p) for p in render_charts(specs, folder)]
        except OSError as exc:
            diagnosis.setdefault("notes", []).append(f"charts could not be written: {exc.strerror or exc}")
            return []

    def wait(self, thread_id: str, timeout: float = 60.0) -> None:
        """Wait until the charts of the thread's last investigation are drawn (at most ``timeout``
        seconds); a chart that failed or is late is logged and left out, never raised."""
        job = self.jobs.pop(thread_id, None)
        if job is None:
            return
        try:
            job.result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a missing chart never costs the diagnosis
            log.warning("charts for %s were not drawn: %s: %s", thread_id, type(exc).__name__, exc)
