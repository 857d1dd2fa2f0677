"""Past incidents and runbooks as records, read from the formats teams actually keep.

Formats:

- **Markdown postmortems** with YAML front matter::

      ---
      id: INC-1042                # optional: the file name without suffix otherwise
      title: Checkout 500s after router 2.3 rollout
      services: [checkout, router]
      date: 2026-03-02            # or 2026-03-02T14:05:00Z
      severity: SEV2
      root_cause: code_change     # or category: ..., or root_cause: {category: ..., details: ...}
      mitigations: [rollback]     # taxonomy action ids (or {action: ..., ...} mappings)
      tags: [streaming]
      ---
      ## Summary / ## Impact / ## Root cause / ## Mitigation / any other ## sections

- **JSON / JSON-lines** incident records with the same field names (a list, one object, or one
  object per line), plus the optional free-text fields ``summary``, ``impact``, ``root_cause_text``,
  ``mitigation_text``, ``symptoms``, ``operation`` and ``sections``.
- **The labelled public-cloud corpus** (``../shared/corpora/postmortems-*``): one JSON object
  mapping record ids to incidents with ``root cause.label`` (3-level labels) and
  ``mitigation.label``. :func:`azure_category` maps the labels onto the taxonomy exactly as the
  corpus README suggests; :data:`MITIGATION_KEYWORDS` maps the short mitigation labels onto
  taxonomy actions.

- **Runbooks**: Markdown with front matter ``title``, ``categories``, ``signals``, ``tags`` and
  ``## Check / Measure / Triage / Remediate / Verify`` sections (:func:`parse_runbook`).

Every problem is a :class:`~index.errors.RecordError`: one sentence naming the file (and the
line where known) and what to change.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from index.errors import RecordError
from tools.taxonomy import ACTIONS, CATEGORIES

MARKDOWN_SUFFIXES = (".md", ".markdown")
JSON_SUFFIXES = (".json",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + JSON_SUFFIXES + JSONL_SUFFIXES

# Section headings -> the record field they fill (lower-cased, compared by prefix).
_SECTION_FIELDS = {
    "summary": "summary",
    "overview": "summary",
    "what happened": "summary",
    "description": "summary",
    "impact": "impact",
    "customer impact": "impact",
    "root cause": "root_cause_text",
    "root-cause": "root_cause_text",
    "cause": "root_cause_text",
    "rca": "root_cause_text",
    "mitigation": "mitigation_text",
    "mitigations": "mitigation_text",
    "resolution": "mitigation_text",
    "remediation": "mitigation_text",
    "fix": "mitigation_text",
}


# --- the record --------------------------------------------------------------------------------


@dataclass
class IncidentRecord:
    """One past incident, in the project's vocabulary (taxonomy category and action ids)."""

    id: str
    title: str
    summary: str = ""
    services: list[str] = field(default_factory=list)
    date: str | None = None  # ISO-8601: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
    severity: str | None = None
    category: str | None = None  # primary taxonomy category (None: not labelled)
    categories: list[str] = field(default_factory=list)  # every category the labels map to
    mitigations: list[str] = field(default_factory=list)  # taxonomy action ids
    mitigation_text: str = ""
    root_cause_text: str = ""
    impact: str = ""
    symptoms: list[str] = field(default_factory=list)
    operation: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    sections: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category and self.category not in self.categories:
            self.categories = [self.category, *self.categories]
        if not self.category and self.categories:
            self.category = self.categories[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IncidentRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def content_hash(self) -> str:
        """A stable hash of the content (the source path excluded: moving a file changes nothing)."""
        # The fields as to_dict() gives them (plain values), without its deep copy.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "source"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def timestamp(self) -> float | None:
        """The date as Unix seconds (UTC), or None."""
        return record_timestamp(self.date)

    def tag_tokens(self) -> str:
        """Structured values as whole tokens (svc_azure_sql_database, sym_availability, op_deployment)."""
        out = []
        for prefix, values in (("svc_", self.services), ("sym_", self.symptoms), ("op_", self.operation)):
            for value in values:
                token = re.sub(r"\W+", "_", str(value).strip().lower()).strip("_")
                if token:
                    out.append(prefix + token)
        return " ".join(out)

    def early_text(self) -> str:
        """What a responder knows early: title, summary, services, impact symptoms, operation in progress.

        Never the details, the impact narrative, the cause, the fix or a label.
        """
        parts = [self.title, self.summary, ", ".join(self.services), ", ".join(self.symptoms),
                 ", ".join(self.operation), self.tag_tokens()]
        return " . ".join(p for p in parts if p)

    def full_text(self, strict: bool = False) -> str:
        """The whole record except its labels (categories, mitigation action ids, label tags).

        ``strict`` also leaves out the root-cause and mitigation free text.
        """
        parts = [self.early_text(), self.impact]
        used = {self.title, self.summary, self.impact, self.root_cause_text, self.mitigation_text}
        for heading, body in self.sections.items():
            key = heading.strip().lower()
            target = _SECTION_FIELDS.get(key) or next((f for h, f in _SECTION_FIELDS.items() if key.startswith(h)), None)
            if not body or body in used:
                continue
            if strict and (target in ("root_cause_text", "mitigation_text") or key.startswith("troubleshooting")):
                continue
            parts.append(body)
        if not strict:
            parts += [self.root_cause_text, self.mitigation_text]
        tags = [t for t in self.tags if not t.startswith("mitigation:") and t != "human-error"]
        if tags:
            parts.append(", ".join(tags))
        return " . ".join(p for p in parts if p)


@dataclass
class RunbookRecord:
    """One runbook: what to check, measure, triage, remediate and verify for a failure mode."""

    id: str
    title: str
    categories: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def content_hash(self) -> str:
        data = self.to_dict()
        data.pop("source", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- small helpers -----------------------------------------------------------------------------


def record_timestamp(date: str | None) -> float | None:
    if not date:
        return None
    text = date.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def normalise_date(value: Any, where: str) -> str | None:
    """A date in any common spelling -> ISO-8601 (date, or date-time in UTC with Z)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    for fmt in ("%m/%d/%Y", "%Y/%m/%d", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y"):
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{where}: date {text!r} is not a date; write it as YYYY-MM-DD or ISO-8601") from None
    if len(text) <= 10:
        return parsed.date().isoformat()
    return normalise_date(parsed, where)


def _str_list(value: Any, where: str, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            if isinstance(item, (str, int, float)) and str(item).strip():
                out.append(str(item).strip())
            elif item is not None:
                raise RecordError(f"{where}: '{name}' must be a list of strings, got {type(item).__name__} {item!r}")
        return out
    raise RecordError(f"{where}: '{name}' must be a list of strings, got {type(value).__name__}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return "\n".join(_text(v) for v in value.values() if _text(v))
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value if _text(v))
    return str(value)


def _suggest(word: str, options: Iterable[str]) -> str:
    guess = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{guess[0]}'?" if guess else f"use one of {', '.join(options)}"


def check_category(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text not in CATEGORIES:
        raise RecordError(f"{where}: unknown root-cause category {text!r}; {_suggest(text, CATEGORIES)}")
    return text


def check_actions(value: Any, where: str) -> list[str]:
    """Mitigation actions: taxonomy ids, or mappings with an ``action`` key."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    actions: list[str] = []
    for item in items:
        action = item.get("action") if isinstance(item, dict) else item
        if not isinstance(action, str) or not action.strip():
            raise RecordError(f"{where}: each mitigation must be an action id or a mapping with 'action', got {item!r}")
        action = action.strip()
        if action not in ACTIONS:
            raise RecordError(f"{where}: unknown mitigation action {action!r}; {_suggest(action, ACTIONS)}")
        if action not in actions:
            actions.append(action)
    return actions


def _mitigation_details(value: Any) -> str:
    """Free text carried by mitigation mappings ({action, target, rationale, ...})."""
    if not isinstance(value, (list, tuple)):
        return ""
    lines = []
    for item in value:
        if isinstance(item, dict):
            extra = ", ".join(f"{k}: {v}" for k, v in item.items() if k != "action" and v)
            lines.append(f"{item.get('action')}" + (f" ({extra})" if extra else ""))
    return "\n".join(lines)


# --- records from plain mappings (front matter, JSON) -----------------------------------------


_RECORD_KEYS = {
    "id", "title", "summary", "services", "service", "date", "severity", "category", "categories",
    "root_cause", "root_cause_text", "mitigations", "mitigation_text", "impact", "symptoms", "operation",
    "tags", "sections", "source",
}


def record_from_mapping(data: dict[str, Any], *, where: str, default_id: str, source: str,
                        sections: dict[str, str] | None = None) -> IncidentRecord:
    """Validate one incident given with the project's field names."""
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise RecordError(f"{where}: missing 'title'; every postmortem needs a one-line title")
    root_cause = data.get("root_cause")
    root_cause_text = _text(data.get("root_cause_text"))
    category = data.get("category")
    if isinstance(root_cause, dict):
        category = category or root_cause.get("category")
        root_cause_text = root_cause_text or _text(root_cause.get("details") or root_cause.get("text")
                                                   or root_cause.get("statement"))
    elif isinstance(root_cause, str):
        if root_cause.strip() in CATEGORIES:
            category = category or root_cause.strip()
        elif category is None and re.fullmatch(r"[a-z_]+", root_cause.strip()):
            check_category(root_cause, f"{where} (root_cause)")  # raises with a suggestion
        else:
            root_cause_text = root_cause_text or root_cause.strip()
    category = check_category(category, f"{where} (category)")
    categories = [check_category(c, f"{where} (categories)") for c in _str_list(data.get("categories"), where, "categories")]
    services = _str_list(data.get("services", data.get("service")), where, "services")
    raw_mitigations = data.get("mitigations")
    mitigations = check_actions(raw_mitigations, f"{where} (mitigations)")
    sections = dict(sections or {})
    extra_sections = data.get("sections")
    if isinstance(extra_sections, dict):
        sections.update({str(k): _text(v) for k, v in extra_sections.items()})
    filled: dict[str, str] = {}
    for heading, body in sections.items():
        key = heading.strip().lower()
        target = _SECTION_FIELDS.get(key) or next(
            (f for h, f in _SECTION_FIELDS.items() if key.startswith(h)), None)
        if target and body and target not in filled:
            filled[target] = body
    mitigation_text = _text(data.get("mitigation_text")) or filled.get("mitigation_text", "")
    details = _mitigation_details(raw_mitigations)
    if details and details not in mitigation_text:
        mitigation_text = "\n".join(p for p in (mitigation_text, details) if p)
    record_id = str(data.get("id") or default_id).strip()
    if not record_id:
        raise RecordError(f"{where}: empty 'id'; give the incident an id such as INC-1042")
    return IncidentRecord(
        id=record_id,
        title=title.strip(),
        summary=_text(data.get("summary")) or filled.get("summary", ""),
        services=services,
        date=normalise_date(data.get("date"), where),
        severity=str(data["severity"]).strip() if data.get("severity") not in (None, "") else None,
        category=category,
        categories=[c for c in categories if c],
        mitigations=mitigations,
        mitigation_text=mitigation_text,
        root_cause_text=root_cause_text or filled.get("root_cause_text", ""),
        impact=_text(data.get("impact")) or filled.get("impact", ""),
        symptoms=_str_list(data.get("symptoms"), where, "symptoms"),
        operation=_str_list(data.get("operation"), where, "operation"),
        tags=_str_list(data.get("tags"), where, "tags"),
        source=source,
        sections=sections,
    )


# --- Markdown ----------------------------------------------------------------------------------


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """(front matter, body, line number where the body starts). Raises on a missing or bad block."""
    if not text.strip():
        raise RecordError(f"{path} is empty; a postmortem needs YAML front matter and a body")
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise RecordError(f"{path} has no YAML front matter (a '---' block at line 1 with at least 'title:'); "
                          "it does not look like a postmortem")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise RecordError(f"{path}: the front matter opened at line 1 is never closed; add a '---' line after it")
    block = "\n".join(lines[1:end])
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecordError(f"{path}: malformed YAML front matter{at}: {problem}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise RecordError(f"{path}: the front matter at lines 2-{end} must be a mapping of keys (title:, services:, ...)")
    return meta, "\n".join(lines[end + 1:]), end + 2


def _key_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return number
    return None


def split_sections(body: str) -> tuple[str, dict[str, str]]:
    """(text before the first '## ' heading, {heading: text}). '# ' titles and deeper headings stay in the text."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = preamble
    for line in body.splitlines():
        match = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if match and not line.startswith("###"):
            heading = match.group(1).strip()
            current = sections.setdefault(heading, [])
            continue
        if re.match(r"^#\s+", line) and current is preamble:
            continue  # a top-level title repeats the front matter
        current.append(line)
    return "\n".join(preamble).strip(), {h: "\n".join(v).strip() for h, v in sections.items()}


def _with_line(exc: RecordError, path: Path, text: str, meta: dict[str, Any]) -> RecordError:
    """Add the line of the offending front-matter key to an error message when it can be found."""
    message = str(exc)
    match = re.search(r"\((\w+)\)", message)
    key = match.group(1) if match else next((k for k in meta if f"'{k}'" in message), None)
    if key:
        line = _key_line(text, key)
        if key == "root_cause" and line is None:
            line = _key_line(text, "category")
        at = f"{path}, line {line}" if line else str(path)
        message = message.replace(f"{path} ({key})", at, 1)
        if line and f"{path}:" in message:
            message = message.replace(f"{path}:", f"{at}:", 1)
    return RecordError(message)


def parse_markdown(path: Path, text: str | None = None) -> IncidentRecord:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    meta, body, _ = split_front_matter(text, path)
    if "title" not in meta and not meta:
        raise RecordError(f"{path}: the front matter is empty; add at least 'title:' and 'services:'")
    if "signals" in meta and not ({"services", "root_cause", "category", "mitigations"} & set(meta)):
        raise RecordError(f"{path} looks like a runbook (it has 'signals:'), not a postmortem; add it with --runbooks")
    unknown = sorted(set(meta) - _RECORD_KEYS)
    if unknown:
        line = _key_line(text, unknown[0])
        at = f", line {line}" if line else ""
        raise RecordError(f"{path}{at}: unknown front-matter key {unknown[0]!r}; "
                          f"{_suggest(unknown[0], sorted(_RECORD_KEYS))}")
    preamble, sections = split_sections(body)
    if preamble and not any(h.lower().startswith(("summary", "overview")) for h in sections):
        sections = {"Summary": preamble, **sections}
    try:
        record = record_from_mapping(meta, where=str(path), default_id=path.stem, source=str(path), sections=sections)
    except RecordError as exc:
        raise _with_line(exc, path, text, meta) from None
    if not (record.services or record.category or record.mitigations or record.summary
            or record.root_cause_text or record.mitigation_text):
        raise RecordError(f"{path} has a title but no services, root cause, mitigation or summary; "
                          "it does not look like a postmortem")
    return record


# --- JSON and JSON lines -----------------------------------------------------------------------


def _is_labelled_corpus(data: Any) -> bool:
    if not isinstance(data, dict) or not data or "title" in data:
        return False
    values = list(data.values())
    return all(isinstance(v, dict) for v in values) and any(
        isinstance(v.get("root cause"), dict) or isinstance(v.get("mitigation"), dict) for v in values)


def parse_json(path: Path, text: str | None = None) -> list[IncidentRecord]:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    if not text.strip():
        raise RecordError(f"{path} is empty; expected a JSON incident record, a list of them, or a labelled corpus")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}, line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if _is_labelled_corpus(data):
        return parse_labelled_corpus(path, data)
    if isinstance(data, dict) and isinstance(data.get("incidents"), list):
        data = data["incidents"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise RecordError(f"{path} holds an empty list; it contains no incident records")
    records = []
    for number, item in enumerate(items, start=1):
        where = f"{path}, record {number}" if isinstance(data, list) else str(path)
        if not isinstance(item, dict):
            raise RecordError(f"{where}: expected an incident object with 'title', got {type(item).__name__}")
        default_id = f"{path.stem}-{number}" if isinstance(data, list) else path.stem
        records.append(record_from_mapping(item, where=where, default_id=default_id, source=str(path)))
    return records


def parse_jsonl(path: Path, text: str | None = None) -> list[IncidentRecord]:
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}, line {number}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise RecordError(f"{path}, line {number}: expected an incident object with 'title', got {type(item).__name__}")
        records.append(record_from_mapping(item, where=f"{path}, line {number}",
                                           default_id=f"{path.stem}-{number}", source=str(path)))
    if not records:
        raise RecordError(f"{path} is empty; expected one JSON incident record per line")
    return records


# --- the labelled public-cloud corpus ----------------------------------------------------------

_SOFTWARE_BUGS = {"software bugs", "softwares bugs", "software bug", "software failures", "software failure"}


def azure_category(label: dict[str, Any]) -> str:
    """One 3-level root-cause label -> a taxonomy category, as the corpus README suggests.

    layer-3 ``config`` -> config_change; ``code change``, and software bugs with any other or no
    layer-3 -> code_change; ``payload flood`` and layer-2 ``excessive flow`` -> traffic_surge;
    hardware failures -> infrastructure; insufficient resource -> capacity; third-party failures ->
    dependency; component removal -> operation_error; ``unknown`` and anything else -> unknown.
    """
    l1 = str(label.get("layer-1") or "").strip().lower()
    l2 = str(label.get("layer-2") or "").strip().lower()
    l3 = str(label.get("layer-3") or "").strip().lower()
    if l1 == "unknown":
        return "unknown"
    if l3 == "config":
        return "config_change"
    if l3 == "code change":
        return "code_change"
    if l3 == "payload flood" or l2 == "excessive flow":
        return "traffic_surge"
    if l2 in _SOFTWARE_BUGS:
        return "code_change"
    if l2 == "hardware failures":
        return "infrastructure"
    if l2 == "insufficient resource":
        return "capacity"
    if l2 == "third-party failures":
        return "dependency"
    if l2 == "component removal":
        return "operation_error"
    return "unknown"


# Short mitigation labels -> taxonomy actions: the first pattern that matches wins. Hotfixes,
# manual repairs and power or fibre restoration have no taxonomy action and map to nothing (the
# text is kept in ``mitigation_text``).
MITIGATION_KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"(roll(ed|ing)?[ -]?back|revert\w*).*config|config\w*.*(roll(ed)?[ -]?back|revert)", "config_revert"),
    (r"(change|update|correct|made a).*config|config\w* change|routing policy", "config_revert"),
    (r"roll(ed|ing)?[ -]?back|revert", "rollback"),
    (r"fail(ed)?[ -]?over|re-?rout|redirect|shift\w* traffic|traffic to|secondary|from the rotation|isolat", "failover"),
    (r"scal\w* out|add\w* capacity|additional (instance|circuit)|increase\w* .*(process|instance|capacity)|distribut\w* load", "scale_out"),
    (r"restart|reboot|recycl", "restart"),
    (r"withdr[ae]w|remove the faulty|drain", "drain_node"),
    (r"reduce\w* (load|traffic)|throttl|rate[ -]?limit|clear\w* (out )?the (request )?queue|downscale", "rate_limit"),
    (r"block\w* (the )?request|block\w* client", "block_client"),
    (r"disabl|paus|suppress|block\w* the backend", "disable_feature"),
    (r"reindex|rebuild (the )?index", "reindex"),
    (r"self[ -]?heal|recover(ed)? automatically|no operation|add monitoring|monitor", "monitor"),
    (r"escalat|engag\w* (the )?(team|vendor|provider)", "escalate"),
)


def map_mitigation_label(label: str) -> str | None:
    lowered = label.strip().lower()
    for pattern, action in MITIGATION_KEYWORDS:
        if re.search(pattern, lowered):
            return action
    return None


def _flat_strings(value: Any) -> list[str]:
    """Every string inside a corpus field, however it is nested (lists, {kind: [values]})."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _flat_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _flat_strings(v)]
    text = str(value).strip()
    return [text] if text else []


def _azure_date(value: Any, where: str) -> str | None:
    try:
        return normalise_date(value, where)
    except RecordError:
        return None


def parse_labelled_corpus(path: Path, data: dict[str, Any]) -> list[IncidentRecord]:
    """The public-cloud postmortem corpus: {record id: incident} with 3-level labels."""
    records = []
    for record_id, item in data.items():
        where = f"{path}, record {record_id}"
        title = _text(item.get("title"))
        if not title:
            raise RecordError(f"{where}: missing 'title'; is this file a labelled postmortem corpus?")
        root = item.get("root cause") if isinstance(item.get("root cause"), dict) else {}
        labels = root.get("label") or []
        labels = labels if isinstance(labels, list) else [labels]
        categories: list[str] = []
        for label in labels:
            if isinstance(label, dict):
                category = azure_category(label)
                if category not in categories:
                    categories.append(category)
        # "unknown" is a category only when nothing more specific was labelled.
        specific = [c for c in categories if c != "unknown"]
        categories = specific or categories
        mitigation = item.get("mitigation") if isinstance(item.get("mitigation"), dict) else {}
        mitigation_labels = mitigation.get("label") or []
        mitigation_labels = mitigation_labels if isinstance(mitigation_labels, list) else [mitigation_labels]
        actions: list[str] = []
        for label in mitigation_labels:
            action = map_mitigation_label(str(label)) if label else None
            if action and action not in actions:
                actions.append(action)
        steps = mitigation.get("troubleshooting")
        mitigation_text = _text(mitigation.get("details"))
        services = _flat_strings(item.get("service_name", item.get("service name")))
        symptoms = _flat_strings(item.get("impact symptom"))
        manifestation = _flat_strings(item.get("manifestation"))
        tags = [t for t in ("human-error" if item.get("human error") else "",) if t]
        tags += [f"mitigation:{str(m).strip()}" for m in mitigation_labels if m]
        sections = {"Details": _text(item.get("details"))}
        if steps:
            sections["Troubleshooting"] = _text(steps)
        propagation = " ".join(_flat_strings(item.get("propagation pass")))
        if propagation:
            sections["Propagation"] = propagation
        duration = item.get("duration")
        records.append(IncidentRecord(
            id=str(record_id),
            title=title,
            summary=_text(item.get("summary")),
            services=services,
            date=_azure_date(item.get("time"), where),
            severity=None,
            category=categories[0] if categories else None,
            categories=categories,
            mitigations=actions,
            mitigation_text=mitigation_text,
            root_cause_text=_text(root.get("details")),
            impact=", ".join(manifestation) + (f" ({duration} min)" if isinstance(duration, (int, float)) else ""),
            symptoms=symptoms,
            operation=_flat_strings(item.get("operation")),
            tags=tags,
            source=str(path),
            sections={k: v for k, v in sections.items() if v},
        ))
    if not records:
        raise RecordError(f"{path} is an empty corpus; it holds no incidents")
    return records


# --- files and folders -------------------------------------------------------------------------


def parse_file(path: Path) -> list[IncidentRecord]:
    """All incidents in one file; a RecordError naming the file when it is not usable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path} is not UTF-8 text; it does not look like a postmortem") from None
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return [parse_markdown(path, text)]
    if suffix in JSON_SUFFIXES:
        return parse_json(path, text)
    if suffix in JSONL_SUFFIXES:
        return parse_jsonl(path, text)
    raise RecordError(f"{path}: unsupported file type {suffix or '(none)'}; "
                      f"use Markdown with front matter (.md), JSON (.json) or JSON lines (.jsonl)")


def _files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under the paths (folders walked, sorted) and the ones skipped with why."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # Hidden files and what makes a folder a Python package (it ships in the wheel) are not documents.
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "__init__.py" and not any(
                part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts))
            for p in found:
                if p.name.lower() in ("readme.md", "readme.markdown", "license.md", "changelog.md"):
                    skipped.append((str(p), "a README, not a postmortem"))
                elif p.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(p)
                else:
                    skipped.append((str(p), f"unsupported file type {p.suffix or '(none)'}"))
        elif path.is_file():
            files.append(path)
        else:
            raise RecordError(f"{path} does not exist; pass postmortem files or folders")
    return files, skipped


def collect(paths: Iterable[Path], *, runbooks: bool = False):
    """Every record under the paths, plus (source, reason) for each file that could not be read.

    Raises RecordError when nothing usable was found at all (an empty corpus).
    """
    paths = list(paths)
    files, skipped = _files(paths)
    parse = parse_runbook if runbooks else parse_file
    records: list[Any] = []
    for path in files:
        try:
            parsed = parse(path)
        except RecordError as exc:
            skipped.append((str(path), str(exc)))
            continue
        records.extend(parsed if isinstance(parsed, list) else [parsed])
    if not records:
        what = "runbooks" if runbooks else "postmortems"
        if skipped:
            raise RecordError(skipped[0][1] if len(files) == 1 and len(skipped) == 1 else
                              f"no usable {what} under {', '.join(map(str, paths))}: {skipped[0][0]}: {skipped[0][1]}")
        raise RecordError(f"no {what} found under {', '.join(map(str, paths))} (looked for "
                          f"{', '.join(MARKDOWN_SUFFIXES if runbooks else SUPPORTED_SUFFIXES)} files): an empty corpus")
    return records, skipped


# --- runbooks ----------------------------------------------------------------------------------

RUNBOOK_SECTIONS = ("Check", "Measure", "Triage", "Remediate", "Verify")


def parse_runbook(path: Path) -> RunbookRecord:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"cannot read runbook {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() not in MARKDOWN_SUFFIXES:
        raise RecordError(f"{path}: runbooks are Markdown files with front matter (.md)")
    meta, body, _ = split_front_matter(text, path)
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        line = _key_line(text, "title")
        raise RecordError(f"{path}{f', line {line}' if line else ''}: missing 'title'; a runbook needs a title")
    categories = []
    for c in _str_list(meta.get("categories"), str(path), "categories"):
        try:
            categories.append(check_category(c, str(path)))
        except RecordError as exc:
            line = _key_line(text, "categories")
            raise RecordError(str(exc).replace(f"{path}:", f"{path}, line {line}:", 1) if line else str(exc)) from None
    _, sections = split_sections(body)
    if not sections:
        raise RecordError(f"{path} has no '## ' sections; a runbook needs {', '.join(RUNBOOK_SECTIONS)}")
    return RunbookRecord(
        id=str(meta.get("id") or path.stem),
        title=title.strip(),
        categories=[c for c in categories if c],
        signals=_str_list(meta.get("signals"), str(path), "signals"),
        tags=_str_list(meta.get("tags"), str(path), "tags"),
        sections=sections,
        source=str(path),
    )
