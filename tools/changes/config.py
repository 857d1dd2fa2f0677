"""``changes:`` in sleuth.yml, and every configured feed read at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import BaseModel, Field

from tools.http import SourceError


from tools.changes.github import GitHubConfig, GitHubDeployments
from tools.changes.records import Change, ChangeStore, read_change_file
from tools.changes.webhook import WebhookConfig


class ChangesConfig(BaseModel):
    """``changes:`` in sleuth.yml."""

    model_config = {"extra": "forbid"}

    files: list[Path] = Field(default_factory=list)
    webhook: WebhookConfig | None = None
    github: GitHubConfig | None = None

    @property
    def configured(self) -> bool:
        return bool(self.files or self.webhook or self.github)


async def gather_changes(config: ChangesConfig, start: float, end: float) -> tuple[list[Change], list[str]]:
    """Every change in [start, end] from all configured feeds, and the feeds' failures.

    A failing feed does not hide the others: its reason comes back beside the changes found.
    """
    changes: list[Change] = []
    failures: list[str] = []
    for path in config.files:
        try:
            changes.extend(read_change_file(path, start, end))
        except SourceError as exc:
            failures.append(str(exc))
    if config.webhook:
        try:
            store = ChangeStore(config.webhook.store)
            try:
                changes.extend(store.between(start, end))
            finally:
                store.close()
        except sqlite3.Error as exc:
            failures.append(f"change store {config.webhook.store} unreadable: {exc}")
    if config.github and config.github.repos:
        client = GitHubDeployments(config.github)
        try:
            changes.extend(await client.between(start, end))
        except SourceError as exc:
            failures.append(str(exc))
        except Exception:  # noqa: BLE001 - one feed's surprise must not drop the others' changes
            failures.append("GitHub answered something Sleuth could not read; the other change feeds are used")
        finally:
            await client.aclose()
    unique = {c.id: c for c in sorted(changes, key=lambda c: c.ts)}
    return list(unique.values()), failures
