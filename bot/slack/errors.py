"""What Slack's errors mean: "not now" (tried again later) or "no" (said in one sentence)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError


# Errors by which Slack says "not now" rather than "no": the work is tried again later.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "timeout"})


def undelivered(exc: BaseException) -> bool:
    """True when Slack did not take a call but may later: no connection, a timeout, 5xx, 429."""
    import http.client
    import urllib.error

    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200) or 200
        error = response.get("error") if response is not None and hasattr(response, "get") else None
        return status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException))


def retry_after(exc: BaseException) -> float | None:
    """Slack's Retry-After (seconds) on a 429, if it gave one."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return None
    headers = getattr(exc.response, "headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or getattr(exc.response, "status_code", "") or exc)
    return f"{type(exc).__name__}: {exc}"


def slack_error(exc: SlackApiError, method: str) -> str:
    error = exc.response.get("error") if exc.response is not None else str(exc)
    hints = {"not_in_channel": "invite Sleuth to the channel (/invite @Sleuth)",
             "channel_not_found": "invite Sleuth to the channel (/invite @Sleuth)",
             "missing_scope": "reinstall the app from manifest.yml so it has every scope",
             "invalid_auth": "check SLACK_BOT_TOKEN", "ratelimited": "wait a minute and try again"}
    return f"Slack refused {method} ({error}); {hints.get(error, 'try again, and check the app log if it persists')}"
