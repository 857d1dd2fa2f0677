"""Which service the incident is about, and when its symptom began (from its metrics, or else its logs)."""

from __future__ import annotations

import math
import re

from tools.analysis.model import ERROR_LEVELS, Observations, Profile, SeriesAnomaly
from tools.analysis.series import anomaly_order
from tools.logs import covered_minutes, template_changes

LOG_ONSET_STRENGTH = 0.5


def pick_service(obs: Observations, profiles: dict[str, Profile], symptoms: list[str]) -> str | None:
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


def symptom_onset(profile: Profile | None, symptoms: list[str]) -> tuple[float | None, list[SeriesAnomaly]]:
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
    return current_onset(matching, 0.1), matching


def current_onset(items: list[SeriesAnomaly], floor: float) -> float | None:
    """When the latest episode among these departures began. The window may hold an earlier
    episode that has ended: the incident asked about is the latest one, together with whatever
    was still out of range when it began."""
    episodes = [e for a in items for e in (a.anomaly.episodes or [a.anomaly]) if e.score >= floor]
    if not episodes:
        return None
    latest = max(e.onset for e in episodes)
    step = min((e.end - e.onset for e in episodes if e.end > e.onset), default=60.0)
    return min(e.onset for e in episodes if e.end >= latest - step)


def focus(profiles: dict[str, Profile], onset: float, step_s: float) -> None:
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
        profile.anomalies.sort(key=anomaly_order)


def log_onset(obs: Observations) -> float | None:
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
