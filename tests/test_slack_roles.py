"""Who may act on an incident (slack.roles), rejecting with a reason, and resolve against running
work: through the real Bolt app in HTTP mode, signed requests, and the Web API stand-in."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.config import ConfigError, SlackConfig, load_config
from bot.slack import blocks as B
from bot.incidents import roles as R
from bot.incidents.store import Incident
from tests.slack_standins import SlackHarness, SlackWebStandIn

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
TEAM = "T0SLEUTH"


@pytest.fixture
def web():
    with SlackWebStandIn() as standin:
        yield standin


def texts(blocks: list | None) -> str:
    return json.dumps(blocks or [])


def plan_of(web: SlackWebStandIn, channel: str):
    return web.wait_for(lambda: next((m for m in web.bot_messages(channel) if m.text.startswith("Investigating")),
                                     None), timeout=30, what=f"the plan in {channel}")


def diagnosis_of(web: SlackWebStandIn, channel: str, thread_ts: str):
    return web.wait_for(lambda: next((m for m in web.bot_messages(channel, thread_ts)
                                      if m.text.startswith("Diagnosis")), None), timeout=60, what="the diagnosis")


def decision_value(message) -> str:
    for block in message.blocks or []:
        if block["type"] == "actions" and block.get("block_id", "").startswith("decide:"):
            return block["elements"][0]["value"]
    raise AssertionError("no mitigation awaits a decision in this message")


def pinned_timelines(web: SlackWebStandIn, channel: str) -> list:
    return [m for m in web.bot_messages(channel) if m.text.startswith("Timeline") and m.pinned]


def told(web: SlackWebStandIn, user: str, channel: str, count: int, what: str) -> list[str]:
    """The ``count`` first ephemeral messages ``user`` got in ``channel`` (waiting for them)."""
    found = web.wait_for(lambda: (lambda e: e if len(e) >= count else None)(web.ephemerals_for(user, channel)),
                         what=what)
    return [e["text"] for e in found]


def one_sentence(text: str) -> bool:
    return "\n" not in text and text.count(". ") == 0 and text.endswith(".")


# --- the policy, as plain data ----------------------------------------------------------------


def _incident(**kw) -> Incident:
    return Incident(**{"id": 1, "team": TEAM, "channel": "C1", "title": "Checkout 500s", "commander": ALICE,
                       "opened_by": ALICE, **kw})


def test_the_default_policy():
    open_team = SlackConfig()  # no approvers configured
    with_approvers = SlackConfig(approvers=[DAVE, "S0ONCALL"])
    incident = _incident()
    check = R.check
    # The commander changes severity, status, commander and resolves; others do not.
    for action in ("severity", "status", "commander", "resolve"):
        assert check(open_team, action, user=ALICE, incident=incident, approvers=set()).allowed
        refused = check(open_team, action, user=BOB, incident=incident, approvers=set())
        assert not refused.allowed and f"<@{ALICE}>" in refused.refusal and one_sentence(refused.refusal)
        assert check(with_approvers, action, user=DAVE, incident=incident, approvers={DAVE, CAROL}).allowed
        assert check(with_approvers, action, user=CAROL, incident=incident, approvers={DAVE, CAROL}).allowed
    # Anyone may take command while nobody has it.
    assert check(with_approvers, "commander", user=BOB, incident=_incident(commander=None), approvers={DAVE}).allowed
    # Deciding: with no approvers, the commander (opener, or handed over to); with approvers, they decide
    # and a commander counts only when an approver appointed them.
    assert check(open_team, "decide", user=ALICE, incident=incident, approvers=set(), appointed_by=ALICE).allowed
    assert not check(open_team, "decide", user=BOB, incident=incident, approvers=set()).allowed
    assert not check(with_approvers, "decide", user=ALICE, incident=incident, approvers={DAVE}, appointed_by=ALICE).allowed
    bob_took_it = _incident(commander=BOB)
    assert not check(with_approvers, "decide", user=BOB, incident=bob_took_it, approvers={DAVE}, appointed_by=BOB).allowed
    assert not check(with_approvers, "decide", user=BOB, incident=bob_took_it, approvers={DAVE},
                     appointed_by=ALICE).allowed, "handed over by a non-approver: no approval rights"
    assert check(with_approvers, "decide", user=BOB, incident=bob_took_it, approvers={DAVE}, appointed_by=DAVE).allowed
    refused = check(with_approvers, "decide", user=ALICE, incident=incident, approvers={DAVE}, appointed_by=ALICE)
    assert "<@U0DAVE>" in refused.refusal and "<!subteam^S0ONCALL>" in refused.refusal
    assert one_sentence(refused.refusal), refused.refusal
    # "anyone" opens an action up, explicitly; never approval.
    loose = SlackConfig.model_validate({"roles": {"severity": ["anyone"]}})
    assert check(loose, "severity", user=BOB, incident=incident, approvers=set()).allowed
    assert not check(loose, "status", user=BOB, incident=incident, approvers=set()).allowed


@pytest.mark.parametrize("yaml, says", [
    ("slack:\n  roles:\n    decide: [anyone]\n", "approval comes from people you name"),
    ("slack:\n  roles:\n    severity: [comander]\n", "did you mean 'commander'"),
    ("slack:\n  roles:\n    resolve: []\n", "name at least one"),
    ("slack:\n  roles:\n    decide: [approvers]\n", "nobody could approve"),
    ("slack:\n  roles:\n    approve: [approvers]\n", "unknown key 'slack.roles.approve'"),
    ("slack:\n  approvers: [alice]\n", "not a Slack user id"),
])
def test_a_bad_policy_is_one_sentence(tmp_path, yaml, says):
    path = tmp_path / "sleuth.yml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_follow_up_intent_after_a_rejection():
    from bot.followup import awaiting_reason, classify, is_reason as _is_reason

    assert classify("we rolled back 10 minutes ago, is it recovering?", [])[0] == "recovery"
    assert classify("we can't roll back: the payments migration already ran", [])[0] == "other"
    assert classify("don't roll back, the schema changed", [])[0] == "other"
    rejected = {"id": "fix1", "approved": False, "ts": 1000.0, "at": "1970-01-01T00:16:40Z", "reason": ""}
    state = {"decisions": [rejected], "messages": [{"role": "user", "text": "hi", "at": "1970-01-01T00:10:00Z"}]}
    assert awaiting_reason(state, 1010.0) is rejected
    assert awaiting_reason(state, 1000.0 + 3600) is None, "an hour later, a statement is no reason"
    later = dict(state, messages=state["messages"] + [{"role": "user", "text": "x", "at": "1970-01-01T00:20:00Z"}])
    assert awaiting_reason(later, 1300.0) is None, "somebody wrote since"
    assert awaiting_reason({"decisions": [dict(rejected, approved=True)], "messages": []}, 1010.0) is None
    # Where writers are known (Slack), only whoever rejected it gives the reason; others' messages
    # neither count as it nor stop its author from giving it.
    by_u2 = dict(rejected, by="U2")
    known = {"decisions": [by_u2], "messages": [{"role": "user", "text": "x", "at": "1970-01-01T00:20:00Z",
                                                 "by": "U3"}]}
    assert awaiting_reason(known, 1010.0, by="U3") is None
    assert awaiting_reason(known, 1010.0, by="U2") is by_u2
    assert _is_reason("rolling back would drop the new columns", "other")
    assert _is_reason("because the deploy changed the schema", "changes")
    assert not _is_reason("is it recovering?", "recovery")
    assert not _is_reason("check payments", "service")


# --- through Slack ----------------------------------------------------------------------------


def test_a_self_appointed_commander_cannot_approve(tmp_path, web):
    h = SlackHarness(tmp_path, web, approvers=[DAVE])
    try:
        h.command("checkout is returning 500s for many users", channel="C1", user=ALICE)
        plan = plan_of(web, "C1")
        diagnosis = diagnosis_of(web, "C1", plan.ts)
        value = decision_value(diagnosis)
        incident = h.store.active_incident(team=TEAM, channel="C1")
        assert incident.commander == ALICE  # she opened it

        # Bob cannot make himself commander while Alice commands.
        h.command(f"commander <@{BOB}>", channel="C1", user=BOB)
        refusal = told(web, BOB, "C1", 1, "the refusal to Bob")[0]
        assert one_sentence(refusal) and f"<@{ALICE}>" in refusal and f"<@{DAVE}>" in refusal
        assert "commander @you" in refusal

        # Alice commands because she opened it, not because an approver appointed her: no approval.
        h.click(B.APPROVE, value, user=ALICE, channel="C1", message=diagnosis)
        refusal = told(web, ALICE, "C1", 1, "the refusal to Alice")[0]
        assert refusal.startswith("Only an approver (<@U0DAVE>)") and one_sentence(refusal), refusal
        h.click(B.REJECT, value, user=ALICE, channel="C1", message=diagnosis)
        told(web, ALICE, "C1", 2, "the second refusal to Alice")
        assert web.views == [], "no reason form for someone who may not reject"

        # An incident with no commander (as an alert would open it): Bob takes command, which anyone
        # may then, but taking command carries no approval.
        h.store.update(incident.id, commander=None)
        h.command(f"commander <@{BOB}>", channel="C1", user=BOB)
        web.wait_for(lambda: h.store.get(incident.id).commander == BOB, what="Bob taking command")
        h.click(B.APPROVE, value, user=BOB, channel="C1", message=diagnosis)
        refusal = told(web, BOB, "C1", 2, "the refusal to Bob as commander")[1]
        assert "ask an approver to decide, or to appoint you commander" in refusal and one_sentence(refusal)
        time.sleep(0.3)
        assert not any(e.kind == "decision" for e in h.store.timeline(incident.id))
        assert all("approved" not in m.text for m in web.bot_messages("C1", plan.ts))

        # The approver decides; the rollup names the commander and the approvers.
        h.click(B.APPROVE, value, user=DAVE, channel="C1", message=diagnosis)
        web.wait_for(lambda: any("approved" in m.text for m in web.bot_messages("C1", plan.ts)), what="the approval")
        decisions = [e for e in h.store.timeline(incident.id) if e.kind == "decision"]
        assert len(decisions) == 1 and decisions[0].author == DAVE
        rollup = texts(h.command("rollup", channel="C1", user=CAROL).json()["blocks"])
        assert f"commander <@{BOB}>" in rollup and "*Approvers:* <@U0DAVE>" in rollup
        assert web.rejected == [], web.rejected
    finally:
        h.close()


def test_only_the_commander_and_approvers_change_the_incident(tmp_path, web):
    web.usergroups["S0ONCALL"] = [CAROL]
    h = SlackHarness(tmp_path, web, approvers=["S0ONCALL", DAVE], memory=False)
    try:
        h.command("start Checkout errors sev2", channel="C1", user=ALICE)
        web.wait_for(lambda: pinned_timelines(web, "C1"), what="the pinned timeline")
        incident = h.store.active_incident(team=TEAM, channel="C1")
        before = len(h.store.timeline(incident.id))

        # Bob is neither commander nor approver: each is refused, privately, naming who may.
        attempts = ("sev 1", "status mitigating", f"commander <@{BOB}>", "resolve it is fine", "status resolved")
        for text in attempts:
            assert h.command(text, channel="C1", user=BOB).status == 200
        refusals = told(web, BOB, "C1", len(attempts), "five refusals")
        for refusal in refusals:
            assert refusal.startswith("Only the incident commander (<@U0ALICE>) or an approver (<!subteam^S0ONCALL>, "
                                      "<@U0DAVE>) may "), refusal
            assert one_sentence(refusal), refusal
        # (the five ran concurrently: their refusals may come in any order)
        assert sorted(r.split(" may ")[1].split(";")[0] for r in refusals) == [
            "change the severity", "change the status", "hand over command", "resolve the incident",
            "resolve the incident"]
        time.sleep(0.3)
        now = h.store.get(incident.id)
        assert (now.severity, now.status, now.commander) == (2, "investigating", ALICE)
        assert len(h.store.timeline(incident.id)) == before
        assert not [m for m in web.bot_messages("C1") if "<@U0BOB> set" in m.text]

        # The commander may; an approver (named, or in the group) may.
        h.command("sev 1", channel="C1", user=ALICE)
        web.wait_for(lambda: h.store.get(incident.id).severity == 1, what="the commander's severity")
        h.command("status mitigating", channel="C1", user=DAVE)
        web.wait_for(lambda: h.store.get(incident.id).status == "mitigating", what="an approver's status")
        h.command(f"commander <@{BOB}>", channel="C1", user=CAROL)
        web.wait_for(lambda: h.store.get(incident.id).commander == BOB, what="a group member's handover")
        # Alice no longer commands: she is refused now; Bob, appointed by an approver, resolves.
        h.command("sev 3", channel="C1", user=ALICE)
        refusal = told(web, ALICE, "C1", 1, "the refusal to the former commander")[0]
        assert "(<@U0BOB>)" in refusal
        h.command("resolve recovered", channel="C1", user=BOB)
        web.wait_for(lambda: any(m.text.startswith("Resolved") for m in web.bot_messages("C1")), what="the summary")
        assert h.store.get(incident.id).status == "resolved" and h.store.get(incident.id).severity == 1
        assert web.rejected == [], web.rejected
    finally:
        h.close()


def test_reject_asks_why_and_the_reason_is_kept(tmp_path, web):
    h = SlackHarness(tmp_path, web)
    try:
        h.command("checkout is returning 500s for many users", channel="C1", user=ALICE)
        plan = plan_of(web, "C1")
        diagnosis = diagnosis_of(web, "C1", plan.ts)
        value = decision_value(diagnosis)
        mitigation = json.loads(value)["m"]

        # Bob may not reject: no form, a private refusal.
        h.click(B.REJECT, value, user=BOB, channel="C1", message=diagnosis)
        told(web, BOB, "C1", 1, "the refusal to Bob")
        assert web.views == []

        # Alice (she opened it and there are no approvers) gets the form; a blank reason is refused.
        h.click(B.REJECT, value, user=ALICE, channel="C1", message=diagnosis)
        form = web.wait_for(lambda: web.views, what="the reject form")[0]
        opened = web.calls_to("views.open")
        assert len(opened) == 1 and opened[0].args.get("trigger_id")
        assert form["callback_id"] == B.REJECT_MODAL and "reason" in texts(form["blocks"])
        blank = h.submit(form, {"reason": {"value": {"type": "plain_text_input", "value": "  "}}}, user=ALICE).json()
        assert blank["response_action"] == "errors" and "reason" in blank["errors"]
        assert not any(e.kind == "decision" for e in h.store.timeline(h.store.latest_incident(team=TEAM, channel="C1").id))
        why = "the payments migration already ran & cannot be undone"
        assert h.submit(form, {"reason": {"value": {"type": "plain_text_input", "value": why}}}, user=ALICE).status == 200
        said = web.wait_for(lambda: [m for m in web.bot_messages("C1", plan.ts) if "rejected" in m.text],
                            what="the rejection in the thread")[0]
        assert "Reason: the payments migration already ran &amp; cannot be undone" in texts(said.blocks)
        web.wait_for(lambda: "Rejected by <@U0ALICE>" in texts(web.message("C1", diagnosis.ts).blocks),
                     what="the buttons replaced by the decision")
        incident = h.store.latest_incident(team=TEAM, channel="C1")
        entries = [e.text for e in h.store.timeline(incident.id) if e.kind == "decision"]
        assert entries == [f"Rejected {mitigation}: rollback → checkout to v3.2.0; reason: {why}"]
        web.wait_for(lambda: "reason: the payments migration" in texts(pinned_timelines(web, "C1")[0].blocks),
                     what="the reason on the pinned timeline")

        # Bob's word on it is not the reason (he did not reject it).
        before = len(web.bot_messages("C1", plan.ts))
        aside = web.human_message("C1", BOB, "I disagree, the rollback was the right call", thread_ts=plan.ts)
        h.event({"type": "message", "channel": "C1", "user": BOB, "text": aside.text, "ts": aside.ts,
                 "thread_ts": plan.ts, "channel_type": "channel"})
        answer = web.wait_for(lambda: web.bot_messages("C1", plan.ts)[before:], what="the answer to Bob")[0]
        assert not answer.text.startswith("Noted"), answer.text
        # A reason typed in the thread by whoever rejected is noted as such, not answered as a recovery check.
        before = len(web.bot_messages("C1", plan.ts))
        reply = web.human_message("C1", ALICE, "we can't roll back anyway: v3.2.0 lacks the new card fields",
                                  thread_ts=plan.ts)
        h.event({"type": "message", "channel": "C1", "user": ALICE, "text": reply.text, "ts": reply.ts,
                 "thread_ts": plan.ts, "channel_type": "channel"})
        answer = web.wait_for(lambda: web.bot_messages("C1", plan.ts)[before:], what="the answer")[0]
        assert answer.text.startswith(f"Noted as the reason {mitigation}"), answer.text
        assert "recover" not in answer.text.split("\n")[0] and "compared since" not in answer.text
        web.wait_for(lambda: "lacks the new card fields" in
                     next(e.text for e in h.store.timeline(incident.id) if e.kind == "decision"),
                     what="the typed reason added to the decision")
        # A question about recovery is still a recovery check.
        before = len(web.bot_messages("C1", plan.ts))
        ask = web.human_message("C1", ALICE, "we restarted checkout 5 minutes ago, is it recovering?",
                                thread_ts=plan.ts)
        h.event({"type": "message", "channel": "C1", "user": ALICE, "text": ask.text, "ts": ask.ts,
                 "thread_ts": plan.ts, "channel_type": "channel"})
        answer = web.wait_for(lambda: web.bot_messages("C1", plan.ts)[before:], what="the recovery answer")[0]
        assert "Noted" not in answer.text and answer.text.startswith((
            "It has recovered", "It is recovering", "It is not recovering", "There is no data since",
            "The symptom's signals have no data")), answer.text

        # The summary carries the reason.
        h.command("resolve restarted checkout", channel="C1", user=ALICE)
        summary = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Resolved")),
                                            None), what="the summary")
        rendered = texts(summary.blocks)
        assert "reason: the payments migration already ran &amp; cannot be undone" in rendered
        assert "lacks the new card fields" in rendered
        assert web.rejected == [], web.rejected
    finally:
        h.close()


class HeldInvestigations:
    """Holds the agent's investigations until released (the agent's start, wrapped)."""

    def __init__(self, agent) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0
        original = agent.start

        def start(*args, **kwargs):
            self.calls += 1
            self.started.set()
            self.release.wait(60)
            return original(*args, **kwargs)

        agent.start = start


def incidents_in(h: SlackHarness, channel: str) -> list[dict]:
    _, rows = h.store.db.execute(f"SELECT id, status, commander, title FROM {h.store.prefix}incidents "
                                 "WHERE team = ? AND channel = ?", (TEAM, channel))
    return rows


def test_resolve_while_a_diagnosis_runs_keeps_it_resolved(tmp_path, web):
    h = SlackHarness(tmp_path, web, memory=False)
    try:
        h.config.slack.resolve_wait_s = 0.5
        held = HeldInvestigations(h.sleuth.agent)
        h.command("checkout is returning 500s for many users", channel="C1", user=ALICE)
        plan = plan_of(web, "C1")
        assert held.started.wait(20)
        web.wait_for(lambda: pinned_timelines(web, "C1"), what="the pinned timeline")
        h.command("resolve it recovered by itself", channel="C1", user=ALICE)
        waited = told(web, ALICE, "C1", 1, "the note that resolve waits")[0]
        assert "still running" in waited and "at most 0 s" not in waited
        summary = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Resolved")),
                                            None), what="the summary")
        assert "it recovered by itself" in texts(summary.blocks)
        held.release.set()
        late = diagnosis_of(web, "C1", plan.ts)
        assert "Arrived after the incident was resolved" in texts(late.blocks)
        web.wait_for(lambda: "Done" in texts(web.message("C1", plan.ts).blocks), what="the plan's last edit")
        web.wait_for(lambda: "A diagnosis arrived after resolution" in texts(pinned_timelines(web, "C1")[0].blocks),
                     what="the late diagnosis noted on the timeline")
        time.sleep(0.3)
        rows = incidents_in(h, "C1")
        assert [(r["status"], r["commander"]) for r in rows] == [("resolved", ALICE)], rows
        assert h.store.active_incident(team=TEAM, channel="C1") is None
        assert len(pinned_timelines(web, "C1")) == 1 and len(web.calls_to("pins.add")) == 1
        assert len([m for m in web.bot_messages("C1") if m.text.startswith("Resolved")]) == 1
        assert h.store.get(rows[0]["id"]).diagnosis is None, "the resolved record stands as summarised"
        assert web.rejected == [], web.rejected
    finally:
        h.close()


def test_resolve_waits_for_a_running_diagnosis_and_cancels_a_queued_one(tmp_path, web):
    h = SlackHarness(tmp_path, web, memory=False)
    try:
        held = HeldInvestigations(h.sleuth.agent)
        h.command("checkout is returning 500s for many users", channel="C1", user=ALICE)
        plan = plan_of(web, "C1")
        assert held.started.wait(20)
        h.command("resolve rolled back", channel="C1", user=ALICE)
        told(web, ALICE, "C1", 1, "the note that resolve waits")
        time.sleep(0.5)
        assert not any(m.text.startswith("Resolved") for m in web.bot_messages("C1")), "resolve waits"
        held.release.set()
        summary = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Resolved")),
                                            None), timeout=60, what="the summary once the diagnosis is in")
        assert "code change in checkout" in texts(summary.blocks), "the diagnosis made the summary"
        assert "Arrived after" not in texts(diagnosis_of(web, "C1", plan.ts).blocks)

        # An investigation still waiting its turn when the incident is resolved does not run.
        h.config.slack.resolve_wait_s = 0.3
        held.calls, held.release = 0, threading.Event()
        h.command("start Search is slow", channel="C2", user=BOB)
        web.wait_for(lambda: pinned_timelines(web, "C2"), what="the second incident")
        for _ in range(h.sleuth.max_investigations):
            h.sleuth.gate.acquire()
        try:
            h.command("search latency is up", channel="C2", user=BOB)
            queued = plan_of(web, "C2")
            h.command("resolve", channel="C2", user=BOB)
            web.wait_for(lambda: any(m.text.startswith("Resolved") for m in web.bot_messages("C2")),
                         what="the second summary")
        finally:
            for _ in range(h.sleuth.max_investigations):
                h.sleuth.gate.release()
        web.wait_for(lambda: "Not run: the incident was resolved" in texts(web.message("C2", queued.ts).blocks),
                     what="the queued plan saying it did not run")
        assert held.calls == 0
        assert [r["status"] for r in incidents_in(h, "C2")] == ["resolved"]
        assert len(pinned_timelines(web, "C2")) == 1
        assert web.rejected == [], web.rejected
    finally:
        h.close()
