"""Wall time of whole commands as a user runs them: `sleuth --help` (goal <= 0.5 s) and
`sleuth diagnose` on each bundled scenario with embedded defaults (goal <= 3 s).

Usage: python3 benchmarks/bench_cli.py [RUNS]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def command() -> list[str]:
    script = shutil.which("sleuth")
    return [script] if script else [sys.executable, "-m", "bot.cli"]


def wall(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command() + args, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    from bot.scenario import SCENARIOS_DIR, find_scenarios, load_scenario

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    helps = wall(["--help"], runs)
    print(f"sleuth --help: median {statistics.median(helps):.2f} s, max {max(helps):.2f} s (goal <= 0.5 s)")
    worst = 0.0
    for folder in find_scenarios([SCENARIOS_DIR]):
        scenario = load_scenario(folder)
        times = wall(["diagnose", scenario.request.symptom, "--scenario", str(folder), "--json"], runs)
        worst = max(worst, statistics.median(times))
        print(f"sleuth diagnose {folder.name}: median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    print(f"sleuth diagnose, slowest scenario median: {worst:.2f} s (goal <= 3 s): {'ok' if worst <= 3 else 'OVER'}")


if __name__ == "__main__":
    main()
