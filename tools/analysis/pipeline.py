"""The analysis from start to end: observations in, a ranked diagnosis out."""

from __future__ import annotations

from tools.analysis.candidates import build_candidates
from tools.analysis.evidence import change_evidence, incident_evidence, log_evidence, metric_evidence, rollbacks, undone_at
from tools.analysis.mitigations import cite_precedent, propose_mitigations
from tools.analysis.model import Observations, Profile
from tools.analysis.onset import current_onset, focus, log_onset, pick_service, symptom_onset
from tools.analysis.ranking import rank_hypotheses
from tools.analysis.series import score_series
from tools.analysis.topology import knock_on_cause
from tools.diagnosis import Diagnosis, Evidence, iso
from tools.taxonomy import symptoms_in


def analyse(obs: Observations) -> Diagnosis:
    """Rank hypotheses from observations; the result has every key of a diagnosis but ``sources``,
    ``timings`` and ``similar_incidents``, which the caller fills."""
    symptoms = symptoms_in(obs.symptom_text)
    profiles = score_series(obs)
    for component in set(obs.topology) | {t.service for t in obs.templates} | {c.service for c in obs.changes}:
        profiles.setdefault(component, Profile(component))
    service = pick_service(obs, profiles, symptoms)
    if not symptoms and service in profiles and profiles[service].anomalies:
        symptoms = [profiles[service].anomalies[0].signal.symptom]
    onset, symptom_series = symptom_onset(profiles.get(service) if service else None, symptoms)
    if onset is None:
        # The service's metrics show nothing: anchor on when errors broke out in the logs, or
        # else on the strongest departure anywhere.
        onset = log_onset(obs)
    if onset is None:
        onset = current_onset([a for p in profiles.values() for a in p.anomalies + p.host_anomalies], 0.3)
    if onset is not None:
        focus(profiles, onset, obs.step_s)
    split = onset if onset is not None else obs.window_start

    evidence: list[Evidence] = []
    metric_evidence(obs, profiles, evidence)
    limits = list(obs.limits)
    if onset is None:
        limits.append("no onset found: changes are listed by when they landed, not against an onset")
    log_evidence(obs, profiles, split, evidence, limits)
    back = rollbacks(obs.changes)
    change_ids = change_evidence(obs, profiles, split, onset, back, evidence)
    precedent = incident_evidence(obs, evidence)

    undone = undone_at(obs.changes)
    victims = {name: cause for name, p in profiles.items()
               if (cause := knock_on_cause(p, profiles, obs.topology, undone, obs.step_s))}
    candidates = build_candidates(obs, profiles, service, split, onset, change_ids, victims, precedent)
    hypotheses = rank_hypotheses(candidates, service or "unknown", onset)
    by_id = {e.id: e for e in evidence}
    mitigations = propose_mitigations(hypotheses, candidates, by_id, obs.owners)
    cite_precedent(mitigations, hypotheses, precedent)

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
