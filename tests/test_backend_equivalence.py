"""The embedded OpenMetrics backend and a real Prometheus give the same diagnosis.

For every bundled scenario with a metrics.om (collected when the tests are collected), the
investigation runs twice: as the scenario is (embedded backend over the file) and with the metrics
source pointed at a real Prometheus backfilled from the same file. Onset, hypotheses (rank,
category, component, status, confidence, evidence ids), mitigations and metric evidence (id,
query, onset, score) must agree exactly. A scenario built by tests/factory.py runs the same
comparison, so the check means something even before scenarios are bundled, and another proves the
evidence ids do not depend on the order in which concurrent answers arrive.

Counters read through rate() are outside the embedded backend (it answers selectors and simple
aggregations), so the bundled scenarios carry gauges.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from bot.investigate import investigate
from bot.scenario import SCENARIOS_DIR, load_scenario
from tests.factory import AT, ScenarioBuilder, bad_deploy, daily, step_up
from tests.standins import ProxyStandIn
from tools.http import HttpSourceConfig
from tools.metrics import MetricsConfig

pytestmark = pytest.mark.prometheus

BUNDLED = sorted(p.parent for p in SCENARIOS_DIR.glob("*/metrics.om") if (p.parent / "scenario.yml").is_file())

def summary(diagnosis) -> dict:
    """What must not depend on the backend."""
    return {
        "onset": diagnosis.incident.get("onset"),
        "service": diagnosis.incident.get("service"),
        "hypotheses": [(h.rank, h.category, h.component, h.status, round(h.confidence, 9),
                        list(h.evidence)) for h in diagnosis.hypotheses],
        "mitigations": [(m.action, m.target) for m in diagnosis.mitigations],
        "metric_evidence": [(e.id, e.query, e.onset, round(e.score, 9))
                            for e in diagnosis.evidence if e.source == "metrics"],
        "other_evidence": [(e.id, e.source, e.summary) for e in diagnosis.evidence if e.source != "metrics"],
        "metrics_found": re.sub(r" via \S+$", "", diagnosis.sources["metrics"].reason),
    }


def differences(embedded: dict, prometheus: dict) -> str:
    lines = []
    for key in embedded:
        if embedded[key] == prometheus[key]:
            continue
        lines.append(f"{key}:")
        left, right = embedded[key], prometheus[key]
        if isinstance(left, list) and isinstance(right, list):
            for i in range(max(len(left), len(right))):
                a = left[i] if i < len(left) else "(none)"
                b = right[i] if i < len(right) else "(none)"
                if a != b:
                    lines.append(f"  [{i}] embedded:   {a}\n      prometheus: {b}")
        else:
            lines.append(f"  embedded:   {left}\n  prometheus: {right}")
    return "\n".join(lines)


def on_prometheus(scenario, url: str):
    config = scenario.config.model_copy(deep=True)
    config.metrics = MetricsConfig(prometheus=HttpSourceConfig(url=url, timeout_s=15, deadline_s=30),
                                   step_s=scenario.config.metrics.step_s, links=scenario.config.metrics.links)
    return config


async def assert_same_diagnosis(folder: Path, prometheus) -> None:
    scenario = load_scenario(folder)
    om = folder / "metrics.om"
    assert scenario.config.metrics.openmetrics == [om]
    server = prometheus.serve(om)

    embedded = await investigate(scenario.request, scenario.config)
    real = await investigate(scenario.request, on_prometheus(scenario, server.url))

    assert embedded.sources["metrics"].status == "ok", embedded.sources["metrics"].reason
    assert real.sources["metrics"].status == "ok", real.sources["metrics"].reason
    assert embedded.sources["metrics"].reason.endswith("via embedded")
    assert real.sources["metrics"].reason.endswith("via prometheus")
    left, right = summary(embedded), summary(real)
    assert left == right, f"{folder.name}: the backends disagree\n{differences(left, right)}"


if BUNDLED:
    @pytest.mark.parametrize("folder", BUNDLED, ids=[p.name for p in BUNDLED])
    async def test_bundled_scenario_diagnosis_is_the_same_on_both_backends(folder, prometheus):
        await assert_same_diagnosis(folder, prometheus)
else:
    def test_bundled_scenario_diagnosis_is_the_same_on_both_backends():
        pytest.skip(f"no scenario with a metrics.om under {SCENARIOS_DIR} when the tests were collected")


async def test_factory_scenario_diagnosis_is_the_same_on_both_backends(prometheus, tmp_path):
    folder = bad_deploy(tmp_path / "bad-deploy")
    await assert_same_diagnosis(folder, prometheus)
    # And the comparison is not vacuous: the diagnosis found the bad deploy through the metrics.
    scenario = load_scenario(folder)
    diagnosis = await investigate(scenario.request, scenario.config)
    assert diagnosis.hypotheses[0].component == "checkout"
    assert any(e.source == "metrics" for e in diagnosis.evidence)


async def test_metric_evidence_ids_do_not_depend_on_which_answer_arrives_first(prometheus, tmp_path):
    # Two services whose error ratios are the same numbers: their anomalies score exactly alike.
    b = ScenarioBuilder(symptom="errors everywhere after the network change", services={"edge": ["checkout", "payments"]})
    onset = AT - 25 * 60
    twin = step_up(b.ts, np.clip(daily(b.ts, 0.002, noise=0.1, seed=5), 0, 1), onset, 0.1)
    for svc in ("checkout", "payments"):
        b.metric("http_error_ratio", {"service": svc}, twin)
    b.metric("http_error_ratio", {"service": "edge"}, np.clip(daily(b.ts, 0.002, noise=0.1, seed=6), 0, 1))
    folder = b.write(tmp_path / "twins")
    scenario = load_scenario(folder)
    server = prometheus.serve(folder / "metrics.om")

    runs = []
    with ProxyStandIn(server.url) as proxy:
        for slow in ("checkout", "payments"):
            # The slow service's answers arrive last.
            proxy.latency = lambda r, slow=slow: 0.3 if slow in urllib.parse.unquote(str(r.params)) else 0.0
            diagnosis = await investigate(scenario.request, on_prometheus(scenario, proxy.url))
            metrics = [(e.id, e.query, e.score) for e in diagnosis.evidence if e.source == "metrics"]
            if len(metrics) < 2 or metrics[0][2] != metrics[1][2]:
                pytest.fail(f"the scenario should give two metric evidence items of equal score: {metrics}")
            runs.append((metrics, [(h.rank, h.component, h.evidence) for h in diagnosis.hypotheses]))
    assert runs[0] == runs[1]
