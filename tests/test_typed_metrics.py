"""Real-shaped metrics (counters, histograms, host series, young stacks) through the investigation.

The telemetry is what prometheus_client and node_exporter really expose (tests/realshaped.py):
counters that reset at every deploy, a ``code="500"`` child that appears with the first error,
cumulative histograms, ``up`` and ``*_info`` beside them, host series with no service label. Each
case runs on the embedded backend and, backfilled with promtool, on a real Prometheus: the two must
give the same diagnosis.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bot.investigate import investigate
from bot.scenario import load_scenario
from tests.realshaped import Host, RealStack, Service
from tests.test_backend_equivalence import differences, on_prometheus, summary

AT = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc).timestamp()
CUMULATIVE = re.compile(r"\b\w+(_total|_bucket|_count|_sum)\b")


def bad_release_stack(history_s: float = 5 * 3600, scrape_s: float = 15.0) -> RealStack:
    """checkout's v2 release fails 30% of requests from its deploy (a restart: counters reset);
    search's harmless v7 release (also a restart) lands two minutes earlier, the decoy."""
    onset = AT - 20 * 60
    stack = RealStack(start=AT - history_s, at=AT, scrape_s=scrape_s)
    stack.services = [
        Service("checkout", "10.0.1.5", failures=[(onset, AT + 1, 0.3)], restarts=[onset]),
        Service("search", "10.0.1.6", restarts=[onset - 120]),
        Service("payments", "10.0.1.7"),
    ]
    stack.hosts = [Host("10.0.1.5"), Host("10.0.1.6"), Host("10.0.1.7")]
    stack.change("rel-42", onset - 30, "checkout", "checkout v2: new cart merge", "v2", "v1")
    stack.change("rel-43", onset - 150, "search", "search v7: ranking tweaks", "v7", "v6")
    for k in range(0, int((AT - onset) / 5)):
        stack.log(onset + 5 * k, "checkout", "error", f"unhandled exception in /api/checkout: KeyError 'cart_id' order={k}")
    for k in range(0, int(history_s / 60)):
        stack.log(AT - history_s + 60 * k, "search", "info", "request served")
    return stack


def metric_queries(diagnosis) -> list[str]:
    return [e.query for e in diagnosis.evidence if e.source == "metrics"]


def assert_typed(diagnosis) -> None:
    """No cumulative series is read as a level: every counter or bucket sits inside rate()."""
    for query in metric_queries(diagnosis):
        for name in CUMULATIVE.findall(query):
            assert re.search(r"\b(rate|increase)\(", query), f"a cumulative series read as a level: {query}"
    for e in diagnosis.evidence:
        assert not re.search(r"\b(up|python_gc_\w+|process_start_time_seconds|\w+_info)\{", e.query), e.query


async def diagnose_both(folder, prometheus):
    scenario = load_scenario(folder)
    embedded = await investigate(scenario.request, scenario.config)
    server = prometheus.serve(folder / "metrics.om")
    real = await investigate(scenario.request, on_prometheus(scenario, server.url))
    left, right = summary(embedded), summary(real)
    assert left == right, differences(left, right)
    return embedded, real


@pytest.mark.prometheus
async def test_a_bad_release_read_through_rates_on_both_backends(tmp_path, prometheus):
    folder = bad_release_stack().write(tmp_path / "s", "checkout is returning 500s")
    d, real = await diagnose_both(folder, prometheus)
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("code_change", "checkout"), [h.statement for h in d.hypotheses]
    onset = datetime.fromisoformat(d.incident["onset"].replace("Z", "+00:00")).timestamp()
    # Within a step (60 s here): rate() needs two samples of the new 500 series to see it.
    assert abs(onset - (AT - 20 * 60)) <= 60
    # The error ratio exists although no 500 series did before the release (absent reads as 0).
    assert any("or 0 *" in q and 'code=~"5.."' in q for q in metric_queries(d))
    assert_typed(d)
    # The decoy release (also a restart: its counters fell to zero) is ruled out, not a suspect.
    search = [h for h in d.hypotheses if h.component == "search"]
    assert search and all(h.status == "refuted" for h in search)
    # Host series stand for their hosts' services, never as a component of their own.
    assert not any(h.component.startswith("node") for h in d.hypotheses)
    # Five hours of history: the day-earlier comparison is missing, and the result says so.
    assert any("day-earlier" in text for text in d.limits)
    # Discovery, timing and typed reading batched by metric: a handful of queries, not hundreds.
    assert real.sources["metrics"].queries <= 25, real.sources["metrics"].queries


@pytest.mark.prometheus
async def test_a_young_stack_says_what_limited_it(tmp_path, prometheus):
    """Twelve minutes of history at a 10 s scrape: the default 1 h window and 3 h baseline cannot
    hold; the baseline is shortened, the step follows the scrape interval, and the result says so."""
    onset = AT - 4 * 60
    stack = RealStack(start=AT - 12 * 60, at=AT, scrape_s=10.0)
    stack.services = [Service("checkout", "127.0.0.1", failures=[(onset, AT + 1, 0.3)]),
                      Service("cart", "127.0.0.1")]
    stack.hosts = [Host("127.0.0.1")]
    stack.change("rel-9", onset - 20, "checkout", "checkout v2", "v2", "v1")
    for k in range(0, 12 * 6):
        t = AT - 12 * 60 + 10 * k
        stack.log(t, "checkout", "info", "request served")
        if t >= onset:
            stack.log(t, "checkout", "error", "unhandled exception in /api/checkout: KeyError 'cart_id'")
    folder = stack.write(tmp_path / "young", "checkout is returning 500s")
    d, _ = await diagnose_both(folder, prometheus)
    assert any(text.startswith("12 min of metric history: baseline shortened") for text in d.limits), d.limits
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("code_change", "checkout"), [h.statement for h in d.hypotheses]
    onset_found = datetime.fromisoformat(d.incident["onset"].replace("Z", "+00:00")).timestamp()
    assert abs(onset_found - onset) <= 60
    assert_typed(d)
    # The terminal report says it too.
    shown = subprocess.run([sys.executable, "-m", "bot.cli", "diagnose", "checkout is returning 500s",
                            "--scenario", str(folder)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "limited: 12 min of metric history" in shown.stdout, shown.stdout[-2000:]
    # Log rates are over the twelve minutes the logs cover, not a nominal three hours.
    for e in d.evidence:
        if e.source == "logs" and "rate jumped" in e.summary:
            before = float(re.search(r"from ([\d.]+)/min", e.summary).group(1))
            assert before >= 1.0, e.summary


@pytest.mark.prometheus
async def test_host_contention_is_capacity_of_the_service_on_that_host(tmp_path, prometheus):
    onset = AT - 15 * 60
    stack = RealStack(start=AT - 4 * 3600, at=AT, scrape_s=15.0)
    stack.services = [Service("checkout", "10.0.2.1", slow=[(onset, AT + 1, 6.0)]),
                      Service("search", "10.0.2.2")]
    stack.hosts = [Host("10.0.2.1", contention=[(onset - 30, AT + 1, 0.98)]), Host("10.0.2.2")]
    folder = stack.write(tmp_path / "cpu", "checkout is slow")
    d, _ = await diagnose_both(folder, prometheus)
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("capacity", "checkout"), [h.statement for h in d.hypotheses]
    assert top.scope.get("host") == "10.0.2.1"
    assert not any(h.component.startswith("node") for h in d.hypotheses)


async def test_a_saturated_host_explains_a_slow_service_whose_own_series_show_nothing(tmp_path):
    """Latency read from coarse buckets may not move when the host's CPUs are taken; the user's
    report and the host's saturation are then the lead, a weaker one, and say so."""
    onset = AT - 10 * 60
    stack = RealStack(start=AT - 4 * 3600, at=AT, scrape_s=15.0)
    stack.services = [Service("checkout", "10.0.2.1"), Service("search", "10.0.2.2")]
    stack.hosts = [Host("10.0.2.1", contention=[(onset, AT + 1, 0.98)]), Host("10.0.2.2")]
    folder = stack.write(tmp_path / "cpu", "checkout is slow")
    scenario = load_scenario(folder)
    d = await investigate(scenario.request, scenario.config)
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("capacity", "checkout"), [h.statement for h in d.hypotheses]
    assert top.scope.get("host") == "10.0.2.1" and top.confidence < 0.8
    assert abs(datetime.fromisoformat(d.incident["onset"].replace("Z", "+00:00")).timestamp() - onset) <= 60


async def test_a_rollback_is_a_mitigation_not_a_suspect(tmp_path):
    stack = bad_release_stack(history_s=4 * 3600)
    onset = AT - 20 * 60
    # checkout went back to v1 five minutes ago: that is what someone did about it.
    stack.change("rel-44", AT - 5 * 60, "checkout", "checkout back to v1", "v1", "v2")
    folder = stack.write(tmp_path / "rb", "checkout is returning 500s")
    scenario = load_scenario(folder)
    d = await investigate(scenario.request, scenario.config)
    rollback = next(e for e in d.evidence if e.source == "changes" and "rel-44" in e.summary)
    assert rollback.summary.startswith("rollback rel-44") and "not a suspect" in rollback.summary
    cited = {e for h in d.hypotheses if h.status != "refuted" for e in h.evidence}
    assert rollback.id not in cited
    top = d.hypotheses[0]
    assert (top.category, top.component) == ("code_change", "checkout")
    assert "rel-42" in top.statement
    assert abs(datetime.fromisoformat(d.incident["onset"].replace("Z", "+00:00")).timestamp() - onset) <= 60


@pytest.mark.prometheus
async def test_a_backend_that_refuses_the_history_probe_still_gets_a_diagnosis(tmp_path, prometheus):
    """A PromQL-compatible backend that refuses one of the scan's own questions (how much history
    there is) costs the adaptation, not the investigation: the configured frame is used and the
    result says why."""
    from tests.standins import ProxyStandIn, Reply

    class RefusingCount(ProxyStandIn):
        def respond(self, request):
            if (request.param("query") or "").startswith("count("):
                return Reply.json(422, {"status": "error", "errorType": "execution", "error": "count is disabled here"})
            return super().respond(request)

    folder = bad_release_stack().write(tmp_path / "s", "checkout is returning 500s")
    scenario = load_scenario(folder)
    server = prometheus.serve(folder / "metrics.om")
    with RefusingCount(server.url) as proxy:
        d = await investigate(scenario.request, on_prometheus(scenario, proxy.url))
    assert d.sources["metrics"].status == "ok", d.sources["metrics"].reason
    assert any(text.startswith("could not tell how much metric history exists") and "count is disabled here" in text
               for text in d.limits), d.limits
    assert (d.hypotheses[0].category, d.hypotheses[0].component) == ("code_change", "checkout")
