"""Candidates ranked into hypotheses, with a confidence each and why each ranks below the one above it."""

from __future__ import annotations

import math
from typing import Literal

from tools.analysis.model import Candidate
from tools.diagnosis import Hypothesis

_NAMES = {
    "code_change": "a code change", "config_change": "a configuration change", "data_or_model": "a model or data change",
    "infrastructure": "an infrastructure fault", "capacity": "exhausted capacity", "traffic_surge": "a traffic surge",
    "dependency": "a failing dependency", "operation_error": "a manual operation", "unknown": "an unknown cause",
}


def rank_hypotheses(candidates: list[Candidate], service: str, onset: float | None) -> list[Hypothesis]:
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
        status: Literal["supported", "proposed"] = "supported" if len(sources) >= 2 and confidence >= 0.35 else "proposed"
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
