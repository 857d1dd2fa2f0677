"""The signal catalog: what to query for a (service, signal), and how to read what comes back.

Each signal has a PromQL template for services instrumented the usual way, a pattern that
recognises the same signal among a service's discovered series, the symptom it measures, and which
direction is bad. ``sleuth.yml`` can override the query per service (``services.<name>.signals``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "both"]
# symptom: what users feel; saturation: a resource filling up; traffic: load arriving;
# hardware: a physical fault counter; quality: GenAI output quality.
Kind = Literal["symptom", "saturation", "traffic", "hardware", "quality"]


@dataclass(frozen=True)
class Signal:
    name: str
    symptom: str
    direction: Direction
    kind: Kind
    pattern: str
    promql: str | None = None
    description: str = ""

    def recognises(self, metric_name: str) -> bool:
        return re.search(self.pattern, metric_name) is not None

    def query_for(self, service: str) -> str | None:
        return self.promql.replace("{service}", service) if self.promql else None


_H = 'histogram_quantile(0.99, sum by (le) (rate({metric}_bucket{{service="{{service}}"}}[5m])))'

# Order matters: the first pattern that matches a discovered series names its signal, so the
# specific ones (retrieval hit rate, KV-cache) come before the general ones (error rate, memory).
DEFAULT_SIGNALS: tuple[Signal, ...] = (
    Signal("gpu_errors", "latency", "up", "hardware", r"xid|ecc_err|gpu_err|nvlink",
           'sum(rate(DCGM_FI_DEV_XID_ERRORS{service="{service}"}[5m]))', "GPU Xid / ECC / NVLink errors"),
    Signal("retrieval_hit_rate", "invalid_output", "down", "quality", r"hit_rate|retrieval_recall|recall_at",
           None, "share of retrievals that found a relevant passage"),
    Signal("quality_score", "invalid_output", "down", "quality", r"eval_score|quality_score|groundedness|answer_accuracy",
           'avg(llm_eval_score{service="{service}"})', "online evaluation score of outputs"),
    Signal("hallucination_rate", "invalid_output", "up", "quality", r"hallucinat",
           None, "share of outputs judged unsupported"),
    Signal("safety_violations", "invalid_output", "up", "quality", r"safety|violation|unsafe|toxic",
           None, "outputs blocked or flagged by safety filters"),
    Signal("empty_response_rate", "invalid_output", "up", "quality", r"empty_response|truncat",
           None, "empty or truncated outputs"),
    Signal("ttft", "latency", "up", "symptom", r"time_to_first_token|ttft",
           _H.format(metric="llm_time_to_first_token_seconds"), "time to first token, p99"),
    Signal("tokens_per_second", "latency", "down", "symptom", r"tokens_per_second|tokens_per_sec|generation_throughput",
           None, "generation speed"),
    Signal("kv_cache_usage", "latency", "up", "saturation", r"kv_cache",
           'max(vllm:gpu_cache_usage_perc{service="{service}"})', "KV-cache utilisation"),
    Signal("gpu_memory", "latency", "up", "saturation", r"gpu_mem|gpu_memory|fb_used",
           'max(DCGM_FI_DEV_FB_USED{service="{service}"})', "GPU memory in use"),
    Signal("gpu_utilization", "latency", "both", "saturation", r"gpu_util",
           'avg(DCGM_FI_DEV_GPU_UTIL{service="{service}"})', "GPU utilisation"),
    Signal("queue_depth", "latency", "up", "saturation", r"queue_depth|queue_length|queue_size|pending_requests|num_requests_waiting",
           'sum(vllm:num_requests_waiting{service="{service}"})', "requests waiting"),
    Signal("tokens_per_request", "cost_spike", "up", "traffic", r"tokens_per_request|tokens_per_req|prompt_tokens|completion_tokens",
           None, "tokens per request"),
    Signal("cost", "cost_spike", "up", "traffic", r"cost|spend|usd", None, "spend"),
    Signal("upstream_throttling", "errors", "up", "symptom", r"rate_limited|throttled|upstream_429",
           None, "requests the upstream rejected for rate"),
    Signal("restarts", "deployment_failure", "up", "symptom", r"restart|crashloop|oom_kill|not_ready|unavailable_replicas",
           'sum(increase(kube_pod_container_status_restarts_total{service="{service}"}[5m]))', "container restarts"),
    Signal("error_rate", "errors", "up", "symptom", r"error|5xx|fail",
           'sum(rate(http_requests_total{service="{service}",code=~"5.."}[5m])) / sum(rate(http_requests_total{service="{service}"}[5m]))',
           "share of requests answered with 5xx"),
    Signal("latency_p99", "latency", "up", "symptom", r"latency|duration|response_time",
           _H.format(metric="http_request_duration_seconds"), "request latency, p99"),
    # Requests in flight pile up when answers slow down: a symptom of latency, not more traffic.
    Signal("in_flight", "latency", "up", "symptom", r"in_?progress|inflight|in_flight",
           None, "requests being served at once"),
    Signal("request_rate", "cost_spike", "both", "traffic", r"requests_per_second|request_rate|\brps\b|qps|requests",
           'sum(rate(http_requests_total{service="{service}"}[5m]))', "requests per second"),
    Signal("saturation", "latency", "up", "saturation", r"utili[sz]ation|saturation|cpu|memory|pool|connections|disk|inflight",
           'max(rate(container_cpu_usage_seconds_total{container="{service}"}[5m]))', "resource saturation"),
)

GENERIC = Signal("other", "unknown", "both", "symptom", r".*", None, "a discovered series")


def classify(metric_name: str, catalog: tuple[Signal, ...] = DEFAULT_SIGNALS) -> Signal:
    """The catalog signal a discovered metric measures, or the generic one."""
    lowered = metric_name.lower()
    for signal in catalog:
        if signal.recognises(lowered):
            return signal
    return GENERIC


def signals_for_symptom(symptom: str, catalog: tuple[Signal, ...] = DEFAULT_SIGNALS) -> list[Signal]:
    return [s for s in catalog if s.symptom == symptom]
