"""Sources run concurrently: three sources (Prometheus, Loki, GitHub) whose data requests each take
1 s, served on 127.0.0.1, gathered by one investigation. Goal: <= 1.3 s (about 3 s if serial).

Prints the gather time, each source's own time, and the ratio gather / sum of the sources.
Usage: python3 benchmarks/bench_concurrency.py [RUNS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import SleuthConfig  # noqa: E402
from bot.investigate import InvestigationRequest, run_investigation  # noqa: E402
from tests.standins import GitHubStandIn, JsonStandIn, LogEntry, LokiStandIn, deployment, ns  # noqa: E402
from tools.changes import ChangesConfig, GitHubConfig, GitHubRepo  # noqa: E402
from tools.http import HttpSourceConfig  # noqa: E402
from tools.logs import LogsConfig, LokiConfig  # noqa: E402
from tools.metrics import MetricsConfig  # noqa: E402

DELAY = 1.0
AT = 1_773_153_300.0  # 2026-03-10T14:35:00Z


def prometheus() -> JsonStandIn:
    grid = [[AT - 86400 - 4 * 3600 + 60 * i, "0.01"] for i in range(int((86400 + 4 * 3600) / 60) + 1)]
    ok = lambda data: {"status": "success", "data": data}  # noqa: E731
    server = JsonStandIn({
        "/api/v1/label/service/values": ok(["checkout"]),
        "/api/v1/label/job/values": ok([]),
        "/api/v1/label/app/values": ok([]),
        "/api/v1/series": ok([{"__name__": "http_error_ratio", "service": "checkout"}]),
        "/api/v1/query_range": ok({"resultType": "matrix", "result": [
            {"metric": {"__name__": "http_error_ratio", "service": "checkout"}, "values": grid}]}),
    })
    server.latency = lambda request: DELAY if request.path == "/api/v1/query_range" else 0.0
    return server


def loki() -> LokiStandIn:
    entries = [LogEntry({"service": "checkout"}, ns(AT - 3 * 3600 + 30 * i),
                        json.dumps({"level": "info", "message": f"GET /cart/{i} 200"})) for i in range(300)]
    server = LokiStandIn(entries)
    server.latency = lambda request: DELAY if request.path.endswith("/query_range") else 0.0
    return server


def github() -> GitHubStandIn:
    server = GitHubStandIn({"acme/checkout": [deployment(1, "acme/checkout", AT - 1800, sha="a" * 40)]})
    server.latency = lambda request: DELAY
    return server


async def once(prom, logs, gh) -> tuple[float, dict[str, float]]:
    config = SleuthConfig(
        metrics=MetricsConfig(prometheus=HttpSourceConfig(url=prom.url)),
        logs=LogsConfig(loki=LokiConfig(url=logs.url)),
        changes=ChangesConfig(github=GitHubConfig(url=gh.url, repos=[GitHubRepo(repo="acme/checkout", service="checkout")])),
    )
    result = await run_investigation(InvestigationRequest("checkout errors", at=AT), config)
    d = result.diagnosis
    failed = {n: r.reason for n, r in d.sources.items() if r.status == "error"}
    if failed:
        raise SystemExit(f"a source failed, the figure would mean nothing: {failed}")
    return d.timings["gather_ms"] / 1000, {n: d.sources[n].elapsed_ms / 1000 for n in ("metrics", "logs", "changes")}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with prometheus().start() as prom, loki().start() as logs, github().start() as gh:
        results = [asyncio.run(once(prom, logs, gh)) for _ in range(runs)]
    gathers = [g for g, _ in results]
    serial = [sum(per.values()) for _, per in results]
    per = results[-1][1]
    print("concurrency: each source's data request delayed "
          f"{DELAY:.0f} s; per source (last run): " + ", ".join(f"{n} {t:.2f} s" for n, t in per.items()))
    print(f"concurrency: gather median {statistics.median(gathers):.2f} s over {runs} runs (goal <= 1.3 s); "
          f"sum of sources {statistics.median(serial):.2f} s; ratio {statistics.median(gathers) / statistics.median(serial):.2f}"
          f" ({'ok' if statistics.median(gathers) <= 1.3 else 'OVER'})")


if __name__ == "__main__":
    main()
