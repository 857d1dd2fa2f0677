"""Smoke test of the live-stack harness (tests/livestack): every part runs, every fault shows.

This checks the harness only, through Prometheus's HTTP API, the services' logs and the webhook's
store: targets up, traffic visible, a bad release creating the ``code="500"`` series, a restart
resetting counters, a table lock turning into slow, failing requests, a change round-tripping
through ``sleuth webhook``, and nothing left running or listening after close. Sleuth's diagnosis
on top of it is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.config import load_config
from tests.livestack import LiveStack, LiveStackUnavailable, port_open, skip_or_fail
from tests.livestack.processes import descendants, pid_alive
from tools.changes import gather_changes

pytestmark = [pytest.mark.prometheus, pytest.mark.livestack]


def _jobs(result: list[dict], minimum: float = 0.0) -> set[str]:
    return {r["metric"].get("job", "") for r in result if float(r["value"][1]) > minimum}


def test_live_stack_runs_injects_faults_and_cleans_up(tmp_path):
    started = time.monotonic()
    stack = LiveStack(tmp_path / "stack", ["checkout", "cart"], postgres=["checkout"], require_postgres=True)
    try:
        stack.start()
    except LiveStackUnavailable as exc:
        skip_or_fail(exc)

    with stack:
        # Every target is scraped successfully, each service under its own job.
        health = {t["labels"]["job"]: t["health"] for t in stack.targets()}
        assert health == {"checkout": "up", "cart": "up", "node": "up", "postgres": "up"}
        assert stack.skipped == {}

        # Traffic reaches both services and Prometheus sees it.
        stack.wait_for("sum by (job) (rate(http_requests_total[30s]))", timeout_s=30,
                       predicate=lambda r: _jobs(r) >= {"checkout", "cart"})
        assert stack.query('http_requests_total{code="500"}') == []
        assert stack.query('http_requests_total{code=~"5.."}') == []
        assert stack.query('node_load1{job="node"}') and stack.query('pg_up{job="postgres"} == 1')

        # A bad release on checkout, a real restart of cart with a new version.
        bad_at = stack.bad_release("checkout", "v2", error_share=0.5)
        restarted_at = stack.restart_with_version("cart", "v2")
        assert bad_at <= restarted_at <= time.time()

        first_500 = stack.wait_for('http_requests_total{job="checkout",code="500"}', timeout_s=20)
        assert first_500[0]["metric"]["path"] == "/api/checkout"
        assert stack.query('http_requests_total{code="500"}', at=bad_at) == []  # the series began after
        stack.wait_for('app_build_info{job="checkout",version="v2"}', timeout_s=15)
        stack.wait_for('resets(http_requests_total{job="cart",code="200"}[1m]) > 0', timeout_s=20)
        stack.wait_for('app_build_info{job="cart",version="v2"}', timeout_s=15)
        assert stack.query('http_requests_total{job="cart",code="500"}') == []  # a harmless version

        # A table lock: checkout's queries block, then time out after 2 s; cart does not use the database.
        locked_at = stack.lock_table(10)
        assert locked_at >= restarted_at
        # Queries blocked at the lock time out 2 s later: a scrape after that must show 503s.
        stack.wait_scraped_after(locked_at + 2.5, jobs=["checkout"])
        assert stack.query('http_requests_total{job="checkout",code="503"}')
        slow = ('sum(http_request_duration_seconds_bucket{job="checkout",le="+Inf"})'
                ' - sum(http_request_duration_seconds_bucket{job="checkout",le="1.0"}) > 0')
        stack.wait_for(slow, timeout_s=10)
        stack.wait_for(f'pg_locks_count{{job="postgres",datname="{stack.database}",mode="accessexclusivelock"}} > 0',
                       timeout_s=15)
        assert stack.query('http_requests_total{job="cart",code=~"5.."}') == []

        log = stack.logs["checkout"].read_text()
        assert "unhandled exception in /api/checkout: KeyError 'cart_id' (release v2)" in log
        assert "upstream database postgres query timed out after 2000 ms" in log
        assert '"level": "error"' in log and '"service": "checkout"' in log

        # A change posted to the running webhook is what Sleuth later reads from its store.
        change_id = stack.record_change("checkout", "deploy", "v2", "v1", "checkout v2 to production", ts=bad_at)
        config = load_config(stack.write_config(tmp_path / "sleuth.yml"))
        assert config.metrics.prometheus.url == stack.url
        assert config.services["checkout"].depends_on == ["postgres"] and config.services["cart"].depends_on == []
        changes, failures = asyncio.run(gather_changes(config.changes, bad_at - 60, time.time() + 60))
        assert failures == []
        [change] = [c for c in changes if c.id == change_id]
        assert (change.service, change.kind, change.version, change.previous_version) == \
            ("checkout", "deploy", "v2", "v1")
        assert abs(change.ts - bad_at) < 1e-3

        # CPU contention: stress-ng runs (longer than the test) until the stack closes.
        stack.cpu_contention(120, workers=1)
        stress = stack.faults[-1].detail["pid"]
        workers = descendants(stress)
        assert pid_alive(stress) and workers

        pids, ports = stack.pids(), stack.ports()
        assert len(pids) == 8  # 2 services, the restarted one, 2 exporters, webhook, Prometheus, stress-ng
        assert all(port_open(p) for p in ports)

    assert [p for p in [*pids, *workers] if pid_alive(p)] == []
    assert [p for p in ports if port_open(p)] == []
    assert not stack.load.running
    assert stack.database_dropped
    import psycopg

    with psycopg.connect(stack.postgres_admin_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (stack.database,)).fetchone() is None
    assert time.monotonic() - started < 90
