"""Alerts in, end to end: Debian's Alertmanager routes a firing alert to a real `sleuth serve --http`
(the demo scenario's sources) against the Slack Web API stand-in. The routed channel's incident opens
with the alert's title and severity, the alert is posted with its labels and link, one diagnosis
follows in its thread; Alertmanager's repeats start nothing; the resolution goes on the timeline; a
POST without the token is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.livestack.alertmanager import Alertmanager, binary
from tests.slack_standins import SignedSender, SlackWebStandIn, slash_command
from tests.standins import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "am-s3cret"
SECRET = "s3cr3t"


def _serve(root: Path, web: SlackWebStandIn, port: int) -> subprocess.Popen:
    (root / "sleuth.yml").write_text(
        "alerts:\n"
        f"  token: {TOKEN}\n"
        "  channel: C0GENERAL\n"
        "  routes:\n"
        "    - match: {service: checkout}\n"
        "      channel: C0CHECKOUT\n")
    env = {**os.environ, "SLACK_BOT_TOKEN": web.bot_token, "SLEUTH_SLACK_API_URL": web.api_url,
           "SLACK_SIGNING_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    log = open(root / "serve.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--demo", "--http", "--port", str(port),
                                "--host", "127.0.0.1", "-c", "sleuth.yml"], cwd=root, env=env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert wait_until_ready(process, f"http://127.0.0.1:{port}/healthz", 60), (root / "serve.log").read_text()
    return process


def diagnoses(web: SlackWebStandIn, channel: str):
    return [m for m in web.bot_messages(channel) if m.thread_ts and m.text.startswith("Diagnosis")]


def alert_posts(web: SlackWebStandIn, channel: str, status: str):
    return [m for m in web.bot_messages(channel) if not m.thread_ts and m.text.startswith(f"Alert {status}")]


@pytest.mark.skipif(binary() is None and os.environ.get("CI") != "true",
                    reason="Alertmanager is not installed (apt-get install prometheus-alertmanager)")
def test_alertmanager_to_a_diagnosis_in_the_routed_channel(tmp_path):
    with SlackWebStandIn() as web:
        port = free_port()
        serve = _serve(tmp_path, web, port)
        url = f"http://127.0.0.1:{port}"
        try:
            refused = httpx.post(f"{url}/alerts/alertmanager", json={"version": "4", "alerts": []}, timeout=10)
            assert refused.status_code == 401 and "token" in refused.json()["error"]
            wrong = httpx.post(f"{url}/alerts", json={"title": "x"}, headers={"Authorization": "Bearer nope"},
                               timeout=10)
            assert wrong.status_code == 401

            with Alertmanager(tmp_path / "am", f"{url}/alerts/alertmanager", TOKEN).start() as am:
                began = time.time()
                labels = {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
                am.fire(labels, {"summary": "checkout 5xx above 5%"})
                diagnosis = web.wait_for(lambda: diagnoses(web, "C0CHECKOUT"), timeout=90,
                                         what="the diagnosis in the routed channel")[0]
                posted = alert_posts(web, "C0CHECKOUT", "firing")
                assert len(posted) == 1, [m.text for m in web.bot_messages("C0CHECKOUT")]
                alert_text = json.dumps(posted[0].blocks)
                assert "CheckoutErrors" in alert_text and "severity=critical" in alert_text
                assert "http://prometheus.local/graph" in alert_text
                # The diagnosis is in the alert's thread (its plan message first), as /diagnose's would be.
                assert diagnosis.thread_ts == posted[0].ts
                assert "checkout" in json.dumps(diagnosis.blocks)

                # Alertmanager repeats the firing group (repeat_interval 4 s): nothing new starts.
                time.sleep(max(0.0, began + 12 - time.time()))
                assert len(diagnoses(web, "C0CHECKOUT")) == 1
                assert len(alert_posts(web, "C0CHECKOUT", "firing")) == 1

                am.fire(labels, {"summary": "checkout 5xx above 5%"}, starts_at=began, ends_at=time.time() - 1)
                web.wait_for(lambda: alert_posts(web, "C0CHECKOUT", "resolved"), timeout=30,
                             what="the resolved alert")
            timeline = web.wait_for(lambda: next((m for m in web.bot_messages("C0CHECKOUT") if m.pinned
                                                  and "Alert resolved" in json.dumps(m.blocks)), None),
                                    timeout=20, what="the resolution on the pinned timeline")
            shown = json.dumps(timeline.blocks)
            assert "Alert firing: CheckoutErrors on checkout" in shown and "SEV1" in shown
            assert len([m for m in web.bot_messages("C0CHECKOUT") if m.pinned]) == 1
            # Resolving the incident stays a human's decision: it is still open.
            assert "resolved ·" not in shown
            assert len(diagnoses(web, "C0CHECKOUT")) == 1
            assert not web.bot_messages("C0GENERAL")

            # The commander's rollup counts the alerts by their latest state.
            sender = SignedSender(f"{url}/slack/events", SECRET)
            answer = sender.command(slash_command("rollup", channel="C0CHECKOUT", user="U0ALICE"))
            assert answer.status == 200 and "Alerts:* 0 firing, 1 resolved" in answer.body, answer.body

            # Grafana or anything else: the generic shape, routed to the default channel.
            generic = {"title": "search latency p99 above 2 s", "service": "search", "severity": "warning",
                       "link": "https://grafana.local/d/search"}
            auth = {"Authorization": f"Bearer {TOKEN}"}
            first = httpx.post(f"{url}/alerts", json=generic, headers=auth, timeout=10)
            assert first.status_code == 202 and first.json()["channel"] == "C0GENERAL", first.text
            again = httpx.post(f"{url}/alerts", json=generic, headers=auth, timeout=10)
            assert again.status_code == 200 and again.json()["duplicate"] is True
            web.wait_for(lambda: alert_posts(web, "C0GENERAL", "firing"), timeout=30, what="the generic alert")
            bad = httpx.post(f"{url}/alerts", json={"service": "search"}, headers=auth, timeout=10)
            assert bad.status_code == 400 and "title" in bad.json()["error"]
        finally:
            serve.terminate()
            serve.wait(timeout=60)
