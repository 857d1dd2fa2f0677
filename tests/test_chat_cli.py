"""`sleuth chat` as a user runs it: lines on stdin, a thread that survives the process."""

import re
import subprocess
import sys
from pathlib import Path

from tests.factory import bad_deploy

ROOT = Path(__file__).resolve().parent.parent


def chat(*args: str, lines: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "chat", *args], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_conversation_in_the_terminal_resumes_after_a_restart(tmp_path):
    scenario = bad_deploy(tmp_path / "bad-deploy")
    state = tmp_path / "state.db"
    first = chat("--scenario", str(scenario), "--state", str(state), "--user", "alice",
                 lines=["checkout is returning 500s", "l", "what changed in the last 2 hours?", "/quit"])
    assert first.returncode == 0, first.stderr
    assert "Most likely: code_change on checkout" in first.stdout
    assert "left fix1 pending" in first.stdout
    assert "chg-1" in first.stdout and "chg-2" in first.stdout
    thread = re.search(r"sleuth chat --thread (\S+)", first.stdout).group(1)

    second = chat("--scenario", str(scenario), "--state", str(state), "--thread", thread, "--user", "bob",
                  lines=["/approve fix1", "/approve fix1"])
    assert second.returncode == 0, second.stderr
    assert "(resumed)" in second.stdout and "pending: fix1 rollback checkout" in second.stdout
    assert "bob approved fix1: rollback checkout" in second.stdout
    assert "fix1 was already approved by bob" in second.stdout


def test_a_bad_config_is_one_sentence(tmp_path):
    bad = tmp_path / "sleuth.yml"
    bad.write_text("model:\n  modle: x\n")
    run = chat("--config", str(bad), lines=["hello"])
    assert run.returncode == 2
    assert "modle" in run.stderr and "model" in run.stderr and "Traceback" not in run.stderr
