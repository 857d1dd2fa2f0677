"""Run every benchmark and print its figures. Usage: python3 benchmarks/run_all.py [--quick]

--quick runs fewer repetitions and 200k log lines instead of 1M.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    quick = "--quick" in sys.argv
    plan = [
        ("bench_concurrency.py", ["2" if quick else "5"]),
        ("bench_cli.py", ["2" if quick else "5"]),
        ("bench_logs.py", ["200000" if quick else "1000000"]),
        ("bench_agent.py", []),
        ("bench_slack.py", ["20"]),
        ("bench_prometheus.py", ["1" if quick else "3"]),
    ]
    status = 0
    for script, args in plan:
        print(f"== {script} {' '.join(args)}", flush=True)
        status |= subprocess.run([sys.executable, str(HERE / script), *args]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
