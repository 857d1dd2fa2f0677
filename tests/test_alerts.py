"""Reading alerts: Alertmanager's webhook payload (version 4, as the real one posts it), the
generic shape, routing by labels, and the key that makes repeats and retries one piece of work."""

from __future__ import annotations

import copy

import pytest

from bot.alerts import AlertError, AlertRoute, AlertsConfig, parse_alertmanager, parse_generic, route

# What Debian's Alertmanager 0.25 posted for one firing alert (see tests/livestack/alertmanager.py).
FIRING = {
    "receiver": "sleuth", "status": "firing", "version": "4",
    "groupKey": '{}:{alertname="CheckoutErrors", service="checkout"}', "truncatedAlerts": 0,
    "groupLabels": {"alertname": "CheckoutErrors", "service": "checkout"},
    "commonLabels": {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"},
    "commonAnnotations": {"summary": "checkout 5xx above 5%"}, "externalURL": "http://am.local:9093",
    "alerts": [{
        "status": "firing", "labels": {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "checkout 5xx above 5%"}, "startsAt": "2026-12-07T03:29:17.631636Z",
        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.local/graph",
        "fingerprint": "4889ff3223809fa0",
    }],
}


def test_alertmanager_payload_is_read_as_posted():
    batch = parse_alertmanager(FIRING)
    assert batch.status == "firing" and batch.service == "checkout"
    assert batch.title == "CheckoutErrors on checkout"
    assert batch.question() == "alert CheckoutErrors: checkout 5xx above 5%"
    (alert,) = batch.alerts
    assert alert.ends_at is None  # Alertmanager's year-1 "not ended"
    assert abs(alert.starts_at - 1796614157.63) < 1
    assert alert.link == "http://prometheus.local/graph"


def test_a_repeat_is_the_same_work_and_a_resolution_or_a_new_alert_is_not():
    first, repeat = parse_alertmanager(FIRING), parse_alertmanager(copy.deepcopy(FIRING))
    assert first.key == repeat.key
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    assert parse_alertmanager(resolved).key != first.key
    joined = copy.deepcopy(FIRING)
    joined["alerts"].append({**FIRING["alerts"][0], "fingerprint": "aaaabbbbccccdddd",
                             "labels": {**FIRING["alerts"][0]["labels"], "instance": "b"}})
    assert parse_alertmanager(joined).key != first.key


@pytest.mark.parametrize("payload, words", [
    ([], "JSON object"),
    ({**FIRING, "version": "3"}, "version"),
    ({**FIRING, "alerts": []}, "no alerts"),
    ({**FIRING, "alerts": ["x"]}, "not an object"),
    ({**FIRING, "alerts": [{**FIRING["alerts"][0], "status": "pending"}]}, "firing or resolved"),
    ({**FIRING, "alerts": [{**FIRING["alerts"][0], "labels": ["a"]}]}, "labels"),
])
def test_bad_alertmanager_payloads_are_one_sentence(payload, words):
    with pytest.raises(AlertError, match=words):
        parse_alertmanager(payload)


def test_the_generic_shape_and_its_errors():
    batch = parse_generic({"title": "queue depth high", "service": "billing", "severity": "warning",
                           "starts_at": "2026-03-10T14:02:00Z", "link": "https://grafana.local/d/1"})
    assert batch.service == "billing" and batch.status == "firing" and batch.link == "https://grafana.local/d/1"
    assert batch.key == parse_generic({"title": "queue depth high", "service": "billing", "severity": "warning",
                                       "starts_at": "2026-03-10T14:02:00Z"}).key
    for payload, words in (({}, "title"), ({"title": "x", "starts_at": "soon"}, "starts_at"),
                           ({"title": "x", "status": "maybe"}, "status"), ("x", "JSON object")):
        with pytest.raises(AlertError, match=words):
            parse_generic(payload)


def test_routes_pick_the_channel_and_severity_first_match_wins():
    config = AlertsConfig(channel="CDEFAULT", routes=[
        AlertRoute(match={"service": "checkout"}, channel="CCHECKOUT"),
        AlertRoute(match={"service": "~pay.*"}, channel="CPAY", severity=2),
    ])
    batch = parse_alertmanager(FIRING)
    assert (route(batch, config).channel, route(batch, config).severity) == ("CCHECKOUT", 1)
    pay = parse_generic({"title": "x", "service": "payments-api"})
    assert (route(pay, config).channel, route(pay, config).severity) == ("CPAY", 2)
    other = parse_generic({"title": "x", "service": "search", "severity": "warning"})
    assert (route(other, config).channel, route(other, config).severity) == ("CDEFAULT", 3)
    assert route(other, AlertsConfig()) is None
    with pytest.raises(ValueError, match="regular expression"):
        AlertRoute(match={"service": "~("}, channel="C1")


def test_the_socket_mode_listener_takes_alerts_and_refuses_strangers(tmp_path):
    """Socket Mode has no HTTP server of its own: ``alerts.listen`` starts the intake's listener."""
    import threading

    import httpx

    from bot.alerts import AlertsConfig
    from bot.slack.alert_intake import AlertIntake, AlertListener
    from tests.slack_standins import SlackHarness, SlackWebStandIn

    with SlackWebStandIn() as web:
        harness = SlackHarness(tmp_path, web, memory=False)
        harness.config.alerts = AlertsConfig(token="tok", channel="C0ALERTS")
        listener = AlertListener(AlertIntake(harness.app, harness.sleuth), "127.0.0.1", 0)
        threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        url = f"http://127.0.0.1:{listener.server_address[1]}"
        try:
            assert httpx.post(f"{url}/alerts", json={"title": "x"}, timeout=10).status_code == 401
            assert httpx.post(f"{url}/elsewhere", json={}, headers={"Authorization": "Bearer tok"},
                              timeout=10).status_code == 404
            answer = httpx.post(f"{url}/alerts/alertmanager", json=FIRING, headers={"Authorization": "Bearer tok"},
                                timeout=10)
            assert answer.status_code == 202 and answer.json()["channel"] == "C0ALERTS", answer.text
            again = httpx.post(f"{url}/alerts/alertmanager", json=FIRING, headers={"Authorization": "Bearer tok"},
                               timeout=10)
            assert again.status_code == 200 and again.json()["duplicate"] is True
            posted = web.wait_for(lambda: [m for m in web.bot_messages("C0ALERTS")
                                           if not m.thread_ts and m.text.startswith("Alert firing")],
                                  timeout=30, what="the alert in the default channel")
            assert len(posted) == 1
            incident = harness.store.active_incident(team=harness.app.client.auth_test()["team_id"], channel="C0ALERTS")
            assert incident is not None and incident.severity == 1 and incident.title.startswith("CheckoutErrors")
        finally:
            listener.shutdown()
            listener.server_close()
            harness.close()
