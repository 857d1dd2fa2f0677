"""``sleuth serve`` as a user runs it: Socket Mode through the real SocketModeHandler against the
WebSocket stand-in, HTTP mode through the real server, both pointed at the Web API stand-in by
SLEUTH_SLACK_API_URL; and the one-sentence refusals when tokens are missing or wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.slack import blocks as B
from tests.slack_standins import (SignedSender, SlackWebStandIn, SocketModeStandIn, block_action, event_callback,
                                  slash_command)
from tests.standins import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
ALICE, BOB = "U0ALICE", "U0BOB"


def _serve(tmp_path: Path, web: SlackWebStandIn, *args: str, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "SLACK_BOT_TOKEN": web.bot_token, "SLACK_APP_TOKEN": web.app_token,
                   "SLEUTH_SLACK_API_URL": web.api_url, "PYTHONPATH": str(ROOT), **env}
    log = open(tmp_path / "serve.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", *args], cwd=tmp_path,
                            env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _stop(process: subprocess.Popen, tmp_path: Path) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return (tmp_path / "serve.log").read_text(errors="replace")


def test_socket_mode_serves_a_diagnosis_events_and_actions(tmp_path):
    with SlackWebStandIn() as web, SocketModeStandIn() as socket:
        web.socket_url = socket.url
        process = _serve(tmp_path, web)
        try:
            socket.wait_connected(timeout=60)
            opened = web.calls_to("apps.connections.open")
            assert opened and opened[0].token == web.app_token

            started = time.monotonic()
            envelope = socket.send("slash_commands", slash_command("", channel="C1", user=ALICE))
            socket.ack(envelope, timeout=5)
            assert time.monotonic() - started < 3.0
            plan = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Investigating")),
                                             None), what="the plan")
            diagnosis = web.wait_for(lambda: next((m for m in web.bot_messages("C1", plan.ts)
                                                   if m.text.startswith("Diagnosis")), None),
                                     timeout=60, what="the diagnosis in the thread")
            assert "code change in checkout" in json.dumps(diagnosis.blocks)

            flagged = web.human_message("C1", BOB, "paged the payments team")
            event = event_callback({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                                    "item": {"type": "message", "channel": "C1", "ts": flagged.ts}},
                                   event_id="Ev0SOCKET1")
            for attempt in (0, 1, 2):  # Slack's redeliveries over the socket
                socket.ack(socket.send("events_api", event, retry_attempt=attempt))
            timeline = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.pinned
                                                  and "paged the payments team" in json.dumps(m.blocks)), None),
                                    what="the flagged message on the timeline")
            assert json.dumps(timeline.blocks).count("paged the payments team") == 1

            value = next(b["elements"][0]["value"] for b in diagnosis.blocks if b["type"] == "actions")
            socket.ack(socket.send("interactive", block_action(B.APPROVE, value, user=ALICE, channel="C1",
                                                               message=diagnosis.to_slack())))
            web.wait_for(lambda: any("approved" in m.text for m in web.bot_messages("C1", plan.ts)),
                         what="the approval")
            time.sleep(0.3)
            assert len(web.calls_to("conversations.history")) == 1, "one effect for three deliveries"
        finally:
            log = _stop(process, tmp_path)
        assert process.returncode in (0, -signal.SIGTERM), log[-3000:]
        assert (tmp_path / ".sleuth" / "state.db").is_file()


def test_http_mode_serves_signed_requests_only(tmp_path):
    with SlackWebStandIn() as web:
        port = free_port()
        process = _serve(tmp_path, web, "--http", "--port", str(port), "--host", "127.0.0.1",
                         SLACK_SIGNING_SECRET="s3cr3t")
        try:
            assert wait_until_ready(process, f"http://127.0.0.1:{port}/healthz", 60), \
                (tmp_path / "serve.log").read_text()
            sender = SignedSender(f"http://127.0.0.1:{port}/slack/events", "s3cr3t")
            helped = sender.command(slash_command("help", channel="C1", user=ALICE))
            assert helped.status == 200 and "rollup [all]" in helped.body
            forged = SignedSender(f"http://127.0.0.1:{port}/slack/events", "wrong").command(
                slash_command("start X", channel="C1", user=ALICE))
            assert forged.status == 401
            time.sleep(0.2)
            assert not web.calls_to("chat.postMessage")
        finally:
            _stop(process, tmp_path)


def test_work_a_killed_process_left_is_replayed_once_by_the_next(tmp_path):
    """/diagnose is claimed, then the process dies (SIGKILL) while Slack hangs on an edit of its
    plan. The next process takes the claim over once it stops beating, marks the old plan message
    as interrupted and runs the diagnosis again, once. An event
    the dead process had claimed is done once too, whether the replay or Slack's redelivery
    (which may arrive before or after the claim goes stale) gets to it first."""
    (tmp_path / "sleuth.yml").write_text("slack:\n  takeover_after_s: 5\n")
    with SlackWebStandIn() as web:
        port = free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        args = ("--http", "--port", str(port), "--host", "127.0.0.1", "-c", "sleuth.yml")
        first = _serve(tmp_path, web, *args, SLACK_SIGNING_SECRET="s3cr3t")
        second = None
        try:
            assert wait_until_ready(first, f"http://127.0.0.1:{port}/healthz", 60), (tmp_path / "serve.log").read_text()
            sender = SignedSender(url, "s3cr3t")
            assert sender.command(slash_command("start Search is slow sev2", channel="C2", user=BOB)).status == 200
            web.wait_for(lambda: any(m.pinned for m in web.bot_messages("C2")), what="C2's pinned timeline")
            # The plan is posted, then its first edit hangs: the investigation ends, but the work
            # waits for that edit, claimed and not done, when the process is killed.
            web.stall("chat.update", 20, drop=True)
            assert sender.command(slash_command("checkout is returning 500s", channel="C1", user=ALICE)).status == 200
            old_plan = web.wait_for(lambda: next((m for m in web.bot_messages("C1")
                                                  if m.text.startswith("Investigating")), None), what="the plan")
            web.wait_for(lambda: web.calls_to("chat.update"), what="the stalled plan edit")
            flagged = web.human_message("C2", BOB, "paged the search team")
            web.stall("conversations.history", 20)
            event = event_callback({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                                    "item": {"type": "message", "channel": "C2", "ts": flagged.ts}},
                                   event_id="Ev0KILLED1")
            assert sender.event(event).status == 200
            web.wait_for(lambda: web.calls_to("conversations.history"), what="the stalled history read")
            workers = _children(first.pid)
            first.kill()
            first.wait(timeout=10)

            second = _serve(tmp_path, web, *args, SLACK_SIGNING_SECRET="s3cr3t")
            assert wait_until_ready(second, f"http://127.0.0.1:{port}/healthz", 60), \
                (tmp_path / "serve.log").read_text()
            # Slack's own redelivery, while the dead claim is still fresh: no second effect from it.
            assert sender.event(event, retry_num=1).status == 200
            diagnosis = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.thread_ts and
                                                   m.text.startswith("Diagnosis")), None),
                                     timeout=90, what="the diagnosis from the replayed /diagnose")
            assert "code change in checkout" in json.dumps(diagnosis.blocks)
            timeline = web.wait_for(lambda: next((m for m in web.bot_messages("C2") if m.pinned and
                                                  "paged the search team" in json.dumps(m.blocks)), None),
                                    timeout=60, what="the replayed reaction on C2's timeline")
            time.sleep(1.0)
            assert json.dumps(timeline.blocks).count("paged the search team") == 1
            assert len([m for m in web.bot_messages("C1") if m.text.startswith("Diagnosis")]) == 1
            if diagnosis.thread_ts == old_plan.ts:  # its investigation had finished: resumed in its own thread
                assert not web.message("C1", old_plan.ts).text.startswith(":warning: Sleuth stopped"), \
                    "a plan whose investigation finished is never marked interrupted"
            else:
                assert web.message("C1", old_plan.ts).text.startswith(":warning: Sleuth stopped"), \
                    "the dead process's plan message says the work was started again"
            assert len([m for m in web.bot_messages() if m.pinned]) == 2
        finally:
            log = _stop(second, tmp_path) if second is not None else ""
            if first.poll() is None:
                first.kill()
        assert "replaying command:" in log, log[-3000:]
        assert workers, "the chart worker process was running"
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "the killed process's chart worker exits"


@pytest.mark.parametrize("env, args, says", [
    ({"SLACK_BOT_TOKEN": ""}, [], "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": "xoxp-user"}, [], "starting with xoxb-"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": ""}, [], "SLACK_APP_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, [], "starting with xapp-"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": ""}, ["--http"], "SLACK_SIGNING_SECRET is not set"),
])
def test_serve_refuses_missing_or_wrong_tokens_in_one_sentence(env, args, says, monkeypatch):
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli_app, ["serve", *args])
    assert result.exit_code == 2
    assert says in result.output and result.output.count("\n") == 1


def test_serve_says_when_slack_refuses_the_token(tmp_path, monkeypatch):
    with SlackWebStandIn(bot_token="xoxb-the-right-one") as web:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-a-wrong-one")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "x")
        monkeypatch.setenv("SLEUTH_SLACK_API_URL", web.api_url.rstrip("/"))
        result = CliRunner().invoke(cli_app, ["serve", "--http", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "Slack did not accept SLACK_BOT_TOKEN" in result.output and "invalid_auth" in result.output


def test_serve_says_when_slack_refuses_the_app_token(tmp_path, monkeypatch):
    with SlackWebStandIn(app_token="xapp-the-right-one") as web, SocketModeStandIn() as socket:
        web.socket_url = socket.url
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SLACK_BOT_TOKEN", web.bot_token)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-a-wrong-one")
        monkeypatch.setenv("SLEUTH_SLACK_API_URL", web.api_url)
        result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code == 2
    assert "Slack refused the Socket Mode connection" in result.output and "invalid_auth" in result.output
