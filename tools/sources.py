"""The registry of evidence sources: the one list of them, in the order they are reported.

The investigation (tools/investigate.py) gathers from every source here; the agent's toolbox
(bot/agent_tools.py) offers every source's model tools. A new source is a package beside the
others exposing ``SOURCE`` (see tools/source_api.py), and one line here.
"""

from __future__ import annotations

from tools.changes.source import SOURCE as CHANGES
from tools.logs.source import SOURCE as LOGS
from tools.memory.source import SOURCE as INCIDENTS
from tools.metrics.source import SOURCE as METRICS
from tools.source_api import ModelTool, Source

SOURCES: tuple[Source, ...] = (METRICS, LOGS, CHANGES, INCIDENTS)


def source_tools() -> dict[str, ModelTool]:
    """Every source's model tools by name, in registry order."""
    return {tool.name: tool for source in SOURCES for tool in source.tools}
