"""Exactly one diagnosis across stops and crashes, nothing lost in a Slack outage, and shared
resources safe under concurrent first use.

- A real ``sleuth serve --http`` killed (SIGKILL) while Slack holds its diagnosis post, or stopped
  (SIGTERM) mid-diagnosis, then a fresh process: one diagnosis post in the thread, and a plan whose
  investigation finished is never marked interrupted.
- The Web API down (5xx, then dropped connections) for several seconds, or answering 429 with
  Retry-After for longer than the client's three tries: every command is delivered once Slack is
  back, by the running process; what outlives ``slack.delivery_deadline_s`` is told in the channel.
- Replicas creating the store and the checkpoint tables together on a fresh PostgreSQL schema;
  three /diagnose at once on a fresh bot, and three first uses of a fresh memory at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path


from tests.slack_standins import (Message, SignedSender, SlackHarness, SlackWebStandIn, postgres_schema,
                                  slash_command)
from tests.standins import Fault, free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
ALICE, BOB = "U0ALICE", "U0BOB"
SECRET = "s3cr3t"
# Python's error text, which must never reach a Slack user (as it did: "Sleuth could not finish:
# AttributeError: 'NoneType' object has no attribute 'execute'").
PYTHON_ERRORS = re.compile(r"Traceback|NoneType|object has no attribute|could not finish: [A-Z]\w+:|"
                           r"failed \([A-Z]\w*(Error|Exception)\)|StoreError|AttributeError|KeyError")


# --- helpers ----------------------------------------------------------------------------------


def _serve(tmp_path: Path, web: SlackWebStandIn, port: int, log_name: str) -> subprocess.Popen:
    environment = {**os.environ, "SLACK_BOT_TOKEN": web.bot_token, "SLEUTH_SLACK_API_URL": web.api_url,
                   "SLACK_SIGNING_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / log_name, "wb")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", "--http", "--port", str(port),
                                "--host", "127.0.0.1", "-c", "sleuth.yml"], cwd=tmp_path, env=environment,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert wait_until_ready(process, f"http://127.0.0.1:{port}/healthz", 60), (tmp_path / log_name).read_text()
    return process


def _kill(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _kill_while_slack_holds_the_diagnosis(web: SlackWebStandIn, process: subprocess.Popen, channel: str) -> None:
    """Once the plan's first edit went out, Slack holds the next post (the diagnosis); the process
    dies (SIGKILL) while Slack has it, and Slack then carries it out."""
    web.wait_for(lambda: web.calls_to("chat.update"), what="the plan's first edit")
    posts = len(web.calls_to("chat.postMessage"))  # the plan and the pinned timeline (and an alert)
    web.stall("chat.postMessage", 3.0)
    web.wait_for(lambda: len(web.calls_to("chat.postMessage")) > posts, timeout=60,
                 what="the diagnosis post, in flight")
    process.kill()
    process.wait(timeout=10)
    web.wait_for(lambda: diagnoses(web, channel), timeout=10, what="Slack carrying out the post it held")


def diagnoses(web: SlackWebStandIn, channel: str) -> list[Message]:
    return [m for m in web.bot_messages(channel) if m.thread_ts and m.text.startswith("Diagnosis")]


def plan_in(web: SlackWebStandIn, channel: str) -> Message:
    return web.wait_for(lambda: next((m for m in web.bot_messages(channel) if m.text.startswith("Investigating")),
                                     None), what=f"the plan in {channel}")


def said_to_slack(web: SlackWebStandIn) -> str:
    """Everything Sleuth sent to Slack (texts and blocks of every call), as one string."""
    return json.dumps([c.args for c in web.calls], default=str)


def plans(web: SlackWebStandIn, channel: str) -> list[Message]:
    """The channel's top-level bot messages but the pinned timeline: the plan messages."""
    return [m for m in web.bot_messages(channel) if not m.thread_ts and not m.pinned]


def _command(sender: SignedSender, text: str, channel: str, user: str = ALICE) -> str:
    """Send /diagnose; its trigger id (the work key is command:<trigger id>)."""
    payload = slash_command(text, channel=channel, user=user)
    assert sender.command(payload).status == 200
    return payload["trigger_id"]


def work_rows(db: Path) -> dict[str, dict]:
    conn = sqlite3.connect(str(db))
    conn.row_factory = sqlite3.Row
    try:
        return {r["key"]: dict(r) for r in conn.execute("SELECT * FROM sleuth_work")}
    finally:
        conn.close()


# --- stops and crashes: a real `sleuth serve` -------------------------------------------------


def test_kill_9_while_slack_holds_the_diagnosis_post_then_a_fresh_process_posts_nothing_twice(tmp_path):
    """The process dies (SIGKILL) after its investigation finished and while Slack is carrying out
    its diagnosis post. The next process takes the work over, finds that post in the thread,
    uploads the charts and finishes: one diagnosis, the plan shows the outcome, not 'interrupted'."""
    (tmp_path / "sleuth.yml").write_text("slack:\n  takeover_after_s: 5\n")
    with SlackWebStandIn() as web:
        port = free_port()
        first = _serve(tmp_path, web, port, "first.log")
        second = None
        try:
            sender = SignedSender(f"http://127.0.0.1:{port}/slack/events", SECRET)
            web.stall("chat.update", 2.0)  # the plan's first progress edit: the investigation waits for it at its end
            one = _command(sender, "checkout is returning 500s", "C1")
            plan = plan_in(web, "C1")
            _kill_while_slack_holds_the_diagnosis(web, first, "C1")

            second = _serve(tmp_path, web, port, "second.log")
            web.wait_for(lambda: web.calls_to("files.completeUploadExternal"), timeout=60,
                         what="the charts, uploaded by the process that resumed the work")
            web.wait_for(lambda: work_rows(tmp_path / ".sleuth" / "state.db")[f"command:{one}"]["state"] == "done",
                         what="the work marked done")
            time.sleep(1.0)
            assert len(diagnoses(web, "C1")) == 1, "exactly one diagnosis after the crash"
            assert diagnoses(web, "C1")[0].thread_ts == plan.ts
            final = web.message("C1", plan.ts)
            assert "Done" in json.dumps(final.blocks) and not final.text.startswith(":warning: Sleuth stopped")
            assert len(web.calls_to("files.completeUploadExternal")) == 1
            assert len([m for m in web.bot_messages("C1") if m.pinned]) == 1
            assert not PYTHON_ERRORS.search(said_to_slack(web))
        finally:
            _kill(first)
            _kill(second)
        log = (tmp_path / "second.log").read_text()
        assert "replaying command:" in log and "resuming command:" in log, log[-3000:]




def test_kill_9_mid_alert_diagnosis_then_a_fresh_process_diagnoses_it_once(tmp_path):
    """An Alertmanager alert is claimed before its 202; the process dies (SIGKILL) while Slack holds
    the alert's diagnosis post. The next process takes the alert over, finds the post and finishes:
    the alert posted once, diagnosed once in its thread, the incident opened once."""
    import httpx

    from tests.test_alerts import FIRING

    (tmp_path / "sleuth.yml").write_text("slack:\n  takeover_after_s: 5\n"
                                         "alerts:\n  token: tok\n  channel: C0ALERTS\n")
    with SlackWebStandIn() as web:
        port = free_port()
        first = _serve(tmp_path, web, port, "first.log")
        second = None
        try:
            web.stall("chat.update", 2.0)  # the plan's first edit: the investigation waits for it at its end
            answer = httpx.post(f"http://127.0.0.1:{port}/alerts/alertmanager", json=FIRING,
                                headers={"Authorization": "Bearer tok"}, timeout=10)
            assert answer.status_code == 202, answer.text
            plan = plan_in(web, "C0ALERTS")
            _kill_while_slack_holds_the_diagnosis(web, first, "C0ALERTS")

            second = _serve(tmp_path, web, port, "second.log")
            web.wait_for(lambda: {r["state"] for r in work_rows(tmp_path / ".sleuth" / "state.db").values()}
                         == {"done"}, timeout=60, what="the alert's work done by the process that resumed it")
            time.sleep(1.0)
            assert len(diagnoses(web, "C0ALERTS")) == 1, "exactly one diagnosis after the crash"
            alerts = [m for m in web.bot_messages("C0ALERTS") if not m.thread_ts and m.text.startswith("Alert firing")]
            assert len(alerts) == 1, "the alert posted once"
            assert diagnoses(web, "C0ALERTS")[0].thread_ts == alerts[0].ts == (plan.thread_ts or plan.ts)
            conn = sqlite3.connect(str(tmp_path / ".sleuth" / "state.db"))
            try:
                opened = conn.execute("SELECT COUNT(*) FROM sleuth_incidents WHERE channel = 'C0ALERTS'").fetchone()[0]
            finally:
                conn.close()
            assert opened == 1
            assert not PYTHON_ERRORS.search(said_to_slack(web))
        finally:
            _kill(first)
            _kill(second)
        log = (tmp_path / "second.log").read_text()
        assert "replaying event:" in log and "resuming event:" in log, log[-3000:]


def test_sigterm_mid_diagnosis_finishes_within_the_grace_or_hands_the_work_back(tmp_path):
    """SIGTERM while /diagnose runs: with the grace period, the work finishes and the process
    exits; the next process has nothing to do. With a grace too short (Slack hangs on the chart
    upload), the work is handed back and the next process resumes it at once, with no takeover
    wait: one diagnosis each, no Python error text in Slack, no plan marked interrupted."""
    (tmp_path / "sleuth.yml").write_text("slack:\n  takeover_after_s: 60\n  shutdown_grace_s: 20\n")
    with SlackWebStandIn() as web:
        port = free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        first = _serve(tmp_path, web, port, "first.log")
        second = third = None
        try:
            sender = SignedSender(url, SECRET)
            web.stall("chat.update", 2.0)
            one = _command(sender, "checkout is returning 500s", "C1")
            plan_in(web, "C1")
            web.wait_for(lambda: web.calls_to("chat.update"), what="the plan's first edit")
            first.send_signal(signal.SIGTERM)  # mid-diagnosis
            assert first.wait(timeout=30) == 0
            assert len(diagnoses(web, "C1")) == 1, "the running diagnosis finished within the grace period"
            assert work_rows(tmp_path / ".sleuth" / "state.db")[f"command:{one}"]["state"] == "done"

            (tmp_path / "sleuth.yml").write_text("slack:\n  takeover_after_s: 60\n  shutdown_grace_s: 1\n")
            second = _serve(tmp_path, web, port, "second.log")
            uploads = len(web.calls_to("files.getUploadURLExternal"))  # C1's charts
            web.stall("files.getUploadURLExternal", 30.0)  # stuck after the diagnosis post
            two = _command(sender, "checkout is returning 500s again", "C2")
            web.wait_for(lambda: diagnoses(web, "C2"), timeout=60, what="C2's diagnosis")
            web.wait_for(lambda: len(web.calls_to("files.getUploadURLExternal")) > uploads, timeout=30,
                         what="C2's stuck chart upload")
            stopped = time.monotonic()
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
            assert time.monotonic() - stopped < 10, "the grace is 1 s: the process leaves soon after"
            row = work_rows(tmp_path / ".sleuth" / "state.db")[f"command:{two}"]
            assert row["state"] == "retry" and row["owner"] == "", "handed back, due at once"
            assert json.loads(row["note"]).get("diagnosis"), "the posted diagnosis is on record"

            third = _serve(tmp_path, web, port, "third.log")
            started = time.monotonic()
            web.wait_for(lambda: work_rows(tmp_path / ".sleuth" / "state.db")[f"command:{two}"]["state"] == "done",
                         timeout=40, what="the handed-back work resumed and done")
            assert time.monotonic() - started < 30, "resumed at once, not after takeover_after_s (60 s)"
            time.sleep(1.5)
            assert len(diagnoses(web, "C1")) == 1 and len(diagnoses(web, "C2")) == 1, "no diagnosis twice"
            assert web.calls_to("files.completeUploadExternal"), "the charts were uploaded by the next process"
            for channel in ("C1", "C2"):
                [plan] = plans(web, channel)
                assert plan.text.startswith("Investigating") and "Done" in json.dumps(plan.blocks), channel
            assert not PYTHON_ERRORS.search(said_to_slack(web)), "no Python error text reaches Slack"
            assert not web.ephemerals, web.ephemerals
        finally:
            for process in (first, second, third):
                _kill(process)
        assert "replaying" not in (tmp_path / "third.log").read_text()
        assert "trying command:" in (tmp_path / "third.log").read_text()


# --- outages: the running process retries -----------------------------------------------------


def _harness(tmp_path: Path, web: SlackWebStandIn, **slack: object) -> tuple[SlackHarness, object]:
    from bot.slack.keeper import WorkKeeper

    h = SlackHarness(tmp_path, web)
    for name, value in {"takeover_after_s": 60.0, "sweep_interval_s": 0.25, "retry_backoff_s": 0.5,
                        "retry_backoff_max_s": 2.0, **slack}.items():
        setattr(h.sleuth.config.slack, name, value)
    keeper = WorkKeeper(h.app, h.sleuth).start()
    return h, keeper


def test_a_slack_outage_loses_no_command_and_the_running_process_delivers_them(tmp_path):
    outage_s = float(os.environ.get("SLEUTH_TEST_OUTAGE_S", "6"))
    with SlackWebStandIn() as web:
        h, keeper = _harness(tmp_path, web, delivery_deadline_s=outage_s + 40)
        try:
            # One /diagnose is mid-investigation when Slack goes away...
            web.stall("chat.update", 1.5)
            h.command("checkout is returning 500s", channel="C0", user=ALICE)
            plan_in(web, "C0")
            web.wait_for(lambda: web.calls_to("chat.update"), what="C0's first plan edit")
            web.always(Fault.error(503))
            began = time.monotonic()
            # ...and four more arrive while it is away (acked at once: acks do not need the Web API).
            for n in range(1, 5):
                answer = h.command(f"checkout is returning 500s, report {n}", channel=f"C{n}", user=BOB)
                assert answer.status == 200
            while time.monotonic() - began < outage_s / 2:
                time.sleep(0.1)
            web.always(Fault.disconnect())  # then it refuses connections
            while time.monotonic() - began < outage_s:
                time.sleep(0.1)
            web.always(None)
            for n in range(5):
                web.wait_for(lambda n=n: diagnoses(web, f"C{n}"), timeout=90, what=f"C{n}'s diagnosis after the outage")
            time.sleep(1.0)
            assert [len(diagnoses(web, f"C{n}")) for n in range(5)] == [1] * 5, "each delivered once"
            for n in range(5):
                [plan] = plans(web, f"C{n}")  # C0 resumed in its own thread: no second plan
                web.wait_for(lambda plan=plan: "Done" in json.dumps(plan.blocks), what=f"C{n}'s plan's last edit")
                assert diagnoses(web, f"C{n}")[0].thread_ts == plan.ts
            web.wait_for(lambda: {r["state"] for r in work_rows(tmp_path / "state.db").values()} == {"done"},
                         timeout=30, what="every command's work done (its charts uploaded)")
            rows = work_rows(tmp_path / "state.db")
            assert len(rows) == 5 and all(r["tries"] >= 1 for r in rows.values()), "each was retried in this process"
            assert not PYTHON_ERRORS.search(said_to_slack(web))
        finally:
            keeper.stop()
            h.close()


def _decision_value(message: Message) -> str:
    return next(b["elements"][0]["value"] for b in message.blocks or []
                if b["type"] == "actions" and b.get("block_id", "").startswith("decide:"))


def test_decisions_made_during_a_slack_outage_are_announced_once_it_answers(tmp_path):
    """An Approve click, and a Reject form submitted, while Slack's Web API is down: each decision
    is taken once, and announced once in the thread when Slack answers again (the clicks are
    claimed work, resumed from their progress: nothing decided twice, nobody told "already
    decided" about their own click)."""
    from bot.slack import blocks as B

    with SlackWebStandIn() as web:
        h, keeper = _harness(tmp_path, web, delivery_deadline_s=60)
        try:
            h.command("checkout is returning 500s", channel="C1", user=ALICE)
            [diagnosis] = web.wait_for(lambda: diagnoses(web, "C1"), timeout=90, what="the diagnosis")
            value = _decision_value(diagnosis)
            thread = json.loads(value)["thread"]
            second = next(m for m in h.sleuth.agent.snapshot(thread)["pending"] if m["id"] != json.loads(value)["m"])
            # Reject asks why in a form; the form opens while Slack is up, and is submitted in the outage.
            h.click(B.REJECT, json.dumps({"thread": thread, "m": second["id"]}), user=ALICE, channel="C1",
                    message=diagnosis)
            form = web.wait_for(lambda: web.views, what="the reject form")[0]
            web.always(Fault.error(503))
            assert h.click(B.APPROVE, value, user=ALICE, channel="C1", message=diagnosis).status == 200
            assert h.submit(form, {"reason": {"value": {"type": "plain_text_input", "value": "too risky"}}},
                            user=ALICE).status == 200
            decided = lambda: {d["id"]: d["approved"] for d in h.sleuth.agent.snapshot(thread)["decisions"]}  # noqa: E731
            web.wait_for(lambda: len(decided()) == 2, timeout=30, what="both decisions taken in the outage")
            time.sleep(2.0)  # retries fail meanwhile
            web.always(None)
            said = lambda: [m for m in web.bot_messages("C1", diagnosis.thread_ts)  # noqa: E731
                            if "approved *" in m.text or "rejected *" in m.text]
            web.wait_for(lambda: len(said()) == 2, timeout=60, what="both decisions announced after the outage")
            time.sleep(1.5)  # a second announcement would come within the sweeps
            assert sorted(m.text.split("*")[1] for m in said()) == sorted([json.loads(value)["m"], second["id"]])
            assert len(said()) == 2, "each announced once"
            assert "Reason: too risky" in next(m.text for m in said() if "rejected" in m.text)
            assert decided() == {json.loads(value)["m"]: True, second["id"]: False}
            assert not web.ephemerals_for(ALICE, "C1"), "nobody is told their own click was already decided"
            incident = h.store.latest_incident(team="T0SLEUTH", channel="C1")
            assert len([e for e in h.store.timeline(incident.id) if e.kind == "decision"]) == 2
            rows = work_rows(tmp_path / "state.db")
            decisions = {k: r for k, r in rows.items() if k.startswith(("action:", "view:"))}
            assert len(decisions) == 2 and all(r["tries"] >= 1 for r in decisions.values()), rows
            web.wait_for(lambda: all(r["state"] == "done" for k, r in work_rows(tmp_path / "state.db").items()
                                     if k.startswith(("action:", "view:"))), timeout=30, what="the decisions done")
        finally:
            keeper.stop()
            h.close()


def test_start_sev_and_resolve_during_a_slack_outage_each_say_so_once_it_answers(tmp_path):
    """An incident opened, its severity raised and resolved while Slack's Web API is down: each
    change is made once, and once Slack answers each is said once (the opening, the severity, the
    summary), with nobody told their own incident "already exists"."""
    with SlackWebStandIn() as web:
        h, keeper = _harness(tmp_path, web, delivery_deadline_s=60)
        try:
            web.always(Fault.error(503))
            assert h.command("start Payments are failing", channel="C1", user=ALICE).status == 200
            incident = lambda: h.store.latest_incident(team="T0SLEUTH", channel="C1")  # noqa: E731
            web.wait_for(lambda: incident() is not None, timeout=30, what="the incident opened in the outage")
            assert h.command("sev 1", channel="C1", user=ALICE).status == 200
            web.wait_for(lambda: incident().severity == 1, timeout=30, what="the severity set in the outage")
            assert h.command("resolve fixed by rolling back", channel="C1", user=ALICE).status == 200
            web.wait_for(lambda: incident().status == "resolved", timeout=30, what="the incident resolved in the outage")
            time.sleep(1.5)  # retries fail meanwhile
            web.always(None)
            said = lambda: [m.text for m in web.bot_messages("C1")]  # noqa: E731
            web.wait_for(lambda: any("opened *Payments are failing*" in s for s in said())
                         and any("set the severity to *SEV1*" in s for s in said())
                         and h.store.get(incident().id).summary_ts,
                         timeout=60, what=f"the opening, the severity and the summary after the outage: {said()}")
            time.sleep(1.5)  # a second announcement would come within the sweeps
            texts = said()
            assert sum("opened *Payments are failing*" in s for s in texts) == 1, texts
            assert sum("set the severity to *SEV1*" in s for s in texts) == 1, texts
            assert h.store.get(incident().id).summary_ts, "the summary was posted and recorded"
            assert not web.ephemerals_for(ALICE, "C1"), "nobody is told their own incident already exists"
            entries = [e.kind for e in h.store.timeline(incident().id)]
            assert entries.count("severity") == 1, entries
            rows = work_rows(tmp_path / "state.db")
            assert len(rows) == 3 and all(r["tries"] >= 1 for r in rows.values()), rows
        finally:
            keeper.stop()
            h.close()


def test_429_for_longer_than_the_client_retries_still_delivers(tmp_path):
    with SlackWebStandIn() as web:
        h, keeper = _harness(tmp_path, web, delivery_deadline_s=60)
        try:
            web.throttle("chat.postMessage", times=7, retry_after="1")  # the client gives up after 3 retries
            h.command("checkout is returning 500s", channel="C1", user=ALICE)
            web.wait_for(lambda: diagnoses(web, "C1"), timeout=60, what="the diagnosis after 7 throttled posts")
            posts = web.calls_to("chat.postMessage")
            gaps = [b.at - a.at for a, b in zip(posts[:8], posts[1:8])]
            assert min(gaps) >= 0.9, f"Retry-After honoured between every try: {gaps}"
            time.sleep(0.5)
            assert len(diagnoses(web, "C1")) == 1
            assert len([m for m in web.bot_messages("C1") if m.text.startswith("Investigating")]) == 1
        finally:
            keeper.stop()
            h.close()


def test_work_given_up_after_the_deadline_is_told_in_the_channel_once_slack_answers(tmp_path):
    with SlackWebStandIn() as web:
        h, keeper = _harness(tmp_path, web, delivery_deadline_s=2.0)
        try:
            web.always(Fault.error(503))
            h.command("checkout is returning 500s", channel="C1", user=ALICE)
            time.sleep(4.0)  # past the deadline, Slack still down: nobody can be told yet
            assert not web.bot_messages("C1")
            web.always(None)
            told = web.wait_for(lambda: [m for m in web.bot_messages("C1") if "gave up" in m.text], timeout=20,
                                what="the notice once Slack answers again")
            assert len(told) == 1 and f"<@{ALICE}>'s `/diagnose` request" in told[0].text
            assert "<!date^" in told[0].text and "run it again" in told[0].text
            time.sleep(1.0)
            assert len([m for m in web.bot_messages("C1") if "gave up" in m.text]) == 1, "told once"
            assert not diagnoses(web, "C1")
            assert {r["state"] for r in work_rows(tmp_path / "state.db").values()} == {"abandoned"}
        finally:
            keeper.stop()
            h.close()


# --- concurrent starts and first uses ---------------------------------------------------------


def test_replicas_creating_the_schema_together_on_a_fresh_postgresql(tmp_path):
    """Three replicas (threads, each with its own connections, as processes would have) open the
    checkpoint tables and the incident store at once on a fresh schema: none fails."""
    from bot.agent import open_checkpointer
    from bot.config import StorageConfig
    from bot.incidents.store import IncidentStore
    from bot.slack.claims import WorkClaims

    tried = failed = 0
    for _ in range(3):
        with postgres_schema() as url:
            storage = StorageConfig(sqlite=tmp_path / "unused.db", postgres=url)
            start = threading.Barrier(3)
            errors: list[str] = []

            def replica() -> None:
                try:
                    start.wait()
                    with open_checkpointer(storage):
                        store = IncidentStore(storage)
                        claims = WorkClaims(storage)
                        assert claims.claim_work(f"command:{threading.get_ident()}", {}, owner="r")
                        claims.close()
                        store.close()
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(f"{type(exc).__name__}: {exc}")

            threads = [threading.Thread(target=replica) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            tried += 3
            failed += len(errors)
            assert not errors, errors
    assert (tried, failed) == (9, 0)


def test_an_older_work_table_is_migrated(tmp_path):
    from bot.config import StorageConfig
    from bot.slack.claims import WorkClaims

    db = tmp_path / "state.db"
    conn = sqlite3.connect(str(db))
    conn.execute("""CREATE TABLE sleuth_work (key TEXT PRIMARY KEY, body TEXT NOT NULL, state TEXT NOT NULL,
                    owner TEXT NOT NULL, attempts INTEGER NOT NULL, received_at REAL NOT NULL,
                    heartbeat_at REAL NOT NULL, done_at REAL, note TEXT NOT NULL DEFAULT '{}')""")
    conn.execute("INSERT INTO sleuth_work VALUES ('command:old', '{}', 'claimed', 'gone', 1, ?, 0, NULL, '{}')",
                 (time.time(),))
    conn.commit()
    conn.close()
    claims = WorkClaims(StorageConfig(sqlite=db))
    try:
        assert claims.take_over("command:old", owner="me", stale_after=1)
        assert claims.retry_work("command:old", owner="me", at=0, error="HTTP 503")
        assert [w.key for w in claims.due_work()] == ["command:old"] and claims.work("command:old").tries == 1
    finally:
        claims.close()


def test_three_first_uses_of_a_fresh_memory_at_once(tmp_path):
    from bot.slack.serve import demo_setup
    from index.store import Memory

    config, _ = demo_setup(None)
    tried = failed = 0
    for run in range(3):
        copy = tmp_path / f"memory{run}"
        shutil.copytree(config.memory.path, copy)
        memory_config = config.memory.model_copy(update={"path": copy})
        start = threading.Barrier(3)
        errors: list[str] = []

        def first_use() -> None:
            try:
                start.wait()
                memory = Memory(memory_config)
                if not memory.is_empty():
                    found = memory.find_similar_incidents("checkout is returning 500s", k=5)
                    assert found
                    memory.suggest(found, "checkout is returning 500s")
                Memory(memory_config).find_runbooks("checkout returns 500s", k=3)
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=first_use) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        tried += 3
        failed += len(errors)
    assert (tried, failed) == (9, 0), errors


def test_three_diagnose_at_once_on_a_fresh_bot_all_succeed(tmp_path):
    with SlackWebStandIn() as web:
        h = SlackHarness(tmp_path, web)
        h.sleuth.gate = threading.BoundedSemaphore(3)  # all three investigations (and first uses) at once
        try:
            commands = [threading.Thread(target=h.command, args=(f"checkout is returning 500s ({n})",),
                                         kwargs={"channel": f"C{n}", "user": ALICE}) for n in range(3)]
            for t in commands:
                t.start()
            for t in commands:
                t.join(10)
            for n in range(3):
                web.wait_for(lambda n=n: diagnoses(web, f"C{n}"), timeout=90, what=f"C{n}'s diagnosis")
            for n in range(3):
                thread = diagnoses(web, f"C{n}")[0].thread_ts
                snapshot = h.sleuth.agent.snapshot(f"T0SLEUTH:C{n}:{thread}")
                incidents = snapshot["diagnosis"]["sources"]["incidents"]
                assert incidents["status"] == "ok", incidents
            assert not web.ephemerals, web.ephemerals
            assert not PYTHON_ERRORS.search(said_to_slack(web))
        finally:
            h.close()


def test_retry_handback_and_notice_states_on_both_backends(storage):
    from bot.slack.claims import WorkClaims

    claims = WorkClaims(storage)
    try:
        assert claims.claim_work("command:A", {"channel_id": "C1"}, owner="p1")
        assert claims.claim_work("command:B", {"channel_id": "C2"}, owner="p1")
        claims.note_work("command:A", {"plan": ["C1", "1.0"]})
        claims.note_work("command:A", {"investigated": True})
        assert claims.work_note("command:A") == {"plan": ["C1", "1.0"], "investigated": True}, "notes add up"
        assert claims.retry_work("command:A", owner="p1", at=time.time() + 60, error="HTTP 503")
        assert not claims.retry_work("command:A", owner="p1", at=0, error="again"), "only the owner's claimed work"
        assert claims.due_work() == [] and claims.next_due() is not None
        assert claims.release_work("p1") == 1, "a stopping process hands back what it still holds"
        due = claims.due_work()
        assert [(w.key, w.tries, w.last_error) for w in due] == [("command:B", 0, None)]
        assert [claims.take_due("command:B", owner=o) for o in ("p2", "p3")] == [True, False], "one taker"
        assert claims.heartbeat("p2") == 1 and claims.work_state("command:B") == "claimed"
        assert claims.fail_work("command:A", error="HTTP 503")
        assert [w.key for w in claims.due_work(state="failed")] == ["command:A"]
        assert [claims.take_notice("command:A", again_at=time.time() + 60) for _ in range(2)] == [True, False]
        claims.give_up_work("command:A")
        assert claims.work_state("command:A") == "abandoned" and claims.work_note("command:A")["investigated"]
    finally:
        claims.close()
