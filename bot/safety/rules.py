"""The redaction rule, the redaction mark, and the tests every rule shares (placeholders, secret-looking values)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

KINDS = (
    "api_key", "token", "password", "secret", "private_key", "email", "ip", "jwt", "aws_key",
    "bearer", "cookie", "url_credentials", "connection_string", "card", "ssn", "national_id", "phone",
    "iban", "custom",
)


def mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Values that are placeholders, not secrets: left alone so "password=${DB_PASSWORD}" stays readable.
_PLACEHOLDERS = {
    "null", "none", "nil", "true", "false", "undefined", "redacted", "n/a", "-", "<redacted>", "%s",
    "yes", "no", "on", "off", "set", "unset", "required", "missing", "empty", "invalid", "incorrect",
    "expired", "wrong", "changed", "hidden",
}


def placeholder(value: str) -> bool:
    v = value.strip().lower()
    return (not v or v in _PLACEHOLDERS or v.startswith(("${", "$(", "{{", "<", "[redacted"))
            or set(v) <= {"*", "x", "."})


@dataclass(frozen=True)
class Rule:
    """One redaction: a regex, a replacement (None: the whole match), and its trigger words.

    A rule runs only when one of its (lowercase) triggers occurs in the text: most lines carry no
    secret at all, and a substring test is far cheaper than a regex pass.
    """

    kind: str
    regex: re.Pattern[str]
    triggers: tuple[str, ...] = ()
    replace: Callable[[re.Match[str]], str | None] | None = None  # None from it: leave as is
    sub: Callable[[str, Counter[str]], str] | None = None  # a whole pass of its own, instead of regex.sub
    # For shapes no word announces (digits, case-sensitive prefixes): a cheap pattern searched in
    # the original text instead of the triggers.
    hint: re.Pattern[str] | None = None

    def applies(self, text: str, lower: str) -> bool:
        if self.hint is not None:
            return self.hint.search(text) is not None
        return not self.triggers or any(t in lower for t in self.triggers)


def keep_head(kind: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group("head") + mark(kind)
