"""Everything Sleuth says to Slack passes here last: the redactor, as a step nothing can skip.

Renderers and flows compose messages from data that may hold a secret or personal data (the
/diagnose text, a flagged message, a source's error body, a model's words); redaction at each of
them would leave gaps. Instead the edge redacts:

- :class:`RedactingWebClient` is a slack_sdk ``WebClient`` whose ``api_call`` (the one method
  every Web API method ends in, files_upload_v2's steps included) redacts the request's params,
  form data and JSON body: text, blocks, attachments, views, file titles and comments, ephemeral
  messages. Identifiers (channel, ts, user, trigger_id, button values, ...) pass unchanged, and so
  do a file's bytes, which go to the upload URL, not through ``api_call``.
- :class:`RedactingAck` does the same for what an ack says (the slash command's ephemeral
  answers, modal errors): those go back in the HTTP response or the Socket Mode ack, not the API.
- :func:`speak_through` is the Bolt middleware that hands every listener this client and this
  ack: Bolt would otherwise build a plain ``WebClient`` per request.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import SafetyConfig
from bot.safety import Redactor

log = logging.getLogger("sleuth.slack")

DEFAULT_API_URL = "https://slack.com/api/"

# Keys whose values identify things (Slack's ids, our button values) rather than say anything:
# redacting them could only break a call. Everything else that is a string is redacted.
IDENTIFIERS = frozenset({
    "channel", "channel_id", "channels", "ts", "thread_ts", "message_ts", "timestamp", "latest", "oldest",
    "user", "users", "user_id", "usergroup", "team_id", "trigger_id", "view_id", "external_id", "hash",
    "file", "file_id", "id", "token", "cursor", "limit", "inclusive", "length", "upload_url",
    "action_id", "block_id", "callback_id", "private_metadata", "value", "response_action", "response_type",
    "type", "style", "emoji", "mrkdwn", "unfurl_links", "unfurl_media", "reply_broadcast", "parse", "link_names",
    "as_user", "icon_emoji",
})
# Keys whose string values slack_sdk fills with JSON (form-encoded calls): parsed, redacted, dumped.
JSON_VALUED = frozenset({"blocks", "attachments", "files", "view", "metadata", "options"})


class PayloadRedactor:
    """Redacts a Slack payload: every string but identifiers, JSON inside strings included."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, payload: Any, tally: Counter[str] | None = None) -> Any:
        tally = Counter() if tally is None else tally
        return self._walk(payload, tally)

    def _walk(self, value: Any, tally: Counter[str]) -> Any:
        if isinstance(value, str):
            return self._text(value, tally)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in IDENTIFIERS and not isinstance(item, (dict, list)):
                    out[key] = item
                elif key in JSON_VALUED and isinstance(item, str):
                    out[key] = self._json(item, tally)
                else:
                    out[key] = self._walk(item, tally)
            return out
        if isinstance(value, (list, tuple)):
            return [self._walk(item, tally) for item in value]
        if hasattr(value, "to_dict"):  # slack_sdk's Block, Attachment, View objects
            return self._walk(value.to_dict(), tally)
        return value

    def _json(self, text: str, tally: Counter[str]) -> str:
        # slack_sdk sends blocks, attachments and file lists as JSON strings in form bodies
        try:
            parsed = json.loads(text)
        except ValueError:
            return self._text(text, tally)
        return json.dumps(self._walk(parsed, tally), ensure_ascii=False)

    def _text(self, text: str, tally: Counter[str]) -> str:
        out, found = self.redactor.redact_with_count(text)
        tally.update(found)
        return out


class RedactingWebClient(WebClient):
    """A ``WebClient`` that redacts every request it sends (see the module docstring)."""

    def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = redactor or Redactor()
        self.redact_payload = PayloadRedactor(self.redactor)

    def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict | None = None,
                 data: dict | None = None, params: dict | None = None, json: dict | None = None,  # noqa: A002
                 headers: dict | None = None, auth: dict | None = None) -> Any:
        tally: Counter[str] = Counter()
        data, params, json = (self.redact_payload(part, tally) if part else part for part in (data, params, json))
        if tally:
            log.info("redacted %s from %s", ", ".join(f"{n} {kind}" for kind, n in sorted(tally.items())), api_method)
        return super().api_call(api_method, http_verb=http_verb, files=files, data=data, params=params, json=json,
                                headers=headers, auth=auth)


def redacting(client: WebClient, safety: SafetyConfig | None = None) -> RedactingWebClient:
    """``client`` itself when it already redacts, else a redacting client with its settings."""
    if isinstance(client, RedactingWebClient):
        return client
    return RedactingWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                              proxy=client.proxy, headers=client.headers, logger=client.logger,
                              retry_handlers=list(client.retry_handlers or []), redactor=Redactor(safety))


def _ack_class() -> type:
    from slack_bolt.context.ack import Ack

    class RedactingAck(Ack):
        """Bolt's ack, with what it says redacted (ephemeral answers, view errors)."""

        def __init__(self, redact_payload: PayloadRedactor) -> None:
            super().__init__()
            self.redact_payload = redact_payload

        def __call__(self, text: str | dict = "", blocks: Any = None, attachments: Any = None, unfurl_links: Any = None,
                     unfurl_media: Any = None, response_type: str | None = None, options: Any = None,
                     option_groups: Any = None, response_action: str | None = None, errors: Any = None,
                     view: Any = None) -> Any:
            said = self.redact_payload({"text": text, "blocks": blocks, "attachments": attachments,
                                        "errors": errors, "view": view})
            return super().__call__(said["text"], blocks=said["blocks"], attachments=said["attachments"],
                                    unfurl_links=unfurl_links, unfurl_media=unfurl_media,
                                    response_type=response_type, options=options, option_groups=option_groups,
                                    response_action=response_action, errors=said["errors"], view=said["view"])

    return RedactingAck


def speak_through(client: WebClient) -> Callable[..., None]:
    """A Bolt middleware: every listener gets ``client`` (made redacting) and a redacting ack."""
    said = redacting(client)
    ack_class = _ack_class()

    def redact_what_is_said(context: Any, next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
        context["client"] = said
        context["ack"] = ack_class(said.redact_payload)
        next()

    return redact_what_is_said


def api_url(explicit: str | None = None) -> str:
    """The Web API base URL: explicit, else SLEUTH_SLACK_API_URL, else Slack's (always ending in /)."""
    url = explicit or os.environ.get("SLEUTH_SLACK_API_URL") or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def make_client(token: str, *, base_url: str | None = None, timeout: int = 30,
                safety: SafetyConfig | None = None) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After) and connection errors, and redacts
    everything it sends with ``safety``'s redactor (bot.slack.outgoing): the one way Sleuth
    makes a Slack client, so nothing said to Slack skips redaction."""
    return RedactingWebClient(
        token=token, base_url=api_url(base_url), timeout=timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                        RateLimitErrorRetryHandler(max_retry_count=3)],
        redactor=Redactor(safety),
    )
