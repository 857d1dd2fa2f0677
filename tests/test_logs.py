"""Log lines: formats users have, template mining, and what counts as a change in a template."""

import json

import pytest

from tools.logs import LogRecord, TemplateMiner, build_logql, parse_line, read_files, template_changes

T0 = 1_773_150_000.0  # a minute boundary


@pytest.mark.parametrize(("line", "expected"), [
    ('{"ts": "2026-03-10T14:05:00Z", "service": "api", "level": "ERROR", "message": "boom 42"}',
     (1773151500.0, "api", "error", "boom 42")),
    ('{"timestamp": 1773151500123, "app": "api", "severity": "warning", "msg": "slow"}',
     (1773151500.123, "api", "warn", "slow")),
    ('{"@timestamp": "2026-03-10T15:05:00+01:00", "log": "x"}', (1773151500.0, "default", "info", "x")),
    ("2026-03-10T14:05:00Z ERROR api[123]: upstream timed out", (1773151500.0, "api", "error", "upstream timed out")),
    ("2026-03-10 14:05:00,250 [WARN] pool at 95%", (1773151500.25, "default", "warn", "pool at 95%")),
])
def test_formats(line, expected):
    record = parse_line(line, "default")
    assert (round(record.ts, 3), record.service, record.level, record.message) == expected


@pytest.mark.parametrize("line", ["", "   ", "no timestamp here", '{"message": "no time"}', "{not json"])
def test_lines_without_a_time_are_skipped(line):
    assert parse_line(line) is None


def test_files_stream_and_filter_by_service_and_time(tmp_path):
    path = tmp_path / "app.jsonl"
    with open(path, "w") as handle:
        for i in range(100):
            handle.write(json.dumps({"ts": T0 + i, "service": "a" if i % 2 else "b", "message": f"m {i}"}) + "\n")
        handle.write("garbage line\n")
    records = list(read_files([path], {"a"}, T0 + 10, T0 + 19, 10_000))
    assert [int(r.ts - T0) for r in records] == [11, 13, 15, 17, 19]
    assert len(list(read_files([path], None, 0, 2e9, 30))) == 30  # max_lines bounds the read


def test_parsed_files_are_reused_until_they_change_and_large_ones_stream(tmp_path, monkeypatch):
    import os

    import tools.logs.files as logs

    path = tmp_path / "svc.jsonl"
    path.write_text("".join(json.dumps({"ts": T0 + i, "message": f"token=abc{i}"}) + "\n" for i in (5, 1, 3)))
    prepared = []

    def prepare(record):
        prepared.append(record.ts)
        return LogRecord(record.ts, record.service, record.level, "redacted", record.fields)

    first = list(read_files([path], None, T0, T0 + 4, 100, prepare=prepare, prepare_key="k1"))
    assert [(int(r.ts - T0), r.message) for r in first] == [(1, "redacted"), (3, "redacted")]
    again = list(read_files([path], {"svc"}, T0 + 2, T0 + 9, 100, prepare=prepare, prepare_key="k1"))
    assert [int(r.ts - T0) for r in again] == [3, 5] and len(prepared) == 3, "parsed and prepared once"
    assert list(read_files([path], None, 0, 2e9, 2, prepare=prepare, prepare_key="k1")) != [] and \
        len(list(read_files([path], None, 0, 2e9, 2))) == 2, "max_lines still bounds a cached file"
    plain = list(read_files([path], None, 0, 2e9, 100))
    assert {r.message for r in plain} == {"token=abc1", "token=abc3", "token=abc5"}, "another preparation, another entry"

    with open(path, "a") as handle:  # the file grows: read again
        handle.write(json.dumps({"ts": T0 + 7, "message": "later"}) + "\n")
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    assert [r.message for r in read_files([path], None, T0 + 6, T0 + 9, 100)] == ["later"]

    monkeypatch.setattr(logs, "LOG_CACHE_FILE_BYTES", 10)  # too large to keep: streamed in file order
    prepared.clear()
    streamed = list(read_files([path], None, 0, 2e9, 100, prepare=prepare, prepare_key="k2"))
    assert [int(r.ts - T0) for r in streamed] == [5, 1, 3, 7] and len(prepared) == 4
    list(read_files([path], None, 0, 2e9, 100, prepare=prepare, prepare_key="k2"))
    assert len(prepared) == 8, "a large file is prepared on every read"


def mine(lines):
    return list(TemplateMiner().add_all(LogRecord(ts, "api", level, msg) for ts, level, msg in lines).templates.values())


def test_new_spiking_and_steady_templates():
    split = T0 + 3600
    lines = []
    for i in range(0, 7200, 10):  # steady noise: every 10 s before and after
        lines.append((T0 + i, "warn", f"cache miss for key user:{i * 7}"))
    for i in range(0, 3600, 600):  # rare before, frequent after
        lines.append((T0 + i, "error", f"upstream payments returned 503 after {i % 900}ms"))
    for i in range(3600, 7200, 20):
        lines.append((T0 + i, "error", f"upstream payments returned 503 after {i % 900}ms"))
    for i in range(3700, 7200, 30):  # new after the split
        lines.append((T0 + i, "error", f"NullPointerException in Cart.total cart={i}"))
    lines.sort()
    found = {c.template.text: c for c in template_changes(mine(lines), split, T0, T0 + 7200)}
    assert not any("cache miss" in text for text in found)
    new = next(c for text, c in found.items() if "NullPointerException" in text)
    assert new.new and new.before == 0 and new.after > 100
    spike = next(c for text, c in found.items() if "upstream payments" in text)
    assert not spike.new and spike.after_rate > 5 * spike.before_rate


def test_logql():
    assert build_logql("checkout") == '{service="checkout"}'
    assert build_logql("checkout", levels=["error", "warn"], text='say "hi"') == (
        '{service="checkout"} |= "say \\"hi\\"" | json | level=~"(?i)(error|warn)"')
    assert build_logql("api", service_label="app", levels=["error"], json_lines=False) == '{app="api"} |~ "(?i)(error)"'


async def test_any_log_backend_serves_the_investigation_and_the_model_search(tmp_path, monkeypatch):
    """The logs source knows backends only by their protocol (tools/logs/backend.py): a backend
    that is neither files nor Loki (here, lines held in memory) is mined by the investigation and
    searched by the model's tool, redacted in both, with nothing else told about it."""
    from bot.agent_tools import IncidentScope, Toolbox
    from bot.investigate import investigate
    from bot.safety import Redactor
    from bot.scenario import load_scenario
    from bot.turns import run_sync
    from tests.factory import bad_deploy
    import tools.logs.source
    from tools.logs.files import read_files as read

    folder = bad_deploy(tmp_path / "s")
    held = list(read([folder / "logs.jsonl"], None, 0, 4e9, 10**6))
    held += [LogRecord(r.ts + 1, "checkout", "error", "card 4111 1111 1111 1111 declined by the gateway")
             for r in held if r.service == "checkout" and r.level == "error"][:5]
    (folder / "logs.jsonl").unlink()

    class HeldBackend:
        def describe(self):
            return "held lines"

        async def mine(self, miner, components, start, split, end, *, redact, redaction_key, found):
            records = [r for r in held if start <= r.ts <= end and (not components or r.service in components)]
            miner.add_all(LogRecord(r.ts, r.service, r.level, redact(r.message), r.fields) for r in records)
            found.queries += 1
            for service in sorted({r.service for r in records}):
                found.log_queries[service] = f"held lines of {service}"

        async def search(self, service, start, end, *, levels, text):
            return [r for r in held if r.service == service and start <= r.ts <= end
                    and (not levels or r.level in levels) and (not text or text in r.message)], f"held {service}"

        async def aclose(self):
            return None

    monkeypatch.setattr(tools.logs.source, "open_backends", lambda config, **_: [HeldBackend()])
    scenario = load_scenario(folder)
    scenario.config.logs.files = [folder / "absent.jsonl"]  # configured; the held backend answers
    d = await investigate(scenario.request, scenario.config)
    assert d.sources["logs"].status == "ok"
    logs_evidence = [e for e in d.evidence if e.source == "logs"]
    assert logs_evidence and any(e.component == "checkout" for e in logs_evidence)
    assert "4111" not in json.dumps(d.to_dict())

    at = scenario.request.at
    scope = IncidentScope(symptom="checkout 500s", service="checkout", start=at - 4 * 3600, window_start=at - 3600,
                          end=at, services=["checkout", "search"])
    result = Toolbox(scenario.config, scope, {}, run_sync, Redactor()).call(
        "search_logs", {"service": "checkout", "level": "error"})
    assert result.evidence["query"].startswith("held checkout")
    assert "declined by the gateway" in result.text and "4111" not in result.text
