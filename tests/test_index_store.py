"""The memory on an embedded Chroma: idempotent ingest, search, suggestions, embedding mismatch, rebuild, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.index_cli import index_app
from index.embeddings import EmbeddingConfig, HashedNgramEmbedding, OpenAICompatibleEmbedding
from index.errors import EmbeddingMismatch, SleuthIndexError
from index.records import IncidentRecord, collect
from index.store import INCIDENTS, Memory, MemoryConfig

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"

# A small history: two GPU faults, two checkout incidents, and one of each other kind.
CORPUS = {
    "INC-101.md": """---
id: INC-101
title: llm-inference 5xx, Xid 79 GPU fell off the bus on gpu-node-7
services: [llm-inference]
date: 2025-09-14
severity: SEV2
root_cause: infrastructure
mitigations: [drain_node, escalate]
---
## Summary
Requests routed to gpu-node-7 failed with HTTP 500; dmesg showed NVRM Xid 79.
## Root cause
GPU on gpu-node-7 fell off the bus (hardware fault).
## Mitigation
Cordoned and drained gpu-node-7; hardware team replaced the GPU.
""",
    "INC-102.md": """---
id: INC-102
title: Inference errors from ECC double-bit errors (Xid 48)
services: [llm-inference]
date: 2025-04-02
severity: SEV3
root_cause: infrastructure
mitigations: [drain_node]
---
## Summary
One node's pods returned errors and garbage tokens; DCGM reported ECC double-bit errors, Xid 48.
## Root cause
Uncorrectable ECC memory errors on a GPU.
## Mitigation
Drained the node.
""",
    "INC-103.md": """---
id: INC-103
title: Checkout 500s after router 2.3 rollout
services: [checkout, router]
date: 2025-06-01
root_cause: code_change
mitigations: [rollback]
---
## Summary
Checkout returned HTTP 500 right after router 2.3 was deployed; NullPointerException in StreamSerializer.
## Root cause
Router 2.3 serializer bug.
## Mitigation
Rolled back router to 2.2.
""",
    "INC-104.md": """---
id: INC-104
title: Checkout timeouts after payments feature flag enabled
services: [checkout, payments]
date: 2024-02-10
root_cause: config_change
mitigations: [config_revert]
---
## Summary
Checkout latency p99 rose to 8 s when the new-3ds flag was switched on for all users.
## Root cause
The flag made every payment call a slow 3-D Secure check.
## Mitigation
Turned the flag off.
""",
    "history.jsonl": "\n".join(json.dumps(r) for r in [
        {"id": "INC-105", "title": "Assistant latency: KV cache full, requests queueing", "services": ["assistant"],
         "date": "2025-08-01", "category": "capacity", "mitigations": ["scale_out", "rate_limit"],
         "summary": "TTFT p99 30 s; vllm gpu_cache_usage_perc at 100%, num_requests_waiting 400.",
         "root_cause_text": "Longer RAG prompts exhausted the KV cache.", "mitigation_text": "Added two replicas."},
        {"id": "INC-106", "title": "Upstream LLM provider returning 429", "services": ["assistant", "openai-proxy"],
         "date": "2025-07-11", "category": "dependency", "mitigations": ["failover"],
         "summary": "Chat answers failed with upstream 429 Too Many Requests from the provider.",
         "root_cause_text": "Provider-side rate limiting during their incident.",
         "mitigation_text": "Failed over to the secondary region deployment."},
        {"id": "INC-107", "title": "billing-db connection pool exhausted", "services": ["billing", "billing-db"],
         "date": "2023-05-05", "category": "capacity", "mitigations": ["rollback"],
         "summary": "Billing API timed out acquiring connections: HikariPool-1 connection is not available.",
         "root_cause_text": "A new report query held connections for minutes.",
         "mitigation_text": "Rolled back the report release."},
        {"id": "INC-108", "title": "Support bot cites outdated prices: stale retrieval index",
         "services": ["support-bot"], "date": "2025-10-01", "category": "data_or_model", "mitigations": ["reindex"],
         "summary": "Answers quoted last year's prices; retrieval hit rate fine but documents were old.",
         "root_cause_text": "The nightly reindex job had failed for 3 weeks.",
         "mitigation_text": "Fixed the job and rebuilt the index."},
    ]) + "\n",
}


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def memory_at(path: Path, **embedding) -> Memory:
    return Memory(MemoryConfig(path=path, embedding=EmbeddingConfig(**embedding)))


@pytest.fixture
def corpus(tmp_path) -> list[IncidentRecord]:
    records, skipped = collect([write_corpus(tmp_path / "corpus")])
    assert not skipped and len(records) == 8
    return records


@pytest.fixture
def memory(tmp_path, corpus) -> Memory:
    mem = memory_at(tmp_path / "memory")
    summary = mem.add_records(corpus)
    assert len(summary.added) == 8
    return mem


def check_gpu_search(mem: Memory) -> None:
    """The search every deployment must answer the same way (embedded and server)."""
    results = mem.find_similar_incidents("llm-inference returns 500s; dmesg shows Xid 79 on gpu-node-3", k=3)
    assert [r.id for r in results[:2]] == ["INC-101", "INC-102"]
    top = results[0]
    assert top.category == "infrastructure" and top.mitigations == ["drain_node", "escalate"]
    assert "same service llm-inference" in top.why and "xid" in top.why
    assert "fell off the bus" in top.root_cause and "drained gpu-node-7" in top.mitigation
    suggestion = mem.suggest(results)
    assert suggestion.category == "infrastructure" and suggestion.confidence > 0.6
    drain = suggestion.mitigations[0]
    assert drain.action == "drain_node" and drain.provenance == "worked in INC-101, INC-102"


def test_search_and_suggestion(memory):
    check_gpu_search(memory)
    results = memory.find_similar_incidents("checkout HTTP 500 after deploy, NullPointerException", k=2)
    assert results[0].id == "INC-103"
    assert memory.suggest(results).mitigations[0].provenance.startswith("worked in INC-103")
    similar = results[0].to_similar_incident()
    assert similar.id == "INC-103" and similar.root_cause.startswith("code_change") and "rollback" in similar.mitigation


def test_filters_service_and_since(memory):
    results = memory.find_similar_incidents("slow responses and timeouts", service="checkout", k=5)
    assert {r.id for r in results} == {"INC-103", "INC-104"}
    recent = memory.find_similar_incidents("slow responses and timeouts", since="2025-01-01", k=10)
    assert recent and all(r.date >= "2025-01-01" for r in recent)
    assert "INC-107" not in {r.id for r in recent}
    nowhere = memory.find_similar_incidents("GPU Xid 79", service="no-such-service", k=2)
    assert nowhere and "no past incident on no-such-service" in nowhere[0].why
    with pytest.raises(SleuthIndexError, match="empty"):
        memory.find_similar_incidents("   ")


def test_exclude_and_empty_memory(tmp_path, memory):
    results = memory.find_similar_incidents("Xid 79 GPU fell off the bus", k=2, exclude=["INC-101"])
    assert results[0].id == "INC-102"
    empty = memory_at(tmp_path / "empty")
    assert empty.find_similar_incidents("anything") == []
    assert empty.suggest([]).category is None
    assert empty.find_runbooks("anything") == []


def test_same_document_twice_is_one_record(memory, corpus):
    before = memory.part_ids("INC-101")
    again = memory.add_records(corpus)
    assert again.added == [] and again.updated == []
    assert [why for _, why in again.skipped] == ["unchanged"] * 8
    assert memory.count() == 8 and memory.part_ids("INC-101") == before
    # Within one ingest, a repeated id is reported, not written twice.
    twice = memory.add_records([corpus[0], corpus[0]])
    assert sorted(why for _, why in twice.skipped) == ["the same record appears twice in this ingest", "unchanged"]


def test_one_entry_per_incident(memory, corpus):
    col = memory.collection(INCIDENTS)
    assert col.count() == 8  # one vector per record: the early text is not stored as a vector
    got = col.get(where={"record_id": "INC-101"}, include=["metadatas", "embeddings", "documents"])
    (stored,) = got["metadatas"]
    # The keys search filters on stay keys; the rest is one JSON string (fewer rows for Chroma to write).
    assert set(stored) == {"record_id", "part", "ts", "service_keys", "info"}
    meta = Memory.entry_metadata(stored)
    record = next(r for r in corpus if r.id == "INC-101")
    assert got["ids"] == [f"INC-101#full#{record.content_hash()[:16]}"] and meta["part"] == "full"
    assert meta["text"] == record.full_text() and got["documents"] == [None]
    assert meta["title"] == record.title and meta["mitigations"] == "drain_node,escalate"
    assert Memory.early_text_of(meta) == record.early_text()
    assert np.allclose(got["embeddings"][0], memory.embedding([record.full_text()])[0], atol=1e-6)


def test_a_large_ingest_prepares_batches_in_a_worker_with_the_same_result(tmp_path, memory, corpus, monkeypatch):
    import index.ingest as store

    monkeypatch.setattr(store, "_WORKER_MIN_RECORDS", 2)
    monkeypatch.setattr(Memory, "BATCH_RECORDS", 3)
    delivered = []
    real_get = store._Worker.get
    monkeypatch.setattr(store._Worker, "get", lambda self, i: delivered.append(real_get(self, i)) or delivered[-1])
    ahead = memory_at(tmp_path / "ahead")
    assert len(ahead.add_records(corpus).added) == 8
    # Batch 0 is prepared here while the worker starts; batches 1 and 2 came from the worker.
    assert delivered[0] is None and [len(d["ids"]) for d in delivered[1:]] == [3, 2]
    assert set(delivered[1]["sums"]) == {"early", "full"}
    got, want = (m.collection(INCIDENTS).get(include=["embeddings", "metadatas"]) for m in (ahead, memory))
    assert sorted(got["ids"]) == sorted(want["ids"])
    order = {pid: i for i, pid in enumerate(want["ids"])}
    for pid, vector, meta in zip(got["ids"], got["embeddings"], got["metadatas"]):
        assert np.array_equal(vector, want["embeddings"][order[pid]])
        a, b = Memory.entry_metadata(meta), Memory.entry_metadata(want["metadatas"][order[pid]])
        assert a.pop("ingested_at") > 0 and b.pop("ingested_at") > 0 and a == b
    for name in ("early", "full"):
        assert ahead.heads()[name].n == 8 and np.allclose(ahead.heads()[name].A, memory.heads()[name].A, atol=1e-9)
    check_gpu_search(ahead)
    # A worker that cannot start: every batch is prepared here, with the same result.
    monkeypatch.setattr(store.sys, "executable", str(tmp_path / "no-such-python"))
    delivered.clear()
    inline = memory_at(tmp_path / "inline")
    assert len(inline.add_records(corpus).added) == 8 and delivered == [None, None, None]
    assert np.allclose(inline.heads()["early"].A, memory.heads()["early"].A, atol=1e-9)


def test_changed_document_replaces_all_its_parts(tmp_path, memory):
    folder = tmp_path / "corpus"
    path = folder / "INC-103.md"
    before = memory.part_ids("INC-103")
    path.write_text(path.read_text().replace("Router 2.3 serializer bug.", "A race in the router 2.3 chunk buffer."))
    records, _ = collect([folder])
    summary = memory.add_records(records)
    assert summary.updated == ["INC-103"] and summary.added == []
    assert memory.count() == 8
    parts = memory.part_ids("INC-103")
    assert len(parts) == 1 and parts != before  # the new version only: the old entry is gone
    (result,) = memory.find_similar_incidents("router chunk buffer race", service="router", k=1)
    assert result.id == "INC-103" and "race" in result.root_cause
    # A document that loses a section loses its text too (the front matter still names the fix).
    path.write_text(path.read_text().split("## Root cause")[0])
    memory.add_records(collect([folder])[0])
    assert [p.split("#")[1] for p in memory.part_ids("INC-103")] == ["full"]
    (result,) = memory.find_similar_incidents("checkout 500 router rollout", service="router", k=1)
    assert result.id == "INC-103" and result.root_cause == "" and result.mitigations == ["rollback"]


def test_interrupted_update_never_leaves_a_half_written_record(tmp_path, memory, corpus, monkeypatch):
    col = memory.collection(INCIDENTS)
    changed = IncidentRecord.from_dict({**corpus[0].to_dict(), "root_cause_text": "A failing PCIe riser."})

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-ingest")

    monkeypatch.setattr(type(col), "delete", crash)
    with pytest.raises(RuntimeError):
        memory.add_records([changed])
    monkeypatch.undo()
    assert len(memory.part_ids(changed.id)) == 2  # both versions complete, neither half-written
    results = memory.find_similar_incidents("GPU PCIe riser failing", k=8)
    assert [r.id for r in results].count(changed.id) == 1
    assert next(r for r in results if r.id == changed.id).root_cause == "A failing PCIe riser."
    summary = memory.add_records([changed])  # the next ingest finishes the job
    assert summary.updated == [changed.id] and len(memory.part_ids(changed.id)) == 1


def write_two_part_layout(mem: Memory, records: list[IncidentRecord]) -> None:
    """The layout memories had before one entry per incident: a ``summary`` (early text) and a ``full`` entry."""
    col = mem.collection(INCIDENTS)
    for record in records:
        digest = record.content_hash()
        meta = mem.incident_metadata(record, digest, 0.0)
        meta.pop("early_len", None), meta.pop("early_text", None)
        for part, text in (("summary", record.early_text()), ("full", record.full_text())):
            col.upsert(ids=[f"{record.id}#{part}#{digest[:16]}"], embeddings=mem.embedding([text]),
                       metadatas=[{**meta, "part": part, "text": text, "ingested_at": 1.0}])


def test_a_memory_in_the_two_part_layout_is_searched_and_converted_by_the_next_ingest(tmp_path, corpus):
    old = memory_at(tmp_path / "old")
    write_two_part_layout(old, corpus)
    assert old.collection(INCIDENTS).count() == 16 and old.count() == 8
    check_gpu_search(old)  # still searched as it is
    heads = old.heads()  # its heads: the summary vectors feed the early head
    new = memory_at(tmp_path / "new")
    new.add_records(corpus)
    for name in ("early", "full"):
        assert heads[name].n == 8 and np.allclose(heads[name].A, new.heads()[name].A, atol=1e-6)
    # The same documents again: the old-format entries count as changed and become one entry each.
    summary = old.add_records(corpus)
    assert sorted(summary.updated) == sorted(r.id for r in corpus) and not summary.added and not summary.skipped
    assert old.collection(INCIDENTS).count() == 8
    assert all([p.split("#")[1] for p in old.part_ids(r.id)] == ["full"] for r in corpus)
    truth = old._heads_from_collection(old.collection(INCIDENTS))
    for name in ("early", "full"):
        assert old.heads()[name].n == 8 and np.allclose(old.heads()[name].A, truth[name].A, atol=1e-6)
        assert np.allclose(old.heads()[name].B, new.heads()[name].B, atol=1e-6)
    assert [why for _, why in old.add_records(corpus).skipped] == ["unchanged"] * 8
    check_gpu_search(old)


def test_rebuild_converts_the_two_part_layout(tmp_path, corpus):
    path = tmp_path / "old"
    write_two_part_layout(memory_at(path), corpus)
    assert memory_at(path, dim=512).rebuild() == {"incidents": 8}
    rebuilt = memory_at(path, dim=512)
    got = rebuilt.collection(INCIDENTS).get(include=["metadatas"])
    metas = [Memory.entry_metadata(m) for m in got["metadatas"]]
    assert len(got["ids"]) == 8 and {m["part"] for m in metas} == {"full"} and all("info" in m for m in got["metadatas"])
    early = {r.id: r.early_text() for r in corpus}
    assert all(Memory.early_text_of(m) == early[m["record_id"]] for m in metas)
    assert rebuilt.heads()["early"].n == 8 and rebuilt.heads()["full"].n == 8
    assert rebuilt.find_similar_incidents("Xid 79 GPU", k=1)[0].id == "INC-101"
    assert [why for _, why in rebuilt.add_records(corpus).skipped] == ["unchanged"] * 8


def test_add_incident_api(memory, corpus):
    record = IncidentRecord(id="SLK-1", title="search latency after index rebuild", services=["search"],
                            category="data_or_model", mitigations=["model_rollback"], summary="p99 5 s",
                            root_cause_text="rebuilt index without the title field", date="2026-01-05")
    assert memory.add_incident(record) == "added"
    assert memory.add_incident(record) == "unchanged"
    record.mitigation_text = "pinned the previous index snapshot"
    assert memory.add_incident(record) == "updated"
    assert memory.count() == 9


def test_embedding_mismatch_is_a_clear_error_and_rebuild_fixes_it(tmp_path, memory):
    path = tmp_path / "memory"
    other = memory_at(path, dim=512)
    with pytest.raises(EmbeddingMismatch, match=r"run `sleuth index rebuild`") as info:
        other.find_similar_incidents("Xid 79")
    assert "dim\": 1024" in str(info.value) and "dim\": 512" in str(info.value)
    remote = Memory(MemoryConfig(path=path), embedding=OpenAICompatibleEmbedding("http://127.0.0.1:9/v1", "m"))
    with pytest.raises(EmbeddingMismatch, match="sleuth index rebuild"):
        remote.count()
    assert other.rebuild() == {"incidents": 8}
    assert memory_at(path, dim=512).find_similar_incidents("Xid 79 GPU", k=1)[0].id == "INC-101"
    with pytest.raises(EmbeddingMismatch):
        memory_at(path, dim=1024).count()  # now the 1024-dim function is the stranger


def test_an_older_memory_keeps_its_dimension_when_none_is_configured(tmp_path, corpus):
    path = tmp_path / "old"
    memory_at(path, dim=2048).add_records(corpus)  # built before the default became 1024
    reopened = memory_at(path)
    assert reopened.find_similar_incidents("Xid 79 GPU", k=1)[0].id == "INC-101"
    assert reopened.embedding.get_config()["dim"] == 2048
    books, _ = collect([RUNBOOKS], runbooks=True)
    fresh = memory_at(path)
    fresh.add_runbooks(books)  # a new collection of that memory is built the same way
    assert memory_at(path, dim=2048).find_runbooks("GPU Xid 79", k=1)[0].id == "gpu-xid-ecc"
    with pytest.raises(EmbeddingMismatch, match="sleuth index rebuild"):
        memory_at(path, dim=1024).count()  # a dimension given explicitly is held to
    assert memory_at(tmp_path / "new").embedding.get_config()["dim"] == 1024


def test_runbooks_collection(tmp_path, memory):
    books, _ = collect([RUNBOOKS], runbooks=True)
    summary = memory.add_runbooks(books)
    assert len(summary.added) == len(books)
    assert memory.add_runbooks(books).added == []
    found = memory.find_runbooks("dmesg shows Xid 79, GPU fell off the bus", k=2)
    assert found[0].id == "gpu-xid-ecc"
    found = memory.find_runbooks("one tenant's retry loop multiplies tokens, spend spike", category="traffic_surge")
    assert found[0].id == "token-cost-blowup"
    assert memory.count("incidents") == 8  # separate collections


def test_offline_embedding_is_deterministic_and_normalised():
    a, b = HashedNgramEmbedding(), HashedNgramEmbedding.build_from_config(HashedNgramEmbedding().get_config())
    texts = ["GPU Xid 79 on gpu-node-7", "", "checkout 500s"]
    va, vb = a(texts), b(texts)
    for x, y in zip(va, vb):
        assert x.shape == (1024,) and (x == y).all()
        assert abs(float((x * x).sum()) - 1.0) < 1e-5
    near, far = a(["GPU Xid 79 fell off the bus"])[0], a(["checkout payments flag"])[0]
    assert float(va[0] @ near) > float(va[0] @ far)


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_add_search_rebuild(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "corpus")
    runner = CliRunner()
    first = runner.invoke(index_app, ["add", "corpus"])
    assert first.exit_code == 0, first.output
    assert "8 added" in first.output and (tmp_path / ".sleuth" / "memory").is_dir()
    second = runner.invoke(index_app, ["add", "corpus", "--json"])
    assert json.loads(second.output)["added"] == [] and len(json.loads(second.output)["skipped"]) == 8
    books = runner.invoke(index_app, ["add", "--runbooks", str(RUNBOOKS)])
    assert books.exit_code == 0 and "runbooks in the memory" in books.output
    found = runner.invoke(index_app, ["search", "Xid 79 on llm-inference", "--k", "2", "--json"])
    payload = json.loads(found.output)
    assert [r["id"] for r in payload["results"]] == ["INC-101", "INC-102"]
    assert payload["suggestion"]["category"] == "infrastructure"
    assert payload["suggestion"]["mitigations"][0]["provenance"] == "worked in INC-101, INC-102"
    assert payload["runbooks"][0]["id"] == "gpu-xid-ecc"
    table = runner.invoke(index_app, ["search", "checkout 500 after deploy", "--service", "checkout"])
    assert table.exit_code == 0 and "INC-103" in table.output and "suggested root cause" in table.output
    mismatch = runner.invoke(index_app, ["search", "x", "--dim", "256"])
    assert mismatch.exit_code == 2 and "sleuth index rebuild" in mismatch.output
    rebuilt = runner.invoke(index_app, ["rebuild", "--dim", "256"])
    assert rebuilt.exit_code == 0 and "8 incidents" in rebuilt.output
    assert runner.invoke(index_app, ["search", "x", "--dim", "256"]).exit_code == 0


def test_cli_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(index_app, ["add", "nope"])
    assert missing.exit_code == 2 and "nope does not exist" in missing.output
    (tmp_path / "bad.md").write_text("---\ntitle: [\n---\n")
    bad = runner.invoke(index_app, ["add", "bad.md"])
    assert bad.exit_code == 2 and "malformed YAML front matter at line 2" in bad.output
    both = runner.invoke(index_app, ["search", "x", "--memory", "m", "--chroma-host", "127.0.0.1"])
    assert both.exit_code == 2 and "not both" in both.output
    minilm = runner.invoke(index_app, ["search", "x", "--embedding", "onnx-minilm"], env={"HOME": str(tmp_path)})
    assert minilm.exit_code == 2 and "never downloads" in minilm.output
