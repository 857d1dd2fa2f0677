"""The Slack app in HTTP mode under concurrent /diagnose commands.

Starts ``sleuth serve --http --demo`` (the real server, the bundled demo scenario's embedded
sources, no model) with its Web API pointed at the local stand-in, warms it with one command,
then sends N signed /diagnose commands at once, each from its own channel. Prints:

- ack latency p50/p99 (goal p99 <= 300 ms; Slack's limit is 3 s),
- time from the command to the first thread message, the plan (goal <= 1 s),
- time from the command to the full diagnosis in the thread (goal <= 5 s),

for one warm command alone and for the N concurrent ones.
Usage: python3 benchmarks/bench_slack.py [N]   (default 20)
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.slack_standins import SignedSender, SlackWebStandIn, slash_command  # noqa: E402
from tests.standins import free_port, wait_until_ready  # noqa: E402

SECRET = "bench-signing-secret"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (Linux /proc), for the CPU budget per diagnosis."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for one_pid in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{one_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def one(sender: SignedSender, web: SlackWebStandIn, channel: str, sent: dict, acks: dict) -> None:
    sent[channel] = time.monotonic()
    answer = sender.command(slash_command("", channel=channel, user="U0BENCH"), timeout=30)
    acks[channel] = answer.elapsed_s if answer.status == 200 else float("inf")


def measure(web: SlackWebStandIn, channels: list[str], sent: dict, timeout: float = 300) -> tuple[dict, dict]:
    first: dict[str, float] = {}
    full: dict[str, float] = {}

    def done() -> bool:
        for channel in channels:
            messages = web.bot_messages(channel)
            plan = next((m for m in messages if m.text.startswith("Investigating")), None)
            if plan is not None and channel not in first:
                first[channel] = plan.posted_at - sent[channel]
            if plan is not None and channel not in full:
                diagnosis = next((m for m in web.bot_messages(channel, plan.ts) if m.text.startswith("Diagnosis")), None)
                if diagnosis is not None:
                    full[channel] = diagnosis.posted_at - sent[channel]
        return len(full) == len(channels)

    web.wait_for(done, timeout=timeout, what="every diagnosis")
    return first, full


def report(label: str, acks: dict, first: dict, full: dict) -> None:
    a = [v * 1000 for v in acks.values()]
    f = list(first.values())
    d = list(full.values())
    print(f"{label}")
    print(f"  ack latency      p50 {percentile(a, .5):7.1f} ms   p99 {percentile(a, .99):7.1f} ms   max {max(a):7.1f} ms"
          f"   (goal p99 <= 300 ms)")
    print(f"  first message    p50 {percentile(f, .5):7.2f} s    p90 {percentile(f, .9):7.2f} s    max {max(f):7.2f} s"
          f"    (goal <= 1 s)")
    print(f"  full diagnosis   p50 {percentile(d, .5):7.2f} s    p90 {percentile(d, .9):7.2f} s    max {max(d):7.2f} s"
          f"    (goal <= 5 s)")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp, SlackWebStandIn() as web:
        port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": web.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLEUTH_SLACK_API_URL": web.api_url, "PYTHONPATH": str(ROOT), "SLEUTH_LOG_LEVEL": "WARNING"}
        log = open(Path(tmp) / "serve.log", "wb")
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--http", "--demo", "--host", "127.0.0.1",
                                    "--port", str(port)], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_until_ready(process, f"http://127.0.0.1:{port}/healthz", 120):
                print((Path(tmp) / "serve.log").read_text()[-3000:])
                return 1
            print(f"sleuth serve --http --demo ready in {time.monotonic() - started:.1f} s; {os.cpu_count()} CPUs")
            sender = SignedSender(f"http://127.0.0.1:{port}/slack/events", SECRET)

            for label, channels in (("one command (cold: first of the process)", ["CW0"]),
                                    ("one command (warm)", ["CW1"])):
                sent: dict[str, float] = {}
                acks: dict[str, float] = {}
                one(sender, web, channels[0], sent, acks)
                first, full = measure(web, channels, sent)
                report(label, acks, first, full)

            channels = [f"CB{i:03d}" for i in range(n)]
            sent, acks = {}, {}
            cpu_before, own_before = cpu_seconds(process.pid), time.process_time()
            if os.environ.get("BENCH_PYSPY"):  # a flame profile of the serve process during the burst
                subprocess.Popen(["py-spy", "record", "-p", str(process.pid), "-d", "12", "-f", "raw",
                                        "-o", os.environ["BENCH_PYSPY"], "--nonblocking"])
            barrier = threading.Barrier(n)

            def fire(channel: str) -> None:
                barrier.wait()
                one(sender, web, channel, sent, acks)

            threads = [threading.Thread(target=fire, args=(c,)) for c in channels]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            first, full = measure(web, channels, sent)
            report(f"{n} concurrent commands", acks, first, full)
            serve_cpu, own_cpu = cpu_seconds(process.pid) - cpu_before, time.process_time() - own_before
            print(f"  CPU: sleuth serve (and its chart worker) {serve_cpu:.1f} s, {serve_cpu / n:.2f} s per diagnosis; "
                  f"this benchmark's client and Web API stand-in {own_cpu:.1f} s")
            print(f"  Web API calls: {len(web.calls)}; rejected blocks: {len(web.rejected)}")
            print(f"  throughput: {n / max(full.values()):.2f} diagnoses/s "
                  f"(median {statistics.median(full.values()):.2f} s each)")
        finally:
            if os.environ.get("BENCH_KEEP_LOG"):
                import shutil

                shutil.copy(Path(tmp) / "serve.log", os.environ["BENCH_KEEP_LOG"])
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
