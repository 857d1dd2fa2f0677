"""``sleuth eval``: run scenario folders through the same investigation users get, and score it.

Scores per scenario: category and component at top-1 and top-3, the first proposed mitigation
against the acceptable ones, whether a decoy won, which sources failed, onset error and time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.config import SleuthConfig
from bot.investigate import investigate
from bot.scenario import Truth, load_scenario, load_truth
from tools.diagnosis import Diagnosis, Hypothesis
from tools.timeparse import parse_time


@dataclass
class Score:
    scenario: str
    category_top1: bool = False
    category_top3: bool = False
    component_top1: bool = False
    component_top3: bool = False
    mitigation_top1: bool = False
    mitigation_any: bool = False
    decoy_chosen: bool = False
    onset_error_min: float | None = None
    failed_sources: list[str] = field(default_factory=list)
    time_ms: float = 0.0
    predicted: str = ""
    expected: str = ""
    error: str = ""


def _component_matches(h: Hypothesis, component: str) -> bool:
    return h.component == component or component in h.scope.values()


def score(name: str, diagnosis: Diagnosis, truth: Truth, elapsed_ms: float) -> Score:
    live = [h for h in diagnosis.hypotheses if h.status != "refuted"]
    top = live[0] if live else None
    top3 = live[:3]
    result = Score(scenario=name, time_ms=round(elapsed_ms, 1), expected=f"{truth.category} @ {truth.component}")
    if top is not None:
        result.predicted = f"{top.category} @ {top.component}"
        result.category_top1 = top.category == truth.category
        result.component_top1 = _component_matches(top, truth.component)
        # Top-3 counts a hypothesis that gets both right, as a responder reads them in pairs.
        result.category_top3 = any(h.category == truth.category for h in top3)
        result.component_top3 = any(_component_matches(h, truth.component) for h in top3)
        if truth.decoy and truth.decoy.component:
            result.decoy_chosen = top.component == truth.decoy.component and truth.decoy.component != truth.component
        if truth.decoy and truth.decoy.change_id and not result.decoy_chosen:
            by_id = diagnosis.evidence_by_id()
            cited = {by_id[e].details.get("change_id") for e in top.evidence if e in by_id and by_id[e].source == "changes"}
            result.decoy_chosen = truth.decoy.change_id in cited and not result.category_top1
    actions = [m.action for m in diagnosis.mitigations]
    result.mitigation_top1 = bool(actions) and actions[0] in truth.mitigations
    result.mitigation_any = any(a in truth.mitigations for a in actions)
    if truth.onset and diagnosis.incident.get("onset"):
        expected, found = parse_time(truth.onset), parse_time(diagnosis.incident["onset"])
        if expected is not None and found is not None:
            result.onset_error_min = round(abs(found - expected) / 60, 1)
    result.failed_sources = [n for n, r in diagnosis.sources.items() if r.status == "error"]
    return result


async def evaluate(folders: list[Path], base: SleuthConfig | None = None) -> list[Score]:
    scores = []
    for folder in folders:
        truth = load_truth(folder)
        scenario = load_scenario(folder, base)
        if truth is None:
            scores.append(Score(scenario=scenario.name, error="no truth.yml: cannot score"))
            continue
        started = time.perf_counter()
        try:
            diagnosis = await investigate(scenario.request, scenario.config)
        except Exception as exc:  # one broken scenario must not hide the others' scores
            scores.append(Score(scenario=scenario.name, error=f"{type(exc).__name__}: {exc}",
                                expected=f"{truth.category} @ {truth.component}"))
            continue
        scores.append(score(scenario.name, diagnosis, truth, (time.perf_counter() - started) * 1000))
    return scores


RATES = ("category_top1", "category_top3", "component_top1", "component_top3", "mitigation_top1",
         "mitigation_any", "decoy_chosen")


def summarise(scores: list[Score]) -> dict[str, Any]:
    scored = [s for s in scores if not s.error]
    n = len(scored)
    summary: dict[str, Any] = {"scenarios": len(scores), "scored": n, "errors": len(scores) - n}
    for key in RATES:
        summary[key] = round(sum(getattr(s, key) for s in scored) / n, 3) if n else 0.0
    onset = [s.onset_error_min for s in scored if s.onset_error_min is not None]
    summary["onset_error_min_median"] = sorted(onset)[len(onset) // 2] if onset else None
    summary["failed_sources"] = sum(len(s.failed_sources) for s in scored)
    times = sorted(s.time_ms for s in scored)
    summary["time_ms_median"] = times[len(times) // 2] if times else None
    summary["time_ms_max"] = times[-1] if times else None
    return summary


def as_json(scores: list[Score]) -> dict[str, Any]:
    return {"summary": summarise(scores), "scenarios": [asdict(s) for s in scores]}
