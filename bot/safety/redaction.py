"""The Redactor: every redaction rule over strings and JSON-plain values, with a tally of what it replaced."""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Any

from bot.config import SafetyConfig
from bot.safety.credentials import BUILTIN_RULES, CAMEL, SECRET_KEY, secret_key_kind
from bot.safety.detectors import LIBRARY_RULES
from bot.safety.personal import EMAIL, IPV4, IPV6, PERSONAL_GATES, PERSONAL_RULES, is_card_number
from bot.safety.rules import Rule, mark, placeholder


class Redactor:
    """Replaces secrets and personal data with ``[REDACTED:<kind>]``.

    ``counts`` tallies redactions by kind over the redactor's life (``count`` is their total);
    ``redact_with_count`` and ``redact_obj_with_count`` also return the tally of one call.
    """

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        # Ours first (whole PEM blocks, assignments, tokens of every length), then what the
        # library's plugins still find, then personal data (emails before phones: a phone rule
        # must not see the digits of an address).
        rules = list(BUILTIN_RULES) + list(LIBRARY_RULES)
        if self.config.redact_emails:
            rules.append(EMAIL)
        rules += PERSONAL_RULES
        if self.config.redact_ips:
            rules += [IPV4, IPV6]
        for pattern in self.config.patterns:
            regex = re.compile(pattern)
            # a pattern with a group named "value" redacts only that part of its match
            replace = None if "value" not in regex.groupindex else (
                lambda m: m.group()[: m.start("value") - m.start()] + mark("custom") + m.group()[m.end("value") - m.start():])
            rules.append(Rule("custom", regex, (), replace))
        self._rules = tuple(rules)
        # One pass over the line for every rule's triggers and one for the hints of digit shapes:
        # most lines carry none and leave at once. (A rule with neither, a custom pattern, must
        # always run: no prefilter then.)
        everything = sorted({t for rule in rules for t in rule.triggers if rule.hint is None}, key=len, reverse=True)
        self._prefilter = all(rule.triggers or rule.hint is not None for rule in rules)
        self._any_trigger = re.compile("|".join(map(re.escape, everything))) if everything else None
        self._gates = PERSONAL_GATES + tuple(rule.hint for rule in rules
                                             if rule.hint is not None and rule not in PERSONAL_RULES)
        self.counts: Counter[str] = Counter()

    @property
    def count(self) -> int:
        """Redactions made so far, all kinds together."""
        return sum(self.counts.values())

    def redact(self, text: str) -> str:
        return self.redact_with_count(text)[0]

    def _may_hold_secret(self, text: str) -> bool:
        if not self._prefilter:
            return True
        return (self._any_trigger is not None and self._any_trigger.search(text.lower()) is not None) \
            or any(gate.search(text) is not None for gate in self._gates)

    def redact_with_count(self, text: str) -> tuple[str, dict[str, int]]:
        """The text with secrets replaced, and how many of each kind were replaced."""
        if not text or not self._may_hold_secret(text):
            return text, {}  # most lines: one trigger pass, no rule run
        tally: Counter[str] = Counter()
        text = self._redact(text, tally)
        self.counts.update(tally)
        return text, dict(tally)

    def _redact(self, text: str, tally: Counter[str]) -> str:
        if not text:
            return text
        lower = text.lower()  # triggers are tested on the original: replacements add none worth a pass
        for rule in self._rules:
            if not rule.applies(text, lower):
                continue
            if rule.sub is not None:
                text = rule.sub(text, tally)
            else:
                text = rule.regex.sub(functools.partial(self._apply, rule, tally=tally), text)
        return text

    @staticmethod
    def _apply(rule: Rule, m: re.Match[str], tally: Counter[str]) -> str:
        if rule.replace is None:
            tally[rule.kind] += 1
            return mark(rule.kind)
        out = rule.replace(m)
        if out is None:
            return m.group()
        found = re.search(r"\[REDACTED:(\w+)\]", out)
        tally[found.group(1) if found else rule.kind] += 1
        return out

    def redact_obj(self, obj: Any) -> Any:
        return self.redact_obj_with_count(obj)[0]

    def redact_obj_with_count(self, obj: Any) -> tuple[Any, dict[str, int]]:
        """A copy of a JSON-plain value with every string redacted, and the tally of this call.

        String values under keys that name secrets ("password", "api_key", "token", "secret",
        "authorization", ...) are replaced whole; keys are redacted like any string (an email used
        as a key is still an email). Numbers, booleans and None pass unchanged.
        """
        tally: Counter[str] = Counter()
        out = self._walk(obj, tally)
        self.counts.update(tally)
        return out, dict(tally)

    def _walk(self, obj: Any, tally: Counter[str]) -> Any:
        if isinstance(obj, str):
            return self._redact(obj, tally) if self._may_hold_secret(obj) else obj
        if isinstance(obj, int) and not isinstance(obj, bool) and obj >= 10 ** 11 and is_card_number(str(obj)):
            tally["card"] += 1  # a card number written as a JSON number
            return mark("card")
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                new_key = self._walk(key, tally) if isinstance(key, str) else key
                while new_key in out:  # two keys redacted to the same text stay two entries
                    new_key = f"{new_key}'"
                if isinstance(key, str) and isinstance(value, str) and value and not placeholder(value) \
                        and SECRET_KEY.match(CAMEL.sub("_", key)):
                    kind = secret_key_kind(key)
                    tally[kind] += 1
                    out[new_key] = mark(kind)
                else:
                    out[new_key] = self._walk(value, tally)
            return out
        if isinstance(obj, (list, tuple)):
            return [self._walk(item, tally) for item in obj]
        return obj
