"""``logs:`` in sleuth.yml, and the backends it opens: the one place a new log backend is listed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from tools.logs.backend import LogBackend
from tools.logs.files import FilesBackend
from tools.logs.loki import LokiBackend, LokiConfig


class LogsConfig(BaseModel):
    """``logs:`` in sleuth.yml: files, Loki, or both."""

    model_config = {"extra": "forbid"}

    files: list[Path] = Field(default_factory=list)
    loki: LokiConfig | None = None
    max_lines: int = Field(2_000_000, ge=1, description="lines read per investigation, at most")

    @property
    def configured(self) -> bool:
        return bool(self.files or self.loki)


def open_backends(config: LogsConfig, *, max_components: int = 40) -> list[LogBackend]:
    """The configured log backends, in the order they are read (files first)."""
    backends: list[LogBackend] = []
    if config.files:
        backends.append(FilesBackend(config.files, config.max_lines))
    if config.loki:
        backends.append(LokiBackend(config.loki, max_components))
    return backends


def describe(config: LogsConfig) -> str:
    """The log source in a few words, for a failure sentence."""
    kinds = [backend.describe() for backend in open_backends(config)]
    return f"logs ({', '.join(kinds)})" if kinds else "logs"
