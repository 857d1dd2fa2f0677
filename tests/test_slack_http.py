"""Sleuth's Bolt app in HTTP mode, through its real threaded server and signed requests, with the
Web API stand-in behind its WebClient: a whole incident end to end, redeliveries, a restart in the
middle of a thread, signatures, user errors, 429s and dropped connections."""

from __future__ import annotations

import json
import time

import pytest

from bot.slack import blocks as B
from tests.slack_standins import (BOT_USER, Message, SlackHarness, SlackWebStandIn, event_callback,
                                  slash_command)

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


@pytest.fixture
def web():
    with SlackWebStandIn() as standin:
        yield standin


def plan_of(web: SlackWebStandIn, channel: str) -> Message:
    """The thread's first message (the plan), once the diagnosis has been posted under it."""
    return web.wait_for(lambda: next((m for m in web.bot_messages(channel) if m.text.startswith("Investigating")
                                      and any(r.text.startswith("Diagnosis") for r in web.bot_messages(channel, m.ts))),
                                     None), timeout=60, what=f"a diagnosis thread in {channel}")


def diagnosis_in(web: SlackWebStandIn, channel: str, thread_ts: str) -> Message:
    return next(m for m in web.bot_messages(channel, thread_ts) if m.text.startswith("Diagnosis"))


def decision_value(message: Message) -> str:
    """The Approve button's value on a diagnosis message: the first mitigation awaiting a decision."""
    for block in message.blocks or []:
        if block["type"] == "actions" and block.get("block_id", "").startswith("decide:"):
            return block["elements"][0]["value"]
    raise AssertionError("no mitigation awaits a decision in this message")


def texts(blocks: list | None) -> str:
    return json.dumps(blocks or [])


def timeline_message(web: SlackWebStandIn, channel: str) -> Message:
    return next(m for m in web.bot_messages(channel) if m.text.startswith("Timeline") and m.pinned)


def test_a_whole_incident(tmp_path, web):
    h = SlackHarness(tmp_path, web)
    try:
        # /diagnose is acknowledged at once; the thread follows.
        ack = h.command("checkout is returning 500s for many users", channel="C1", user=ALICE)
        assert ack.status == 200 and ack.elapsed_s < 3.0
        plan = plan_of(web, "C1")
        web.wait_for(lambda: "Done" in texts(web.message("C1", plan.ts).blocks), what="the plan's last edit")
        assert web.message("C1", plan.ts).edits >= 2, "the plan is edited as sources report"
        diagnosis = diagnosis_in(web, "C1", plan.ts)
        rendered = texts(diagnosis.blocks)
        assert "code change in checkout" in rendered and "confidence *" in rendered
        assert 'http_error_ratio{service=\\"checkout\\"}' in rendered  # the evidence's query
        assert B.APPROVE in rendered and B.REJECT in rendered
        charts = web.wait_for(lambda: [f for f in web.files.values() if f.get("shared")], what="the charts")
        assert all(f["thread_ts"] == plan.ts and f["data"].startswith(b"\x89PNG") for f in charts)
        assert [c.method for c in web.calls_to("files.completeUploadExternal")] == ["files.completeUploadExternal"]
        web.wait_for(lambda: "Top hypothesis: code change in checkout" in texts(timeline_message(web, "C1").blocks),
                     what="the finding on the pinned timeline")

        # A follow-up in the thread continues the same conversation.
        before = len(web.bot_messages("C1", plan.ts))
        question = web.human_message("C1", ALICE, "what changed in the last 2 hours?", thread_ts=plan.ts)
        h.event({"type": "message", "channel": "C1", "user": ALICE, "text": question.text, "ts": question.ts,
                 "thread_ts": plan.ts, "channel_type": "channel"})
        answer = web.wait_for(lambda: web.bot_messages("C1", plan.ts)[before:], what="the follow-up answer")[0]
        assert "chg-1010" in answer.text or "chg-1010" in texts(answer.blocks)

        # Bob is not the commander: refused, ephemerally. Alice (who opened it) decides.
        value = decision_value(diagnosis)
        assert json.loads(value)["thread"] == f"T0SLEUTH:C1:{plan.ts}"
        h.click(B.APPROVE, value, user=BOB, channel="C1", message=diagnosis)
        refusal = web.wait_for(lambda: web.ephemerals_for(BOB, "C1"), what="the refusal")[0]
        assert "Only the incident commander" in refusal["text"] and ALICE in refusal["text"]
        h.click(B.APPROVE, value, user=ALICE, channel="C1", message=diagnosis)
        approved = web.wait_for(lambda: [m for m in web.bot_messages("C1", plan.ts) if "approved" in m.text],
                                what="the approval in the thread")[0]
        assert "Sleuth executes nothing" in approved.text and "verify" in approved.text
        web.wait_for(lambda: "Approved by <@U0ALICE>" in texts(web.message("C1", diagnosis.ts).blocks),
                     what="the buttons replaced by the decision")
        assert len([e for e in h.store.timeline(h.store.latest_incident(team="T0SLEUTH", channel="C1").id)
                    if e.kind == "decision"]) == 1

        # A message given the timeline reaction joins the timeline; removing it removes it.
        note = web.human_message("C1", BOB, "rolled back checkout to v3.2.0, errors dropping")
        h.event({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                 "item": {"type": "message", "channel": "C1", "ts": note.ts}, "item_user": BOB})
        web.wait_for(lambda: "rolled back checkout to v3.2.0" in texts(timeline_message(web, "C1").blocks),
                     what="the flagged message on the pinned timeline")
        assert f"p{note.ts.replace('.', '')}" in texts(timeline_message(web, "C1").blocks)  # its permalink
        stray = web.human_message("C1", CAROL, "lunch?")
        h.event({"type": "reaction_added", "user": CAROL, "reaction": "round_pushpin",
                 "item": {"type": "message", "channel": "C1", "ts": stray.ts}})
        web.wait_for(lambda: "lunch?" in texts(timeline_message(web, "C1").blocks), what="the second flag")
        h.event({"type": "reaction_removed", "user": CAROL, "reaction": "round_pushpin",
                 "item": {"type": "message", "channel": "C1", "ts": stray.ts}})
        web.wait_for(lambda: "lunch?" not in texts(timeline_message(web, "C1").blocks), what="the flag removed")
        assert len([m for m in web.bot_messages("C1") if m.text.startswith("Timeline")]) == 1, "edited, not reposted"

        # Rollups: this incident, then every active one (a SEV1 elsewhere comes first).
        rollup = h.command("rollup", channel="C1", user=CAROL).json()
        rendered = texts(rollup["blocks"])
        for part in ("Best hypothesis", "code change in checkout", "Approved:", "rollback", "commander <@U0ALICE>"):
            assert part in rendered, part
        h.command("start Search is slow sev1", channel="C2", user=BOB)
        web.wait_for(lambda: any(m.text.startswith("Timeline: Search is slow") for m in web.bot_messages("C2")),
                     what="the second incident")
        everything = h.command("rollup all", channel="C3", user=CAROL).json()
        rendered = texts(everything["blocks"])
        assert everything.get("response_type", "ephemeral") == "ephemeral"
        assert rendered.index("Search is slow") < rendered.index("checkout is returning 500s")

        # Resolve: the summary comes by itself, with Add to memory.
        h.command("resolve rolled back to v3.2.0", channel="C1", user=ALICE)
        summary = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Resolved")),
                                            None), what="the summary")
        rendered = texts(summary.blocks)
        for part in ("What happened", "Impact", "Root cause", "code change in checkout", "What fixed it",
                     "rollback", "Duration", "Follow-ups", B.ADD_TO_MEMORY):
            assert part in rendered, part
        incident = h.store.latest_incident(team="T0SLEUTH", channel="C1")
        assert incident.status == "resolved"

        h.click(B.ADD_TO_MEMORY, str(incident.id), user=ALICE, channel="C1", message=summary)
        view = web.wait_for(lambda: web.views, what="the add-to-memory modal")[0]
        assert view["callback_id"] == B.MEMORY_MODAL
        values = {"category": {"value": {"type": "static_select", "selected_option": {"value": "code_change"}}},
                  "root_cause": {"value": {"type": "plain_text_input",
                                           "value": "checkout v3.3.0's payment retry logic dereferenced a nil "
                                                    "policy and panicked on confirm"}},
                  "action": {"value": {"type": "static_select", "selected_option": {"value": "rollback"}}},
                  "mitigation": {"value": {"type": "plain_text_input", "value": "rolled checkout back to v3.2.0"}}}
        empty = dict(values, root_cause={"value": {"type": "plain_text_input", "value": " "}})
        refused = h.submit(view, empty, user=ALICE).json()
        assert refused["response_action"] == "errors" and "root_cause" in refused["errors"]
        assert h.submit(view, values, user=ALICE).status == 200
        web.wait_for(lambda: "added this incident to memory" in texts(web.message("C1", summary.ts).blocks),
                     what="the summary saying it is in memory")
        record_id = h.store.get(incident.id).memory_id
        assert record_id == f"slack-t0sleuth-c1-{incident.id}"

        # The next incident, opened by an @mention, finds it among similar ones (in the mention's thread).
        mention = web.human_message("C4", CAROL, f"<@{BOT_USER}> checkout payment confirm is failing with 500s")
        h.event({"type": "app_mention", "channel": "C4", "user": CAROL, "text": mention.text, "ts": mention.ts})
        found = web.wait_for(lambda: next((m for m in web.bot_messages("C4", mention.ts)
                                           if m.text.startswith("Diagnosis")), None), timeout=60,
                             what="the diagnosis in the mention's thread")
        assert record_id in texts(found.blocks)
        assert h.store.thread(f"T0SLEUTH:C4:{mention.ts}") is not None
        assert web.rejected == [], web.rejected
    finally:
        h.close()


def test_the_same_event_three_times_has_one_effect_even_after_a_restart(tmp_path, web):
    h = SlackHarness(tmp_path, web)
    try:
        h.command("start Checkout errors sev2", channel="C1", user=ALICE)
        web.wait_for(lambda: any(m.pinned for m in web.bot_messages("C1")), what="the pinned timeline")
        flagged = web.human_message("C1", BOB, "deploy paused")
        event = {"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                 "item": {"type": "message", "channel": "C1", "ts": flagged.ts}}
        payload = event_callback(event, event_id="Ev0DUPLICATE1")
        answers = [h.sender.event(payload, retry_num=n) for n in (None, 1, 2)]
        assert [a.status for a in answers] == [200, 200, 200]
        web.wait_for(lambda: "deploy paused" in texts(timeline_message(web, "C1").blocks), what="the entry")
        h.restart()
        assert h.sender.event(payload, retry_num=3).status == 200
        pin = event_callback({"type": "pin_added", "user": BOB, "channel_id": "C1",
                              "item": {"type": "message", "channel": "C1", "created_by": BOB,
                                       "message": flagged.to_slack()}}, event_id="Ev0DUPLICATE2")
        for n in (None, 1, 2):
            h.sender.event(pin, retry_num=n)
        time.sleep(0.3)  # give a wrongly repeated delivery the time to show
        h.close()
        from bot.incidents.store import IncidentStore
        from bot.slack.claims import WorkClaims

        store = IncidentStore(h.config.storage)
        claims = WorkClaims(h.config.storage)
        incident = store.latest_incident(team="T0SLEUTH", channel="C1")
        manual = [e for e in store.timeline(incident.id) if e.kind == "manual"]
        states = [claims.work_state(key) for key in ("event:Ev0DUPLICATE1", "event:Ev0DUPLICATE2")]
        store.close()
        claims.close()
        assert states == ["done", "done"], "finished work is marked done, so nothing replays it"
        assert len(manual) == 1 and manual[0].text == "deploy paused" and manual[0].via == "reaction"
        assert len(web.calls_to("conversations.history")) == 1
    finally:
        h.close()



def test_a_restart_in_the_middle_of_a_thread_resumes_it(tmp_path, web, storage):
    h = SlackHarness(tmp_path, web, storage=storage)
    try:
        # Two services named: the agent asks one question first, and the thread waits for it.
        h.command("both checkout and web-frontend are returning 500s", channel="C1", user=ALICE)
        plan = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Investigating")),
                                         None), what="the plan")
        question = web.wait_for(lambda: [m for m in web.bot_messages("C1", plan.ts) if "checkout" in m.text],
                                timeout=30, what="the clarifying question")[0]
        assert "web-frontend" in question.text and "Reply in this thread" in texts(question.blocks)
        h.restart()
        reply = web.human_message("C1", ALICE, "checkout", thread_ts=plan.ts)
        h.event({"type": "message", "channel": "C1", "user": ALICE, "text": reply.text, "ts": reply.ts,
                 "thread_ts": plan.ts})
        diagnosis = web.wait_for(lambda: next((m for m in web.bot_messages("C1", plan.ts)
                                               if m.text.startswith("Diagnosis")), None), timeout=60,
                                 what="the diagnosis once the question is answered, after a restart")
        assert "code change in checkout" in texts(diagnosis.blocks)
        # The answer set the investigation going: a plan in the thread, edited as sources reported.
        replan = next(m for m in web.bot_messages("C1", plan.ts) if m.text.startswith("Investigating"))
        web.wait_for(lambda: "Done: best hypothesis" in texts(web.message("C1", replan.ts).blocks),
                     what="the second plan's last edit")
        assert web.message("C1", replan.ts).edits >= 2 and replan.ts < diagnosis.ts
        h.restart()
        before = len(web.bot_messages("C1", plan.ts))
        mention = web.human_message("C1", ALICE, f"<@{BOT_USER}> what changed in the last 2 hours?", thread_ts=plan.ts)
        h.event({"type": "app_mention", "channel": "C1", "user": ALICE, "text": mention.text, "ts": mention.ts,
                 "thread_ts": plan.ts})
        # The same words as a plain message event are left to the app_mention.
        h.event({"type": "message", "channel": "C1", "user": ALICE, "text": mention.text, "ts": mention.ts,
                 "thread_ts": plan.ts})
        answer = web.wait_for(lambda: web.bot_messages("C1", plan.ts)[before:], what="the answer after the restart")
        assert "chg-1010" in answer[0].text
        # The pending approval survived too (approved on one backend, rejected on the other: both paths).
        approve = storage.postgres is None
        value = decision_value(diagnosis)
        mitigation = json.loads(value)["m"]
        h.click(B.APPROVE if approve else B.REJECT, value, user=ALICE, channel="C1", message=diagnosis)
        verdict = "approved" if approve else "rejected"
        if not approve:  # Reject asks why, in a modal
            form = web.wait_for(lambda: web.views, what="the reject form")[0]
            h.submit(form, {"reason": {"value": {"type": "plain_text_input", "value": "too risky at peak"}}},
                     user=ALICE)
        web.wait_for(lambda: any(verdict in m.text for m in web.bot_messages("C1", plan.ts)), what="the decision")
        web.wait_for(lambda: ("Approved" if approve else "Rejected") + " by <@U0ALICE>"
                     in texts(web.message("C1", diagnosis.ts).blocks), what="the buttons replaced")
        # A second click on the stale buttons is told what was decided, privately.
        h.click(B.APPROVE, value, user=ALICE, channel="C1", message=diagnosis)
        told = web.wait_for(lambda: web.ephemerals_for(ALICE, "C1"), what="the already-decided notice")[0]
        assert f"already {verdict} by <@U0ALICE>" in told["text"]
        assert len(web.bot_messages("C1", plan.ts)) == before + 2, "one answer, one decision"
        incident = h.store.latest_incident(team="T0SLEUTH", channel="C1")
        assert [e.text for e in h.store.timeline(incident.id) if e.kind == "decision"] == \
            [f"{verdict.capitalize()} {mitigation}: rollback → checkout to v3.2.0"
             + ("" if approve else "; reason: too risky at peak")]
    finally:
        h.close()


def test_bad_or_stale_signatures_get_401_and_nothing_happens(tmp_path, web):
    h = SlackHarness(tmp_path, web)
    try:
        body = "&".join(f"{k}={v}" for k, v in slash_command("start X", channel="C1", user=ALICE).items())
        bad = h.sender.post(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
        stale = h.sender.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
        event = event_callback({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                                "item": {"type": "message", "channel": "C1", "ts": "1.2"}}, event_id="Ev0SIGNED")
        forged = h.sender.post(json.dumps(event), "application/json", signature="v0=" + "1" * 64)
        assert (bad.status, stale.status, forged.status) == (401, 401, 401)
        time.sleep(0.2)
        assert [c.method for c in web.calls] == ["auth.test"]
        assert h.store.active_incident(team="T0SLEUTH", channel="C1") is None
        assert h.sleuth.claims.work_state("event:Ev0SIGNED") is None, "a forged event claims nothing"
        good = h.command("start X", channel="C1", user=ALICE)
        assert good.status == 200
    finally:
        h.close()


def test_user_errors_are_one_ephemeral_sentence(tmp_path, web):
    h = SlackHarness(tmp_path, web, memory=False)
    try:
        cases = {"sev 9": "from 1 (worst) to 4", "commander bob": "@mention", "status done": "investigating",
                 "sev 2": "no active incident", "resolve": "no active incident", "help": "rollup [all]"}
        for text, says in cases.items():
            answer = h.command(text, channel="C1", user=ALICE)
            assert answer.status == 200 and answer.elapsed_s < 3.0
            payload = answer.json()
            assert payload.get("response_type", "ephemeral") == "ephemeral"
            assert says in payload["text"] + texts(payload.get("blocks")), (text, payload)
        # Errors found later (here a window the investigation refuses) come back ephemeral too.
        h.command("checkout 30d errors", channel="C1", user=ALICE)
        error = web.wait_for(lambda: web.ephemerals_for(ALICE, "C1"), timeout=30, what="the ephemeral error")[0]
        assert "\n" not in error["text"] and "longer than 7d, the longest allowed" in error["text"]
        web.wait_for(lambda: any("Stopped" in texts(m.blocks) for m in web.bot_messages("C1")), what="plan stopped")
        # A mention outside any thread answers the same way.
        mention = web.human_message("C2", BOB, f"<@{BOT_USER}> sev 12")
        h.event({"type": "app_mention", "channel": "C2", "user": BOB, "text": mention.text, "ts": mention.ts})
        said = web.wait_for(lambda: web.ephemerals_for(BOB, "C2"), what="the mention's error")[0]
        assert "from 1 (worst) to 4" in said["text"]
    finally:
        h.close()


def test_outgoing_calls_retry_429_and_dropped_connections(tmp_path, web):
    h = SlackHarness(tmp_path, web)
    try:
        web.throttle("chat.postMessage", times=1, retry_after="1")
        h.command("start Checkout errors", channel="C1", user=ALICE)
        announced = web.wait_for(lambda: [m for m in web.bot_messages("C1") if "opened" in m.text],
                                 what="the announcement after a 429")
        posts = web.calls_to("chat.postMessage")
        assert len(posts) >= 2 and posts[1].at - posts[0].at >= 0.9, "Retry-After was honoured"
        assert announced[0].text.count("opened") == 1
        web.disconnect_next(1)
        h.command("sev 1", channel="C1", user=ALICE)
        web.wait_for(lambda: any("SEV1" in m.text for m in web.bot_messages("C1")), what="the post after a drop")
        assert any(r.answer == "disconnect" for r in web.requests)
    finally:
        h.close()


def test_approvers_from_a_user_group(tmp_path, web):
    web.usergroups["S0ONCALL"] = [CAROL]
    h = SlackHarness(tmp_path, web, approvers=["S0ONCALL", "U0DAVE"])
    try:
        h.command("start Checkout errors", channel="C1", user=ALICE)
        incident = web.wait_for(lambda: h.store.active_incident(team="T0SLEUTH", channel="C1"), what="an incident")
        client = h.app.client
        from bot.slack.decisions import may_decide

        # Alice commands (she opened it) but approvers are configured: approval is theirs, not hers.
        assert not may_decide(h.sleuth, client, incident, ALICE)
        assert may_decide(h.sleuth, client, incident, CAROL)  # in the group
        assert may_decide(h.sleuth, client, incident, "U0DAVE")  # named
        assert not may_decide(h.sleuth, client, incident, BOB)
        # Appointed commander by an approver (Carol, through the group), Alice may decide too.
        h.command(f"commander <@{ALICE}>", channel="C1", user=CAROL)
        web.wait_for(lambda: any("now the incident commander" in m.text for m in web.bot_messages("C1")),
                     what="the commander set by an approver")
        incident = h.store.active_incident(team="T0SLEUTH", channel="C1")
        assert may_decide(h.sleuth, client, incident, ALICE)
        assert len(web.calls_to("usergroups.users.list")) == 1, "the group is cached"
    finally:
        h.close()


def test_incident_commands_without_a_diagnosis(tmp_path, web):
    h = SlackHarness(tmp_path, web, memory=False)
    try:
        h.command("start Checkout errors sev2", channel="C1", user=ALICE)
        web.wait_for(lambda: any(m.pinned for m in web.bot_messages("C1")), what="the pinned timeline")
        refused = h.command("start Another one", channel="C1", user=BOB).json()
        assert "already has an active incident" in refused["text"]
        # Alice opened it, so she commands: she sets status and severity, then hands command to Bob.
        for text in ("status mitigating", "sev 1", "commander <@U0BOB|bob>"):
            h.command(text, channel="C1", user=ALICE)
        web.wait_for(lambda: len(h.store.timeline(h.store.active_incident(team="T0SLEUTH", channel="C1").id)) == 4,
                     what="four timeline entries")
        incident = h.store.active_incident(team="T0SLEUTH", channel="C1")
        assert (incident.commander, incident.status, incident.severity) == (BOB, "mitigating", 1)
        shown = h.command("timeline", channel="C1", user=CAROL).json()
        rendered = texts(shown["blocks"])
        assert "Commander <@U0BOB> (was <@U0ALICE>)" in rendered and "Status mitigating" in rendered
        assert "Severity SEV1 (was SEV2)" in rendered
        web.wait_for(lambda: "Severity SEV1" in texts(timeline_message(web, "C1").blocks), what="the pinned timeline")

        h.command("start Search is slow sev3", channel="C2", user=CAROL)
        web.wait_for(lambda: h.store.active_incident(team="T0SLEUTH", channel="C2"), what="the second incident")
        h.command("rollup all --post", channel="C3", user=CAROL)
        posted = web.wait_for(lambda: [m for m in web.bot_messages("C3") if "active incidents" in m.text],
                              what="the posted rollup")[0]
        rendered = texts(posted.blocks)
        assert rendered.index("Checkout errors") < rendered.index("Search is slow")  # SEV1 before SEV3
        assert "set the severity" not in rendered and "assign a commander" not in rendered

        h.command("resolve it recovered by itself", channel="C1", user=BOB)
        summary = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Resolved")),
                                            None), what="the summary")
        assert "it recovered by itself" in texts(summary.blocks)
        h.click(B.ADD_TO_MEMORY, str(incident.id), user=BOB, channel="C1", message=summary)
        told = web.wait_for(lambda: web.ephemerals_for(BOB, "C1"), what="the memory refusal")[0]
        assert "No past-incident memory is configured" in told["text"] and not web.views
        assert h.command("sev 2", channel="C1", user=BOB).json()["text"].startswith("There is no active incident")
    finally:
        h.close()
