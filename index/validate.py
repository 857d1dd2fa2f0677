"""Validating record fields (dates, lists, taxonomy categories and actions) and incidents given as plain mappings."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Any, Iterable

from index.errors import RecordError
from index.schema import SECTION_FIELDS, IncidentRecord
from tools.taxonomy import ACTIONS, CATEGORIES

# --- fields ------------------------------------------------------------------------------------


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


def str_list(value: Any, where: str, name: str) -> list[str]:
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


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return "\n".join(as_text(v) for v in value.values() if as_text(v))
    if isinstance(value, (list, tuple)):
        return "\n".join(as_text(v) for v in value if as_text(v))
    return str(value)


def suggest_option(word: str, options: Iterable[str]) -> str:
    guess = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{guess[0]}'?" if guess else f"use one of {', '.join(options)}"


def check_category(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text not in CATEGORIES:
        raise RecordError(f"{where}: unknown root-cause category {text!r}; {suggest_option(text, CATEGORIES)}")
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
            raise RecordError(f"{where}: unknown mitigation action {action!r}; {suggest_option(action, ACTIONS)}")
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


RECORD_KEYS = {
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
    root_cause_text = as_text(data.get("root_cause_text"))
    category = data.get("category")
    if isinstance(root_cause, dict):
        category = category or root_cause.get("category")
        root_cause_text = root_cause_text or as_text(root_cause.get("details") or root_cause.get("text")
                                                   or root_cause.get("statement"))
    elif isinstance(root_cause, str):
        if root_cause.strip() in CATEGORIES:
            category = category or root_cause.strip()
        elif category is None and re.fullmatch(r"[a-z_]+", root_cause.strip()):
            check_category(root_cause, f"{where} (root_cause)")  # raises with a suggestion
        else:
            root_cause_text = root_cause_text or root_cause.strip()
    category = check_category(category, f"{where} (category)")
    categories = [check_category(c, f"{where} (categories)") for c in str_list(data.get("categories"), where, "categories")]
    services = str_list(data.get("services", data.get("service")), where, "services")
    raw_mitigations = data.get("mitigations")
    mitigations = check_actions(raw_mitigations, f"{where} (mitigations)")
    sections = dict(sections or {})
    extra_sections = data.get("sections")
    if isinstance(extra_sections, dict):
        sections.update({str(k): as_text(v) for k, v in extra_sections.items()})
    filled: dict[str, str] = {}
    for heading, body in sections.items():
        key = heading.strip().lower()
        target = SECTION_FIELDS.get(key) or next(
            (f for h, f in SECTION_FIELDS.items() if key.startswith(h)), None)
        if target and body and target not in filled:
            filled[target] = body
    mitigation_text = as_text(data.get("mitigation_text")) or filled.get("mitigation_text", "")
    details = _mitigation_details(raw_mitigations)
    if details and details not in mitigation_text:
        mitigation_text = "\n".join(p for p in (mitigation_text, details) if p)
    record_id = str(data.get("id") or default_id).strip()
    if not record_id:
        raise RecordError(f"{where}: empty 'id'; give the incident an id such as INC-1042")
    return IncidentRecord(
        id=record_id,
        title=title.strip(),
        summary=as_text(data.get("summary")) or filled.get("summary", ""),
        services=services,
        date=normalise_date(data.get("date"), where),
        severity=str(data["severity"]).strip() if data.get("severity") not in (None, "") else None,
        category=category,
        categories=[c for c in categories if c],
        mitigations=mitigations,
        mitigation_text=mitigation_text,
        root_cause_text=root_cause_text or filled.get("root_cause_text", ""),
        impact=as_text(data.get("impact")) or filled.get("impact", ""),
        symptoms=str_list(data.get("symptoms"), where, "symptoms"),
        operation=str_list(data.get("operation"), where, "operation"),
        tags=str_list(data.get("tags"), where, "tags"),
        source=source,
        sections=sections,
    )
