"""The terminal report of a diagnosis, and the live display of sources while they are queried."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tools.diagnosis import Diagnosis, SourceReport

_STATUS_STYLE = {"ok": "green", "no_data": "yellow", "not_configured": "dim", "error": "red"}


class SourceProgress:
    """A live table of the sources: waiting, then ok / no data / error with the reason."""

    def __init__(self, console: Console, names: tuple[str, ...] = ("metrics", "logs", "changes", "incidents")) -> None:
        self.console = console
        self.state: dict[str, SourceReport | None] = {name: None for name in names}
        self.live = Live(self._render(), console=console, refresh_per_second=8, transient=True)

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        for name, report in self.state.items():
            if report is None:
                table.add_row(Text("…", style="cyan"), name, Text("querying", style="dim"))
            else:
                table.add_row(Text("●", style=_STATUS_STYLE[report.status]), name,
                              Text(f"{report.status} {report.reason} ({report.elapsed_ms:.0f} ms)", style="dim"))
        return table

    def __call__(self, name: str, report: SourceReport) -> None:
        self.state[name] = report
        self.live.update(self._render())

    def __enter__(self) -> "SourceProgress":
        self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.live.__exit__(kind, error, trace)


def render(diagnosis: Diagnosis, console: Console) -> None:
    """Print a diagnosis as blocks that stay readable in a narrow terminal."""
    d = diagnosis
    header = Text()
    header.append(d.incident.get("title", ""), style="bold")
    header.append(f"\nservice {d.incident.get('service') or '?'}  ·  onset {d.incident.get('onset') or 'not found'}"
                  f"\nwindow {d.window['start']} .. {d.window['end']}")
    knock_on = d.incident.get("knock_on") or []
    if knock_on:
        header.append("\nknock-on effects: " + ", ".join(f"{k['component']} (after {k['after']})" for k in knock_on),
                      style="dim")
    for limit in d.limits:
        header.append(f"\nlimited: {limit}", style="yellow")
    console.print(Panel(header, title="Sleuth diagnosis", border_style="cyan"))

    console.print(Text("Hypotheses", style="bold underline"))
    for h in d.hypotheses:
        refuted = h.status == "refuted"
        line = Text()
        line.append(f"{h.rank}. ", style="bold")
        line.append(f"{h.category} in {h.component}", style="dim" if refuted else "bold yellow" if h.rank == 1 else "bold")
        line.append(f"  [{h.status}, confidence {h.confidence:.2f}]", style="dim")
        console.print(line)
        console.print(Text(f"   {h.statement}", style="dim" if refuted else ""))
        if h.why_lower:
            console.print(Text(f"   {h.why_lower}", style="dim italic"))
        if h.evidence:
            console.print(Text(f"   evidence: {', '.join(h.evidence)}", style="cyan"))

    if d.mitigations:
        console.print(Text("\nProposed mitigations", style="bold underline"))
        for number, m in enumerate(d.mitigations, 1):
            gate = "needs approval" if m.requires_approval else "no approval needed"
            console.print(Text.assemble((f"{number}. {m.action}", "bold green"), f" → {m.target}", (f"  [{gate}]", "dim")))
            console.print(Text(f"   why: {m.rationale}"))
            console.print(Text(f"   risk: {m.risk}", style="dim"))
            console.print(Text(f"   verify: {m.verify}", style="dim"))

    console.print(Text("\nEvidence", style="bold underline"))
    for e in d.evidence:
        console.print(Text.assemble((f"{e.id} ", "cyan bold"), (f"[{e.source}] ", "dim"), e.summary))
        console.print(Text(f"   query: {e.query}", style="dim"))
        if e.link:
            console.print(Text(f"   open: {e.link}", style="dim blue"))

    if d.similar_incidents:
        console.print(Text("\nSimilar past incidents", style="bold underline"))
        for s in d.similar_incidents:
            console.print(f"{s.id} {s.title} (similarity {s.similarity:.2f}): {s.root_cause}; fixed by {s.mitigation}")

    lines = []
    for name, report in d.sources.items():
        lines.append(Text.assemble(("● ", _STATUS_STYLE.get(report.status, "")), f"{name}: {report.status}",
                                   (f" — {report.reason}" if report.reason else "", "dim")))
    lines.append(Text(f"model: {d.model.get('status')}   ·   total {d.timings.get('total_ms', 0):.0f} ms", style="dim"))
    console.print(Panel(Group(*lines), title="Sources", border_style="dim"))
