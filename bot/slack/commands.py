"""The text after ``/diagnose`` (or after an @mention), parsed into one command.

    /diagnose [service] [window] [text]          investigate (opens the channel's incident if none)
    /diagnose start <title> [sev1-4]             open an incident
    /diagnose sev <1-4>
    /diagnose commander @user
    /diagnose status investigating|identified|mitigating|monitoring|resolved
    /diagnose timeline
    /diagnose rollup [all] [--post]
    /diagnose resolve [note]
    /diagnose help

Who may run ``sev``, ``status``, ``commander`` and ``resolve`` is not decided here but in
bot.incidents.roles (``slack.roles``), when the command runs.

Anything malformed raises :class:`UsageError`: one sentence saying what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from tools.timeparse import parse_duration
from bot.slack.mrkdwn import from_slack
from bot.incidents.store import STATUSES

SUBCOMMANDS = ("start", "sev", "commander", "status", "timeline", "rollup", "resolve", "help")

_SERVICE = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
_DURATION = re.compile(r"^\d+(?:\.\d+)?(?:ms|s|m|h|d|w)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))*$", re.I)
_SEVERITY = re.compile(r"^(?:sev)?([1-4])$", re.I)
# Slack escapes mentions as <@U123> or <@U123|name> (manifest: should_escape: true).
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def usage(command: str = "/diagnose") -> str:
    """The usage, as mrkdwn (its <placeholders> escaped: Slack reads a bare <...> as a link)."""
    c = command
    return (
        f"*{c}* — Sleuth in this incident channel\n"
        f"• `{c} [service] [window] &lt;what is wrong&gt;` investigate, e.g. `{c} checkout 1h 500s on confirm`\n"
        f"• `{c} start &lt;title&gt; [sev1-4]` open an incident for this channel\n"
        f"• `{c} sev &lt;1-4&gt;` · `{c} commander @user` · `{c} status &lt;{'|'.join(STATUSES)}&gt;`\n"
        f"• `{c} timeline` the incident's timeline (react with the timeline emoji to add a message)\n"
        f"• `{c} rollup [all] [--post]` status rollup of this incident, or of every active one\n"
        f"• `{c} resolve [note]` resolve it and post the summary\n"
        "By default the commander and the approvers change sev, status and commander and resolve; the approvers "
        "(and a commander one of them appointed; with no approvers set, the commander) approve or reject "
        "mitigations. A refusal says who may.\n"
        "Reply in a diagnosis thread (or @mention Sleuth) to keep investigating."
    )


class UsageError(ValueError):
    """Command text that cannot be understood, as one sentence naming what to write."""


@dataclass
class Command:
    name: str  # "diagnose" or one of SUBCOMMANDS
    text: str = ""  # the symptom, the title or the resolve note
    service: str | None = None
    window: str | None = None
    at: str | None = None
    severity: int | None = None
    user: str | None = None
    status: str | None = None
    all: bool = False
    post: bool = False


def parse_severity(token: str) -> int | None:
    found = _SEVERITY.match(token.strip())
    return int(found.group(1)) if found else None


def parse_user(token: str) -> str | None:
    token = token.strip()
    found = _MENTION.match(token)
    if found:
        return found.group(1)
    return token if _USER_ID.match(token) else None


def parse(text: str, *, known_services: Iterable[str] = (), command: str = "/diagnose") -> Command:
    """Parse what follows the command, as Slack sends it (escaped: it is read back as typed, see
    mrkdwn.from_slack). ``known_services`` lets a bare first word be a service."""
    text = from_slack(text or "").strip()
    words = text.split()
    if not words:
        return Command("diagnose")
    head = words[0].lower()
    rest = words[1:]
    if head in ("help", "-h", "--help", "usage"):
        return Command("help")
    if head == "start":
        severity = None
        kept = []
        for word in rest:
            sev = parse_severity(word)
            if sev is not None and severity is None and word.lower().startswith("sev"):
                severity = sev
            else:
                kept.append(word)
        title = " ".join(kept).strip()
        if not title:
            raise UsageError(f"start needs a title, e.g. `{command} start Checkout errors sev2`")
        return Command("start", text=title[:200], severity=severity)
    if head == "sev":
        sev = parse_severity(rest[0]) if len(rest) == 1 else None
        if sev is None:
            raise UsageError(f"sev takes one level from 1 (worst) to 4, e.g. `{command} sev 2`")
        return Command("sev", severity=sev)
    if head == "commander":
        user = parse_user(rest[0]) if len(rest) == 1 else None
        if user is None:
            raise UsageError(f"commander takes one @mention of a person, e.g. `{command} commander @alice`")
        return Command("commander", user=user)
    if head == "status":
        value = rest[0].lower() if len(rest) == 1 else ""
        if value not in STATUSES:
            raise UsageError(f"status takes one of {', '.join(STATUSES)}, e.g. `{command} status mitigating`")
        return Command("status", status=value)
    if head == "timeline":
        if rest:
            raise UsageError(f"timeline takes nothing after it; write `{command} timeline`")
        return Command("timeline")
    if head == "rollup":
        flags = [w.lower() for w in rest]
        unknown = [w for w in flags if w not in ("all", "--post")]
        if unknown:
            raise UsageError(f"rollup takes only `all` and `--post`, e.g. `{command} rollup all --post`")
        return Command("rollup", all="all" in flags, post="--post" in flags)
    if head == "resolve":
        return Command("resolve", text=" ".join(rest).strip()[:2000])
    return _parse_diagnose(words, set(known_services), command)


def _parse_diagnose(words: list[str], known: set[str], command: str) -> Command:
    """``[service] [window] [text]``, plus explicit ``service=``, ``window=`` and ``at=`` anywhere.

    A bare service with nothing after it (``/diagnose checkout``) leaves the text empty: the
    channel's incident (or the demo's question) supplies it."""
    found = Command("diagnose")
    kept: list[str] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.lower() in ("service", "window", "at") and value:
            setattr(found, key.lower(), value)
        else:
            kept.append(word)
    position = 0
    if found.service is None and kept and kept[0] in known:
        found.service, position = kept[0], 1
    if found.window is None and len(kept) > position and _DURATION.match(kept[position]):
        found.window = kept.pop(position).lower()
    # The service word stays in the text: "checkout is returning 500s" is the symptom and the title.
    found.text = " ".join(kept).strip() if position < len(kept) else ""
    if found.service is not None and not _SERVICE.fullmatch(found.service):
        raise UsageError(f"service {found.service!r} is not a service name (letters, digits, - _ . : /)")
    if found.window is not None:
        try:
            parse_duration(found.window)
        except ValueError as exc:
            raise UsageError(f"window: {exc}") from exc
    if found.at is not None and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d)?",
                                                 found.at):
        raise UsageError(f"at={found.at} is not an ISO-8601 time; write it like at=2026-03-10T14:30:00Z")
    return found
