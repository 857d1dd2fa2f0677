"""The distribution as a user installs it: a wheel built from this tree, installed into a fresh
virtual environment (its dependencies taken from this interpreter's), runs `sleuth demo` from a
folder outside the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sleuth_demo_runs_from_an_installed_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("incident_sleuth-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import bot; print(bot.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, timeout=60)
    assert str(venv) in where.stdout, where.stdout + where.stderr  # the wheel's copy, not the source tree
    demo = subprocess.run([str(venv / "bin" / "sleuth"), "demo", "--json"], cwd=elsewhere, capture_output=True,
                          text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    result = json.loads(demo.stdout)
    assert result["hypotheses"][0]["component"] == "checkout"
    assert result["sources"]["incidents"]["status"] == "ok"  # the demo's past incidents shipped too
    assert result["sources"]["runbooks"]["status"] == "ok"  # and the bundled runbooks
