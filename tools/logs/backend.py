"""What a log backend offers the logs source: mining a window into templates, and a search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from tools.logs.records import LogRecord
from tools.logs.templates import TemplateMiner


@dataclass
class MineReport:
    """What mining said about itself: queries run, the query per component, links and caveats."""

    queries: int = 0
    log_queries: dict[str, str] = field(default_factory=dict)
    log_links: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class LogBackend(Protocol):
    """One place logs are kept (files, Loki...). tools/logs/config.py opens the configured ones."""

    def describe(self) -> str:
        """A few words for a failure sentence, e.g. ``Loki at http://loki:3100``."""
        ...

    async def mine(self, miner: TemplateMiner, components: list[str] | None, start: float, split: float,
                   end: float, *, redact: Callable[[str], str], redaction_key: str, found: MineReport) -> None:
        """Add the lines of ``components`` (None: every service it knows) in [start, end] to ``miner``,
        redacted first. ``split`` is the window's start: a backend with a line limit reads both sides
        of it separately, so a busy window cannot crowd the baseline out."""
        ...

    async def search(self, service: str, start: float, end: float, *, levels: list[str],
                     text: str | None) -> tuple[list[LogRecord], str]:
        """One service's lines in [start, end] at the given levels (all if empty) containing ``text``;
        and the query as the backend ran it."""
        ...

    async def aclose(self) -> None:
        ...
