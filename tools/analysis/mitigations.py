"""Mitigations proposed for the leading hypotheses, and where similar past incidents show they worked."""

from __future__ import annotations

from tools.analysis.model import Candidate, Precedent, fmt
from tools.diagnosis import Evidence, Hypothesis, Mitigation
from tools.taxonomy import READ_ONLY_ACTIONS


def propose_mitigations(hypotheses: list[Hypothesis], candidates: list[Candidate],
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


def cite_precedent(mitigations: list[Mitigation], hypotheses: list[Hypothesis],
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
             f"{fmt(symptom_metric.details.get('baseline_median', 0))}) within 15 minutes") if symptom_metric else \
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
