"""Slack's text and Block Kit primitives: escaping, Slack's own syntax, and blocks that keep Slack's limits.

Text, and when it is escaped:

- Text is stored and passed around raw, as the person typed it. What arrives from Slack (the slash
  command's text, a message's text) was escaped by Slack (``&amp;``, ``&lt;``, ``&gt;``, links as
  ``<url|label>``): :func:`from_slack` undoes that once, on the way in (commands.parse, the
  thread replies and flagged messages in the flows). People stay ``<@U…>`` and channels ``<#C…>``
  in raw text; ``<!here>``-style broadcasts become plain ``@here`` words, so quoting a message
  never pings a channel.
- Text is escaped exactly once, where it is rendered into mrkdwn (blocks.py): :func:`escape` for
  names and ids, :func:`prose` for sentences (escaped, ``<@U…>`` kept as mentions, UTC times as
  Slack date tokens). The ``text`` fallback of a message is mrkdwn too and is escaped the same way.
  ``plain_text`` objects (headers, buttons, modal inputs) take raw text: Slack does not parse them.
- The only Slack syntax in a message is what this module writes: mentions, ``<url|label>`` links
  (:func:`link`), date tokens (:func:`when`).

Slack's limits are kept by construction: at most 50 blocks a message, 3,000 characters a section,
150 a header, 10 elements a context, 75 a button label; long content is clipped with an ellipsis
(:func:`clip`) and :func:`fit` drops the least important blocks first, with a note saying so.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Sequence

from bot.incidents.text import clip
from tools.timeparse import parse_time

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
MAX_BUTTON = 75
MAX_VALUE = 2000
MAX_FALLBACK = 3000  # the top-level text: notifications and screen readers
MAX_OPTION = 75


# --- text helpers -----------------------------------------------------------------------------


def escape(text: Any) -> str:
    """Slack's three control characters, escaped (mrkdwn and plain text alike)."""
    return str(text if text is not None else "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ESCAPED_MENTION = re.compile(r"&lt;(@(?=[UW])|#(?=[CG]))([A-Z0-9]{2,})(?:\|[^&]*)?&gt;")


def escape_keeping_mentions(text: Any) -> str:
    """Escaped text in which <@U123> mentions (and <#C123> channels) stay mentions."""
    return _ESCAPED_MENTION.sub(r"<\1\2>", escape(text))


# An ISO-8601 time said to be UTC (Z, +00:00 or "UTC"), as sources and the analysis write them.
_UTC_TIME = re.compile(r"\b(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(?:Z|[+-]00:?00| UTC)(?![\w:])")


def prose(text: Any) -> str:
    """Raw text said in mrkdwn: escaped once, mentions kept, UTC times as Slack date tokens (each
    reader sees their own time zone)."""
    said = escape_keeping_mentions(text)
    return _UTC_TIME.sub(lambda m: when(f"{m.group(1)}T{m.group(2)}+00:00"), said)


_SLACK_MARKUP = re.compile(r"<([^<>\n]*)>")


def from_slack(text: Any) -> str:
    """Text as the person typed it, from Slack's escaped form (see the module docstring): links
    become their URL (or "label (url)"), ``<!here>`` and user groups plain words, mentions stay."""

    def plain(m: re.Match[str]) -> str:
        target, _, label = m.group(1).partition("|")
        if re.fullmatch(r"@[UW][A-Z0-9]+", target):
            return f"<{target}>"
        if re.fullmatch(r"#[CG][A-Z0-9]+", target):
            return f"<{target}>"
        if target.startswith("!"):  # <!here>, <!subteam^S1|@oncall>, <!date^...|fallback>
            return label or "@" + target[1:].split("^")[0]
        if target.startswith("mailto:"):
            return label or target[len("mailto:"):]
        return target if not label or label == target else f"{label} ({target})"

    said = _SLACK_MARKUP.sub(plain, str(text or ""))
    return said.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# Advice written for the terminal (sources and errors say it that way), worded for Slack, where
# the person reading cannot pass a flag to the process that runs Sleuth.
_CLI_ADVICE = (
    (re.compile(r"\bomit --at\b"), "leave out at="),
    (re.compile(r"--(window|service|at)\b ?"), r"\1="),  # the command takes the same as window=2h, at=...
    (re.compile(r"pass --config sleuth\.yml \(see sleuth\.example\.yml\) or --scenario DIR"),
     "whoever runs Sleuth sets them in its sleuth.yml (see sleuth.example.yml)"),
    (re.compile(r"add some with sleuth index add --runbooks DIR"), "whoever runs Sleuth can add runbooks to its memory"),
    (re.compile(r"fill one with sleuth index add"), "whoever runs Sleuth can set one up (memory: in sleuth.yml)"),
    (re.compile(r"add some with sleuth index add"), "a resolved incident joins it with Add to memory on its summary"),
    (re.compile(r"run `sleuth index rebuild` to re-embed it with the configured function, or configure the original one"),
     "whoever runs Sleuth must rebuild it with the configured embedding, or configure the original one"),
)
_CLI = re.compile(r"\bsleuth (?:index|diagnose|demo|serve|webhook|eval|chat)\b"
                  r"|--(?:config|scenario|memory|runbooks|chroma-host|chroma-port|charts|json|thread|window|service|at)\b")


def slack_words(text: Any) -> str:
    """``text`` without command-line advice (pass --config, run sleuth index ...): the known
    sentences reworded for a Slack reader, any other clause giving such advice replaced."""
    said = str(text or "")
    if not _CLI.search(said):
        return said
    for pattern, words in _CLI_ADVICE:
        said = pattern.sub(words, said)
    if _CLI.search(said):
        said = "; ".join("whoever runs Sleuth can fix this in its setup" if _CLI.search(clause) else clause
                         for clause in said.split("; "))
    return said


def code(text: Any, limit: int = 400) -> str:
    """Inline code that survives any query text (backticks cannot be escaped inside code spans)."""
    return "`" + clip(escape(str(text).replace("`", "'").replace("\n", " ")), limit) + "`"


def link(url: str | None, label: str) -> str:
    if not url or not re.match(r"https?://", url):
        return ""
    safe = url.replace("&", "&amp;").replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")
    return f"<{safe}|{escape(label)}>"


def user(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody"


def when(value: Any, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time each reader sees in their own time zone (Slack's date token), UTC as fallback."""
    ts = parse_time(value)
    if ts is None:
        return "unknown time"
    fallback = datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts)}^{fmt}|{fallback}>"


# --- block constructors -----------------------------------------------------------------------


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER) or "Sleuth", "emoji": True}}


def section(text: str, *, block_id: str | None = None, accessory: dict | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION) or " "}}
    if block_id:
        block["block_id"] = block_id[:255]
    if accessory:
        block["accessory"] = accessory
    return block


def sections(text: str, limit: int = MAX_SECTION) -> list[dict[str, Any]]:
    """Long mrkdwn as several sections, split at line ends where possible."""
    out, current = [], ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                out.append(current)
                current = ""
            out.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        out.append(current)
    return [section(chunk) for chunk in out if chunk.strip()] or [section(" ")]


def context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": clip(t, MAX_CONTEXT_TEXT)} for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements or [{"type": "mrkdwn", "text": " "}]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, *, style: str | None = None,
           confirm: dict | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON), "emoji": True},
                             "action_id": action_id, "value": value[:MAX_VALUE]}
    if style:
        block["style"] = style
    if confirm:
        block["confirm"] = confirm
    return block


def fit(prioritised: Sequence[tuple[int, dict[str, Any]]], limit: int = MAX_BLOCKS,
        note: str = "Some detail was left out to fit Slack's limits; ask in the thread for more.") -> list[dict[str, Any]]:
    """Blocks in their order, dropping the least important (highest number, last first) to fit."""
    items = list(prioritised)
    if len(items) <= limit:
        return [block for _, block in items]
    keep = limit - 1
    order = sorted(range(len(items)), key=lambda i: (items[i][0], i))  # most important first
    kept = sorted(order[:keep])
    return [items[i][1] for i in kept] + [context(f"_{note}_")]
