"""Safety of untrusted data on its way to a model or to Slack: redaction, fencing, injection hints.

Everything the agent reads from a source (log lines, metric labels, change messages, Slack
messages) was written by someone else, so three things happen before a model sees it:

- ``Redactor`` replaces secrets and personal data with ``[REDACTED:<kind>]``. Secrets: vendor
  key formats, from detect-secrets' plugins (their maintained regexes: Slack, GitHub, AWS,
  Stripe, SendGrid, Twilio, PyPI, npm, Azure storage, GitLab, Mailchimp, Square, ...) and from
  rules of ours that cover what those miss or cut short (OpenAI, Slack app and refresh tokens,
  fine-grained GitHub tokens, Google API keys and OAuth secrets, whole PEM blocks, ...), JWTs,
  Authorization headers, ``password=`` / ``token:`` style assignments, credentials in URLs.
  Personal data, ours: payment card numbers (brand prefix, length and the Luhn check), US social
  security and UK national insurance numbers, phone numbers (E.164 and the usual written forms),
  IBANs (country length and the mod-97 check), emails, optionally IP addresses; and the patterns
  of ``safety.patterns`` in sleuth.yml. The rules are narrow on purpose: service names, versions,
  durations, latencies, timestamps, ports, status codes, hostnames, request ids and commit SHAs
  survive, because a diagnosis needs them. Each rule is a precompiled regular expression, skipped
  outright when its trigger words (or, for shapes made of digits, its cheap hint pattern) are
  absent, so thousands of lines stay cheap.
- ``fence(label, text)`` wraps data between markers that carry a per-call random nonce, after
  neutralising anything in the data that could close the fence early or pass for a chat-template
  control token. The system prompt tells the model that fenced text is data, never instructions.
- ``looks_like_injection(text)`` lists the reasons a text reads like a prompt injection (instruction
  overrides, role-play, fake tool calls, approval or command requests, hidden or encoded text).
  It is advisory: the agent labels such evidence as suspicious; the fence and the read-only tools
  are the defences that do not depend on recognising the attack.

The modules: rules (the rule type), credentials, personal and detectors (the rules), redaction
(the Redactor), fencing (neutralise, fence), injection (looks_like_injection).
"""

from __future__ import annotations

from bot.safety.fencing import CONTROL_TOKENS, ROLE_TAGS, fence, neutralise
from bot.safety.injection import looks_like_injection
from bot.safety.personal import is_card_number
from bot.safety.redaction import Redactor
from bot.safety.rules import KINDS

__all__ = ["Redactor", "fence", "neutralise", "looks_like_injection", "is_card_number", "KINDS", "CONTROL_TOKENS", "ROLE_TAGS"]
