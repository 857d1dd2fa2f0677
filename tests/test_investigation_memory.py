"""The past-incident memory as a fourth source of a diagnosis (through sleuth.yml's memory:)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.factory import AT, bad_deploy, iso

ROOT = Path(__file__).resolve().parent.parent


def sleuth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


POSTMORTEM = """---
title: Checkout 500s after a payment retry release
services: [checkout]
date: 2026-01-12
severity: sev2
root_cause: code_change
mitigations: [rollback]
tags: [payments, retry]
---
## Summary
Checkout returned 500s for a third of orders after release v2.9.0 changed the payment retry policy.

## Root cause
A NullPointerException in PaymentRetryPolicy when the provider returned no retry header.

## Mitigation
Rolled checkout back to v2.8.4; errors fell to baseline within 10 minutes.
"""

UNRELATED = """---
title: Search index rebuild filled the disk
services: [search]
date: 2025-11-02
severity: sev3
root_cause: capacity
mitigations: [scale_out]
---
## Summary
Search nodes ran out of disk during a full reindex.
"""


def test_diagnosis_cites_similar_past_incidents_and_where_the_fix_worked(tmp_path):
    scenario = bad_deploy(tmp_path / "bad-deploy")
    history = tmp_path / "history"
    history.mkdir()
    (history / "inc-2026-01-12.md").write_text(POSTMORTEM)
    (history / "inc-2025-11-02.md").write_text(UNRELATED)
    memory = tmp_path / "memory"
    added = sleuth("index", "add", str(history), "--memory", str(memory), "--json")
    assert added.returncode == 0, added.stderr
    books = sleuth("index", "add", str(ROOT / "runbooks"), "--runbooks", "--memory", str(memory), "--json")
    assert books.returncode == 0, books.stderr

    config = tmp_path / "sleuth.yml"
    config.write_text(
        f"metrics: {{openmetrics: ['{scenario}/metrics.om']}}\n"
        f"logs: {{files: ['{scenario}/logs.jsonl']}}\n"
        f"changes: {{files: ['{scenario}/changes.jsonl']}}\n"
        f"memory: {{path: '{memory}'}}\n"
    )
    run = sleuth("diagnose", "checkout is returning 500s", "--service", "checkout", "--config", str(config),
                 "--at", iso(AT), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["sources"]["incidents"]["status"] == "ok"
    similar = result["similar_incidents"]
    assert similar[0]["id"] == "inc-2026-01-12" and similar[0]["root_cause"].startswith("code_change")
    incident_evidence = [e for e in result["evidence"] if e["source"] == "incidents"]
    assert incident_evidence and "inc-2026-01-12" in incident_evidence[0]["summary"]
    top = result["hypotheses"][0]
    assert top["category"] == "code_change" and incident_evidence[0]["id"] in top["evidence"]
    rollback = result["mitigations"][0]
    assert rollback["action"] == "rollback" and "worked in inc-2026-01-12" in rollback["provenance"]
    # The runbook for the top cause backs the proposed mitigations.
    runbook = [e for e in result["evidence"] if e["source"] == "runbooks"]
    assert result["sources"]["runbooks"]["status"] == "ok" and len(runbook) == 1
    assert "code_change" in runbook[0]["details"]["categories"] and runbook[0]["id"] in rollback["evidence"]


def test_an_empty_or_unreachable_memory_is_reported_and_the_diagnosis_goes_on(tmp_path):
    scenario = bad_deploy(tmp_path / "bad-deploy")
    config = tmp_path / "sleuth.yml"
    base = (f"metrics: {{openmetrics: ['{scenario}/metrics.om']}}\n"
            f"changes: {{files: ['{scenario}/changes.jsonl']}}\n")
    config.write_text(base + f"memory: {{path: '{tmp_path / 'empty'}'}}\n")
    run = sleuth("diagnose", "checkout is returning 500s", "--config", str(config), "--at", iso(AT), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["sources"]["incidents"]["status"] == "no_data" and "sleuth index add" in result["sources"]["incidents"]["reason"]
    assert result["hypotheses"][0]["category"] == "code_change"

    config.write_text(base + "memory: {server: {host: 127.0.0.1, port: 9}}\n")
    run = sleuth("diagnose", "checkout is returning 500s", "--config", str(config), "--at", iso(AT), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["sources"]["incidents"]["status"] == "error"
    assert "does not answer" in result["sources"]["incidents"]["reason"]
    assert result["hypotheses"][0]["category"] == "code_change"


def test_index_commands_use_the_memory_that_diagnose_reads_from_sleuth_yml(tmp_path):
    history = tmp_path / "history"
    history.mkdir()
    (history / "inc-2026-01-12.md").write_text(POSTMORTEM)
    config = tmp_path / "conf" / "sleuth.yml"
    config.parent.mkdir()
    config.write_text("memory: {path: mem}\n")  # relative to the config file, as diagnose reads it
    added = sleuth("index", "add", str(history), "--config", str(config), "--json")
    assert added.returncode == 0, added.stderr
    assert (tmp_path / "conf" / "mem").is_dir()
    found = sleuth("index", "search", "checkout 500s after a release", "--config", str(config), "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["results"][0]["id"] == "inc-2026-01-12"
    config.write_text("metrics: {}\n")
    refused = sleuth("index", "add", str(history), "--config", str(config))
    assert refused.returncode == 2 and "has no memory: section" in refused.stderr
