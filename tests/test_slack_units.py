"""The Slack adapter's pieces without Slack: command parsing, Block Kit within Slack's limits,
the manifest against Slack's schema, and the layering rule (the core never imports slack_bolt)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.slack import blocks as B
from bot.slack.commands import UsageError, parse
from bot.incidents.store import Incident, TimelineEntry
from bot.incidents.reports import draft_rollup, draft_summary, incident_record
from tests.slack_standins import check_blocks, check_view

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"
KNOWN = {"checkout", "web-frontend", "payments-db"}


# --- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("", {"name": "diagnose", "text": ""}),
    ("checkout is returning 500s", {"name": "diagnose", "service": "checkout", "text": "checkout is returning 500s"}),
    ("checkout 30m errors on confirm", {"name": "diagnose", "service": "checkout", "window": "30m",
                                        "text": "checkout errors on confirm"}),
    ("checkout", {"name": "diagnose", "service": "checkout", "text": ""}),
    ("checkout 2h", {"name": "diagnose", "service": "checkout", "window": "2h", "text": ""}),
    ("2h latency is up", {"name": "diagnose", "service": None, "window": "2h", "text": "latency is up"}),
    ("errors everywhere service=web-frontend at=2026-03-10T14:30:00Z",
     {"name": "diagnose", "service": "web-frontend", "at": "2026-03-10T14:30:00Z", "text": "errors everywhere"}),
    ("start Checkout down sev2", {"name": "start", "text": "Checkout down", "severity": 2}),
    ("start Checkout down", {"name": "start", "text": "Checkout down", "severity": None}),
    ("sev 1", {"name": "sev", "severity": 1}),
    ("sev SEV3", {"name": "sev", "severity": 3}),
    ("commander <@U123ABC|alice>", {"name": "commander", "user": "U123ABC"}),
    ("commander <@W9ZZ>", {"name": "commander", "user": "W9ZZ"}),
    ("status Mitigating", {"name": "status", "status": "mitigating"}),
    ("timeline", {"name": "timeline"}),
    ("rollup", {"name": "rollup", "all": False, "post": False}),
    ("rollup all --post", {"name": "rollup", "all": True, "post": True}),
    ("resolve rolled back to v3.2.0", {"name": "resolve", "text": "rolled back to v3.2.0"}),
    ("help", {"name": "help"}),
])
def test_commands_parse(text, expected):
    command = parse(text, known_services=KNOWN)
    for key, value in expected.items():
        assert getattr(command, key) == value, (text, key)


@pytest.mark.parametrize("text, says", [
    ("sev 9", "from 1 (worst) to 4"),
    ("sev", "from 1 (worst) to 4"),
    ("commander bob", "@mention"),
    ("status done", "investigating, identified"),
    ("rollup everything", "only `all` and `--post`"),
    ("timeline please", "takes nothing"),
    ("start", "needs a title"),
    ("checkout 3x errors service=bad!name", "not a service name"),
    ("errors at=yesterday", "ISO-8601"),
])
def test_malformed_commands_end_in_one_sentence(text, says):
    with pytest.raises(UsageError) as caught:
        parse(text, known_services=KNOWN)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message and not message.rstrip("`").endswith(".")
    assert message.replace("e.g. ", "").replace(" . ", "").count(". ") == 0


# --- Block Kit --------------------------------------------------------------------------------


def _diagnosis(n_hypotheses: int = 3, text: str = "x", evidence: int = 3) -> dict:
    ev = [{"id": f"m{i}", "source": "metrics", "query": f'rate(x{{a="{i}"}}[5m]) `tick` <&>' + text,
           "summary": f"signal {i} rose " + text, "onset": "2026-03-10T14:06:00Z", "score": 1.0,
           "link": f"http://prom:9090/graph?g0.expr=x&a=<{i}>|y", "component": "checkout", "details": {}}
          for i in range(evidence)]
    hyps = [{"rank": i + 1, "category": "code_change", "component": f"svc-{i}", "statement": "because " + text,
             "status": "supported" if i == 0 else ("refuted" if i % 3 == 2 else "proposed"),
             "confidence": 0.9 / (i + 1), "evidence": [e["id"] for e in ev], "why_lower": text if i else ""}
            for i in range(n_hypotheses)]
    mits = [{"action": "rollback", "target": f"svc-{i} to v1 " + text, "rationale": text, "risk": text,
             "verify": text, "requires_approval": i % 2 == 0, "evidence": ["m0"], "provenance": text, "id": f"m{i + 1}"}
            for i in range(6)]
    return {"incident": {"title": "checkout 500s " + text, "service": "checkout", "onset": "2026-03-10T14:06:00Z",
                         "knock_on": [{"component": "web-frontend", "after": "checkout"}]},
            "window": {"start": "2026-03-10T13:35:00Z", "end": "2026-03-10T14:35:00Z"},
            "evidence": ev, "hypotheses": hyps, "mitigations": mits,
            "similar_incidents": [{"id": f"inc-{i}", "title": text, "similarity": 0.5, "root_cause": text,
                                   "mitigation": text} for i in range(5)],
            "sources": {"metrics": {"status": "ok"}, "logs": {"status": "error", "reason": text}},
            "timings": {"total_ms": 1234.0}, "model": {"status": "not_configured"}}


def test_diagnosis_message_shows_hypotheses_evidence_and_buttons():
    diagnosis = _diagnosis()
    pending = [m for m in diagnosis["mitigations"] if m["requires_approval"]]
    text, blocks = B.diagnosis_message(diagnosis, thread_id="T:C:1.2", pending=pending, charts=2)
    assert check_blocks(blocks) == []
    rendered = json.dumps(blocks)
    assert "confidence *90%*" in rendered
    assert "`rate(x{a=\\\"0\\\"}[5m] 'tick' &lt;&amp;&gt;" in rendered.replace(")", "")  # escaped, no backtick
    assert "http://prom:9090/graph?g0.expr=x&amp;a=%3C0%3E%7Cy|open" in rendered
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [b["block_id"] for b in actions] == [f"decide:{m['id']}" for m in pending]
    value = json.loads(actions[0]["elements"][0]["value"])
    assert value == {"thread": "T:C:1.2", "m": pending[0]["id"]}
    assert "no approval needed" in rendered
    assert text.startswith("Diagnosis: code change in svc-0")


def test_the_models_reading_and_what_sleuth_removed_are_shown_escaped():
    """A model's reading reaches Slack as checked: marked unverified, with what Sleuth removed from
    it and the data that read like instructions up front; its text is shown as text, never markup."""
    diagnosis = _diagnosis()
    diagnosis["model"] = {"status": "ok", "suspicious_data": [{"where": "logs of checkout", "reasons": ["ignore"]}]}
    diagnosis["narrative"] = {
        "summary": "<!channel> the *deploy* broke checkout", "unverified": True,
        "next_steps": ["compare <@U123> pods"], "rejected_claims": ["dependency on payments: no evidence"],
        "flags": [{"kind": "action_claim", "text": "approved"}, {"kind": "command_withheld", "text": "rm"}]}
    _, blocks = B.diagnosis_message(diagnosis, thread_id="T:C:1.2", pending=[])
    assert check_blocks(blocks) == []
    rendered = json.dumps(blocks)
    assert "Model's reading (unverified: it cites no evidence)" in rendered
    assert "&lt;!channel&gt;" in rendered and "<!channel>" not in rendered and "&lt;@U123&gt;" in rendered
    assert "Model claims not accepted (1): dependency on payments" in rendered
    warnings = [b for b in blocks if b["type"] == "context" and ":warning: Sleuth removed" in json.dumps(b)]
    assert warnings and "1 claim(s) of an approval" in json.dumps(warnings) and "1 destructive command(s)" in json.dumps(warnings)
    assert "reads like instructions to the model (treated as data): logs of checkout" in rendered
    # A message with no model says nothing of one.
    assert "Model's reading" not in json.dumps(B.diagnosis_message(_diagnosis(), thread_id="T:C:1.2", pending=[])[1])


def test_a_huge_diagnosis_is_cut_to_slack_limits():
    diagnosis = _diagnosis(n_hypotheses=60, text="y" * 9000, evidence=30)
    pending = diagnosis["mitigations"]
    text, blocks = B.diagnosis_message(diagnosis, thread_id="T:C:1.2", pending=pending, charts=6)
    assert check_blocks(blocks) == []
    assert len(blocks) <= 50 and len(text) <= 3000
    assert blocks[0]["type"] == "header"
    assert "Diagnosis" in blocks[0]["text"]["text"]
    assert any(b["type"] == "actions" for b in blocks), "the decisions survive the cut"


def test_a_decision_replaces_the_buttons():
    diagnosis = _diagnosis()
    pending = [m for m in diagnosis["mitigations"] if m["requires_approval"]]
    _, blocks = B.diagnosis_message(diagnosis, thread_id="T:C:1.2", pending=pending)
    decision = {"id": "m1", "approved": True, "by": "U1", "at": "2026-03-10T14:40:00Z"}
    updated = B.resolve_decision_in_message(blocks, "m1", decision)
    assert not any(b.get("block_id") == "decide:m1" for b in updated)
    assert any(b.get("block_id") == "decide:m3" for b in updated)
    assert "Approved by <@U1>" in json.dumps(updated)
    assert check_blocks(updated) == []


def _incident(**kw) -> Incident:
    base = dict(id=7, team="T1", channel="C1", title="Checkout 500s", severity=2, commander="UA", opened_by="UA",
                opened_at=1773151000.0, updated_at=1773152000.0, diagnosis=_diagnosis(), service="checkout")
    base.update(kw)
    return Incident(**base)


def test_the_timeline_keeps_the_newest_entries_within_limits():
    entries = [TimelineEntry(i, 7, 1773151000.0 + i, "manual", f"entry {i} <@U1> & " + "z" * 300, "U2",
                             "https://x.slack.com/archives/C1/p1", f"k{i}") for i in range(600)]
    text, blocks = B.timeline_message(_incident(), entries)
    assert check_blocks(blocks) == []
    rendered = json.dumps(blocks)
    assert "entry 599 <@U1> &amp;" in rendered
    assert "earlier entries not shown" in rendered
    assert "(600 entries)" in text


def test_rollup_and_summary_are_drafted_from_the_ledger():
    incident = _incident()
    decisions = [{"id": "m1", "approved": True, "by": "UA", "action": "rollback", "target": "svc-0 to v1",
                  "verify": "errors return to baseline", "at": "2026-03-10T14:40:00Z"},
                 {"id": "m3", "approved": False, "by": "UA", "action": "restart", "target": "svc-2", "verify": ""}]
    pending = [{"id": "m5", "action": "scale_out", "target": "svc-4"}]
    rollup = draft_rollup(incident, pending=pending, decisions=decisions, now=1773151000.0 + 3700)
    assert rollup.severity == "SEV2" and rollup.duration == "1h 01m"
    assert rollup.hypothesis.startswith("code change in svc-0 (supported, confidence 90%)")
    assert rollup.approved == ["rollback → svc-0 to v1"] and rollup.rejected == ["restart → svc-2"]
    assert any("m5" in q for q in rollup.open_questions)
    assert any("verify: errors return to baseline" in s for s in rollup.next_steps)
    _, blocks = B.rollup_message([rollup], everything=False)
    assert check_blocks(blocks) == []

    timeline = [TimelineEntry(1, 7, 1773151000.0, "opened", "Incident opened", "UA")]
    resolved = _incident(status="resolved", resolved_at=1773151000.0 + 5400, resolution="rolled back")
    summary = draft_summary(resolved, timeline=timeline, pending=pending, decisions=decisions)
    assert summary.duration == "1h 30m" and summary.category == "code_change" and summary.action == "rollback"
    assert "rollback → svc-0 to v1" in summary.fix and "rolled back" in summary.fix
    _, blocks = B.summary_message(summary, incident_id=7)
    assert check_blocks(blocks) == []
    assert any(b["type"] == "actions" and b["elements"][0]["action_id"] == B.ADD_TO_MEMORY for b in blocks)
    record = incident_record(resolved, summary=summary, category="code_change", root_cause="a bad release",
                             action="rollback", mitigation="rolled back", source="slack:T1/C1/1.2")
    assert record.id == "slack-t1-c1-7" and record.category == "code_change" and record.mitigations == ["rollback"]
    assert record.services == ["checkout", "svc-0"] and record.severity == "SEV2"


def test_the_memory_modal_fits_slack():
    view = B.memory_modal(incident_id=3, title="t" * 4000, category="code_change", root_cause="r" * 5000,
                          action="rollback", mitigation="m")
    assert check_view(view) == []
    values = {"category": {"value": {"type": "static_select", "selected_option": {"value": "dependency"}}},
              "root_cause": {"value": {"type": "plain_text_input", "value": "db"}}}
    assert B.modal_values({"state": {"values": values}}) == {"category": "dependency", "root_cause": "db"}


# --- the manifest -----------------------------------------------------------------------------


def test_manifest_is_valid_against_slacks_schema():
    if not SCHEMA.is_file():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA} (../shared is absent in this checkout)")
    import jsonschema

    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_manifest_has_what_sleuth_uses():
    from bot.config import SlackConfig

    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == SlackConfig().command and command["usage_hint"] and command["should_escape"]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "reaction_added", "reaction_removed", "pin_added"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "app_mentions:read", "channels:history", "reactions:read", "pins:read",
            "pins:write", "files:write", "usergroups:read"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


# --- layering ---------------------------------------------------------------------------------


def test_the_core_never_imports_slack_bolt():
    code = ("import sys, bot.investigate, bot.agent, bot.cli, tools.analysis, tools.charts, index.store; "
            "bad = sorted(m for m in sys.modules if m.startswith(('slack_bolt', 'slack_sdk'))); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for folder in ("tools", "index"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "slack_bolt" not in path.read_text(), path
    for path in (ROOT / "bot").glob("*.py"):
        assert "import slack_bolt" not in path.read_text() and "from slack_bolt" not in path.read_text(), path


def test_flows_do_not_import_bolt():
    for name in ("flows", "blocks", "commands"):
        text = (ROOT / "bot" / "slack" / f"{name}.py").read_text()
        assert "import slack_bolt" not in text and "from slack_bolt" not in text, name
    # The incident domain knows no chat adapter at all (pyproject's import contracts check it too).
    for path in (ROOT / "bot" / "incidents").glob("*.py"):
        text = path.read_text()
        assert "slack" not in "".join(line for line in text.splitlines() if line.startswith(("import", "from"))), path


def test_what_limited_the_investigation_is_said_under_the_facts():
    diagnosis = _diagnosis()
    diagnosis["limits"] = ["12 min of metric history: baseline shortened to 6 min, onset searched in the last 6 min",
                           "no day-earlier comparison <b>"]
    _, blocks = B.diagnosis_message(diagnosis, thread_id="T:C:1.2", pending=[])
    assert check_blocks(blocks) == []
    contexts = [b for b in blocks if b["type"] == "context"]
    said = json.dumps(contexts[0])
    assert ":warning: 12 min of metric history" in said and "&lt;b&gt;" in said
    # Right under the facts, before any hypothesis: a thin basis is read first.
    assert blocks.index(contexts[0]) == 2
