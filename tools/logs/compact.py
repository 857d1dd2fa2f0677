"""A log search's lines as templates for the model: counts, levels, first and last time, an example."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tools.compaction import fill
from tools.diagnosis import iso
from tools.logs.records import LEVELS, loose_record
from tools.logs.templates import new_miner

LOG_TEMPLATES_K = 20
EXAMPLE_CHARS = 300


def compact_logs(lines: list[str] | list[dict], *, cap_chars: int, k: int = LOG_TEMPLATES_K) -> dict:
    """Log lines as templates: count, levels, first/last time (when lines carry one), one example.

    Lines are text (JSON lines or plain text with a timestamp, as tools/logs/records.py parses them; other
    text is taken whole) or dicts (``message``/``msg``/``line``, ``ts``/``time``, ``level``,
    ``service``). Templates are mined per service with the masking of tools/logs/templates.py, sorted by
    count; the top ``k`` that fit in ``cap_chars`` are kept and the rest counted.
    """
    miners: dict[str, Any] = {}
    stats: dict[tuple[str, int], dict[str, Any]] = {}
    levels: Counter[str] = Counter()
    first = last = None
    total = timed = 0
    for item in lines or []:
        ts, service, level, message = loose_record(item)
        if not message:
            continue
        total += 1
        miner = miners.get(service)
        if miner is None:
            miner = miners[service] = new_miner()
        cluster = miner.add_log_message(message)["cluster_id"]
        entry = stats.get((service, cluster))
        if entry is None:
            entry = stats[(service, cluster)] = {
                "service": service, "cluster": cluster, "count": 0, "levels": Counter(),
                "first": None, "last": None, "example": message[:EXAMPLE_CHARS],
            }
        entry["count"] += 1
        entry["levels"][level] += 1
        levels[level] += 1
        if ts is not None:
            timed += 1
            entry["first"] = ts if entry["first"] is None else min(entry["first"], ts)
            entry["last"] = ts if entry["last"] is None else max(entry["last"], ts)
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)

    several_services = len(miners) > 1
    ranked = sorted(stats.values(), key=lambda e: (-e["count"], -max(LEVELS.index(lv) for lv in e["levels"])))
    templates = []
    for entry in ranked:
        cluster = miners[entry["service"]].drain.id_to_cluster.get(entry["cluster"])
        template: dict[str, Any] = {
            "template": cluster.get_template() if cluster is not None else entry["example"],
            "count": entry["count"],
            "levels": dict(entry["levels"].most_common()),
        }
        if several_services:
            template["service"] = entry["service"]
        if entry["first"] is not None:
            template["first"] = iso(entry["first"])
            template["last"] = iso(entry["last"])
        template["example"] = entry["example"]
        templates.append(template)

    head: dict[str, Any] = {
        "lines": total, "templates_total": len(templates), "levels": dict(levels.most_common()),
    }
    if first is not None:
        head.update(first=iso(first), last=iso(last), lines_with_time=timed)
    return fill(head, "templates", templates, k, cap_chars,
                 tail=lambda chosen: {"omitted_lines": total - sum(t["count"] for t in chosen)})
