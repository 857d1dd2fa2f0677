"""The deterministic investigation: gather every source concurrently, then analyse.

``investigate(request, config)`` returns a Diagnosis. Each source runs under its own deadline; a
source that fails or times out is reported in ``sources`` with its reason and the investigation
goes on with the others. ``on_progress`` hears about each source as it finishes, which the CLI's
live display and the Slack thread use.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Iterator

import numpy as np

from bot.config import SleuthConfig, parse_duration
from tools.analysis import Observations, analyse
from tools.changes import gather_changes
from tools.diagnosis import Diagnosis, Evidence, SourceReport, iso
from tools.http import SourceError
from bot.safety import Redactor
from tools.logs import LogRecord, LokiClient, TemplateMiner, build_logql, read_files
from tools.metric_scan import Timing, scan
from tools.metrics import Series, open_backend, parse_selector
from tools.timeparse import MAX_WINDOW_S, TimeInputError, parse_instant

ProgressFn = Callable[[str, SourceReport], None]

logger = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request that cannot be investigated, as one sentence naming the fix."""


@dataclass
class InvestigationRequest:
    symptom: str
    service: str | None = None
    at: float | None = None  # unix seconds; None = now
    window: str | None = None  # overrides the config's window


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


@dataclass
class _Gathered:
    series: dict[str, list[Series]] = field(default_factory=dict)
    signal_names: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    miner: TemplateMiner = field(default_factory=TemplateMiner)
    log_queries: dict[str, str] = field(default_factory=dict)
    log_links: dict[str, str] = field(default_factory=dict)
    changes: list = field(default_factory=list)
    change_queries: list[str] = field(default_factory=list)
    similar: list = field(default_factory=list)  # index.store.SimilarResult
    similar_query: str = ""
    hosts: dict[str, list[str]] = field(default_factory=dict)  # node:<host> -> services on it
    timing: Timing | None = None  # the frame the metrics history allowed


def _describe_source(name: str, config: SleuthConfig) -> str:
    if name == "metrics":
        if config.metrics.prometheus:
            return f"metrics (Prometheus at {config.metrics.prometheus.url})"
        return "metrics (OpenMetrics files)"
    if name == "logs":
        return f"logs (Loki at {config.logs.loki.url})" if config.logs.loki else "logs (files)"
    return "changes"


async def _timed(name: str, work: Awaitable[SourceReport], timeout_s: float, described: str,
                 reports: dict[str, SourceReport], on_progress: ProgressFn | None) -> None:
    started = time.perf_counter()
    try:
        report = await asyncio.wait_for(work, timeout_s)
    except asyncio.TimeoutError:
        report = SourceReport("error", f"{described} took longer than {timeout_s:.0f} s and was abandoned; "
                                       "raise investigation.source_timeout or check the source")
    except SourceError as exc:
        report = SourceReport("error", str(exc))
    except Exception:  # a source must never abort the investigation
        # The responder gets words; the Python details go to the log for whoever fixes it.
        logger.exception("source %s failed unexpectedly", name)
        report = SourceReport("error", f"{described} answered something Sleuth could not read; "
                                       "the other sources were used (details in the bot's log)")
    report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    reports[name] = report
    if on_progress:
        on_progress(name, report)


async def _gather_metrics(config: SleuthConfig, components: list[str] | None, service: str | None, symptom: str,
                          window_start: float, baseline_s: float, end: float, out: _Gathered,
                          known: list[str]) -> SourceReport:
    backend = open_backend(config.metrics)
    if backend is None:
        return SourceReport("not_configured", "no metrics backend in the config (metrics.prometheus or metrics.openmetrics)")
    span: tuple[float, float] | None = None
    try:
        found = await scan(backend, window_start=window_start, baseline_s=baseline_s, at=end,
                           configured_step=config.metrics.step_s, service=service, symptom=symptom,
                           services=config.services, max_components=config.investigation.max_components,
                           components=components)
        if not any(found.series.values()) and hasattr(backend, "span"):
            span = backend.span()
    finally:
        await backend.aclose()
    known.extend(found.known)
    out.series = {component: _distinct(found.series[component]) for component in sorted(found.series)}
    out.signal_names.update(found.signal_names)
    out.links.update(found.links)
    out.hosts = found.hosts
    out.timing = found.timing
    count = sum(len(v) for v in out.series.values())
    notes = "".join(f"; {note}" for note in found.notes)
    if not count:
        if span is not None and (span[1] < window_start - baseline_s or span[0] > end):
            notes += f"; the metrics files hold samples from {iso(span[0])} to {iso(span[1])}, outside it"
        elif span is None and hasattr(backend, "span"):
            notes += "; the metrics files hold no timestamped samples"
        return SourceReport("no_data", f"no series for {service or 'any service'} in the window{notes}",
                            queries=found.queries)
    return SourceReport("ok", f"{count} series from {len(out.series)} components via {backend.name}{notes}",
                        queries=found.queries)


def _distinct(series_list: list[Series]) -> list[Series]:
    """Series in a stable order (answers arrive in any order), each distinct signal once.

    A catalog query over a single series (``avg(x{service="a"})``) returns the very numbers that
    discovery found as ``x{service="a"}``: the discovered one, with its full labels, is kept.
    """
    ordered = sorted(series_list, key=lambda s: (parse_selector(s.query) is None, s.selector, s.query))
    kept: list[Series] = []
    for series in ordered:
        if not any(k.timestamps.size == series.timestamps.size and np.array_equal(k.timestamps, series.timestamps)
                   and np.array_equal(k.values, series.values) for k in kept):
            kept.append(series)
    return kept


def _redacted(records: Iterable[LogRecord], redactor: Redactor) -> Iterator[LogRecord]:
    """Secrets leave a log line before it is mined: a template's masks would hide them from redaction."""
    for record in records:
        yield _redact_record(record, redactor)


def _redact_record(record: LogRecord, redactor: Redactor) -> LogRecord:
    message = redactor.redact(record.message)
    return record if message == record.message else dataclasses.replace(record, message=message)


def _redaction_key(config: SleuthConfig) -> str:
    """What the redaction of cached log files depends on: the safety settings."""
    return "redacted:" + config.safety.model_dump_json()


def _until(stop: threading.Event, records: Iterable[LogRecord], every: int = 2000) -> Iterator[LogRecord]:
    """``records`` until ``stop`` is set (checked every ``every`` records)."""
    for number, record in enumerate(records):
        if number % every == 0 and stop.is_set():
            return
        yield record


async def _gather_logs(config: SleuthConfig, components: list[str] | None, start: float, split: float,
                       end: float, out: _Gathered) -> SourceReport:
    """Mine the logs of ``components`` (None: every service the log source knows)."""
    logs = config.logs
    max_components = config.investigation.max_components
    if not logs.configured:
        return SourceReport("not_configured", "no log source in the config (logs.files or logs.loki)")
    queries = 0
    notes: list[str] = []
    wanted = set(components) if components else None
    redactor = Redactor(config.safety)
    if logs.files:
        stop = threading.Event()

        def mine() -> None:
            records = read_files(logs.files, wanted, start, end, logs.max_lines,
                                 prepare=lambda record: _redact_record(record, redactor),
                                 prepare_key=_redaction_key(config), stop=stop)
            out.miner.add_all(_until(stop, records))

        mining = asyncio.ensure_future(asyncio.to_thread(mine))
        try:
            await asyncio.shield(mining)
        except asyncio.CancelledError:
            # The source timed out: the thread stops within a batch of lines, and what it mined
            # so far is dropped with it (the report says the logs were abandoned).
            stop.set()
            with contextlib.suppress(Exception):
                await mining
            out.miner = TemplateMiner()
            raise
        queries += len(logs.files)
        for component in components or sorted({t.service for t in out.miner.templates.values()}):
            out.log_queries[component] = (
                f"{', '.join(str(p) for p in logs.files)} where service={component}, {iso(start)}..{iso(end)}"
            )
    if logs.loki:
        client = LokiClient(logs.loki)
        try:
            targets = components
            if not targets:
                queries += 1
                targets = (await client.services(start, end))[:max_components]
            for component in targets:
                query = build_logql(component, service_label=logs.loki.service_label, json_lines=logs.loki.json_lines)
                out.log_queries[component] = query
                link = client.link(query, start, end)
                if link:
                    out.log_links[component] = link
                # Before and after the window start separately, so a busy window cannot crowd
                # the baseline out of the line limit (or the other way round).
                halves = await asyncio.gather(*(client.query_range(query, lo, hi) for lo, hi in ((start, split), (split, end))))
                queries += 2
                for records in halves:
                    if len(records) >= logs.loki.limit:
                        notes.append(f"{component}: Loki returned its limit of {logs.loki.limit} lines; counts are a sample")
                    out.miner.add_all(_redacted(records, redactor))
        finally:
            await client.aclose()
    if not out.miner.lines:
        return SourceReport("no_data", "no log lines in the window for the services investigated", queries=queries)
    reason = f"{out.miner.lines} lines mined into {len(out.miner.templates)} templates"
    return SourceReport("ok", "; ".join([reason] + notes), queries=queries)


async def _gather_changes(config: SleuthConfig, start: float, end: float, out: _Gathered) -> SourceReport:
    if not config.changes.configured:
        return SourceReport("not_configured", "no change feed in the config (changes.files, changes.webhook or changes.github)")
    changes, failures = await gather_changes(config.changes, start, end)
    out.changes = changes
    feeds = [str(p) for p in config.changes.files]
    if config.changes.webhook:
        feeds.append(f"webhook store {config.changes.webhook.store}")
    if config.changes.github:
        feeds += [f"GitHub deployments of {r.repo}" for r in config.changes.github.repos]
    out.change_queries = [f"changes {iso(start)}..{iso(end)} from {', '.join(feeds)}"]
    if failures and not changes:
        return SourceReport("error", "; ".join(failures), queries=len(feeds))
    if failures:
        return SourceReport("ok", f"{len(changes)} changes; but " + "; ".join(failures), queries=len(feeds))
    if not changes:
        return SourceReport("no_data", "no changes recorded in the window", queries=len(feeds))
    return SourceReport("ok", f"{len(changes)} changes", queries=len(feeds))


async def _attach_runbook(config: SleuthConfig, symptom: str, diagnosis: Diagnosis) -> SourceReport:
    """The runbook for the top hypothesis's cause, as evidence behind the proposed mitigations."""
    live = [h for h in diagnosis.hypotheses if h.status != "refuted"]
    if config.memory is None or not live:
        return SourceReport("not_configured", "no past-incident memory in the config (memory:)")
    from index.errors import SleuthIndexError
    from index.store import Memory

    category = live[0].category
    query = f"{symptom}. {live[0].statement}"
    started = time.perf_counter()
    try:
        found = await asyncio.to_thread(lambda: Memory(config.memory).find_runbooks(query, category=category, k=5))
    except SleuthIndexError as exc:
        return SourceReport("error", str(exc), queries=1)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    found = [book for book in found if category in book.categories]  # a runbook for this cause, or none
    if not found:
        return SourceReport("no_data", f"no runbook for {category}; add some with sleuth index add --runbooks DIR",
                            elapsed_ms=elapsed, queries=1)
    book = found[0]
    diagnosis.evidence.append(Evidence(
        id="r1", source="runbooks", query=f"runbooks for {category} like {symptom!r} in {config.memory.where()}",
        summary=f"runbook '{book.title}' ({book.source or book.id}): check, measure, triage, remediate, verify",
        score=round(book.similarity, 3), component=live[0].component,
        details={"runbook_id": book.id, "categories": book.categories},
    ))
    for mitigation in diagnosis.mitigations:
        mitigation.evidence.append("r1")
    return SourceReport("ok", f"runbook '{book.title}'", elapsed_ms=elapsed, queries=1)


async def _gather_incidents(config: SleuthConfig, symptom: str, service: str | None, out: _Gathered) -> SourceReport:
    if config.memory is None:
        return SourceReport("not_configured", "no past-incident memory in the config (memory:); fill one with sleuth index add")
    from index.errors import SleuthIndexError
    from index.store import Memory

    memory_config = config.memory

    def search() -> list:
        memory = Memory(memory_config)
        if memory.is_empty():
            return []
        return memory.find_similar_incidents(symptom, service=service, k=5)

    try:
        out.similar = await asyncio.to_thread(search)
    except SleuthIndexError as exc:
        return SourceReport("error", str(exc), queries=1)
    out.similar_query = f"similar incidents to {symptom!r}" + (f" on {service}" if service else "") + \
        f" in {memory_config.where()}"
    if not out.similar:
        return SourceReport("no_data", f"{memory_config.where()} holds no past incidents; add some with sleuth index add",
                            queries=1)
    return SourceReport("ok", f"{len(out.similar)} similar past incidents", queries=1)


def _validate(request: InvestigationRequest) -> str:
    symptom = (request.symptom or "").strip()
    if not symptom:
        raise RequestError("the symptom is empty; describe what is wrong, e.g. \"checkout returns 500s\"")
    if request.service is not None and not re.fullmatch(r"[A-Za-z0-9_.:/-]{1,128}", request.service):
        raise RequestError(f"service {request.service!r} is not a valid service name (letters, digits, - _ . : /)")
    return symptom


@dataclass
class Investigation:
    """A finished investigation: the diagnosis and the observations it was drawn from (for charts)."""

    diagnosis: Diagnosis
    observations: Observations


async def investigate(request: InvestigationRequest, config: SleuthConfig, *,
                      on_progress: ProgressFn | None = None) -> Diagnosis:
    """Run the deterministic investigation. Raises RequestError for a request that makes no sense;
    never raises for a failing source."""
    return (await run_investigation(request, config, on_progress=on_progress)).diagnosis


async def run_investigation(request: InvestigationRequest, config: SleuthConfig, *,
                            on_progress: ProgressFn | None = None) -> Investigation:
    """``investigate``, keeping the observations beside the diagnosis."""
    started = time.perf_counter()
    symptom = _validate(request)
    if not (config.metrics.configured or config.logs.configured or config.changes.configured or config.memory):
        raise RequestError("no evidence source is configured; pass --config sleuth.yml (see sleuth.example.yml) "
                           "or --scenario DIR")
    now = time.time()
    at = request.at if request.at is not None else now
    if at > now + 60:
        raise RequestError(f"the time {iso(at)} is in the future; investigate a time that has passed")
    try:
        window_s = parse_duration(request.window or config.investigation.window, limit_s=MAX_WINDOW_S,
                                  what="the window")
    except ValueError as exc:
        raise RequestError(f"{exc}; narrow it (e.g. --window 2h) so the onset means something") from exc
    baseline_s = parse_duration(config.investigation.baseline)
    lookback_s = parse_duration(config.investigation.change_lookback)
    timeout_s = parse_duration(config.investigation.source_timeout)
    window_start = at - window_s
    logs_start = window_start - baseline_s

    gathered = _Gathered()
    reports: dict[str, SourceReport] = {}
    known: list[str] = []
    await asyncio.gather(
        _timed("metrics", _gather_metrics(config, None, request.service, symptom, window_start, baseline_s, at,
                                          gathered, known),
               timeout_s, _describe_source("metrics", config), reports, on_progress),
        _timed("logs", _gather_logs(config, None, logs_start, window_start, at, gathered),
               timeout_s, _describe_source("logs", config), reports, on_progress),
        _timed("changes", _gather_changes(config, window_start - lookback_s - baseline_s, at, gathered),
               timeout_s, _describe_source("changes", config), reports, on_progress),
        _timed("incidents", _gather_incidents(config, symptom, request.service, gathered),
               timeout_s, "incidents (past-incident memory)", reports, on_progress),
    )
    gathered_at = time.perf_counter()

    if request.service and known and request.service not in known and request.service not in config.services \
            and request.service not in {t.service for t in gathered.miner.templates.values()}:
        names = ", ".join(known[:12])
        raise RequestError(f"unknown service {request.service!r}; services seen in the metrics: {names}")

    # The metrics history decides the frame: a young stack gets a shorter baseline and a finer step.
    timing = gathered.timing
    step_s = config.metrics.step_s
    limits: list[str] = []
    if timing is not None:
        window_start, baseline_s, step_s = timing.window_start, timing.baseline_s, timing.step_s
        limits += timing.limits
    observations = Observations(
        symptom_text=symptom, service=request.service, at=at, window_start=window_start,
        baseline_s=baseline_s, change_lookback_s=lookback_s, step_s=step_s, limits=limits,
        hosts=gathered.hosts,
        topology={name: svc.depends_on for name, svc in config.services.items()},
        owners={name: svc.owner for name, svc in config.services.items() if svc.owner},
        series=gathered.series, signal_names=gathered.signal_names, links=gathered.links,
        templates=list(gathered.miner.templates.values()), log_queries=gathered.log_queries,
        log_links=gathered.log_links,
        changes=gathered.changes, change_queries=gathered.change_queries,
        similar=[r.to_dict() for r in gathered.similar], similar_query=gathered.similar_query,
    )
    diagnosis = analyse(observations)
    analysed_at = time.perf_counter()
    diagnosis.sources = {name: reports[name] for name in ("metrics", "logs", "changes", "incidents")}
    diagnosis.similar_incidents = [r.to_similar_incident() for r in gathered.similar]
    diagnosis.sources["runbooks"] = await _attach_runbook(config, symptom, diagnosis)
    done = time.perf_counter()
    diagnosis.timings = {
        "gather_ms": round((gathered_at - started) * 1000, 1),
        "analyse_ms": round((analysed_at - gathered_at) * 1000, 1),
        "runbook_ms": round((done - analysed_at) * 1000, 1),
        "total_ms": round((done - started) * 1000, 1),
    }
    return Investigation(diagnosis, observations)

