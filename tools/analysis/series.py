"""Scoring every series for a departure and gathering the departures into per-component profiles."""

from __future__ import annotations

import re

from tools.analysis.model import ATTRIBUTION_LABELS, Observations, Profile, SeriesAnomaly
from tools.anomaly import detect, drift, stopped
from tools.metrics.catalog import DEFAULT_SIGNALS, GENERIC, Signal, classify
from tools.metrics.types import STATUS_LABELS
from tools.metrics import Series

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


def is_edge(series: Series, component: str) -> bool:
    """The series is a caller's measurement of calls to ``component``."""
    return any(series.labels.get(label) == component for label in CALLEE_LABELS) \
        and series.labels.get("service") != component


def score_series(obs: Observations) -> dict[str, Profile]:
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
        profile.anomalies.sort(key=anomaly_order)
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


def anomaly_order(item: SeriesAnomaly) -> tuple:
    """Strongest first; ties broken by what is stable (onset, component, query), never arrival order."""
    return (-item.anomaly.score, item.anomaly.onset, item.component, item.series.query, item.series.selector)
