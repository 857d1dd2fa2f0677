"""Numbered evidence from each source (metrics, logs, changes, past incidents), and which changes were rolled back."""

from __future__ import annotations

import math
from collections import defaultdict

from tools.analysis.model import Observations, Precedent, Profile, fmt, fmt_duration
from tools.analysis.series import anomaly_order
from tools.changes import Change
from tools.diagnosis import Evidence, iso
from tools.logs import Template, TemplateChange, covered_minutes, template_changes
from tools.taxonomy import cause_hints

MAX_METRIC_EVIDENCE = 25
MAX_LOG_EVIDENCE = 15
LOG_LEAD_S = 120.0


def metric_evidence(obs: Observations, profiles: dict[str, Profile], evidence: list[Evidence]) -> None:
    # An anomaly attributed to two components (server and sender) is one piece of evidence.
    unique = {id(a): a for p in profiles.values() for a in p.anomalies + p.host_anomalies}
    ranked = sorted(unique.values(), key=anomaly_order)
    for number, item in enumerate(ranked[:MAX_METRIC_EVIDENCE], 1):
        a = item.anomaly
        item.evidence_id = f"m{number}"
        arrow = "rose" if a.direction == "up" else "fell"
        if a.weak:
            summary = (f"{item.series.title} drifted from {fmt(a.baseline_median)} (baseline median) to "
                       f"{fmt(a.level_after)} since {iso(a.onset)}, steadily but under the sustained-departure "
                       f"rule ({a.magnitude:.0f} robust sd at the end): a weak lead")
        elif a.stopped:
            summary = (f"{item.series.title} stopped reporting at {iso(a.onset)} (it read "
                       f"{fmt(a.baseline_median)} before): what it measured is gone or unreachable")
        else:
            summary = (f"{item.series.title} {arrow} from {fmt(a.baseline_median)} (baseline median) to "
                       f"{fmt(a.level_after)} at {iso(a.onset)}, peak {fmt(a.peak)}; "
                       f"{a.magnitude:.0f} robust sd, {a.persistence:.0%} of points since then out of range")
        evidence.append(Evidence(
            id=item.evidence_id,
            source="metrics",
            query=item.series.query or item.series.selector,
            summary=summary,
            onset=iso(a.onset),
            score=round(a.score, 3),
            link=obs.links.get(item.series.query),
            component=item.component,
            details={"signal": item.signal.name, "kind": item.signal.kind, "direction": a.direction,
                     "labels": item.series.labels, "baseline_median": a.baseline_median,
                     "level_after": a.level_after, "peak": a.peak, "magnitude": a.magnitude},
        ))


def log_evidence(obs: Observations, profiles: dict[str, Profile], split: float,
                 evidence: list[Evidence], limits: list[str]) -> None:
    by_service: dict[str, list[Template]] = defaultdict(list)
    for template in obs.templates:
        by_service[template.service].append(template)
    changes: list[TemplateChange] = []
    start = obs.window_start - obs.baseline_s
    # Rates before the onset are over the time the logs cover, not the nominal baseline: a service
    # that started logging ten minutes ago has ten minutes of "before".
    covered = min((t.first_seen for t in obs.templates), default=start)
    if covered > start + 60 and covered < split:
        limits.append(f"the logs begin {fmt_duration(split - covered)} before the onset: "
                          "log rates before it are over that span")
        start = covered
    # A cause logs before users feel it (a hardware error, then the failures it causes): lines
    # from shortly before the onset count with those after it.
    lead_split = max(start + 60, split - LOG_LEAD_S) if split > obs.window_start else split
    minutes = covered_minutes(obs.templates)
    gaps = sum(1 for m in range(int(start // 60), int(split // 60)) if m not in minutes)
    if minutes and gaps and min(minutes) * 60 < split:
        limits.append(f"no service logged anything for {gaps} minute{'s' if gaps > 1 else ''} before the onset "
                      "(a gap in collection): log rates before it are over the minutes the logs cover")
    for component, templates in by_service.items():
        # The lead is for what began in it; a template already running before it is judged at the onset.
        fresh: list[Template] = []
        running: list[Template] = []
        for t in templates:
            (running if t.count_between(lead_split - 120, lead_split) else fresh).append(t)
        found = (template_changes(fresh, lead_split, start, obs.at, covered=minutes)
                 + template_changes(running, split, start, obs.at, covered=minutes))
        found.sort(key=lambda c: -c.strength)
        profiles.setdefault(component, Profile(component)).templates = found
        changes.extend(found)
    changes.sort(key=lambda c: -c.strength)
    for number, item in enumerate(changes[:MAX_LOG_EVIDENCE], 1):
        t = item.template
        what = (f"new after onset: {item.after} lines" if item.new else
                f"rate jumped from {item.before_rate:.2f}/min to {item.after_rate:.2f}/min ({item.after} lines after onset)")
        where = ", ".join(label for label, _ in t.labels.most_common(2))
        evidence.append(Evidence(
            id=f"l{number}",
            source="logs",
            query=obs.log_queries.get(t.service, t.service),
            summary=f"[{t.worst_level}] {t.text} ({what}){' on ' + where if where else ''}; e.g. {t.example[:200]}",
            onset=iso(max(t.first_seen, split) if not item.new else t.first_seen),
            score=item.strength,
            link=obs.log_links.get(t.service),
            component=t.service,
            details={"template": t.text, "new": item.new, "before": item.before, "after": item.after,
                     "level": t.worst_level, "labels": dict(t.labels.most_common(5)),
                     "hints": cause_hints(t.text + " " + t.example)},
        ))
        item.evidence_id = f"l{number}"


def undone_at(changes: list[Change]) -> dict[str, float]:
    """When each change stopped running: a later rollback of the same service put back what ran
    before it. A change no longer running cannot start a departure after that moment."""
    back = rollbacks(changes)
    out: dict[str, float] = {}
    ordered = sorted(changes, key=lambda c: (c.ts, c.id))
    for index, change in enumerate(ordered):
        if change.id in back:
            continue
        for later in ordered[index + 1:]:
            if later.service == change.service and later.id in back:
                out[change.id] = later.ts
                break
    return out


def rollbacks(changes: list[Change]) -> set[str]:
    """Ids of changes that put back what ran before: ``kind: rollback``, or a version the service
    ran earlier. A rollback is a mitigation someone took, never a suspect."""
    out: set[str] = set()
    seen: dict[str, set[str]] = defaultdict(set)
    for change in sorted(changes, key=lambda c: (c.ts, c.id)):
        earlier = seen[change.service]
        if change.kind == "rollback" or (change.version and change.version in earlier - {change.previous_version}):
            out.add(change.id)
        earlier.update(v for v in (change.previous_version, change.version) if v)
    return out


def change_evidence(obs: Observations, profiles: dict[str, Profile], split: float, onset: float | None,
                    back: set[str], evidence: list[Evidence]) -> dict[str, str]:
    ids: dict[str, str] = {}
    relevant = [c for c in obs.changes if split - obs.change_lookback_s <= c.ts <= obs.at]
    for number, change in enumerate(sorted(relevant, key=lambda c: (c.ts, c.id)), 1):
        lead = split - change.ts
        if onset is None:
            # No onset was found: say when it landed, never where it stands to an onset.
            when = f"landed {fmt_duration(obs.at - change.ts)} before the end of the window (no onset found)"
        else:
            when = f"{fmt_duration(lead)} before onset" if lead >= 0 else f"{fmt_duration(lead)} after onset"
        version = f" ({change.previous_version} -> {change.version})" if change.version and change.previous_version else ""
        eid = f"c{number}"
        ids[change.id] = eid
        rolled_back = change.id in back
        if not rolled_back:
            profiles.setdefault(change.service, Profile(change.service)).changes.append(change)
        kind = "rollback" if rolled_back and change.kind != "rollback" else change.kind
        evidence.append(Evidence(
            id=eid,
            source="changes",
            query=obs.change_queries[0] if len(obs.change_queries) == 1 else "; ".join(obs.change_queries),
            summary=f"{kind} {change.id} on {change.service}{version}: {change.summary} "
                    f"by {change.author or 'unknown'}, {when}"
                    + ("; a rollback to an earlier version: a mitigation, not a suspect" if rolled_back else ""),
            onset=iso(change.ts),
            score=0.0 if rolled_back else round(proximity(lead), 3),
            link=change.url or None,
            component=change.service,
            details={"change_id": change.id, "kind": change.kind, "lead_s": lead, "rollback": rolled_back},
        ))
    return ids


def incident_evidence(obs: Observations, evidence: list[Evidence]) -> dict[str, Precedent]:
    """Similar past incidents as evidence, and their similarity-weighted vote per category."""
    votes: dict[str, float] = defaultdict(float)
    precedent: dict[str, Precedent] = {}
    for number, past in enumerate(obs.similar, 1):
        eid = f"i{number}"
        categories = [c for c in past.get("categories") or [past.get("category")] if c and c != "unknown"]
        fixes = ", ".join(past.get("mitigations") or []) or "not recorded"
        evidence.append(Evidence(
            id=eid, source="incidents", query=obs.similar_query,
            summary=f"past incident {past['id']}: {past.get('title', '')} (root cause {', '.join(categories) or 'unknown'}; "
                    f"fixed by {fixes}); {past.get('why', '')}".strip("; "),
            onset=past.get("date"), score=round(float(past.get("similarity", 0.0)), 3),
            details={"record_id": past["id"], "categories": categories, "mitigations": past.get("mitigations") or []},
        ))
        weight = max(float(past.get("score", past.get("similarity", 0.0))), 0.0) ** 2
        for category in categories:
            votes[category] += weight / len(categories)
            entry = precedent.setdefault(category, Precedent(0.0, [], defaultdict(list)))
            entry.evidence.append(eid)
            for action in past.get("mitigations") or []:
                entry.mitigations[action].append(past["id"])
    total = sum(votes.values())
    for category, entry in precedent.items():
        entry.share = votes[category] / total if total else 0.0
    return precedent


def proximity(lead_s: float) -> float:
    """How plausible it is that a change landing ``lead_s`` before the onset caused it."""
    minutes = lead_s / 60
    if minutes < -1:
        return 0.1  # landed after the onset (beyond its one-minute resolution): a reaction, not a cause
    if minutes <= 20:
        return 1.0
    return math.exp(-(minutes - 20) / 40)
