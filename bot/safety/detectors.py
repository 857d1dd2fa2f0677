"""Redaction rules from detect-secrets' regex plugins (none when the package is missing)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from bot.safety.rules import Rule, mark

# --- secrets found by detect-secrets' plugins ---------------------------------------------------
# Their regexes are maintained as vendors change formats; some are cut at a fixed length (a Stripe
# key's first 24 characters), so a match is extended over the token's remaining characters before
# it is replaced. The plugins that judge by keywords or entropy alone are left out: on log lines
# they flag ordinary words.

_LIBRARY_PLUGINS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # (module, class, kind, triggers; none: the plugin's own regexes are the hint)
    ("slack", "SlackDetector", "token", ("xox", "hooks.slack.com")),
    ("github_token", "GitHubTokenDetector", "token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    ("gitlab_token", "GitLabTokenDetector", "token",
     ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-", "glimt-", "glptt-", "glagent-", "gloas-")),
    ("aws", "AWSKeyDetector", "aws_key", ("akia", "asia", "abia", "acca", "a3t", "aws")),
    ("azure_storage_key", "AzureStorageKeyDetector", "connection_string", ("accountkey",)),
    ("stripe", "StripeDetector", "api_key", ("_live_",)),
    ("sendgrid", "SendGridDetector", "api_key", ("sg.",)),
    ("twilio", "TwilioKeyDetector", "api_key", ()),
    ("pypi_token", "PypiTokenDetector", "token", ("pypi-",)),
    ("npm", "NpmDetector", "token", ("_authtoken",)),
    ("openai", "OpenAIDetector", "api_key", ("t3blbkfj",)),
    ("mailchimp", "MailchimpDetector", "api_key", ("-us",)),
    ("square_oauth", "SquareOAuthDetector", "secret", ("sq0csp-",)),
    ("discord", "DiscordBotTokenDetector", "token", ()),
    ("telegram_token", "TelegramBotTokenDetector", "token", ()),
)
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_-]")


def _library_pass(kind: str, regexes: tuple[re.Pattern[str], ...]) -> Callable[[str, Counter[str]], str]:
    def sub(text: str, tally: Counter[str]) -> str:
        for regex in regexes:
            pieces, done = [], 0
            for m in regex.finditer(text):
                # a plugin that captures the secret in a group (npm's _authToken=..., AWS secret keys)
                group = next((i for i in range(1, (regex.groups or 0) + 1) if m.group(i)), 0)
                start, end = m.span(group)
                if start < done or "[REDACTED:" in text[start:end]:
                    continue
                while end < len(text) and _TOKEN_CHAR.match(text, end):
                    end += 1
                pieces += [text[done:start], mark(kind)]
                tally[kind] += 1
                done = end
            if pieces:
                text = "".join(pieces) + text[done:]
        return text
    return sub


def _library_rules() -> tuple[Rule, ...]:
    """detect-secrets' regex plugins as rules (none when the package is missing: ours remain)."""
    import importlib

    rules = []
    for module, name, kind, triggers in _LIBRARY_PLUGINS:
        try:
            plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
            regexes = tuple(r for r in plugin.denylist if isinstance(r, re.Pattern))
        except (ImportError, AttributeError):
            continue
        if not regexes:
            continue
        hint = None if triggers else re.compile("|".join(f"(?:{r.pattern})" for r in regexes))
        rules.append(Rule(kind, regexes[0], triggers, sub=_library_pass(kind, regexes), hint=hint))
    return tuple(rules)


LIBRARY_RULES = _library_rules()
