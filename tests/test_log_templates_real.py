"""Templates from real-world messages: headers the logging framework repeated inside the message.

Java (logback/log4j), Python logging, Go, klog, syslog and logfmt messages often begin with their
own time and level. Those must not become template tokens, and templates must not mix levels: an
ERROR line of a class that logged at INFO before the onset is a new template after it.
"""

import json
from datetime import datetime, timezone

import pytest

from tools.logs import LogRecord, TemplateMiner, read_files, strip_header, template_changes

T0 = 1_773_150_000.0  # a minute boundary


def clock(ts: float, fmt: str) -> str:
    """``ts`` formatted by strftime's ``fmt``, where ``%3`` stands for milliseconds."""
    when = datetime.fromtimestamp(ts, timezone.utc)
    return when.strftime(fmt.replace("%3", "@MSEC@")).replace("@MSEC@", f"{when.microsecond // 1000:03d}")


def write_jsonl(path, rows):
    with open(path, "w") as handle:
        for ts, service, level, message in rows:
            handle.write(json.dumps({"ts": ts, "service": service, "level": level, "message": message}) + "\n")
    return path


def mined(records):
    return list(TemplateMiner().add_all(records).templates.values())


def assert_no_header(text):
    assert "<NUM>:<NUM>" not in text, text
    assert not text.startswith(("<NUM>", "<*>", "INFO", "ERROR", "WARN", "[")), text


# --- formats ---------------------------------------------------------------------------------------


JAVA = "%H:%M:%S.%3 {LEVEL:<5} c.e.o.OrderServiceImpl#{line} TraceID: {trace} SpanID: {span} [createOrder][Order saved][orderId: {n}]"
FORMATS = {
    "logback time of day": (JAVA, "c.e.o.OrderServiceImpl#<NUM> TraceID: <HEX> SpanID: <HEX> [createOrder][Order saved][orderId: <NUM>]"),
    "logback date, thread": ("%Y-%m-%d %H:%M:%S.%3 [http-nio-8080-exec-{a}] {LEVEL} c.e.Pay - charged card {n} in {ms}ms",
                             "[http-nio-<NUM>-exec-<NUM>] c.e.Pay - charged card <NUM> in <NUM>"),
    "log4j level, bracketed date": ("[%Y-%m-%d %H:%M:%S,%3] [{LEVEL}] pool at {n} connections",
                                    "pool at <NUM> connections"),
    "python logging": ("%Y-%m-%d %H:%M:%S,%3 - payments.client - {LEVEL} - charged card {n} in {ms}ms",
                       "payments.client - {LEVEL} - charged card <NUM> in <NUM>"),
    "go log": ("%Y/%m/%d %H:%M:%S http: response for order {n} took {ms}ms",
               "http: response for order <NUM> took <NUM>"),
    "go log, microseconds": ("%Y/%m/%d %H:%M:%S.%f worker {a} picked job {n}", "worker <NUM> picked job <NUM>"),
    "iso with zone": ("%Y-%m-%dT%H:%M:%S.%3Z {LEVEL} shipped order {n}", "shipped order <NUM>"),
    "logfmt": ('time="%Y-%m-%dT%H:%M:%SZ" level={level} msg="shipped order {n}"', 'msg="shipped order <NUM>"'),
    "syslog": ("%b %d %H:%M:%S node-{a} kernel: eth0 link up after {ms}ms", "node-<NUM> kernel: eth0 link up after <NUM>"),
}


@pytest.mark.parametrize("level", ["info", "error"])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_prefixed_messages_mine_to_templates_without_the_header(tmp_path, name, level):
    fmt, expected = FORMATS[name]
    rows = []
    for i in range(60):
        ts = T0 + i * 7.3 + (i % 10) * 0.111
        header_fmt = fmt.format(LEVEL=level.upper(), level=level, line=100 + i % 3, trace=f"{i * 7919:032x}",
                                span=f"{i * 104729 + 2**60:016x}", n=1000 + i * 37, ms=i * 3 + 1, a=i % 4 + 1)
        rows.append((ts, "orders", level, clock(ts, header_fmt)))
    path = write_jsonl(tmp_path / "orders.jsonl", rows)
    templates = mined(read_files([path], None, 0, 4e9, 10_000))
    assert len(templates) == 1, [t.text for t in templates]
    [template] = templates
    assert template.text == expected.format(LEVEL=level.upper())
    assert "<NUM>:<NUM>" not in template.text
    assert template.example == rows[0][3], "the example is the message as it came"
    assert dict(template.levels) == {level: 60}


def test_a_java_service_keeps_its_classes_apart_and_readable():
    records = []
    for i in range(200):
        ts = T0 + i * 3.1
        at = clock(ts, "%H:%M:%S.%3")
        trace, span = f"{(i + 1) * 2654435761:032x}", f"{(i + 1) * 40503 + 2**62:016x}"
        records.append(LogRecord(ts, "verify", "info",
                                 f"{at} INFO  v.c.VerifyController#54 TraceID: {trace} SpanID: {span} [verifyCode][verify result: true]"))
        records.append(LogRecord(ts + 0.001, "verify", "warn",
                                 f"{at} WARN  v.s.VerifyServiceImpl#114 TraceID: {trace} SpanID: {span} [verifyCode][Verify code start]"))
    templates = mined(records)
    texts = sorted(t.text for t in templates)
    assert texts == [
        "v.c.VerifyController#<NUM> TraceID: <HEX> SpanID: <HEX> [verifyCode][verify result: true]",
        "v.s.VerifyServiceImpl#<NUM> TraceID: <HEX> SpanID: <HEX> [verifyCode][Verify code start]",
    ]
    for template in templates:
        assert_no_header(template.text)
        assert len(template.levels) == 1


# --- levels ----------------------------------------------------------------------------------------


def java(ts, level, what):
    return LogRecord(ts, "verify", level,
                     f"{clock(ts, '%H:%M:%S.%3')} {level.upper():<5} v.s.i.VerifyCodeServiceImpl#129 "
                     f"TraceID: {int(ts * 1000):032x} SpanID: {int(ts * 10):016x} [verifyCode][Get image code][{what}]")


def test_an_error_line_of_a_class_that_logged_info_before_the_onset_is_new():
    split = T0 + 1800
    records = [java(T0 + i, "info", "Code found") for i in range(0, 3600, 5)]
    records += [java(T0 + i + 0.5, "error", "Code not found") for i in range(1860, 3600, 10)]
    records.sort(key=lambda r: r.ts)
    templates = mined(records)
    assert all(len(t.levels) == 1 for t in templates), "a template never mixes levels"
    changes = template_changes(templates, split, T0, T0 + 3600)
    assert len(changes) == 1
    [change] = changes
    assert change.new and change.before == 0 and change.after > 100
    assert change.template.worst_level == "error"
    assert change.template.text == \
        "v.s.i.VerifyCodeServiceImpl#<NUM> TraceID: <HEX> SpanID: <HEX> [verifyCode][Get image code][Code not found]"


def test_the_same_message_at_another_level_is_another_template():
    records = [LogRecord(T0 + i, "api", "info", f"2026-03-10 14:05:{i:02d},100 INFO retry {i} of order") for i in range(20)]
    records += [LogRecord(T0 + 30 + i, "api", "error", f"2026-03-10 14:06:{i:02d},100 ERROR retry {i} of order") for i in range(20)]
    miner = TemplateMiner().add_all(records)
    assert sorted((t.text, t.worst_level, t.count) for t in miner.templates.values()) == [
        ("retry <NUM> of order", "error", 20), ("retry <NUM> of order", "info", 20)]
    assert sorted(miner.templates) == [("api", 1), ("api", 2)], "ids count per service, in order of appearance"
    assert {key[1] for key in miner.templates} == {t.id for t in miner.templates.values()}


# --- what stays ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "level", "expected"), [
    ("Error connecting to db", "error", "Error connecting to db"),  # a word of the message, not a header
    ("17:43:10.332 INFO  c.e.Foo - started", "error", "INFO  c.e.Foo - started"),  # says another level: stays
    ("10:30 standup reminder", "info", "10:30 standup reminder"),  # no seconds: not a log clock
    ("2026-03-10 report generated", "info", "2026-03-10 report generated"),  # a date alone is content
    ("17:43:10.332", "info", "17:43:10.332"),  # nothing but a header: kept whole
    ("HTTP 200 GET /orders", "info", "HTTP 200 GET /orders"),
    ("ERROR: relation \"orders\" does not exist", "error", "relation \"orders\" does not exist"),
    ("E0310 14:05:00.123456   4242 reflector.go:138] failed to watch pods", "error", "reflector.go:138] failed to watch pods"),
    ("level=warn ts=2026-03-10T14:05:00.123Z caller=main.go:12 msg=slow", "warn", "caller=main.go:12 msg=slow"),
])
def test_only_the_repeated_header_goes(message, level, expected):
    assert strip_header(message, level) == expected


def test_ids_and_spans_are_masked_words_are_not():
    records = [LogRecord(T0 + i, "api", "info",
                         f"12:00:{i:02d}.000 INFO  TraceID: {i * 7919 + 1:032x} SpanID: {i * 104729 + 2**60:016x} "
                         f"deadline exceeded calling inventory") for i in range(30)]
    [template] = mined(records)
    assert template.text == "TraceID: <HEX> SpanID: <HEX> deadline exceeded calling inventory"


def test_dates_inside_the_message_stay_readable():
    records = [LogRecord(T0 + i, "orders", "warn",
                         f"{clock(T0 + i, '%H:%M:%S.%3')} WARN  o.s.OrderServiceImpl#68 [getSoldTickets][Left ticket info is empty]"
                         f"[seat from date: 2023-01-{i % 28 + 1:02d} 15:38:{i:02d}, offset -{i}]") for i in range(30)]
    [template] = mined(records)
    assert template.text == ("o.s.OrderServiceImpl#<NUM> [getSoldTickets][Left ticket info is empty]"
                             "[seat from date: <NUM>-<NUM>-<NUM> <NUM>:<NUM>:<NUM>, offset <NUM>]")
