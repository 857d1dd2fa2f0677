"""PNG charts of the most anomalous signals: the series, its baseline, the onset and the changes.

Two steps, so the drawing can happen elsewhere: :func:`chart_specs` picks what to draw from a
diagnosis (plain, picklable data: a few arrays and labels), and :func:`render_charts` draws specs
into files. :func:`write_charts` does both in the caller's thread (the CLI); the Slack adapter
hands the specs to a worker process, posts the diagnosis, then uploads the files when they exist.

Drawn with matplotlib's object-oriented API on the Agg canvas: no display, and no pyplot global
state, so several threads never draw into each other's figure. The layout is fixed rather than
computed (tight_layout cost more than the drawing itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tools.analysis import Observations
from tools.diagnosis import Diagnosis
from tools.timeparse import parse_time


@dataclass
class ChartChange:
    at: float
    label: str
    same_component: bool


@dataclass
class ChartSpec:
    """One chart to draw: everything needed, nothing to look up."""

    filename: str
    title: str
    series_name: str
    timestamps: np.ndarray
    values: np.ndarray
    baseline_median: float
    start: float  # the left edge: the baseline's start
    window_start: float  # the baseline band ends here
    end: float  # the right edge: the investigation's time
    onset: float | None = None
    changes: list[ChartChange] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "signal"


def chart_specs(diagnosis: Diagnosis, observations: Observations, top: int = 4) -> list[ChartSpec]:
    """What to draw: up to ``top`` metric signals cited as evidence, in evidence order."""
    metric_evidence = [e for e in diagnosis.evidence if e.source == "metrics"][:top]
    changes = [e for e in diagnosis.evidence if e.source == "changes"]
    start = observations.window_start - observations.baseline_s
    specs = []
    for rank, evidence in enumerate(metric_evidence, 1):
        labels = evidence.details.get("labels", {})
        series = next((s for s in observations.series.get(evidence.component or "", []) if s.labels == labels), None)
        if series is None:
            continue
        keep = series.timestamps >= start
        marks = []
        for change in changes:
            ts = parse_time(change.onset) if change.onset else None
            if ts is not None and ts >= start:
                marks.append(ChartChange(ts, str(change.details.get("change_id", change.id)),
                                         change.component == evidence.component))
        specs.append(ChartSpec(
            filename=f"{rank:02d}-{_slug(evidence.component or '')}-{_slug(series.name)}.png",
            title=f"{evidence.id}: {series.selector}"[:110], series_name=series.name,
            timestamps=np.asarray(series.timestamps[keep], dtype=float),
            values=np.asarray(series.values[keep], dtype=float),
            baseline_median=float(evidence.details.get("baseline_median", 0.0)),
            start=start, window_start=observations.window_start, end=observations.at,
            onset=parse_time(evidence.onset) if evidence.onset else None, changes=marks))
    return specs


def render_charts(specs: list[ChartSpec], folder: Path) -> list[Path]:
    """Draw ``specs`` into ``folder``; the paths written. Safe to run in a worker process."""
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def utc(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, tz=timezone.utc)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    # Times go to matplotlib as datetimes, which its date converter reads; its stubs only know floats.
    for spec in specs:
        fig = Figure(figsize=(8, 3.2), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.11)
        ax.plot([utc(t) for t in spec.timestamps], spec.values, color="#1f77b4", linewidth=1.2,  # type: ignore[arg-type]
                label=spec.series_name)
        ax.axhline(spec.baseline_median, color="#7f7f7f", linestyle="--", linewidth=0.9, label="baseline median")
        ax.axvspan(utc(spec.start), utc(spec.window_start), color="#dddddd", alpha=0.5, label="baseline")  # type: ignore[arg-type]
        if spec.onset:
            ax.axvline(utc(spec.onset), color="#d62728", linewidth=1.5, label="onset")  # type: ignore[arg-type]
        for change in spec.changes:
            ax.axvline(utc(change.at), color="#ff7f0e" if change.same_component else "#bcbd22",  # type: ignore[arg-type]
                       linestyle=":", linewidth=1.3)
            ax.annotate(change.label, (utc(change.at), 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right")
        ax.set_xlim(utc(spec.start), utc(spec.end))  # type: ignore[arg-type]
        ax.set_title(spec.title, fontsize=9)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        path = folder / spec.filename
        fig.savefig(path)
        written.append(path)
    return written


def worker_init(parent_pid: int) -> None:
    """In a chart worker process: exit when the process that started it is gone (killed, even with
    SIGKILL, which leaves a pool's workers waiting on their queue forever)."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(2.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def warm_up() -> bool:
    """Import the drawing stack (a worker process calls this once, before the first incident)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    return True


def write_charts(diagnosis: Diagnosis, observations: Observations, folder: Path, top: int = 4) -> list[Path]:
    """Write up to ``top`` charts into ``folder`` here and now; returns their paths (possibly none)."""
    return render_charts(chart_specs(diagnosis, observations, top), folder)
