"""Redaction rules for secrets: tokens and keys of known formats, JWTs, auth headers, cookies, assignments, URL credentials."""

from __future__ import annotations

import re
from collections import Counter

from bot.safety.rules import Rule, keep_head, mark, placeholder


def _secretish(value: str) -> bool:
    """A bare word after ``token:`` is prose ("token: expired"); digits, mixed case or length are not."""
    return (len(value) >= 16 or any(c.isdigit() for c in value)
            or (any(c.islower() for c in value) and any(c.isupper() for c in value))
            or any(not c.isalnum() and c not in "-_." for c in value))


_KV_KEY = (
    r"(?:[\w.-]*?(?:password|passwd|passphrase|pwd)"
    r"|[\w.-]+[_.-]pass"
    r"|[\w.-]*?token"
    r"|[\w.-]*?secret(?:[_.-]?(?:key|access[_.-]?key|key[_.-]?base))?"
    r"|[\w.-]*?(?:api[_.-]?key|apikey|access[_.-]?key|auth[_.-]?key|subscription[_.-]?key|private[_.-]?key)"
    r"|account[_.-]?key|shared[_.-]?access[_.-]?key|sharedaccesssignature)"
)
_KV_KEY_FULL = re.compile(_KV_KEY, re.I)
# Every secret key ends with one of these words right before its separator: found first, cheaply,
# then the key is read backwards from there (a regex that guesses where keys start is much slower).
_KV_END = re.compile(r"(?:pass(?:word|wd|phrase)?|pwd|token|secret|key|base|signature)(?=\\?[\"']?[ \t]*[:=])", re.I)
# separator (JSON, YAML, env, logfmt, Ruby hashes, escaped JSON inside a message), then the value
_KV_TAIL = re.compile(
    r"(?P<sep>\\?[\"']?[ \t]*(?:=>|[:=])[ \t]*)"
    r"(?!\\?[\"']?\[REDACTED)"
    r"(?:(?P<dq>\")(?P<dval>(?:[^\"\\\n]|\\.)+)"  # "quoted", escapes and all, up to the matching quote
    r"|(?P<eq>\\\"|\\?')(?P<eval>[^\"'\\\n]+)"  # \"quoted\" inside an escaped string, or 'quoted'
    r"|(?P<val>[^\s\"'\\,;&})\]<>]+))",      # bare, up to a delimiter
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _kv_kind(key: str) -> str:
    k = key.lower()
    if "aws" in k:
        return "aws_key"
    if re.search(r"account[_.-]?key|shared[_.-]?access|sharedaccesssignature", k):
        return "connection_string"
    if "private" in k:
        return "private_key"
    if k.endswith("token"):
        return "token"
    if re.search(r"(?:pass(?:word|wd|phrase)?|pwd)$", k):
        return "password"
    if "secret" in k:
        return "secret"
    return "api_key"


def _kv_value(key: str, tail: re.Match[str]) -> str | None:
    """The redacted separator and value after ``key``, or None when the value is not a secret."""
    quote = tail.group("dq") or tail.group("eq") or ""
    value = tail.group("dval") or tail.group("eval") or tail.group("val")
    if placeholder(value):
        return None
    kind = _kv_kind(key)
    bare_colon = not quote and ":" in tail.group("sep") and "=" not in tail.group("sep")
    if bare_colon and kind != "password" and not _secretish(value):
        return None  # "token: expired", "secret: not found" are error messages, not secrets
    return tail.group("sep") + quote + mark(kind)


def _redact_assignments(text: str, tally: Counter[str]) -> str:
    """``password=...``, ``"api_key": "..."``, ``token: ...`` and the like, their values redacted."""
    pieces, done = [], 0
    for end in _KV_END.finditer(text):
        start = end.start()
        while start > 0 and text[start - 1] in _KEY_CHARS and end.end() - start < 80:
            start -= 1
        if start < done or (start > 0 and text[start - 1] in _KEY_CHARS):
            continue
        key = text[start:end.end()]
        if not _KV_KEY_FULL.fullmatch(key):
            continue
        tail = _KV_TAIL.match(text, end.end())
        if tail is None:
            continue
        replaced = _kv_value(key, tail)
        if replaced is None:
            continue
        tally[replaced[replaced.rindex("[REDACTED:") + 10:-1]] += 1
        pieces += [text[done:end.end()], replaced]
        done = tail.end()
    return "".join(pieces) + text[done:] if pieces else text


def _flag_replace(m: re.Match[str]) -> str | None:
    if placeholder(m.group("val")):
        return None
    return m.group("head") + mark(_kv_kind(m.group("flag")))


def _bearer_replace(m: re.Match[str]) -> str | None:
    value = m.group("val")
    if value.isalpha() and value.islower():  # "bearer authentication", not a token
        return None
    return m.group("head") + mark("bearer")


_AWS_PREFIXES = ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa")

BUILTIN_RULES: tuple[Rule, ...] = (
    # multi-line blocks first, so nothing below sees a fragment of them
    Rule("private_key", re.compile(
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"  # the body: base64, line breaks (escaped too), headers
        r"(?:[A-Za-z0-9+/=\s\\:,-]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]*)"),
        ("private key",)),
    Rule("url_credentials", re.compile(
        r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@?#\"'<>]*:)(?!\[REDACTED)[^\s@/?#\"'<>]+(?=@)"),
        ("://",), keep_head("url_credentials")),
    Rule("token", re.compile(r"(?P<head>hooks\.slack\.com/services/)[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+"),
         ("hooks.slack.com",), keep_head("token")),
    Rule("bearer", re.compile(
        r"(?P<head>\b(?:proxy-)?authorization\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?"
        r"(?:(?:bearer|basic|digest|token|negotiate|apikey|sso-key)[ \t]+)?)(?!\[REDACTED)(?P<val>[^\s\"'\\,;]+)",
        re.I), ("authorization",), lambda m: m.group("head") + mark("bearer")),
    Rule("bearer", re.compile(r"(?P<head>\bbearer[ \t]+)(?!\[REDACTED)(?P<val>[A-Za-z0-9._~+/=-]{8,})", re.I),
         ("bearer",), _bearer_replace),
    Rule("cookie", re.compile(r"(?P<head>\b(?:set-)?cookie\\?[\"']?[ \t]*:[ \t]*\\?[\"']?)(?!\[REDACTED)[^\n\r\"\\]+", re.I),
         ("cookie",), keep_head("cookie")),
    Rule("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), ("eyj",)),
    # vendor formats
    Rule("api_key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"), ("sk-",)),
    # Slack: bot, user, app-level, configuration and refresh tokens (xoxe.xoxp-..., xoxe-1-...)
    Rule("token", re.compile(r"\bxox(?:e\.xox)?[abpcdosre]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}"),
         ("xox", "xapp-")),
    Rule("token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
         ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    Rule("token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}|\bnpm_[A-Za-z0-9]{36}\b|\bhf_[A-Za-z0-9]{30,}\b"),
         ("glpat-", "npm_", "hf_")),
    Rule("aws_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), _AWS_PREFIXES),
    Rule("api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), ("aiza",)),
    Rule("api_key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}|\bwhsec_[0-9A-Za-z]{24,}"),
         ("_live_", "_test_", "whsec_")),
    Rule("api_key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"), ("sg.",)),  # SendGrid
    Rule("api_key", re.compile(r"\b(?:AC|SK)[0-9a-f]{32}\b"), hint=re.compile(r"(?:AC|SK)[0-9a-f]{32}")),  # Twilio
    Rule("token", re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}"), ("pypi-",)),
    Rule("secret", re.compile(r"\bGOCSPX-[A-Za-z0-9_-]{20,}|\bya29\.[0-9A-Za-z_-]{20,}"), ("gocspx-", "ya29.")),
    Rule("connection_string", re.compile(r"(?P<head>[?&]sig=)(?!\[REDACTED)[^&\s\"']+"), ("sig=",),
         keep_head("connection_string")),
    # assignments: password=..., "api_key": "...", --token ...
    Rule("password", _KV_END, ("pass", "pwd", "token", "secret", "key", "signature"), sub=_redact_assignments),
    Rule("password", re.compile(
        r"(?P<head>(?<![\w-])--?(?P<flag>password|passwd|token|api-key|secret)[ \t]+)(?!-)(?!\[REDACTED)(?P<val>[^\s\"'\\]+)",
        re.I), ("password", "passwd", "token", "api-key", "secret"), _flag_replace),
)

# Dict keys whose string values are secrets whatever they look like (redact_obj); camelCase keys
# are split first (accessToken -> access_Token), so secretName stays a name.
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
SECRET_KEY = re.compile(
    r"(?:^|.*[^a-z])?(?:password|passwd|passphrase|pwd|secret|secret[_.-]?key|api[_.-]?key|apikey|token"
    r"|authorization|private[_.-]?key|access[_.-]?key|client[_.-]?secret|credentials?|cookie|set-cookie)$"
    r"|^(?:pgpassword|mysql_pwd)$",
    re.I,
)


def secret_key_kind(key: str) -> str:
    k = key.lower()
    if k.endswith("authorization"):
        return "bearer"
    if "cookie" in k:
        return "cookie"
    if "credential" in k:
        return "secret"
    return _kv_kind(k)
