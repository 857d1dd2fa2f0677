"""The deterministic investigation end to end on scenario folders built here (not the bundled ones)."""

import numpy as np
import pytest

from bot.investigate import RequestError, investigate
from bot.scenario import load_scenario
from tests.factory import AT, ScenarioBuilder, bad_deploy, daily, iso, step_up


async def diagnose(folder, **overrides):
    scenario = load_scenario(folder)
    for key, value in overrides.items():
        setattr(scenario.request, key, value)
    return await investigate(scenario.request, scenario.config)


async def test_bad_deploy_wins_over_a_decoy_deploy_on_a_healthy_service(tmp_path):
    d = await diagnose(bad_deploy(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component, top.status) == ("code_change", "checkout", "supported")
    assert abs(np.datetime64(d.incident["onset"].rstrip("Z")) - np.datetime64(iso(AT - 1800).rstrip("Z"))) <= np.timedelta64(120, "s")
    by_id = d.evidence_by_id()
    cited = {by_id[e].source for e in top.evidence}
    assert cited == {"metrics", "logs", "changes"}
    # The decoy is named and refuted, not silently ignored.
    decoy = [h for h in d.hypotheses if h.component == "search"]
    assert decoy and all(h.status == "refuted" for h in decoy)
    # The steady "cache miss" warning is background, not evidence.
    assert not any("cache miss" in e.summary for e in d.evidence)
    first = d.mitigations[0]
    assert (first.action, first.target, first.requires_approval) == ("rollback", "checkout to v2.14.0", True)
    assert "http_error_ratio" in first.verify


async def test_saturated_dependency_that_went_first_outranks_the_service_that_shows_it(tmp_path):
    b = ScenarioBuilder(symptom="orders API is throwing errors", service="orders",
                        services={"orders": ["orders-db", "inventory"]})
    ts, onset = b.ts, AT - 20 * 60
    pool = np.clip(daily(ts, 0.45, noise=0.04, seed=1), 0, 1)
    pool[ts >= onset - 180] = 0.99
    b.metric("db_connection_pool_utilization_ratio", {"service": "orders-db"}, pool)
    b.metric("http_error_ratio", {"service": "orders"}, step_up(ts, daily(ts, 0.003, noise=0.1, seed=2), onset, 0.08))
    b.metric("http_error_ratio", {"service": "inventory"}, daily(ts, 0.003, noise=0.1, seed=3))
    b.metric("http_request_latency_p99_seconds", {"service": "orders-db"}, step_up(ts, daily(ts, 0.05, noise=0.05, seed=4), onset - 120, 0.9))
    for t in np.arange(onset - 180, AT, 20.0):
        b.log(t, "orders-db", "error", f"remaining connection slots are reserved: too many connections (pid {int(t) % 977})")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("capacity", "orders-db")
    assert d.mitigations[0].action == "scale_out" and d.mitigations[0].target == "orders-db"


async def test_gpu_faults_on_one_node_point_at_that_node(tmp_path):
    b = ScenarioBuilder(symptom="time to first token is terrible on the chat endpoint", service="llm-serving")
    ts, onset = b.ts, AT - 15 * 60
    for i, node in enumerate(("gpu-1", "gpu-2", "gpu-3")):
        xid = np.zeros_like(ts)
        if node == "gpu-2":
            xid[ts >= onset - 60] = 3 + (np.arange((ts >= onset - 60).sum()) % 3)
        b.metric("gpu_xid_errors", {"service": "llm-serving", "node": node}, xid)
        b.metric("gpu_utilization_ratio", {"service": "llm-serving", "node": node}, np.clip(daily(ts, 0.7, noise=0.03, seed=i), 0, 1))
    b.metric("llm_time_to_first_token_p99_seconds", {"service": "llm-serving"}, step_up(ts, daily(ts, 0.8, noise=0.06, seed=9), onset, 2.5))
    for t in np.arange(onset - 60, AT, 15.0):
        b.log(t, "llm-serving", "error", "NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus", node="gpu-2")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component, top.scope.get("node")) == ("infrastructure", "llm-serving", "gpu-2")
    assert (d.mitigations[0].action, d.mitigations[0].target) == ("drain_node", "gpu-2")


async def test_one_tenants_surge_is_rate_limited_not_the_whole_service(tmp_path):
    b = ScenarioBuilder(symptom="LLM spend is exploding this hour", service="llm-gateway")
    ts, onset = b.ts, AT - 25 * 60
    for i, tenant in enumerate(("acme", "globex", "initech")):
        rps = daily(ts, 5.0, noise=0.05, seed=i)
        if tenant == "globex":
            rps = step_up(ts, rps, onset, 60.0)
        b.metric("llm_requests_per_second", {"service": "llm-gateway", "tenant": tenant}, rps)
    b.metric("llm_cost_usd_per_minute", {"service": "llm-gateway"}, step_up(ts, daily(ts, 2.0, noise=0.05, seed=7), onset, 20.0))
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component, top.scope.get("tenant")) == ("traffic_surge", "llm-gateway", "globex")
    assert d.mitigations[0].action == "rate_limit" and "globex" in d.mitigations[0].target


async def test_quality_drop_after_a_model_swap_with_no_errors(tmp_path):
    b = ScenarioBuilder(symptom="users report the assistant makes up answers", service="assistant")
    ts, onset = b.ts, AT - 30 * 60
    b.metric("llm_eval_score", {"service": "assistant"}, step_up(ts, daily(ts, 0.86, amplitude=0.01, noise=0.01, seed=1), onset, -0.2))
    b.metric("llm_hallucination_ratio", {"service": "assistant"}, step_up(ts, daily(ts, 0.03, amplitude=0.05, noise=0.1, seed=2), onset, 0.15))
    b.metric("http_error_ratio", {"service": "assistant"}, daily(ts, 0.002, noise=0.1, seed=3))
    b.change("chg-9", onset - 4 * 60, "assistant", "model", "assistant model gpt-x-0611 -> gpt-x-0901",
             version="gpt-x-0901", previous_version="gpt-x-0611")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("data_or_model", "assistant")
    assert (d.mitigations[0].action, d.mitigations[0].target) == ("model_rollback", "assistant to gpt-x-0611")


async def test_nothing_wrong_anywhere_is_unknown_and_escalates(tmp_path):
    b = ScenarioBuilder(symptom="checkout feels slow", service="checkout")
    ts = b.ts
    b.metric("http_request_latency_p99_seconds", {"service": "checkout"}, daily(ts, 0.3, noise=0.05, seed=1))
    d = await diagnose(b.write(tmp_path / "s"))
    assert d.hypotheses[0].category == "unknown"
    assert {m.action for m in d.mitigations} <= {"escalate", "monitor"}
    assert all(not m.requires_approval for m in d.mitigations)


async def test_every_source_failing_still_returns_a_diagnosis(tmp_path):
    folder = bad_deploy(tmp_path / "s")
    (folder / "metrics.om").write_text("this is not openmetrics\n")
    (folder / "changes.jsonl").write_text('{"id": "x", "service": "checkout"}\n')
    (folder / "logs.jsonl").unlink()
    d = await diagnose(folder)
    assert d.sources["metrics"].status == "error" and "OpenMetrics" in d.sources["metrics"].reason
    assert d.sources["changes"].status == "error" and "line 1" in d.sources["changes"].reason
    assert d.sources["logs"].status == "not_configured"
    assert d.hypotheses and d.hypotheses[0].category == "unknown"


async def test_metrics_files_from_another_time_say_when_their_samples_are(tmp_path):
    """A scenario asked about a day its metrics files do not cover: the metrics source says so."""
    folder = bad_deploy(tmp_path / "s")
    d = await diagnose(folder, at=AT + 30 * 86400)
    metrics = d.sources["metrics"]
    assert metrics.status == "no_data"
    assert "the metrics files hold samples from" in metrics.reason and "outside it" in metrics.reason


async def test_bad_requests_are_one_sentence(tmp_path):
    folder = bad_deploy(tmp_path / "s")
    with pytest.raises(RequestError, match="symptom is empty"):
        await diagnose(folder, symptom="   ")
    with pytest.raises(RequestError, match="unknown service 'nope'.*checkout"):
        await diagnose(folder, service="nope")
    with pytest.raises(RequestError, match="not a duration"):
        await diagnose(folder, window="soon")


async def test_a_leak_after_a_release_is_the_release_not_capacity(tmp_path):
    # Memory starts climbing right after the deploy; the OOM kills that users notice come 35 min later.
    b = ScenarioBuilder(symptom="websocket connections keep dropping", service="gateway")
    ts, deploy, onset = b.ts, AT - 50 * 60, AT - 15 * 60
    memory = daily(ts, 0.45, amplitude=0.05, noise=0.02, seed=1)
    leaking = ts >= deploy + 120
    memory[leaking] += np.minimum(0.5, (ts[leaking] - deploy - 120) / (onset - deploy - 120) * 0.5)
    b.metric("memory_utilization_ratio", {"service": "gateway"}, np.clip(memory, 0, 0.99))
    b.metric("http_error_ratio", {"service": "gateway"}, step_up(ts, daily(ts, 0.002, noise=0.1, seed=2), onset, 0.2))
    b.metric("pod_restarts", {"service": "gateway"}, np.where(ts >= onset, 1.0, 0.0))
    for t in np.arange(onset, AT, 30.0):
        b.log(t, "gateway", "error", f"container gateway OOMKilled: memory limit 2048Mi exceeded (pid {int(t) % 997})")
    b.change("chg-5", deploy, "gateway", "deploy", "gateway v4.1.0: connection registry rewrite",
             version="v4.1.0", previous_version="v4.0.3")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("code_change", "gateway")
    assert "began to drift" in top.statement
    assert d.mitigations[0].action == "rollback"


async def test_saturation_from_a_flood_is_the_flood_and_organic_growth_is_capacity(tmp_path):
    def build(folder, factor):
        b = ScenarioBuilder(symptom="embedding requests are queueing", service="embed-api")
        ts, onset = b.ts, AT - 20 * 60
        for i, tenant in enumerate(("acme", "globex")):
            rps = daily(ts, 10.0, amplitude=0.1, noise=0.03, seed=i)
            if tenant == "acme":
                rps[ts >= onset] *= factor
            b.metric("http_requests_per_second", {"service": "embed-api", "tenant": tenant}, rps)
        gpu = np.clip(daily(ts, 0.6, amplitude=0.05, noise=0.02, seed=5), 0, 1)
        gpu[ts >= onset + 60] = 0.97
        b.metric("gpu_memory_utilization_ratio", {"service": "embed-api"}, gpu)
        b.metric("llm_queue_depth", {"service": "embed-api"}, step_up(ts, daily(ts, 3, noise=0.2, seed=6), onset + 60, 40))
        return b.write(folder)

    flood = await diagnose(build(tmp_path / "flood", 8.0))
    assert (flood.hypotheses[0].category, flood.hypotheses[0].scope.get("tenant")) == ("traffic_surge", "acme")
    growth = await diagnose(build(tmp_path / "growth", 1.4))
    assert growth.hypotheses[0].category == "capacity"
    assert growth.mitigations[0].action == "scale_out"


async def test_traffic_labelled_with_a_sender_points_at_the_sender_and_its_change(tmp_path):
    # The gateway's spend rises for tenant "qa-bot", itself a service whose config changed.
    b = ScenarioBuilder(symptom="LLM spend on the gateway is four times normal", service="gateway",
                        services={"qa-bot": ["gateway"]})
    ts, onset = b.ts, AT - 25 * 60
    b.metric("llm_cost_usd_per_minute", {"service": "gateway", "tenant": "qa-bot"},
             step_up(ts, daily(ts, 2.0, noise=0.05, seed=1), onset, 6.0))
    b.metric("llm_cost_usd_per_minute", {"service": "gateway", "tenant": "mailer"}, daily(ts, 1.0, noise=0.05, seed=2))
    b.metric("llm_requests_per_second", {"service": "gateway"}, daily(ts, 30.0, noise=0.03, seed=3))
    b.metric("llm_tokens_per_request", {"service": "qa-bot"}, step_up(ts, daily(ts, 2000, noise=0.04, seed=4), onset, 6000))
    b.change("chg-7", onset - 3 * 60, "qa-bot", "config", "qa-bot: retriever.top_k 6 -> 40")
    b.change("chg-8", onset - 6 * 60, "gateway", "deploy", "gateway v1.17.0: usage export",
             version="v1.17.0", previous_version="v1.16.8")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("config_change", "qa-bot")
    assert {"component": "gateway", "after": "qa-bot"} in d.incident["knock_on"]
    assert d.mitigations[0].action == "config_revert"


async def test_a_model_swap_upstream_explains_quality_falling_downstream_unless_exonerated(tmp_path):
    def build(folder, swapped_measures_quality, downstream_release):
        b = ScenarioBuilder(symptom="the support bot quotes policies that do not exist", service="bot",
                            services={"bot": ["retriever"], "retriever": ["embedder"]})
        ts, onset = b.ts, AT - 30 * 60
        b.metric("llm_hallucination_ratio", {"service": "bot"}, step_up(ts, daily(ts, 0.04, noise=0.08, seed=1), onset + 60, 0.2))
        b.metric("retrieval_hit_rate", {"service": "retriever"}, step_up(ts, daily(ts, 0.8, amplitude=0.02, noise=0.02, seed=2), onset, -0.5))
        b.metric("http_requests_per_second", {"service": "embedder"}, daily(ts, 50, noise=0.04, seed=3))
        if swapped_measures_quality:
            b.metric("retrieval_hit_rate", {"service": "embedder"}, daily(ts, 0.9, amplitude=0.02, noise=0.02, seed=4))
        b.change("chg-1", onset - 4 * 60, "embedder", "model", "embedder: pin e5-base -> gte-base",
                 version="gte-base", previous_version="e5-base")
        if downstream_release:
            b.change("chg-2", onset - 6 * 60, "retriever", "deploy", "retriever v2.0: new scoring",
                     version="v2.0", previous_version="v1.9")
        return b.write(folder)

    swap = await diagnose(build(tmp_path / "swap", False, False))
    assert (swap.hypotheses[0].category, swap.hypotheses[0].component) == ("data_or_model", "embedder")
    assert swap.mitigations[0].action == "model_rollback" and swap.mitigations[0].target == "embedder to e5-base"
    exonerated = await diagnose(build(tmp_path / "exonerated", True, True))
    assert (exonerated.hypotheses[0].category, exonerated.hypotheses[0].component) == ("code_change", "retriever")


async def test_a_chain_of_knock_on_effects_leads_to_the_first_failure(tmp_path):
    b = ScenarioBuilder(symptom="the web frontend shows errors on checkout", service="web",
                        services={"web": ["cart"], "cart": ["inventory"]})
    ts, onset = b.ts, AT - 20 * 60
    for delay, svc in ((0, "inventory"), (90, "cart"), (180, "web")):
        b.metric("http_error_ratio", {"service": svc}, step_up(ts, daily(ts, 0.002, noise=0.1, seed=delay), onset + delay, 0.3))
    b.metric("cpu_utilization_ratio", {"service": "inventory"}, np.clip(step_up(ts, daily(ts, 0.4, noise=0.03, seed=9), onset - 60, 0.58), 0, 1))
    b.change("chg-3", onset - 2 * 60, "inventory", "operation", "kubectl scale deploy/inventory --replicas=2 (was 12)")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("operation_error", "inventory")
    assert {k["component"] for k in d.incident["knock_on"]} == {"web", "cart"}
    assert d.mitigations[0].action == "scale_out"


async def test_the_change_closest_before_the_onset_is_cited_and_one_after_it_is_not(tmp_path):
    b = ScenarioBuilder(symptom="ledger writes fail", service="ledger")
    ts, onset = b.ts, AT - 20 * 60
    b.metric("http_error_ratio", {"service": "ledger"}, step_up(ts, daily(ts, 0.002, noise=0.1, seed=1), onset, 0.4))
    b.change("chg-1", onset - 15 * 60, "ledger", "operation", "maintenance window opened (CR-1)")
    b.change("chg-2", onset - 60, "ledger", "operation", "switchover of the writer to replica c (CR-1)")
    b.change("chg-3", onset + 3 * 60, "ledger", "infra", "kernel reboot of the old writer (CR-1)")
    d = await diagnose(b.write(tmp_path / "s"))
    top = d.hypotheses[0]
    assert top.category == "operation_error" and "chg-2" in top.statement
    infra = [h for h in d.hypotheses if h.category == "infrastructure"]
    # The reboot three minutes after the onset did not start it: ruled out, with the reason.
    assert infra and all(h.status == "refuted" and "before chg-3 landed" in h.why_lower for h in infra)


async def test_a_change_that_landed_after_its_component_departed_is_ruled_out(tmp_path):
    # search's latency rose ten minutes before its release landed: the release did not start it.
    b = ScenarioBuilder(symptom="checkout is returning 500s", services={"checkout": ["payments"]})
    ts, onset = b.ts, AT - 20 * 60
    b.metric("http_error_ratio", {"service": "checkout"}, step_up(ts, daily(ts, 0.002, noise=0.1, seed=1), onset, 0.2))
    b.metric("http_request_latency_p99_seconds", {"service": "search"},
             step_up(ts, daily(ts, 0.2, noise=0.05, seed=2), onset - 10 * 60, 0.3))
    b.change("rel-1", onset - 60, "checkout", "deploy", "checkout v2", version="v2", previous_version="v1")
    b.change("rel-2", onset, "search", "deploy", "search v9", version="v9", previous_version="v8")
    d = await diagnose(b.write(tmp_path / "s"))
    assert (d.hypotheses[0].category, d.hypotheses[0].component) == ("code_change", "checkout")
    search = [h for h in d.hypotheses if h.component == "search" and h.category == "code_change"]
    assert search and search[0].status == "refuted"
    assert "departed 10 min before rel-2 landed" in search[0].why_lower
