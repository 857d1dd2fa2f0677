"""The deterministic investigation's reasoning: observations in, ranked hypotheses out.

No I/O happens here. ``analyse`` receives what the sources returned (series per component, mined
log templates, changes) and:
1. scores every series for a sustained departure that begins in the window (tools.anomaly);
2. fixes the symptom's onset on the investigated service;
3. profiles each component: how strongly and how early (relative to the onset) it went wrong;
4. collects the support for each (category, component): changes that landed shortly before the
   onset, log templates that appeared or spiked, and metric signatures (hardware faults,
   saturation, traffic, quality, upstream throttling);
5. ranks hypotheses, says why each alternative ranks lower, and proposes mitigations.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from tools.anomaly import Anomaly, detect, drift, stopped
from tools.catalog import DEFAULT_SIGNALS, GENERIC, Signal, classify
from tools.changes import Change
from tools.diagnosis import Diagnosis, Evidence, Hypothesis, Mitigation, iso
from tools.logs import Template, TemplateChange, covered_minutes, template_changes
from tools.metric_types import STATUS_LABELS
from tools.metrics import Series
from tools.taxonomy import CHANGE_KIND_CATEGORY, READ_ONLY_ACTIONS, cause_hints, symptoms_in

SCOPE_LABELS = ("node", "tenant", "model", "instance", "pod", "region", "zone", "host")
MAX_METRIC_EVIDENCE = 25
MAX_LOG_EVIDENCE = 15


@dataclass
class Observations:
    """Everything the sources returned for one investigation (the input of ``analyse``)."""

    symptom_text: str
    service: str | None
    at: float
    window_start: float
    baseline_s: float
    change_lookback_s: float
    step_s: float = 60.0
    topology: dict[str, list[str]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # component -> who to page
    series: dict[str, list[Series]] = field(default_factory=dict)  # component -> series
    signal_names: dict[str, str] = field(default_factory=dict)  # query -> catalog signal name
    links: dict[str, str] = field(default_factory=dict)  # query -> link
    templates: list[Template] = field(default_factory=list)
    log_queries: dict[str, str] = field(default_factory=dict)  # component -> query
    log_links: dict[str, str] = field(default_factory=dict)  # component -> link
    changes: list[Change] = field(default_factory=list)
    change_queries: list[str] = field(default_factory=list)
    # Similar past incidents (dicts: id, title, similarity, score, categories, mitigations, ...).
    similar: list[dict] = field(default_factory=list)
    similar_query: str = ""
    # What limited the investigation, in plain words (a young stack's short history, ...).
    limits: list[str] = field(default_factory=list)
    # Host components (node:<host>) -> the services running on that host.
    hosts: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SeriesAnomaly:
    component: str
    series: Series
    signal: Signal
    anomaly: Anomaly
    evidence_id: str = ""


@dataclass
class Profile:
    """How one component behaved in the window."""

    name: str
    series: list[Series] = field(default_factory=list)
    anomalies: list[SeriesAnomaly] = field(default_factory=list)
    templates: list[TemplateChange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Departures of the host it runs on (node:<host>): they say why, never where.
    host_anomalies: list[SeriesAnomaly] = field(default_factory=list)

    @property
    def strength(self) -> float:
        return max((a.anomaly.score for a in self.anomalies), default=0.0)

    @property
    def onset(self) -> float | None:
        """When its strongest departures began: the earliest of those at least half as strong as
        the strongest, so a weaker blip before them does not date the component."""
        strong = [a.anomaly for a in self.anomalies if a.anomaly.score >= 0.15]
        if not strong:
            return None
        top = max(a.score for a in strong)
        return min(a.onset for a in strong if a.score >= 0.5 * top)


@dataclass
class Candidate:
    category: str
    component: str
    score: float
    support: dict[str, float]
    evidence: list[str]
    reasons: list[str]
    scope: dict[str, str] = field(default_factory=dict)
    change: Change | None = None
    refuted: str = ""
    weak: bool = False  # drawn from a slow drift alone: a lead, said as such


# --- helpers ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude != 0 and magnitude < 0.01:
        return f"{value:.4f}"
    if magnitude < 10:
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}"


def _minutes(seconds: float) -> str:
    minutes = abs(seconds) / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{abs(seconds):.0f} s"


def _upstream(topology: dict[str, list[str]], component: str) -> set[str]:
    """Everything ``component`` depends on, directly or through others."""
    seen: set[str] = set()
    todo = list(topology.get(component, []))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(topology.get(name, []))
    return seen


def _related(topology: dict[str, list[str]], service: str) -> set[str]:
    """Components on the service's dependency paths: what it depends on and what depends on it."""
    return _upstream(topology, service) | {name for name in topology if service in _upstream(topology, name)}


def _mentions(profile: "Profile", names: Iterable[str]) -> set[str]:
    """Other components named in this component's new or spiking warnings and errors."""
    text = " ".join(f"{t.template.text} {t.template.example}" for t in profile.templates
                    if t.template.worst_level in ("warn", "error", "fatal")).lower()
    return {n for n in names if n != profile.name and re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", text)}


def _names_in(item: TemplateChange, profiles: dict[str, "Profile"], writer: str) -> set[str]:
    """Known components other than its writer that a log template names."""
    text = f"{item.template.text} {item.template.example}".lower()
    return {n for n in profiles if n != writer
            and re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", text)}


def _own_fault_logged(profile: "Profile") -> bool:
    """Its new or spiking errors point at its own code, and none of them at a dependency."""
    errors = [t for t in profile.templates if t.template.worst_level in ERROR_LEVELS and t.strength >= 0.5]
    hints = [cause_hints(t.template.text + " " + t.template.example) for t in errors]
    return any("code_change" in h for h in hints) and not any("dependency" in h for h in hints)


def _victim_of(profile: "Profile", profiles: dict[str, "Profile"], topology: dict[str, list[str]],
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
    upstream = _upstream(topology, profile.name)
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
        if (other := profiles.get(name)) is not None and other.onset is not None
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
        upstream = _upstream(topology, profile.name)
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


# --- analysis -----------------------------------------------------------------------------------


# Labels that name who sent the traffic a series measures: when the value is itself a component,
# the series says as much about that component as about the one that served it.
ATTRIBUTION_LABELS = ("tenant", "client", "caller", "consumer", "source_service", "client_service")
# Labels that name the other end of a call measured at the caller (client-side latency or errors of
# calls to a callee): when the value is a component, the series measures that component (and the
# network to it), not the caller that happens to export it.
CALLEE_LABELS = ("callee", "upstream", "peer_service", "peer", "target_service", "destination_service",
                 "destination", "dest_service", "remote_service", "server", "target")


# Client-side series (calls a component makes) that name no callee.
OUTBOUND = re.compile(r"(^|_)(outbound|egress|client|upstream|downstream)(_|$)")
OUTBOUND_WEIGHT = 0.4


def callee_of(series: Series, component: str, known: set[str]) -> str | None:
    """The component at the other end of an edge series exported by ``component``, if it names one."""
    for label in CALLEE_LABELS:
        other = series.labels.get(label)
        if other and other != component and other in known:
            return other
    return None


def _is_edge(series: Series, component: str) -> bool:
    """The series is a caller's measurement of calls to ``component``."""
    return any(series.labels.get(label) == component for label in CALLEE_LABELS) \
        and series.labels.get("service") != component


def _score_series(obs: Observations) -> dict[str, Profile]:
    known = set(obs.series) | set(obs.topology) | {d for deps in obs.topology.values() for d in deps} \
        | {t.service for t in obs.templates} | {c.service for c in obs.changes}
    profiles: dict[str, Profile] = {name: Profile(name) for name in sorted(obs.series)}
    owner: dict[int, str] = {}
    for component in sorted(obs.series):
        for series in obs.series[component]:
            where = callee_of(series, component, known) or component
            owner[id(series)] = where
            profiles.setdefault(where, Profile(where)).series.append(series)
    # How far the metrics reach: a series that ends well before the others stopped.
    data_until = max((float(s.timestamps[-1]) for group in obs.series.values() for s in group if len(s.timestamps)),
                     default=obs.at)
    for component in sorted(obs.series):
        for series in obs.series[component]:
            signal = _signal_of(series, obs)
            found = detect(series.timestamps, series.values, obs.window_start, obs.at, obs.baseline_s,
                           signal.direction, obs.step_s)
            if found is None:
                found = stopped(series.timestamps, series.values, obs.window_start, obs.at, obs.baseline_s,
                                obs.step_s, data_until)
            if found is None or found.score < 0.05:
                continue
            where = owner[id(series)]
            if where == component and OUTBOUND.search(series.name):
                # Its calls out got slow or failed, and the series does not say to whom: that is
                # about what it depends on more than about itself.
                found.score = round(found.score * OUTBOUND_WEIGHT, 4)
            item = SeriesAnomaly(where, series, signal, found)
            profiles[where].anomalies.append(item)
            for label in ATTRIBUTION_LABELS:
                sender = series.labels.get(label)
                if sender and sender != component and sender in known:
                    other = profiles.setdefault(sender, Profile(sender))
                    other.series.append(series)
                    other.anomalies.append(item)
    for profile in profiles.values():
        _confirm_short(profile, obs.step_s)
    if not any(p.anomalies for p in profiles.values()):
        _slow_drifts(obs, profiles, owner)
    for profile in profiles.values():
        profile.anomalies.sort(key=_anomaly_order)
    # A host's series belong to the services on it: its saturation can explain their symptoms, but a
    # busy host is not itself a place users see failing. It stands alone only when no service maps to it.
    for host, services in obs.hosts.items():
        host_profile = profiles.get(host)
        mapped = [profiles[name] for name in services if name in profiles and name != host]
        if host_profile is None or not mapped:
            continue
        for profile in mapped:
            profile.host_anomalies.extend(host_profile.anomalies)
        del profiles[host]
    return profiles


THROTTLING = next(signal for signal in DEFAULT_SIGNALS if signal.name == "upstream_throttling")


def _signal_of(series: Series, obs: Observations) -> Signal:
    """What a series measures: the catalog's reading of its name, except that requests answered
    429 are throttling by whoever answered, never more traffic from the one that sent them."""
    if any(series.labels.get(label, "").strip() == "429" for label in STATUS_LABELS):
        return THROTTLING
    return classify(obs.signal_names.get(series.query) or series.name)


def _slow_drifts(obs: Observations, profiles: dict[str, Profile], owner: dict[int, str]) -> None:
    """Nothing departed: a slow drift that stayed under the detector's rule is still worth
    naming, as a weak lead (a quality signal sliding for an hour is how some incidents look)."""
    for component in sorted(obs.series):
        for series in obs.series[component]:
            signal = _signal_of(series, obs)
            if signal.kind not in ("symptom", "quality", "saturation"):
                continue
            found = drift(series.timestamps, series.values, obs.window_start, obs.at, obs.baseline_s, signal.direction)
            if found is not None:
                where = owner[id(series)]
                profiles[where].anomalies.append(SeriesAnomaly(where, series, signal, found))


def _confirm_short(profile: Profile, step_s: float) -> None:
    """Keep a short departure (2-3 points) only where another signal of the same component departed
    within a step of it: one series blipping is noise, two moving together are an event."""
    def confirmed(item: SeriesAnomaly) -> bool:
        # At least one of the two is a signal the catalog knows (latency, errors, CPU...): a
        # burst of housekeeping counters moving together (a database checkpoint) is no event.
        return any(other is not item and other.series is not item.series
                   and abs(other.anomaly.onset - item.anomaly.onset) <= step_s
                   and (item.signal is not GENERIC or other.signal is not GENERIC)
                   for other in profile.anomalies)

    profile.anomalies = [a for a in profile.anomalies if not a.anomaly.short or confirmed(a)]


def _anomaly_order(item: SeriesAnomaly) -> tuple:
    """Strongest first; ties broken by what is stable (onset, component, query), never arrival order."""
    return (-item.anomaly.score, item.anomaly.onset, item.component, item.series.query, item.series.selector)


def _pick_service(obs: Observations, profiles: dict[str, Profile], symptoms: list[str]) -> str | None:
    if obs.service:
        return obs.service
    text = obs.symptom_text.lower()
    named = [c for c in sorted(set(profiles) | set(obs.topology), key=len, reverse=True)
             if re.search(rf"(?<![\w-]){re.escape(c.lower())}(?![\w-])", text)]
    if named:
        return named[0]
    # Otherwise the component whose symptom signals departed the most.
    best, best_score = None, 0.0
    for profile in profiles.values():
        for item in profile.anomalies:
            if not symptoms or item.signal.symptom in symptoms:
                if item.anomaly.score > best_score:
                    best, best_score = profile.name, item.anomaly.score
    return best


def _symptom_onset(profile: Profile | None, symptoms: list[str]) -> tuple[float | None, list[SeriesAnomaly]]:
    if profile is None or not profile.anomalies:
        return None, []
    # What users see (latency, errors, quality) marks the onset; a resource filling up before it
    # is the cause's own drift, not the symptom.
    matching = [a for a in profile.anomalies if a.signal.symptom in symptoms and a.anomaly.score >= 0.1
                and a.signal.kind in ("symptom", "quality")]
    if not matching:
        matching = [a for a in profile.anomalies if a.signal.symptom in symptoms and a.anomaly.score >= 0.1]
    if not matching:
        matching = [a for a in profile.anomalies if a.signal.kind in ("symptom", "quality") and a.anomaly.score >= 0.1]
    if not matching:
        matching = [a for a in profile.anomalies if a.anomaly.score >= 0.1]
    if not matching:
        return None, []
    return _current_onset(matching, 0.1), matching


def _current_onset(items: list[SeriesAnomaly], floor: float) -> float | None:
    """When the latest episode among these departures began. The window may hold an earlier
    episode that has ended: the incident asked about is the latest one, together with whatever
    was still out of range when it began."""
    episodes = [e for a in items for e in (a.anomaly.episodes or [a.anomaly]) if e.score >= floor]
    if not episodes:
        return None
    latest = max(e.onset for e in episodes)
    step = min((e.end - e.onset for e in episodes if e.end > e.onset), default=60.0)
    return min(e.onset for e in episodes if e.end >= latest - step)


def _focus(profiles: dict[str, Profile], onset: float, step_s: float) -> None:
    """Read each series' departure at the incident: of the episodes it had in the window, the
    strongest one still under way at the onset or begun since (the strongest overall if none)."""
    for profile in profiles.values():
        for item in profile.anomalies + profile.host_anomalies:
            episodes = item.anomaly.episodes
            relevant = [e for e in episodes if e.end >= onset - step_s]
            if relevant:
                chosen = max(relevant, key=lambda e: (e.score, e.onset))
                chosen.episodes = episodes
                item.anomaly = chosen
        profile.anomalies.sort(key=_anomaly_order)


def analyse(obs: Observations) -> Diagnosis:
    """Rank hypotheses from observations; the result has every key of a diagnosis but ``sources``,
    ``timings`` and ``similar_incidents``, which the caller fills."""
    symptoms = symptoms_in(obs.symptom_text)
    profiles = _score_series(obs)
    for component in set(obs.topology) | {t.service for t in obs.templates} | {c.service for c in obs.changes}:
        profiles.setdefault(component, Profile(component))
    service = _pick_service(obs, profiles, symptoms)
    if not symptoms and service in profiles and profiles[service].anomalies:
        symptoms = [profiles[service].anomalies[0].signal.symptom]
    onset, symptom_series = _symptom_onset(profiles.get(service) if service else None, symptoms)
    if onset is None:
        # The service's metrics show nothing: anchor on when errors broke out in the logs, or
        # else on the strongest departure anywhere.
        onset = _log_onset(obs)
    if onset is None:
        onset = _current_onset([a for p in profiles.values() for a in p.anomalies + p.host_anomalies], 0.3)
    if onset is not None:
        _focus(profiles, onset, obs.step_s)
    split = onset if onset is not None else obs.window_start

    evidence: list[Evidence] = []
    _metric_evidence(obs, profiles, evidence)
    limits = list(obs.limits)
    if onset is None:
        limits.append("no onset found: changes are listed by when they landed, not against an onset")
    _log_evidence(obs, profiles, split, evidence, limits)
    back = rollbacks(obs.changes)
    change_ids = _change_evidence(obs, profiles, split, onset, back, evidence)
    precedent = _incident_evidence(obs, evidence)

    undone = undone_at(obs.changes)
    victims = {name: cause for name, p in profiles.items()
               if (cause := _victim_of(p, profiles, obs.topology, undone, obs.step_s))}
    candidates = _candidates(obs, profiles, service, split, onset, change_ids, victims, precedent)
    hypotheses = _rank(candidates, service or "unknown", onset)
    by_id = {e.id: e for e in evidence}
    mitigations = _mitigations(hypotheses, candidates, by_id, obs.owners)
    _cite_precedent(mitigations, hypotheses, precedent)

    title = obs.symptom_text.strip().splitlines()[0][:120] if obs.symptom_text.strip() else "incident"
    return Diagnosis(
        incident={
            "title": title,
            "service": service,
            "onset": iso(onset),
            "symptoms": symptoms,
            "symptom_evidence": [a.evidence_id for a in symptom_series if a.evidence_id],
            # Components that went wrong because something they depend on did first.
            "knock_on": [{"component": name, "after": cause} for name, cause in sorted(victims.items())],
        },
        window={"start": iso(obs.window_start), "end": iso(obs.at),
                "baseline_start": iso(obs.window_start - obs.baseline_s)},
        evidence=evidence,
        hypotheses=hypotheses,
        mitigations=mitigations,
        limits=limits,
    )


# --- evidence -----------------------------------------------------------------------------------


def _metric_evidence(obs: Observations, profiles: dict[str, Profile], evidence: list[Evidence]) -> None:
    # An anomaly attributed to two components (server and sender) is one piece of evidence.
    unique = {id(a): a for p in profiles.values() for a in p.anomalies + p.host_anomalies}
    ranked = sorted(unique.values(), key=_anomaly_order)
    for number, item in enumerate(ranked[:MAX_METRIC_EVIDENCE], 1):
        a = item.anomaly
        item.evidence_id = f"m{number}"
        arrow = "rose" if a.direction == "up" else "fell"
        if a.weak:
            summary = (f"{item.series.title} drifted from {_fmt(a.baseline_median)} (baseline median) to "
                       f"{_fmt(a.level_after)} since {iso(a.onset)}, steadily but under the sustained-departure "
                       f"rule ({a.magnitude:.0f} robust sd at the end): a weak lead")
        elif a.stopped:
            summary = (f"{item.series.title} stopped reporting at {iso(a.onset)} (it read "
                       f"{_fmt(a.baseline_median)} before): what it measured is gone or unreachable")
        else:
            summary = (f"{item.series.title} {arrow} from {_fmt(a.baseline_median)} (baseline median) to "
                       f"{_fmt(a.level_after)} at {iso(a.onset)}, peak {_fmt(a.peak)}; "
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


def _log_evidence(obs: Observations, profiles: dict[str, Profile], split: float,
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
        limits.append(f"the logs begin {_minutes(split - covered)} before the onset: "
                          "log rates before it are over that span")
        start = covered
    # A cause logs before users feel it (a hardware error, then the failures it causes): lines
    # from shortly before the onset count with those after it.
    lead_split = max(start + 60, split - LOG_LEAD_S) if split > obs.window_start else split
    covered = covered_minutes(obs.templates)
    gaps = sum(1 for m in range(int(start // 60), int(split // 60)) if m not in covered)
    if covered and gaps and min(covered) * 60 < split:
        limits.append(f"no service logged anything for {gaps} minute{'s' if gaps > 1 else ''} before the onset "
                      "(a gap in collection): log rates before it are over the minutes the logs cover")
    for component, templates in by_service.items():
        # The lead is for what began in it; a template already running before it is judged at the onset.
        fresh: list[Template] = []
        running: list[Template] = []
        for t in templates:
            (running if t.count_between(lead_split - 120, lead_split) else fresh).append(t)
        found = (template_changes(fresh, lead_split, start, obs.at, covered=covered)
                 + template_changes(running, split, start, obs.at, covered=covered))
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


ERROR_LEVELS = ("error", "fatal")
LOG_LEAD_S = 120.0
LOG_ONSET_STRENGTH = 0.5


def _log_onset(obs: Observations) -> float | None:
    """When errors last broke out: the latest minute of the window at which error templates
    appeared or began to spike about as strongly as at the strongest such minute. The window may
    hold an earlier outbreak that has ended; the responder asks about the one happening now.
    None when no error template changed clearly."""
    errors = [t for t in obs.templates if t.worst_level in ERROR_LEVELS]
    if not errors:
        return None
    start = obs.window_start - obs.baseline_s
    scored: list[tuple[float, float, float]] = []
    covered = covered_minutes(obs.templates)
    split = math.floor(obs.window_start / 60) * 60
    while split < obs.at - 60:
        outbreak, strongest = 0.0, 0.0
        for change in template_changes(errors, split, start, obs.at, covered=covered):
            # Only templates that break out here: their first line after the split comes within
            # two minutes, and the two minutes before it looked like their baseline (not a
            # template still running from an outbreak that began earlier).
            first = min((m * 60 for m in change.template.minutes if m * 60 >= split), default=math.inf)
            just_before = change.template.count_between(split - 120, split)
            if first - split <= 120 and just_before <= 2 * change.before_rate + 1:
                outbreak += change.strength
                strongest = max(strongest, change.strength)
        scored.append((outbreak, strongest, split))
        split += 60
    best = max((outbreak for outbreak, _, _ in scored), default=0.0)
    top = max((strongest for _, strongest, _ in scored), default=0.0)
    if top < LOG_ONSET_STRENGTH:
        return None
    return max(split for outbreak, strongest, split in scored
               if outbreak >= 0.5 * best and strongest >= LOG_ONSET_STRENGTH)


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


def _change_evidence(obs: Observations, profiles: dict[str, Profile], split: float, onset: float | None,
                     back: set[str], evidence: list[Evidence]) -> dict[str, str]:
    ids: dict[str, str] = {}
    relevant = [c for c in obs.changes if split - obs.change_lookback_s <= c.ts <= obs.at]
    for number, change in enumerate(sorted(relevant, key=lambda c: (c.ts, c.id)), 1):
        lead = split - change.ts
        if onset is None:
            # No onset was found: say when it landed, never where it stands to an onset.
            when = f"landed {_minutes(obs.at - change.ts)} before the end of the window (no onset found)"
        else:
            when = f"{_minutes(lead)} before onset" if lead >= 0 else f"{_minutes(lead)} after onset"
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
            score=0.0 if rolled_back else round(_proximity(lead), 3),
            link=change.url or None,
            component=change.service,
            details={"change_id": change.id, "kind": change.kind, "lead_s": lead, "rollback": rolled_back},
        ))
    return ids


@dataclass
class Precedent:
    """What similar past incidents say about a category: the share of their vote, and who voted."""

    share: float
    evidence: list[str]
    mitigations: dict[str, list[str]]  # action -> past incident ids it resolved


def _incident_evidence(obs: Observations, evidence: list[Evidence]) -> dict[str, Precedent]:
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


def _proximity(lead_s: float) -> float:
    """How plausible it is that a change landing ``lead_s`` before the onset caused it."""
    minutes = lead_s / 60
    if minutes < -1:
        return 0.1  # landed after the onset (beyond its one-minute resolution): a reaction, not a cause
    if minutes <= 20:
        return 1.0
    return math.exp(-(minutes - 20) / 40)


# --- hypotheses ---------------------------------------------------------------------------------


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


HOST_ONLY_WEIGHT = 0.6
NODE_LABELS = ("node", "host", "instance")
HOST_SLACK_S = 60.0


def _surge_factor(anomaly: Anomaly) -> float:
    """0..1: how much of a surge a rise is, by the ratio of the level reached to the baseline."""
    if anomaly.baseline_median <= 0:
        return 1.0
    ratio = anomaly.level_after / anomaly.baseline_median
    return max(0.0, min(1.0, (ratio - 1.2) / 1.8))


def _confined(item: SeriesAnomaly, profile: Profile) -> bool:
    """True when the series is one node's among several of the same metric, and the only one that departed."""
    for label in NODE_LABELS:
        value = item.series.labels.get(label)
        if not value:
            continue
        siblings = {s.labels.get(label) for s in profile.series if s.name == item.series.name and s.labels.get(label)}
        departed = {a.series.labels.get(label) for a in profile.anomalies
                    if a.series.name == item.series.name and a.anomaly.score >= 0.1}
        if len(siblings) >= 2 and departed == {value}:
            return True
    return False


def _signature_support(profile: Profile) -> dict[str, tuple[float, list[SeriesAnomaly]]]:
    """Metric patterns that point at a category by themselves."""
    found: dict[str, tuple[float, list[SeriesAnomaly]]] = {}

    def add(category: str, items: list[SeriesAnomaly], weight: float = 1.0) -> None:
        if items:
            found[category] = (max(a.anomaly.score for a in items) * weight, items)

    # The host's departures count only where they could have caused this component's: no later
    # than its own departure began (a minute's slack for the rate windows).
    own = profile.onset
    # With no departure of its own (the symptom's service, its latency too coarse to show it), the
    # host's saturation is all there is to say why.
    host = [a for a in profile.host_anomalies if own is None or a.anomaly.onset <= own + HOST_SLACK_S]
    anomalies = [a for a in profile.anomalies + host if a.anomaly.score >= 0.1]
    add("infrastructure", [a for a in anomalies if a.signal.kind == "hardware"])
    if "infrastructure" not in found:
        # Series that stopped reporting: the pod, process or node that served them is gone.
        add("infrastructure", [a for a in anomalies if a.anomaly.stopped], 0.9)
    if "infrastructure" not in found:
        # Its callers saw calls to it slow down while its own server-side latency stayed normal:
        # the time was lost between them, on the network.
        edge = [a for a in anomalies if a.signal.symptom == "latency" and a.anomaly.direction == "up"
                and _is_edge(a.series, profile.name)]
        server_side = [s for s in profile.series if classify(s.name).symptom == "latency"
                       and not _is_edge(s, profile.name) and not OUTBOUND.search(s.name)]
        server_departed = any(a.signal.symptom == "latency" and a.anomaly.score >= 0.1
                              and not _is_edge(a.series, profile.name) for a in profile.anomalies)
        if edge and server_side and not server_departed:
            add("infrastructure", edge, 0.8)
    if "infrastructure" not in found:
        # One node, host or instance failing while its siblings carry on is a place, not a load.
        add("infrastructure", [a for a in anomalies if _confined(a, profile)], 0.7)
    saturated = [
        a for a in anomalies
        if a.signal.kind == "saturation" and a.anomaly.direction == "up"
        # A ratio near full, or an absolute amount (bytes, connections, queued) well above its normal:
        # a few per cent more memory is drift, not exhaustion.
        and (a.anomaly.peak >= 0.85 if a.anomaly.baseline_median <= 1.0
             else a.anomaly.level_after >= 1.3 * a.anomaly.baseline_median)
    ]
    surging = [a for a in anomalies if a.signal.kind == "traffic" and a.anomaly.direction == "up"]
    # A surge is load far above normal: a third more is growth, three times is a surge. Tokens or
    # spend rising while the request rate stays normal is heavier requests, not more of them.
    rate_series = [s for s in profile.series if classify(s.name).name == "request_rate"]
    rates_rose = any(a.signal.name == "request_rate" for a in surging)
    surge_size = {id(a): _surge_factor(a.anomaly) * (0.5 if rate_series and not rates_rose and a.signal.name != "request_rate" else 1.0)
                  for a in surging}
    if surging:
        strongest = max(surging, key=lambda a: a.anomaly.score * surge_size[id(a)])
        found["traffic_surge"] = (strongest.anomaly.score * surge_size[id(strongest)],
                                  sorted(surging, key=lambda a: -a.anomaly.score * surge_size[id(a)]))
    if saturated:
        first_full = min(a.anomaly.onset for a in saturated)
        weight = 1.0
        # Saturation is the mechanism, not the cause, when a release landed just before it filled
        # up (a leak, a regression) or when a real surge arrived first.
        if any(c.kind in ("deploy", "release", "config", "flag", "model") and 0 <= first_full - c.ts <= 1800
               for c in profile.changes):
            weight = 0.6
        if any(surge_size[id(a)] >= 0.9 and a.anomaly.onset <= first_full + 60 for a in surging):
            weight = min(weight, 0.6)
        add("capacity", saturated, weight)
    add("dependency", [a for a in anomalies if a.signal.name == "upstream_throttling"])
    quality = [a for a in anomalies if a.signal.kind == "quality"]
    errors = [a for a in anomalies if a.signal.name == "error_rate"]
    weight = 0.8 if errors else 1.0
    if quality:
        # Output quality fell right after a release or a config change, and no model or data
        # changed: the quality drop is the symptom of that change, not a model problem.
        first = min(a.anomaly.onset for a in quality)
        recent = [c for c in profile.changes if 0 <= first - c.ts <= 1800]
        if recent and not any(c.kind in QUALITY_KINDS for c in recent):
            weight *= 0.6
    add("data_or_model", quality, weight)
    return found


QUALITY_KINDS = frozenset({"model", "index", "data", "prompt"})


def _quality_stayed_normal(profile: "Profile") -> bool:
    """The component measures its own output quality, and none of those signals departed."""
    measured = any(classify(s.name).kind == "quality" for s in profile.series)
    return measured and not any(a.signal.kind == "quality" for a in profile.anomalies)


def _downstream_quality(profiles: dict[str, Profile], topology: dict[str, list[str]],
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
        users = {other for other in profiles if name in _upstream(topology, other)}
        if name not in known and service:
            users.add(service)
        out[name] = max((quality[u] for u in users if u in quality), default=0.0)
    return out


def _candidates(obs: Observations, profiles: dict[str, Profile], service: str | None, split: float,
                onset: float | None, change_ids: dict[str, str], victims: dict[str, str],
                precedent: dict[str, Precedent]) -> list[Candidate]:
    near = _related(obs.topology, service) if service else set()
    service_core = 0.0
    if service and service in profiles:
        service_core = profiles[service].strength
    downstream_quality = _downstream_quality(profiles, obs.topology, service)
    undone = undone_at(obs.changes)
    # New error templates that blame a dependency, per component that wrote them.
    blame = {p.name: [t for t in p.templates if t.evidence_id
                      and "dependency" in cause_hints(t.template.text + " " + t.template.example)]
             for p in profiles.values()}
    out: list[Candidate] = []
    for profile in profiles.values():
        name = profile.name
        relation = 1.0 if name == service or name in near else 0.75
        core = profile.strength * _earliness(profile, onset, obs.step_s) * relation
        # Its own errors breaking out at the onset say where as well as a metric would: a
        # component can fail its requests while its CPU, memory and latency look normal.
        own_errors = [t for t in profile.templates if t.template.worst_level in ERROR_LEVELS
                      and not ("dependency" in cause_hints(t.template.text + " " + t.template.example)
                               and _names_in(t, profiles, name))]
        log_core = 0.8 * max((t.strength for t in own_errors), default=0.0) * relation
        # Other components' new errors that blame this one by name ("upstream database postgres
        # timed out", "no instances available for fares"). When its own metrics are not collected
        # (an external service, one nobody scrapes), that is the only sign of where it failed; when
        # they are, and stayed normal, the callers' errors are more likely a knock-on of something
        # else (a saturated host slows every query) and only say why, below.
        blamed = [(item, caller) for caller, items in blame.items() if caller != name for item in items
                  if name in _names_in(item, profiles, caller)]
        blamed_core = 0.0 if profile.series else \
            0.7 * max((item.strength for item, _ in blamed), default=0.0) * relation
        core = max(core, log_core, blamed_core)
        if name == service and profile.strength == 0:
            # Users report it slow and its own series show nothing, but the host under it
            # saturated in the window: a weaker lead than a departure of its own.
            core = max(core, HOST_ONLY_WEIGHT * max((a.anomaly.score for a in profile.host_anomalies
                                                    if a.signal.kind in ("saturation", "hardware")), default=0.0))
        victim_of = victims.get(name)
        if victim_of:
            core *= 0.4
        metric_ids = [a.evidence_id for a in profile.anomalies[:3] if a.evidence_id]
        signatures = _signature_support(profile)
        log_items = [t for t in profile.templates if t.evidence_id]

        # Support by category, from the three kinds of evidence.
        support: dict[str, dict[str, float]] = defaultdict(dict)
        evidence: dict[str, list[str]] = defaultdict(list)
        reasons: dict[str, list[str]] = defaultdict(list)
        scopes: dict[str, dict[str, str]] = defaultdict(dict)
        chosen_change: dict[str, Change] = {}

        for category, (strength, items) in signatures.items():
            support[category]["metrics"] = strength
            evidence[category] += [a.evidence_id for a in items[:3] if a.evidence_id]
            first = items[0]
            reasons[category].append(
                f"{first.series.title} {'rose' if first.anomaly.direction == 'up' else 'fell'} "
                f"to {_fmt(first.anomaly.level_after)} from {_fmt(first.anomaly.baseline_median)}"
                + (" (a slow drift under the detection threshold: a weak lead)" if first.anomaly.weak else "")
            )
            scopes[category] = _scope(items, profile)

        # New or spiking error logs in a component support every cause located there, weakly;
        # phrases that name a cause (Xid, pool exhausted, 429 from upstream) support it strongly.
        generic = max((t.strength for t in log_items if t.template.worst_level in ("error", "fatal")), default=0.0)
        generic_ids = [t.evidence_id for t in log_items[:2]
                       if t.template.worst_level in ("error", "fatal")]
        for item in log_items:
            hints = cause_hints(item.template.text + " " + item.template.example)
            if "dependency" in hints and _names_in(item, profiles, name):
                del hints["dependency"]  # it blames the component it names: counted there
            for category, hits in hints.items():
                strength = item.strength * min(1.0, 0.6 + 0.2 * hits)
                if strength > support[category].get("logs", 0.0):
                    support[category]["logs"] = strength
                    reasons[category].append(f"log '{item.template.text[:90]}' "
                                             f"{'appeared' if item.new else 'spiked'} ({item.after} lines)")
                evidence[category].append(item.evidence_id)
                where = [label.split("=", 1) for label, _ in item.template.labels.most_common(1)]
                if where and where[0][0] in SCOPE_LABELS and len(item.template.labels) <= 2:
                    scopes[category].setdefault(where[0][0], where[0][1])

        for item, caller in blamed:
            strength = item.strength * 0.8
            if strength > support["dependency"].get("logs", 0.0):
                support["dependency"]["logs"] = strength
                reasons["dependency"].append(f"{caller}'s log '{item.template.text[:90]}' "
                                             f"{'appeared' if item.new else 'spiked'} ({item.after} lines)")
            evidence["dependency"].append(item.evidence_id)

        change_reason: dict[str, str] = {}
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
            when = (f"{_minutes(lead)} {'before' if lead >= 0 else 'after'} the onset" if onset is not None
                    else f"{_minutes(obs.at - change.ts)} before the end of the window (no onset found)")
            # A slow fault (a leak) hurts users long after the release, but the component itself
            # starts to drift right after it: measure the lead to that drift too.
            drift = [a.anomaly.onset for a in profile.anomalies if a.anomaly.score >= 0.1 and a.anomaly.onset >= change.ts]
            if lead >= 0 and drift and min(drift) - change.ts < lead:
                when = f"{_minutes(min(drift) - change.ts)} before {name} began to drift ({when})"
                lead = min(drift) - change.ts
            strength = _proximity(lead) * (0.5 if victim_of else 1.0)
            if host_onset is not None and abs(host_onset - own_start) <= 90 and own_start - change.ts > 180:
                strength *= 0.5
                when += f", but its host saturated at the moment {name} went wrong"
            best = chosen_change.get(category)
            closer = best is not None and lead >= 0 and lead < split - best.ts
            if strength > support[category].get("changes", 0.0) or (
                    strength == support[category].get("changes") and closer):
                support[category]["changes"] = strength
                chosen_change[category] = change
                change_reason[category] = f"{change.kind} {change.id} landed {when}: {change.summary}"
            evidence[category].append(change_ids.get(change.id, change.id))

        # A component that went wrong with nothing more specific: from the service's side, a
        # failing dependency; the service itself, unknown.
        if core > 0 and not support and own_errors and log_core >= profile.strength:
            # Errors it raises itself, with no phrase that says why: a fault in its own code or data.
            support["code_change"]["logs"] = own_errors[0].strength
            evidence["code_change"] += [t.evidence_id for t in own_errors[:2] if t.evidence_id]
            item = own_errors[0]
            reasons["code_change"].append(f"its own errors '{item.template.text[:90]}' "
                                          f"{'appeared' if item.new else 'spiked'} ({item.after} lines), "
                                          "with no change recorded")
        if core > 0 and not support:
            if name != service:
                # Its own departure is the evidence that the dependency failed.
                support["dependency"]["metrics"] = 0.5 * profile.strength
                evidence["dependency"] += metric_ids
            else:
                support["unknown"]["metrics"] = 0.0
        if victim_of:
            for category in support:
                reasons[category].append(f"but {victim_of}, which {name} depends on or names in its errors, "
                                         "went wrong no later")

        for category, parts in support.items():
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
            change = chosen_change.get(category)
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
                reason_list.insert(0, change_reason[category])
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
                    refuted = (f"{name} departed {_minutes(change.ts - max(own))} before {change.id} landed: "
                               "the change did not start it")
            out.append(Candidate(
                category=category,
                component=name,
                score=round(score, 4),
                support=dict(parts),
                evidence=list(dict.fromkeys(metric_ids + evidence[category])),
                reasons=reason_list,
                scope=scopes.get(category, {}),
                change=change,
                refuted=refuted,
                weak=bool(profile.anomalies) and all(a.anomaly.weak for a in profile.anomalies),
            ))
    out.sort(key=lambda c: (-c.score, c.component, c.category))
    return out


_NAMES = {
    "code_change": "a code change", "config_change": "a configuration change", "data_or_model": "a model or data change",
    "infrastructure": "an infrastructure fault", "capacity": "exhausted capacity", "traffic_surge": "a traffic surge",
    "dependency": "a failing dependency", "operation_error": "a manual operation", "unknown": "an unknown cause",
}


def _rank(candidates: list[Candidate], service: str, onset: float | None) -> list[Hypothesis]:
    live = [c for c in candidates if not c.refuted and c.score > 0.02]
    refuted = [c for c in candidates if c.refuted]
    if not live or (live[0].score < 0.12 and not live[0].weak):
        top_evidence = live[0].evidence if live else []
        live = [Candidate("unknown", service, 0.1, {}, top_evidence,
                          ["no component shows a clear departure with a plausible cause in the window"])] + live
    hypotheses: list[Hypothesis] = []
    ceiling = 0.95
    for position, cand in enumerate(live[:5]):
        above = live[position - 1] if position else None
        # Its strongest rival: the runner-up for the top hypothesis, the top one for the others.
        rival = live[0].score if position else (live[1].score if len(live) > 1 else 0.0)
        # Confidence: how much evidence (saturating), tempered by its share against the rival
        # (a tie costs a fifth), and never above the hypothesis ranked before it.
        level = 1 - math.exp(-2.2 * cand.score)
        share = cand.score / (cand.score + rival) if cand.score else 0.0
        confidence = round(max(0.05, min(ceiling, level * (0.6 + 0.4 * share))), 2)
        ceiling = confidence
        sources = {k for k, v in cand.support.items() if v > 0.05}
        status = "supported" if len(sources) >= 2 and confidence >= 0.35 else "proposed"
        where = f" ({', '.join(f'{k} {v}' for k, v in cand.scope.items())})" if cand.scope else ""
        statement = f"{_NAMES.get(cand.category, cand.category)} in {cand.component}{where}"
        if cand.reasons:
            statement += ": " + "; ".join(cand.reasons[:3])
        why = ""
        if above is not None:
            why = _why_lower(cand, above)
        hypotheses.append(Hypothesis(
            rank=position + 1, category=cand.category, component=cand.component, statement=statement,
            status=status, confidence=confidence, evidence=cand.evidence[:8], why_lower=why, scope=cand.scope,
        ))
    for cand in refuted[:3]:
        change = cand.change
        what = f"{change.kind} {change.id} on {cand.component}" if change else cand.component
        hypotheses.append(Hypothesis(
            rank=len(hypotheses) + 1, category=cand.category, component=cand.component,
            statement=f"{_NAMES.get(cand.category, cand.category)} in {cand.component}: {what} landed "
                      + ("near the onset" if onset is not None else "in the window"),
            status="refuted", confidence=0.02, evidence=cand.evidence[:8],
            why_lower=f"refuted: {cand.refuted}", scope=cand.scope,
        ))
    return hypotheses


def _why_lower(cand: Candidate, above: Candidate) -> str:
    reasons = []
    if above.support.get("changes", 0) > cand.support.get("changes", 0) + 0.2:
        reasons.append("no change landed on it as close before the onset")
    if above.support.get("logs", 0) > cand.support.get("logs", 0) + 0.2:
        reasons.append("fewer new error logs point at it")
    if above.support.get("metrics", 0) > cand.support.get("metrics", 0) + 0.2:
        reasons.append("its metrics depart less")
    if not reasons:
        reasons.append("weaker combined evidence")
    return f"ranks below {above.category} in {above.component}: " + ", ".join(reasons)


# --- mitigations --------------------------------------------------------------------------------


def _mitigations(hypotheses: list[Hypothesis], candidates: list[Candidate],
                 by_id: dict[str, Evidence], owners: dict[str, str]) -> list[Mitigation]:
    live = [h for h in hypotheses if h.status != "refuted"]
    if not live:
        return []
    out: list[Mitigation] = []
    top = live[0]
    chosen = [top] + [h for h in live[1:2] if h.confidence >= 0.6 * top.confidence and h.category != "unknown"]
    for hypothesis in chosen:
        cand = next((c for c in candidates if c.category == hypothesis.category and c.component == hypothesis.component), None)
        out.extend(_actions_for(hypothesis, cand, by_id))
    if top.confidence < 0.5 or top.category in ("unknown", "dependency"):
        out.append(Mitigation(
            action="escalate", target=owners.get(top.component) or f"owner of {top.component}",
            rationale="the evidence is not conclusive enough to act alone" if top.confidence < 0.5
            else f"{top.component} is outside this service: its owners must act",
            risk="none: a page, nothing changes in production",
            verify="the owner acknowledges and confirms or rules out the top hypothesis",
            requires_approval=False, evidence=top.evidence[:3],
        ))
    seen, unique = set(), []
    for m in out:
        if (m.action, m.target) not in seen:
            seen.add((m.action, m.target))
            unique.append(m)
    return unique


def _cite_precedent(mitigations: list[Mitigation], hypotheses: list[Hypothesis],
                    precedent: dict[str, Precedent]) -> None:
    """Say where a proposed action already worked: past incidents of the same cause it resolved."""
    categories = [h.category for h in hypotheses if h.status != "refuted"]
    for mitigation in mitigations:
        for category in categories:
            worked = precedent.get(category, Precedent(0.0, [], {})).mitigations.get(mitigation.action)
            if worked:
                note = "worked in " + ", ".join(dict.fromkeys(worked))
                mitigation.provenance = f"{mitigation.provenance}; {note}" if mitigation.provenance else note
                break


def _text_of(ids: list[str], by_id: dict[str, Evidence]) -> str:
    return " ".join(by_id[i].summary for i in ids if i in by_id).lower()


def _actions_for(h: Hypothesis, cand: Candidate | None, by_id: dict[str, Evidence]) -> list[Mitigation]:
    component, cat = h.component, h.category
    change = cand.change if cand else None
    symptom_metric = next((by_id[i] for i in h.evidence if i in by_id and by_id[i].source == "metrics"), None)
    watch = (f"{symptom_metric.query} returns to its baseline (about "
             f"{_fmt(symptom_metric.details.get('baseline_median', 0))}) within 15 minutes") if symptom_metric else \
        f"the symptom's signals on {component} return to baseline within 15 minutes"
    ev = h.evidence[:4]

    def make(action: str, target: str, rationale: str, risk: str, verify: str = watch) -> Mitigation:
        provenance = f"change {change.id}" if change else ""
        return Mitigation(action, target, rationale, risk, verify, action not in READ_ONLY_ACTIONS, ev, provenance)

    text = _text_of(h.evidence, by_id)
    if cat == "code_change":
        target = f"{component} to {change.previous_version}" if change and change.previous_version else f"{component} to the previous release"
        return [make("rollback", target, f"the release {change.id if change else ''} landed just before the onset".replace("  ", " "),
                     "low: returns to the last known-good build; features of the new release are withdrawn")]
    if cat == "config_change":
        target = f"{change.id} on {component}" if change else f"recent configuration of {component}"
        if change and change.kind == "flag":
            return [make("disable_feature", target, "the flag flipped just before the onset",
                         "low: the feature is off until fixed"),
                    make("config_revert", target, "restore the previous value", "low")]
        return [make("config_revert", target, "the configuration changed just before the onset",
                     "low: restores the previous, known-good configuration")]
    if cat == "data_or_model":
        index_related = any(w in text + (change.summary.lower() if change else "") for w in ("index", "retriev", "embedding", "hit_rate", "hit rate", "stale"))
        if (change and change.kind == "index") or (index_related and not (change and change.kind == "model")):
            return [make("reindex", f"retrieval index of {component}",
                         "retrieval quality fell with the index's state", "medium: rebuilding costs time and load; serve the previous index meanwhile if possible")]
        target = f"{component} to {change.previous_version}" if change and change.previous_version else f"{component} to the previous model version"
        return [make("model_rollback", target, "output quality fell when the model or its data changed",
                     "low: pins the previous model; improvements of the new one are withdrawn")]
    if cat == "infrastructure":
        node = h.scope.get("node") or h.scope.get("host") or h.scope.get("instance")
        if node:
            return [make("drain_node", node, f"the faults are confined to {node}",
                         "medium: remaining nodes take its load; check headroom first")]
        return [make("failover", component, "the fault sits in the infrastructure under it",
                     "medium: shifts traffic to another zone or replica set")]
    if cat == "capacity":
        return [make("scale_out", component, "it is saturated: more replicas or capacity relieve it",
                     "low: costs money; may need quota")]
    if cat == "traffic_surge":
        tenant = h.scope.get("tenant")
        target = f"tenant {tenant} on {component}" if tenant else component
        actions = [make("rate_limit", target, "load far above normal from " + (f"tenant {tenant}" if tenant else "clients"),
                        "medium: throttled callers see 429s")]
        if tenant:
            actions.append(make("block_client", target, "if throttling does not contain it", "high: that tenant loses service"))
        return actions
    if cat == "dependency":
        return [make("failover", f"{component} (upstream)", f"{component} is failing or throttling its callers",
                     "medium: the alternative must have capacity and equivalent behaviour")]
    if cat == "operation_error":
        what = (change.summary if change else "").lower() + " " + text
        target = f"undo {change.id} on {component}" if change else component
        if any(w in what for w in ("scale down", "scaled down", "scale-down", "replicas", "scale to", "scaled to")):
            return [make("scale_out", f"{component} back to its previous replica count",
                         "the operation removed capacity it needs", "low: restores what ran before")]
        return [make("failover", component, "a manual operation removed capacity or broke routing; shift traffic while it is undone",
                     "medium"),
                make("restart", target, "bring back what the operation took down", "medium: restarts drop in-flight work")]
    return [make("monitor", component, "no cause stands out yet; keep watching while evidence comes in",
                 "none", watch)]
