"""What Sleuth says in Slack, checked where it leaves: every Web API request the stand-in received
(its raw body) and every ack, through signed HTTP-mode requests to the real app.

- Secrets and personal data of every kind, typed into /diagnose, into an incident title, into a
  flagged message and a thread reply, logged by the service under investigation and sent back in a
  Loki error body, appear in no request body and no ack.
- Text is escaped exactly once: what a person typed shows as typed; links and mentions in a flagged
  message still work; the usage shows its <placeholders>.
- Ordinary incident text (timestamps, latencies, versions, ports, ids, shas) goes through unchanged.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

from bot.slack import blocks as B
from bot.slack.outgoing import make_client
from bot.slack.commands import parse, usage
from tests.slack_standins import SlackHarness, SlackWebStandIn
from tests.standins import Fault, LokiStandIn
from tests.test_safety import UNREDACTED

ALICE, BOB = "U0ALICE", "U0BOB"
AZURE_KEY = base64.b64encode(b"FAKE" + bytes(range(62))).decode()  # 88 characters, as Azure's are
PYPI = "pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAACKlsz" + "FAKE" * 6

# kind -> (what is typed, the parts of it that must never reach Slack)
SECRETS: dict[str, tuple[str, list[str]]] = {
    "slack bot token": ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", ["AbCdEfGhIjKlMnOpQrStUvWx"]),
    "slack user token": ("xoxp-123456789012-123456789012-1234567890123-0123456789abcdef0123456789abcdef",
                         ["0123456789abcdef0123456789abcdef"]),
    "slack workspace token": ("xoxa-2-123456789012-1234567890123-abcdef0123456789abcdef", ["abcdef0123456789abcdef"]),
    "slack app token": ("xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef0123456789abcdef01",
                        ["abcdef0123456789abcdef0123456789abcdef01"]),
    "slack refresh token": ("xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTIzLTFAKE", ["Mi0yLTEyMzQ1Njc4OTAxMi0x"]),
    "slack config token": ("xoxe-1-My0xLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTIzLTFAKE", ["My0xLTEyMzQ1Njc4OTAxMi0x"]),
    "slack webhook": ("https://hooks.slack.com/services/T0FAKE000/B0FAKE000/FAKEfakeFAKEfakeFAKEfake",
                      ["FAKEfakeFAKEfakeFAKEfake"]),
    "github classic token": ("ghp_FAKEfakeFAKEfakeFAKEfakeFAKEfake0123", ["FAKEfakeFAKEfakeFAKEfakeFAKEfake0123"]),
    "github oauth token": ("gho_FAKEfakeFAKEfakeFAKEfakeFAKEfake0124", ["gho_FAKE"]),
    "github user-to-server token": ("ghu_FAKEfakeFAKEfakeFAKEfakeFAKEfake0125", ["ghu_FAKE"]),
    "github server-to-server token": ("ghs_FAKEfakeFAKEfakeFAKEfakeFAKEfake0126", ["ghs_FAKE"]),
    "github refresh token": ("ghr_FAKEfakeFAKEfakeFAKEfakeFAKEfake0127", ["ghr_FAKE"]),
    "github fine-grained token": ("github_pat_11AAAAAAA0FAKEfakeFAKEfake_0123456789abcdefFAKEfakeFAKEfake0123456789ab",
                                  ["11AAAAAAA0FAKEfakeFAKEfake"]),
    "aws access key": ("AKIAIOSFODNN7EXAMPLE", ["AKIAIOSFODNN7EXAMPLE"]),
    "aws secret key": ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ["wJalrXUtnFEMI"]),
    "stripe secret key": ("sk_live_FAKEfakeFAKEfake0123456789abcdefFAKEfake", ["sk_live_FAKE"]),
    "stripe restricted key": ("rk_live_FAKEfakeFAKEfake0123456789abcdefFAKEfake", ["rk_live_FAKE"]),
    "stripe publishable key": ("pk_live_FAKEfakeFAKEfake0123456789abcdefFAKEfake", ["pk_live_FAKE"]),
    "sendgrid key": ("SG.FAKEfakeFAKEfake012345.FAKEfakeFAKEfake0123456789abcdefFAKEfake0123", ["SG.FAKEfake"]),
    "twilio account sid": ("AC0123456789abcdef0123456789abcdef", ["AC0123456789abcdef"]),
    "twilio api key": ("SK0123456789abcdef0123456789abcdef", ["SK0123456789abcdef"]),
    "npm token": ("npm_FAKEfakeFAKEfake0123456789abcdefFAKE", ["npm_FAKE"]),
    "pypi token": (PYPI, [PYPI[:40]]),
    "gcp api key": ("AIzaSyFAKEfake-FAKEfake_0123456789abcdEF0", ["AIzaSyFAKEfake"]),
    "gcp oauth client secret": ("GOCSPX-FAKEfakeFAKEfake0123456789ab", ["GOCSPX-FAKE"]),
    "gcp service account key": ('"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFFAKE\\n'
                                '-----END PRIVATE KEY-----\\n"', ["MIIEvQIBADANBgkqhkiG9w0BAQEFFAKE"]),
    "azure storage key": (f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};"
                          "EndpointSuffix=core.windows.net", [AZURE_KEY[:24]]),
    "openai key": ("sk-proj-FAKE0a1b2c3d4e5f6g7h8i9j0kLMNOPqrstuvWXyz123456", ["FAKE0a1b2c3d4e5f"]),
    "gitlab token": ("glpat-FAKEfakeFAKEfake0123", ["glpat-FAKE"]),
    "jwt": ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkZha2UifQ.ZmFrZXNpZ25hdHVyZQ",
            ["eyJzdWIiOiIxMjM0NTY3ODkwIiwi", "ZmFrZXNpZ25hdHVyZQ"]),
    "pem private key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAFAKEFAKEkeybody0123\n-----END RSA PRIVATE KEY-----",
                        ["MIIEowIBAAKCAQEAFAKEFAKEkeybody0123"]),
    "password in a url": ("postgres://orders_app:S3cretPassw0rdX@orders-db:5432/orders", ["S3cretPassw0rdX"]),
    "password assignment": ("DB_PASSWORD=Hunter2Hunter2x", ["Hunter2Hunter2x"]),
    "bearer header": ("Authorization: Bearer FAKEbearerTOKEN0123456789abcdef", ["FAKEbearerTOKEN"]),
    "email": ("jane.doe@example.com", ["jane.doe@example.com"]),
    "card (visa, spaced)": ("4111 1111 1111 1111", ["4111 1111 1111 1111", "4111111111111111"]),
    "card (mastercard, dashed)": ("5500-0000-0000-0004", ["5500-0000-0000-0004", "5500000000000004"]),
    "card (amex)": ("3782 822463 10005", ["3782 822463 10005", "822463"]),
    "us ssn": ("123-45-6789", ["123-45-6789"]),
    "uk national insurance number": ("AB 12 34 56 C", ["AB 12 34 56 C"]),
    "phone (e.164)": ("+14155552671", ["4155552671"]),
    "phone (international)": ("+44 20 7946 0958", ["7946 0958"]),
    "phone (us)": ("(415) 555-2671", ["555-2671"]),
    "iban (spaced)": ("DE89 3704 0044 0532 0130 00", ["DE89 3704", "0532 0130"]),
    "iban (compact)": ("GB82WEST12345698765432", ["GB82WEST12345698765432"]),
}


def slack_escaped(text: str) -> str:
    """Text as Slack sends it to an app (should_escape: true): & < > as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def said_to_slack(web: SlackWebStandIn, acks: list[str]) -> str:
    """Everything that left Sleuth for Slack: the raw bodies (and query strings) of every request the
    Web API stand-in received, decoded both ways, and the acks' bodies."""
    parts = []
    for request in web.requests:
        raw = request.body.decode("utf-8", "replace") if request.path.startswith("/api/") else ""
        query = "&".join(f"{k}={v}" for k, values in request.params.items() for v in values)
        parts += [raw, urllib.parse.unquote_plus(raw), query]
    return "\n".join(parts + acks + [json.dumps(json.loads(a), ensure_ascii=False) for a in acks if a[:1] == "{"])


def leaked_kinds(said: str) -> list[str]:
    return [kind for kind, (_, needles) in SECRETS.items() if any(n in said for n in needles)]


def _secret_logs(folder: Path) -> Path:
    """The demo scenario's logs, and a new error the checkout service logged 40 times after the
    onset, each line carrying secrets of several kinds (it becomes log evidence)."""
    source = Path(__file__).resolve().parent.parent / "scenarios" / "demo" / "logs.jsonl"
    target = folder / "logs.jsonl"
    shutil.copy(source, target)
    values = [value.replace("\n", " ") for value, _ in SECRETS.values()]
    with target.open("a", encoding="utf-8") as handle:
        for i in range(40):
            chunk = " ".join(values[(i * 4) % len(values):(i * 4) % len(values) + 4])
            handle.write(json.dumps({"ts": f"2026-03-10T14:{10 + i // 4:02d}:{(i % 4) * 15:02d}Z", "service": "checkout",
                                     "level": "error", "message": f"payment provider refused request: {chunk}"}) + "\n")
    return target


@pytest.fixture
def web():
    with SlackWebStandIn() as standin:
        yield standin


def test_no_secret_of_any_kind_reaches_slack(tmp_path, web):
    from tools.logs import LokiConfig

    loki_error = ("authentication failed for Authorization: Bearer ghp_FAKEfakeFAKEfakeFAKEfakeFAKEfake0123 "
                  "card 4111 1111 1111 1111 phone +14155552671")
    with LokiStandIn() as loki:
        loki.always(Fault.error(400, json.dumps({"status": "error", "error": loki_error})))
        h = SlackHarness(tmp_path, web, memory=False)
        acks: list[str] = []
        try:
            h.config.logs.files = [_secret_logs(tmp_path)]
            h.config.logs.loki = LokiConfig(url=loki.url, attempts=1, deadline_s=3)
            h.restart()
            # /diagnose with several kinds early in the text (the plan shows its first 300 characters)
            typed = "checkout 500s: card 4111 1111 1111 1111, call +14155552671, key AKIAIOSFODNN7EXAMPLE, " \
                    "token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx, mail jane.doe@example.com"
            acks.append(h.command(slack_escaped(typed), channel="C0DIAG", user=ALICE).body)
            plan = web.wait_for(lambda: next((m for m in web.bot_messages("C0DIAG") if m.text.startswith("Investigating")
                                              and any(r.text.startswith("Diagnosis")
                                                      for r in web.bot_messages("C0DIAG", m.ts))), None),
                                timeout=90, what="the diagnosis thread")
            web.wait_for(lambda: "Done" in json.dumps(web.message("C0DIAG", plan.ts).blocks), what="the plan's end")
            web.wait_for(lambda: "Stopped" in json.dumps(web.message("C0DIAG", plan.ts).blocks) or
                         "logs" in json.dumps(web.message("C0DIAG", plan.ts).blocks), what="the logs' report")
            # every kind: as an incident title (announcement, pinned timeline, refusal ack, timeline ack),
            # in a flagged message, and all of them in one reply in the diagnosis thread
            for index, (kind, (value, _)) in enumerate(SECRETS.items()):
                channel = f"C{index:03d}KIND"
                title = f"{value.replace(chr(10), ' ')} leaked in {kind}"
                acks.append(h.command(slack_escaped(f"start {title}"), channel=channel, user=ALICE).body)
                web.wait_for(lambda channel=channel: any(m.pinned for m in web.bot_messages(channel)),
                             what=f"the timeline of {kind}")
                acks.append(h.command(slack_escaped("start another one"), channel=channel, user=BOB).body)
                acks.append(h.command("timeline", channel=channel, user=BOB).body)
                note = web.human_message(channel, BOB, slack_escaped(f"found {value} in the config"))
                h.event({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                         "item": {"type": "message", "channel": channel, "ts": note.ts}})
                web.wait_for(lambda channel=channel: "found" in json.dumps(
                    next(m for m in web.bot_messages(channel) if m.pinned).blocks), what=f"the flag in {kind}")
            acks.append(h.command("rollup all", channel="C0DIAG", user=BOB).body)
            reply = web.human_message("C0DIAG", ALICE, slack_escaped(
                "also seen: " + " ".join(v for v, _ in SECRETS.values())), thread_ts=plan.ts)
            before = len(web.bot_messages("C0DIAG", plan.ts))
            h.event({"type": "message", "channel": "C0DIAG", "user": ALICE, "text": reply.text, "ts": reply.ts,
                     "thread_ts": plan.ts, "channel_type": "channel"})
            web.wait_for(lambda: len(web.bot_messages("C0DIAG", plan.ts)) > before, timeout=60, what="the answer")
        finally:
            h.close()
        assert loki.requests, "the Loki source was asked"
    said = said_to_slack(web, acks)
    leaked = leaked_kinds(said)
    print(f"\nsecret kinds tried: {len(SECRETS)}, leaked: {len(leaked)} {leaked}")
    assert leaked == [], leaked
    assert "ghp_FAKEfake" not in said
    assert sum("[REDACTED:" in a for a in acks) >= len(SECRETS), "the acks (refusals, timelines) are redacted too"
    # ... and yet it was all said: the titles, the flagged messages, the evidence, the Loki error
    for mark in ("[REDACTED:card]", "[REDACTED:phone]", "[REDACTED:iban]", "[REDACTED:ssn]", "[REDACTED:api_key]",
                 "[REDACTED:token]", "[REDACTED:private_key]", "[REDACTED:email]", "leaked in slack bot token",
                 "found [REDACTED:", "payment provider refused request", "authentication failed for"):
        assert mark in said, mark
    assert web.rejected == [], web.rejected


def test_the_client_redacts_every_method_but_keeps_identifiers_and_file_bytes(tmp_path, web):
    client = make_client(web.bot_token, base_url=web.api_url)
    secret = "card 4111 1111 1111 1111 key sk_live_FAKEfakeFAKEfake0123456789"
    posted = client.chat_postMessage(channel="C1", text=secret, blocks=[B.section(secret)],
                                     attachments=[{"text": secret, "fallback": secret}])
    client.chat_update(channel="C1", ts=posted["ts"], text=secret, blocks=[B.section(secret)])
    client.chat_postEphemeral(channel="C1", user=ALICE, text=secret, thread_ts=posted["ts"])
    client.views_open(trigger_id="1773150000.abcdef", view=B.memory_modal(
        incident_id=7, title=secret, category=None, root_cause=secret, action=None, mitigation=secret))
    chart = tmp_path / "checkout-error_ratio.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + secret.encode())  # a file's bytes are not redacted
    client.files_upload_v2(channel="C1", thread_ts=posted["ts"], initial_comment=f"charts for {secret}",
                           file_uploads=[{"file": str(chart), "filename": chart.name, "title": f"chart {secret}"}])
    value = B.mitigation_value("T0SLEUTH:C1:1773150001.000002", "fix1")
    client.chat_postMessage(channel="C1", text="decide", blocks=[{"type": "actions", "block_id": "decide:fix1",
                                                                  "elements": [B.button("Approve", B.APPROVE, value)]}])
    said = said_to_slack(web, [])
    assert "4111 1111 1111 1111" not in said and "sk_live_FAKE" not in said
    assert said.count("[REDACTED:card]") >= 8
    calls = {c.method: c for c in web.calls}
    assert set(calls) >= {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open",
                          "files.getUploadURLExternal", "files.completeUploadExternal"}
    assert calls["chat.update"].args["ts"] == posted["ts"] and calls["chat.postEphemeral"].args["user"] == ALICE
    assert calls["files.completeUploadExternal"].args["thread_ts"] == posted["ts"]
    assert web.views[0]["private_metadata"] == "7"
    assert web.calls_to("chat.postMessage")[-1].args["blocks"][0]["elements"][0]["value"] == value
    uploaded = next(iter(web.files.values()))
    assert uploaded["data"] == chart.read_bytes() and uploaded["title"] == "chart card [REDACTED:card] key [REDACTED:api_key]"
    assert web.rejected == []


def test_ordinary_incident_text_reaches_slack_unchanged(web):
    client = make_client(web.bot_token, base_url=web.api_url)
    for text in UNREDACTED:
        client.chat_postMessage(channel="C1", text=text, blocks=[B.section(B.prose(text))])
    posted = [c.args["text"] for c in web.calls_to("chat.postMessage")]
    print(f"\nfalse-positive checks: {len(UNREDACTED)} ordinary lines, {sum(a != b for a, b in zip(posted, UNREDACTED))} changed")
    assert posted == UNREDACTED
    assert "[REDACTED" not in said_to_slack(web, [])


def test_text_is_shown_as_typed_escaped_exactly_once(tmp_path, web):
    h = SlackHarness(tmp_path, web, memory=False)
    try:
        typed = "checkout & cart <b> fail for R&D"
        h.command(slack_escaped(typed), channel="C1", user=ALICE)
        plan = web.wait_for(lambda: next((m for m in web.bot_messages("C1") if m.text.startswith("Investigating")
                                          and any(r.text.startswith("Diagnosis") for r in web.bot_messages("C1", m.ts))),
                                         None), timeout=90, what="the diagnosis thread")
        web.wait_for(lambda: "Done" in json.dumps(web.message("C1", plan.ts).blocks), what="the plan's end")
        incident = h.store.active_incident(team="T0SLEUTH", channel="C1")
        assert incident.title == typed, "stored as typed"
        once = slack_escaped(typed)
        plan_text = json.dumps(web.message("C1", plan.ts).blocks)
        assert f"*Investigating* \\u201c{once}\\u201d" in plan_text
        assert f"Opened the incident *{once}*" in plan_text
        assert web.message("C1", plan.ts).text == f"Investigating: {once}"
        timeline = next(m for m in web.bot_messages("C1") if m.pinned)
        assert timeline.blocks[0]["text"]["text"] == f"Timeline: {typed}", "plain text is not escaped"
        # a flagged message with a link, a mention and an ampersand, as Slack delivers it
        note = web.human_message("C1", BOB, "see <https://grafana.example.com/d/x?a=1&amp;b=2|the board> "
                                            "&amp; ask <@U0ALICE|alice> about <!here>")
        h.event({"type": "reaction_added", "user": ALICE, "reaction": "round_pushpin",
                 "item": {"type": "message", "channel": "C1", "ts": note.ts}})
        entry = web.wait_for(lambda: next((line for m in web.bot_messages("C1") if m.pinned
                                           for block in m.blocks if block["type"] == "section"
                                           for line in block["text"]["text"].split("\n") if "the board" in line), None),
                             what="the flagged message on the timeline")
        assert "see the board (https://grafana.example.com/d/x?a=1&amp;b=2) &amp; ask <@U0ALICE> about @here" in entry
        said = said_to_slack(web, [])
        assert "&amp;amp;" not in said and "&amp;lt;" not in said and "<!here>" not in said
        usage_answer = h.command("help", channel="C1", user=BOB).json()
        shown = json.dumps(usage_answer["blocks"])
        assert "&lt;what is wrong&gt;" in shown and "<what is wrong>" not in shown and "<title>" not in shown
    finally:
        h.close()


# --- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize("arrived, typed", [
    ("a &amp; b &lt;c&gt;", "a & b <c>"),
    ("&amp;lt; is how you write &lt;", "&lt; is how you write <"),
    ("see <https://x.example.com/a?b=1&amp;c=2>", "see https://x.example.com/a?b=1&c=2"),
    ("see <https://x.example.com|the docs>", "see the docs (https://x.example.com)"),
    ("mail <mailto:bob@example.com|bob@example.com>", "mail bob@example.com"),
    ("cc <@U0BOB|bob> in <#C0INC|inc-42>", "cc <@U0BOB> in <#C0INC>"),
    ("<!here> <!channel> <!subteam^S0ONCALL|@oncall> at <!date^1773151560^{time}|14:06>", "@here @channel @oncall at 14:06"),
])
def test_text_from_slack_is_read_back_as_typed(arrived, typed):
    assert B.from_slack(arrived) == typed


def test_prose_escapes_once_keeps_mentions_and_dates_utc_times():
    said = B.prose("R&D <b> asked <@U0BOB> at 2026-03-10T14:06:00Z (then 2026-03-10 14:08 UTC)")
    assert said.startswith("R&amp;D &lt;b&gt; asked <@U0BOB> at <!date^1773151560^{date_short_pretty} {time}|")
    assert "<!date^1773151680^" in said and "2026-03-10T14:06" not in said
    assert B.clip(said, 60).count("<") == B.clip(said, 60).count(">"), "never cut inside Slack syntax"


def test_commands_read_slack_text_as_typed_and_usage_escapes_its_placeholders():
    assert parse("start R&amp;D &lt;down&gt; sev2").text == "R&D <down>"
    assert parse("commander <@U0BOB|bob>").user == "U0BOB"
    text = usage()
    assert "<" not in text.replace("&lt;", "") and "&lt;what is wrong&gt;" in text


@pytest.mark.parametrize("advice", [
    "no evidence source is configured; pass --config sleuth.yml (see sleuth.example.yml) or --scenario DIR",
    "the window of 30d is longer than 7d; narrow it (e.g. --window 2h) so the onset means something",
    "--at 2030-01-01T00:00:00Z is in the future; investigate a time that has passed (or omit --at for now)",
    "no past-incident memory in the config (memory:); fill one with sleuth index add",
    "memory holds no past incidents; add some with sleuth index add",
    "no runbook for code_change; add some with sleuth index add --runbooks DIR",
])
def test_command_line_advice_is_worded_for_slack(advice):
    said = B.slack_words(advice)
    assert "--" not in said and "sleuth index" not in said, said
    assert B.error_text(advice) == said
