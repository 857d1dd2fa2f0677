"""Candidate causes per component: each evidence source's support for a category, combined into a score."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from tools.analysis.evidence import proximity, undone_at
from tools.analysis.model import (
    ERROR_LEVELS,
    QUALITY_KINDS,
    Candidate,
    Observations,
    Precedent,
    Profile,
    SeriesAnomaly,
    fmt,
    fmt_duration,
)
from tools.analysis.signatures import signature_support
from tools.analysis.topology import downstream_quality_of, names_in, related
from tools.changes import Change
from tools.logs import TemplateChange
from tools.taxonomy import CHANGE_KIND_CATEGORY, cause_hints

SCOPE_LABELS = ("node", "tenant", "model", "instance", "pod", "region", "zone", "host")
HOST_ONLY_WEIGHT = 0.6


def _earliness(profile: Profile, onset: float | None, step_s: float = 60.0) -> float:
    if profile.onset is None:
        return 0.0
    if onset is None:
        return 1.0
    if all(a.anomaly.end < onset - step_s for a in profile.anomalies if a.anomaly.score >= 0.15):
        return 0.3  # it had come back to normal before the symptom began: an earlier episode
    late = (profile.onset - onset) / 60
    if late > 1:
        return math.exp(-(late - 1) / 3)  # after the symptom: more likely a knock-on effect
    # Leading the symptom is what a cause does: up to a third more for three minutes or more.
    return 1.0 + 0.1 * min(3.0, max(0.0, -late))


def _scope(items: list[SeriesAnomaly], profile: Profile) -> dict[str, str]:
    """Labels that single out where inside the component it happens (a node, a tenant)."""
    scope: dict[str, str] = {}
    for item in items:
        if item.component.startswith("node:") and item.component != profile.name:
            scope.setdefault("host", item.component.split(":", 1)[1])
            continue
        siblings = [s for s in profile.anomalies if s.series.name == item.series.name
                    and s.anomaly.stopped == item.anomaly.stopped]
        for label in SCOPE_LABELS:
            value = item.series.labels.get(label)
            if value and label not in scope:
                same_metric_anomalous = {s.series.labels.get(label) for s in siblings}
                if len(same_metric_anomalous) == 1:
                    scope[label] = value
    return scope


@dataclass
class _Support:
    """What the evidence says about each category of one component: support per source, the
    evidence cited, reasons, where inside it, and the change that best explains it."""

    support: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    evidence: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    reasons: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    scopes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    chosen_change: dict[str, Change] = field(default_factory=dict)
    change_reason: dict[str, str] = field(default_factory=dict)


def build_candidates(obs: Observations, profiles: dict[str, Profile], service: str | None, split: float,
                     onset: float | None, change_ids: dict[str, str], victims: dict[str, str],
                     precedent: dict[str, Precedent]) -> list[Candidate]:
    near = related(obs.topology, service) if service else set()
    service_core = 0.0
    if service and service in profiles:
        service_core = profiles[service].strength
    downstream_quality = downstream_quality_of(profiles, obs.topology, service)
    undone = undone_at(obs.changes)
    # New error templates that blame a dependency, per component that wrote them.
    blame = {p.name: [t for t in p.templates if t.evidence_id
                      and "dependency" in cause_hints(t.template.text + " " + t.template.example)]
             for p in profiles.values()}
    out: list[Candidate] = []
    for profile in profiles.values():
        name = profile.name
        relation = 1.0 if name == service or name in near else 0.75
        core, own_errors, log_core, blamed = _core(obs, profile, profiles, service, onset, relation, blame)
        victim_of = victims.get(name)
        if victim_of:
            core *= 0.4
        metric_ids = [a.evidence_id for a in profile.anomalies[:3] if a.evidence_id]

        # Support by category, from the three kinds of evidence.
        found = _Support()
        _metric_support(found, profile)
        _log_support(found, profile, profiles)
        _blame_support(found, blamed)
        _change_support(found, obs, profile, split, onset, change_ids, undone, victim_of)
        _fallback_support(found, profile, service, core, own_errors, log_core, metric_ids)
        if victim_of:
            for category in found.support:
                found.reasons[category].append(f"but {victim_of}, which {name} depends on or names in its errors, "
                                               "went wrong no later")
        out += _scored(found, obs, profile, core, victim_of, metric_ids, precedent,
                       downstream_quality, near, service_core)
    out.sort(key=lambda c: (-c.score, c.component, c.category))
    return out


def _core(obs: Observations, profile: Profile, profiles: dict[str, Profile], service: str | None,
          onset: float | None, relation: float, blame: dict[str, list[TemplateChange]]
          ) -> tuple[float, list[TemplateChange], float, list[tuple[TemplateChange, str]]]:
    """How strongly the component itself went wrong (its departure, its own errors, others' errors
    that blame it), with its own errors, their share of that, and the callers' errors that blame it."""
    name = profile.name
    core = profile.strength * _earliness(profile, onset, obs.step_s) * relation
    # Its own errors breaking out at the onset say where as well as a metric would: a
    # component can fail its requests while its CPU, memory and latency look normal.
    own_errors = [t for t in profile.templates if t.template.worst_level in ERROR_LEVELS
                  and not ("dependency" in cause_hints(t.template.text + " " + t.template.example)
                           and names_in(t, profiles, name))]
    log_core = 0.8 * max((t.strength for t in own_errors), default=0.0) * relation
    # Other components' new errors that blame this one by name ("upstream database postgres
    # timed out", "no instances available for fares"). When its own metrics are not collected
    # (an external service, one nobody scrapes), that is the only sign of where it failed; when
    # they are, and stayed normal, the callers' errors are more likely a knock-on of something
    # else (a saturated host slows every query) and only say why, below.
    blamed = [(item, caller) for caller, items in blame.items() if caller != name for item in items
              if name in names_in(item, profiles, caller)]
    blamed_core = 0.0 if profile.series else \
        0.7 * max((item.strength for item, _ in blamed), default=0.0) * relation
    core = max(core, log_core, blamed_core)
    if name == service and profile.strength == 0:
        # Users report it slow and its own series show nothing, but the host under it
        # saturated in the window: a weaker lead than a departure of its own.
        core = max(core, HOST_ONLY_WEIGHT * max((a.anomaly.score for a in profile.host_anomalies
                                                if a.signal.kind in ("saturation", "hardware")), default=0.0))
    return core, own_errors, log_core, blamed


def _metric_support(found: _Support, profile: Profile) -> None:
    """Metric signatures: patterns that point at a category by themselves."""
    for category, (strength, items) in signature_support(profile).items():
        found.support[category]["metrics"] = strength
        found.evidence[category] += [a.evidence_id for a in items[:3] if a.evidence_id]
        first = items[0]
        found.reasons[category].append(
            f"{first.series.title} {'rose' if first.anomaly.direction == 'up' else 'fell'} "
            f"to {fmt(first.anomaly.level_after)} from {fmt(first.anomaly.baseline_median)}"
            + (" (a slow drift under the detection threshold: a weak lead)" if first.anomaly.weak else "")
        )
        found.scopes[category] = _scope(items, profile)


def _log_support(found: _Support, profile: Profile, profiles: dict[str, Profile]) -> None:
    """Its own new or spiking logs: phrases that name a cause (Xid, pool exhausted, 429 from
    upstream) support it strongly."""
    for item in (t for t in profile.templates if t.evidence_id):
        hints = cause_hints(item.template.text + " " + item.template.example)
        if "dependency" in hints and names_in(item, profiles, profile.name):
            del hints["dependency"]  # it blames the component it names: counted there
        for category, hits in hints.items():
            strength = item.strength * min(1.0, 0.6 + 0.2 * hits)
            if strength > found.support[category].get("logs", 0.0):
                found.support[category]["logs"] = strength
                found.reasons[category].append(f"log '{item.template.text[:90]}' "
                                               f"{'appeared' if item.new else 'spiked'} ({item.after} lines)")
            found.evidence[category].append(item.evidence_id)
            where = [label.split("=", 1) for label, _ in item.template.labels.most_common(1)]
            if where and where[0][0] in SCOPE_LABELS and len(item.template.labels) <= 2:
                found.scopes[category].setdefault(where[0][0], where[0][1])


def _blame_support(found: _Support, blamed: list[tuple[TemplateChange, str]]) -> None:
    """Other components' new errors that name this one: a failing dependency."""
    for item, caller in blamed:
        strength = item.strength * 0.8
        if strength > found.support["dependency"].get("logs", 0.0):
            found.support["dependency"]["logs"] = strength
            found.reasons["dependency"].append(f"{caller}'s log '{item.template.text[:90]}' "
                                               f"{'appeared' if item.new else 'spiked'} ({item.after} lines)")
        found.evidence["dependency"].append(item.evidence_id)


def _change_support(found: _Support, obs: Observations, profile: Profile, split: float, onset: float | None,
                    change_ids: dict[str, str], undone: dict[str, float], victim_of: str | None) -> None:
    """Changes that landed on it shortly before it went wrong, the closest per category."""
    name = profile.name
    support = found.support
    own_start = profile.onset if profile.onset is not None else split
    # Saturation of the host under it that began with its own departure: the host explains the
    # moment better than a change that had been running quietly for minutes.
    host_saturated = [a.anomaly.onset for a in profile.host_anomalies
                      if a.signal.kind == "saturation" and a.anomaly.direction == "up" and a.anomaly.score >= 0.3]
    host_onset = min(host_saturated) if host_saturated else None
    for change in profile.changes:
        lead = split - change.ts
        if lead > obs.change_lookback_s:
            continue
        if undone.get(change.id, math.inf) <= own_start:
            continue  # rolled back before this component went wrong
        category = CHANGE_KIND_CATEGORY.get(change.kind, "code_change")
        when = (f"{fmt_duration(lead)} {'before' if lead >= 0 else 'after'} the onset" if onset is not None
                else f"{fmt_duration(obs.at - change.ts)} before the end of the window (no onset found)")
        # A slow fault (a leak) hurts users long after the release, but the component itself
        # starts to drift right after it: measure the lead to that drift too.
        drift = [a.anomaly.onset for a in profile.anomalies if a.anomaly.score >= 0.1 and a.anomaly.onset >= change.ts]
        if lead >= 0 and drift and min(drift) - change.ts < lead:
            when = f"{fmt_duration(min(drift) - change.ts)} before {name} began to drift ({when})"
            lead = min(drift) - change.ts
        strength = proximity(lead) * (0.5 if victim_of else 1.0)
        if host_onset is not None and abs(host_onset - own_start) <= 90 and own_start - change.ts > 180:
            strength *= 0.5
            when += f", but its host saturated at the moment {name} went wrong"
        best = found.chosen_change.get(category)
        closer = best is not None and lead >= 0 and lead < split - best.ts
        if strength > support[category].get("changes", 0.0) or (
                strength == support[category].get("changes") and closer):
            support[category]["changes"] = strength
            found.chosen_change[category] = change
            found.change_reason[category] = f"{change.kind} {change.id} landed {when}: {change.summary}"
        found.evidence[category].append(change_ids.get(change.id, change.id))


def _fallback_support(found: _Support, profile: Profile, service: str | None, core: float,
                      own_errors: list[TemplateChange], log_core: float, metric_ids: list[str]) -> None:
    """A component that went wrong with nothing more specific: from the service's side, a
    failing dependency; the service itself, unknown."""
    support = found.support
    if core > 0 and not support and own_errors and log_core >= profile.strength:
        # Errors it raises itself, with no phrase that says why: a fault in its own code or data.
        support["code_change"]["logs"] = own_errors[0].strength
        found.evidence["code_change"] += [t.evidence_id for t in own_errors[:2] if t.evidence_id]
        item = own_errors[0]
        found.reasons["code_change"].append(f"its own errors '{item.template.text[:90]}' "
                                            f"{'appeared' if item.new else 'spiked'} ({item.after} lines), "
                                            "with no change recorded")
    if core > 0 and not support:
        if profile.name != service:
            # Its own departure is the evidence that the dependency failed.
            support["dependency"]["metrics"] = 0.5 * profile.strength
            found.evidence["dependency"] += metric_ids
        else:
            support["unknown"]["metrics"] = 0.0


def _scored(found: _Support, obs: Observations, profile: Profile, core: float, victim_of: str | None,
            metric_ids: list[str], precedent: dict[str, Precedent], downstream_quality: dict[str, float],
            near: set[str], service_core: float) -> list[Candidate]:
    """One candidate per supported category: generic error logs and similar past incidents
    added to its support, then scored, and refuted where the evidence says so."""
    name = profile.name
    evidence, reasons = found.evidence, found.reasons
    # New or spiking error logs in a component support every cause located there, weakly.
    log_items = [t for t in profile.templates if t.evidence_id]
    generic = max((t.strength for t in log_items if t.template.worst_level in ("error", "fatal")), default=0.0)
    generic_ids = [t.evidence_id for t in log_items[:2]
                   if t.template.worst_level in ("error", "fatal")]
    out: list[Candidate] = []
    for category, parts in found.support.items():
        if victim_of and category in ("dependency", "unknown"):
            continue  # explained by the upstream's own hypothesis, not a new one
        if generic and parts.get("logs", 0.0) < 0.5 * generic:
            parts["logs"] = 0.5 * generic
            evidence[category] += generic_ids
        past = precedent.get(category)
        if past and past.share > 0:
            # Similar past incidents had this cause: a modest nudge, never a cause by itself.
            parts["incidents"] = 0.4 * past.share
            evidence[category] += past.evidence[:2]
            reasons[category].append(f"similar past incidents had this cause ({past.share:.0%} of their vote)")
        change = found.chosen_change.get(category)
        effective_core = core
        if change is not None and core == 0:
            if change.kind in QUALITY_KINDS:
                # A model or index swap shows where output quality is measured, downstream.
                effective_core = 0.8 * downstream_quality.get(name, 0.0)
            elif not profile.series and name in near:
                # A change on a neighbour we cannot see can still break the service it talks to.
                effective_core = 0.3 * service_core
        # Independent supports add up (capped), so a cause with more kinds of evidence pulls ahead.
        combined = min(1.5, sum(parts.values())) / 1.5
        # The departure says where; the support says why: a category without support stays low.
        score = effective_core * (0.3 + 0.7 * combined) + 0.1 * combined
        reason_list = list(dict.fromkeys(reasons[category]))
        if change is not None:
            reason_list.insert(0, found.change_reason[category])
        refuted = ""
        # Refuting needs the evidence to refute with: the component's metrics were read, show
        # nothing, its logs show nothing new, and nothing downstream points back at it.
        if (profile.series and profile.strength == 0 and parts.get("changes") and not parts.get("logs")
                and effective_core == 0):
            refuted = f"{name} shows no departure from its baseline in the window"
        elif change is not None and category == CHANGE_KIND_CATEGORY.get(change.kind) and not parts.get("logs"):
            # A change cannot have started what was already under way when it landed (a step
            # of slack for where the samples fall).
            own = [a.anomaly.onset for a in profile.anomalies if a.component == name]
            if own and max(own) < change.ts - obs.step_s:
                refuted = (f"{name} departed {fmt_duration(change.ts - max(own))} before {change.id} landed: "
                           "the change did not start it")
        out.append(Candidate(
            category=category,
            component=name,
            score=round(score, 4),
            support=dict(parts),
            evidence=list(dict.fromkeys(metric_ids + evidence[category])),
            reasons=reason_list,
            scope=found.scopes.get(category, {}),
            change=change,
            refuted=refuted,
            weak=bool(profile.anomalies) and all(a.anomaly.weak for a in profile.anomalies),
        ))
    return out
