"""A live stack for tests: real services, exporters, Prometheus and Sleuth's webhook on 127.0.0.1.

Why: scenario files are series someone wrote; a live stack produces what real parts produce
(counter resets at a deploy, lazily created ``code="500"`` series, histograms under a table lock,
node metrics under CPU pressure, the postgres exporter's own series), so Sleuth can be tested
against them with faults injected live.

What runs, each process on a free port of 127.0.0.1, everything under the caller's folder:

- one process per service (``tests/livestack/service.py``): ``GET /api/<anything>`` with real CPU
  work and, for services using PostgreSQL, a real query (statement_timeout 2 s); prometheus_client
  metrics ``http_requests_total{method,path,code}``, ``http_request_duration_seconds{method,path}``,
  ``http_requests_in_progress``, ``app_build_info{version}`` and the process/Python collectors;
  JSON log lines in ``<root>/logs/<service>.log``. Answers 500 for a bad release's failures and
  503 when the database failed (timed out, connection lost);
- ``prometheus-node-exporter`` (job ``node``), ``prometheus-postgres-exporter`` (job ``postgres``)
  on a database the stack creates (``sleuth_live_<pid>_<hex>``, table ``items`` of 1000 rows) and
  drops at close (one left by a killed run is dropped by the next stack);
- Debian's ``prometheus`` scraping every 5 s (job = service name), data in ``<root>/tsdb``;
- ``sleuth webhook`` with its own SQLite store and bearer token;
- an open-loop load generator (default 15 requests/s per service, ±20% jitter, started before
  Prometheus so its first scrapes see traffic), bounded in time.

Usage::

    from tests.livestack import LiveStack, LiveStackUnavailable, skip_or_fail

    try:
        stack = LiveStack(tmp_path, ["checkout", "cart"], postgres=["checkout"], require_postgres=True).start()
    except LiveStackUnavailable as exc:
        skip_or_fail(exc)            # a skip with the reason; a failure under CI=true
    with stack:
        began = stack.bad_release("checkout", "v2", error_share=0.3)
        stack.record_change("checkout", "deploy", "v2", "v1", "checkout v2 to production", ts=began)
        stack.wait_for('http_requests_total{job="checkout",code="500"}')
        config = stack.write_config(tmp_path / "sleuth.yml")
        ...                          # run Sleuth with that config

API (``tests/livestack/stack.py``):

``LiveStack(root, services=("checkout", "cart"), *, postgres=(), require_postgres=False,
postgres_url=DEFAULT_POSTGRES, rate_per_s=15.0, max_duration_s=1800.0, scrape_interval_s=5.0,
start_timeout_s=60.0, load=True, stress=True)``
    ``services`` are names or ``ServiceSpec(name, postgres=False, version="v1", work_ms=3.0)``
    (``work_ms``: CPU work per request; ~30 makes a service visibly slower under CPU
    contention); ``postgres`` names the services that query PostgreSQL. Without PostgreSQL the
    stack runs without the database, the exporter and the services' queries (``skipped`` says
    why), unless ``require_postgres``, which raises ``LiveStackUnavailable``, as does a missing
    binary (checked before anything starts; stress-ng only with ``stress=True``). ``load=False``
    runs no load generator; ``max_duration_s`` bounds the load's life.
``start() -> LiveStack`` / ``close() -> None``, or ``with LiveStack(...) as stack``
    ``start`` returns once Prometheus has scraped every target successfully; on any failure,
    KeyboardInterrupt included, it stops what it started. ``close`` is idempotent: load stopped,
    every process stopped (SIGTERM to its process group, SIGKILL after 5 s), lock released,
    database dropped. An atexit hook closes stacks left open; children also get a parent-death
    signal (services watch their parent), so even a SIGKILLed test run leaves no process behind
    (its database goes at the next stack's start).
``url`` (Prometheus), ``webhook_url``, ``webhook_token``, ``webhook_store``, ``started_at`` (unix
time every target was up)
``services: dict[str, ServiceHandle]``: ``name, port, url, log, postgres, version, pid``
``logs: dict[str, Path]``, ``database``, ``database_url``, ``node_exporter_port``,
``postgres_exporter_port``, ``skipped: dict[str, str]``, ``faults: list[FaultRecord]``
(``kind, target, began, ended, detail``), ``load: LoadGenerator`` (``snapshot()``: what the
clients saw per service), ``pids()``, ``ports()``, ``alive()``.
``query(promql, at=None) -> list[dict]``
    An instant query; the ``data.result`` vector.
``wait_for(promql, timeout_s=30.0, interval_s=0.5, predicate=bool) -> list[dict]``
    Polls until the predicate holds on the result; ``LiveStackError`` on timeout.
``targets() -> list[dict]``, ``wait_for_targets(timeout_s=30.0)``
``wait_scraped_after(ts, jobs=None, timeout_s=20.0) -> float``
    Waits until every target (or those of ``jobs``) was scraped successfully after ``ts``.
``record_change(service, kind, version="", previous_version="", summary="", ts=None, *,
author="livestack", change_id=None) -> str``
    POSTs to the running webhook with the token; returns the stored id. ``ts`` defaults to now.
``bad_release(service, version, error_share, seconds=None) -> float``
    That share of /api requests fails with 500 and ``unhandled exception in /api/<svc>: KeyError
    'cart_id' (release <version>)``; rolled back after ``seconds`` if given. No restart.
``release(service, version) -> float``
    A harmless release (``app_build_info`` changes, nothing fails). No restart.
``restart_with_version(service, version, error_share=0.0) -> float``
    A real process restart on the same port: counters reset (``resets()`` sees it); with
    ``error_share``, the new release fails that share from its first request (a bad deploy).
    Returns when the new process serves; ``faults[-1].detail["stopped"]`` is when the old one
    was stopped.
``lock_table(seconds, table="items") -> float``
    ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` in an open transaction for ``seconds`` (returns
    at once; released by itself): queries block, then fail after 2 s with 503 and ``upstream
    database postgres query timed out after 2000 ms``; once a service's 16 pooled connections
    are all blocked, further requests fail after 2 s more with ``upstream database postgres: no
    free connection after 2000 ms (pool of 16 busy)``. On the postgres job: ``pg_locks_count{
    datname=<stack.database>, mode="accessexclusivelock"}`` is 1, ``pg_stat_activity_count{
    state="active"}`` climbs, ``pg_stat_activity_max_tx_duration{state="idle in transaction"}``
    grows, ``pg_stat_database_xact_rollback`` counts the timeouts.
``cpu_contention(seconds, workers=None) -> float``
    ``stress-ng --cpu W --timeout S`` (W defaults to the CPU count); killed at close. Plain on
    the node job (``node_cpu_seconds_total``, ``node_load1``, ``node_pressure_cpu_waiting_seconds_total``);
    a service's latency rises visibly only with enough CPU work per request (``work_ms`` ~30:
    p90 0.1 s -> 0.7 s here), since the kernel favours briefly running threads.
``write_config(path, **overrides) -> Path`` / ``config_dict(**overrides) -> dict``
    sleuth.yml for this stack: ``metrics.prometheus.url``, ``metrics.step_s`` = the scrape
    interval, ``logs.files``, ``changes.webhook`` (store, token, host, port), ``services`` with
    ``depends_on: [postgres]`` for the services using it; keywords are sections merged in deeply.
    The file is checked with ``bot.config.load_config``.

Every fault injector returns the unix time (``time.time()``) at which the fault actually began
(measured in the service for releases, after the lock was granted, after stress-ng's workers
run), and appends a ``FaultRecord`` to ``stack.faults``.
"""

__all__ = [
    "DEFAULT_POSTGRES",
    "FaultRecord",
    "LiveStack",
    "LiveStackError",
    "LiveStackUnavailable",
    "ServiceHandle",
    "ServiceSpec",
    "port_open",
    "skip_or_fail",
]


def __getattr__(name: str):
    # Lazy, so that the service processes (python3 -m tests.livestack.service) do not import the
    # harness, its atexit hooks included.
    if name in __all__:
        from tests.livestack import stack

        return getattr(stack, name)
    raise AttributeError(f"module 'tests.livestack' has no attribute {name!r}")
