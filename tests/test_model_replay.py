"""What real local models answered, replayed: Sleuth's requests go through the real openai client to
a stand-in on 127.0.0.1 that serves each recorded response of llama.cpp's server (Gemma 3 270M,
Qwen2.5-0.5B) for the request it answered (tests/replay_standin.py).

The recordings (../shared/model-transcripts/) were made before issue 14: every answer Qwen gave was
thrown away, Gemma's server refused the request with tools by an HTTP 500, and a "120 s" deadline
took 182 s. Replayed now: the prose answer is kept and shown, the 500 leads to one retry without
tools (and its text is kept), near-JSON is repaired, echoes of the prompt are dropped, and the
deadline holds.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from bot.agent import Agent
from bot.llm import MAX_ANSWER_TOKENS
from bot.scenario import DEMO_SCENARIO, SCENARIOS_DIR, load_scenario
from tests.replay_standin import TRANSCRIPTS, ReplayStandIn

pytestmark = pytest.mark.skipif(not TRANSCRIPTS.is_dir(),
                                reason=f"the recorded model exchanges are not here ({TRANSCRIPTS})")


@pytest.fixture(scope="module")
def demo():
    return load_scenario(SCENARIOS_DIR / DEMO_SCENARIO)


def configured(demo, server, name, *, timeout="2s", retries=1, deadline="20s"):
    config = demo.config.model_copy(deep=True)
    config.model.base_url, config.model.model = server.base_url, name
    config.model.timeout, config.model.max_retries = timeout, retries
    config.agent.deadline = deadline
    return config


def start(agent, demo, thread="replay"):
    r = demo.request
    return agent.start(thread, r.symptom, service=r.service, window=r.window, at=r.at, clarify=False)


def _outside_fences(text: str) -> str:
    return re.sub(r"<<<UNTRUSTED:([\w.:-]+):([0-9a-f]+)>>>.*?<<<END UNTRUSTED:\1:\2>>>", "", text, flags=re.S)


def assert_well_formed(chats: list[dict]) -> None:
    """What strict chat templates and the issue ask of every request sent."""
    assert chats
    for body in chats:
        roles = [m["role"] for m in body["messages"]]
        assert roles[0] == "system" and "system" not in roles[1:]
        talk = [r for r in roles[1:] if r != "tool"]
        assert talk[0] == "user"
        assert all(a != b for a, b in zip(talk, talk[1:])), roles  # user and assistant alternate
        assert roles[-1] in ("user", "tool")
        for message in body["messages"]:
            text = _outside_fences(message.get("content") or "")
            assert "{{" not in text and "}}" not in text, text[:300]
            assert not re.search(r"\{(?:categories|actions|evidence_ids|tools)\}", text), text[:300]
        assert body.get("max_tokens", 0) <= MAX_ANSWER_TOKENS  # never the old fixed 4096


def test_gemma_refusing_tools_with_a_500_is_retried_once_without_tools(demo):
    plain = start(Agent(demo.config), demo)
    with ReplayStandIn("gemma3-270m-diagnose") as server:
        turn = start(Agent(configured(demo, server, "gemma-3-270m")), demo)
        chats, served = server.chats, server.served
    assert_well_formed(chats)
    # One request with tools (refused by the recorded 500, not retried as it was), then without.
    assert [bool(c.get("tools")) for c in chats][:2] == [True, False]
    assert sum(bool(c.get("tools")) for c in chats) == 1
    assert served[0]["status"] == 500
    system = chats[1]["messages"][0]["content"]
    assert "tools are called in text" in system and '{"tool": "query_metrics"' in system
    # Nothing was recorded for a request without tools: the status says so, with the server's own
    # text for the request with tools kept (shortened, redacted), and the result stands.
    model = turn.diagnosis["model"]
    assert model["status"].startswith("unavailable:")
    assert "tools param requires --jinja flag" in model["status"] and "HTTP 500" in model["status"]
    assert "no recorded answer" in model["status"]
    assert "HTTP 500: tools param requires --jinja flag" in model["tools_fallback"]
    assert [(h["category"], h["component"], h["status"]) for h in turn.diagnosis["hypotheses"]] == \
        [(h["category"], h["component"], h["status"]) for h in plain.diagnosis["hypotheses"]]


def test_qwen_near_json_is_repaired_and_the_prompt_it_copied_is_dropped(demo):
    plain = start(Agent(demo.config), demo)
    with ReplayStandIn("qwen2.5-0.5b-diagnose") as server:
        agent = Agent(configured(demo, server, "qwen2.5-coder-0.5b-instruct", timeout="1s"))
        turn = start(agent, demo)
        chats, served = server.chats, server.served
    assert_well_formed(chats)
    assert [s["phase"] for s in served] == ["cancelled", "response"]  # the first never came, as recorded
    model, narrative = turn.diagnosis["model"], turn.diagnosis["narrative"]
    assert model["status"] == "ok" and model["answer_shape"] == "repaired json"
    assert "repeated the prompt" in model["note"]
    # Its summary, open questions and next steps were the template's own words: dropped, not shown.
    assert narrative["summary"] == "" and narrative["next_steps"] == [] and narrative["echoes_dropped"] == 3
    assert "two or three sentences" not in turn.text
    # It restated the ranked hypotheses without evidence: nothing about them changed.
    assert [(h["category"], h["component"], h["status"], h["confidence"]) for h in turn.diagnosis["hypotheses"]] == \
        [(h["category"], h["component"], h["status"], h["confidence"]) for h in plain.diagnosis["hypotheses"]]
    # Where the time went: a timeout, then the answer; the server's reported speed is measured.
    when = model["time"]
    assert [c["outcome"] for c in when["calls"]] == ["timeout", "ok"]
    assert when["model_s"] <= when["elapsed_s"] <= 20
    assert when["tokens_per_s"] == pytest.approx(8.98, abs=0.05)
    assert agent.model_client().answer_tokens(60.0) < 600  # what 9 tokens/s can write in a minute, not 4096


def test_qwen_chat_prose_answer_is_kept_and_the_deadline_holds(demo):
    with ReplayStandIn("qwen2.5-0.5b-chat") as server:
        agent = Agent(configured(demo, server, "qwen2.5-coder-0.5b-instruct", timeout="1s", retries=3, deadline="3s"))
        began = time.monotonic()
        turn = start(agent, demo, thread="chat")
        took = time.monotonic() - began
        # The recorded server never answered the investigation's request: one deadline, kept.
        model = turn.diagnosis["model"]
        assert model["status"] == "budget_exhausted: deadline (3s)"
        assert model["time"]["elapsed_s"] <= 3.6 and took < 3.6 + turn.diagnosis["timings"]["total_ms"] / 1000 + 2
        assert {c["outcome"] for c in model["time"]["calls"]} == {"timeout"}
        assert all(c["timeout_s"] <= 1.0 for c in model["time"]["calls"])

        changed = agent.reply("chat", "what changed in the last 2 hours?")
        recovering = agent.reply("chat", "is it recovering?")
        chats, served = server.chats, server.served
    assert_well_formed(chats)
    # Qwen's prose answer (it copied Sleuth's finding, citing q1) is the answer shown, without the
    # fence markers it copied along.
    assert changed.model["status"] == "ok" and changed.model["answer_shape"] == "prose"
    assert changed.text.startswith("2 changes in the last 2 hours [q1]:")
    assert "chg-1010" in changed.text and "chg-1009" in changed.text
    assert "UNTRUSTED" not in changed.text and "The block below" not in changed.text
    assert "unverified" not in changed.text and "q1" in changed.evidence
    assert 5 in [s["id"] for s in served]
    # Its next answer was near-JSON whose "answer" only repeated Sleuth's framing: repaired, found
    # empty, and Sleuth's own answer is given with a note, not "unavailable".
    assert recovering.model["status"] == "ok" and recovering.model["answer_shape"] == "repaired json"
    assert "only repeated Sleuth's own text" in recovering.text
    assert "The block below" not in recovering.text
    assert json.dumps(recovering.model).count("unavailable") == 0
