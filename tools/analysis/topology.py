"""Dependency paths between components, and which component's departure is a knock-on effect of another's."""

from __future__ import annotations

import math
import re
from typing import Iterable

from tools.analysis.model import ATTRIBUTION_LABELS, ERROR_LEVELS, QUALITY_KINDS, Profile
from tools.metrics.catalog import classify
from tools.logs import TemplateChange
from tools.taxonomy import cause_hints


def upstream_of(topology: dict[str, list[str]], component: str) -> set[str]:
    """Everything ``component`` depends on, directly or through others."""
    seen: set[str] = set()
    todo = list(topology.get(component, []))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(topology.get(name, []))
    return seen


def related(topology: dict[str, list[str]], service: str) -> set[str]:
    """Components on the service's dependency paths: what it depends on and what depends on it."""
    return upstream_of(topology, service) | {name for name in topology if service in upstream_of(topology, name)}


def _mentions(profile: "Profile", names: Iterable[str]) -> set[str]:
    """Other components named in this component's new or spiking warnings and errors."""
    text = " ".join(f"{t.template.text} {t.template.example}" for t in profile.templates
                    if t.template.worst_level in ("warn", "error", "fatal")).lower()
    return {n for n in names if n != profile.name and re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", text)}


def names_in(item: TemplateChange, profiles: dict[str, "Profile"], writer: str) -> set[str]:
    """Known components other than its writer that a log template names."""
    text = f"{item.template.text} {item.template.example}".lower()
    return {n for n in profiles if n != writer
            and re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", text)}


def _own_fault_logged(profile: "Profile") -> bool:
    """Its new or spiking errors point at its own code, and none of them at a dependency."""
    errors = [t for t in profile.templates if t.template.worst_level in ERROR_LEVELS and t.strength >= 0.5]
    hints = [cause_hints(t.template.text + " " + t.template.example) for t in errors]
    return any("code_change" in h for h in hints) and not any("dependency" in h for h in hints)


def knock_on_cause(profile: "Profile", profiles: dict[str, "Profile"], topology: dict[str, list[str]],
                   undone: dict[str, float] | None = None, step_s: float = 0.0) -> str | None:
    """The component whose failure this one is a knock-on effect of, if any.

    A component is a victim when something it depends on (by the topology, or by naming it in its
    own new error logs), or a sender its traffic series name as tenant or client, departed from
    normal no later than it did — and, when this component had a release of its own just before,
    before that release landed: what departed after it may be the release's own effect (a caller
    that fails its requests sends its database less work).
    """
    if profile.onset is None:
        return None
    undone = undone or {}
    # Only a release this component reacted to at once (within three minutes): one that ran
    # quietly for longer did not start what its dependency is doing now.
    own_changes = [c.ts for c in profile.changes
                   if 0 <= profile.onset - c.ts <= 180 and undone.get(c.id, math.inf) > profile.onset]
    caused_after = min(own_changes) if own_changes else math.inf
    senders = {a.series.labels.get(label) for a in profile.anomalies if a.component == profile.name
               for label in ATTRIBUTION_LABELS} & set(profiles)
    named = _mentions(profile, profiles)
    upstream = upstream_of(topology, profile.name)
    if _own_fault_logged(profile):
        # Its new errors say the fault is its own (an exception in its code) and name no
        # dependency: a dependency that moved too is not what broke it.
        upstream = set()
    suspects = upstream | named | senders
    # Not the victim of a component whose departure this one's own traffic explains (its series
    # carry this component as tenant or client).
    suspects -= {a.component for a in profile.anomalies if a.component != profile.name}
    earlier = [
        (other.onset, name) for name in suspects
        if name is not None and (other := profiles.get(name)) is not None and other.onset is not None
        # Within one step of each other, two departures cannot be ordered: the dependency's counts.
        and other.strength >= 0.3 and other.onset <= profile.onset + step_s
        and (other.onset < caused_after or name in senders)  # a sender's load is its own doing
    ]
    # Output quality falling right after a model or index swap upstream: the swap's component is
    # the cause even though its own metrics (latency, errors) do not show it.
    # Not when this component had a release of its own just before, nor when the swapped
    # component's own quality signals stayed normal.
    own_release = any(0 <= profile.onset - c.ts <= 1800 for c in profile.changes)
    if any(a.signal.kind == "quality" for a in profile.anomalies) and not own_release:
        upstream = upstream_of(topology, profile.name)
        for name, other in profiles.items():
            if name == profile.name or _quality_stayed_normal(other):
                continue
            if name not in upstream:
                # Where the topology does not relate them, the swapped component's own quality
                # must have fallen first.
                own = [a.anomaly.onset for a in other.anomalies if a.signal.kind == "quality" and a.component == name]
                if not own or min(own) > profile.onset:
                    continue
            for change in other.changes:
                if change.kind in QUALITY_KINDS and 0 <= profile.onset - change.ts <= 1800:
                    earlier.append((change.ts, name))
    return min(earlier)[1] if earlier else None


def _quality_stayed_normal(profile: "Profile") -> bool:
    """The component measures its own output quality, and none of those signals departed."""
    measured = any(classify(s.name).kind == "quality" for s in profile.series)
    return measured and not any(a.signal.kind == "quality" for a in profile.anomalies)


def downstream_quality_of(profiles: dict[str, Profile], topology: dict[str, list[str]],
                          service: str | None) -> dict[str, float]:
    """For each component, the strongest output-quality departure among those that depend on it
    (or, where the topology says nothing about it, on the investigated service)."""
    quality = {name: max((a.anomaly.score for a in p.anomalies if a.signal.kind == "quality"), default=0.0)
               for name, p in profiles.items()}
    known = set(topology) | {d for deps in topology.values() for d in deps}
    out: dict[str, float] = {}
    for name in profiles:
        if _quality_stayed_normal(profiles[name]):
            out[name] = 0.0
            continue
        users = {other for other in profiles if name in upstream_of(topology, other)}
        if name not in known and service:
            users.add(service)
        out[name] = max((quality[u] for u in users if u in quality), default=0.0)
    return out
