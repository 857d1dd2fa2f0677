"""The ``sleuth`` command line.

Heavy libraries (numpy, matplotlib, httpx, drain3) are imported inside the commands, so that
``sleuth --help`` answers at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from bot.cli_common import fail, guard

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Sleuth: diagnose incidents from metrics, logs, changes and past incidents.",
    pretty_exceptions_enable=False,
)


def _console(err: bool = False, width: int | None = None):
    """A console; when output is not a terminal, ``width`` keeps wide tables from wrapping."""
    from rich.console import Console

    console = Console(stderr=err)
    if width and not console.is_terminal:
        console = Console(stderr=err, width=width)
    return console


def _run(request, config, *, as_json: bool, charts: Optional[Path]) -> None:
    """One investigation through the agent's graph (no clarifying question: a script cannot answer)."""
    import uuid

    from bot.agent import Agent
    from bot.report import SourceProgress, render
    from tools.diagnosis import Diagnosis

    agent = Agent(config, charts_dir=charts, charts_per_thread=False)
    thread = f"cli:{uuid.uuid4().hex}"

    def start(progress=None):
        return agent.start(thread, request.symptom, service=request.service, window=request.window, at=request.at,
                           on_progress=progress, clarify=False)

    progress_console = _console(err=True)
    if progress_console.is_terminal:
        with SourceProgress(progress_console) as progress:
            turn = start(progress)
    else:
        turn = start()
    if turn.kind == "error":
        fail(turn.text)
    if as_json:
        payload = agent.redactor.redact_obj(dict(turn.diagnosis))  # the last step before stdout: nothing skips it
        if charts is not None:
            payload["charts"] = turn.charts
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    console = _console()
    render(Diagnosis.from_dict(turn.diagnosis), console)
    from rich.markup import escape

    from bot.narrate import describe_narrative

    for line in describe_narrative(turn.diagnosis):
        console.print(f"[bold]Model:[/bold] {escape(line)}")
    model = turn.diagnosis.get("model") or {}
    if model.get("status") not in (None, "not_configured"):
        console.print(f"[dim]model {escape(str(model.get('name')))}: {escape(str(model.get('status')))}"
                      + (f" ({escape(model['note'])})" if model.get("note") else "") + "[/dim]")
    if charts is not None:
        console.print(f"charts: {', '.join(turn.charts) or 'none (no anomalous signal to draw)'}")


@app.command()
def diagnose(
    symptom: Optional[str] = typer.Argument(
        None, help="the symptom or alert text, e.g. \"checkout returns 500s\" (with --scenario: its own by default)"
    ),
    service: Optional[str] = typer.Option(None, "--service", "-s", help="the service users see failing"),
    at: Optional[str] = typer.Option(None, "--at", help="ISO-8601 time of the question (default: now)"),
    window: Optional[str] = typer.Option(None, "--window", "-w", help="how far back to look for the onset, e.g. 1h"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml"),
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="point every source at a scenario folder"),
    as_json: bool = typer.Option(False, "--json", help="print the diagnosis as JSON"),
    charts: Optional[Path] = typer.Option(None, "--charts", help="write PNG charts of the top signals here"),
) -> None:
    """Investigate a symptom: find the onset, rank hypotheses with evidence, propose mitigations."""

    def work() -> None:
        from bot.config import load_config
        from bot.investigate import InvestigationRequest, parse_at
        from bot.scenario import load_scenario

        base = load_config(config)
        # A scenario supplies the question's defaults; what is given on the command line wins.
        defaults = InvestigationRequest(symptom="")
        cfg = base
        if scenario is not None:
            loaded = load_scenario(scenario, base)
            cfg, defaults = loaded.config, loaded.request
        request = InvestigationRequest(
            symptom=symptom if symptom is not None else defaults.symptom,
            service=service or defaults.service,
            at=parse_at(at) if at else defaults.at,
            window=window or defaults.window,
        )
        _run(request, cfg, as_json=as_json, charts=charts)

    guard(work)


@app.command()
def demo(
    as_json: bool = typer.Option(False, "--json", help="print the diagnosis as JSON"),
    charts: Optional[Path] = typer.Option(None, "--charts", help="write PNG charts of the top signals here"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml for settings other than sources "
                                                                          "(model:, agent:, safety:)"),
) -> None:
    """Run the bundled demo scenario end to end: no server, no key. With a model configured
    (SLEUTH_LLM_BASE_URL and SLEUTH_LLM_MODEL, or model: in --config), the model takes part."""

    def work() -> None:
        from bot.config import load_config
        from bot.scenario import DEMO_SCENARIO, SCENARIOS_DIR, load_scenario

        loaded = load_scenario(SCENARIOS_DIR / DEMO_SCENARIO, load_config(config))
        if not as_json:
            _console().print(f"[bold]Demo:[/bold] {loaded.description.title}\n"
                             f"[dim]\"{loaded.request.symptom}\" at {loaded.description.at}, "
                             f"from {loaded.folder}[/dim]")
        _run(loaded.request, loaded.config, as_json=as_json, charts=charts)

    guard(work)


@app.command("eval")
def eval_(
    folders: Optional[list[Path]] = typer.Argument(None, help="scenario folders, or folders of them (default: scenarios/)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml for settings other than sources"),
    as_json: bool = typer.Option(False, "--json", help="print the scores as JSON"),
) -> None:
    """Run scenarios through the investigation and print a score table."""

    def work() -> None:
        from bot.config import load_config
        from bot.evaluation import RATES, as_json as scores_json, evaluate, summarise
        from bot.scenario import SCENARIOS_DIR, find_scenarios

        base = load_config(config)
        found = find_scenarios(list(folders) if folders else [SCENARIOS_DIR])
        scores = asyncio.run(evaluate(found, base))
        if as_json:
            sys.stdout.write(json.dumps(scores_json(scores), indent=2) + "\n")
            return
        from rich.table import Table

        table = Table(title=f"sleuth eval: {len(scores)} scenarios")
        for column in ("scenario", "expected", "top-1", "cat@1", "comp@1", "cat@3", "comp@3", "mitig", "decoy", "failed", "ms"):
            table.add_column(column)
        mark = {True: "[green]yes[/green]", False: "[red]no[/red]"}
        for s in scores:
            if s.error:
                table.add_row(s.scenario, s.expected, f"[red]{s.error}[/red]", *[""] * 8)
                continue
            table.add_row(s.scenario, s.expected, s.predicted, mark[s.category_top1], mark[s.component_top1],
                          mark[s.category_top3], mark[s.component_top3], mark[s.mitigation_top1],
                          "[red]chosen[/red]" if s.decoy_chosen else "-", ",".join(s.failed_sources) or "-",
                          f"{s.time_ms:.0f}")
        console = _console(width=150)
        console.print(table)
        summary = summarise(scores)
        console.print("  ".join(f"{k}={summary[k]:.2f}" for k in RATES)
                      + f"  time_ms_median={summary['time_ms_median']}")

    guard(work)


@app.command()
def webhook(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="sleuth.yml with changes.webhook"),
    host: Optional[str] = typer.Option(None, help="address to listen on (default from config: 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="port (default from config: 8787)"),
) -> None:
    """Receive changes from CI/CD: POST JSON to /changes; they are kept in the webhook store."""

    def work() -> None:
        from bot.config import load_config
        from tools.changes import ChangeStore, WebhookConfig, make_webhook_server

        cfg = load_config(config)
        hook = cfg.changes.webhook or WebhookConfig()
        hook = hook.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
        store = ChangeStore(hook.store)
        try:
            server = make_webhook_server(hook, store)
        except OSError as exc:
            fail(f"cannot listen on {hook.host}:{hook.port}: {exc.strerror or exc}; choose another --port")
        typer.echo(f"listening on http://{hook.host}:{server.server_address[1]}/changes, storing in {hook.store}", err=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
            store.close()

    guard(work)


def _register_subcommands() -> None:
    from bot.index_cli import index_app

    app.add_typer(index_app, name="index")
    from bot.chat_cli import register as register_chat

    register_chat(app)
    from bot.slack.serve import register as register_serve

    register_serve(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
