"""Run every benchmark and print its figures. Usage: python3 benchmarks/run_all.py [--quick]

--quick runs fewer repetitions and 200k log lines instead of 1M, and bench_scenarios.py on the
bundled scenarios only (the full pass adds the Nezha dev set where it is extracted, see README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEZHA = Path("/tmp/nezha-dev")  # tar xJf nezha-dev.tar.xz -C /tmp/nezha-dev gives ob/ and tt/


def main() -> int:
    quick = "--quick" in sys.argv
    plan = [
        ("bench_concurrency.py", ["2" if quick else "5"]),
        ("bench_cli.py", ["2" if quick else "5"]),
        ("bench_logs.py", ["200000" if quick else "1000000"]),
        ("bench_agent.py", []),
        ("bench_slack.py", ["20"]),
        ("bench_prometheus.py", ["1" if quick else "3"]),
        ("bench_bad_input.py", []),
        ("bench_alerts.py", ["20" if quick else "50"]),
        ("bench_scenarios.py", [str(HERE.parent / "scenarios")]
         + ([] if quick else [str(p) for p in (NEZHA / "ob", NEZHA / "tt") if p.is_dir()])),
    ]
    status = 0
    for script, args in plan:
        print(f"== {script} {' '.join(args)}", flush=True)
        status |= subprocess.run([sys.executable, str(HERE / script), *args]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
