"""The logs source as the registry lists it: mining for the investigation, and ``search_logs``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from tools.compaction import cap, raw_chars
from tools.diagnosis import SourceReport, iso
from tools.http import SourceError
from tools.logs.backend import MineReport
from tools.logs.compact import compact_logs
from tools.logs.config import describe as describe_logs
from tools.logs.config import open_backends
from tools.logs.records import LEVELS
from tools.logs.templates import TemplateMiner
from tools.source_api import (GatherRequest, Gathered, ModelTool, Source, ToolArguments, ToolContext, ToolResult,
                              read_guidance)


def describe(settings: Any) -> str:
    return describe_logs(settings.logs)


def configured(settings: Any) -> bool:
    return settings.logs.configured


async def gather(request: GatherRequest, found: Gathered) -> SourceReport:
    """Mine the logs of every service the backends know, over the baseline and the window.

    Backends are read one after the other into one miner; what each finished is kept as it
    finishes, so a backend that fails or runs out of time loses only its own lines.
    """
    settings = request.settings
    if not settings.logs.configured:
        return SourceReport("not_configured", "no log source in the config (logs.files or logs.loki)")
    start, split, end = request.baseline_start, request.window_start, request.at
    miner = TemplateMiner()
    mined = MineReport()
    failures: list[str] = []
    for backend in open_backends(settings.logs, max_components=settings.investigation.max_components):
        try:
            await backend.mine(miner, None, start, split, end, redact=request.redact,
                               redaction_key=request.redaction_key, found=mined)
        except SourceError as exc:
            failures.append(str(exc))
            continue
        finally:
            await backend.aclose()
        found.keep({"templates": list(miner.templates.values()), "log_queries": dict(mined.log_queries),
                    "log_links": dict(mined.log_links)},
                   log_services={t.service for t in miner.templates.values()})
    if failures and not miner.lines:
        return SourceReport("error", "; ".join(failures), queries=mined.queries)
    if not miner.lines:
        return SourceReport("no_data", "no log lines in the window for the services investigated",
                            queries=mined.queries)
    reason = f"{miner.lines} lines mined into {len(miner.templates)} templates"
    if failures:
        reason += "; but " + "; ".join(failures)
    return SourceReport("ok", "; ".join([reason] + mined.notes), queries=mined.queries)


# --- the model's tool ---------------------------------------------------------------------------


class SearchLogs(ToolArguments):
    service: str
    text: str | None = None
    level: Literal["debug", "info", "warn", "error", "fatal"] | None = None

    @field_validator("level", mode="before")
    @classmethod
    def _level_word(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower().strip()
            return "warn" if value == "warning" else value
        return value


def search_logs(ctx: ToolContext, args: SearchLogs) -> ToolResult:
    service = ctx.service(args.service)
    text, level = args.text, args.level
    scope = ctx.scope
    if not ctx.settings.logs.configured:
        raise SourceError("no log source is configured")
    levels = list(LEVELS[LEVELS.index(level):]) if level else []
    records: list[dict[str, Any]] = []
    queries: list[str] = []
    for backend in open_backends(ctx.settings.logs, max_components=ctx.settings.investigation.max_components):
        async def fetch(backend=backend):
            try:
                return await backend.search(service, scope.start, scope.end, levels=levels, text=text)
            finally:
                await backend.aclose()

        found, query = ctx.run(fetch())
        queries.append(query)
        records += [{"ts": r.ts, "level": r.level, "message": r.message} for r in found]
    if ctx.redact is not None:  # before mining: a template's masks would hide a secret from redaction
        for record in records:
            record["message"] = ctx.redact(record["message"])
    compact = compact_logs(records, cap_chars=ctx.cap_chars)
    where = f"{iso(scope.start)}..{iso(scope.end)}"
    summary = f"{len(records)} {service} log lines{' matching ' + repr(text) if text else ''} in {where}"
    return ToolResult("search_logs", {"service": service, "text": text, "level": level},
                      cap(compact, ctx.cap_chars), raw_chars(records),
                      {"source": "logs", "query": "; ".join(queries) + f" in {where}", "summary": summary,
                       "component": service, "details": {"compact": compact}})


GUIDANCE = read_guidance(__file__)

SOURCE = Source(
    name="logs", describe=describe, configured=configured, gather=gather,
    tools=(ModelTool("search_logs", SearchLogs, search_logs, GUIDANCE["search_logs"]),),
)
