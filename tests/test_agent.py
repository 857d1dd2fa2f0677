"""The agent's graph through its public API, with the real openai client against a scripted
OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from bot.agent import Agent, open_checkpointer
from bot.config import StorageConfig
from bot.investigate import run_investigation
from bot.scenario import load_scenario
from tests.factory import STEP, ScenarioBuilder, bad_deploy, daily, step_up, timeline
from tests.openai_standin import OpenAIStandIn


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return load_scenario(bad_deploy(tmp_path_factory.mktemp("agent") / "bad-deploy"))


@pytest.fixture
def model():
    with OpenAIStandIn() as server:
        yield server


def with_model(scenario, server, **agent_budget):
    config = scenario.config.model_copy(deep=True)
    config.model.base_url = server.base_url
    config.model.model = "scripted-1"
    config.model.max_retries = 1
    config.model.timeout = "3s"
    config.model.prompt_price_per_1k = 0.001
    config.model.completion_price_per_1k = 0.002
    for key, value in agent_budget.items():
        setattr(config.agent, key, value)
    return config


def start(agent, scenario, thread="t1", text=None, **kw):
    request = scenario.request
    return agent.start(thread, text or request.symptom, service=request.service, window=request.window,
                       at=request.at, **kw)


def final(hypotheses=(), summary="Checkout's release broke payments.", **extra):
    return {"content": json.dumps({"summary": summary, "hypotheses": list(hypotheses), "open_questions": [],
                                   "next_steps": ["roll back checkout"], **extra})}


# --- the deterministic graph ------------------------------------------------------------------------
def test_without_a_model_the_graph_returns_the_deterministic_result(scenario):
    turn = start(Agent(scenario.config), scenario)
    direct = asyncio.run(run_investigation(scenario.request, scenario.config)).diagnosis.to_dict()
    assert turn.kind == "diagnosis"
    assert [(h["category"], h["component"], h["confidence"]) for h in turn.diagnosis["hypotheses"]] == \
        [(h["category"], h["component"], h["confidence"]) for h in direct["hypotheses"]]
    assert turn.diagnosis["model"]["status"] == "not_configured"
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"
    # Mitigations that change production wait for a human.
    assert turn.pending and all(p["requires_approval"] for p in turn.pending)
    assert turn.pending[0]["action"] == "rollback" and turn.pending[0]["id"] == "fix1"
    assert "checkout" in turn.text and "fix1 rollback" in turn.text


def test_progress_reports_each_source(scenario):
    heard = []
    start(Agent(scenario.config), scenario, on_progress=lambda name, report: heard.append((name, report.status)))
    assert {name for name, _ in heard} == {"metrics", "logs", "changes", "incidents"}


def test_a_bad_request_is_one_sentence_and_the_thread_goes_on(scenario):
    agent = Agent(scenario.config)
    turn = agent.start("t-bad", "checkout 500s", service="no such service!", at=scenario.request.at)
    assert turn.kind == "error" and "not a valid service name" in turn.text
    turn = start(agent, scenario, thread="t-bad")
    assert turn.kind == "diagnosis"


# --- with a model ---------------------------------------------------------------------------------------
def test_a_tool_calling_investigation_is_grounded_in_the_ledger(scenario, model):
    model.queue(
        {"tool_calls": [("query_metrics", json.dumps({"promql": 'http_error_ratio{service="checkout"}'})),
                        ("search_logs", json.dumps({"service": "checkout", "level": "error"}))]},
        final([
            {"category": "code_change", "component": "checkout", "statement": "v2.15.0 broke payments",
             "status": "supported", "confidence": 0.9, "evidence": ["q1", "q2", "e404"]},
            {"category": "dependency", "component": "payments", "statement": "payments is slow",
             "status": "proposed", "confidence": 0.8, "evidence": []},
        ]),
    )
    turn = start(Agent(with_model(scenario, model)), scenario)
    d = turn.diagnosis
    ids = {e["id"] for e in d["evidence"]}
    assert {"q1", "q2"} <= ids
    q1 = next(e for e in d["evidence"] if e["id"] == "q1")
    assert q1["query"] == 'http_error_ratio{service="checkout"}' and "ratio" in q1["summary"]
    top = d["hypotheses"][0]
    assert (top["category"], top["component"], top["status"]) == ("code_change", "checkout", "supported")
    assert {"q1", "q2"} <= set(top["evidence"]) and "e404" not in top["evidence"]
    assert d["narrative"]["dropped_evidence_ids"] == ["e404"]
    guess = next(h for h in d["hypotheses"] if h["component"] == "payments" and h["category"] == "dependency")
    assert guess["guess"] is True and guess["confidence"] <= 0.2
    for h in d["hypotheses"]:
        assert set(h["evidence"]) <= ids
    m = d["model"]
    assert m["status"] == "ok" and m["name"] == "scripted-1"
    assert m["prompt_tokens"] > 0 and m["completion_tokens"] > 0 and m["cost_usd"] > 0
    assert m["tool_calls"] == 2 and m["compaction_ratio"] > 3
    assert m["prompt_tokens_if_raw"] > m["prompt_tokens"]
    # The tool answers reached the model fenced as untrusted data, with their evidence ids.
    tools = model.tool_messages()
    assert len(tools) == 2 and "cite it as evidence q1" in tools[0]["content"]
    assert "<<<UNTRUSTED" in tools[0]["content"]
    assert "Model's reading: Checkout's release broke payments." in turn.text


def test_no_tool_calling_model_still_answers(scenario, model):
    model.queue(final([{"category": "code_change", "component": "checkout", "statement": "release",
                        "status": "supported", "confidence": 0.9, "evidence": ["e1"]}]))
    config = with_model(scenario, model)
    config.model.tool_calling = False
    turn = start(Agent(config), scenario)
    assert "tools" not in model.chats[0]
    assert turn.diagnosis["model"]["status"] == "ok"
    assert turn.diagnosis["hypotheses"][0]["status"] == "supported"


def test_an_obviously_malformed_call_is_repaired(scenario, model):
    model.queue({"tool_calls": [("QueryMetrics", '{"promql": "http_error_ratio{service=\\"checkout\\"}",}')]},
                final())
    turn = start(Agent(with_model(scenario, model)), scenario)
    assert turn.diagnosis["model"]["tool_calls"] == 1
    assert any(e["id"] == "q1" for e in turn.diagnosis["evidence"])


def test_a_malformed_call_is_reported_once_then_the_model_can_fix_it(scenario, model):
    model.queue({"tool_calls": [("search_logs", '{"service": "checkout", "level": "loud"}')]},
                {"tool_calls": [("search_logs", '{"service": "checkout", "level": "error"}')]},
                final())
    turn = start(Agent(with_model(scenario, model)), scenario)
    first_error = model.tool_messages(1)[0]["content"]
    assert first_error.startswith("error: search_logs: level must be one of")
    assert turn.diagnosis["model"]["status"] == "ok"


def test_repeated_malformed_calls_fall_back_to_the_deterministic_result(scenario, model):
    model.queue({"tool_calls": [("approve_mitigation", '{"id": "m1"}')]},
                {"tool_calls": [("run_shell", "{not json")]})
    agent = Agent(with_model(scenario, model))
    turn = start(agent, scenario)
    assert turn.kind == "diagnosis"
    assert turn.diagnosis["model"]["status"].startswith("unavailable: the model's tool calls were malformed twice")
    assert "no tool named 'approve_mitigation'" in model.tool_messages(1)[0]["content"]
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"
    assert turn.decisions == [] and turn.pending[0]["id"] == "fix1"


def test_a_prose_final_answer_is_kept_as_the_models_reading(scenario, model):
    model.queue({"content": "I think it is checkout's release."})
    turn = start(Agent(with_model(scenario, model)), scenario)
    m, narrative = turn.diagnosis["model"], turn.diagnosis["narrative"]
    assert m["status"] == "ok" and m["answer_shape"] == "prose" and "prose" in m["note"]
    assert narrative["summary"] == "I think it is checkout's release." and narrative["unverified"] is True
    assert "Model's reading (unverified: it cites no evidence): I think it is checkout's release." in turn.text
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"
    assert len(model.chats) == 1  # prose is an answer: nobody is asked twice


def test_json_with_slips_is_repaired_and_an_empty_answer_gets_one_more_chance(scenario, model):
    model.queue({"content": "Here you go:\n```json\n{summary: 'checkout broke [m1]', hypotheses: [], "
                            "next_steps: ['watch m1',],}\n```"})
    turn = start(Agent(with_model(scenario, model)), scenario, thread="slips")
    assert turn.diagnosis["model"]["answer_shape"] == "repaired json"
    assert turn.diagnosis["narrative"]["summary"] == "checkout broke [m1]"
    assert turn.diagnosis["narrative"]["next_steps"] == ["watch m1"]
    assert "unverified" not in turn.diagnosis["narrative"]
    model.queue({"content": ""}, {"content": "   "})
    turn = start(Agent(with_model(scenario, model)), scenario, thread="empty")
    assert turn.diagnosis["model"]["status"] == \
        "unavailable: the model's answer was empty twice; the deterministic result stands"


def test_5xx_and_429_are_retried_then_the_model_is_reported_unavailable(scenario, model):
    model.fail_next(1, status=503)
    model.queue(final())
    turn = start(Agent(with_model(scenario, model)), scenario, thread="retry")
    assert turn.diagnosis["model"]["status"] == "ok"  # one 503, retried by the client
    model.reset()
    model.always(None)
    model.fail_next(5, status=500)
    turn = start(Agent(with_model(scenario, model)), scenario, thread="down")
    assert turn.diagnosis["model"]["status"].startswith("unavailable:")
    assert "HTTP 500" in turn.diagnosis["model"]["status"]
    assert "the deterministic result stands" in turn.text
    model.reset()
    model.throttle_next(5, retry_after="0")
    turn = start(Agent(with_model(scenario, model)), scenario, thread="throttled")
    assert "429" in turn.diagnosis["model"]["status"]


def test_a_model_timeout_falls_back(scenario, model):
    model.hang_next(3, seconds=10)
    config = with_model(scenario, model)
    config.model.timeout = "1s"
    config.model.max_retries = 1
    began = time.monotonic()
    turn = start(Agent(config), scenario)
    assert time.monotonic() - began < 8
    assert turn.diagnosis["model"]["status"].startswith("unavailable:")
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"


# --- budgets ----------------------------------------------------------------------------------------
def _always_call_tools(body):
    return {"tool_calls": [("list_changes", "{}")]} if body.get("tools") else final()


def test_the_tool_call_budget_ends_with_the_best_answer(scenario, model):
    model.default = _always_call_tools
    turn = start(Agent(with_model(scenario, model, max_tool_calls=2)), scenario)
    m = turn.diagnosis["model"]
    assert m["tool_calls"] == 2
    assert m["status"] == "budget_exhausted: tool calls (2 of 2)"
    assert turn.kind == "diagnosis" and turn.diagnosis["narrative"]["summary"]


def test_the_token_budget_ends_with_the_best_answer(scenario, model):
    model.default = _always_call_tools
    turn = start(Agent(with_model(scenario, model, max_tokens=1000)), scenario)
    m = turn.diagnosis["model"]
    assert m["status"].startswith("budget_exhausted: tokens")
    assert m["prompt_tokens"] + m["completion_tokens"] >= 1000
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"


def test_the_deadline_ends_with_the_best_answer(scenario, model):
    def slow(body):
        time.sleep(0.7)
        return _always_call_tools(body)

    model.default = slow
    began = time.monotonic()
    turn = start(Agent(with_model(scenario, model, deadline="2s", max_tool_calls=50)), scenario)
    assert time.monotonic() - began < 10
    assert turn.diagnosis["model"]["status"] == "budget_exhausted: deadline (2s)"
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"


# --- the conversation --------------------------------------------------------------------------------
def test_a_clarifying_question_and_its_answer(scenario):
    agent = Agent(scenario.config)
    turn = agent.start("q", "checkout and search both look broken", at=scenario.request.at)
    assert turn.kind == "question" and "checkout" in turn.text and "search" in turn.text
    assert agent.snapshot("q")["waiting"] == "question"
    refused = agent.decide("q", "fix1", approved=True, by="U1")
    assert refused.kind == "error" and "answer the open question first" in refused.text
    turn = agent.reply("q", "checkout")
    assert turn.kind == "diagnosis"
    assert turn.diagnosis["incident"]["service"] == "checkout"


def test_a_clear_request_asks_nothing(scenario):
    turn = Agent(scenario.config).start("clear", "checkout is returning 500s", at=scenario.request.at)
    assert turn.kind == "diagnosis"


def test_follow_ups_continue_the_thread(scenario):
    agent = Agent(scenario.config)
    start(agent, scenario)
    changed = agent.reply("t1", "what changed in the last 2 hours?")
    assert changed.kind == "answer"
    assert "chg-1" in changed.text and "chg-2" in changed.text and "chg-3" not in changed.text
    assert changed.evidence and changed.evidence[0] in {e["id"] for e in changed.diagnosis["evidence"]}
    payments = agent.reply("t1", "check payments")
    assert payments.kind == "answer" and payments.text.startswith("payments:")
    snap = agent.snapshot("t1")
    assert [m["role"] for m in snap["messages"]] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    other = agent.reply("t1", "thanks")
    assert "I can check another service" in other.text


def recovering_scenario(folder: Path, now: float, recovered: bool) -> Path:
    """checkout's errors jump 40 minutes before now after a deploy; a rollback 20 minutes ago."""
    at = now - 25 * 60
    b = ScenarioBuilder(at=at, symptom="checkout is returning 500s", service="checkout")
    b.ts = timeline(now)
    ts, onset, action = b.ts, now - 40 * 60, now - 20 * 60
    errors = np.clip(daily(ts, 0.002, noise=0.1, seed=3), 0, 1)
    errors = step_up(ts, errors, onset, 0.1)
    if recovered:
        errors[ts >= action + 3 * STEP] -= 0.1
    b.metric("http_error_ratio", {"service": "checkout"}, errors)
    b.metric("http_error_ratio", {"service": "search"}, np.clip(daily(ts, 0.002, noise=0.1, seed=4), 0, 1))
    b.change("chg-9", onset - 6 * 60, "checkout", "deploy", "checkout v3.1.0", version="v3.1.0",
             previous_version="v3.0.9")
    return b.write(folder)


@pytest.mark.parametrize("recovered", [True, False])
def test_we_rolled_back_is_it_recovering(tmp_path, recovered):
    now = time.time()
    loaded = load_scenario(recovering_scenario(tmp_path / "s", now, recovered))
    agent = Agent(loaded.config)
    turn = agent.start("r", loaded.request.symptom, service="checkout", at=loaded.request.at)
    assert turn.diagnosis["hypotheses"][0]["component"] == "checkout"
    answer = agent.reply("r", "we rolled back 20 minutes ago, is it recovering?")
    assert answer.kind == "answer"
    if recovered:
        assert answer.text.startswith("It has recovered")
    else:
        assert answer.text.startswith("It is not recovering yet")
    assert answer.evidence and all(e in {x["id"] for x in answer.diagnosis["evidence"]} for e in answer.evidence)


def test_a_follow_up_with_a_model_cites_evidence(scenario, model):
    model.queue(final(), {"content": json.dumps({"answer": "Two deploys: chg-1 on checkout and chg-2 on search.",
                                                 "evidence": ["q1"]})})
    agent = Agent(with_model(scenario, model))
    start(agent, scenario)
    answer = agent.reply("t1", "what changed in the last 2 hours?")
    assert answer.text.startswith("Two deploys") and answer.evidence == ["q1"]
    assert "chg-1" in model.prompt_text()  # the deterministic finding was given to the model


# --- approvals and restarts ------------------------------------------------------------------------
def test_decisions_are_recorded_once(scenario):
    agent = Agent(scenario.config)
    turn = start(agent, scenario)
    first = turn.pending[0]["id"]
    decided = agent.decide("t1", first, approved=False, by="U2", reason="too risky at peak")
    assert decided.kind == "decision" and "rejected" in decided.text and "too risky" in decided.text
    assert first not in [p["id"] for p in decided.pending]
    again = agent.decide("t1", first, approved=True, by="U3")
    assert again.kind == "error" and "already rejected by U2" in again.text
    assert agent.decide("t1", "fix99", approved=True, by="U3").kind == "error"


def _restart_roundtrip(storage: StorageConfig, scenario, thread: str) -> None:
    with open_checkpointer(storage) as saver:
        turn = start(Agent(scenario.config, checkpointer=saver), scenario, thread=thread)
        pending = turn.pending[0]["id"]
    # A new process: a new agent, a new connection, the same store.
    with open_checkpointer(storage) as saver:
        agent = Agent(scenario.config, checkpointer=saver)
        snap = agent.snapshot(thread)
        assert snap["waiting"] == "await" and snap["pending"][0]["id"] == pending
        decided = agent.decide(thread, pending, approved=True, by="U1")
        assert decided.kind == "decision" and "approved" in decided.text and "verify" in decided.text.lower()
        follow = agent.reply(thread, "what changed in the last 2 hours?")
        assert "chg-1" in follow.text
    with open_checkpointer(storage) as saver:
        snap = Agent(scenario.config, checkpointer=saver).snapshot(thread)
        assert [d["id"] for d in snap["decisions"]] == [pending] and snap["decisions"][0]["by"] == "U1"


def test_a_pending_approval_survives_a_restart_with_sqlite(scenario, tmp_path):
    _restart_roundtrip(StorageConfig(sqlite=tmp_path / "state.db"), scenario, "team:C1:1700000000.0001")


def test_a_pending_approval_survives_a_restart_with_postgresql(scenario, postgres_url):
    _restart_roundtrip(StorageConfig(postgres=postgres_url), scenario, f"pg:{time.time_ns()}")


def test_a_question_survives_a_restart(scenario, tmp_path):
    storage = StorageConfig(sqlite=tmp_path / "q.db")
    with open_checkpointer(storage) as saver:
        turn = Agent(scenario.config, checkpointer=saver).start("q", "checkout and search are broken",
                                                                at=scenario.request.at)
        assert turn.kind == "question"
    with open_checkpointer(storage) as saver:
        turn = Agent(scenario.config, checkpointer=saver).reply("q", "it's search")
        assert turn.kind == "diagnosis" and turn.diagnosis["incident"]["service"] == "search"


def test_an_unreachable_postgresql_is_one_sentence():
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        with open_checkpointer(StorageConfig(postgres="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")):
            pass


def test_a_counter_the_model_asks_for_is_read_as_a_rate(tmp_path, model):
    """A model asking for a raw counter gets its per-second rate (and is told so): a counter read
    as a level only ever rises, and falls to zero at every restart."""
    from tests.realshaped import RealStack, Service

    at = float(int(time.time() // 60 * 60) - 3600)
    stack = RealStack(start=at - 3 * 3600, at=at, scrape_s=15.0)
    stack.services = [Service("checkout", "10.0.0.5", failures=[(at - 900, at + 1, 0.3)], restarts=[at - 900])]
    stack.change("rel-1", at - 930, "checkout", "checkout v2", "v2", "v1")
    real = load_scenario(stack.write(tmp_path / "real", "checkout is returning 500s"))
    model.queue({"tool_calls": [("query_metrics", json.dumps({"promql": 'http_requests_total{job="checkout"}'}))]},
                final([{"category": "code_change", "component": "checkout", "statement": "v2 fails requests",
                        "status": "supported", "confidence": 0.9, "evidence": ["q1"]}]))
    turn = start(Agent(with_model(real, model)), real)
    q1 = next(e for e in turn.diagnosis["evidence"] if e["id"] == "q1")
    assert q1["query"].startswith('rate(http_requests_total{job="checkout"}[') and "is a counter" in q1["summary"]
    assert "is a counter" in model.tool_messages()[0]["content"]
