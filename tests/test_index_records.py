"""Parsing postmortems (Markdown, JSON, JSON lines, the labelled public corpus) and runbooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.errors import RecordError
from index.records import (
    RUNBOOK_SECTIONS,
    azure_category,
    collect,
    map_mitigation_label,
    parse_file,
    parse_runbook,
)
from tools.taxonomy import ACTIONS, CATEGORIES

SHARED = Path(__file__).resolve().parents[2] / "shared"
AZURE = SHARED / "corpora" / "postmortems-azure"
RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"

POSTMORTEM = """---
id: INC-2041
title: Checkout 500s after router 2.3 rollout
services: [checkout, router]
date: 2026-03-02
severity: SEV2
root_cause: code_change
mitigations:
  - action: rollback
    target: router
tags: [streaming]
---
# Checkout 500s after router 2.3 rollout

## Summary
Router 2.3 dropped the last streaming chunk; checkout returned HTTP 503.

## Impact
12% of checkouts failed for 40 minutes.

## Root cause
A serializer change in router 2.3 threw NullPointerException on empty chunks.

## Mitigation
Rolled back router to 2.2.

## Timeline
- 14:05 deploy
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_postmortem_fields_and_sections(tmp_path):
    (record,) = parse_file(write(tmp_path, "inc.md", POSTMORTEM))
    assert record.id == "INC-2041"
    assert record.services == ["checkout", "router"]
    assert record.date == "2026-03-02"
    assert record.severity == "SEV2"
    assert record.category == "code_change" and record.categories == ["code_change"]
    assert record.mitigations == ["rollback"]
    assert "target: router" in record.mitigation_text and "Rolled back router" in record.mitigation_text
    assert "NullPointerException" in record.root_cause_text
    assert record.impact.startswith("12% of checkouts")
    assert record.summary.startswith("Router 2.3")
    assert "Timeline" in record.sections
    assert record.timestamp() is not None


def test_markdown_root_cause_mapping_and_id_from_filename(tmp_path):
    text = """---
title: Pool exhausted
services: billing-db
date: 2025-11-02T10:15:00+01:00
root_cause: {category: capacity, details: pool of 20 too small}
mitigations: [scale_out, escalate]
---
Billing timed out.
"""
    (record,) = parse_file(write(tmp_path, "billing-pool.md", text))
    assert record.id == "billing-pool"
    assert record.services == ["billing-db"]
    assert record.date == "2025-11-02T09:15:00Z"
    assert record.category == "capacity"
    assert record.root_cause_text == "pool of 20 too small"
    assert record.summary == "Billing timed out."


def test_json_list_object_and_jsonl(tmp_path):
    items = [{"id": "A-1", "title": "one", "services": ["api"], "category": "dependency", "mitigations": ["failover"],
              "root_cause_text": "upstream down"},
             {"title": "two", "services": ["api"], "root_cause": "config_change"}]
    records = parse_file(write(tmp_path, "many.json", json.dumps(items)))
    assert [r.id for r in records] == ["A-1", "many-2"]
    assert records[1].category == "config_change"
    (single,) = parse_file(write(tmp_path, "one.json", json.dumps(items[0])))
    assert single.mitigations == ["failover"]
    lines = "\n".join(json.dumps(i) for i in items) + "\n\n"
    records = parse_file(write(tmp_path, "many.jsonl", lines))
    assert [r.id for r in records] == ["A-1", "many-2"]


AZURE_SAMPLE = {
    "azure-1": {
        "title": "Storage - West Europe", "time": "12/23/2016", "summary": "Storage unavailable",
        "details": "full text", "service_name": ["Storage"], "impact symptom": ["availability"],
        "manifestation": {"business kpi": ["failure notification"]}, "duration": 90, "operation": ["deployment"],
        "root cause": {"label": [{"layer-1": "internal causes", "layer-2": "software bugs", "layer-3": "config"},
                                 {"layer-1": "external causes", "layer-2": "excessive flow"}],
                       "details": "a configuration change"},
        "mitigation": {"label": ["roll back configuration change", "self heal"], "details": "rolled back",
                       "troubleshooting": {"1": "found it", "2": "fixed it"}},
        "human error": True,
    },
    "azure-2": {
        "title": "VMs - East US", "time": "not a date", "summary": "VMs down", "details": "",
        "service name": ["Virtual Machines"], "impact symptom": [], "manifestation": [], "operation": [],
        "root cause": {"label": [{"layer-1": "unknown"}], "details": ""},
        "mitigation": {"label": ["deploy a platform hotfix"], "details": ""},
    },
}


def test_labelled_corpus_adapter(tmp_path):
    records = parse_file(write(tmp_path, "corpus.json", json.dumps(AZURE_SAMPLE)))
    first, second = records
    assert first.category == "config_change" and first.categories == ["config_change", "traffic_surge"]
    assert first.mitigations == ["config_revert", "monitor"]
    assert first.date == "2016-12-23"
    assert first.services == ["Storage"]
    assert "failure notification" in first.impact and "90 min" in first.impact
    assert "human-error" in first.tags
    assert second.category == "unknown" and second.services == ["Virtual Machines"] and second.date is None
    assert second.mitigations == []  # a hotfix has no taxonomy action


@pytest.mark.parametrize("label,expected", [
    ({"layer-1": "internal causes", "layer-2": "software bugs", "layer-3": "config"}, "config_change"),
    ({"layer-1": "internal causes", "layer-2": "software bugs", "layer-3": "code change"}, "code_change"),
    ({"layer-1": "internal causes", "layer-2": "software bugs"}, "code_change"),
    ({"layer-1": "internal causes", "layer-2": "software bugs", "layer-3": "timing bug"}, "code_change"),
    ({"layer-1": "internal causes", "layer-2": "softwares bugs", "layer-3": "exception handling"}, "code_change"),
    ({"layer-1": "internal causes", "layer-2": "software bugs", "layer-3": "payload flood"}, "traffic_surge"),
    ({"layer-1": "external causes", "layer-2": "excessive flow"}, "traffic_surge"),
    ({"layer-1": "external causes", "layer-2": "hardware failures", "layer-3": "power outage"}, "infrastructure"),
    ({"layer-1": "external causes", "layer-2": "insufficient resource", "layer-3": "CPU"}, "capacity"),
    ({"layer-1": "external causes", "layer-2": "third-party failures"}, "dependency"),
    ({"layer-1": "external causes", "layer-2": "component removal"}, "operation_error"),
    ({"layer-1": "unknown"}, "unknown"),
    ({"layer-1": "external causes", "layer-2": "others"}, "unknown"),
])
def test_azure_label_mapping(label, expected):
    assert azure_category(label) == expected


@pytest.mark.parametrize("label,action", [
    ("roll back configuration change", "config_revert"), ("update configuration", "config_revert"),
    ("rollback deployment", "rollback"), ("reroute network traffic", "failover"),
    ("perform a failover to a secondary database", "failover"), ("scaled out backend instances", "scale_out"),
    ("restart service", "restart"), ("withdrew the devices", "drain_node"), ("reduce load", "rate_limit"),
    ("block request", "block_client"), ("pause maintenance", "disable_feature"), ("self-healed.", "monitor"),
    ("deploy a platform hotfix", None), ("restore power", None),
])
def test_mitigation_keyword_map(label, action):
    assert map_mitigation_label(label) == action
    assert action is None or action in ACTIONS


def test_real_azure_corpus():
    if not AZURE.is_dir():
        pytest.skip(f"the shared corpus is not at {AZURE} (../shared is absent in this checkout)")
    records, skipped = collect([AZURE])
    assert [Path(s).name for s, _ in skipped] == ["README.md"]
    assert len({r.id for r in records}) == 242
    assert all(set(r.categories) <= set(CATEGORIES) for r in records)
    assert all(set(r.mitigations) <= set(ACTIONS) for r in records)
    assert sum(1 for r in records if r.category is None) <= 1
    by_id = {r.id: r for r in records}
    assert by_id["azure-20161223-1"].category == "code_change"  # software bugs, no layer-3
    assert sum(1 for r in records if len(r.categories) > 1) >= 20
    assert all(r.services for r in records)


# --- bad input ------------------------------------------------------------------------------------


def error_of(path: Path) -> str:
    with pytest.raises(RecordError) as info:
        parse_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_malformed_front_matter_names_file_and_line(tmp_path):
    text = "---\ntitle: x\nservices: [a, b\ndate: 2024-01-01\n---\nbody\n"
    message = error_of(write(tmp_path, "bad.md", text))
    assert "malformed YAML front matter at line" in message


def test_unclosed_front_matter(tmp_path):
    assert "never closed" in error_of(write(tmp_path, "open.md", "---\ntitle: x\n"))


def test_not_a_postmortem(tmp_path):
    assert "does not look like a postmortem" in error_of(write(tmp_path, "notes.md", "# Shopping list\n- eggs\n"))
    assert "does not look like a postmortem" in error_of(write(tmp_path, "bare.md", "---\ntitle: just a title\n---\n"))
    runbook = "---\ntitle: GPU\nsignals: [xid]\n---\n## Check\nx\n"
    assert "--runbooks" in error_of(write(tmp_path, "rb.md", runbook))


def test_empty_files(tmp_path):
    assert "is empty" in error_of(write(tmp_path, "empty.md", ""))
    assert "is empty" in error_of(write(tmp_path, "empty.json", "  \n"))
    assert "is empty" in error_of(write(tmp_path, "empty.jsonl", "\n"))


def test_unknown_category_and_action_suggest_and_give_the_line(tmp_path):
    text = "---\ntitle: x\nservices: [a]\ncategory: capcity\n---\nbody\n"
    message = error_of(write(tmp_path, "cat.md", text))
    assert "line 4" in message and "did you mean 'capacity'" in message
    text = "---\ntitle: x\nservices: [a]\nmitigations: [rollbak]\n---\nbody\n"
    message = error_of(write(tmp_path, "act.md", text))
    assert "line 4" in message and "did you mean 'rollback'" in message
    text = "---\ntitle: x\nservice: [a]\nsevrity: SEV1\n---\nbody\n"
    assert "unknown front-matter key 'sevrity'" in error_of(write(tmp_path, "key.md", text))


def test_bad_json_gives_the_line(tmp_path):
    assert "line 2" in error_of(write(tmp_path, "bad.jsonl", '{"title": "a"}\n{"title": \n'))
    assert "line 3" in error_of(write(tmp_path, "bad.json", '[\n{"title": "a"},\n{"title" "b"}\n]'))
    assert "missing 'title'" in error_of(write(tmp_path, "notitle.json", '{"services": ["a"]}'))
    assert "unsupported file type" in error_of(write(tmp_path, "x.txt", "hello"))


def test_empty_corpus_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="empty corpus"):
        collect([tmp_path / "empty"])
    with pytest.raises(RecordError, match="does not exist"):
        collect([tmp_path / "nope"])
    (tmp_path / "bad").mkdir()
    write(tmp_path / "bad", "x.md", "no front matter")
    with pytest.raises(RecordError, match="x.md has no YAML front matter"):
        collect([tmp_path / "bad"])  # one bad file: its own error
    write(tmp_path / "bad", "y.json", "[]")
    with pytest.raises(RecordError, match="no usable postmortems under .*x.md"):
        collect([tmp_path / "bad"])


def test_folder_collects_good_files_and_reports_bad_ones(tmp_path):
    write(tmp_path, "good.md", POSTMORTEM)
    write(tmp_path, "bad.md", "---\ntitle: [\n---\n")
    write(tmp_path, "README.md", "# about")
    records, skipped = collect([tmp_path])
    assert [r.id for r in records] == ["INC-2041"]
    reasons = dict((Path(s).name, why) for s, why in skipped)
    assert "malformed YAML" in reasons["bad.md"] and "README" in reasons["README.md"]


# --- runbooks -----------------------------------------------------------------------------------


def test_shipped_runbooks_are_complete():
    books, skipped = collect([RUNBOOKS], runbooks=True)
    assert [Path(s).name for s, _ in skipped] == ["README.md"]
    assert len(books) >= 14
    covered = set()
    for book in books:
        assert list(book.sections)[:5] == list(RUNBOOK_SECTIONS), book.source
        assert all(book.sections[s].strip() for s in RUNBOOK_SECTIONS), book.source
        assert book.categories and book.signals, book.source
        covered.update(book.categories)
        remediation = book.sections["Remediate"]
        assert any(f"`{a}`" in remediation for a in ACTIONS), f"{book.source}: Remediate names no taxonomy action"
    assert set(CATEGORIES) - {"unknown"} <= covered
    names = {b.id for b in books}
    for expected in ("model-regression", "gpu-xid-ecc", "kv-cache-exhaustion", "token-cost-blowup",
                     "stale-retrieval-index", "upstream-llm-rate-limit", "safety-filter-misfire", "bad-deploy",
                     "config-flag-change", "db-connection-pool", "node-network-failure", "traffic-surge",
                     "dependency-outage", "failed-manual-operation"):
        assert expected in names


def test_bad_runbook(tmp_path):
    with pytest.raises(RecordError, match="no '## ' sections"):
        parse_runbook(write(tmp_path, "r.md", "---\ntitle: x\n---\ntext\n"))
    with pytest.raises(RecordError, match="line 3.*did you mean 'capacity'"):
        parse_runbook(write(tmp_path, "r2.md", "---\ntitle: x\ncategories: [capasity]\n---\n## Check\nx\n"))
