"""Template mining with drain3 and how templates changed after the onset."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from tools.logs.records import LEVEL_ALIASES, LEVELS, LogRecord


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
_LEVEL_WORDS = "|".join(sorted({*LEVELS, *LEVEL_ALIASES, "warning"}, key=len, reverse=True))
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
    + [word.upper()[:3] for word in (*LEVELS, *LEVEL_ALIASES) if len(word) >= 3]
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
    text = LEVEL_ALIASES.get(text, text)
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
    if found is not None:
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
