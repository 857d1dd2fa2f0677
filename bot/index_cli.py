"""``sleuth index``: fill and search the memory of past incidents and runbooks.

A typer sub-app; bot/cli.py registers it with ``app.add_typer(index_app, name="index")``.
Chroma is imported inside the commands so that ``sleuth --help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from bot.cli_common import fail, guard

index_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Sleuth's memory: past incidents and runbooks in Chroma, and similar-incident search.",
    pretty_exceptions_enable=False,
)

_MEMORY_HELP = "embedded store folder (default: .sleuth/memory)"
DIM_OPTION = typer.Option(None, "--dim", help="hashed: vector dimension (unset: 1024 for a new memory, an "
                          "existing memory's own)")


def _guard(work: Callable[[], Any]) -> Any:
    from index.errors import SleuthIndexError

    return guard(work, SleuthIndexError)


def _memory(config_path: Optional[Path], *, memory: Optional[Path], chroma_host: Optional[str],
            chroma_port: Optional[int], chroma_ssl: bool, embedding: str, embedding_url: Optional[str],
            embedding_model: Optional[str], embedding_key_env: Optional[str], dim: Optional[int]):
    from index.embeddings import EmbeddingConfig
    from index.store import ChromaServerConfig, Memory, MemoryConfig

    if config_path is not None:
        # The same memory `sleuth diagnose --config` searches: sleuth.yml's memory: section.
        from bot.config import ConfigError, load_config

        if memory is not None or chroma_host or chroma_port:
            fail("give either --config (its memory: section) or --memory/--chroma-host, not both")
        try:
            configured = load_config(config_path).memory
        except ConfigError as exc:
            fail(str(exc))
        if configured is None:
            fail(f"{config_path} has no memory: section; add one (see sleuth.example.yml) or pass --memory DIR")
        return Memory(configured)
    if memory is not None and (chroma_host or chroma_port):
        fail("give either --memory DIR (embedded) or --chroma-host/--chroma-port (a server), not both")
    if embedding not in ("hashed", "openai", "onnx-minilm"):
        fail(f"unknown --embedding {embedding!r}; use hashed, openai or onnx-minilm")
    server = None
    if chroma_host or chroma_port:
        server = ChromaServerConfig(host=chroma_host or "127.0.0.1", port=chroma_port or 8000, ssl=chroma_ssl)
    config = MemoryConfig(
        path=memory if memory is not None else MemoryConfig().path,
        server=server,
        embedding=EmbeddingConfig(kind=embedding, base_url=embedding_url, model=embedding_model,
                                  api_key_env=embedding_key_env, dim=dim),
    )
    return Memory(config)


# The options every command that opens the memory takes, declared once: ``memory_options`` adds
# them to a command's signature (typer reads the signature) and hands the command ``open_memory``.
_MEMORY_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("memory", Optional[Path], typer.Option(None, "--memory", help=_MEMORY_HELP)),
    ("chroma_host", Optional[str], typer.Option(None, "--chroma-host", help="a Chroma server instead of the embedded store")),
    ("chroma_port", Optional[int], typer.Option(None, "--chroma-port", help="the Chroma server's port (default 8000)")),
    ("chroma_ssl", bool, typer.Option(False, "--chroma-ssl", help="reach the Chroma server over HTTPS")),
    ("embedding", str, typer.Option("hashed", "--embedding", help="hashed (offline default), openai or onnx-minilm")),
    ("embedding_url", Optional[str], typer.Option(None, "--embedding-url",
                                                   help="openai: base URL, e.g. http://127.0.0.1:11434/v1")),
    ("embedding_model", Optional[str], typer.Option(None, "--embedding-model", help="openai: model name")),
    ("embedding_key_env", Optional[str], typer.Option("OPENAI_API_KEY", "--embedding-key-env",
                                                       help="openai: NAME of the env var with the key")),
    ("dim", Optional[int], DIM_OPTION),
    ("config", Optional[Path], typer.Option(None, "--config", "-c",
                                            help="use sleuth.yml's memory: section (as diagnose does)")),
)


def memory_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared memory options; it receives ``open_memory`` (no arguments) instead."""
    signature = inspect.signature(command)
    own = [p for name, p in signature.parameters.items() if name != "open_memory"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
              for name, kind, option in _MEMORY_OPTIONS]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        chosen = {name: values.pop(name) for name, _, _ in _MEMORY_OPTIONS}
        config_path = chosen.pop("config")
        command(open_memory=lambda: _memory(config_path, **chosen), **values)

    run.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
    return run


@index_app.command()
@memory_options
def add(
    paths: list[Path] = typer.Argument(..., help="postmortem files or folders (.md, .json, .jsonl), or runbook folders"),
    runbooks: bool = typer.Option(False, "--runbooks", help="the paths are runbooks (Markdown with front matter)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    *,
    open_memory: Callable[[], Any],  # given by memory_options
) -> None:
    """Add postmortems (or --runbooks) to the memory; the same document twice is one record."""

    def work() -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from index.records import collect
        from index.store import IngestSummary

        records, file_skips = collect(paths, runbooks=runbooks)
        mem = open_memory()
        err = Console(stderr=True)
        ingest = mem.add_runbooks if runbooks else mem.add_records
        with Progress(TextColumn("[bold]embedding[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json or not err.is_terminal) as progress:
            task = progress.add_task("ingest", total=len(records))
            summary = ingest(records, on_progress=lambda done, total: progress.update(task, completed=done,
                                                                                        total=total))
        summary = IngestSummary(skipped=list(file_skips)).merge(summary) if file_skips else summary
        if as_json:
            sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
            return
        _print_summary(summary, "runbooks" if runbooks else "incidents", mem.config.where())

    _guard(work)


def _print_summary(summary, collection: str, where: str) -> None:
    from rich.console import Console

    console = Console()
    unchanged = [i for i, why in summary.skipped if why == "unchanged"]
    others = [(i, why) for i, why in summary.skipped if why != "unchanged"]
    console.print(f"{collection} in {where}: [green]{len(summary.added)} added[/green], "
                  f"[yellow]{len(summary.updated)} updated[/yellow], {len(summary.skipped)} skipped "
                  f"({len(unchanged)} unchanged, {len(others)} with problems)")
    for rid in summary.updated[:20]:
        console.print(f"  updated {rid}")
    if len(summary.updated) > 20:
        console.print(f"  ... and {len(summary.updated) - 20} more updated")
    for rid, why in others:
        console.print(f"  [red]skipped[/red] {rid}: {why}", highlight=False)


@index_app.command()
@memory_options
def search(
    text: str = typer.Argument(..., help="the symptom, alert or question"),
    service: Optional[str] = typer.Option(None, "--service", "-s", help="keep incidents on this service"),
    since: Optional[str] = typer.Option(None, "--since", help="keep incidents from this date (YYYY-MM-DD)"),
    k: int = typer.Option(5, "--k", "-k", min=1, max=100, help="how many incidents"),
    as_json: bool = typer.Option(False, "--json", help="print results and suggestion as JSON"),
    *,
    open_memory: Callable[[], Any],  # given by memory_options
) -> None:
    """Find similar past incidents; suggest a root-cause category and the fixes that worked."""

    def work() -> None:
        mem = open_memory()
        results = mem.find_similar_incidents(text, service=service, since=since, k=k)
        suggestion = mem.suggest(results, text)
        runbooks = mem.find_runbooks(text, category=suggestion.category, k=2)
        if as_json:
            payload = {"results": [r.to_dict() for r in results], "suggestion": suggestion.to_dict(),
                       "runbooks": [r.__dict__ for r in runbooks]}
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        _print_results(results, suggestion, runbooks, mem.config.where())

    _guard(work)


def _print_results(results, suggestion, runbooks, where: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not results:
        console.print(f"no past incidents in {where}; add postmortems with `sleuth index add PATH`")
        return
    table = Table(title="similar past incidents")
    for column in ("id", "title", "score", "category", "fixed by", "why"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.id, r.title, f"{r.score:.2f}", r.category or "-", ", ".join(r.mitigations) or "-", r.why)
    console.print(table)
    if suggestion.category:
        console.print(f"suggested root cause: [bold]{suggestion.category}[/bold] (confidence {suggestion.confidence:.0%})")
    for m in suggestion.mitigations[:3]:
        console.print(f"  try {m.action}: {m.provenance}")
    for book in runbooks:
        console.print(f"runbook: {book.title} ({book.source})", highlight=False)


@index_app.command()
@memory_options
def rebuild(
    *,
    open_memory: Callable[[], Any],  # given by memory_options
) -> None:
    """Re-embed everything with the configured embedding function (after changing it)."""

    def work() -> None:
        mem = open_memory()
        counts = mem.rebuild()
        if not counts:
            typer.echo(f"nothing to rebuild in {mem.config.where()}")
            return
        typer.echo(f"re-embedded with {mem.embedding.name()}: "
                   + ", ".join(f"{n} {name}" for name, n in counts.items()))

    _guard(work)


@index_app.command("eval")
def eval_(
    paths: list[Path] = typer.Argument(..., help="a labelled corpus: files or folders (.md, .json, .jsonl)"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
    dim: Optional[int] = DIM_OPTION,
) -> None:
    """Leave-one-out quality on a labelled corpus: early category suggestion and related-incident precision@5."""

    def work() -> None:
        from index.evaluate import evaluate

        report = evaluate(paths, dim=dim)
        if as_json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
            return
        _print_eval(report)

    _guard(work)


def _print_eval(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    goals = report["goals"]
    table = Table(title=f"leave-one-out on {report['records']} labelled records "
                        f"(majority class {report['majority_category']})")
    for column in ("embedding", "early suggestion accuracy", "related precision@5", "majority baseline"):
        table.add_column(column)
    for label, figures in report["by_embedding"].items():
        early, related = figures["early_category_accuracy"], figures["related_precision_at_5"]
        table.add_row(label,
                      f"{early:.3f} ({early - report['majority_baseline']:+.3f})",
                      f"{related:.3f}",
                      f"{report['majority_baseline']:.3f}")
    console.print(table)
    console.print(f"goals: early >= {goals['early_category_accuracy']:.3f} (baseline + 0.05), related >= "
                  f"{goals['related_precision_at_5']:.2f}: {'met' if report['meets_goals'] else '[red]not met[/red]'}")
    for label, figures in report["by_embedding"].items():
        console.print(f"  {label}: neighbour vote alone {figures['early_neighbour_vote_accuracy']:.3f} early; "
                      f"similarity alone {figures['related_precision_at_5_similarity_only']:.3f} related; "
                      f"related without root-cause and mitigation text {figures['related_precision_at_5_strict']:.3f}",
                      highlight=False)
    for note in report["notes"]:
        console.print(f"  note: {note}", highlight=False)
