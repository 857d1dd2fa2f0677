"""The changes source as the registry lists it: gathering for the investigation, and ``list_changes``."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from tools.changes.config import gather_changes
from tools.compaction import cap, compact_list, raw_chars
from tools.diagnosis import SourceReport, iso
from tools.http import SourceError
from tools.source_api import (GatherRequest, Gathered, ModelTool, Source, ToolArgumentError, ToolArguments,
                              ToolContext, ToolResult, read_guidance)


def describe(settings: Any) -> str:
    return "changes"


def configured(settings: Any) -> bool:
    return settings.changes.configured


async def gather(request: GatherRequest, found: Gathered) -> SourceReport:
    """Every change from the change lookback before the baseline to the end of the window."""
    config = request.settings.changes
    if not config.configured:
        return SourceReport("not_configured",
                                     "no change feed in the config (changes.files, changes.webhook or changes.github)")
    start, end = request.baseline_start - request.lookback_s, request.at
    changes, failures = await gather_changes(config, start, end)
    feeds = [str(p) for p in config.files]
    if config.webhook:
        feeds.append(f"webhook store {config.webhook.store}")
    if config.github:
        feeds += [f"GitHub deployments of {r.repo}" for r in config.github.repos]
    fields = {"changes": changes, "change_queries": [f"changes {iso(start)}..{iso(end)} from {', '.join(feeds)}"]}
    found.keep(fields)
    if failures and not changes:
        return SourceReport("error", "; ".join(failures), queries=len(feeds))
    if failures:
        return SourceReport("ok", f"{len(changes)} changes; but " + "; ".join(failures), queries=len(feeds))
    if not changes:
        return SourceReport("no_data", "no changes recorded in the window", queries=len(feeds))
    return SourceReport("ok", f"{len(changes)} changes", queries=len(feeds))


# --- the model's tool ---------------------------------------------------------------------------


class ListChanges(ToolArguments):
    service: str | None = None
    minutes: int | None = None

    @field_validator("minutes", mode="before")
    @classmethod
    def _whole_minutes(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return value


def list_changes(ctx: ToolContext, args: ListChanges) -> ToolResult:
    service, minutes = args.service, args.minutes
    scope = ctx.scope
    if service:
        service = ctx.service(service)
    if not ctx.settings.changes.configured:
        raise SourceError("no change feed is configured")
    start = scope.start
    if minutes is not None:
        if minutes <= 0:
            raise ToolArgumentError("minutes must be positive")
        start = max(scope.start, scope.end - minutes * 60)
    changes, failures = ctx.run(gather_changes(ctx.settings.changes, start, scope.end))
    items = [{"id": c.id, "time": iso(c.ts), "service": c.service, "kind": c.kind, "summary": c.summary,
              "version": c.version, "previous_version": c.previous_version, "author": c.author}
             for c in sorted(changes, key=lambda c: c.ts, reverse=True) if not service or c.service == service]
    compact = compact_list(items, k=20, cap_chars=ctx.cap_chars)
    if failures:
        compact["failures"] = failures
    query = f"changes {iso(start)}..{iso(scope.end)}" + (f" for {service}" if service else "")
    summary = f"{len(items)} changes" + (f" to {service}" if service else "") + f" in {iso(start)}..{iso(scope.end)}"
    changed: dict[str, list[str]] = {}
    for item in items:
        changed.setdefault(item["service"], [])
        if item["kind"] not in changed[item["service"]]:
            changed[item["service"]].append(item["kind"])
    # What the listing covers, for checking a claim against it: a service it covers and that is
    # absent from ``changed`` had no change in the span (only when no feed failed).
    covered = ([service] if service else list(scope.services)) if not failures else []
    return ToolResult("list_changes", {"service": service, "minutes": minutes}, cap(compact, ctx.cap_chars),
                      raw_chars(items), {"source": "changes", "query": query, "summary": summary,
                                         "component": service,
                                         "details": {"compact": compact, "changed": changed, "covered": covered,
                                                     "span": [iso(start), iso(scope.end)]}})


GUIDANCE = read_guidance(__file__)

SOURCE = Source(
    name="changes", describe=describe, configured=configured, gather=gather,
    tools=(ModelTool("list_changes", ListChanges, list_changes, GUIDANCE["list_changes"]),),
)
