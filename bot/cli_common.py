"""What every ``sleuth`` subcommand module shares: a user-caused error ends in one sentence on
stderr and exit code 2, never a traceback."""

from __future__ import annotations

from typing import Any, Callable

import typer


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guard(work: Callable[[], Any], *errors: type[BaseException]) -> Any:
    """Run a command body; ``errors`` (and an interrupt) end in one sentence and exit code 2.
    Without ``errors``: the configuration and request errors of ``sleuth diagnose`` and friends."""
    if not errors:
        from bot.config import ConfigError
        from bot.investigate import RequestError

        errors = (ConfigError, RequestError)
    try:
        return work()
    except errors as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted")
