"""Sleuth against a live stack: real services, real exporters, a real Prometheus, faults injected live.

One young stack (minutes of history, a 5 s scrape), four services: checkout and cart query
PostgreSQL, search and recommend do CPU work. Under steady load, three faults follow each other,
each diagnosed through the CLI (`sleuth diagnose --config ... --json`) exactly as a user would:

1. a bad release of checkout fails 30% of its requests, two minutes after a harmless release of
   recommend (the decoy); both recorded through `sleuth webhook`;  -> code_change @ checkout
2. after checkout is rolled back, a PostgreSQL table lock blocks cart's and checkout's queries;
   -> dependency @ postgres
3. stress-ng saturates the host's CPUs while search serves;  -> capacity @ search (its host)

Each must be right at top-1, with the onset within a minute of when the fault began, the decoy
never a live suspect, no counter or histogram bucket read as a level, and (the stack being
minutes old) the result saying what the short history limited. Incidents on one stack minutes
apart would share a baseline, which no real incident does: the later questions pass
`--window 2m`, as a responder asking about "the last two minutes" would.

Figures per fault (top-1, onset error, decoy rank, queries, time) are written as JSON lines to
$SLEUTH_LIVESTACK_REPORT when it is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.livestack import LiveStack, LiveStackUnavailable, ServiceSpec, skip_or_fail

pytestmark = [pytest.mark.prometheus, pytest.mark.livestack]

# search does enough CPU work per request (30 ms) that a busy CPU shows in its latency; with a
# few ms, Linux's scheduler lets short bursts in first and contention barely shows.
SERVICES = ["checkout", "cart", ServiceSpec("search", work_ms=30), "recommend"]


def _ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def diagnose(config: Path, symptom: str, *extra: str, env: dict[str, str] | None = None) -> tuple[dict, float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "bot.cli", "diagnose", symptom, "--config", str(config), "--json",
                          *extra], capture_output=True, text=True, timeout=120, cwd=config.parent,
                         env={**os.environ, **(env or {})})
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout), elapsed


def metric_types(url: str) -> dict[str, str]:
    """What the scraped targets declare, by Prometheus's metadata API (the test's own reading)."""
    with urllib.request.urlopen(f"{url}/api/v1/metadata", timeout=10) as answer:
        data = json.load(answer)["data"]
    return {name: entries[0]["type"] for name, entries in data.items() if entries}


def check(result: dict, *, fault: str, expected: tuple[str, str], began: float, elapsed: float,
          types: dict[str, str], decoy: str | None = None) -> dict:
    hypotheses = result["hypotheses"]
    live = [h for h in hypotheses if h["status"] != "refuted"]
    top = live[0] if live else {}
    onset = _ts(result["incident"]["onset"])
    decoy_rank = next((h["rank"] for h in hypotheses if decoy and h["component"] == decoy), None)
    figures = {
        "fault": fault, "top1": f"{top.get('category')} @ {top.get('component')}",
        "expected": f"{expected[0]} @ {expected[1]}", "confidence": top.get("confidence"),
        "onset_error_s": None if onset is None else round(onset - began, 1),
        "decoy_rank": decoy_rank,
        "decoy_status": next((h["status"] for h in hypotheses if decoy and h["component"] == decoy), None),
        "queries": result["sources"]["metrics"]["queries"], "time_s": round(elapsed, 2),
        "limits": result.get("limits", []),
    }
    report = os.environ.get("SLEUTH_LIVESTACK_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(figures) + "\n")
        Path(f"{report}.{fault.replace(' ', '-')}.json").write_text(json.dumps(result, indent=1))
    statements = "\n".join(f"{h['rank']}. [{h['status']}] {h['statement']}" for h in hypotheses)
    assert (top.get("category"), top.get("component")) == expected, f"{fault}: {figures}\n{statements}"
    assert onset is not None and abs(onset - began) <= 60, f"{fault}: onset {figures['onset_error_s']} s off"
    for e in result["evidence"]:
        if e["source"] != "metrics":
            continue
        # A plain selector is read as a level: it must name a gauge by what the targets declared.
        plain = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^{}]*\}", e["query"])
        if plain:
            name = plain.group(1)
            family = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
            kind = types.get(name) or types.get(family)
            assert kind not in ("counter", "histogram", "summary") and not name.endswith(("_total", "_bucket")), \
                f"{fault}: a {kind or 'counter'} read as a level: {e['query']}"
    assert not any(h["component"].startswith("node") for h in live), f"{fault}: a host as a service\n{statements}"
    if decoy:
        assert all(h["status"] == "refuted" for h in hypotheses if h["component"] == decoy), statements
    return figures


def test_live_faults_are_diagnosed(tmp_path):
    try:
        stack = LiveStack(tmp_path / "stack", SERVICES, postgres=["checkout", "cart"], require_postgres=True,
                          rate_per_s=12.0, max_duration_s=1200.0).start()
    except LiveStackUnavailable as exc:
        skip_or_fail(exc)
    with stack:
        # The default window (1 h) and baseline (3 h) and the default coarsest step (60 s): the stack
        # is minutes old, so Sleuth must shorten them itself and say so.
        config = stack.write_config(tmp_path / "sleuth.yml", metrics={"step_s": 60})
        types = metric_types(stack.url)
        time.sleep(max(0.0, 150 - (time.time() - stack.started_at)))

        # 1. The decoy, then the bad release.
        decoy_at = stack.release("recommend", "v7")
        stack.record_change("recommend", "deploy", "v7", "v6", "recommend v7: ranking tweaks", ts=decoy_at)
        time.sleep(20)
        began = stack.bad_release("checkout", "v2", error_share=0.3)
        stack.record_change("checkout", "deploy", "v2", "v1", "checkout v2: new cart merge", ts=began)
        time.sleep(75)
        result, elapsed = diagnose(config, "checkout is returning 500s")
        check(result, fault="bad release", expected=("code_change", "checkout"), began=began, elapsed=elapsed, types=types,
              decoy="recommend")
        assert any(re.match(r"\d+ min of metric history: baseline shortened", text) for text in result["limits"]), \
            result["limits"]

        # sleuth.example.yml, as written, against this Prometheus: its custom error ratio for
        # checkout (0, not absent, before the first 5xx) runs and shows the departure.
        example = tmp_path / "example" / "sleuth.yml"
        example.parent.mkdir()
        shutil.copy(Path(__file__).resolve().parent.parent / "sleuth.example.yml", example)
        result, _ = diagnose(example, "checkout is returning 500s", env={"PROMETHEUS_URL": stack.url})
        assert result["sources"]["metrics"]["status"] == "ok", result["sources"]["metrics"]
        assert result["incident"]["service"] == "checkout"
        assert any(e["source"] == "metrics" and e["component"] == "checkout" and "[1m]" in e["query"]
                   and "or 0 *" in e["query"] for e in result["evidence"]), [e["query"] for e in result["evidence"]]

        # The rollback: a mitigation from now on, never a suspect.
        back = stack.release("checkout", "v1")
        stack.record_change("checkout", "deploy", "v1", "v2", "checkout back to v1", ts=back)
        time.sleep(60)

        # 2. A table lock in the database two services depend on.
        began = stack.lock_table(90)
        time.sleep(70)
        result, elapsed = diagnose(config, "cart requests are failing and slow", "--window", "2m")
        check(result, fault="postgres lock", expected=("dependency", "postgres"), began=began, elapsed=elapsed, types=types)
        time.sleep(max(0.0, began + 90 + 60 - time.time()))

        # 3. CPU contention on the host.
        began = stack.cpu_contention(100)
        time.sleep(70)
        result, elapsed = diagnose(config, "search is slow", "--window", "2m")
        check(result, fault="cpu contention", expected=("capacity", "search"), began=began, elapsed=elapsed, types=types)
        top = next(h for h in result["hypotheses"] if h["status"] != "refuted")
        assert top.get("scope", {}).get("host"), top
