"""Log files (JSON lines or plain text), streamed line by line and cached whole when small."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tools.diagnosis import iso
from tools.http import SourceError
from tools.logs.backend import MineReport
from tools.logs.records import MAX_LINE_CHARS, LogRecord, parse_line
from tools.logs.templates import TemplateMiner

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
        for parsed in _parse_file(Path(path), prepare, limit=max_lines - read, stop=stop):
            read += 1
            if parsed is None or not (start <= parsed.ts <= end):
                continue
            if services is not None and parsed.service not in services:
                continue
            yield parsed


def _until(stop: threading.Event, records: Iterable[LogRecord], every: int = 2000) -> Iterator[LogRecord]:
    """``records`` until ``stop`` is set (checked every ``every`` records)."""
    for number, record in enumerate(records):
        if number % every == 0 and stop.is_set():
            return
        yield record


class FilesBackend:
    """Log files as a backend: mined in a thread that stops when the source's time runs out."""

    def __init__(self, paths: list[Path], max_lines: int) -> None:
        self.paths = list(paths)
        self.max_lines = max_lines

    def describe(self) -> str:
        return "files"

    def where(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    async def mine(self, miner: TemplateMiner, components: list[str] | None, start: float, split: float,
                   end: float, *, redact: Callable[[str], str], redaction_key: str,
                   found: MineReport) -> None:
        wanted = set(components) if components else None
        stop = threading.Event()

        def prepare(record: LogRecord) -> LogRecord:
            message = redact(record.message)
            return record if message == record.message else dataclasses.replace(record, message=message)

        def mine() -> None:
            records = read_files(self.paths, wanted, start, end, self.max_lines, prepare=prepare,
                                 prepare_key=redaction_key, stop=stop)
            miner.add_all(_until(stop, records))

        mining = asyncio.ensure_future(asyncio.to_thread(mine))
        try:
            await asyncio.shield(mining)
        except asyncio.CancelledError:
            # The source timed out: the thread stops within a batch of lines; what it mined so far
            # is dropped with the whole source (the report says the logs were abandoned).
            stop.set()
            with contextlib.suppress(Exception):
                await mining
            raise
        found.queries += len(self.paths)
        for component in components or sorted({t.service for t in miner.templates.values()}):
            found.log_queries[component] = f"{self.where()} where service={component}, {iso(start)}..{iso(end)}"

    async def search(self, service: str, start: float, end: float, *, levels: list[str],
                     text: str | None) -> tuple[list[LogRecord], str]:
        records = [record for record in read_files(self.paths, {service}, start, end, self.max_lines)
                   if (not text or text.lower() in record.message.lower())
                   and (not levels or record.level in levels)]
        query = (f"{self.where()} where service={service}" + (f" and message contains {text!r}" if text else "")
                 + (f" and level>={levels[0]}" if levels else ""))
        return records, query

    async def aclose(self) -> None:
        return None
