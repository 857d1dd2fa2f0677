"""The labelled public-cloud postmortem corpus: its 3-level labels mapped onto the taxonomy, its records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from index.errors import RecordError
from index.schema import IncidentRecord
from index.validate import as_text, normalise_date

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
        title = as_text(item.get("title"))
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
        mitigation_text = as_text(mitigation.get("details"))
        services = _flat_strings(item.get("service_name", item.get("service name")))
        symptoms = _flat_strings(item.get("impact symptom"))
        manifestation = _flat_strings(item.get("manifestation"))
        tags = [t for t in ("human-error" if item.get("human error") else "",) if t]
        tags += [f"mitigation:{str(m).strip()}" for m in mitigation_labels if m]
        sections = {"Details": as_text(item.get("details"))}
        if steps:
            sections["Troubleshooting"] = as_text(steps)
        propagation = " ".join(_flat_strings(item.get("propagation pass")))
        if propagation:
            sections["Propagation"] = propagation
        duration = item.get("duration")
        records.append(IncidentRecord(
            id=str(record_id),
            title=title,
            summary=as_text(item.get("summary")),
            services=services,
            date=_azure_date(item.get("time"), where),
            severity=None,
            category=categories[0] if categories else None,
            categories=categories,
            mitigations=actions,
            mitigation_text=mitigation_text,
            root_cause_text=as_text(root.get("details")),
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
