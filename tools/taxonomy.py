"""The shared vocabulary of a diagnosis (a copy of ../shared/taxonomy.md, kept as code).

Also the small amount of language knowledge the deterministic investigation needs: which symptom
a free-text report describes, and which cause a log line or a change points to.
"""

from __future__ import annotations

import re

SYMPTOMS = ("latency", "errors", "invalid_output", "cost_spike", "data_exposure", "deployment_failure")

CATEGORIES = (
    "code_change",
    "config_change",
    "data_or_model",
    "infrastructure",
    "capacity",
    "traffic_surge",
    "dependency",
    "operation_error",
    "unknown",
)

ACTIONS = (
    "rollback",
    "config_revert",
    "model_rollback",
    "scale_out",
    "failover",
    "restart",
    "drain_node",
    "rate_limit",
    "disable_feature",
    "reindex",
    "block_client",
    "escalate",
    "monitor",
)

# Actions that leave production as it is; everything else needs a human's approval.
READ_ONLY_ACTIONS = frozenset({"escalate", "monitor"})

_SYMPTOM_WORDS: dict[str, tuple[str, ...]] = {
    "latency": (
        r"slow", r"latenc", r"time ?outs?", r"timing out", r"p9\d", r"ttft", r"time[- ]to[- ]first[- ]token",
        r"lag", r"hang", r"sluggish", r"takes? (forever|ages|long)", r"tokens?/s", r"throughput",
    ),
    "errors": (
        r"errors?", r"5\d\d", r"5xx", r"fail", r"unavailab", r"down\b", r"outage", r"exceptions?",
        r"broken", r"crash", r"refus", r"reject",
    ),
    "invalid_output": (
        r"hallucinat", r"wrong answers?", r"quality", r"garbage", r"empty (responses?|answers?|outputs?)",
        r"truncat", r"unsafe", r"nonsense", r"gibberish", r"irrelevant", r"made[- ]up", r"accuracy",
        r"eval(uation)? score", r"bad answers?", r"incorrect", r"retrieval", r"citations?", r"off[- ]topic",
    ),
    "cost_spike": (r"\bcosts?\b", r"\bspend", r"\bbill\b", r"token usage", r"tokens? per", r"\bbudget", r"expensive", r"\$\d"),
    "data_exposure": (r"pii", r"leak", r"expos", r"private data", r"personal data", r"secret"),
    "deployment_failure": (
        r"rollout", r"crash ?loop", r"deploy(ment)? (failed|stuck)", r"not ready", r"image pull",
        r"readiness", r"won'?t start", r"pods? pending",
    ),
}


def symptoms_in(text: str) -> list[str]:
    """Symptom ids a report mentions, strongest first; ``[]`` when it names none."""
    lowered = text.lower()
    scored = []
    for symptom, patterns in _SYMPTOM_WORDS.items():
        hits = sum(1 for p in patterns if re.search(p, lowered))
        if hits:
            scored.append((hits, symptom))
    scored.sort(key=lambda item: -item[0])
    return [symptom for _, symptom in scored]


# Log and change phrases that point at a root-cause category. Matched against templates and
# change summaries; a phrase is evidence for the category, never proof.
_CAUSE_PHRASES: dict[str, tuple[str, ...]] = {
    "infrastructure": (
        r"\bxid\b", r"\becc\b", r"nvlink", r"gpu (has )?fell off", r"gpu.*(fault|error|lost)", r"hardware",
        r"node.*(not ?ready|lost|unreachable)", r"\bkernel\b", r"packet loss", r"link down", r"disk (i/o )?error",
        r"i/o error", r"\bnic\b", r"\bpower\b", r"network unreachable", r"tx timeout", r"retransmi",
        r"\bmlx\d", r"eth\d", r"\bbond\d", r"thermal", r"overheat", r"temperature", r"\bfan\b",
    ),
    "capacity": (
        r"out of memory", r"\boom\b", r"cuda out of memory", r"kv[- ]?cache (full|exhausted)", r"exhaust",
        r"pool (is )?(full|exhausted)", r"too many connections", r"no (free|available) (slots|connections|blocks)",
        r"quota (exceeded|reached)", r"disk full", r"no space left", r"queue (full|overflow)", r"preempt",
        r"evict", r"capacity", r"throttl",
    ),
    "dependency": (
        r"upstream", r"\b429\b", r"rate[- ]limit", r"connection refused", r"timed? ?out (connecting|waiting|calling)",
        r"provider", r"dependency", r"bad gateway", r"\b50[234]\b", r"circuit (breaker )?open", r"dns",
        r"no (healthy )?(instances|endpoints|upstreams?|hosts|servers) (are )?available", r"service unavailable",
        r"(failed|unable) to connect", r"could not connect", r"connection reset",
    ),
    "traffic_surge": (r"retry storm", r"burst", r"surge", r"flood", r"abuse", r"too many requests from"),
    "data_or_model": (
        r"model (version|swap|upgrade|changed)", r"weights", r"checkpoint", r"index (stale|out of date|refresh)",
        r"embedding", r"schema (mismatch|change)", r"stale", r"drift",
    ),
    "config_change": (r"\bconfig", r"feature flag", r"\bflag\b", r"\bsettings?\b", r"\bthreshold", r"prompt template"),
    "code_change": (
        r"exception", r"traceback", r"panic", r"nil pointer", r"null ?pointer", r"segfault", r"segmentation fault",
        r"typeerror", r"keyerror", r"attributeerror", r"undefined", r"assertion", r"stack ?trace", r"unhandled",
        r"regression", r"serializ", r"deserializ", r"unmarshal",
    ),
    "operation_error": (r"drain", r"cordon", r"maintenance", r"manual", r"operator", r"runbook", r"decommission"),
}


def cause_hints(text: str) -> dict[str, int]:
    """Root-cause categories a piece of text points at, with how many phrases matched."""
    lowered = text.lower()
    hints = {}
    for category, patterns in _CAUSE_PHRASES.items():
        hits = sum(1 for p in patterns if re.search(p, lowered))
        if hits:
            hints[category] = hits
    return hints


# Which category a change of each kind implies when it is the cause.
CHANGE_KIND_CATEGORY = {
    "deploy": "code_change",
    "release": "code_change",
    "config": "config_change",
    "flag": "config_change",
    "prompt": "config_change",
    "model": "data_or_model",
    "index": "data_or_model",
    "data": "data_or_model",
    "infra": "infrastructure",
    "operation": "operation_error",
}
