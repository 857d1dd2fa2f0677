"""Held-out incident scenarios for Sleuth (format: docs/scenarios.md).

    python scenarios/validation/set1.py            # writes OUT/<slug>/ (default /tmp/sleuth-validation-set1) and checks each metrics.om with promtool
    python scenarios/validation/set1.py --list

Only the generator's building blocks are used (Scenario, Series, log templates); the incident
designs below are our own. Everything is seeded by the slug, so a run is byte-identical.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from generate import MIN, Decoy, Scenario, SCENARIOS, main, scenario, access_logs, healthcheck_noise  # noqa: E402

SCENARIOS.clear()  # only the held-out ones
OUT = Path("/tmp/sleuth-validation-set1")
BaseScenario = Scenario


class Scenario(BaseScenario):  # noqa: F811
    """The library's Scenario with one knob: ``log_scale`` thins every log rate (rates above are per pod fleet)."""

    def __init__(self, *args, log_scale: float = 0.4, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_scale = log_scale

    def log(self, service, level, template, per_min, *args, **kwargs):
        return super().log(service, level, template, per_min * self.log_scale, *args, **kwargs)


def pods(prefix: str, n: int = 6) -> list[str]:
    """Stable pod names for a deployment (used as a log field)."""
    rng = np.random.default_rng(zlib.crc32(prefix.encode()) + n)
    alnum = list("bcdfghjklmnpqrstvwxz2456789")
    rs = "".join(rng.choice(alnum, 9))
    return [f"{prefix}-{rs}-{''.join(rng.choice(alnum, 5))}" for _ in range(n)]


# ============================================================================================
# 1. code_change, classic: a websocket gateway release leaks memory; OOM kills start ~35 min later
# ============================================================================================
@scenario
def realtime_gateway_leak() -> Scenario:
    """code_change: realtime-gateway release leaks per-connection deflate contexts; OOM kills 35 min later"""
    sc = Scenario("realtime-gateway-leak", at="2026-02-17T19:48:00Z",
                  title="Live chat disconnects / 'Reconnecting…' banner",
                  symptom="users say live chat keeps dropping and the app shows 'Reconnecting…' every few minutes",
                  service="realtime-gateway", window="1h",
                  services={"web-frontend": ["profile-api", "realtime-gateway"],
                            "realtime-gateway": ["presence-cache", "profile-api"],
                            "notification-fanout": ["realtime-gateway"]},
                  noise=0.045, amplitude=0.35, peak_hour=19.5, first_change_id=2210, log_scale=0.3)
    onset = sc.ago(24)                  # 19:24, first OOM kills, users disconnected
    deploy_ts = onset - 35 * MIN        # 18:49, the leaking release
    sc.routine_changes(["web-frontend", "profile-api", "notification-fanout", "presence-cache", "realtime-gateway"], 8,
                       latest_minutes_ago=150)
    culprit = sc.deploy(deploy_ts, "realtime-gateway", "PR #2291: per-connection compression context for "
                        "permessage-deflate, saves 30% egress", "kemi")
    decoy = sc.deploy(onset - 5 * MIN, "profile-api", "PR #1187: avatar URLs signed with new CDN key", "bob")

    web = sc.http_service("web-frontend", 310, errors=0.0018, p99=0.38)
    gw = sc.http_service("realtime-gateway", 140, errors=0.0025, p99=0.22, memory=0.42)
    gw["restarts"] = sc.counter("pod_restarts", "realtime-gateway", 0.003)
    fan = sc.http_service("notification-fanout", 55, errors=0.003, p99=None)
    sc.metric("cache_latency_p99_seconds", "presence-cache", 0.018, amp=0.1, noise=0.08)
    presence_rps = sc.metric("http_requests_per_second", "presence-cache", 900)
    sc.http_service("profile-api", 85, errors=0.002, p99=0.09)

    # the leak: memory climbs linearly from the deploy, then pods are OOM-killed and restart in turn
    mem = gw["memory"]
    mem.approach(deploy_ts, 0.93, ramp=35 * MIN, noise=0.01)
    after = mem.ts >= onset
    mem.values[after] = 0.80 + 0.07 * np.sin((mem.ts[after] - onset) / 240.0) + sc.rng.normal(0, 0.035, after.sum())
    gw["restarts"].events(onset - MIN, 1.4)
    gw["errors"].step(onset, 0.07, ramp=90, noise=0.3)
    gw["p99"].step(onset, 0.9, ramp=120, noise=0.25)
    gw["rps"].scale(onset, 1.35, ramp=120)               # reconnect storms
    presence_rps.scale(onset + MIN, 1.6, ramp=120)        # presence re-registrations, absorbed fine
    fan["errors"].step(onset + 2 * MIN, 0.05, ramp=120, noise=0.3)
    web["errors"].spike(onset + 3 * MIN, 0.0008, 300)     # barely visible

    gwp = pods("realtime-gateway", 8)
    sc.log("realtime-gateway", "info", "ws session opened conn={hex:12} user={user} proto=v{int:2-3} "
           "ext=permessage-deflate", 14, pod=gwp)
    sc.log("realtime-gateway", "info", "ws session closed conn={hex:12} code=1000 duration={int:20-3600}s "
           "frames_out={int:10-9000}", 12, pod=gwp)
    sc.log("realtime-gateway", "warn", "slow consumer conn={hex:12}: send buffer {int:64-512}KiB, dropped "
           "{int:1-40} presence frames", 3.5, pod=gwp)   # loud, steady, normal
    sc.log("realtime-gateway", "warn", "heap in use {int:1580-1990}MiB above soft limit 1536MiB, "
           "GC cycle forced (gc {int:4000-90000})", 2.0, start=onset - 9 * MIN, ramp=300, pod=gwp)
    sc.log("realtime-gateway", "error", "fatal error: runtime: out of memory: cannot allocate {int:4194304-16777216}"
           "-byte block ({int:2080000000-2147000000} in use)", 1.2, start=onset - MIN, pod=gwp)
    sc.log("realtime-gateway", "warn", "ws session closed conn={hex:12} code=1006 abnormal closure after "
           "{int:30-1900}s (peer pod terminated)", 9, start=onset, pod=gwp)
    sc.log("realtime-gateway", "error", "ws upgrade rejected for user={user}: backend pod {pick:not ready|"
           "restarting} (readiness 0/1)", 3, start=onset + 30, pod=gwp)
    access_logs(sc, "web-frontend", 12, ["GET /app/chat/{id:8}", "GET /app/inbox", "GET /api/me",
                                         "GET /static/js/app.{hex:8}.js", "POST /api/messages/{id:10}"])
    sc.log("web-frontend", "warn", "client reported reconnect loop user={user} attempts={int:3-12} "
           "last_close=1006", 2.5, start=onset + 2 * MIN)
    sc.log("notification-fanout", "info", "delivered batch={hex:8} recipients={int:1-400} in {ms:5-220}ms", 5)
    sc.log("notification-fanout", "error", "deliver to realtime-gateway failed: rpc error: code = Unavailable "
           "desc = connection refused msg={id:12} attempt={int:1-5}", 2.5, start=onset + 2 * MIN, ramp=120)
    access_logs(sc, "profile-api", 6, ["GET /v2/profiles/{id:10}", "GET /v2/profiles/{id:10}/avatar",
                                       "PATCH /v2/profiles/{id:10}"])
    for i, p in enumerate(pods("profile-api", 4)):
        sc.once(onset - 5 * MIN + 20 + 25 * i, "profile-api", "info",
                f"profile-api {decoy['version']} started, listening on :8080 (cdn key id ck_{{hex:6}})", pod=p)
    for i, p in enumerate(gwp):
        sc.once(deploy_ts + 15 + 20 * i, "realtime-gateway", "info",
                f"realtime-gateway {culprit['version']} ready: compression=permessage-deflate window_bits=15 pod " + p)
    healthcheck_noise(sc, "presence-cache", 0.4)
    sc.log("presence-cache", "info", "keyspace presence:* keys={int:180000-260000} evicted=0 expired={int:100-900}", 0.5)

    sc.truth("code_change", "realtime-gateway", ["rollback"], onset,
             Decoy("profile-api", decoy, "profile-api (a dependency of the gateway) deployed 5 min before onset; "
                                         "it stays healthy"))
    del culprit
    return sc


# ============================================================================================
# 2. data_or_model, GenAI: the query embedder is re-pinned to a different model; the index is not
# ============================================================================================
@scenario
def support_bot_embedder_swap() -> Scenario:
    """data_or_model: embedder model re-pinned, index still built with the old one; silent quality drop"""
    sc = Scenario("support-bot-embedder-swap", at="2026-05-06T13:40:00Z",
                  title="support-bot invents policies",
                  symptom="customers say support-bot is confidently quoting refund and warranty policies that "
                          "don't exist, started sometime after lunch",
                  window="90m",
                  services={"support-bot": ["doc-retriever", "llm-serving", "ticket-api"],
                            "doc-retriever": ["embedder", "vector-store"]},
                  noise=0.04, amplitude=0.25, peak_hour=13, first_change_id=5301, log_scale=0.45)
    onset = sc.ago(32)   # 13:08
    sc.routine_changes(["support-bot", "doc-retriever", "ticket-api", "llm-serving", "vector-store"], 9)
    swap = sc.change(onset - 3 * MIN, "embedder", "model",
                     "embedder: model pin e5-base-v2 -> gte-base-en-v1.5 (MTEB +3.1, same 768 dims)", "ines",
                     version="gte-base-en-v1.5", previous_version="e5-base-v2")
    sc.deploy(onset - 14 * MIN, "ticket-api", "PR #733: attach order id to escalated tickets", "chen")

    bot = sc.http_service("support-bot", 18, errors=0.004, p99=4.2)
    eval_score = sc.metric("llm_eval_score", "support-bot", 0.86, amp=0.01, noise=0.02)
    halluc = sc.metric("llm_hallucination_ratio", "support-bot", 0.035, amp=0.05, noise=0.15)
    hit = sc.metric("retrieval_hit_rate", "doc-retriever", 0.79, amp=0.01, noise=0.02)
    ret_p99 = sc.metric("http_request_latency_p99_seconds", "doc-retriever", 0.14, amp=0.1, noise=0.07)
    emb = sc.http_service("embedder", 26, errors=None, p99=0.034)
    emb_gpu = sc.metric("gpu_utilization_ratio", "embedder", 0.31, node="gpu-emb-2")
    vs_p99 = sc.metric("db_query_latency_p99_seconds", "vector-store", 0.045, amp=0.15, noise=0.08)
    vs_cpu = sc.metric("cpu_utilization_ratio", "vector-store", 0.38)
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.82, amp=0.2, noise=0.06)
    tps = sc.metric("llm_tokens_per_second", "llm-serving", 74, amp=0.05, noise=0.04)
    tix = sc.http_service("ticket-api", 9, errors=0.002, p99=None)

    emb["p99"].step(onset - 2 * MIN, 0.011, ramp=120, noise=0.1)   # the new model is a bit slower
    emb_gpu.step(onset - 2 * MIN, 0.05, ramp=120)
    hit.approach(onset - MIN, 0.23, ramp=150, noise=0.08)
    eval_score.approach(onset, 0.6, ramp=180, noise=0.03)
    halluc.approach(onset + MIN, 0.22, ramp=240, noise=0.12)
    bot["p99"].scale(onset, 0.9, ramp=120)   # shorter answers grounded on nothing: slightly faster

    bp = pods("support-bot", 4)
    sc.log("support-bot", "info", "answered conversation={hex:10} turn={int:1-9} sources={int:2-5} "
           "output_tokens={int:60-420} latency={ms:900-4100}ms", 9, end=onset, pod=bp)
    sc.log("support-bot", "info", "answered conversation={hex:10} turn={int:1-9} sources={int:0-5} "
           "output_tokens={int:60-420} latency={ms:800-3600}ms", 9, start=onset, pod=bp)
    sc.log("support-bot", "info", "feedback conversation={hex:10} rating={pick:up|up|up|down} "
           "reason={pick:helpful|resolved|too_long|wrong_policy}", 1.2, end=onset)
    sc.log("support-bot", "info", "feedback conversation={hex:10} rating={pick:up|down|down|down} "
           "reason={pick:wrong_policy|made_up|irrelevant|resolved}", 1.8, start=onset + 4 * MIN)
    sc.log("support-bot", "warn", "grounding check: answer cites {int:1-3} passages with low relevance "
           "(max_score={float:0.14-0.33}) conversation={hex:10}", 3.5, start=onset, ramp=120, pod=bp)
    rp = pods("doc-retriever", 3)
    sc.log("doc-retriever", "info", "query id={hex:12} top_k=8 hits={int:5-8} max_score={float:0.68-0.93} "
           "took={ms:30-140}ms", 11, end=onset - MIN, pod=rp)
    sc.log("doc-retriever", "info", "query id={hex:12} top_k=8 hits={int:0-3} max_score={float:0.12-0.36} "
           "took={ms:30-150}ms", 11, start=onset - MIN, pod=rp)
    sc.log("doc-retriever", "warn", "low-confidence retrieval: max_score={float:0.12-0.34} below threshold 0.55 "
           "for query id={hex:12}, returning best effort", 5, start=onset - MIN, ramp=90, pod=rp)
    ep = pods("embedder", 3)
    sc.log("embedder", "info", "embed batch size={int:1-32} tokens={int:12-2900} took={ms:4-38}ms", 6, pod=ep)
    for i, p in enumerate(ep):
        sc.once(onset - 3 * MIN + 35 + 40 * i, "embedder", "info",
                "loaded model gte-base-en-v1.5 (dim=768, pooling=cls, normalize=true) on cuda:0 in "
                "{ms:8000-14000}ms", pod=p)
    # loud but steady: the vector store has always complained like this
    sc.log("vector-store", "warn", "slow search collection=kb_articles_v12 nprobe=32 took {ms:250-900}ms", 2.5)
    sc.log("vector-store", "warn", "segment compaction lagging collection=kb_articles_v12 pending={int:3-14}", 0.6)
    sc.log("llm-serving", "info", "Avg prompt throughput: {float:800-2400} tokens/s, Avg generation throughput: "
           "{float:60-85} tokens/s, Running: {int:2-14} reqs, Waiting: 0 reqs, GPU KV cache usage: {float:20-48}%",
           2, node="gpu-node-3")
    access_logs(sc, "ticket-api", 3, ["POST /v3/tickets", "GET /v3/tickets/{id:8}", "PATCH /v3/tickets/{id:8}"])

    sc.truth("data_or_model", "embedder", ["model_rollback", "reindex"], onset,
             Decoy("vector-store", None, "vector-store logs slow searches and compaction lag all day, at the same rate"))
    del swap, ret_p99, vs_p99, vs_cpu, ttft, tps, tix
    return sc


# ============================================================================================
# 3. config_change, GenAI cost: retrieval top_k raised in the orchestrator; spend alert on the gateway
# ============================================================================================
@scenario
def qa_topk_cost_spike() -> Scenario:
    """config_change: qa-orchestrator top_k 6 -> 40 multiplies prompt tokens; gateway deploy 4 min earlier is a decoy"""
    sc = Scenario("qa-topk-cost-spike", at="2026-07-21T16:25:00Z",
                  title="LLM spend alert on model-gateway",
                  symptom="FinOps alert: LLM spend through model-gateway is running at roughly 4x the usual rate",
                  service="model-gateway", window="1h",
                  services={"web-app": ["qa-orchestrator"],
                            "qa-orchestrator": ["doc-search", "model-gateway"],
                            "email-drafter": ["model-gateway"]},
                  noise=0.05, amplitude=0.3, peak_hour=15, first_change_id=3702, log_scale=0.5)
    onset = sc.ago(27)  # 15:58
    sc.routine_changes(["web-app", "qa-orchestrator", "doc-search", "email-drafter", "model-gateway"], 7)
    gw_deploy = sc.deploy(onset - 7 * MIN, "model-gateway", "PR #977: per-tenant usage export to the billing "
                          "warehouse", "dmitri")
    sc.change(onset - 3 * MIN, "qa-orchestrator", "config",
              "qa-orchestrator: retriever.top_k 6 -> 40, reranker.keep 6 -> 40 (experiment rag-recall-boost, "
              "ML-1183)", "grace")

    tenants = {"qa-orchestrator": (9.0, 1.9), "email-drafter": (4.0, 0.75), "search-summaries": (6.5, 0.55)}
    cost, reqs = {}, {}
    for tenant, (rps, usd) in tenants.items():
        reqs[tenant] = sc.metric("llm_requests_per_second", "model-gateway", rps, tenant=tenant)
        cost[tenant] = sc.metric("llm_cost_usd_per_minute", "model-gateway", usd, tenant=tenant)
    gw_ttft = sc.metric("llm_time_to_first_token_p99_seconds", "model-gateway", 1.05, amp=0.15, noise=0.06)
    sc.metric("http_error_ratio", "model-gateway", 0.002, amp=0.05, noise=0.2)
    qa = sc.http_service("qa-orchestrator", 9.0, errors=None, p99=3.1)
    qa_tok = sc.metric("llm_tokens_per_request", "qa-orchestrator", 2350, amp=0.04, noise=0.05)
    ds = sc.http_service("doc-search", 9.5, errors=None, p99=0.085)
    web = sc.http_service("web-app", 140, errors=0.0015, p99=None)
    drafter = sc.metric("http_request_latency_p99_seconds", "email-drafter", 4.8, amp=0.2, noise=0.06)

    qa_tok.approach(onset - MIN, 9800, ramp=120, noise=0.07)
    cost["qa-orchestrator"].scale(onset - MIN, 4.6, ramp=120, noise=0.07)
    gw_ttft.scale(onset, 1.45, ramp=120)
    qa["p99"].scale(onset, 1.5, ramp=120)
    ds["p99"].scale(onset - MIN, 1.3, ramp=60)

    gp = pods("model-gateway", 4)
    sc.log("model-gateway", "info", "route tenant=qa-orchestrator model=gpt-4.1-mini prompt_tokens={int:1700-2900} "
           "completion_tokens={int:90-450} cost_usd=0.00{int:10-99} latency_ms={ms:700-3200}", 6, end=onset - MIN,
           pod=gp)
    sc.log("model-gateway", "info", "route tenant=qa-orchestrator model=gpt-4.1-mini prompt_tokens={int:7900-11800} "
           "completion_tokens={int:90-480} cost_usd=0.0{int:10-19}{int:0-9} latency_ms={ms:1100-4600}", 6,
           start=onset - MIN, pod=gp)
    sc.log("model-gateway", "info", "route tenant=email-drafter model=gpt-4.1-mini prompt_tokens={int:400-1300} "
           "completion_tokens={int:200-700} cost_usd=0.00{int:10-60} latency_ms={ms:900-5200}", 2.5, pod=gp)
    sc.log("model-gateway", "info", "route tenant=search-summaries model=gpt-4.1-nano prompt_tokens={int:600-1500} "
           "completion_tokens={int:40-160} cost_usd=0.000{int:10-99} latency_ms={ms:300-1400}", 4, pod=gp)
    # the decoy deploy brings a brand-new (harmless) log template
    sc.log("model-gateway", "info", "usage exporter: flushed {int:180-900} records to warehouse table "
           "llm_usage_v2 in {ms:40-600}ms", 1, start=onset - 6 * MIN, pod=gp)
    for i, p in enumerate(gp):
        sc.once(onset - 7 * MIN + 20 + 30 * i, "model-gateway", "info",
                f"model-gateway {gw_deploy['version']} started: 14 routes, usage_export=enabled", pod=p)
    sc.log("model-gateway", "warn", "tenant qa-orchestrator spend ${int:360-520}.{int:10-99}/h exceeds soft "
           "budget $150.00/h (budget_id=bud_7hq2kx)", 0.5, start=onset + 9 * MIN)
    sc.log("model-gateway", "warn", "upstream 429 from provider, retried after {ms:200-900}ms tenant="
           "{pick:email-drafter|search-summaries|qa-orchestrator}", 0.4)   # steady background
    qp = pods("qa-orchestrator", 3)
    sc.log("qa-orchestrator", "info", "answer request={hex:12} chunks={int:5-6} rerank_kept={int:4-6} "
           "prompt_tokens={int:1700-2900} took={ms:1200-3900}ms", 7, end=onset - 2 * MIN, pod=qp)
    sc.log("qa-orchestrator", "info", "answer request={hex:12} chunks={int:36-40} rerank_kept={int:30-40} "
           "prompt_tokens={int:7900-11800} took={ms:1600-5400}ms", 7, start=onset - 2 * MIN, pod=qp)
    sc.log("qa-orchestrator", "warn", "context budget: dropped {int:2-11} low-score chunks to fit 12000-token "
           "window request={hex:12}", 2.5, start=onset - 2 * MIN, ramp=60, pod=qp)
    sc.once(onset - 3 * MIN + 12, "qa-orchestrator", "info",
            "config reloaded from configmap qa-orchestrator-rag (retriever.top_k=40, reranker.keep=40)")
    sc.log("doc-search", "info", "search q_len={int:3-40} k={int:6-6} took={ms:20-90}ms", 4, end=onset - 2 * MIN)
    sc.log("doc-search", "info", "search q_len={int:3-40} k={int:40-40} took={ms:30-140}ms", 4, start=onset - 2 * MIN)
    access_logs(sc, "web-app", 6, ["GET /help/search", "POST /api/ask", "GET /help/articles/{id:8}", "GET /api/me"])
    sc.log("email-drafter", "info", "draft ready thread={hex:10} tokens={int:200-700} in {ms:900-5000}ms", 2)

    sc.truth("config_change", "qa-orchestrator", ["config_revert"], onset,
             Decoy("model-gateway", gw_deploy, "the gateway itself was deployed 7 min before onset (usage export); "
                                               "it only meters the cost"))
    del reqs, web, drafter
    return sc


# ============================================================================================
# 4. capacity, classic, NO topology, latency only: a 20-minute organic ramp saturates pricing-service
# ============================================================================================
@scenario
def pricing_cpu_saturation_ramp() -> Scenario:
    """capacity: promo traffic ramps over 20 min; pricing-service pinned at max replicas saturates CPU; latency only"""
    sc = Scenario("pricing-cpu-saturation-ramp", at="2026-09-14T08:52:00Z",
                  title="Storefront product pages slow this morning",
                  symptom="product pages on the storefront are getting slower and slower this morning, p99 well "
                          "over a second; no errors though",
                  service="storefront", window="1h",
                  noise=0.04, amplitude=0.45, peak_hour=11, first_change_id=8810, log_scale=0.55)
    ramp_start = sc.ago(42)          # 08:10: promo push notifications go out in waves
    onset = ramp_start + 15 * MIN    # 08:25: pricing CPU passes ~85%, latency bends upward
    sc.routine_changes(["storefront", "catalog-api", "cart-service", "recommendations", "pricing-service"], 8)
    sc.change(sc.ago(19 * 60), "storefront", "flag", "storefront: enable autumn-sale-banner for 100% of users "
              "from 2026-09-14T08:00Z", "lena")

    sf = sc.http_service("storefront", 420, errors=0.0021, p99=0.46, cpu=0.41)
    pr = sc.http_service("pricing-service", 780, errors=0.0012, p99=0.075, cpu=0.5)
    cat = sc.http_service("catalog-api", 610, errors=None, p99=0.06, cpu=0.34)
    cart = sc.http_service("cart-service", 95, errors=0.002, p99=0.11)
    rec_cpu = sc.metric("cpu_utilization_ratio", "recommendations", 0.3, amp=0.2)
    rec_p99 = sc.metric("http_request_latency_p99_seconds", "recommendations", 0.16, amp=0.1, noise=0.06)
    pdb = sc.metric("db_query_latency_p99_seconds", "pricing-db", 0.012, amp=0.15, noise=0.08)

    for s in (sf["rps"], pr["rps"], cat["rps"]):
        s.scale(ramp_start, 1.5, ramp=20 * MIN, noise=0.03)
    cart["rps"].scale(ramp_start, 1.35, ramp=20 * MIN, noise=0.03)
    sf["cpu"].scale(ramp_start, 1.45, ramp=20 * MIN)
    cat["cpu"].scale(ramp_start, 1.4, ramp=20 * MIN)
    # pricing: HPA is at maxReplicas, so CPU follows the load until it saturates
    pr["cpu"].scale(ramp_start, 1.85, ramp=20 * MIN, noise=0.02)
    cap = 0.955 + sc.rng.normal(0, 0.012, len(pr["cpu"].ts))
    pr["cpu"].values = np.minimum(pr["cpu"].values, cap)
    # latency bends upward once the CPU is above ~85%: a convex ramp, not a step
    w = np.clip((pr["p99"].ts - onset) / (14 * MIN), 0, 1) ** 1.3
    pr["p99"].values = pr["p99"].values + 1.05 * w * (1 + sc.rng.normal(0, 0.12, len(w)))
    w2 = np.clip((sf["p99"].ts - onset) / (14 * MIN), 0, 1) ** 1.3
    sf["p99"].values = sf["p99"].values + 1.25 * w2 * (1 + sc.rng.normal(0, 0.12, len(w2)))

    # decoy: recommendations refreshes its model every 30 minutes; CPU and p99 spike, one lands at the onset
    first = onset - 2 * MIN - 30 * MIN * 55
    t = first
    while t < sc.at:
        j = float(sc.rng.uniform(-40, 40))
        rec_cpu.spike(t + j, 0.45, 4 * MIN)
        rec_p99.spike(t + j, 0.55, 4 * MIN)
        sc.once(t + j + 5, "recommendations", "info",
                "model refresh batch={hex:8} started: loading {int:1800000-2100000} item vectors")
        sc.log("recommendations", "warn", "feature store read slow ({ms:350-1400}ms) for user={user} during "
               "refresh", 3, start=t + j, end=t + j + 4 * MIN)
        sc.once(t + j + 4 * MIN, "recommendations", "info", "model refresh done in {int:220-250}s, swapped")
        t += 30 * MIN

    access_logs(sc, "storefront", 12, ["GET /p/{id:8}", "GET /c/{pick:shoes|jackets|bags|sale}", "GET /",
                                       "GET /search?q={id:5}", "GET /p/{id:8}/reviews"])
    sc.log("storefront", "warn", "render /p/{id:8}: pricing quote took {ms:600-2100}ms (budget 400ms), "
           "page served late", 4, start=onset + MIN, ramp=8 * MIN)
    prp = pods("pricing-service", 12)
    sc.log("pricing-service", "info", "quote sku={id:8} rules={int:2-19} promo={pick:none|none|aut26} "
           "took={ms:3-60}ms", 8, end=onset, pod=prp)
    sc.log("pricing-service", "info", "quote sku={id:8} rules={int:2-19} promo={pick:none|aut26|aut26} "
           "took={ms:40-1300}ms", 8, start=onset, pod=prp)
    sc.log("pricing-service", "warn", "worker pool saturated: {int:60-64}/64 busy, {int:8-240} requests queued",
           3, start=onset - 3 * MIN, ramp=6 * MIN, pod=prp)
    sc.log("pricing-service", "warn", "HorizontalPodAutoscaler pricing-service: desired replicas {int:15-21} "
           "capped at maxReplicas 12 (cpu {int:88-99}% of request)", 1, start=onset - 6 * MIN)
    access_logs(sc, "catalog-api", 5, ["GET /v1/products/{id:8}", "GET /v1/categories/{id:4}/products?page={int:1-9}"])
    access_logs(sc, "cart-service", 3, ["POST /v2/carts/{hex:10}/items", "GET /v2/carts/{hex:10}"])
    sc.log("pricing-db", "info", "checkpoint complete: wrote {int:200-4000} buffers ({float:0.1-2.9}%)", 0.2)
    sc.truth("capacity", "pricing-service", ["scale_out"], onset + MIN,   # storefront p99 visibly bends ~08:26
             Decoy("recommendations", None, "recommendations spikes CPU and p99 every 30 min (model refresh); "
                                            "one spike lands 3 min before the onset"))
    del cart, rec_cpu, pdb
    return sc


# ============================================================================================
# 5. dependency, classic: the payment provider hangs; only the callers' logs and one client-side series
# ============================================================================================
@scenario
def checkout_psp_timeouts() -> Scenario:
    """dependency: external PSP (psp-adyen) times out; seen only in checkout's logs and a client-side p99"""
    sc = Scenario("checkout-psp-timeouts", at="2026-04-11T20:15:00Z",
                  title="Card payments failing at checkout",
                  symptom="card payments at checkout are failing or hanging for a good chunk of customers",
                  service="checkout", window="1h",
                  services={"web-frontend": ["checkout", "cart-service"],
                            "checkout": ["psp-adyen", "payments-db", "fraud-check", "cart-service"]},
                  noise=0.05, amplitude=0.3, peak_hour=19, first_change_id=6120, log_scale=0.5)
    onset = sc.ago(19)   # 19:56
    sc.routine_changes(["web-frontend", "checkout", "cart-service", "fraud-check", "payments-db"], 8)
    decoy = sc.deploy(onset - 4 * MIN, "cart-service", "PR #2044: persist saved-for-later items across devices",
                      "hiro")

    # client-side: checkout's PSP client measures the provider's latency
    psp = sc.metric("http_request_latency_p99_seconds", "psp-adyen", 0.95, amp=0.15, noise=0.07)
    co = sc.http_service("checkout", 38, errors=0.004, p99=1.45, pool=0.32)
    web = sc.http_service("web-frontend", 260, errors=0.0019, p99=0.42)
    pdb_lat = sc.metric("db_query_latency_p99_seconds", "payments-db", 0.018, amp=0.1, noise=0.08)
    pdb_cpu = sc.metric("cpu_utilization_ratio", "payments-db", 0.27)
    fraud = sc.metric("http_request_latency_p99_seconds", "fraud-check", 0.12, amp=0.1, noise=0.07)
    cart = sc.http_service("cart-service", 120, errors=0.0025, p99=None)

    psp.approach(onset - MIN, 10.0, ramp=90, noise=0.005)        # the client's 10 s timeout
    co["errors"].step(onset, 0.085, ramp=120, noise=0.2)
    co["p99"].approach(onset, 10.6, ramp=90, noise=0.02)
    co["pool"].approach(onset + MIN, 0.78, ramp=180, noise=0.05)
    web["errors"].step(onset + 2 * MIN, 0.022, ramp=120, noise=0.2)
    web["p99"].step(onset + 2 * MIN, 0.35, ramp=120, noise=0.2)

    cp = pods("checkout", 4)
    sc.log("checkout", "info", "payment authorised order={order} psp=adyen method={pick:visa|mastercard|amex|paypal} "
           "amount={int:5-420}.{int:10-99} EUR in {ms:300-1400}ms", 7, end=onset, pod=cp)
    sc.log("checkout", "info", "payment authorised order={order} psp=adyen method={pick:visa|mastercard|amex|paypal} "
           "amount={int:5-420}.{int:10-99} EUR in {ms:400-9000}ms", 3.5, start=onset, pod=cp)
    sc.log("checkout", "warn", "fraud-check score missing for order={order}, defaulting to manual review", 1.2,
           pod=cp)   # steady background
    sc.log("checkout", "error", "adyen: POST /v68/payments timed out after 10000ms order={order} "
           "idempotency_key={hex:16}", 5, start=onset, ramp=60, pod=cp)
    sc.log("checkout", "warn", "adyen: retrying POST /v68/payments (attempt 2/2) after i/o timeout order={order}",
           3, start=onset, ramp=60, pod=cp)
    sc.log("checkout", "error", "circuit breaker psp-adyen OPEN: {int:11-30} failures in 30s, failing fast "
           "for {int:10-30}s", 0.5, start=onset + 3 * MIN, pod=cp)
    sc.log("checkout", "info", "payments-db commit order={order} status={pick:authorised|pending_review} "
           "in {ms:2-30}ms", 5, pod=cp)
    access_logs(sc, "web-frontend", 12, ["GET /", "GET /cart", "GET /checkout", "GET /p/{id:8}",
                                         "POST /api/cart/items"])
    sc.log("web-frontend", "error", "POST /checkout/pay -> checkout 504 Gateway Timeout after {ms:10000-10800}ms "
           "user={user}", 2.2, start=onset + 2 * MIN, ramp=60, trace_id="{hex:16}")
    sc.log("fraud-check", "info", "score order={order} risk={float:0.01-0.6} model=gbm-2026-03 took {ms:8-90}ms", 4)
    sc.log("payments-db", "info", "LOG: checkpoint complete: wrote {int:100-3000} buffers", 0.2)
    access_logs(sc, "cart-service", 5, ["GET /v2/carts/{hex:10}", "POST /v2/carts/{hex:10}/items",
                                        "GET /v2/carts/{hex:10}/saved"])
    for i, p in enumerate(pods("cart-service", 4)):
        sc.once(onset - 4 * MIN + 25 + 20 * i, "cart-service", "info",
                f"cart-service {decoy['version']} started, migrations up to date (0042_saved_items)", pod=p)

    sc.truth("dependency", "psp-adyen", ["failover", "escalate"], onset,
             Decoy("cart-service", decoy, "cart-service (a checkout dependency) deployed 4 min before onset; "
                                          "its errors and rate stay normal"))
    del pdb_lat, pdb_cpu, fraud, cart
    return sc


# ============================================================================================
# 6. operation_error, classic, knock-on chain inventory-api -> cart-service -> web-frontend
# ============================================================================================
@scenario
def inventory_wrong_scale_down() -> Scenario:
    """operation_error: prod inventory-api scaled 10 -> 2 by mistake (meant the load-test fleet); chain of 3"""
    sc = Scenario("inventory-wrong-scale-down", at="2026-03-26T11:05:00Z",
                  title="Errors adding items to cart",
                  symptom="lots of 'something went wrong' errors on the site, mostly when adding items to the cart",
                  service="web-frontend", window="1h",
                  services={"web-frontend": ["cart-service", "search-api", "auth"],
                            "cart-service": ["inventory-api", "cart-redis"],
                            "inventory-api": ["inventory-db"]},
                  noise=0.05, amplitude=0.3, peak_hour=12, first_change_id=4405, log_scale=0.45)
    onset = sc.ago(26)   # 10:39
    sc.routine_changes(["web-frontend", "cart-service", "search-api", "auth", "inventory-db"], 8)
    sc.change(onset - 2 * MIN, "inventory-api", "operation",
              "kubectl -n prod scale deployment/inventory-api --replicas=2 (OPS-4471: scale down soak-test fleet "
              "after load test)", "farid")

    inv = sc.http_service("inventory-api", 210, errors=0.0015, p99=0.065, cpu=0.38)
    inv["restarts"] = sc.counter("pod_restarts", "inventory-api", 0.002)
    cart = sc.http_service("cart-service", 95, errors=0.0025, p99=0.14)
    web = sc.http_service("web-frontend", 330, errors=0.0017, p99=0.4)
    search = sc.metric("http_request_latency_p99_seconds", "search-api", 0.22, amp=0.15, noise=0.06)
    search_rps = sc.metric("http_requests_per_second", "search-api", 140)
    idb = sc.metric("db_query_latency_p99_seconds", "inventory-db", 0.009, amp=0.1, noise=0.08)
    auth = sc.metric("http_error_ratio", "auth", 0.001, amp=0.05, noise=0.2)

    inv["cpu"].approach(onset - MIN, 0.97, ramp=60, noise=0.015)
    inv["p99"].approach(onset - MIN, 2.4, ramp=90, noise=0.15)
    inv["errors"].step(onset, 0.16, ramp=90, noise=0.2)
    inv["rps"].scale(onset - MIN, 0.72, ramp=60)               # two pods cannot serve it all
    inv["restarts"].events(onset + 2 * MIN, 0.35)              # liveness probes time out
    idb.scale(onset - MIN, 0.85, ramp=60)
    cart["errors"].step(onset + 1.5 * MIN, 0.11, ramp=90, noise=0.2)
    cart["p99"].approach(onset + MIN, 1.9, ramp=90, noise=0.1)
    web["errors"].step(onset + 3 * MIN, 0.045, ramp=90, noise=0.2)

    # decoy: search-api has a latency bump every 45 min (segment merges); one lands a minute after onset
    t = onset + MIN - 45 * MIN * 37
    while t < sc.at:
        j = float(sc.rng.uniform(-30, 30))
        search.spike(t + j, 0.6, 3 * MIN)
        sc.log("search-api", "warn", "segment merge in progress on shard {int:0-11}, query took {ms:500-1400}ms "
               "q={id:6}", 4, start=t + j, end=t + j + 3 * MIN)
        t += 45 * MIN

    old = pods("inventory-api", 10)
    keep, gone = old[:2], old[2:]
    for i, p in enumerate(gone):
        sc.once(onset - 2 * MIN + 3 + 2 * i, "inventory-api", "info",
                "received SIGTERM, draining {int:20-90} in-flight requests", pod=p)
    sc.log("inventory-api", "info", "GET /v1/stock/{id:8} 200 {ms:3-90}ms warehouse={pick:ams1|fra2|waw1}", 12,
           end=onset - 2 * MIN, pod=old)
    sc.log("inventory-api", "info", "GET /v1/stock/{id:8} 200 {ms:200-2900}ms warehouse={pick:ams1|fra2|waw1}", 6,
           start=onset - 2 * MIN, pod=keep)
    sc.log("inventory-api", "error", "request queue full (512 pending), rejecting GET /v1/stock/{id:8} with 503",
           4, start=onset, ramp=60, pod=keep)
    sc.log("inventory-api", "warn", "liveness probe failed: Get \"http://10.{int:1-9}.{int:0-255}.{int:2-254}:8080"
           "/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", 0.7,
           start=onset + MIN, pod=keep)
    sc.log("cart-service", "info", "add item cart={hex:10} sku={id:8} qty={int:1-4} in {ms:20-180}ms", 6,
           end=onset + MIN)
    sc.log("cart-service", "info", "add item cart={hex:10} sku={id:8} qty={int:1-4} in {ms:300-2900}ms", 3,
           start=onset + MIN)
    sc.log("cart-service", "error", "inventory-api GET /v1/stock/{id:8} failed: {pick:503 Service Unavailable|"
           "context deadline exceeded} after {ms:900-2000}ms cart={hex:10}", 5, start=onset + 1.5 * MIN, ramp=60)
    sc.log("cart-service", "info", "cart-redis GET cart:{hex:10} hit in {ms:1-4}ms", 3)
    access_logs(sc, "web-frontend", 14, ["GET /", "GET /p/{id:8}", "GET /search?q={id:5}", "GET /cart",
                                         "GET /static/{hex:8}.css"])
    sc.log("web-frontend", "error", "POST /api/cart/items -> cart-service 502 Bad Gateway user={user}", 2.5,
           start=onset + 3 * MIN, ramp=60, trace_id="{hex:16}")
    sc.log("auth", "info", "token refreshed user={user} ttl=3600s", 2)
    sc.log("inventory-db", "info", "LOG: duration: {ms:1000-2500} ms  statement: SELECT reservations ... "
           "(autovacuum analyze)", 0.1)

    # truth onset = the user-visible symptom on web-frontend (3 min after inventory-api departs)
    sc.truth("operation_error", "inventory-api", ["scale_out"], onset + 3 * MIN,
             Decoy("search-api", None, "search-api latency bumps every 45 min (segment merges); one lands 2 min before onset"))
    del search_rps, auth
    return sc


# ============================================================================================
# 7. infrastructure, classic DNS: a NIC on the node of one CoreDNS replica hangs; lookups time out
# ============================================================================================
@scenario
def coredns_node_nic_hang() -> Scenario:
    """infrastructure: ENA TX hangs on ip-10-20-3-41 (one CoreDNS replica); DNS timeouts across callers"""
    sc = Scenario("coredns-node-nic-hang", at="2026-10-08T03:20:00Z",
                  title="Webhook deliveries failing, retry queue growing",
                  symptom="partner webhook deliveries are failing and the retry queue keeps growing",
                  service="webhook-dispatcher", window="1h",
                  services={"webhook-dispatcher": ["payments-api", "orders-api"],
                            "payments-api": ["payments-db"],
                            "orders-api": ["payments-api"]},
                  noise=0.06, amplitude=0.4, peak_hour=14, first_change_id=9040, log_scale=0.6)
    onset = sc.ago(31)   # 02:49
    bad, good = "ip-10-20-3-41", "ip-10-20-5-12"
    sc.routine_changes(["webhook-dispatcher", "payments-api", "orders-api", "batch-workers", "payments-db"], 7)
    decoy = sc.change(onset - 9 * MIN, "batch-workers", "infra",
                      "node pool batch-c6i: kernel 6.1.112 -> 6.1.118 rolling replace (nodes ip-10-20-9-*)",
                      "karpenter[bot]")

    dns_lat = {n: sc.metric("dns_request_latency_p99_seconds", "coredns", 0.028, amp=0.1, noise=0.1, node=n)
               for n in (bad, good)}
    dns_err = {n: sc.metric("dns_error_ratio", "coredns", 0.0008, amp=0.05, noise=0.25, node=n) for n in (bad, good)}
    drop = sc.metric("node_network_drop_ratio", "coredns", 0.0001, amp=0.0, noise=0.3, node=bad)
    wh = sc.http_service("webhook-dispatcher", 32, errors=0.006, p99=0.9)
    pay = sc.http_service("payments-api", 48, errors=0.0022, p99=0.3)
    orders = sc.http_service("orders-api", 75, errors=None, p99=0.18)
    bw = sc.metric("cpu_utilization_ratio", "batch-workers", 0.55, amp=0.1)

    drop.approach(onset - 2 * MIN, 0.37, ramp=60, noise=0.15)
    dns_lat[bad].approach(onset - MIN, 2.0, ramp=60, noise=0.05)   # coredns' own 2 s upstream timeout
    dns_err[bad].step(onset - MIN, 0.34, ramp=60, noise=0.12)
    wh["errors"].step(onset + MIN, 0.21, ramp=120, noise=0.15)
    wh["p99"].approach(onset + MIN, 5.2, ramp=90, noise=0.06)
    pay["errors"].step(onset + 2 * MIN, 0.018, ramp=120, noise=0.25)
    pay["p99"].step(onset + 2 * MIN, 2.1, ramp=120, noise=0.2)
    orders["p99"].step(onset + 2 * MIN, 1.6, ramp=120, noise=0.2)

    sc.log("coredns", "error", "kernel: ena 0000:00:06.0 eth0: TX hang detected on queue {int:0-7}, resetting "
           "device (missing tx completions {int:120-400})", 0.6, start=onset - 3 * MIN, node=bad)
    sc.log("coredns", "warn", "kernel: ena 0000:00:06.0 eth0: Keep alive watchdog timeout.", 0.25,
           start=onset - 3 * MIN, node=bad)
    sc.log("coredns", "error", "[ERROR] plugin/errors: 2 {pick:hooks.partner{int:1-40}.example.com|api.stripe.com|"
           "payments-db.prod.svc.cluster.local|sqs.eu-west-1.amazonaws.com}. {pick:A|AAAA}: read udp "
           "10.20.3.41:{int:30000-60999}->10.20.0.2:53: i/o timeout", 3, start=onset - MIN, node=bad)
    sc.log("coredns", "info", "[INFO] 10.20.{int:0-15}.{int:2-254}:{int:30000-60999} - {int:1000-65000} \"A IN "
           "{pick:orders-api|payments-api|payments-db|redis-main}.prod.svc.cluster.local. udp {int:60-90} false 512\" "
           "NOERROR qr,aa,rd {int:100-200} 0.000{int:100-999}s", 3, node=[bad, good])
    sc.log("coredns", "warn", "[WARNING] plugin/kubernetes: watch of *v1.EndpointSlice ended with: an error on the "
           "server (\"unable to decode an event from the watch stream\")", 0.08, node=[bad, good])  # steady
    wp = pods("webhook-dispatcher", 3)
    sc.log("webhook-dispatcher", "info", "delivered evt_{id:12} to https://hooks.partner{int:1-40}.example.com/"
           "events status={pick:200|200|200|202|204} in {ms:40-900}ms", 8, pod=wp)
    sc.log("webhook-dispatcher", "warn", "partner endpoint https://hooks.partner{int:1-40}.example.com/events "
           "returned {pick:410 Gone|404 Not Found|500 Internal Server Error}, scheduling retry {int:1-8}/8", 0.9,
           pod=wp)   # loud, steady: partners with broken endpoints
    sc.log("webhook-dispatcher", "error", "deliver evt_{id:12}: Post \"https://hooks.partner{int:1-40}.example.com/"
           "events\": dial tcp: lookup hooks.partner{int:1-40}.example.com on 172.20.0.10:53: read udp "
           "10.20.{int:0-15}.{int:2-254}:{int:30000-60999}->172.20.0.10:53: i/o timeout", 4, start=onset + MIN,
           ramp=60, pod=wp)
    sc.log("webhook-dispatcher", "warn", "retry queue depth {int:1200-9000} (oldest {int:3-28}m), backing off",
           0.5, start=onset + 5 * MIN)
    sc.log("payments-api", "error", "stripe: Post \"https://api.stripe.com/v1/refunds\": dial tcp: lookup "
           "api.stripe.com on 172.20.0.10:53: read udp 10.20.{int:0-15}.{int:2-254}:{int:30000-60999}->"
           "172.20.0.10:53: i/o timeout", 0.8, start=onset + 2 * MIN)
    access_logs(sc, "payments-api", 5, ["GET /v1/payments/{id:10}", "POST /v1/refunds", "GET /v1/payouts"])
    sc.log("orders-api", "warn", "slow DNS resolution for {pick:payments-api|payments-db}.prod.svc.cluster.local: "
           "{ms:2000-5100}ms", 1.4, start=onset + 2 * MIN)
    access_logs(sc, "orders-api", 6, ["GET /v1/orders/{id:10}", "POST /v1/orders", "GET /v1/orders?customer={id:8}"])
    sc.log("batch-workers", "info", "job {pick:invoice-pdf|ledger-export|thumbnail} {hex:8} done in {ms:500-9000}ms",
           2)
    for i in range(6):
        sc.once(onset - 9 * MIN + 40 + 60 * i, "batch-workers", "info",
                f"node ip-10-20-9-{17 + i} cordoned and drained for replacement (kernel 6.1.118)")

    sc.truth("infrastructure", "coredns", ["drain_node", "restart", "failover"], onset + MIN,  # dispatcher errors
             Decoy("batch-workers", decoy, "kernel roll on the batch node pool 10 min before onset; unrelated nodes"))
    del bw, orders
    return sc


# ============================================================================================
# 8. traffic_surge, GenAI: a customer bulk-embeds through the interactive embeddings API
# ============================================================================================
@scenario
def embeddings_tenant_bulk_flood() -> Scenario:
    """traffic_surge: tenant acme-corp bulk-embeds via the interactive API; queue, 429s, semantic search slow"""
    sc = Scenario("embeddings-tenant-bulk-flood", at="2026-06-03T10:10:00Z",
                  title="Semantic search slow and failing",
                  symptom="semantic search is painfully slow and some queries come back with 'try again later'",
                  service="semantic-search", window="1h",
                  services={"semantic-search": ["embeddings-api", "vector-db"],
                            "chat-assistant": ["semantic-search", "llm-serving"]},
                  noise=0.05, amplitude=0.3, peak_hour=9, first_change_id=7001, log_scale=0.65)
    onset = sc.ago(21)   # 09:49
    sc.routine_changes(["semantic-search", "chat-assistant", "embeddings-api", "vector-db"], 7)
    decoy = sc.change(onset - 6 * MIN, "vector-db", "config",
                      "vector-db: hnsw ef_search 64 -> 96 for collection docs_prod (recall +1.8% in offline eval)",
                      "jonas")

    tenant_rps = {"semantic-search": 24.0, "acme-corp": 2.5, "globex": 4.0}
    treq = {t: sc.metric("llm_requests_per_second", "embeddings-api", r, tenant=t) for t, r in tenant_rps.items()}
    queue = sc.metric("llm_queue_depth", "embeddings-api", 2.2, amp=0.3, noise=0.3)
    gpu = sc.metric("gpu_utilization_ratio", "embeddings-api", 0.46, node="gpu-emb-1")
    emb = sc.http_service("embeddings-api", None, errors=0.0012, p99=0.055)
    ss = sc.http_service("semantic-search", 24, errors=0.002, p99=0.32)
    vdb_p99 = sc.metric("db_query_latency_p99_seconds", "vector-db", 0.028, amp=0.15, noise=0.08)
    vdb_cpu = sc.metric("cpu_utilization_ratio", "vector-db", 0.33)
    chat_ttft = sc.metric("llm_time_to_first_token_p99_seconds", "chat-assistant", 1.6, amp=0.2, noise=0.06)

    treq["acme-corp"].approach(onset - 2 * MIN, 71, ramp=120, noise=0.08)
    vdb_p99.step(onset - 5 * MIN, 0.002, ramp=60)        # ef_search: a hair slower, well inside normal
    gpu.approach(onset - MIN, 0.99, ramp=90, noise=0.005)
    queue.approach(onset - MIN, 190, ramp=180, noise=0.2)
    emb["p99"].approach(onset - MIN, 2.9, ramp=150, noise=0.1)
    emb["errors"].step(onset, 0.13, ramp=120, noise=0.15)   # 429 shedding
    ss["p99"].approach(onset + MIN, 3.4, ramp=120, noise=0.08)
    ss["errors"].step(onset + MIN, 0.075, ramp=120, noise=0.2)
    chat_ttft.step(onset + 3 * MIN, 1.9, ramp=120, noise=0.15)

    ep = pods("embeddings-api", 4)
    sc.log("embeddings-api", "info", "embed tenant=semantic-search model=bge-m3 inputs=1 tokens={int:4-60} "
           "took={ms:8-45}ms", 6, end=onset - MIN, pod=ep)
    sc.log("embeddings-api", "info", "embed tenant=semantic-search model=bge-m3 inputs=1 tokens={int:4-60} "
           "took={ms:300-3200}ms", 3, start=onset - MIN, pod=ep)
    sc.log("embeddings-api", "info", "embed tenant=globex model=bge-m3 inputs={int:1-16} tokens={int:40-3000} "
           "took={ms:10-160}ms", 1.5, pod=ep)
    sc.log("embeddings-api", "info", "embed tenant=acme-corp model=bge-m3 inputs={int:1-8} tokens={int:40-900} "
           "took={ms:10-90}ms", 0.8, end=onset - 3 * MIN, pod=ep, client_ip="34.{int:100-120}.{int:0-255}.17")
    sc.log("embeddings-api", "info", "embed tenant=acme-corp model=bge-m3 inputs=96 tokens={int:18000-46000} "
           "took={ms:900-4800}ms", 9, start=onset - 3 * MIN, ramp=120, pod=ep,
           client_ip=["34.107.81.17", "34.107.81.18", "34.107.82.40"])
    sc.log("embeddings-api", "warn", "request queue depth {int:110-260} above 100, shedding with 429 tenant="
           "{pick:semantic-search|semantic-search|globex|acme-corp}", 4, start=onset, ramp=60, pod=ep)
    sc.log("embeddings-api", "warn", "tokenizer: input truncated to 8192 tokens (tenant=globex)", 0.3, pod=ep)
    sp = pods("semantic-search", 3)
    sc.log("semantic-search", "info", "search q=\"{id:6} {id:4}\" k=10 hits={int:3-10} took={ms:60-300}ms", 9,
           end=onset + MIN, pod=sp)
    sc.log("semantic-search", "info", "search q=\"{id:6} {id:4}\" k=10 hits={int:3-10} took={ms:900-4000}ms", 5,
           start=onset + MIN, pod=sp)
    sc.log("semantic-search", "warn", "embeddings-api 429 Too Many Requests, retrying in {int:1-4}s "
           "query_id={hex:12}", 4, start=onset + MIN, ramp=60, pod=sp)
    sc.log("semantic-search", "error", "search failed after 3 attempts: embeddings unavailable (429) "
           "query_id={hex:12}", 1.8, start=onset + 2 * MIN, ramp=60, pod=sp)
    sc.log("vector-db", "info", "search collection=docs_prod ef={pick:64} k=10 took {ms:3-25}ms", 3,
           end=onset - 6 * MIN)
    sc.log("vector-db", "info", "search collection=docs_prod ef={pick:96} k=10 took {ms:4-28}ms", 3,
           start=onset - 6 * MIN)
    sc.once(onset - 6 * MIN + 8, "vector-db", "info", "collection docs_prod: params updated (hnsw.ef_search=96)")
    sc.log("chat-assistant", "info", "turn conversation={hex:10} retrieved={int:0-8} ttft={ms:400-1700}ms", 3)

    sc.truth("traffic_surge", "embeddings-api", ["rate_limit", "block_client"], onset + MIN,  # semantic-search
             Decoy("vector-db", decoy, "vector-db search parameter raised 7 min before onset; its latency barely moves"))
    del vdb_cpu
    return sc


# ============================================================================================
# 9. code_change, GenAI latency only: a safety-filter release with a backtracking regex; llm-serving
#    config change 3 min later is the decoy
# ============================================================================================
@scenario
def safety_filter_regex_ttft() -> Scenario:
    """code_change: safety-filter PII regex backtracks on long prompts; TTFT up, no errors; llm-serving tuning decoy"""
    sc = Scenario("safety-filter-regex-ttft", at="2026-08-19T22:40:00Z",
                  title="Chat time-to-first-token way up",
                  symptom="chat answers take ages to start streaming, time-to-first-token roughly tripled; "
                          "no errors",
                  service="chat-api", window="1h",
                  services={"chat-api": ["safety-filter", "llm-serving", "prompt-store"]},
                  noise=0.05, amplitude=0.35, peak_hour=3, first_change_id=1550, log_scale=0.5)
    onset = sc.ago(18)   # 22:22
    sc.routine_changes(["chat-api", "llm-serving", "prompt-store", "safety-filter"], 8)
    release = sc.deploy(onset - 6 * MIN, "safety-filter", "PR #1642: extended PII patterns for IBAN and national IDs",
                        "esra")
    decoy = sc.change(onset - 2 * MIN, "llm-serving", "config",
                      "llm-serving: vllm max_num_seqs 128 -> 160, max_num_batched_tokens 8192 -> 12288", "hiro")

    sf = sc.http_service("safety-filter", 55, errors=0.0008, p99=0.045, cpu=0.33)
    chat = sc.http_service("chat-api", 54, errors=0.003, p99=None)
    chat_ttft = sc.metric("llm_time_to_first_token_p99_seconds", "chat-api", 1.25, amp=0.2, noise=0.06)
    ls_ttft = sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.85, amp=0.2, noise=0.06)
    tps = sc.metric("llm_tokens_per_second", "llm-serving", 68, amp=0.06, noise=0.04)
    kv = sc.metric("llm_kv_cache_utilization_ratio", "llm-serving", 0.52, amp=0.25, noise=0.05)
    ps = sc.metric("http_request_latency_p99_seconds", "prompt-store", 0.03, amp=0.1, noise=0.08)

    # the new build rolls out over ~4 min; long prompts hit the catastrophic pattern
    sf["cpu"].approach(onset - 2 * MIN, 0.94, ramp=240, noise=0.03)
    sf["p99"].approach(onset - MIN, 2.7, ramp=180, noise=0.15)
    chat_ttft.step(onset, 2.6, ramp=150, noise=0.15)
    decoy_ts = onset - 2 * MIN
    kv.step(decoy_ts, 0.03, ramp=120)       # bigger batches: a touch more KV in use
    tps.scale(decoy_ts, 0.97, ramp=120)

    sp = pods("safety-filter", 5)
    sc.log("safety-filter", "info", "scan request={hex:12} chars={int:40-9000} verdict={pick:allow|allow|allow|"
           "allow|redact} took={ms:2-35}ms", 12, end=onset - 4 * MIN, pod=sp)
    sc.log("safety-filter", "info", "scan request={hex:12} chars={int:40-9000} verdict={pick:allow|allow|allow|"
           "allow|redact} took={ms:3-2900}ms", 12, start=onset - 4 * MIN, pod=sp)
    sc.log("safety-filter", "warn", "scan exceeded budget: {ms:600-4200}ms for chars={int:2500-12000} "
           "rule=pii.iban_v2 request={hex:12}", 4, start=onset - 2 * MIN, ramp=120, pod=sp)
    for i, p in enumerate(sp):
        sc.once(onset - 6 * MIN + 30 + 40 * i, "safety-filter", "info",
                f"safety-filter {release['version']} ready: 212 rules compiled (pii.iban_v2, pii.national_id_v2 new)",
                pod=p)
    cp = pods("chat-api", 4)
    sc.log("chat-api", "info", "stream done conversation={hex:10} model=llama-3.3-70b ttft={ms:300-1300}ms "
           "output_tokens={int:40-900}", 10, end=onset, pod=cp)
    sc.log("chat-api", "info", "stream done conversation={hex:10} model=llama-3.3-70b ttft={ms:900-4200}ms "
           "output_tokens={int:40-900}", 10, start=onset, pod=cp)
    sc.log("chat-api", "warn", "safety pre-check slow: {ms:800-4200}ms conversation={hex:10}", 3.5, start=onset,
           ramp=60, pod=cp)
    sc.log("chat-api", "warn", "client disconnected before first token conversation={hex:10} waited "
           "{ms:400-2500}ms", 0.8, pod=cp)   # steady: mobile clients giving up
    sc.log("llm-serving", "info", "Avg prompt throughput: {float:1200-3800} tokens/s, Avg generation throughput: "
           "{float:55-75} tokens/s, Running: {int:8-40} reqs, Swapped: 0 reqs, Pending: 0 reqs, GPU KV cache "
           "usage: {float:30-70}%", 4, node=["gpu-node-21", "gpu-node-22"])
    sc.once(decoy_ts + 10, "llm-serving", "info", "engine args updated: max_num_seqs=160 max_num_batched_tokens=12288, "
            "rolling restart of 2 replicas", node="gpu-node-21")
    sc.log("prompt-store", "info", "GET /templates/{pick:chat-default|chat-support|chat-code}@v{int:3-9} 200 "
           "{ms:2-20}ms", 3)

    sc.truth("code_change", "safety-filter", ["rollback"], onset,
             Decoy("llm-serving", decoy, "llm-serving batching tuned 2 min before onset; its TTFT and throughput "
                                         "stay normal"))
    del chat, ls_ttft, ps
    return sc


# ============================================================================================
# 10. infrastructure, GenAI: one GPU node thermally throttles (failed fan); no Xid errors at all
# ============================================================================================
@scenario
def gpu_node_thermal_throttle() -> Scenario:
    """infrastructure: gpu-node-11 throttles (fan failure), tokens/s on that node halves; no Xid; service in text"""
    sc = Scenario("gpu-node-thermal-throttle", at="2026-01-28T15:30:00Z",
                  title="code-assistant completions slower for some users",
                  symptom="code-assistant completions got noticeably slower for some users, maybe one request in "
                          "four, nothing failing",
                  window="1h",
                  services={"code-assistant": ["llm-router"], "llm-router": ["llm-serving"]},
                  noise=0.04, amplitude=0.3, peak_hour=15, first_change_id=1203, log_scale=0.65)
    onset = sc.ago(28)   # 15:02
    bad = "gpu-node-11"
    nodes = ["gpu-node-9", "gpu-node-10", "gpu-node-11", "gpu-node-12"]
    sc.routine_changes(["code-assistant", "llm-router", "llm-serving"], 7)
    decoy = sc.deploy(onset - 8 * MIN, "code-assistant", "PR #588: rank inline completions by acceptance model",
                      "alice")

    tps = {n: sc.metric("llm_tokens_per_second", "llm-serving", 82, amp=0.05, noise=0.04, node=n) for n in nodes}
    gpu = {n: sc.metric("gpu_utilization_ratio", "llm-serving", 0.6, amp=0.2, noise=0.04, node=n)
           for n in (bad, "gpu-node-12")}
    xid = sc.counter("gpu_xid_errors", "llm-serving", 0.0, node=bad)
    ttft = sc.metric("llm_time_to_first_token_p99_seconds", "llm-serving", 0.72, amp=0.2, noise=0.06)
    queue = sc.metric("llm_queue_depth", "llm-serving", 3, amp=0.4, noise=0.3)
    ca = sc.http_service("code-assistant", 120, errors=0.0025, p99=2.3)
    router = sc.metric("http_request_latency_p99_seconds", "llm-router", 2.1, amp=0.2, noise=0.05)

    tps[bad].approach(onset - 2 * MIN, 37, ramp=240, noise=0.07)      # clocks pulled down step by step
    gpu[bad].approach(onset - 2 * MIN, 0.99, ramp=180, noise=0.005)   # busy, but slow
    ttft.scale(onset, 1.9, ramp=180)
    queue.approach(onset, 16, ramp=240, noise=0.25)
    ca["p99"].scale(onset + MIN, 2.1, ramp=180)
    router.scale(onset, 2.2, ramp=180)

    sc.log("llm-serving", "info", "Avg generation throughput: {float:70-92} tokens/s, Running: {int:6-30} reqs, "
           "Pending: {int:0-3} reqs, GPU KV cache usage: {float:25-60}%", 4,
           node=["gpu-node-9", "gpu-node-10", "gpu-node-12"])
    sc.log("llm-serving", "info", "Avg generation throughput: {float:70-92} tokens/s, Running: {int:6-30} reqs, "
           "Pending: {int:0-3} reqs, GPU KV cache usage: {float:25-60}%", 1.3, end=onset - 4 * MIN, node=bad)
    sc.log("llm-serving", "info", "Avg generation throughput: {float:30-45} tokens/s, Running: {int:20-48} reqs, "
           "Pending: {int:4-19} reqs, GPU KV cache usage: {float:55-88}%", 1.3, start=onset - 4 * MIN, node=bad)
    sc.once(onset - 6 * MIN, "llm-serving", "warn", "bmc: SEL entry: Fan 4 (0x34) lower critical going low, "
            "reading 0 RPM", node=bad)
    sc.log("llm-serving", "warn", "dcgm: GPU {int:0-7} clocks event reasons 0x{pick:48|68|40} (HW Slowdown, "
           "HW Thermal Slowdown), temp {int:87-94}C, sm_clock {int:690-1080}MHz", 1.5, start=onset - 4 * MIN,
           ramp=120, node=bad)
    sc.log("llm-serving", "warn", "dcgm: GPU {int:0-7} power draw {int:180-260}W, pcie replay count "
           "{int:0-2}", 0.2, node=nodes)   # steady background chatter
    sc.log("llm-router", "info", "route model=qwen2.5-coder-32b backend={pick:gpu-node-9|gpu-node-10|gpu-node-11|"
           "gpu-node-12} in_tokens={int:200-3800} out_tokens={int:8-160} took={ms:150-1900}ms", 9, end=onset)
    sc.log("llm-router", "info", "route model=qwen2.5-coder-32b backend={pick:gpu-node-9|gpu-node-10|gpu-node-12} "
           "in_tokens={int:200-3800} out_tokens={int:8-160} took={ms:150-1900}ms", 7, start=onset)
    sc.log("llm-router", "info", "route model=qwen2.5-coder-32b backend=gpu-node-11 in_tokens={int:200-3800} "
           "out_tokens={int:8-160} took={ms:900-5200}ms", 2.3, start=onset)
    sc.log("code-assistant", "info", "completion session={hex:10} lang={pick:python|typescript|go|rust|java} "
           "accepted={pick:true|false|false} latency={ms:200-2200}ms", 8)
    for i, p in enumerate(pods("code-assistant", 4)):
        sc.once(onset - 8 * MIN + 20 + 30 * i, "code-assistant", "info",
                f"code-assistant {decoy['version']} started (ranker=acceptance-v2)", pod=p)
    sc.log("code-assistant", "info", "ranker acceptance-v2 scored {int:2-8} candidates in {ms:1-9}ms",
           3, start=onset - 7 * MIN)

    sc.truth("infrastructure", "llm-serving", ["drain_node"], onset + MIN,  # code-assistant p99 bends
             Decoy("code-assistant", decoy, "code-assistant released a new ranker 9 min before onset; healthy"))
    del xid
    return sc


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--list" not in args and "--out" not in args:
        args += ["--out", str(OUT), "--check"]
    sys.exit(main(args))
