"""The change webhook: CI/CD posts changes, they land in SQLite, investigations read them back."""

from __future__ import annotations

import json
import os
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from bot.config import load_config
from tools.changes import ChangeStore, ChangesConfig, WebhookConfig, gather_changes, make_webhook_server

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token"
T = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc).timestamp()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def change(change_id: str | None = "chg-1", minutes: float = 0, **fields) -> dict:
    body = {"id": change_id, "ts": datetime.fromtimestamp(T + 60 * minutes, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "service": "checkout", "kind": "deploy", "summary": "checkout v2.15.0", "version": "v2.15.0",
            "previous_version": "v2.14.0", "author": "ci-bot"}
    if change_id is None:
        del body["id"]
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


class Webhook:
    def __init__(self, store_path: Path, token: str | None = TOKEN) -> None:
        self.config = WebhookConfig(store=store_path, token=token, host="127.0.0.1", port=0)
        self.store = ChangeStore(store_path)
        self.server = make_webhook_server(self.config, self.store)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def post(self, body, headers=AUTH, raw: bytes | None = None, path: str = "/changes") -> httpx.Response:
        if raw is not None:
            return self.http.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})
        return self.http.post(path, json=body, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        self.store.close()


@pytest.fixture
def webhook(tmp_path):
    hook = Webhook(tmp_path / "store" / "changes.sqlite3")
    yield hook
    hook.close()


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, service, kind FROM changes ORDER BY ts").fetchall()


def test_one_change_and_a_list_are_accepted_with_their_ids(webhook):
    answer = webhook.post(change("chg-1", pipeline="build-811"))
    assert answer.status_code == 202 and answer.json() == {"stored": ["chg-1"]}

    answer = webhook.post([change("chg-2", 5, service="search", kind="config", summary="search: ranking weights"),
                           change(None, 7, service="auth", kind="flag", summary="auth: new login flow on")])
    assert answer.status_code == 202
    generated = f"webhook-auth-{int(T + 420)}"
    assert answer.json() == {"stored": ["chg-2", generated]}

    stored = webhook.store.between(T - 60, T + 3600)
    assert [(c.id, c.service, c.kind, c.source) for c in stored] == [
        ("chg-1", "checkout", "deploy", "webhook"), ("chg-2", "search", "config", "webhook"),
        (generated, "auth", "flag", "webhook")]
    first = stored[0]
    assert (first.ts, first.version, first.previous_version, first.author) == (T, "v2.15.0", "v2.14.0", "ci-bot")
    assert first.extra == {"pipeline": "build-811"}  # unknown fields are kept, not dropped
    assert webhook.store.between(T + 1, T + 360) == [stored[1]]  # the window is respected


def test_the_same_id_twice_is_one_row_with_the_latest_content(webhook):
    assert webhook.post(change("chg-1", summary="first attempt")).status_code == 202
    assert webhook.post(change("chg-1", 2, summary="redeployed", version="v2.15.1")).status_code == 202
    [only] = webhook.store.between(T - 60, T + 3600)
    assert (only.summary, only.version, only.ts) == ("redeployed", "v2.15.1", T + 120)
    assert rows(webhook.config.store) == [("chg-1", "checkout", "deploy")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"token {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}],
                         ids=["missing", "wrong", "no-scheme", "other-scheme", "longer"])
def test_a_missing_or_wrong_token_is_401_and_stores_nothing(webhook, headers):
    answer = webhook.post(change(), headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "missing or wrong bearer token"}
    assert rows(webhook.config.store) == []


def test_without_a_token_configured_posts_need_no_auth(tmp_path):
    hook = Webhook(tmp_path / "open.sqlite3", token=None)
    try:
        assert hook.post(change(), headers={}).status_code == 202
    finally:
        hook.close()
    assert rows(tmp_path / "open.sqlite3") == [("chg-1", "checkout", "deploy")]


@pytest.mark.parametrize("body, field", [
    (change(service=None), "'service'"),
    (change(service="   "), "'service'"),
    (change(ts="yesterday after lunch"), "'ts'"),
    ({k: v for k, v in change().items() if k != "ts"}, "'ts'"),
    (change(kind="party"), "'kind'"),
    ("a plain string", "JSON object"),
    ([change("ok-1"), change("bad", kind="party")], "change 1: field 'kind'"),
], ids=["no-service", "blank-service", "bad-ts", "no-ts", "unknown-kind", "not-an-object", "one-bad-in-a-list"])
def test_a_bad_change_is_400_naming_the_field_and_stores_nothing(webhook, body, field):
    answer = webhook.post(body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert field in error and "\n" not in error
    assert rows(webhook.config.store) == []  # a list with one bad change is refused whole


@pytest.mark.parametrize("raw", [b"{oops", b"", b"\xff\xfe not utf-8"], ids=["broken", "empty", "binary"])
def test_a_body_that_is_not_json_is_400_with_one_sentence(webhook, raw):
    answer = webhook.post(None, raw=raw)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.strip() and "\n" not in error
    assert rows(webhook.config.store) == []


def test_other_paths_are_404_and_health_answers(webhook):
    assert webhook.post(change(), path="/change").status_code == 404
    assert webhook.http.get("/healthz").json() == {"ok": True}


def test_concurrent_posts_all_land(webhook):
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: webhook.post(change(f"chg-{i:02d}", i)), range(24)))
    assert {a.status_code for a in answers} == {202}
    assert [r[0] for r in rows(webhook.config.store)] == [f"chg-{i:02d}" for i in range(24)]


async def test_posted_changes_survive_a_restart_and_reach_gather_changes(tmp_path):
    path = tmp_path / "durable.sqlite3"
    hook = Webhook(path)
    try:
        assert hook.post([change("chg-1"), change("chg-2", 30, service="search")]).status_code == 202
        assert hook.post(change("chg-old", -600)).status_code == 202
    finally:
        hook.close()  # the server and its store are gone

    reopened = ChangeStore(path)
    try:
        assert [c.id for c in reopened.between(T - 3600, T + 3600)] == ["chg-1", "chg-2"]
    finally:
        reopened.close()

    found, failures = await gather_changes(ChangesConfig(webhook=WebhookConfig(store=path)), T - 3600, T + 3600)
    assert failures == []
    assert [(c.id, c.service, c.source) for c in found] == [("chg-1", "checkout", "webhook"), ("chg-2", "search", "webhook")]


async def test_gather_changes_merges_webhook_and_file_and_reports_a_broken_file(tmp_path):
    store = tmp_path / "hook.sqlite3"
    hook = Webhook(store)
    try:
        hook.post([change("chg-1"), change("dup", 3)])
    finally:
        hook.close()
    feed = tmp_path / "changes.jsonl"
    feed.write_text(json.dumps(change("from-file", 1, service="auth")) + "\n" + json.dumps(change("dup", 3)) + "\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "ts": "2026-03-10T14:00:00Z"}\n')  # no service
    found, failures = await gather_changes(ChangesConfig(files=[feed, broken], webhook=WebhookConfig(store=store)),
                                           T - 60, T + 3600)
    assert [c.id for c in found] == ["chg-1", "from-file", "dup"]  # merged, time-ordered, one per id
    [failure] = failures
    assert failure.startswith(f"{broken}, line 1:") and "'service'" in failure


def _read_lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put(None)


async def test_sleuth_webhook_command_serves_posts_into_the_configured_store(tmp_path):
    (tmp_path / "sleuth.yml").write_text(
        "changes:\n  webhook:\n    store: data/changes.sqlite3\n    token: ${HOOK_TOKEN}\n")
    env = {**os.environ, "HOOK_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "webhook", "--config", str(tmp_path / "sleuth.yml"), "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    try:
        deadline, seen, url = time.monotonic() + 30, [], None
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)/changes", line)
            url = found.group(1) if found else None
        assert url, f"the webhook did not start: {''.join(seen)}"
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/changes", json=change("chg-cli"), headers=AUTH).json() == {"stored": ["chg-cli"]}
            assert http.post("/changes", json=change("chg-x")).status_code == 401
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=5)  # it ends at EOF, once the process is gone
        process.stderr.close()
    config = load_config(tmp_path / "sleuth.yml", env={"HOOK_TOKEN": TOKEN})
    assert config.changes.webhook.store == tmp_path / "data" / "changes.sqlite3"
    found, failures = await gather_changes(config.changes, T - 60, T + 60)
    assert failures == [] and [c.id for c in found] == ["chg-cli"]
