"""The HTTP evidence sources through local stand-ins and their fault layer.

Retries, Retry-After, timeouts, malformed answers and refused connections are exercised with the
real clients (httpx + tenacity) against real sockets; Loki and GitHub answer in their documented
formats. The last tests run a whole investigation with one source broken.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from bot.investigate import investigate
from bot.scenario import load_scenario
from tests.factory import bad_deploy
from tests.standins import (
    Fault,
    GitHubStandIn,
    JsonStandIn,
    LokiStandIn,
    deployment,
    free_port,
    ns,
)
from tools.changes import ChangesConfig, GitHubConfig, GitHubDeployments, GitHubRepo, gather_changes
from tools.http import HttpSourceConfig, SourceError, make_client, request_json
from tools.logs import LogsConfig, LokiClient, LokiConfig, TemplateMiner, build_logql, template_changes
from tools.metrics import MetricsConfig

T = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc).timestamp()
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.1}


def one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text


@pytest.fixture
def loki():
    with LokiStandIn() as standin:
        for i in range(40):
            ts = T + 15 * i
            standin.add({"service": "checkout", "env": "prod"}, ts,
                        {"ts": ts, "level": "error", "message": f"payment provider timeout after {200 + i}ms order={9000 + i}"})
            standin.add({"service": "checkout", "env": "prod"}, ts + 1,
                        {"ts": ts + 1, "level": "info", "message": f"GET /api/cart 200 {10 + i}ms"})
            standin.add({"service": "search", "env": "prod"}, ts + 2,
                        {"ts": ts + 2, "level": "error", "message": "index shard 3 unavailable"})
        yield standin


async def read_loki(standin, query='{service="checkout"}', start=T, end=T + 3600, **settings):
    client = LokiClient(LokiConfig(url=standin.url, **{**FAST, **settings}))
    try:
        return await client.query_range(query, start, end)
    finally:
        await client.aclose()


# --- the retry policy -------------------------------------------------------------------------


async def test_500s_are_retried_until_an_answer_comes(loki):
    loki.fail_next(2, 500)
    records = await read_loki(loki, attempts=3)
    assert len(records) == 80
    assert [r.answer for r in loki.seen()] == ["status 500", "status 500", "ok"]


async def test_500s_on_every_try_give_one_sentence_after_the_configured_attempts(loki):
    loki.always(Fault.error(503, "upstream connect error or disconnect/reset before headers"))
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, attempts=4)
    assert len(loki.seen()) == 4
    text = str(caught.value)
    assert text.startswith("Loki answered HTTP 503") and "upstream connect error" in text and one_line(text)


async def test_429_waits_what_retry_after_asks_before_trying_again(loki):
    loki.throttle_next(1, retry_after="1")
    started = time.monotonic()
    records = await read_loki(loki, attempts=3)
    assert len(records) == 80
    [gap] = loki.gaps()
    assert 0.9 <= gap <= 2.5, f"waited {gap:.2f} s where Retry-After asked 1 s"
    assert time.monotonic() - started < 4


async def test_a_long_retry_after_is_capped(loki):
    loki.throttle_next(1, retry_after="120")
    records = await read_loki(loki, attempts=2, retry_after_max_s=0.5)
    assert len(records) == 80
    [gap] = loki.gaps()
    assert 0.45 <= gap <= 2.0


async def test_a_429_without_retry_after_backs_off_and_retries(loki):
    loki.throttle_next(1, retry_after=None)
    assert len(await read_loki(loki, attempts=2)) == 80
    assert [r.answer for r in loki.seen()] == ["status 429", "ok"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_4xx_answers_are_final(loki, status):
    loki.fail_next(1, status, body="bad request: something the client must fix")
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, attempts=5)
    assert len(loki.seen()) == 1, f"HTTP {status} was retried"
    assert f"HTTP {status}" in str(caught.value) and "something the client must fix" in str(caught.value)


async def test_a_hang_is_a_timeout_that_is_retried(loki):
    loki.hang_next(1, seconds=30)
    started = time.monotonic()
    records = await read_loki(loki, attempts=3, timeout_s=0.4)
    assert len(records) == 80
    assert [r.answer for r in loki.seen()] == ["hang", "ok"]
    assert 0.35 <= time.monotonic() - started < 3


async def test_a_source_that_keeps_hanging_fails_within_attempts_times_timeout(loki):
    loki.always(Fault.hang(30))
    attempts, timeout_s = 3, 0.4
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, attempts=attempts, timeout_s=timeout_s)
    elapsed = time.monotonic() - started
    assert len(loki.seen()) == attempts
    # attempts x timeout, plus at most (attempts - 1) backoffs of <= 0.1 s + jitter, plus slack.
    assert attempts * timeout_s * 0.9 <= elapsed < attempts * timeout_s + 2.0
    assert str(caught.value) == "Loki did not answer in time (ReadTimeout)"


async def test_malformed_json_is_one_clear_sentence(loki):
    loki.malformed_next(1)
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, attempts=3)
    text = str(caught.value)
    assert text.startswith("Loki answered with malformed JSON") and one_line(text)
    assert len(loki.seen()) == 1


async def test_a_dropped_connection_is_retried(loki):
    loki.disconnect_next(1)
    assert len(await read_loki(loki, attempts=2)) == 80
    assert [r.answer for r in loki.seen()] == ["disconnect", "ok"]


async def test_a_connection_dropped_on_every_try_is_reported_as_such(loki):
    loki.always(Fault.disconnect())
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, attempts=2)
    assert len(loki.seen()) == 2
    assert str(caught.value).startswith("Loki connection failed (") and one_line(str(caught.value))


async def test_connection_refused_is_unreachable():
    port = free_port()  # nothing listens there
    client = LokiClient(LokiConfig(url=f"http://127.0.0.1:{port}", attempts=2, **FAST))
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as caught:
            await client.query_range('{service="checkout"}', T, T + 60)
    finally:
        await client.aclose()
    assert str(caught.value) == "Loki is unreachable (connection refused or no route)"
    assert time.monotonic() - started < 3


async def test_request_json_decodes_an_answer_after_a_fault():
    with JsonStandIn({"/v1/thing": {"ok": True, "n": 3}}) as standin:
        standin.fail_next(1, 502)
        config = HttpSourceConfig(url=standin.url, attempts=2, **FAST)
        async with make_client(config) as client:
            assert await request_json(client, config, "Thing", "GET", "/v1/thing") == {"ok": True, "n": 3}
            with pytest.raises(SourceError, match=r"^Thing answered HTTP 404"):
                await request_json(client, config, "Thing", "GET", "/v1/other")


async def test_an_unreadable_retry_after_falls_back_to_backoff(loki):
    loki.throttle_next(1, retry_after="soon")
    assert len(await read_loki(loki, attempts=2)) == 80


async def test_deadline_bounds_all_tries_of_one_request(loki):
    loki.always(Fault.too_many("2"))
    started = time.monotonic()
    with pytest.raises(SourceError):
        await read_loki(loki, attempts=5, deadline_s=0.5, retry_after_max_s=5)
    assert time.monotonic() - started < 1.5


# --- Loki -------------------------------------------------------------------------------------


async def test_loki_is_asked_the_logql_query_in_nanoseconds_and_lines_become_records(loki):
    loki.tenant = "team-a"
    query = build_logql("checkout", levels=["error"])
    assert query == '{service="checkout"} | json | level=~"(?i)(error)"'
    start, end = T + 60, T + 300
    records = await read_loki(loki, query, start, end, tenant="team-a", limit=500)

    [request] = loki.seen("/loki/api/v1/query_range")
    assert request.param("query") == query
    assert request.param("start") == str(ns(start)) and request.param("end") == str(ns(end))
    assert (request.param("limit"), request.param("direction")) == ("500", "forward")
    assert request.headers["x-scope-orgid"] == "team-a"

    expected = [T + 15 * i for i in range(40) if start <= T + 15 * i < end]
    assert [r.ts for r in records] == expected
    assert {(r.service, r.level) for r in records} == {("checkout", "error")}
    assert records[0].message == "payment provider timeout after 204ms order=9004"

    miner = TemplateMiner().add_all(records)
    [template] = miner.templates.values()
    assert template.count == len(expected) and template.service == "checkout"
    assert "payment provider timeout after" in template.text and "<NUM>" in template.text
    assert template.worst_level == "error"


async def test_loki_without_the_tenant_header_is_refused(loki):
    loki.tenant = "team-a"
    with pytest.raises(SourceError, match="Loki answered HTTP 401"):
        await read_loki(loki)


async def test_loki_limit_is_sent_and_honoured(loki):
    records = await read_loki(loki, '{service="search"}', limit=5)
    assert [r.ts for r in records] == [T + 15 * i + 2 for i in range(5)]
    assert loki.seen()[0].param("limit") == "5"


async def test_plain_text_loki_lines_keep_the_stream_level_and_service():
    with LokiStandIn() as standin:
        for i in range(6):
            standin.add({"service": "legacy", "level": "warn"}, T + i, f"disk /var at {90 + i}% on node-3")
        records = await read_loki(standin, build_logql("legacy", json_lines=False))
    assert [(r.ts, r.service, r.level) for r in records] == [(T + i, "legacy", "warn") for i in range(6)]
    assert records[0].message == "disk /var at 90% on node-3"


async def test_a_bad_logql_query_is_a_final_error_naming_loki(loki):
    with pytest.raises(SourceError) as caught:
        await read_loki(loki, 'service="checkout"', attempts=3)
    assert str(caught.value).startswith("Loki answered HTTP 400: parse error")
    assert len(loki.seen()) == 1


async def test_new_error_template_after_onset_is_evidence_mined_from_loki():
    with LokiStandIn() as standin:
        onset = T + 1800
        for i in range(120):
            ts = T + 30 * i
            standin.add({"service": "checkout"}, ts, {"ts": ts, "level": "info", "message": f"served /cart in {i % 40}ms"})
            if ts >= onset:
                standin.add({"service": "checkout"}, ts + 1, {"ts": ts + 1, "level": "error",
                                                              "message": f"NullPointerException in RetryPolicy order={i}"})
        records = await read_loki(standin, build_logql("checkout"), T, T + 3600)
    miner = TemplateMiner().add_all(records)
    changes = template_changes(miner.templates.values(), onset, T, T + 3600)
    assert [c.template.example.split(" order")[0] for c in changes] == ["NullPointerException in RetryPolicy"]
    assert changes[0].new and changes[0].before == 0 and changes[0].after == 60


# --- GitHub deployments -----------------------------------------------------------------------

SHA = "8f14e45fceea167a5a36dedd4bea2543a1b2c3d4"


@pytest.fixture
def github():
    deployments = {
        "acme/checkout-api": [
            deployment(100, "acme/checkout-api", T - 7200, sha="1" * 40, ref="v2.14.0"),
            deployment(101, "acme/checkout-api", T + 600, sha=SHA, ref="v2.15.0", login="mona",
                       description="Deploy v2.15.0: new payment retry logic"),
            deployment(102, "acme/checkout-api", T + 700, sha="2" * 40, ref="v2.16.0-rc1", environment="staging"),
            deployment(103, "acme/checkout-api", T + 900, sha="3" * 40, ref="main", payload={"kind": "config"},
                       description="feature flags refresh"),
        ],
        "acme/search": [
            deployment(201, "acme/search", T + 1200, sha="4" * 40, ref="v1.2.0", environment="canary", login="hubot"),
        ],
    }
    with GitHubStandIn(deployments, token="ghp_test123") as standin:
        yield standin


def github_config(standin, token="ghp_test123", **settings) -> GitHubConfig:
    return GitHubConfig(
        url=standin.url, token=token, web_url="https://github.example.com",
        repos=[GitHubRepo(repo="acme/checkout-api", service="checkout"),
               GitHubRepo(repo="acme/search", service="search", environment=None)],
        **{**FAST, **settings},
    )


async def test_github_deployments_become_changes_of_the_mapped_service(github):
    client = GitHubDeployments(github_config(github))
    try:
        changes = await client.between(T, T + 3600)
    finally:
        await client.aclose()
    by_id = {c.id: c for c in changes}
    assert set(by_id) == {"gh-101", "gh-103", "gh-201"}  # 100 is too early, 102 is staging
    deploy = by_id["gh-101"]
    assert (deploy.ts, deploy.service, deploy.kind, deploy.version, deploy.author, deploy.source) == (
        T + 600, "checkout", "deploy", "v2.15.0", "mona", "github")
    assert deploy.summary == "Deploy v2.15.0: new payment retry logic"
    assert deploy.url == f"https://github.example.com/acme/checkout-api/commit/{SHA}"
    assert by_id["gh-103"].kind == "config"  # the deployment payload names its kind
    search = by_id["gh-201"]
    assert (search.service, search.kind, search.summary) == ("search", "deploy", "acme/search v1.2.0 to canary")

    checkout_req, search_req = github.seen()
    assert checkout_req.path == "/repos/acme/checkout-api/deployments"
    assert (checkout_req.param("environment"), checkout_req.param("per_page")) == ("production", "100")
    assert search_req.path == "/repos/acme/search/deployments" and search_req.param("environment") is None
    for request in (checkout_req, search_req):
        assert request.headers["authorization"] == "Bearer ghp_test123"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"


async def test_gather_changes_merges_github_with_files_and_reports_a_bad_token(github, tmp_path):
    path = tmp_path / "changes.jsonl"
    path.write_text(json.dumps({"id": "chg-file", "ts": T + 300, "service": "auth", "kind": "config",
                                "summary": "auth: session ttl 30m"}) + "\n")
    merged, failures = await gather_changes(ChangesConfig(files=[path], github=github_config(github)), T, T + 3600)
    assert failures == []
    assert [c.id for c in merged] == ["chg-file", "gh-101", "gh-103", "gh-201"]  # in time order

    github.reset()
    merged, failures = await gather_changes(
        ChangesConfig(files=[path], github=github_config(github, token="wrong")), T, T + 3600)
    assert [c.id for c in merged] == ["chg-file"]
    [failure] = failures
    assert failure.startswith("GitHub answered HTTP 401") and "Bad credentials" in failure
    assert len(github.seen()) == 1  # a 401 is final


async def test_gather_changes_reports_github_down_without_raising(github, tmp_path):
    github.always(Fault.error(502, "<html>Bad gateway</html>"))
    merged, failures = await gather_changes(ChangesConfig(github=github_config(github, attempts=2)), T, T + 3600)
    assert merged == []
    assert failures == ["GitHub answered HTTP 502: <html>Bad gateway</html>"]
    assert len(github.seen()) == 2


async def test_github_deployments_beyond_the_first_page_are_found():
    repo = "acme/busy"
    items = [deployment(1, repo, T + 600, sha="a" * 40, ref="v1.0.0", description="the deploy that broke it")]
    items += [deployment(1000 + i, repo, T + 7200 + 60 * i, sha=f"{i:040x}", ref=f"v1.0.{i + 1}") for i in range(150)]
    with GitHubStandIn({repo: items}) as standin:
        client = GitHubDeployments(GitHubConfig(url=standin.url, repos=[GitHubRepo(repo=repo, service="busy")], **FAST))
        try:
            changes = await client.between(T, T + 3600)
        finally:
            await client.aclose()
        assert standin.seen()[0].param("per_page") == "100"
    assert [c.id for c in changes] == ["gh-1"]


# --- an investigation with one source down ----------------------------------------------------


@pytest.fixture(scope="module")
def scenario_folder(tmp_path_factory):
    return bad_deploy(tmp_path_factory.mktemp("partial") / "bad-deploy")


def broken_metrics_scenario(folder, prometheus: HttpSourceConfig, source_timeout: str = "3s"):
    scenario = load_scenario(folder)
    config = scenario.config.model_copy(deep=True)
    config.metrics = MetricsConfig(prometheus=prometheus)
    config.investigation.source_timeout = source_timeout
    return scenario.request, config


def assert_logs_and_changes_still_carry_the_diagnosis(diagnosis):
    assert diagnosis.sources["logs"].status == "ok"
    assert diagnosis.sources["changes"].status == "ok"
    sources = {e.source for e in diagnosis.evidence}
    assert {"logs", "changes"} <= sources and "metrics" not in sources
    by_id = diagnosis.evidence_by_id()
    # The bad deploy and the error it brought are both in front of the responder.
    assert any(e.source == "changes" and "chg-1" in e.summary and e.component == "checkout" for e in diagnosis.evidence)
    assert any(e.source == "logs" and "NullPointerException" in e.summary for e in diagnosis.evidence)
    assert any(h.component == "checkout" for h in diagnosis.hypotheses)
    cited = {by_id[e].source for h in diagnosis.hypotheses for e in h.evidence}
    assert {"logs", "changes"} <= cited


async def test_investigation_with_prometheus_answering_500_still_diagnoses_from_logs_and_changes(scenario_folder):
    with JsonStandIn() as prom:
        prom.always(Fault.error(500, "internal error: storage unavailable"))
        request, config = broken_metrics_scenario(
            scenario_folder, HttpSourceConfig(url=prom.url, attempts=2, **FAST))
        started = time.monotonic()
        diagnosis = await investigate(request, config)
        elapsed = time.monotonic() - started
        tries = Counter((r.path, tuple(sorted((k, tuple(v)) for k, v in r.params.items()))) for r in prom.seen())
        # Each request was tried at most `attempts` times, and one of them all `attempts` times.
        assert tries and max(tries.values()) == 2 and len(prom.seen()) <= 2 * len(tries)
    metrics = diagnosis.sources["metrics"]
    assert metrics.status == "error"
    assert one_line(metrics.reason) and "Prometheus" in metrics.reason and "500" in metrics.reason
    assert "storage unavailable" in metrics.reason
    assert_logs_and_changes_still_carry_the_diagnosis(diagnosis)
    assert elapsed < 3.0


async def test_investigation_with_prometheus_hanging_is_cut_at_the_source_timeout(scenario_folder):
    with JsonStandIn() as prom:
        prom.always(Fault.hang(60))
        request, config = broken_metrics_scenario(
            scenario_folder, HttpSourceConfig(url=prom.url, timeout_s=30, deadline_s=60), source_timeout="2s")
        started = time.monotonic()
        diagnosis = await investigate(request, config)
        elapsed = time.monotonic() - started
    metrics = diagnosis.sources["metrics"]
    assert metrics.status == "error" and one_line(metrics.reason)
    assert metrics.reason.startswith("metrics (Prometheus at http://127.0.0.1:") and "longer than 2 s" in metrics.reason
    assert 1.9 <= elapsed < 4.5
    assert_logs_and_changes_still_carry_the_diagnosis(diagnosis)


async def test_investigation_with_prometheus_timing_out_per_request_names_prometheus(scenario_folder):
    with JsonStandIn() as prom:
        prom.always(Fault.hang(60))
        request, config = broken_metrics_scenario(
            scenario_folder, HttpSourceConfig(url=prom.url, timeout_s=0.3, attempts=2, **FAST), source_timeout="3s")
        started = time.monotonic()
        diagnosis = await investigate(request, config)
        elapsed = time.monotonic() - started
    assert diagnosis.sources["metrics"].status == "error"
    assert diagnosis.sources["metrics"].reason == "Prometheus did not answer in time (ReadTimeout)"
    assert elapsed < 3.0
    assert_logs_and_changes_still_carry_the_diagnosis(diagnosis)


async def test_investigation_with_prometheus_refusing_connections(scenario_folder):
    request, config = broken_metrics_scenario(
        scenario_folder, HttpSourceConfig(url=f"http://127.0.0.1:{free_port()}", attempts=2, **FAST))
    diagnosis = await investigate(request, config)
    assert diagnosis.sources["metrics"].status == "error"
    assert diagnosis.sources["metrics"].reason == "Prometheus is unreachable (connection refused or no route)"
    assert_logs_and_changes_still_carry_the_diagnosis(diagnosis)


async def test_investigation_reads_logs_from_loki(scenario_folder):
    scenario = load_scenario(scenario_folder)
    with LokiStandIn() as standin:
        for line in (scenario_folder / "logs.jsonl").read_text().splitlines():
            record = json.loads(line)
            ts = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()
            standin.add({"service": record["service"]}, ts, line)
        config = scenario.config.model_copy(deep=True)
        config.logs = LogsConfig(loki=LokiConfig(url=standin.url, **FAST))
        diagnosis = await investigate(scenario.request, config)
        asked = standin.seen("/loki/api/v1/query_range")
        listed = standin.seen("/loki/api/v1/label/service/values")
    # The services come from Loki's label values; each is read with its own LogQL query.
    assert len(listed) == 1 and listed[0].param("start") and listed[0].param("end")
    assert {r.param("query") for r in asked} == {build_logql(s) for s in ("auth", "checkout", "payments", "search")}
    assert all(int(r.param("start")) < int(r.param("end")) for r in asked)
    assert diagnosis.sources["logs"].status == "ok"
    by_id = diagnosis.evidence_by_id()
    logs = [e for e in diagnosis.evidence if e.source == "logs"]
    assert any("NullPointerException" in e.summary and e.component == "checkout" for e in logs)
    assert not any("cache miss" in e.summary for e in logs)  # steady before and after: background
    top = diagnosis.hypotheses[0]
    assert (top.category, top.component) == ("code_change", "checkout")
    assert "logs" in {by_id[e].source for e in top.evidence}


async def test_metrics_down_does_not_refute_a_deploy_the_logs_support(scenario_folder):
    request, config = broken_metrics_scenario(
        scenario_folder, HttpSourceConfig(url=f"http://127.0.0.1:{free_port()}", attempts=1))
    diagnosis = await investigate(request, config)
    assert diagnosis.sources["metrics"].status == "error"
    deploy = [h for h in diagnosis.hypotheses if (h.category, h.component) == ("code_change", "checkout")]
    assert deploy and deploy[0].status != "refuted"
