"""Alerts in, under a burst: N alerts (default 50, each on its own service, in 5 routed channels)
posted at once to a real ``sleuth serve --http --demo`` (Web API stand-in, no model). Prints the
acknowledgement latency (p50/p99; goal p99 <= 1 s, what Alertmanager's webhook timeout allows
easily) and the time until every alert's diagnosis is in its thread, with the longest single
diagnosis (goal: each within the investigation limit, investigation.source_timeout per source).

Usage: python3 benchmarks/bench_alerts.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.slack_standins import SlackWebStandIn  # noqa: E402
from tests.standins import free_port, wait_until_ready  # noqa: E402

TOKEN = "bench-alert-token"
CHANNELS = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp, SlackWebStandIn() as web:
        root = Path(tmp)
        routes = "".join(f"    - match: {{team: t{i}}}\n      channel: C0BENCH{i}\n" for i in range(CHANNELS))
        (root / "sleuth.yml").write_text(f"alerts:\n  token: {TOKEN}\n  channel: C0BENCHX\n  routes:\n{routes}")
        port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": web.bot_token, "SLEUTH_SLACK_API_URL": web.api_url,
               "SLACK_SIGNING_SECRET": "bench", "PYTHONPATH": str(ROOT), "SLEUTH_LOG_LEVEL": "WARNING"}
        log = open(root / "serve.log", "wb")
        serve = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", "--http", "--port", str(port),
                                  "--host", "127.0.0.1", "-c", "sleuth.yml"], cwd=root, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            if not wait_until_ready(serve, f"http://127.0.0.1:{port}/healthz", 60):
                sys.exit("sleuth serve did not start: " + (root / "serve.log").read_text()[-2000:])
            url = f"http://127.0.0.1:{port}/alerts"
            # One client, its connections made before the burst: the time measured is Sleuth's.
            http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=count, max_keepalive_connections=count))
            acks: list[float] = []
            sent: dict[str, float] = {}
            lock = threading.Lock()

            def post(i: int) -> None:
                body = {"title": f"service-{i} error ratio above 5%", "service": f"service-{i}",
                        "severity": "critical", "labels": {"team": f"t{i % CHANNELS}"}}
                started = time.perf_counter()
                answer = http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
                took = time.perf_counter() - started
                if answer.status_code != 202:
                    print(f"alert {i}: HTTP {answer.status_code} {answer.text[:200]}")
                with lock:
                    acks.append(took)
                    sent[f"service-{i}"] = started

            began = time.perf_counter()
            threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def posted() -> int:
                return sum(1 for m in web.bot_messages() if m.thread_ts and m.text.startswith("Diagnosis"))

            deadline = time.perf_counter() + 600
            while posted() < count and time.perf_counter() < deadline:
                time.sleep(0.2)
            everything = time.perf_counter() - began
            print(f"{count} alerts at once into {CHANNELS} channels: ack p50 {percentile(acks, 0.5) * 1000:.0f} ms, "
                  f"p99 {percentile(acks, 0.99) * 1000:.0f} ms, max {max(acks) * 1000:.0f} ms (goal p99 <= 1000 ms)")
            print(f"diagnoses posted: {posted()} of {count}; all within {everything:.1f} s of the burst "
                  f"({everything / max(1, count):.2f} s per alert with the investigation gate)")
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()


if __name__ == "__main__":
    main()
