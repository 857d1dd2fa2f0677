"""Who may do what to an incident: the policy of ``slack.roles`` and the sentence that refuses.

Plain data in, a verdict out (no Slack calls here: bot/slack/decisions.py expands user groups and asks).

- ``commander``, ``severity``, ``status``, ``resolve``: the roles each lists (``commander``,
  ``approvers``, ``anyone``); by default the incident's commander and the approvers. Anyone may
  take command while the incident has no commander.
- ``decide`` (approve or reject mitigations): the approvers, and the commander when listed, with
  one rule that keeps approval with the approvers list: when approvers are configured, the
  commander counts only if an approver appointed them (``/diagnose commander @them`` run by an
  approver). Whoever opened the incident, or took command without an approver, commands but
  does not approve. With no approvers configured, the commander decides: whoever opened the
  incident (or took command while it had none), or whom the previous commander handed over to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from bot.config import SlackConfig
from bot.incidents.store import Incident

ACTIONS = {
    "commander": "hand over command",
    "severity": "change the severity",
    "status": "change the status",
    "resolve": "resolve the incident",
    "decide": "approve or reject mitigations",
}
SHOWN = 5  # mentions named in a refusal before "and N more"


def mention(entry: str) -> str:
    """A configured approver as Slack shows it: a user, or a user group (S...)."""
    return f"<!subteam^{entry}>" if entry.startswith("S") else f"<@{entry}>"


def mentions(entries: Iterable[str]) -> str:
    names = [mention(e) for e in dict.fromkeys(entries)]
    if len(names) > SHOWN:
        return ", ".join(names[:SHOWN]) + f" and {len(names) - SHOWN} more"
    return ", ".join(names)


@dataclass
class Verdict:
    allowed: bool
    refusal: str = ""  # one sentence naming who may, when not allowed


def commander_decides(config: SlackConfig, incident: Incident, approvers: set[str], appointed_by: str | None) -> bool:
    """Whether the incident's current commander holds approval rights (``decide`` lists commander)."""
    if not incident.commander or "commander" not in config.roles.decide:
        return False
    if not config.approvers:
        return True  # nobody else could ever grant it: the commander decides (documented)
    return bool(appointed_by) and appointed_by in approvers


def check(config: SlackConfig, action: str, *, user: str, incident: Incident, approvers: set[str],
          appointed_by: str | None = None, command: str = "/diagnose") -> Verdict:
    """May ``user`` do ``action`` (a key of ACTIONS) to ``incident``? ``approvers``: the configured
    approvers with user groups expanded; ``appointed_by``: who made the current commander commander."""
    roles = list(getattr(config.roles, action))
    is_commander = bool(incident.commander) and user == incident.commander
    is_approver = user in approvers
    if action == "commander" and not incident.commander:
        return Verdict(True)  # anyone may take command while nobody has it
    if "anyone" in roles:
        return Verdict(True)
    if "approvers" in roles and is_approver:
        return Verdict(True)
    if action == "decide":
        qualifies = commander_decides(config, incident, approvers, appointed_by)
        if is_commander and qualifies:
            return Verdict(True)
    elif "commander" in roles and is_commander:
        return Verdict(True)
    return Verdict(False, refusal(config, action, user=user, incident=incident, approvers=approvers,
                                  appointed_by=appointed_by, command=command))


def refusal(config: SlackConfig, action: str, *, user: str, incident: Incident, approvers: set[str],
            appointed_by: str | None = None, command: str = "/diagnose") -> str:
    """One sentence: only these people may; what to do."""
    roles = list(getattr(config.roles, action))
    who: list[str] = []
    nobody_commands = f"the incident commander (nobody yet: `{command} commander @you` takes command)"
    if "commander" in roles:
        if action != "decide":
            who.append(f"the incident commander ({mention(incident.commander)})" if incident.commander
                       else nobody_commands)
        elif incident.commander and commander_decides(config, incident, approvers, appointed_by):
            who.append(f"the incident commander ({mention(incident.commander)})")
        elif config.approvers:
            who.append("a commander appointed by an approver")
        elif not incident.commander:
            who.append(nobody_commands)
    if "approvers" in roles and config.approvers:
        who.insert(0 if action == "decide" else len(who),
                   f"an approver ({mentions(config.approvers)})")
    verb = ACTIONS[action]
    if not who:
        setting = f"slack.roles.{action}"
        return (f"Nobody may {verb} here: {setting} names only approvers and slack.approvers is empty; "
                "ask whoever runs Sleuth to add approvers.")
    if action == "decide" and "commander" in roles and config.approvers and user == incident.commander \
            and not commander_decides(config, incident, approvers, appointed_by):
        ask = "ask an approver to decide, or to appoint you commander (command taken without one carries no approval)"
    elif action == "commander":
        ask = f"ask {'one of them' if len(who) > 1 else 'them'} to run `{command} commander @you`"
    else:
        ask = f"ask {'one of them' if len(who) > 1 else 'them'}"
    return f"Only {' or '.join(who)} may {verb}; {ask}."
