"""The `sleuth` command as users run it: a subprocess, its exit code, stdout and stderr."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factory import AT, bad_deploy, iso

CONTRACT = {"incident", "window", "evidence", "hypotheses", "mitigations", "similar_incidents", "sources", "timings", "model"}


def sleuth(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return bad_deploy(tmp_path_factory.mktemp("cli") / "bad-deploy")


def test_diagnose_json_has_the_contract_keys(scenario):
    run = sleuth("diagnose", "checkout is returning 500s", "--scenario", str(scenario), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert CONTRACT <= set(result)
    assert set(result["incident"]) >= {"title", "service", "onset"}
    assert set(result["window"]) >= {"start", "end"}
    for e in result["evidence"]:
        assert {"id", "source", "query", "summary", "onset", "score", "link"} <= set(e)
    for h in result["hypotheses"]:
        assert {"rank", "category", "component", "statement", "status", "confidence", "evidence"} <= set(h)
        assert set(h["evidence"]) <= {e["id"] for e in result["evidence"]}
    for m in result["mitigations"]:
        assert {"action", "target", "rationale", "risk", "verify", "requires_approval", "evidence"} <= set(m)
    assert set(result["sources"]) >= {"metrics", "logs", "changes", "incidents"}
    assert result["sources"]["incidents"]["status"] == "not_configured"
    assert {"name", "status", "prompt_tokens", "completion_tokens", "cost_usd"} <= set(result["model"])
    assert result["model"]["status"] == "not_configured"
    assert result["hypotheses"][0]["category"] == "code_change"


def test_readable_report_and_charts(scenario, tmp_path):
    charts = tmp_path / "charts"
    run = sleuth("diagnose", "checkout is returning 500s", "--scenario", str(scenario), "--charts", str(charts))
    assert run.returncode == 0, run.stderr
    assert "code_change in checkout" in run.stdout
    assert "rollback" in run.stdout and "verify:" in run.stdout
    pngs = sorted(charts.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "checkout" in pngs[0].name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagnose", "", "--scenario", "{s}"], "symptom is empty"),
        (["diagnose", "500s", "--scenario", "{s}", "--at", "yesterday-ish"], "not an ISO-8601 time"),
        (["diagnose", "500s", "--scenario", "{s}", "--at", "2099-01-01T00:00:00Z"], "is in the future"),
        (["diagnose", "500s", "--scenario", "{s}", "--window", "a while"], "not a duration"),
        (["diagnose", "500s", "--scenario", "{s}", "--service", "nope"], "unknown service 'nope'"),
        (["diagnose", "500s", "--scenario", "/nonexistent/folder"], "not a scenario folder"),
        (["diagnose", "500s", "--config", "/nonexistent/sleuth.yml"], "cannot read config"),
        (["eval", "/nonexistent/folder"], "neither a scenario folder"),
        (["diagnose", "checkout is down"], "no evidence source is configured"),
    ],
)
def test_user_errors_end_in_one_sentence(scenario, args, message):
    run = sleuth(*[a.replace("{s}", str(scenario)) for a in args])
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_config_typo_names_the_key_and_the_fix(tmp_path):
    config = tmp_path / "sleuth.yml"
    config.write_text("metrcs:\n  openmetrics: [m.om]\n")
    run = sleuth("diagnose", "500s", "--config", str(config))
    assert run.returncode == 2
    assert "unknown key 'metrcs'; did you mean 'metrics'?" in run.stderr
    config.write_text("metrics:\n  prometheus:\n    url: http://127.0.0.1:9\n    timeout_s: -1\n")
    run = sleuth("diagnose", "500s", "--config", str(config))
    assert run.returncode == 2 and "metrics.prometheus.timeout_s" in run.stderr


def test_config_interpolates_environment_variables(tmp_path, scenario):
    config = tmp_path / "sleuth.yml"
    config.write_text(
        "metrics:\n  openmetrics: ['${SCENARIO_DIR}/metrics.om']\n"
        "changes:\n  files: ['${SCENARIO_DIR}/changes.jsonl']\n"
        "logs:\n  files: ['${SCENARIO_DIR}/logs.jsonl']\n"
        "investigation:\n  window: ${WINDOW:-1h}\n"
    )
    run = sleuth("diagnose", "checkout is returning 500s", "--config", str(config), "--at", iso(AT), "--json")
    assert run.returncode == 2 and "SCENARIO_DIR is not set" in run.stderr
    run = sleuth("diagnose", "checkout is returning 500s", "--config", str(config), "--at", iso(AT), "--json",
                 env={"SCENARIO_DIR": str(scenario)})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["hypotheses"][0]["component"] == "checkout"
    assert all(result["sources"][n]["status"] == "ok" for n in ("metrics", "logs", "changes"))


def test_unreadable_log_file_is_reported_and_the_rest_still_diagnoses(tmp_path, scenario):
    config = tmp_path / "sleuth.yml"
    config.write_text(
        f"metrics:\n  openmetrics: ['{scenario}/metrics.om']\n"
        f"changes:\n  files: ['{scenario}/changes.jsonl']\n"
        f"logs:\n  files: ['{tmp_path}/missing.log']\n"
    )
    run = sleuth("diagnose", "checkout is returning 500s", "--config", str(config), "--at", iso(AT), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["sources"]["logs"]["status"] == "error"
    assert "missing.log" in result["sources"]["logs"]["reason"]
    assert result["hypotheses"][0]["category"] == "code_change"


def test_eval_scores_a_folder_of_scenarios(tmp_path, scenario):
    run = sleuth("eval", str(scenario.parent), "--json")
    assert run.returncode == 0, run.stderr
    scores = json.loads(run.stdout)
    assert scores["summary"]["scenarios"] == 1
    row = scores["scenarios"][0]
    assert row["category_top1"] and row["component_top1"] and row["mitigation_top1"]
    assert not row["decoy_chosen"] and row["failed_sources"] == []
    assert row["onset_error_min"] is not None and row["onset_error_min"] <= 2


def test_help_lists_every_command():
    run = sleuth("--help")
    assert run.returncode == 0
    for command in ("diagnose", "demo", "eval", "webhook"):
        assert command in run.stdout


def test_demo_runs_end_to_end_with_no_server_and_no_key(tmp_path):
    run = sleuth("demo", "--json", "--charts", str(tmp_path), env={"OPENAI_API_KEY": "", "SLEUTH_LLM_BASE_URL": ""})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert CONTRACT <= set(result)
    assert all(result["sources"][name]["status"] == "ok" for name in ("metrics", "logs", "changes", "incidents"))
    assert result["similar_incidents"], "the bundled history beside the scenarios is the demo's memory"
    top = result["hypotheses"][0]
    assert top["status"] == "supported" and top["evidence"]
    assert result["mitigations"][0]["requires_approval"] is True
    assert result["charts"] and all(Path(p).exists() for p in result["charts"])
    readable = sleuth("demo")
    assert readable.returncode == 0 and "Demo:" in readable.stdout and "Hypotheses" in readable.stdout
