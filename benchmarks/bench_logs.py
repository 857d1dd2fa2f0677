"""Log mining streams: 1 M JSON lines through the file reader and drain3, in a child process.

Prints lines/s and the child's peak RSS (goal: <= 400 MB). Usage: python3 benchmarks/bench_logs.py [LINES]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from tools.logs import TemplateMiner, read_files
records = read_files([Path({path!r})], None, 0, 4e9, 10**9)
if {redact!r}:  # as the investigation does: secrets leave a line before it is mined
    import dataclasses

    from bot.safety import Redactor
    redact = Redactor().redact
    records = (dataclasses.replace(r, message=redact(r.message)) for r in records)
started = time.perf_counter()
miner = TemplateMiner().add_all(records)
elapsed = time.perf_counter() - started
print(miner.lines, len(miner.templates), elapsed)
"""

MESSAGES = [
    "GET /api/v1/orders/{n} 200 {ms}ms",
    "POST /api/v1/cart/{n}/items 201 {ms}ms",
    "cache miss for key prod:user:{n}",
    "upstream call to payments took {ms}ms (trace {hex})",
    "connection pool usage {pct}% ({n} of 200 in use)",
    "NullPointerException in OrderService.total order={n}",
    "retrying request {hex} attempt {a}/3 after {ms}ms",
    "user {n} logged in from {ip}",
]


def write_lines(path: Path, count: int) -> None:
    rng = random.Random(7)
    services = ["checkout", "search", "auth", "payments", "orders", "llm-gateway"]
    start = 1_770_000_000
    with open(path, "w") as handle:
        for i in range(count):
            template = MESSAGES[rng.randrange(len(MESSAGES))]
            message = template.format(n=rng.randrange(10**6), ms=rng.randrange(1, 900), hex=f"{rng.getrandbits(48):012x}",
                                      pct=rng.randrange(100), a=rng.randrange(1, 4),
                                      ip=f"10.{rng.randrange(255)}.{rng.randrange(255)}.{rng.randrange(255)}")
            handle.write(json.dumps({"ts": start + i * 0.01, "service": services[i % len(services)],
                                     "level": "error" if "Exception" in message else "info", "message": message}) + "\n")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "app.jsonl"
        write_lines(path, count)
        size_mb = path.stat().st_size / 1e6
        runs = {}
        for redact in (False, True):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path), redact=redact)],
                                 capture_output=True, text=True, check=True)
            runs[redact] = (out.stdout.split(), time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for redact, ((lines, templates, elapsed), wall) in runs.items():
        label = "log mining, redacted first (the investigation's path)" if redact else "log mining"
        print(f"{label}: {int(lines):,} lines ({size_mb:.0f} MB) -> {templates} templates in {float(elapsed):.1f} s"
              f" = {int(lines) / float(elapsed):,.0f} lines/s (wall {wall:.1f} s)")
    print(f"log mining: peak RSS {peak_mb:.0f} MB (goal <= 400 MB): {'ok' if peak_mb <= 400 else 'OVER'}")

if __name__ == "__main__":
    main()
