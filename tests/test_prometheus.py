"""PrometheusBackend against a real Prometheus backfilled with known samples.

The embedded backend reads the same file, so each answer is also checked against it: both must
give the numbers a responder would see in Prometheus.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone

import pytest

from tools.http import HttpSourceConfig, SourceError
from tools.metrics import EmbeddedBackend, LinkConfig, PrometheusBackend, discovery_matchers
from tests.standins import ProxyStandIn

pytestmark = pytest.mark.prometheus

# 11:00 to 14:30 UTC: the data cross two 2-hour block boundaries (12:00, 14:00).
T0 = datetime(2026, 2, 1, 11, 0, tzinfo=timezone.utc).timestamp()
MINUTES = 210
GAP_LONG = range(60, 70)  # ten missing minutes: longer than the 5-minute lookback
GAP_SHORT = range(120, 123)  # three missing minutes: bridged by the lookback

CHECKOUT = 'http_error_ratio{service="checkout"}'


def _checkout_samples() -> dict[float, float]:
    return {T0 + 60 * k: round(0.01 + 0.0007 * k + 0.003 * (k % 7 == 0), 6)
            for k in range(MINUTES) if k not in GAP_LONG and k not in GAP_SHORT}


SERIES: list[tuple[str, dict[str, str], dict[float, float]]] = [
    ("http_error_ratio", {"service": "checkout"}, _checkout_samples()),
    ("http_error_ratio", {"service": "search"}, {T0 + 60 * k: round(0.002 + 0.0001 * (k % 5), 6) for k in range(MINUTES)}),
    ("up", {"job": "checkout", "instance": "10.0.0.7:9100"}, {T0 + 60 * k: 1.0 for k in range(MINUTES)}),
    ("container_memory_working_set_bytes", {"pod": "checkout-7d9f8-x2kq4", "namespace": "shop"},
     {T0 + 60 * k: 2.5e8 + 1024.0 * k for k in range(MINUTES)}),
    ("queue_depth", {"app": "payments"}, {T0 + 60 * k: float(k % 11) for k in range(MINUTES)}),
]


def write_openmetrics(path, series) -> None:
    lines, typed = [], set()
    for name, labels, samples in series:
        if name not in typed:
            lines.append(f"# TYPE {name} gauge")
            typed.add(name)
        rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.extend(f"{name}{{{rendered}}} {value!r} {int(ts)}" for ts, value in sorted(samples.items()))
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def reference(samples: dict[float, float], start: float, end: float, step: float) -> dict[float, float]:
    """Prometheus's rule, written out: at each start + k*step, the latest sample at or before it
    that is at most 5 minutes old."""
    stamps = sorted(samples)
    out = {}
    t = start
    while t <= end:
        earlier = [s for s in stamps if s <= t]
        if earlier and t - earlier[-1] <= 300:
            out[t] = samples[earlier[-1]]
        t += step
    return out


@pytest.fixture(scope="module")
def om_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prom-data") / "known.om"
    write_openmetrics(path, SERIES)
    return path


@pytest.fixture(scope="module")
def server(prometheus, om_file):
    return prometheus.serve(om_file)


@pytest.fixture
async def backend(server):
    prom = PrometheusBackend(HttpSourceConfig(url=server.url, timeout_s=10))
    yield prom
    await prom.aclose()


@pytest.fixture
def embedded(om_file):
    return EmbeddedBackend([om_file])


def as_dict(series) -> dict[float, float]:
    return dict(zip(series.timestamps.tolist(), series.values.tolist()))


async def test_range_query_returns_the_backfilled_samples(backend):
    samples = SERIES[0][2]
    start, end = T0, T0 + 60 * (MINUTES - 1)
    [series] = await backend.query_range(CHECKOUT, start, end, 60)
    assert series.labels == {"__name__": "http_error_ratio", "service": "checkout"}
    got = as_dict(series)
    # Every backfilled sample comes back exactly, at its own timestamp.
    for ts, value in samples.items():
        assert got[ts] == value, f"sample at {ts} changed"
    # The short gap is bridged by the lookback with the last sample before it ...
    for k in GAP_SHORT:
        assert got[T0 + 60 * k] == samples[T0 + 60 * 119]
    # ... the long one only for its first five minutes.
    for k in GAP_LONG:
        if (k - 59) * 60 <= 300:
            assert got[T0 + 60 * k] == samples[T0 + 60 * 59]
        else:
            assert T0 + 60 * k not in got
    assert len(got) == MINUTES - 5


async def test_unaligned_grid_follows_the_lookback_rule_like_the_embedded_backend(backend, embedded):
    start, end, step = T0 + 3017, T0 + 3017 + 45 * 80, 45.0
    [prom] = await backend.query_range(CHECKOUT, start, end, step)
    [emb] = await embedded.query_range(CHECKOUT, start, end, step)
    expected = reference(SERIES[0][2], start, end, step)
    assert len(expected) < 81, "the window should include points the lookback cannot fill"
    assert as_dict(prom) == expected
    assert as_dict(emb) == expected


async def test_range_query_outside_the_data_is_empty(backend):
    assert await backend.query_range(CHECKOUT, T0 - 7200, T0 - 600, 60) == []


async def test_series_discovery_finds_a_component_by_service_job_and_pod(backend, embedded):
    start, end = T0, T0 + 60 * MINUTES
    found = await backend.series(discovery_matchers("checkout"), start, end)
    expected = [
        {"__name__": "http_error_ratio", "service": "checkout"},
        {"__name__": "up", "job": "checkout", "instance": "10.0.0.7:9100"},
        {"__name__": "container_memory_working_set_bytes", "pod": "checkout-7d9f8-x2kq4", "namespace": "shop"},
    ]
    key = lambda labels: sorted(labels.items())  # noqa: E731
    assert sorted(found, key=key) == sorted(expected, key=key)
    assert sorted(await embedded.series(discovery_matchers("checkout"), start, end), key=key) == sorted(expected, key=key)
    payments = await backend.series(discovery_matchers("payments"), start, end)
    assert payments == [{"__name__": "queue_depth", "app": "payments"}]
    assert await backend.series(discovery_matchers("checkout"), T0 - 86400, T0 - 80000) == []


async def test_label_values_list_the_components(backend, embedded):
    start, end = T0, T0 + 60 * MINUTES
    assert await backend.label_values("service", start, end) == ["checkout", "search"]
    assert await backend.label_values("job", start, end) == ["checkout"]
    assert await backend.label_values("app", start, end) == ["payments"]
    for label in ("service", "job", "app", "pod"):
        assert await backend.label_values(label, start, end) == await embedded.label_values(label, start, end)


async def test_instant_query_takes_the_latest_sample_within_five_minutes(backend, embedded):
    samples = SERIES[0][2]
    at = T0 + 60 * 30 + 20
    [(labels, value)] = await backend.query(CHECKOUT, at)
    assert labels["service"] == "checkout" and value == samples[T0 + 60 * 30]
    assert await embedded.query(CHECKOUT, at) == [(labels, value)]
    assert await backend.query(CHECKOUT, T0 + 60 * 67) == []  # seven minutes after the last sample
    # Aggregations agree on both backends.
    [(_, total)] = await backend.query("sum(http_error_ratio)", T0 + 60 * 30)
    assert total == pytest.approx(samples[T0 + 60 * 30] + SERIES[1][2][T0 + 60 * 30])
    [(_, embedded_total)] = await embedded.query("sum(http_error_ratio)", T0 + 60 * 30)
    assert embedded_total == pytest.approx(total)
    # Functions too (rate here), with Prometheus's numbers; what the evaluator does not cover is
    # refused in one sentence.
    [(_, rate)] = await backend.query('rate(http_error_ratio{service="checkout"}[5m])', T0 + 60 * 30)
    [(_, embedded_rate)] = await embedded.query('rate(http_error_ratio{service="checkout"}[5m])', T0 + 60 * 30)
    assert embedded_rate == pytest.approx(rate, rel=1e-9)
    with pytest.raises(SourceError, match="does not support"):
        await embedded.query("predict_linear(http_error_ratio[10m], 600)", T0 + 60 * 30)


async def test_bad_promql_is_one_sentence_carrying_prometheus_message_and_is_not_retried(server):
    with ProxyStandIn(server.url) as proxy:
        prom = PrometheusBackend(HttpSourceConfig(url=proxy.url, attempts=3, backoff_initial_s=0.01))
        try:
            with pytest.raises(SourceError) as caught:
                await prom.query_range("rate(http_error_ratio[5m]", T0, T0 + 3600, 60)
        finally:
            await prom.aclose()
        assert len(proxy.seen("/api/v1/query_range")) == 1, "a 400 must not be retried"
    text = str(caught.value)
    assert "Prometheus" in text and "400" in text
    assert "parse error: unclosed left parenthesis" in text
    assert "\n" not in text


async def test_long_prometheus_errors_reach_the_responder_whole(backend):
    # Two series on each side of a one-to-one match: Prometheus answers 422 with a long message.
    with pytest.raises(SourceError) as caught:
        await backend.query("http_error_ratio + on() http_error_ratio", T0 + 1800)
    assert "many-to-many matching not allowed" in str(caught.value)


async def test_a_5xx_in_front_of_prometheus_is_retried_and_the_data_arrive(server):
    with ProxyStandIn(server.url) as proxy:
        proxy.fail_next(1, 503)
        prom = PrometheusBackend(HttpSourceConfig(url=proxy.url, attempts=3, backoff_initial_s=0.01))
        try:
            [series] = await prom.query_range(CHECKOUT, T0, T0 + 600, 60)
        finally:
            await prom.aclose()
        assert [r.answer for r in proxy.seen()] == ["status 503", "ok"]
    assert series.values.tolist() == [SERIES[0][2][T0 + 60 * k] for k in range(11)]


async def test_links_open_the_same_query_in_prometheus_and_grafana(server):
    query, start, end = CHECKOUT, T0 + 600, T0 + 4200

    def params(link: str) -> tuple[urllib.parse.SplitResult, dict[str, list[str]]]:
        parts = urllib.parse.urlsplit(link)
        return parts, urllib.parse.parse_qs(parts.query)

    plain = PrometheusBackend(HttpSourceConfig(url=server.url))
    parts, got = params(plain.link(query, start, end))
    assert f"{parts.scheme}://{parts.netloc}" == server.url and parts.path == "/graph"
    assert got["g0.expr"] == [query] and got["g0.range_input"] == ["3600s"]
    assert got["g0.end_input"] == ["2026-02-01 12:10:00"]

    public = PrometheusBackend(HttpSourceConfig(url=server.url),
                               LinkConfig(prometheus_url="https://prom.example.com/"))
    parts, got = params(public.link(query, start, end))
    assert (parts.netloc, parts.path, got["g0.expr"]) == ("prom.example.com", "/graph", [query])

    grafana = PrometheusBackend(HttpSourceConfig(url=server.url),
                                LinkConfig(grafana_url="https://grafana.example.com", grafana_datasource="prom-uid"))
    parts, got = params(grafana.link(query, start, end))
    assert (parts.netloc, parts.path) == ("grafana.example.com", "/explore")
    pane = json.loads(got["left"][0])
    assert pane["queries"][0]["expr"] == query
    assert pane["datasource"] == "prom-uid"
    assert pane["range"] == {"from": str(int(start * 1000)), "to": str(int(end * 1000))}
    # The embedded backend links to Grafana the same way, and nowhere without a URL to link to.
    assert EmbeddedBackend([], LinkConfig(grafana_url="https://grafana.example.com",
                                          grafana_datasource="prom-uid")).link(query, start, end) == grafana.link(query, start, end)
    assert EmbeddedBackend([]).link(query, start, end) is None
    for prom in (plain, public, grafana):
        await prom.aclose()


async def test_one_server_can_hold_several_files_at_different_dates(prometheus, om_file, tmp_path):
    later = T0 + 40 * 86400
    other = tmp_path / "later.om"
    write_openmetrics(other, [("http_error_ratio", {"service": "orders"}, {later + 60 * k: 0.5 + k for k in range(180)})])
    server = prometheus.serve(om_file, other)
    assert prometheus.serve(other, om_file) is server  # the same set of files is served once
    prom = PrometheusBackend(HttpSourceConfig(url=server.url))
    try:
        [early] = await prom.query_range(CHECKOUT, T0, T0 + 600, 60)
        [late] = await prom.query_range('http_error_ratio{service="orders"}', later, later + 600, 60)
        assert await prom.label_values("service", later, later + 3 * 3600) == ["orders"]
    finally:
        await prom.aclose()
    assert early.values.tolist() == [SERIES[0][2][T0 + 60 * k] for k in range(11)]
    assert late.values.tolist() == [0.5 + k for k in range(11)]


async def test_a_week_long_range_is_asked_with_a_step_prometheus_accepts(backend):
    # 8 days at 60 s would be 11,521 points per series: Prometheus refuses more than 11,000. The
    # step grows with the span instead, and the backfilled samples still come back.
    end = T0 + MINUTES * 60
    found = await backend.query_range(CHECKOUT, end - 8 * 86400, end, 60.0)
    assert found and len(found[0].timestamps) > 10
    steps = {float(b - a) for a, b in zip(found[0].timestamps, found[0].timestamps[1:])}
    assert min(steps) >= 63
