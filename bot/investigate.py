"""The bot's entry to the deterministic investigation (tools/investigate.py), with its redaction.

The core knows no bot: here the configured redaction (bot.safety) is handed to it, so a secret in
a log line leaves before the line is mined (a template's masks would hide it from redaction later).
"""

from __future__ import annotations

from bot.config import SleuthConfig
from bot.safety import Redactor
from tools.diagnosis import Diagnosis
from tools.investigate import Investigation, InvestigationRequest, ProgressFn, RequestError, parse_at
from tools.investigate import run_investigation as run_core

__all__ = ["Investigation", "InvestigationRequest", "ProgressFn", "RequestError", "investigate", "parse_at",
           "run_investigation"]


def redaction_key(config: SleuthConfig) -> str:
    """What the redaction of cached log files depends on: the safety settings."""
    return "redacted:" + config.safety.model_dump_json()


async def run_investigation(request: InvestigationRequest, config: SleuthConfig, *,
                            on_progress: ProgressFn | None = None) -> Investigation:
    """The investigation with the configured redaction; the diagnosis beside its observations."""
    return await run_core(request, config, redact=Redactor(config.safety).redact,
                          redaction_key=redaction_key(config), on_progress=on_progress)


async def investigate(request: InvestigationRequest, config: SleuthConfig, *,
                      on_progress: ProgressFn | None = None) -> Diagnosis:
    """Run the deterministic investigation. Raises RequestError for a request that makes no sense;
    never raises for a failing source."""
    return (await run_investigation(request, config, on_progress=on_progress)).diagnosis
