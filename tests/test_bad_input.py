"""Bad and huge input, as a careless or hostile user gives it: through the CLI (a subprocess) and
the change webhook (HTTP). Each case ends in one sentence and exit 2 (CLI), a JSON 4xx (HTTP), or a
finished diagnosis that names the source at fault: never a traceback, a hang or a dropped
connection."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.factory import bad_deploy
from tools.changes import ChangeStore, WebhookConfig, make_webhook_server

ROOT = Path(__file__).resolve().parent.parent
LAUGHS = "\n".join(
    [f'{c}: &{c} [{", ".join([f"*{p}"] * 9) if p else ", ".join(["lol"] * 9)}]'
     for p, c in zip([""] + list("abcdefgh"), "abcdefghi")]
)


def sleuth(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})


def one_sentence(run: subprocess.CompletedProcess, *words: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stdout[-500:], run.stderr[-2000:])
    err = run.stderr.strip()
    assert "Traceback" not in err and "Error:" not in err.split("error:", 1)[-1][:1], err
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word.lower() in err.lower(), (word, err)
    return err


def each_one_sentence(kind: str, cases: dict[str, tuple[list[str], tuple[str, ...]]]) -> None:
    """``sleuth diagnose`` with each case's arguments (four at a time): one sentence with its words."""
    with ThreadPoolExecutor(4) as pool:
        runs = dict(zip(cases, pool.map(lambda args: sleuth("diagnose", "checkout is down", *args),
                                        [args for args, _ in cases.values()])))
    for name, (_, words) in cases.items():
        try:
            one_sentence(runs[name], *words)
        except AssertionError as exc:
            raise AssertionError(f"{kind} case {name}: {exc}") from None


# --- sleuth.yml -----------------------------------------------------------------------------------

CONFIGS: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "non-utf8": (b"metrics:\n  openmetrics: [\xff\xfe]\n", ("not UTF-8", "line 2")),
    "deep-nesting": (("a: " + "[" * 5000 + "]" * 5000).encode(), ("nested",)),
    "deep-mapping": (("".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n").encode(), ("nested",)),
    "billion-laughs": (LAUGHS.encode(), ("aliases",)),
    "too-many-aliases": (("a: &a x\nb: [" + ", ".join(["*a"] * 150) + "]\n").encode(), ("aliases",)),
    "a-list": (b"- metrics\n- logs\n", ("mapping",)),
    "bad-syntax": (b"metrics: [unclosed\n", ("not valid YAML",)),
    "unknown-key": (b"metrix: {}\n", ("unknown key", "metrics")),
    "wrong-type": (b"metrics:\n  step_s: fast\n", ("step_s",)),
    "unset-env": (b"model:\n  api_key: ${SLEUTH_TEST_SURELY_UNSET}\n", ("SLEUTH_TEST_SURELY_UNSET",)),
    "bad-duration": (b"investigation:\n  window: forever\n", ("window", "duration")),
    "huge-duration": (b"investigation:\n  baseline: 400d\n", ("baseline", "longer")),
    "nul-bytes": (b"\x00\x01\x02metrics", ("YAML",)),
    "empty": (b"", ("no evidence source",)),
    "a-number": (b"42\n", ("mapping",)),
}


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("configs")
    for name, (data, _) in CONFIGS.items():
        (folder / f"{name}.yml").write_bytes(data)
    (folder / "huge.yml").write_bytes(b"# " + b"x" * 6_000_000 + b"\n")
    return folder


def test_every_bad_config_is_one_sentence(configs):
    each_one_sentence("config", {name: (["--config", str(configs / f"{name}.yml")], words)
                                 for name, (_, words) in CONFIGS.items()})


def test_a_config_too_big_a_directory_or_missing_file_is_one_sentence(configs, tmp_path):
    one_sentence(sleuth("diagnose", "x", "--config", str(configs / "huge.yml")), "MB")
    one_sentence(sleuth("diagnose", "x", "--config", str(tmp_path)), "cannot read")
    one_sentence(sleuth("diagnose", "x", "--config", str(tmp_path / "nope.yml")), "cannot read")


# --- command-line values ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return bad_deploy(tmp_path_factory.mktemp("bad-input") / "bad-deploy")


ARGS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "year-1": (["--at", "0001-01-01T00:00:00Z"], ("1970-2100",)),
    "year-9999": (["--at", "9999-01-01T00:00:00Z"], ("1970-2100",)),
    "at-garbage": (["--at", "yesterday-ish"], ("ISO-8601",)),
    "at-future": (["--at", "2090-01-01T00:00:00Z"], ("future",)),
    "window-8d": (["--window", "8d"], ("longer than 7d",)),
    "window-zero": (["--window", "0s"], ("positive",)),
    "window-negative": (["--window", "-5m"], ("duration",)),
    "window-words": (["--window", "a while"], ("duration",)),
    "window-huge-number": (["--window", "99999999999999999999d"], ("longer",)),
}


def test_every_bad_command_line_value_is_one_sentence(scenario):
    each_one_sentence("argument", {name: (["--scenario", str(scenario), *args], words)
                                   for name, (args, words) in ARGS.items()})


def test_a_scenario_that_is_missing_a_file_or_not_utf8_is_one_sentence(scenario, tmp_path):
    one_sentence(sleuth("diagnose", "x", "--scenario", str(tmp_path / "nowhere")))
    one_sentence(sleuth("diagnose", "x", "--scenario", str(scenario / "scenario.yml")))
    broken = tmp_path / "broken"
    shutil.copytree(scenario, broken)
    (broken / "scenario.yml").write_bytes(b"title: \xff\n")
    one_sentence(sleuth("diagnose", "x", "--scenario", str(broken)), "UTF-8")


# --- evidence files: the diagnosis finishes, the source at fault says why ----------------------------


def diagnose_json(folder: Path) -> dict:
    run = sleuth("diagnose", "checkout is returning 500s", "--scenario", str(folder), "--json", timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)


def test_broken_evidence_files_fail_their_own_source_only(scenario, tmp_path):
    garbage = tmp_path / "garbage-metrics"
    shutil.copytree(scenario, garbage)
    lines = (garbage / "metrics.om").read_text().splitlines()
    (garbage / "metrics.om").write_text("\n".join(lines[:5] + ["this is not a sample line"] + lines[5:]) + "\n")
    result = diagnose_json(garbage)
    metrics = result["sources"]["metrics"]
    assert metrics["status"] == "error" and "line" in metrics["reason"], metrics
    assert result["sources"]["logs"]["status"] == "ok" and result["sources"]["changes"]["status"] == "ok"

    changes = tmp_path / "bad-changes"
    shutil.copytree(scenario, changes)
    with open(changes / "changes.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"ts": NaN, "service": "checkout", "kind": "deploy"}\n')
    result = diagnose_json(changes)
    assert result["sources"]["changes"]["status"] in ("error", "partial"), result["sources"]["changes"]
    assert "line" in result["sources"]["changes"]["reason"]
    assert result["sources"]["metrics"]["status"] == "ok"
    assert "TypeError" not in json.dumps(result["sources"]) and "ValueError" not in json.dumps(result["sources"])


def test_prometheus_text_with_millisecond_timestamps_is_read(scenario, tmp_path):
    folder = tmp_path / "millis"
    shutil.copytree(scenario, folder)
    lines = []
    for line in (scenario / "metrics.om").read_text().splitlines():
        if line and not line.startswith("#"):
            head, stamp = line.rsplit(" ", 1)
            line = f"{head} {float(stamp) * 1000:.6e}"
        lines.append(line)
    (folder / "metrics.om").write_text("\n".join(lines) + "\n")
    result = diagnose_json(folder)
    assert result["sources"]["metrics"]["status"] == "ok", result["sources"]["metrics"]
    assert result["hypotheses"][0]["component"] == "checkout"


def test_log_lines_that_are_huge_or_carry_impossible_times_are_skipped(scenario, tmp_path):
    folder = tmp_path / "huge-line"
    shutil.copytree(scenario, folder)
    with open(folder / "logs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"ts": "2026-03-10T14:00:00Z", "service": "checkout", "level": "error",
                                 "message": "x" * 3_000_000}) + "\n")
        handle.write('{"ts": NaN, "service": "checkout", "level": "error", "message": "nan time"}\n')
        handle.write('{"ts": 1e308, "service": "checkout", "level": "error", "message": "far time"}\n')
        handle.write('{"ts": -5, "service": "checkout", "level": "error", "message": "before time"}\n')
    result = diagnose_json(folder)
    assert result["sources"]["logs"]["status"] == "ok"
    assert result["hypotheses"][0]["component"] == "checkout"
    text = json.dumps(result)
    assert "x" * 70_000 not in text and "nan time" not in text and "far time" not in text


# --- the change webhook --------------------------------------------------------------------------


@pytest.fixture()
def webhook(tmp_path):
    store = ChangeStore(tmp_path / "changes.sqlite3")
    server = make_webhook_server(WebhookConfig(store=tmp_path / "changes.sqlite3", host="127.0.0.1", port=0), store)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1], store
    server.shutdown()
    server.server_close()
    store.close()


def raw_request(port: int, head: bytes, body: bytes = b"", *, half_close: bool = False) -> tuple[int, dict]:
    """Send bytes as they are; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                header, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
    header, _, rest = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), json.loads(rest)


GOOD = {"id": "c1", "ts": "2026-03-10T14:00:00Z", "service": "checkout", "kind": "deploy"}
BODIES: dict[str, tuple[bytes, int, str]] = {
    "nan-ts": (b'{"id": "c1", "ts": NaN, "service": "checkout"}', 400, "NaN"),
    "infinity-ts": (b'{"id": "c1", "ts": Infinity, "service": "checkout"}', 400, "Infinity"),
    "huge-ts": (b'{"id": "c1", "ts": 1e308, "service": "checkout"}', 400, "ts"),
    "overflow-ts": (b'{"id": "c1", "ts": 1e400, "service": "checkout"}', 400, "too large"),
    "negative-ts": (b'{"id": "c1", "ts": -5, "service": "checkout"}', 400, "ts"),
    "year-1-ts": (b'{"id": "c1", "ts": "0001-01-01T00:00:00Z", "service": "checkout"}', 400, "ts"),
    "deep-json": (b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
    "deep-object": (b'{"a":' * 200 + b"1" + b"}" * 200, 400, "nested"),
    "not-json": (b"ts=now&service=checkout", 400, "not JSON"),
    "not-utf8": (b'{"service": "\xff"}', 400, "UTF-8"),
    "a-string": (b'"checkout"', 400, "object"),
    "no-service": (json.dumps({"ts": "2026-03-10T14:00:00Z"}).encode(), 400, "service"),
    "bad-kind": (json.dumps({**GOOD, "kind": "yolo"}).encode(), 400, "kind"),
    "too-many": (json.dumps([GOOD] * 1001).encode(), 400, "at most"),
}


def test_every_bad_webhook_body_is_a_json_4xx(webhook):
    port, store = webhook
    for name, (body, status, word) in BODIES.items():
        head = (f"POST /changes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        code, answer = raw_request(port, head, body)
        assert code == status, (name, code, answer)
        assert word.lower() in answer["error"].lower(), (name, answer)
    assert store.between(0, 4102444800) == []


def test_bad_lengths_and_huge_bodies_get_an_answer_not_a_broken_pipe(webhook):
    port, store = webhook
    code, answer = raw_request(port, b"POST /changes HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    assert code == 400 and "Content-Length" in answer["error"]
    code, answer = raw_request(port, b"POST /changes HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
    assert code == 400
    code, answer = raw_request(port, b"POST /changes HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n",
                               b'{"id": "c1"', half_close=True)
    assert code == 400 and "ended" in answer["error"]
    # 10 MB: read and dropped, then a 413 the sender actually receives.
    started = time.monotonic()
    response = httpx.post(f"http://127.0.0.1:{port}/changes", content=b"[" + b" " * 10_000_000 + b"]", timeout=30)
    assert response.status_code == 413 and "MB" in response.json()["error"]
    assert time.monotonic() - started < 10
    # And the listener still serves the next sender.
    ok = httpx.post(f"http://127.0.0.1:{port}/changes", json=GOOD, timeout=10)
    assert ok.status_code == 202 and [c.id for c in store.between(0, 4102444800)] == ["c1"]


# --- Slack's HTTP-mode listener -----------------------------------------------------------------


def test_the_slack_listener_answers_bad_bodies_with_a_json_4xx():
    from bot.slack.serve import SlackHttpServer

    class Refusing:
        def dispatch(self, request):  # a body that got this far would be Bolt's to judge
            raise AssertionError("a bad body reached the app")

    server = SlackHttpServer(Refusing(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        code, answer = raw_request(port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert code == 400 and "Content-Length" in answer["error"]
        body = b"payload=\xff\xfe"
        code, answer = raw_request(port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                   + str(len(body)).encode() + b"\r\n\r\n", body)
        assert code == 400 and "UTF-8" in answer["error"]
        response = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=b"x" * 10_000_000, timeout=30)
        assert response.status_code == 413 and "MB" in response.json()["error"]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
