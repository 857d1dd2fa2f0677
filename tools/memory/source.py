"""The memory as a source: similar past incidents for the investigation, runbooks for the top
hypothesis, and the model's ``similar_incidents`` tool."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tools.compaction import cap, compact_list, raw_chars
from tools.diagnosis import Diagnosis, Evidence, SourceReport
from tools.http import SourceError
from tools.source_api import GatherRequest, Gathered, ModelTool, Source, ToolArguments, ToolContext, ToolResult, read_guidance


def describe(settings: Any) -> str:
    return "incidents (past-incident memory)"


def configured(settings: Any) -> bool:
    return settings.memory is not None


async def gather(request: GatherRequest, found: Gathered) -> SourceReport:
    """The past incidents most like the symptom (on the service, when one is named)."""
    memory_config = request.settings.memory
    if memory_config is None:
        return SourceReport("not_configured",
                                     "no past-incident memory in the config (memory:); fill one with sleuth index add")
    from index.errors import SleuthIndexError
    from index.store import Memory

    def search() -> list:
        memory = Memory(memory_config)
        if memory.is_empty():
            return []
        return memory.find_similar_incidents(request.symptom, service=request.service, k=5)

    try:
        similar = await asyncio.to_thread(search)
    except SleuthIndexError as exc:
        return SourceReport("error", str(exc), queries=1)
    query = f"similar incidents to {request.symptom!r}" + (f" on {request.service}" if request.service else "") + \
        f" in {memory_config.where()}"
    fields = {"similar": [r.to_dict() for r in similar], "similar_query": query}
    extras = {"similar_results": similar}
    found.keep(fields, **extras)
    if not similar:
        return SourceReport("no_data", f"{memory_config.where()} holds no past incidents; "
                                                "add some with sleuth index add", queries=1)
    return SourceReport("ok", f"{len(similar)} similar past incidents", queries=1)


async def attach_runbook(settings: Any, symptom: str, diagnosis: Diagnosis) -> SourceReport:
    """The runbook for the top hypothesis's cause, as evidence behind the proposed mitigations."""
    live = [h for h in diagnosis.hypotheses if h.status != "refuted"]
    if settings.memory is None or not live:
        return SourceReport("not_configured", "no past-incident memory in the config (memory:)")
    from index.errors import SleuthIndexError
    from index.store import Memory

    category = live[0].category
    query = f"{symptom}. {live[0].statement}"
    started = time.perf_counter()
    try:
        found = await asyncio.to_thread(lambda: Memory(settings.memory).find_runbooks(query, category=category, k=5))
    except SleuthIndexError as exc:
        return SourceReport("error", str(exc), queries=1)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    found = [book for book in found if category in book.categories]  # a runbook for this cause, or none
    if not found:
        return SourceReport("no_data", f"no runbook for {category}; add some with sleuth index add --runbooks DIR",
                            elapsed_ms=elapsed, queries=1)
    book = found[0]
    diagnosis.evidence.append(Evidence(
        id="r1", source="runbooks", query=f"runbooks for {category} like {symptom!r} in {settings.memory.where()}",
        summary=f"runbook '{book.title}' ({book.source or book.id}): check, measure, triage, remediate, verify",
        score=round(book.similarity, 3), component=live[0].component,
        details={"runbook_id": book.id, "categories": book.categories},
    ))
    for mitigation in diagnosis.mitigations:
        mitigation.evidence.append("r1")
    return SourceReport("ok", f"runbook '{book.title}'", elapsed_ms=elapsed, queries=1)


# --- the model's tool ---------------------------------------------------------------------------


class SimilarIncidents(ToolArguments):
    text: str


def similar_incidents(ctx: ToolContext, args: SimilarIncidents) -> ToolResult:
    from index.store import Memory

    text = args.text
    if ctx.settings.memory is None:
        raise SourceError("no past-incident memory is configured")
    found = Memory(ctx.settings.memory).find_similar_incidents(text[:2000], k=5)
    items = [{"id": r.id, "title": r.title, "similarity": round(r.similarity, 3), "category": r.category,
              "mitigations": r.mitigations, "root_cause": r.root_cause[:300], "why": r.why} for r in found]
    compact = compact_list(items, k=5, cap_chars=ctx.cap_chars)
    summary = f"{len(items)} similar past incidents" + (f", closest {items[0]['id']} ({items[0]['category']})"
                                                        if items else "")
    return ToolResult("similar_incidents", {"text": text}, cap(compact, ctx.cap_chars), raw_chars(items),
                      {"source": "incidents", "query": f"similar incidents to {text[:200]!r}",
                       "summary": summary, "details": {"compact": compact}})


GUIDANCE = read_guidance(__file__)

SOURCE = Source(
    name="incidents", describe=describe, configured=configured, gather=gather,
    tools=(ModelTool("similar_incidents", SimilarIncidents, similar_incidents, GUIDANCE["similar_incidents"]),),
)
