"""Huge input, measured as a user meets it: `sleuth diagnose` in a child process on
- a 1,000,000-line log file with a 5 s source timeout (the logs source must give up within 2 s of it),
- one 100 MB JSON log line,
- a Prometheus that answers 50 MB to every query (a stand-in on 127.0.0.1),
printing wall time, peak RSS of the child and what each source reported.
Goals: peak RSS <= 400 MB each; the source timeout respected within 2 s.

Usage: python3 benchmarks/bench_bad_input.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMEOUT_S = 5.0
RSS_GOAL_MB = 400


def measured(label: str, args: list[str]) -> None:
    """Each case in a fresh interpreter so RUSAGE_CHILDREN is that case's alone."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        f"args = {args!r}\n"
        "started = time.perf_counter()\n"
        "done = subprocess.run([sys.executable, '-m', 'bot.cli', *args, '--json'], capture_output=True)\n"
        "wall = time.perf_counter() - started\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "try:\n"
        "    sources = json.loads(done.stdout).get('sources', {})\n"
        "except json.JSONDecodeError:\n"
        "    sources = {'cli': {'status': 'crashed', 'reason': done.stderr.decode(errors='replace')[-300:]}}\n"
        "print(json.dumps({'wall': wall, 'rss': rss, 'sources': sources}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    result = json.loads(done.stdout)
    wall, rss, sources = result["wall"], result["rss"], result["sources"]
    verdict = "ok" if rss <= RSS_GOAL_MB else "OVER"
    print(f"{label}: {wall:.1f} s wall, peak RSS {rss:.0f} MB ({verdict}, goal <= {RSS_GOAL_MB} MB)")
    for name, report in sources.items():
        if report.get("status") not in ("ok", "not_configured"):
            elapsed = report.get("elapsed_ms")
            took = f" after {elapsed / 1000:.1f} s" if elapsed is not None else ""
            print(f"    {name}: {report.get('status')}{took}: {str(report.get('reason'))[:160]}")
            if "longer than" in str(report.get("reason")) and elapsed is not None:
                late = elapsed / 1000 - TIMEOUT_S
                print(f"    timeout respected within {late:.1f} s (goal <= 2 s)")


def _scenario(base: Path) -> Path:
    from tests.factory import bad_deploy

    return bad_deploy(base / "scenario")


def _config(folder: Path, extra: str = "") -> Path:
    path = folder / "sleuth.yml"
    path.write_text(f"investigation:\n  source_timeout: {TIMEOUT_S:g}s\n{extra}")
    return path


def million_lines(base: Path) -> None:
    folder = base / "million"
    shutil.copytree(_scenario(base), folder)
    with open(folder / "logs.jsonl", "a", encoding="utf-8") as handle:
        at = _at(folder)
        for i in range(1_000_000):
            handle.write(json.dumps({"ts": at - 3000 + (i % 3000), "service": "checkout", "level": "info",
                                     "message": f"request {i} served in {i % 97} ms from pod-{i % 13}"}) + "\n")
    measured("1,000,000 log lines, 5 s source timeout",
             ["diagnose", "checkout is failing", "--scenario", str(folder), "--config", str(_config(base))])


def huge_line(base: Path) -> None:
    folder = base / "huge-line"
    shutil.copytree(_scenario(base), folder)
    with open(folder / "logs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"ts": _at(folder) - 300, "service": "checkout", "level": "error",
                                 "message": "x" * 100_000_000}) + "\n")
    measured("one 100 MB log line",
             ["diagnose", "checkout is failing", "--scenario", str(folder), "--config", str(_config(base))])


def _at(folder: Path) -> float:
    import yaml

    from tools.timeparse import parse_time

    return parse_time(str(yaml.safe_load((folder / "scenario.yml").read_text())["at"]))


class _Huge(BaseHTTPRequestHandler):
    body = b'{"status": "success", "data": {"resultType": "matrix", "result": [' + b" " * 50_000_000 + b"]}}"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        return


def huge_answers(base: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        config = _config(base, f"metrics:\n  prometheus:\n    url: {url}\n")
        measured("Prometheus answering 50 MB to every query",
                 ["diagnose", "checkout is failing", "--service", "checkout", "--config", str(config)])
    finally:
        server.shutdown()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        million_lines(base)
        huge_line(base)
        huge_answers(base)


if __name__ == "__main__":
    main()
