"""Detection on telemetry shaped like real systems': baselines that hold earlier incidents,
quantized latencies, short faults, edge series measured at the caller, faults only the logs show."""

from __future__ import annotations

import asyncio

import numpy as np

from bot.investigate import investigate
from bot.scenario import load_scenario
from tests.factory import AT, STEP, ScenarioBuilder, daily, step_up, timeline
from tools.anomaly import detect

WINDOW_START = AT - 600
BASELINE = 3600


def diagnose(folder):
    scenario = load_scenario(folder)
    return asyncio.run(investigate(scenario.request, scenario.config))


def live(diagnosis):
    return [h for h in diagnosis.hypotheses if h.status != "refuted"]


def test_an_earlier_incident_in_the_baseline_does_not_hide_the_current_one():
    ts = timeline()
    values = daily(ts, 0.2, amplitude=0.05, noise=0.05, seed=11)
    # Forty minutes ago: a 3-minute incident that went far higher than today's.
    earlier = (ts >= AT - 40 * 60) & (ts < AT - 37 * 60)
    values[earlier] = 5.0
    values = step_up(ts, values, AT - 5 * 60, 1.5)
    found = detect(ts, values, WINDOW_START, AT, BASELINE, "up")
    assert found is not None and abs(found.onset - (AT - 5 * 60)) <= STEP


def test_a_quantized_latency_moving_one_bucket_is_not_a_departure():
    ts = timeline()
    rng = np.random.default_rng(3)
    # A low-traffic p99 read from buckets: mostly 5 ms, now and then 10 ms.
    values = np.where(rng.random(len(ts)) < 0.2, 0.01, 0.005)
    one_step = values.copy()
    one_step[ts >= AT - 6 * 60] = 0.01
    assert detect(ts, one_step, WINDOW_START, AT, BASELINE, "up") is None
    far = values.copy()
    far[ts >= AT - 6 * 60] = 0.25
    found = detect(ts, far, WINDOW_START, AT, BASELINE, "up")
    assert found is not None and abs(found.onset - (AT - 6 * 60)) <= STEP


def _quiet(b: ScenarioBuilder, service: str, seed: int) -> None:
    b.metric("http_request_latency_p99_seconds", {"service": service}, daily(b.ts, 0.1, noise=0.05, seed=seed))
    b.metric("cpu_utilization_ratio", {"service": service}, daily(b.ts, 0.2, noise=0.05, seed=seed + 50))


def test_a_callers_edge_series_is_evidence_about_the_callee(tmp_path):
    b = ScenarioBuilder(symptom="shop is slow", service="shop", window="10m",
                        services={"shop": ["orders", "cart"], "orders": ["cart"]})
    onset = AT - 5 * 60
    for i, svc in enumerate(("shop", "orders", "cart")):
        _quiet(b, svc, i)
    # Only the callers see it: calls to cart got slow (a network delay in front of cart).
    for i, caller in enumerate(("shop", "orders")):
        edge = step_up(b.ts, daily(b.ts, 0.004, noise=0.1, seed=20 + i), onset, 0.25)
        b.metric("outbound_call_latency_p50_seconds", {"service": caller, "callee": "cart"}, edge)
    b.metric("user_request_latency_p99_seconds", {"service": "shop"},
             step_up(b.ts, daily(b.ts, 0.3, noise=0.05, seed=30), onset, 0.5))
    diagnosis = diagnose(b.write(tmp_path / "edge"))
    top = live(diagnosis)[0]
    # Its own server-side latency stayed normal: the time was lost on the way to it.
    assert (top.component, top.category) == ("cart", "infrastructure"), [h.statement for h in diagnosis.hypotheses]
    assert all(e.component == "cart" for e in diagnosis.evidence
               if e.source == "metrics" and "callee" in e.query)


def test_a_short_fault_counts_when_two_signals_of_one_component_agree(tmp_path):
    b = ScenarioBuilder(symptom="shop is slow", service="shop", window="10m",
                        services={"shop": ["payments", "ledger"]})
    for i, svc in enumerate(("shop", "payments", "ledger")):
        if svc == "shop":
            continue
        _quiet(b, svc, i + 5)
    fault = (b.ts >= AT - 4 * 60) & (b.ts < AT - 1 * 60)  # three one-minute samples, then recovered
    cpu = daily(b.ts, 0.2, noise=0.05, seed=40)
    cpu[fault] = 0.95
    latency = daily(b.ts, 0.05, noise=0.05, seed=41)
    latency[fault] = 0.6
    b.series = [s for s in b.series if s[1]["service"] != "payments"]
    b.metric("cpu_utilization_ratio", {"service": "payments"}, cpu)
    b.metric("http_request_latency_p99_seconds", {"service": "payments"}, latency)
    # ledger: one series blips for three samples at the same time, nothing else moves.
    blip = daily(b.ts, 1000, noise=0.05, seed=42)
    blip[fault] = 5000
    b.metric("network_receive_bytes_per_second", {"service": "ledger"}, blip)
    shop = daily(b.ts, 0.3, noise=0.05, seed=43)
    shop[fault] = 1.2
    b.metric("user_request_latency_p99_seconds", {"service": "shop"}, shop)
    diagnosis = diagnose(b.write(tmp_path / "short"))
    hypotheses = live(diagnosis)
    assert hypotheses[0].component == "payments" and hypotheses[0].category == "capacity", \
        [h.statement for h in hypotheses]
    assert "ledger" not in {h.component for h in hypotheses}
    assert not any(e.component == "ledger" for e in diagnosis.evidence if e.source == "metrics")


def test_a_fault_only_the_logs_show_puts_its_component_first_at_the_latest_outbreak(tmp_path):
    b = ScenarioBuilder(symptom="travellers report errors on the site", service="site", window="10m",
                        services={"site": ["gateway"], "gateway": ["booking", "pricing"]})
    for i, svc in enumerate(("site", "gateway", "booking", "pricing")):
        _quiet(b, svc, 60 + i)
    rng = np.random.default_rng(8)
    earlier, onset = AT - 9 * 60, AT - 4 * 60
    for t in np.arange(AT - 3600, AT, 5.0):
        svc = ("gateway", "booking", "pricing")[int(rng.integers(3))]
        b.log(t, svc, "info", f"handled request id={rng.integers(10**6)} in {rng.integers(3, 40)}ms")
        # An earlier outbreak in booking, over three minutes before this one began.
        if earlier <= t < earlier + 120 and rng.random() < 0.5:
            b.log(t, "booking", "error", f"seat map refresh failed for train {rng.integers(900)}")
        if onset <= t < onset + 180 and rng.random() < 0.6:
            b.log(t, "pricing", "error", f"price rule evaluation returned no fare for route {rng.integers(500)}")
    diagnosis = diagnose(b.write(tmp_path / "logs"))
    hypotheses = live(diagnosis)
    assert hypotheses[0].component == "pricing", [h.statement for h in hypotheses]
    assert diagnosis.incident["onset"] is not None
    assert abs(AT - 4 * 60 - _ts(diagnosis.incident["onset"])) <= 60, diagnosis.incident["onset"]
    assert any(e.source == "logs" and e.component == "pricing" for e in diagnosis.evidence)


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()



def test_components_beyond_the_limit_are_the_farthest_and_the_result_says_so(tmp_path):
    from bot.config import InvestigationConfig, SleuthConfig

    # A chain shop -> api -> zeta-store, plus unrelated services that sort before it by name.
    b = ScenarioBuilder(symptom="shop is slow", service="shop", window="10m",
                        services={"shop": ["api"], "api": ["zeta-store"]})
    names = ["shop", "api", "zeta-store", "alpha", "beta", "gamma"]
    for i, svc in enumerate(names):
        _quiet(b, svc, 80 + i)
    b.series = [s for s in b.series if s[1]["service"] != "zeta-store" or s[0] != "http_request_latency_p99_seconds"]
    b.metric("http_request_latency_p99_seconds", {"service": "zeta-store"},
             step_up(b.ts, daily(b.ts, 0.1, noise=0.05, seed=90), AT - 5 * 60, 2.0))
    folder = b.write(tmp_path / "many")
    scenario = load_scenario(folder, SleuthConfig(investigation=InvestigationConfig(max_components=3)))
    diagnosis = asyncio.run(investigate(scenario.request, scenario.config))
    assert live(diagnosis)[0].component == "zeta-store", [h.statement for h in diagnosis.hypotheses]
    left = [text for text in diagnosis.limits if "not scanned" in text]
    assert left and left[0].startswith("3 components not scanned") and "alpha, beta, gamma" in left[0], diagnosis.limits


def test_series_that_stop_are_the_failure_not_the_survivor_that_carries_the_load(tmp_path):
    b = ScenarioBuilder(symptom="chat answers are slow", service="chat", window="30m",
                        services={"chat": ["llm"]})
    dead_at = AT - 12 * 60
    _quiet(b, "chat", 100)
    b.metric("user_request_latency_p99_seconds", {"service": "chat"},
             step_up(b.ts, daily(b.ts, 1.0, noise=0.05, seed=101), dead_at, 1.5))
    for i, node in enumerate(("gpu-a", "gpu-b")):
        util = daily(b.ts, 0.45, noise=0.05, seed=110 + i)
        latency = daily(b.ts, 0.8, noise=0.05, seed=120 + i)
        if node == "gpu-a":
            util[b.ts >= dead_at] = np.nan  # the node is gone: its series stop
            latency[b.ts >= dead_at] = np.nan
        else:
            util[b.ts >= dead_at] = 0.97  # the survivor takes all the load
            latency = step_up(b.ts, latency, dead_at, 1.6)
        b.metric("gpu_utilization_ratio", {"service": "llm", "node": node}, util)
        b.metric("http_request_latency_p99_seconds", {"service": "llm", "node": node}, latency)
    folder = b.write(tmp_path / "gpu")
    metrics = folder / "metrics.om"
    metrics.write_text("".join(line for line in metrics.read_text().splitlines(keepends=True) if " nan " not in line))
    diagnosis = diagnose(folder)
    top = live(diagnosis)[0]
    assert (top.category, top.component) == ("infrastructure", "llm"), [h.statement for h in diagnosis.hypotheses]
    assert top.scope.get("node") == "gpu-a", top.scope
    assert any("stopped reporting" in e.summary and 'node="gpu-a"' in e.summary for e in diagnosis.evidence)


def test_error_lines_logged_just_before_the_onset_are_evidence(tmp_path):
    b = ScenarioBuilder(symptom="chat answers are slow", service="chat", window="30m", services={"chat": ["llm"]})
    onset = AT - 10 * 60
    _quiet(b, "chat", 130)
    _quiet(b, "llm", 140)
    b.metric("user_request_latency_p99_seconds", {"service": "chat"},
             step_up(b.ts, daily(b.ts, 1.0, noise=0.05, seed=150), onset, 2.0))
    rng = np.random.default_rng(9)
    for t in np.arange(AT - 3600, AT, 10.0):
        b.log(t, "llm", "info", f"generated {rng.integers(50, 400)} tokens in {rng.integers(200, 900)}ms")
    # The cause, in the minute and a half before users felt it, and not after.
    for t in np.arange(onset - 90, onset - 10, 15.0):
        b.log(t, "llm", "error", "NVRM: Xid 79, GPU has fallen off the bus", node="gpu-a")
    diagnosis = diagnose(b.write(tmp_path / "lead"))
    cited = [e for e in diagnosis.evidence if e.source == "logs" and "Xid" in e.summary]
    assert cited, [e.summary for e in diagnosis.evidence]
    top = live(diagnosis)[0]
    assert (top.category, top.component) == ("infrastructure", "llm"), [h.statement for h in diagnosis.hypotheses]


def test_a_slow_quality_drift_is_a_weak_lead_not_unknown(tmp_path):
    b = ScenarioBuilder(symptom="answers seem off today", service="assistant", window="1h",
                        services={"assistant": ["retriever"]})
    _quiet(b, "assistant", 160)
    _quiet(b, "retriever", 170)
    hit = daily(b.ts, 0.9, amplitude=0.01, noise=0.01, seed=180)
    # Down about 3% over the hour, a little more each minute: never a step, never 4 sd at once.
    sliding = (b.ts >= AT - 3600)
    hit[sliding] -= 0.03 * (b.ts[sliding] - (AT - 3600)) / 3600
    b.metric("retrieval_hit_rate", {"service": "retriever"}, hit)
    diagnosis = diagnose(b.write(tmp_path / "drift"))
    top = live(diagnosis)[0]
    assert top.component == "retriever" and top.category == "data_or_model", [h.statement for h in diagnosis.hypotheses]
    assert "weak lead" in top.statement and top.confidence < 0.5
    assert any("drifted" in e.summary and "weak lead" in e.summary for e in diagnosis.evidence)


def test_429s_from_an_upstream_are_throttling_not_a_surge_of_the_caller(tmp_path):
    b = ScenarioBuilder(symptom="summaries fail for many users", service="summarizer", window="30m",
                        services={"summarizer": ["llm-provider"]})
    onset = AT - 12 * 60
    _quiet(b, "summarizer", 190)
    b.metric("http_error_ratio", {"service": "summarizer"},
             step_up(b.ts, daily(b.ts, 0.002, noise=0.1, seed=191), onset, 0.2))
    ok = daily(b.ts, 40, noise=0.05, seed=192)
    b.metric("upstream_requests_per_second", {"service": "summarizer", "code": "200"}, step_up(b.ts, ok, onset, -8))
    throttled = daily(b.ts, 0.05, noise=0.2, seed=193)
    b.metric("upstream_requests_per_second", {"service": "summarizer", "code": "429"}, step_up(b.ts, throttled, onset, 9))
    diagnosis = diagnose(b.write(tmp_path / "429"))
    hypotheses = live(diagnosis)
    assert "traffic_surge" not in {h.category for h in hypotheses[:2]}, [h.statement for h in hypotheses]
    assert hypotheses[0].category == "dependency", [h.statement for h in hypotheses]


def test_a_burst_of_housekeeping_counters_does_not_make_a_release_a_knock_on(tmp_path):
    b = ScenarioBuilder(symptom="checkout is returning 500s", service="checkout", window="10m",
                        services={"checkout": ["postgres"]})
    release, onset = AT - 5 * 60, AT - 4 * 60
    _quiet(b, "checkout", 200)
    b.metric("http_error_ratio", {"service": "checkout"},
             step_up(b.ts, daily(b.ts, 0.002, noise=0.1, seed=201), onset, 0.3))
    # The database's timed checkpoint: three bookkeeping series jump for three samples, just
    # before the release; nothing users see moves in the database.
    burst = (b.ts >= release - 2 * 60) & (b.ts < release + 60)
    for i, name in enumerate(("pg_bgwriter_buffers_checkpoint", "pg_bgwriter_buffers_backend",
                              "pg_bgwriter_checkpoints_timed")):
        values = daily(b.ts, 1.0, noise=0.05, seed=210 + i)
        values[burst] = 40.0
        b.metric(name, {"service": "postgres"}, values)
    b.change("rel-7", release, "checkout", "deploy", "checkout v2: new cart merge", version="v2", previous_version="v1")
    diagnosis = diagnose(b.write(tmp_path / "checkpoint"))
    top = live(diagnosis)[0]
    assert (top.category, top.component) == ("code_change", "checkout"), [h.statement for h in diagnosis.hypotheses]
    assert not diagnosis.incident["knock_on"], diagnosis.incident["knock_on"]


def test_an_untyped_series_that_only_grows_is_read_as_a_rate(tmp_path):
    b = ScenarioBuilder(symptom="checkout is slow", service="checkout", window="10m",
                        services={"checkout": ["db"]})
    onset = AT - 4 * 60
    _quiet(b, "checkout", 220)
    b.metric("user_request_latency_p99_seconds", {"service": "checkout"},
             step_up(b.ts, daily(b.ts, 0.2, noise=0.05, seed=221), onset, 1.0))
    _quiet(b, "db", 230)
    # What an exporter that cannot type it exports: milliseconds spent in statements, cumulative.
    # The database was busy for three minutes a while ago, then back to its usual pace: read as a
    # level, that total stays "up" ever after; read as a rate, the episode is over.
    per_minute = np.abs(daily(b.ts, 10.0, noise=0.1, seed=231))
    per_minute[(b.ts >= AT - 9 * 60) & (b.ts < AT - 6 * 60)] = 20000.0
    b.metric("db_active_time", {"service": "db"}, np.cumsum(per_minute))
    folder = b.write(tmp_path / "untyped")
    metrics = folder / "metrics.om"
    metrics.write_text(metrics.read_text().replace("# TYPE db_active_time gauge", "# TYPE db_active_time untyped"))
    diagnosis = diagnose(folder)
    assert live(diagnosis)[0].component == "checkout", [h.statement for h in diagnosis.hypotheses]
    assert abs(_ts(diagnosis.incident["onset"]) - onset) <= 60, diagnosis.incident["onset"]
    read = [e.query for e in diagnosis.evidence if e.source == "metrics" and "db_active_time" in e.query]
    assert all(q.startswith("rate(") for q in read), read


def test_a_service_whose_own_errors_are_its_code_is_no_knock_on_of_a_busy_dependency(tmp_path):
    b = ScenarioBuilder(symptom="checkout is returning 500s", service="checkout", window="15m",
                        services={"checkout": ["postgres"]})
    release, onset = AT - 6 * 60, AT - 5 * 60
    _quiet(b, "checkout", 240)
    b.metric("http_error_ratio", {"service": "checkout"},
             step_up(b.ts, daily(b.ts, 0.002, noise=0.1, seed=241), onset, 0.3))
    # The database starts a long checkpoint a minute before the release: its write counters climb
    # for minutes. Nothing users see moves there.
    b.metric("pg_bgwriter_buffers_checkpoint", {"service": "postgres"},
             step_up(b.ts, daily(b.ts, 1.0, noise=0.05, seed=242), release - 60, 30.0))
    rng = np.random.default_rng(4)
    for t in np.arange(AT - 3600, AT, 5.0):
        b.log(t, "checkout", "info", f"order {rng.integers(10**6)} placed")
        if t >= onset and rng.random() < 0.5:
            b.log(t, "checkout", "error", "unhandled exception in /api/checkout: KeyError 'cart_id'")
    b.change("rel-9", release, "checkout", "deploy", "checkout v2: new cart merge", version="v2", previous_version="v1")
    diagnosis = diagnose(b.write(tmp_path / "own"))
    top = live(diagnosis)[0]
    assert (top.category, top.component) == ("code_change", "checkout"), [h.statement for h in diagnosis.hypotheses]
    assert not diagnosis.incident["knock_on"], diagnosis.incident["knock_on"]


def test_a_gap_in_log_collection_does_not_make_a_steady_error_new(tmp_path):
    b = ScenarioBuilder(symptom="travellers report errors on the site", service="site", window="10m",
                        services={"site": ["gateway"], "gateway": ["meals", "routes"]})
    for i, svc in enumerate(("site", "gateway", "meals", "routes")):
        _quiet(b, svc, 70 + i)
    rng = np.random.default_rng(9)
    onset = AT - 4 * 60
    gap = (AT - 13 * 60, AT - 4 * 60)  # the collector lost nine minutes: no service logged anything
    for t in np.arange(AT - 14 * 60, AT, 5.0):
        if gap[0] <= t < gap[1]:
            continue
        svc = ("gateway", "meals", "routes")[int(rng.integers(3))]
        b.log(t, svc, "info", f"handled request id={rng.integers(10**6)} in {rng.integers(3, 40)}ms")
        # meals fails a few requests a minute all along: its usual noise, before the gap and after.
        if rng.random() < 0.5:
            b.log(t, "meals", "error", f"meal list for trip {rng.integers(900)} came back empty")
        if onset <= t < onset + 180 and rng.random() < 0.6:
            b.log(t, "routes", "error", f"route lookup returned no stations for route {rng.integers(500)}")
    diagnosis = diagnose(b.write(tmp_path / "gap"))
    hypotheses = live(diagnosis)
    assert hypotheses[0].component == "routes", [h.statement for h in hypotheses]
    steady = [e for e in diagnosis.evidence if e.source == "logs" and e.component == "meals"]
    # Its rate over the minutes the logs cover did not change: no evidence at all.
    assert not steady, [e.summary for e in steady]
    assert any("gap in collection" in limit for limit in diagnosis.limits), diagnosis.limits


def test_callers_saying_a_dependency_has_no_instances_point_at_the_dependency(tmp_path):
    b = ScenarioBuilder(symptom="travellers report errors on the site", service="site", window="10m",
                        services={"site": ["gateway"], "gateway": ["trips"], "trips": ["fares"]})
    # fares is a partner's service: nobody here scrapes it, only its callers' logs can say it failed.
    for i, svc in enumerate(("site", "gateway", "trips")):
        _quiet(b, svc, 80 + i)
    rng = np.random.default_rng(10)
    onset = AT - 4 * 60
    for t in np.arange(AT - 30 * 60, AT, 5.0):
        svc = ("gateway", "trips", "fares")[int(rng.integers(3))]
        b.log(t, svc, "info", f"handled request id={rng.integers(10**6)} in {rng.integers(3, 40)}ms")
        if onset <= t < onset + 180 and rng.random() < 0.6:
            b.log(t, "trips", "error", "Request processing failed; nested exception is "
                  "java.lang.IllegalStateException: No instances available for fares")
    diagnosis = diagnose(b.write(tmp_path / "instances"))
    hypotheses = live(diagnosis)
    top = hypotheses[0]
    # trips wrote the errors, but they say fares is gone: the exception is the message's wrapper.
    assert (top.component, top.category) == ("fares", "dependency"), [h.statement for h in hypotheses]
