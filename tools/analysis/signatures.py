"""Metric patterns that point at a cause category by themselves (hardware, saturation, surge, throttling, quality)."""

from __future__ import annotations

from tools.analysis.model import QUALITY_KINDS, Profile, SeriesAnomaly
from tools.analysis.series import OUTBOUND, is_edge
from tools.anomaly import Anomaly
from tools.metrics.catalog import classify

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


def signature_support(profile: Profile) -> dict[str, tuple[float, list[SeriesAnomaly]]]:
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
                and is_edge(a.series, profile.name)]
        server_side = [s for s in profile.series if classify(s.name).symptom == "latency"
                       and not is_edge(s, profile.name) and not OUTBOUND.search(s.name)]
        server_departed = any(a.signal.symptom == "latency" and a.anomaly.score >= 0.1
                              and not is_edge(a.series, profile.name) for a in profile.anomalies)
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
