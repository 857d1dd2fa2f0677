"""The past-incident memory at scale: ingest rate and query latency on synthetic corpora.

Embedded PersistentClient in a temporary folder, the offline (hashed) embedding, the product's own
paths: ``Memory.add_records`` (one stored vector per record; the early text embedded for the early
category head only; category heads updated) and
``Memory.find_similar_incidents`` (k=5: query embedding, HNSW search, head re-rank) followed by
``Memory.suggest``. Corpora are generated deterministically (seeded).

Goals (issue 3): 100k records ingested in at most 5 minutes; query p50 <= 30 ms, p99 <= 100 ms.
The ingest's CPU time (this process and its worker) and the load average are printed beside the
wall time: the machine is shared, and a busy one stretches the wall time.

Usage: python3 benchmarks/bench_memory.py [SIZES...] [--queries N]
       (default sizes: 1000 10000; add 100000 for the full-scale run, about 5-6 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INGEST_GOAL_100K_S = 300.0
P50_GOAL_MS = 30.0
P99_GOAL_MS = 100.0
DIM = 1024  # the offline embedding's dimension (--dim): the default of a new memory

CATEGORY_WORDS = {
    "code_change": "release regression deploy rollout build exception nullpointer version bug serializer",
    "config_change": "config flag setting toggle misconfiguration parameter routing policy allowlist",
    "infrastructure": "hardware disk power rack switch host firmware node kernel nic",
    "capacity": "saturation exhausted pool queue backlog quota throttled memory cpu connections",
    "traffic_surge": "surge spike flood burst retries storm load peak crawler campaign",
    "dependency": "upstream provider vendor third-party dns certificate partner api 429 outage",
    "data_or_model": "model index embedding stale retrieval drift prompt dataset tokenizer checkpoint",
    "operation_error": "manual operator command removed decommissioned script mistake maintenance",
    "unknown": "intermittent unexplained transient sporadic unclear",
}
FILLER = ("service latency errors customers region requests timeouts dashboard alert users degraded failures "
          "portal storage compute gateway cluster database cache frontend backend p99 5xx slow unavailable "
          "investigation engineers mitigated monitoring impact window recovered elevated rates subset").split()
SERVICES = [f"svc-{name}" for name in ("checkout", "search", "billing", "auth", "storage", "gateway", "llm-inference",
                                       "assistant", "payments", "catalog", "ads", "notifications")]
SYMPTOMS = ["availability", "performance", "consistency", "data loss"]
OPERATIONS = ["normal operation", "deployment", "maintenance", "scaling", "migration"]


def synthetic(n: int, seed: int = 42) -> list:
    """n incident records: category words mixed with shared filler, realistic lengths (~150 words)."""
    from index.records import IncidentRecord

    rng = random.Random(seed)
    cats = list(CATEGORY_WORDS)
    weights = [30, 20, 15, 12, 8, 6, 4, 2, 3]
    records = []
    for i in range(n):
        cat = rng.choices(cats, weights)[0]
        words = CATEGORY_WORDS[cat].split()

        def sentence(k: int, signal: int) -> str:
            return " ".join(rng.sample(FILLER, k) + rng.choices(words, k=signal) + [f"err-{rng.randint(100, 999)}"])

        records.append(IncidentRecord(
            id=f"BENCH-{i:06d}", title=sentence(6, 2), summary=sentence(20, 4),
            services=rng.sample(SERVICES, rng.randint(1, 2)), date=f"20{20 + i % 6}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            category=cat, mitigations=[rng.choice(["rollback", "config_revert", "scale_out", "failover", "restart"])],
            root_cause_text=sentence(15, 5), mitigation_text=sentence(10, 1),
            symptoms=[rng.choice(SYMPTOMS)], operation=[rng.choice(OPERATIONS)],
            sections={"Details": " ".join(sentence(16, 4) for _ in range(5))}, source="synthetic"))
    return records


def queries(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = CATEGORY_WORDS[rng.choice(list(CATEGORY_WORDS))].split()
        out.append(" ".join(rng.sample(FILLER, 5) + rng.sample(words, 3) + [rng.choice(SERVICES)]))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the ingest's worker process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run(size: int, n_queries: int) -> dict:
    from index.config import EmbeddingConfig
    from index.store import Memory, MemoryConfig

    records = synthetic(size)
    folder = Path(tempfile.mkdtemp(prefix=f"sleuth-bench-memory-{size}-"))
    try:
        memory = Memory(MemoryConfig(path=folder, embedding=EmbeddingConfig(dim=DIM)))
        started, cpu = time.perf_counter(), cpu_seconds()
        summary = memory.add_records(records)
        ingest_s, ingest_cpu_s = time.perf_counter() - started, cpu_seconds() - cpu
        assert len(summary.added) == size, summary.skipped[:3]
        texts = queries(n_queries)
        warm = time.perf_counter()
        for text in texts[:3]:  # the first query loads and solves the category heads
            memory.find_similar_incidents(text, k=5)
        warm_s = time.perf_counter() - warm
        latencies = []
        for text in texts:
            t0 = time.perf_counter()
            results = memory.find_similar_incidents(text, k=5)
            memory.suggest(results)
            latencies.append((time.perf_counter() - t0) * 1000)
        disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        return {"records": size, "ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu_s, "rate": size / ingest_s,
                "warmup_s": warm_s, "load": os.getloadavg()[0],
                "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99),
                "queries": len(latencies), "disk_mb": disk / 1e6}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=DIM, help="offline embedding dimension")
    args = parser.parse_args()
    globals()["DIM"] = args.dim
    print(f"goals: 100k ingested <= {INGEST_GOAL_100K_S:.0f} s; query p50 <= {P50_GOAL_MS:.0f} ms, "
          f"p99 <= {P99_GOAL_MS:.0f} ms (find_similar_incidents k=5 + suggest)")
    status = 0
    for size in args.sizes:
        r = run(size, args.queries)
        projected = 100_000 / r["rate"]
        ok_ingest = (r["ingest_s"] if size >= 100_000 else projected) <= INGEST_GOAL_100K_S
        ok_query = r["p50_ms"] <= P50_GOAL_MS and r["p99_ms"] <= P99_GOAL_MS
        status |= 0 if ok_query and (size < 100_000 or ok_ingest) else 1
        print(f"{size:>7} records: ingest {r['ingest_s']:7.1f} s (cpu {r['ingest_cpu_s']:.1f} s; {r['rate']:6.0f} records/s"
              + (f", 100k at this rate ~{projected:.0f} s" if size < 100_000 else "")
              + f") {'ok' if ok_ingest else 'OVER'}; query p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms over "
              f"{r['queries']} queries {'ok' if ok_query else 'OVER'}; first queries (heads solved) "
              f"{r['warmup_s']:.2f} s; on disk {r['disk_mb']:.0f} MB; load average {r['load']:.1f}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
