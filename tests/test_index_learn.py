"""The category head (running ridge sums), the related-incident re-rank, and `sleuth index eval`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.index_cli import index_app
from index import learn
from index.evaluate import evaluate
from index.records import IncidentRecord
from index.store import Memory, MemoryConfig

AZURE = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "postmortems-azure"

# Each category has its own vocabulary; filler words are shared by all, so neighbours are noisy.
VOCAB = {
    "capacity": ["saturation", "exhausted", "pool", "queue", "backlog", "quota", "throttled", "memory"],
    "code_change": ["release", "regression", "deploy", "build", "exception", "nullpointer", "version", "bug"],
    "infrastructure": ["hardware", "disk", "power", "rack", "network", "switch", "host", "firmware"],
    "dependency": ["upstream", "provider", "vendor", "third-party", "dns", "certificate", "partner", "api"],
}
FILLER = ["service", "latency", "errors", "customers", "region", "requests", "timeouts", "dashboard", "alert",
          "users", "degraded", "failures", "west", "east", "portal", "storage", "compute", "gateway"]
SERVICES = ["checkout", "search", "billing", "auth", "storage", "gateway"]


def synthetic_records(n: int = 60, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    cats = list(VOCAB)
    weights = [0.4, 0.25, 0.2, 0.15]  # a clear majority class
    out = []
    for i in range(n):
        cat = rng.choices(cats, weights)[0]
        words = VOCAB[cat]
        # Only part of the text carries the category; the rest is shared filler and another category's words.
        other = VOCAB[rng.choice([c for c in cats if c != cat])]
        title = " ".join(rng.sample(FILLER, 3) + rng.sample(words, 1) + rng.sample(other, 1))
        summary = " ".join(rng.sample(FILLER, 6) + rng.sample(words, 2) + rng.sample(other, 1))
        details = " ".join(rng.sample(FILLER, 8) + rng.sample(words, 4) + rng.sample(other, 2))
        out.append({"id": f"SYN-{i:03d}", "title": title, "summary": summary, "services": [rng.choice(SERVICES)],
                    "category": cat, "symptoms": [rng.choice(["availability", "performance"])],
                    "sections": {"Details": details}, "date": f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}"})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def as_records(rows: list[dict]) -> list[IncidentRecord]:
    from index.records import record_from_mapping

    return [record_from_mapping(r, where="test", default_id=r["id"], source="test") for r in rows]


# --- the head ------------------------------------------------------------------------------------


def test_closed_form_leave_one_out_is_the_head_without_the_record():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 24))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = np.vstack([learn.targets([learn.CATEGORIES[i % 3]] + ([learn.CATEGORIES[4]] if i % 7 == 0 else []))
                   for i in range(40)])
    loo = learn.loo_predictions(X, T)
    for i in (0, 7, 21):
        head = learn.CategoryHead(24)
        head.add(X, T)
        head.remove(X[i], T[i])  # the query's labels leave the sums
        assert np.allclose(head.predict(X[i])[0], loo[i], atol=1e-8)


def test_head_persists_and_survives_a_reload(tmp_path):
    head = learn.CategoryHead(8)
    head.add(np.eye(8)[:3], np.vstack([learn.targets(["capacity"])] * 3))
    heads, token = learn.load_heads(learn.dump_heads({"early": head}, "t-1"))
    assert token == "t-1" and heads["early"].n == 3 and np.array_equal(heads["early"].A, head.A)


def test_rerank_prefers_same_category_neighbours():
    p = learn.targets(["capacity"])  # the query is most likely a capacity incident
    sims = np.array([0.62, 0.60, 0.59])
    cats = [["code_change"], ["capacity"], ["capacity", "dependency"]]
    order = np.argsort(-learn.rerank(sims, p, cats), kind="stable")
    assert list(order) == [1, 2, 0]
    assert list(np.argsort(-learn.rerank(sims, p, cats, beta=0), kind="stable")) == [0, 1, 2]


# --- the head inside the memory -------------------------------------------------------------------


PROBE = "zebra quasar telemetry flux on the orbital relay"


@pytest.fixture
def labelled_memory(tmp_path):
    rows = synthetic_records(40)
    rows.append({"id": "PROBE-1", "title": PROBE, "summary": "orbital relay flux", "services": ["relay"],
                 "category": "capacity", "symptoms": ["performance"]})
    memory = Memory(MemoryConfig(path=tmp_path / "memory"))
    assert len(memory.add_records(as_records(rows)).added) == 41
    return memory, rows


def test_suggestion_comes_from_the_head_and_follows_updates(tmp_path, labelled_memory):
    memory, rows = labelled_memory
    heads = memory.heads()
    assert heads["early"].n == 41 and heads["full"].n == 41
    assert (tmp_path / "memory" / "incidents.heads.npz").is_file()
    results = memory.find_similar_incidents(PROBE, k=5)
    suggestion = memory.suggest(results)  # the head, for the query of that search
    assert suggestion.category == "capacity" and suggestion.basis.startswith("category head")
    assert memory.suggest(results, PROBE).category == "capacity"

    # The same record, now labelled a dependency failure: the suggestion moves with it.
    changed = dict(rows[-1], category="dependency")
    assert memory.add_incident(as_records([changed])[0]) == "updated"
    assert memory.heads()["early"].n == 41  # replaced, not added twice
    assert memory.suggest([], PROBE).category == "dependency"
    # Another process sees the same sums (from the file, checked against the collection's token).
    again = Memory(MemoryConfig(path=tmp_path / "memory"))
    assert again.suggest([], PROBE).category == "dependency"
    # Re-adding the same records changes nothing; the running sums equal a recomputation from Chroma.
    assert memory.add_records(as_records(rows[:-1])).added == []
    col = memory.collection("incidents")
    truth = memory._heads_from_collection(col)
    for name in ("early", "full"):
        assert np.allclose(memory.heads()[name].A, truth[name].A, atol=1e-6)
        assert np.allclose(memory.heads()[name].B, truth[name].B, atol=1e-6)
    # Deleting the record takes it out of the sums.
    assert memory.remove_incidents(["PROBE-1"]) == ["PROBE-1"]
    assert memory.heads()["early"].n == 40
    assert memory.suggest([], PROBE).category != "dependency" or memory.suggest([], PROBE).confidence < 0.3


def test_interrupted_write_makes_the_heads_recompute(tmp_path, labelled_memory, monkeypatch):
    memory, rows = labelled_memory
    col = memory.collection("incidents")

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-ingest")

    monkeypatch.setattr(type(col), "delete", crash)
    with pytest.raises(RuntimeError):
        memory.add_incident(as_records([dict(rows[0], category="dependency")])[0])
    monkeypatch.undo()
    reopened = Memory(MemoryConfig(path=tmp_path / "memory"))
    heads = reopened.heads()  # the token says "writing": recomputed from what Chroma holds (both versions)
    assert heads["early"].n == 42


def test_related_results_are_reranked_by_the_likely_category(labelled_memory):
    memory, rows = labelled_memory
    query = "saturation exhausted pool queue backlog quota throttled " + " ".join(FILLER[:6])
    results = memory.find_similar_incidents(query, k=5)
    assert any("fits the likely cause (capacity" in r.why for r in results)
    assert sum("capacity" in r.categories for r in results) >= 4
    assert all(r.score >= r.similarity for r in results)


def test_small_memories_keep_the_neighbour_vote(tmp_path):
    memory = Memory(MemoryConfig(path=tmp_path / "memory"))
    memory.add_records(as_records(synthetic_records(8)))
    results = memory.find_similar_incidents("release regression deploy", k=3)
    assert memory.suggest(results).basis == "neighbour vote"
    assert not any("fits the likely cause" in r.why for r in results)


# --- sleuth index eval -----------------------------------------------------------------------------


def test_eval_json_on_a_synthetic_corpus_beats_the_majority_baseline(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus" / "incidents.jsonl", synthetic_records(80))
    result = CliRunner().invoke(index_app, ["eval", str(corpus.parent), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"early_category_accuracy", "related_precision_at_5", "majority_baseline", "records"} <= set(report)
    assert report["records"] == 80 and "hashed" in report["by_embedding"]
    assert report["early_category_accuracy"] == report["by_embedding"]["hashed"]["early_category_accuracy"]
    assert report["early_category_accuracy"] >= report["majority_baseline"] + 0.05
    assert report["related_precision_at_5"] > report["majority_baseline"]
    table = CliRunner().invoke(index_app, ["eval", str(corpus.parent)])
    assert table.exit_code == 0 and "majority baseline" in table.output and "early suggestion" in table.output


def test_eval_never_sees_the_query_labels(tmp_path):
    """Labels that carry no signal give no better than chance: nothing leaks from the query record."""
    rows = synthetic_records(60)
    rng = random.Random(3)
    for row in rows:
        row["category"] = rng.choice(["capacity", "code_change"])
    report = evaluate([write_jsonl(tmp_path / "c" / "x.jsonl", rows)])
    assert report["early_category_accuracy"] <= report["majority_baseline"] + 0.1


def test_eval_needs_labels(tmp_path):
    rows = [dict(r, category=None) for r in synthetic_records(12)]
    result = CliRunner().invoke(index_app, ["eval", str(write_jsonl(tmp_path / "c" / "x.jsonl", rows))])
    assert result.exit_code == 2 and "labelled records" in result.output


def test_eval_meets_the_goals_on_the_shared_azure_corpus():
    if not AZURE.is_dir():
        pytest.skip(f"the shared labelled corpus is not at {AZURE}; nothing to measure")
    # The goals are the hashed embedding's (the top-level figures); MiniLM, where its files are on
    # disk, is measured by `sleuth index eval` and bench_memory, not here (about 30 s per 1,000 texts).
    from index.embeddings import DEFAULT_DIM, HashedNgramEmbedding

    report = evaluate([AZURE], functions=[("hashed", HashedNgramEmbedding(dim=DEFAULT_DIM))])
    assert report["records"] >= 200
    assert report["early_category_accuracy"] >= report["majority_baseline"] + 0.05
    assert report["related_precision_at_5"] >= 0.55
