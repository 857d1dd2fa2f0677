"""Compaction of tool outputs: series, logs, lists, and the JSON cap, on large synthetic inputs."""

import json
import math
import random
from datetime import datetime, timezone

import numpy as np
import pytest

from tools.compaction import cap, compact_list, estimate_tokens, raw_chars
from tools.logs.compact import compact_logs
from tools.metrics.compact import compact_series

T0 = 1_773_150_000.0  # a minute boundary
ONSET = T0 + 7000


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def step_series(n: int = 10_000, labels: dict | None = None, seed: int = 1) -> dict:
    """One point a second, level 100 (noise 2), stepping to 150 at ONSET."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 2, n)
    return {"labels": labels or {"__name__": "http_requests_errors", "service": "checkout"},
            "values": [[T0 + i, float(100 + noise[i] + (50 if T0 + i >= ONSET else 0))] for i in range(n)]}


def flat_series(j: int, n: int = 2000) -> dict:
    rng = np.random.default_rng(100 + j)
    return {"labels": {"__name__": "cpu", "pod": f"pod-{j}"},
            "values": [[T0 + 5 * i, str(10 + rng.normal(0, 1))] for i in range(n)]}  # Prometheus answers strings


def test_estimate_tokens():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000


@pytest.mark.parametrize("given_onset", [None, ONSET])
def test_a_step_change_is_found_summarised_and_small(given_onset):
    series = [step_series()]
    out = compact_series(series, window_start=T0 + 6000, onset=given_onset, cap_chars=1500)
    text = json.dumps(out, separators=(",", ":"))
    assert len(text) <= 1500 and "truncated" not in out
    summary = out["series"][0]
    assert summary["n"] == 10_000
    assert summary["first_ts"] == "2026-03-10T13:40:00Z" and summary["last_ts"] == "2026-03-10T16:26:39Z"
    assert summary["baseline_mean"] == pytest.approx(100, abs=0.5)
    # the window holds 1000 s at 100 and 3000 s at 150
    assert summary["window_mean"] == pytest.approx(137.5, abs=0.5)
    assert summary["ratio"] == pytest.approx(1.375, abs=0.01)
    assert summary["min"] < 100 < summary["p50"] < 150 < summary["max"]
    assert abs(parse_iso(summary["departure_start"]) - ONSET) <= 60
    segment = summary["segment"]
    assert 2 <= len(segment) <= 12
    times = [parse_iso(t) for t, _ in segment]
    assert times == sorted(times) and times[0] < ONSET < times[-1]
    before = [v for t, v in segment if parse_iso(t) < ONSET - 60]
    after = [v for t, v in segment if parse_iso(t) >= ONSET]
    assert before and after
    assert all(abs(v - 100) < 5 for v in before) and all(abs(v - 150) < 5 for v in after)


def test_many_series_keep_the_departing_one_first_and_count_the_rest():
    series = [flat_series(j) for j in range(40)]
    series.insert(17, step_series(labels={"__name__": "errors", "service": "payments"}))
    out = compact_series(series, window_start=T0 + 6000, cap_chars=3000)
    assert len(json.dumps(out, separators=(",", ":"))) <= 3000
    assert out["total_series"] == 41
    assert out["series"][0]["labels"]["service"] == "payments"
    assert 1 <= out["shown"] <= 10 and out["shown"] + out["omitted"] == 41
    assert len(out["series"]) == out["shown"]
    flat = out["series"][1]
    assert flat["ratio"] == pytest.approx(1.0, abs=0.05)
    assert flat["departure"] < out["series"][0]["departure"]


def test_series_edge_cases():
    out = compact_series([
        {"labels": {"a": "empty"}, "values": []},
        {"labels": {"a": "junk"}, "values": [[T0, "NaN"], [T0 + 1, "+Inf"], ["x", 1], [T0 + 2, "5"]]},
        {"metric": {"a": "zero-baseline"}, "values": [[T0 + i, 0.0 if i < 50 else 3.0] for i in range(100)]},
    ], window_start=T0 + 40, cap_chars=2000)
    by = {s["labels"]["a"]: s for s in out["series"]}
    assert by["empty"]["n"] == 0
    assert by["junk"]["n"] == 1 and by["junk"]["last"] == 5
    assert by["zero-baseline"]["ratio"] is None and by["zero-baseline"]["window_mean"] == 2.5
    assert out["series"][0]["labels"]["a"] == "zero-baseline"


def log_lines(n: int = 20_000) -> tuple[list, dict]:
    """n lines from 5 templates in mixed formats, and the expected count per template."""
    lines, counts = [], {}
    kinds = [
        ("ERROR", lambda i: f"upstream payments returned 503 after {i % 900}ms"),
        ("WARN", lambda i: f"cache miss for key user:{i * 7}"),
        ("INFO", lambda i: f"request served in {i % 300}ms status=200"),
        ("ERROR", lambda i: f"NullPointerException in Cart.total cart={i}"),
        ("INFO", lambda i: f"connected to db pool size {i % 50} of 50"),
    ]
    rng = random.Random(7)
    for i in range(n):
        k = rng.choices(range(5), weights=[5, 4, 3, 2, 1])[0]
        level, message = kinds[k][0], kinds[k][1](i)
        counts[k] = counts.get(k, 0) + 1
        ts = T0 + i * 0.5
        if i % 3 == 0:
            lines.append(json.dumps({"ts": ts, "level": level.lower(), "service": "api", "message": message}))
        else:
            stamp = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            lines.append(f"{stamp} {level} api: {message}")
    return lines, counts


def test_twenty_thousand_log_lines_become_five_templates():
    lines, counts = log_lines()
    out = compact_logs(lines, cap_chars=3000)
    assert len(json.dumps(out, separators=(",", ":"))) <= 3000
    assert out["lines"] == 20_000 and out["templates_total"] == 5 and out["omitted"] == 0
    assert [t["count"] for t in out["templates"]] == sorted(counts.values(), reverse=True)
    assert out["omitted_lines"] == 0 and out["lines_with_time"] == 20_000
    top = out["templates"][0]
    assert "upstream payments returned" in top["template"] and top["levels"] == {"error": counts[0]}
    assert top["example"].startswith("upstream payments returned 503 after")
    assert top["first"] == "2026-03-10T13:40:00Z"
    assert parse_iso(top["last"]) <= T0 + 10_000
    assert out["levels"]["warn"] == counts[1]


def test_logs_as_dicts_without_time_and_top_k():
    lines = [{"message": f"job {i} failed: disk full on /dev/sd{'abc'[i % 3]}", "level": "error"} for i in range(50)]
    lines += [f"worker {i} heartbeat ok" for i in range(30)]
    lines += [{"line": "2026-03-10T14:05:00Z WARN api: slow query took 3s"}]
    out = compact_logs(lines, cap_chars=2000, k=2)
    assert out["lines"] == 81 and out["templates_total"] == 3
    assert out["shown"] == 2 and out["omitted"] == 1 and out["omitted_lines"] == 1
    assert [t["count"] for t in out["templates"]] == [50, 30]
    assert "first" not in out["templates"][0]
    assert out["levels"] == {"error": 50, "info": 30, "warn": 1}


def test_compact_list():
    items = [{"id": f"c{i}", "summary": f"deploy {i}"} for i in range(100)]
    out = compact_list(items, k=5, cap_chars=1000)
    assert out["total"] == 100 and out["shown"] == 5 and out["omitted"] == 95
    assert [i["id"] for i in out["items"]] == ["c0", "c1", "c2", "c3", "c4"]
    small = compact_list(items, k=50, cap_chars=300)
    assert len(json.dumps(small, separators=(",", ":"))) <= 300 and small["shown"] + small["omitted"] == 100
    assert compact_list([], k=3, cap_chars=100) == {"total": 0, "shown": 0, "omitted": 0, "items": []}


def random_obj(rng: random.Random, depth: int = 0):
    """Nested lists and dicts, wide near the top and narrow below (a few thousand leaves at most)."""
    roll = rng.random()
    if depth > 4 or roll < 0.3:
        return rng.choice([rng.randint(-10**6, 10**6), rng.random() * 1e3, "x" * rng.randint(0, 3000),
                           "é\"\\\n<>" * rng.randint(0, 50), None, True, float("nan")])
    width = (60, 12, 5, 3, 2)[depth]
    if roll < 0.65:
        return [random_obj(rng, depth + 1) for _ in range(rng.randint(0, width))]
    return {f"k{i}\"": random_obj(rng, depth + 1) for i in range(rng.randint(0, width))}


@pytest.mark.parametrize("seed", range(40))
def test_cap_is_always_valid_json_under_the_cap(seed):
    rng = random.Random(seed)
    obj = random_obj(rng)
    for limit in (20, 50, 200, 1000, 5000):
        text = cap(obj, limit)
        assert len(text) <= limit
        parsed = json.loads(text)
        if len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False)) > limit:
            assert isinstance(parsed, dict) and parsed.get("truncated") is True


def test_cap_leaves_small_outputs_alone_and_marks_shortened_ones():
    small = {"a": [1, 2, 3], "b": "text"}
    assert json.loads(cap(small, 100)) == small
    big = {"series": [{"labels": {"pod": f"p{i}"}, "values": list(range(200))} for i in range(100)], "note": "n" * 5000}
    out = json.loads(cap(big, 2000))
    assert out["truncated"] is True and isinstance(out["series"], list)
    assert any(isinstance(x, str) and x.startswith("+") for x in out["series"])  # "+N more"
    assert json.loads(cap(list(range(5000)), 200))["truncated"] is True
    assert cap({"x": 1}, 5) == "{}"
    assert json.loads(cap({"v": math.inf}, 100)) == {"v": None}


def test_compaction_ratio_is_large_for_big_inputs():
    series = [step_series()] + [flat_series(j) for j in range(20)]
    compacted = cap(compact_series(series, window_start=T0 + 6000, cap_chars=3000), 3000)
    assert raw_chars(series) / len(compacted) > 100
    lines, _ = log_lines()
    compacted_logs = cap(compact_logs(lines, cap_chars=3000), 3000)
    assert raw_chars(lines) / len(compacted_logs) > 100
    assert raw_chars({"a": 1}) == len('{"a":1}')
