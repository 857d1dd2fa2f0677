"""The agent's graph: does it score what the core scores, what does it cost, how much does it add?

Usage: python3 benchmarks/bench_agent.py [SCENARIO_DIR ...]   (default: the bundled scenarios)

1. Every scenario through the deterministic graph (no model) and through the core investigation:
   the evaluation's rates side by side; they must be equal.
2. The graph's own overhead per investigation: wall time of Agent.start minus the investigation's
   own total (sources and analysis), median and max. Goal: <= 50 ms.
3. With the scripted OpenAI-compatible server (tests/openai_standin.py) on 127.0.0.1: a model
   that queries the top hypothesis's metric, the top component's error logs and the changes, then
   answers. Prompt tokens per investigation, what they would have been with raw tool outputs, the
   compaction ratio of the tool outputs, and where the model's part spent its time (model.time).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.agent import Agent  # noqa: E402
from bot.evaluation import RATES, evaluate, score, summarise  # noqa: E402
from bot.scenario import SCENARIOS_DIR, find_scenarios, load_scenario, load_truth  # noqa: E402
from tests.openai_standin import OpenAIStandIn  # noqa: E402
from tools.diagnosis import Diagnosis  # noqa: E402


def through_graph(folders: list[Path]):
    scores, overheads = [], []
    for n, folder in enumerate(folders):
        truth = load_truth(folder)
        if truth is None:
            continue
        loaded = load_scenario(folder)
        agent = Agent(loaded.config)
        began = time.perf_counter()
        turn = agent.start(f"bench:{n}", loaded.request.symptom, service=loaded.request.service,
                           window=loaded.request.window, at=loaded.request.at, clarify=False)
        wall_ms = (time.perf_counter() - began) * 1000
        diagnosis = Diagnosis.from_dict(turn.diagnosis)
        scores.append(score(loaded.name, diagnosis, truth, wall_ms))
        overheads.append(wall_ms - turn.diagnosis["timings"]["total_ms"])
    return scores, overheads


def with_scripted_model(folders: list[Path]) -> list[dict]:
    rows = []
    with OpenAIStandIn() as server:
        for n, folder in enumerate(folders):
            loaded = load_scenario(folder)
            config = loaded.config.model_copy(deep=True)
            config.model.base_url, config.model.model = server.base_url, "scripted"
            plan = {}

            def step(body, plan=plan):
                # Decide from the prompt: the first metric query and component in the ledger.
                text = json.dumps(body["messages"])
                if "calls" not in plan:
                    plan["calls"] = 0
                plan["calls"] += 1
                if plan["calls"] == 1 and body.get("tools"):
                    ledger_part = text[text.find("Evidence ledger"):]
                    query = _first(ledger_part, '\\"query\\": \\"', '\\"')
                    component = _first(ledger_part, '\\"component\\": \\"', '\\"')
                    calls = [("list_changes", "{}")]
                    if query and "{" in query:
                        calls.insert(0, ("query_metrics", json.dumps({"promql": query.replace('\\\\"', '"')})))
                    if component:
                        calls.insert(1, ("search_logs", json.dumps({"service": component})))
                    return {"tool_calls": calls}
                return {"content": json.dumps({"summary": "done", "hypotheses": []})}

            server.default = step
            turn = Agent(config).start(f"bench-model:{n}", loaded.request.symptom, service=loaded.request.service,
                                       window=loaded.request.window, at=loaded.request.at, clarify=False)
            when = turn.diagnosis["model"].get("time") or {}
            rows.append({"scenario": folder.name, **{k: turn.diagnosis["model"].get(k) for k in (
                "status", "prompt_tokens", "completion_tokens", "prompt_tokens_if_raw", "tool_calls",
                "tool_output_raw_chars", "tool_output_chars", "compaction_ratio")},
                **{f"time_{k}": when.get(k) for k in ("elapsed_s", "model_s", "tools_s")}})
    return rows


def _first(text: str, before: str, after: str) -> str | None:
    start = text.find(before)
    if start == -1:
        return None
    start += len(before)
    end = text.find(after, start)
    return text[start:end] if end != -1 else None


def main() -> int:
    folders = find_scenarios([Path(p) for p in sys.argv[1:]] or [SCENARIOS_DIR])
    core = summarise(asyncio.run(evaluate(folders)))
    graph_scores, overheads = through_graph(folders)
    graph = summarise(graph_scores)
    print(f"scenarios: {len(folders)}")
    print(f"{'rate':<18}{'core':>8}{'graph':>8}")
    same = True
    for key in RATES:
        print(f"{key:<18}{core[key]:>8.3f}{graph[key]:>8.3f}")
        same &= core[key] == graph[key]
    print(f"deterministic graph scores what the core scores: {'yes' if same else 'NO'}")
    print(f"graph overhead per investigation: median {statistics.median(overheads):.1f} ms, "
          f"max {max(overheads):.1f} ms (goal <= 50 ms)")
    rows = with_scripted_model(folders)
    prompt = [r["prompt_tokens"] for r in rows]
    raw = [r["prompt_tokens_if_raw"] for r in rows]
    ratios = [r["compaction_ratio"] for r in rows if r["compaction_ratio"]]
    print(f"scripted model: prompt tokens per investigation median {statistics.median(prompt):.0f} "
          f"(max {max(prompt)}); with raw tool outputs about {statistics.median(raw):.0f}; "
          f"tool-output compaction ratio median {statistics.median(ratios):.1f}x (min {min(ratios):.1f}x)")
    elapsed = [r["time_elapsed_s"] for r in rows if r["time_elapsed_s"] is not None]
    completion = [r["completion_tokens"] for r in rows]
    print(f"scripted model: completion tokens median {statistics.median(completion):.0f}; the model's part "
          f"(loop wall time) median {statistics.median(elapsed) * 1000:.0f} ms (max {max(elapsed) * 1000:.0f} ms): "
          f"waiting on the model median {statistics.median(r['time_model_s'] for r in rows) * 1000:.0f} ms, "
          f"running tools median {statistics.median(r['time_tools_s'] for r in rows) * 1000:.0f} ms")
    statuses = sorted({r["status"] for r in rows})
    print(f"model statuses: {', '.join(statuses)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
