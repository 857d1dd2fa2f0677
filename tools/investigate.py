"""The deterministic investigation: gather every registered source concurrently, then analyse.

``run_investigation(request, settings)`` returns the diagnosis and the observations it was drawn
from. Each source (tools/sources.py) runs under its own deadline; a source that fails or times out
is reported in ``sources`` with its reason and the investigation goes on with the others.
``on_progress`` hears about each source as it finishes (the CLI's live display and the Slack
thread use it). Nothing here knows the bot: redaction comes in as a function.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from tools.analysis import Observations, analyse
from tools.diagnosis import Diagnosis, SourceReport, iso
from tools.http import SourceError
from tools.memory.source import attach_runbook
from tools.source_api import GatherRequest, Gathered, ProgressFn, Source
from tools.sources import SOURCES
from tools.timeparse import MAX_WINDOW_S, TimeInputError, parse_duration, parse_instant

logger = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request that cannot be investigated, as one sentence naming the fix."""


@dataclass
class InvestigationRequest:
    symptom: str
    service: str | None = None
    at: float | None = None  # unix seconds; None = now
    window: str | None = None  # overrides the config's window


@dataclass
class Investigation:
    """A finished investigation: the diagnosis and the observations it was drawn from (for charts)."""

    diagnosis: Diagnosis
    observations: Observations


def parse_at(text: str | None, now: float | None = None) -> float:
    """ISO-8601 (or 'now') -> unix seconds; a time in the future is an error."""
    now = time.time() if now is None else now
    if text is None or text.strip().lower() in ("", "now"):
        return now
    try:
        at = parse_instant(text, "--at")
    except TimeInputError as exc:
        raise RequestError(str(exc)) from None
    if at > now + 60:
        raise RequestError(f"--at {text} is in the future; investigate a time that has passed (or omit --at for now)")
    return at


async def gather_one(source: Source, request: GatherRequest, timeout_s: float,
                     on_progress: ProgressFn | None) -> Gathered:
    """One source under its deadline: whatever goes wrong becomes its report, never an exception.
    What the source kept before failing or running out of time is used."""
    started = time.perf_counter()
    described = source.describe(request.settings)
    gathered = Gathered()
    try:
        gathered.report = await asyncio.wait_for(source.gather(request, gathered), timeout_s)
    except asyncio.TimeoutError:
        gathered.report = SourceReport("error", f"{described} took longer than {timeout_s:.0f} s and was abandoned; "
                                                "raise investigation.source_timeout or check the source")
    except SourceError as exc:
        gathered.report = SourceReport("error", str(exc))
    except Exception:  # a source must never abort the investigation
        # The responder gets words; the Python details go to the log for whoever fixes it.
        logger.exception("source %s failed unexpectedly", source.name)
        gathered.report = SourceReport("error", f"{described} answered something Sleuth could not read; "
                                                "the other sources were used (details in the bot's log)")
    gathered.report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    if on_progress:
        on_progress(source.name, gathered.report)
    return gathered


def _validate(request: InvestigationRequest) -> str:
    symptom = (request.symptom or "").strip()
    if not symptom:
        raise RequestError("the symptom is empty; describe what is wrong, e.g. \"checkout returns 500s\"")
    if request.service is not None and not re.fullmatch(r"[A-Za-z0-9_.:/-]{1,128}", request.service):
        raise RequestError(f"service {request.service!r} is not a valid service name (letters, digits, - _ . : /)")
    return symptom


async def run_investigation(request: InvestigationRequest, settings: Any, *, redact: Callable[[str], str] = str,
                            redaction_key: str = "", on_progress: ProgressFn | None = None) -> Investigation:
    """Run the deterministic investigation. Raises RequestError for a request that makes no sense;
    never raises for a failing source. ``redact`` is applied to log lines before they are mined."""
    started = time.perf_counter()
    symptom = _validate(request)
    if not any(source.configured(settings) for source in SOURCES):
        raise RequestError("no evidence source is configured; pass --config sleuth.yml (see sleuth.example.yml) "
                           "or --scenario DIR")
    now = time.time()
    at = request.at if request.at is not None else now
    if at > now + 60:
        raise RequestError(f"the time {iso(at)} is in the future; investigate a time that has passed")
    try:
        window_s = parse_duration(request.window or settings.investigation.window, limit_s=MAX_WINDOW_S,
                                  what="the window")
    except ValueError as exc:
        raise RequestError(f"{exc}; narrow it (e.g. --window 2h) so the onset means something") from exc
    baseline_s = parse_duration(settings.investigation.baseline)
    lookback_s = parse_duration(settings.investigation.change_lookback)
    timeout_s = parse_duration(settings.investigation.source_timeout)
    window_start = at - window_s

    asked = GatherRequest(settings=settings, symptom=symptom, service=request.service, at=at,
                          window_start=window_start, baseline_s=baseline_s, lookback_s=lookback_s,
                          redact=redact, redaction_key=redaction_key)
    results = await asyncio.gather(*(gather_one(source, asked, timeout_s, on_progress) for source in SOURCES))
    gathered = dict(zip((source.name for source in SOURCES), results))
    gathered_at = time.perf_counter()
    extras: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for result in results:
        extras.update(result.extras)
        fields.update(result.observations)

    known = extras.get("known") or []
    if request.service and known and request.service not in known and request.service not in settings.services \
            and request.service not in extras.get("log_services", set()):
        names = ", ".join(known[:12])
        raise RequestError(f"unknown service {request.service!r}; services seen in the metrics: {names}")

    # The metrics history decides the frame: a young stack gets a shorter baseline and a finer step.
    timing = extras.get("timing")
    step_s = settings.metrics.step_s
    limits: list[str] = []
    if timing is not None:
        window_start, baseline_s, step_s = timing.window_start, timing.baseline_s, timing.step_s
        limits += timing.limits
    observations = Observations(
        symptom_text=symptom, service=request.service, at=at, window_start=window_start,
        baseline_s=baseline_s, change_lookback_s=lookback_s, step_s=step_s, limits=limits,
        topology={name: svc.depends_on for name, svc in settings.services.items()},
        owners={name: svc.owner for name, svc in settings.services.items() if svc.owner},
        **fields,
    )
    diagnosis = analyse(observations)
    analysed_at = time.perf_counter()
    diagnosis.sources = {name: result.report for name, result in gathered.items()}
    diagnosis.similar_incidents = [r.to_similar_incident() for r in extras.get("similar_results") or []]
    diagnosis.sources["runbooks"] = await attach_runbook(settings, symptom, diagnosis)
    done = time.perf_counter()
    diagnosis.timings = {
        "gather_ms": round((gathered_at - started) * 1000, 1),
        "analyse_ms": round((analysed_at - gathered_at) * 1000, 1),
        "runbook_ms": round((done - analysed_at) * 1000, 1),
        "total_ms": round((done - started) * 1000, 1),
    }
    return Investigation(diagnosis, observations)
