"""Log evidence: JSON-lines and plain-text files (streamed), the Loki HTTP API, and template mining.

Lines become templates with drain3. A template is evidence when it is new after the onset, or when
its rate jumped; a template as frequent before the onset as after it is background, however loud.
Before mining, a message loses the header its logging framework repeated inside it (a leading
timestamp, and a level word that repeats the record's level), and templates never mix levels: an
ERROR line of a class that logged at INFO before the onset is a template of its own.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pydantic import BaseModel, Field

from tools.http import HttpSourceConfig, SourceError, make_client, request_json
from tools.links import grafana_explore
from tools.timeparse import parse_time  # noqa: F401 - the one time parser; importers use it from here

LEVELS = ("debug", "info", "warn", "error", "fatal")
_LEVEL_ALIASES = {
    "warning": "warn", "err": "error", "critical": "fatal", "crit": "fatal", "panic": "fatal",
    "trace": "debug", "notice": "info", "information": "info", "severe": "error",
}


@dataclass
class LogRecord:
    ts: float
    service: str
    level: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)


def normalise_level(value: object) -> str:
    text = str(value or "info").strip().lower()
    text = _LEVEL_ALIASES.get(text, text)
    return text if text in LEVELS else "info"


_PLAIN = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
    r"(?:\[?(?P<level>DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL|TRACE)\]?\s+)?"
    r"(?:(?P<service>[\w.-]+)(?:\[\d+\])?:\s+)?(?P<message>.*)$",
    re.I,
)
_TS_KEYS = ("ts", "time", "timestamp", "@timestamp", "t")
_MSG_KEYS = ("message", "msg", "log", "text")
_LEVEL_KEYS = ("level", "severity", "lvl", "log.level")
_SERVICE_KEYS = ("service", "service.name", "app", "job", "component")


def parse_line(line: str, default_service: str = "") -> LogRecord | None:
    """One line of a JSON-lines or plain-text log; None when it carries no timestamp."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            ts = next((parse_time(obj[k]) for k in _TS_KEYS if k in obj), None)
            if ts is None:
                return None
            message = next((str(obj[k]) for k in _MSG_KEYS if k in obj), "")
            level = next((obj[k] for k in _LEVEL_KEYS if k in obj), "info")
            service = next((str(obj[k]) for k in _SERVICE_KEYS if k in obj), default_service)
            skip = set(_TS_KEYS) | set(_MSG_KEYS) | set(_LEVEL_KEYS) | set(_SERVICE_KEYS)
            extra = {k: str(v) for k, v in obj.items() if k not in skip and isinstance(v, (str, int, float))}
            return LogRecord(ts, service, normalise_level(level), message, extra)
    found = _PLAIN.match(line)
    if not found:
        return None
    ts = parse_time(found.group("ts").replace(",", "."))
    if ts is None:
        return None
    return LogRecord(
        ts,
        found.group("service") or default_service,
        normalise_level(found.group("level")),
        found.group("message"),
    )


# --- sources ----------------------------------------------------------------------------------


class LokiConfig(HttpSourceConfig):
    service_label: str = "service"
    json_lines: bool = Field(True, description="lines are JSON; level is read with `| json`")
    limit: int = Field(5000, ge=1, le=50000, description="lines per query")
    tenant: str | None = Field(None, description="X-Scope-OrgID for multi-tenant Loki")
    grafana_url: str | None = None
    grafana_datasource: str | None = None


class LogsConfig(BaseModel):
    """``logs:`` in sleuth.yml: files, Loki, or both."""

    model_config = {"extra": "forbid"}

    files: list[Path] = Field(default_factory=list)
    loki: LokiConfig | None = None
    max_lines: int = Field(2_000_000, ge=1, description="lines read per investigation, at most")

    @property
    def configured(self) -> bool:
        return bool(self.files or self.loki)


def build_logql(service: str, *, service_label: str = "service", levels: Iterable[str] = (),
                text: str | None = None, json_lines: bool = True) -> str:
    """A LogQL query for one service, optionally narrowed by level and a text filter."""
    value = service.replace("\\", "\\\\").replace('"', '\\"')
    query = f'{{{service_label}="{value}"}}'
    if text:
        query += ' |= "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    levels = list(levels)
    if levels:
        alternatives = "|".join(levels)
        query += f' | json | level=~"(?i)({alternatives})"' if json_lines else f' |~ "(?i)({alternatives})"'
    return query


# Whole files parsed (and prepared: redacted, for the investigation), by (path, size, mtime, what
# prepared them): an investigation, its follow-ups, the agent's tools and concurrent /diagnose
# commands read the same files again and again. Only files up to LOG_CACHE_FILE_BYTES are kept,
# LOG_CACHE_TOTAL_BYTES of source in all (oldest out); larger files are streamed every time.
# Cached records are shared: readers must not change them.
LOG_CACHE_FILE_BYTES = 16 * 1024 * 1024
LOG_CACHE_TOTAL_BYTES = 48 * 1024 * 1024
_FILE_RECORDS: "OrderedDict[tuple, tuple[list[LogRecord], int, int]]" = OrderedDict()
_FILE_RECORDS_GUARD = threading.Lock()
_FILE_LOADING: dict[tuple, threading.Lock] = {}


MAX_LINE_CHARS = 64 * 1024  # longer lines are cut here: a 100 MB line must not be read whole


def clip_line(line: str) -> str:
    """A log line no longer than ``MAX_LINE_CHARS``; a cut JSON line no longer parses, and is then
    read (if at all) as plain text."""
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS]


def _lines(handle, limit_chars: int = MAX_LINE_CHARS) -> Iterator[str]:
    """The lines of a text file, each cut at ``limit_chars``; the rest of an over-long line is
    skipped a chunk at a time, so memory stays bounded whatever the file holds."""
    while True:
        line = handle.readline(limit_chars)
        if not line:
            return
        if len(line) >= limit_chars and not line.endswith("\n"):
            while True:  # skip to the end of this line
                rest = handle.readline(limit_chars)
                if not rest or rest.endswith("\n"):
                    break
        yield line


class Stopped(Exception):
    """Reading was asked to stop (the source's time ran out)."""


def _parse_file(path: Path, prepare: Callable[[LogRecord], LogRecord] | None, limit: int,
                stop: threading.Event | None = None) -> Iterator[LogRecord | None]:
    """Every line of ``path`` as a record (None for a line without a timestamp), at most ``limit``
    lines; ``Stopped`` as soon as ``stop`` is set (checked every 1,000 lines)."""
    default_service = Path(path).stem
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SourceError(f"cannot read log file {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(_lines(handle)):
            if number >= limit:
                return
            if stop is not None and number % 1000 == 0 and stop.is_set():
                raise Stopped()
            record = parse_line(line, default_service)
            yield prepare(record) if record is not None and prepare is not None else record


def _cached_file(path: Path, prepare: Callable[[LogRecord], LogRecord] | None,
                 prepare_key: str, stop: threading.Event | None = None) -> tuple[list[LogRecord], int] | None:
    """(records sorted by time, lines) of a small file, parsed once per version; None for a large one."""
    try:
        stat = os.stat(path)
    except OSError:
        return None  # the streaming path says why
    if stat.st_size > LOG_CACHE_FILE_BYTES:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns, prepare_key)
    with _FILE_RECORDS_GUARD:
        if key in _FILE_RECORDS:
            _FILE_RECORDS.move_to_end(key)
            return _FILE_RECORDS[key][:2]
        loading = _FILE_LOADING.setdefault(key, threading.Lock())
    with loading:  # concurrent readers of the same new file wait for one parse
        with _FILE_RECORDS_GUARD:
            if key in _FILE_RECORDS:
                return _FILE_RECORDS[key][:2]
        lines = 0
        records: list[LogRecord] = []
        try:
            for record in _parse_file(path, prepare, limit=1 << 62, stop=stop):
                lines += 1
                if record is not None:
                    records.append(record)
        finally:
            with _FILE_RECORDS_GUARD:
                _FILE_LOADING.pop(key, None)
        records.sort(key=lambda r: r.ts)
        with _FILE_RECORDS_GUARD:
            _FILE_RECORDS[key] = (records, lines, stat.st_size)
            while sum(size for *_, size in _FILE_RECORDS.values()) > LOG_CACHE_TOTAL_BYTES and len(_FILE_RECORDS) > 1:
                _FILE_RECORDS.popitem(last=False)
    return records, lines


def read_files(paths: Iterable[Path], services: set[str] | None, start: float, end: float,
               max_lines: int, *, prepare: Callable[[LogRecord], LogRecord] | None = None,
               prepare_key: str = "", stop: threading.Event | None = None) -> Iterator[LogRecord]:
    """Records from files, keeping those of the given services within [start, end].

    ``prepare`` (with ``prepare_key`` naming what it does) is applied to each record once per file
    version: the investigation redacts there. At most ``max_lines`` lines are read in all. Small
    files come from a cache of parsed files, in time order; large ones are streamed in file order.
    Reading ends early, quietly, once ``stop`` is set.
    """
    try:
        yield from _read_files(paths, services, start, end, max_lines, prepare, prepare_key, stop)
    except Stopped:
        return


def _read_files(paths: Iterable[Path], services: set[str] | None, start: float, end: float, max_lines: int,
                prepare: Callable[[LogRecord], LogRecord] | None, prepare_key: str,
                stop: threading.Event | None) -> Iterator[LogRecord]:
    read = 0
    for path in paths:
        if read >= max_lines:
            return
        cached = _cached_file(Path(path), prepare, prepare_key, stop)
        if cached is not None and read + cached[1] <= max_lines:
            records, lines = cached
            read += lines
            first = bisect.bisect_left(records, start, key=lambda r: r.ts)
            for record in records[first:]:
                if record.ts > end:
                    break
                if services is None or record.service in services:
                    yield record
            continue
        for record in _parse_file(Path(path), prepare, limit=max_lines - read, stop=stop):
            read += 1
            if record is None or not (start <= record.ts <= end):
                continue
            if services is not None and record.service not in services:
                continue
            yield record


class LokiClient:
    def __init__(self, config: LokiConfig) -> None:
        self.config = config
        headers = dict(config.headers)
        if config.tenant:
            headers["X-Scope-OrgID"] = config.tenant
        self.client = make_client(config.model_copy(update={"headers": headers}))

    async def query_range(self, query: str, start: float, end: float) -> list[LogRecord]:
        payload = await request_json(
            self.client, self.config, "Loki", "GET", "/loki/api/v1/query_range",
            params={
                "query": query,
                "start": str(int(start * 1e9)),
                "end": str(int(end * 1e9)),
                "limit": str(self.config.limit),
                "direction": "forward",
            },
        )
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise SourceError(f"Loki refused the query: {payload.get('error') if isinstance(payload, dict) else 'unexpected answer'}")
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise SourceError("Loki answered JSON without data.result")
        if data.get("resultType") != "streams":
            raise SourceError(f"Loki answered {data.get('resultType')!r} where streams were expected")
        records = []
        for stream in data["result"]:
            labels = stream.get("stream") if isinstance(stream, dict) else None
            values = stream.get("values") if isinstance(stream, dict) else None
            if not isinstance(labels, dict) or not isinstance(values, list):
                raise SourceError("Loki answered a stream without its labels and values")
            service = str(labels.get(self.config.service_label, ""))
            for entry in values:
                try:
                    ts = int(entry[0]) / 1e9
                    line = entry[1]
                except (IndexError, TypeError, KeyError, ValueError):
                    raise SourceError("Loki answered a log entry that is not [nanoseconds, line]") from None
                if not isinstance(line, str):
                    raise SourceError("Loki answered a log entry whose line is not text")
                line = clip_line(line)
                record = parse_line(line, service) if line.lstrip().startswith("{") else None
                if record is None:
                    record = LogRecord(ts, service, normalise_level(labels.get("level")), line)
                record.ts = ts
                record.service = service or record.service
                records.append(record)
        records.sort(key=lambda r: r.ts)
        return records

    async def services(self, start: float, end: float) -> list[str]:
        """Values of the service label that have lines in [start, end]."""
        payload = await request_json(
            self.client, self.config, "Loki", "GET", f"/loki/api/v1/label/{self.config.service_label}/values",
            params={"start": str(int(start * 1e9)), "end": str(int(end * 1e9))},
        )
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise SourceError("Loki refused the label query")
        if payload.get("data") is not None and not isinstance(payload.get("data"), list):
            raise SourceError("Loki answered the label values without a list")
        return sorted(str(v) for v in payload.get("data") or [])

    def link(self, query: str, start: float, end: float) -> str | None:
        if not self.config.grafana_url:
            return None
        return grafana_explore(self.config.grafana_url, self.config.grafana_datasource or "loki", query, start, end)

    async def aclose(self) -> None:
        await self.client.aclose()


# --- template mining --------------------------------------------------------------------------


@dataclass
class Template:
    """One mined template: its occurrences per minute, levels and one example."""

    id: int
    text: str
    service: str
    example: str
    first_seen: float
    minutes: Counter = field(default_factory=Counter)
    levels: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.minutes.values())

    def count_between(self, start: float, end: float) -> int:
        lo, hi = int(start // 60), int(end // 60)
        return sum(n for minute, n in self.minutes.items() if lo <= minute < hi)

    @property
    def worst_level(self) -> str:
        return max(self.levels, key=LEVELS.index) if self.levels else "info"


# --- message headers --------------------------------------------------------------------------
# Many formats repeat the record's time and level inside the message: logback/log4j
# `17:43:10.332 ERROR [main] c.e.Foo - msg`, Python `2023-01-29 09:43:10,332 - name - ERROR - msg`,
# Go `2023/01/29 09:43:10 msg`, klog `E0129 09:43:10.332123   7 file.go:12] msg`, syslog
# `Jan 29 09:43:10 host app[1]: msg`, logfmt `time=... level=error msg=...`. Left in, the time of day
# takes the first tokens of drain's prefix tree and the level word becomes a wildcard that merges
# INFO and ERROR lines of one class. Only the header goes; the rest of the message stays verbatim.

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_TIME = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?"
_ZONE = r"(?:\s?(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)(?![\w:]))?"
_DATE_TIME = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{1,2}[-/ ]" + _MONTH + r"[-/ ]\d{4})"
    r"(?:T|\s+|:)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?" + _ZONE
)
_SYSLOG_TIME = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?" + _MONTH + r"\s+\d{1,2}\s+" + _TIME + r"(?:\s+\d{4})?" + _ZONE
_STAMP = r"(?:" + _DATE_TIME + r"|" + _SYSLOG_TIME + r"|" + _TIME + _ZONE + r")"
_HEADER_TIME = re.compile(
    r"(?:(?:time|ts|timestamp|@timestamp|date|t)=)?"  # logfmt
    r"(?:\[" + _STAMP + r"\]|\(" + _STAMP + r"\)|\"" + _STAMP + r"\"|" + _STAMP + r")"
    r"(?:\s*[-|]\s+|:\s+|\s+)"
)
_LEVEL_WORDS = "|".join(sorted({*LEVELS, *_LEVEL_ALIASES, "warning"}, key=len, reverse=True))
_HEADER_LEVEL = re.compile(
    r"(?P<thread>\[[^\]\s]{1,80}\]\s+)?"  # logback's `[thread] LEVEL`: the thread stays
    r"(?:\[\s*(?P<bracket>(?i:" + _LEVEL_WORDS + r"))\s*\]"  # [WARN], [error]
    r"|<(?P<angle>(?i:" + _LEVEL_WORDS + r"))>"  # <error>
    r"|(?:level|lvl|severity|loglevel)=\"?(?P<pair>(?i:" + _LEVEL_WORDS + r"))\"?"  # level=error
    r"|(?P<word>" + _LEVEL_WORDS.upper() + r"))"  # ERROR, WARN: upper case only (`Error connecting` is the message)
    r"(?:\s*[-|]\s+|:\s*|\s+|$)"
)
_KLOG = re.compile(r"(?P<letter>[IWEF])\d{4}\s+" + _TIME + r"\s+\d+\s+")  # the pid goes with the header
_KLOG_LEVELS = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}
# The cheap check before any regex: a header begins with a digit, a bracket or a quote, or its
# first three characters are those of a month or weekday, an upper-case level word, a klog letter
# and date, or a logfmt key.
_HEADER_FIRST = frozenset("0123456789[(<\"@")
_HEADER_PREFIXES = frozenset(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
     "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
     "tim", "ts=", "dat", "lev", "lvl", "sev", "log", 't="']
    + [word.upper()[:3] for word in (*LEVELS, *_LEVEL_ALIASES) if len(word) >= 3]
    + [f"{letter}{a}{b}" for letter in "IWEF" for a in "01" for b in "0123456789"]
    + [f"t={digit}" for digit in "0123456789"]
)


def _may_have_header(message: str) -> bool:
    return message[:1] in _HEADER_FIRST or message[:3] in _HEADER_PREFIXES


def _level_of(word: str | None) -> str | None:
    """The canonical level a header word names (None for a word that is no level)."""
    if not word:
        return None
    text = word.lower()
    text = _LEVEL_ALIASES.get(text, text)
    return text if text in LEVELS else None


def strip_header(message: str, level: str) -> str:
    """``message`` without a leading timestamp and a leading level word that repeats ``level``.

    A level word that says something else than the record's level stays (it is information); a
    message that is nothing but a header stays whole.
    """
    if not message or not _may_have_header(message):
        return message
    rest = message
    if rest[0] in "IWEF":
        found = _KLOG.match(rest)
        if found:
            return (rest[found.end():] or message) if _KLOG_LEVELS[found.group("letter")] == level else message
    found = _HEADER_TIME.match(rest)
    timed = found is not None
    if timed:
        rest = rest[found.end():]
    found = _HEADER_LEVEL.match(rest)
    if found and _level_of(found.group("bracket") or found.group("angle") or found.group("pair")
                           or found.group("word")) == level:
        rest = (found.group("thread") or "") + rest[found.end():]
        if not timed:  # `ERROR 2023-01-29 09:43:10 msg`, `level=error ts=... msg=...`
            found = _HEADER_TIME.match(rest)
            if found:
                rest = rest[found.end():]
    return rest if rest.strip() else message


def new_miner():
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.drain_sim_th = 0.5
    config.drain_depth = 4
    config.drain_max_clusters = 5000
    config.parametrize_numeric_tokens = True
    config.masking_instructions = [
        MaskingInstruction(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
        MaskingInstruction(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "IP"),
        MaskingInstruction(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{12,}\b", "HEX"),
        # a minus sign only where no digit precedes it: 2021-07-14 is <NUM>-<NUM>-<NUM>, not <NUM><NUM><NUM>
        MaskingInstruction(r"(?<![A-Za-z])(?:-(?<!\d-))?\d+(?:\.\d+)?(?:ms|s|us|MB|GB|KB|%)?(?![A-Za-z])", "NUM"),
    ]
    config.profiling_enabled = False
    return TemplateMiner(config=config)


# Fields whose values locate a template (which node, which tenant): kept for the analysis.
LOCATING_FIELDS = ("node", "host", "pod", "tenant", "model", "region", "zone", "instance")


class TemplateMiner:
    """Mines templates per service and level, record by record, so files and streams of any size fit.

    Each (service, level) has its own drain miner, so a template never mixes levels and drain's
    prefix tree keeps all its depth for the message. Template ids count per service in the order
    templates first appear (as drain numbers its clusters); ``templates`` is keyed (service, id).
    The message is mined without the header it repeats (see ``strip_header``); the template's
    example is the message as it came.
    """

    def __init__(self) -> None:
        # (service, level) -> (its drain miner, its templates by drain cluster id)
        self._miners: dict[tuple[str, str], tuple[object, dict[int, Template]]] = {}
        self._next_id: Counter = Counter()
        self.templates: dict[tuple[str, int], Template] = {}
        self.lines = 0

    def add(self, record: LogRecord) -> None:
        where = (record.service, record.level)
        mined = self._miners.get(where)
        if mined is None:
            mined = self._miners[where] = (new_miner(), {})
        miner, clusters = mined
        message = record.message
        if message[:1] in _HEADER_FIRST or message[:3] in _HEADER_PREFIXES:  # _may_have_header, inlined
            message = strip_header(message, record.level)
        result = miner.add_log_message(message)  # type: ignore[attr-defined]
        template = clusters.get(result["cluster_id"])
        if template is None:
            self._next_id[record.service] += 1
            number = self._next_id[record.service]
            template = clusters[result["cluster_id"]] = self.templates[(record.service, number)] = Template(
                number, result["template_mined"], record.service, record.message, record.ts
            )
        else:
            template.text = result["template_mined"]
            template.first_seen = min(template.first_seen, record.ts)
        template.minutes[int(record.ts // 60)] += 1
        template.levels[record.level] += 1
        for name in LOCATING_FIELDS:
            if name in record.fields:
                template.labels[f"{name}={record.fields[name]}"] += 1
        self.lines += 1

    def add_all(self, records: Iterable[LogRecord]) -> "TemplateMiner":
        for record in records:
            self.add(record)
        return self


@dataclass
class TemplateChange:
    """How a template behaved after the onset compared with before it."""

    template: Template
    before: int
    after: int
    before_rate: float  # per minute
    after_rate: float
    new: bool
    strength: float  # 0..1
    evidence_id: str = ""  # set when the analysis cites it


def _poisson_surprise(expected: float, observed: int) -> float:
    """-log10 of the upper tail P(X >= observed) for X ~ Poisson(expected), approximated."""
    if observed <= expected:
        return 0.0
    expected = max(expected, 1e-3)
    # Chernoff bound: P(X >= k) <= exp(-mu) (e mu / k)^k
    log_p = -expected + observed * (1 + math.log(expected / observed))
    return -log_p / math.log(10)


def covered_minutes(templates: Iterable[Template]) -> set[int]:
    """Minutes in which anything at all was logged. A minute in which every service fell silent is
    a gap in collection, not a minute of zeros: counting it as "before" would make any template
    look new."""
    minutes: set[int] = set()
    for template in templates:
        minutes.update(m for m, n in template.minutes.items() if n)
    return minutes


def template_changes(templates: Iterable[Template], split: float, start: float, end: float,
                     min_after: int = 3, covered: set[int] | None = None) -> list[TemplateChange]:
    """Templates that appeared or whose rate jumped after ``split`` (within [start, end]).

    ``covered``: the minutes the logs cover (see ``covered_minutes``); rates before the split are
    over those only. A template is "new" only as surely as that span could have shown it: one that
    logs once a minute and was absent for one covered minute may simply not have come up.
    """
    if covered is None:
        before_minutes = max(1.0, (split - start) / 60)
    else:
        before_minutes = max(1.0, float(sum(1 for m in covered if start // 60 <= m < split // 60)))
    after_minutes = max(1.0, (end - split) / 60)
    out = []
    for template in templates:
        before = template.count_between(start, split)
        after = template.count_between(split, end + 60)
        if after < min_after:
            continue
        before_rate, after_rate = before / before_minutes, after / after_minutes
        expected = before_rate * after_minutes
        surprise = _poisson_surprise(max(expected, 0.5 * after_minutes / before_minutes), after)
        new = before == 0
        ratio = after_rate / before_rate if before_rate else math.inf
        if not (new or (ratio >= 3 and surprise >= 6)):
            continue
        severity = {"fatal": 1.0, "error": 1.0, "warn": 0.7}.get(template.worst_level, 0.45)
        volume = 1 - math.exp(-after / 20)
        # Absent for the covered minutes before, at its rate after: how sure "new" is.
        jump = 1 - math.exp(-after_rate * before_minutes) if new else min(1.0, math.log10(ratio) / 2)
        out.append(TemplateChange(template, before, after, before_rate, after_rate, new,
                                  round(severity * (0.5 + 0.5 * volume) * (0.6 + 0.4 * jump), 3)))
    out.sort(key=lambda c: -c.strength)
    return out

