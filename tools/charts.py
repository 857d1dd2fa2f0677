"""PNG charts of the most anomalous signals: the series, its baseline, the onset and the changes.

Rendered with matplotlib's Agg backend (no display needed). The Slack adapter uploads these files.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from tools.analysis import Observations
from tools.diagnosis import Diagnosis
from tools.logs import parse_time


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "signal"


def write_charts(diagnosis: Diagnosis, observations: Observations, folder: Path, top: int = 4) -> list[Path]:
    """Write up to ``top`` charts into ``folder``; returns their paths (possibly none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metric_evidence = [e for e in diagnosis.evidence if e.source == "metrics"][:top]
    changes = [e for e in diagnosis.evidence if e.source == "changes"]
    start = observations.window_start - observations.baseline_s
    written = []
    for rank, evidence in enumerate(metric_evidence, 1):
        labels = evidence.details.get("labels", {})
        series = next((s for s in observations.series.get(evidence.component or "", []) if s.labels == labels), None)
        if series is None:
            continue
        keep = series.timestamps >= start
        times = [datetime.fromtimestamp(t, tz=timezone.utc) for t in series.timestamps[keep]]
        fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
        ax.plot(times, series.values[keep], color="#1f77b4", linewidth=1.2, label=series.name)
        ax.axhline(evidence.details.get("baseline_median", 0.0), color="#7f7f7f", linestyle="--", linewidth=0.9,
                   label="baseline median")
        ax.axvspan(datetime.fromtimestamp(start, tz=timezone.utc),
                   datetime.fromtimestamp(observations.window_start, tz=timezone.utc),
                   color="#dddddd", alpha=0.5, label="baseline")
        onset = parse_time(evidence.onset) if evidence.onset else None
        if onset:
            ax.axvline(datetime.fromtimestamp(onset, tz=timezone.utc), color="#d62728", linewidth=1.5, label="onset")
        for change in changes:
            ts = parse_time(change.onset) if change.onset else None
            if ts is None or ts < start:
                continue
            same = change.component == evidence.component
            ax.axvline(datetime.fromtimestamp(ts, tz=timezone.utc), color="#ff7f0e" if same else "#bcbd22",
                       linestyle=":", linewidth=1.3)
            ax.annotate(change.details.get("change_id", change.id), (datetime.fromtimestamp(ts, tz=timezone.utc), 1.0),
                        xycoords=("data", "axes fraction"), fontsize=7, rotation=90, va="top", ha="right")
        ax.set_xlim(datetime.fromtimestamp(start, tz=timezone.utc), datetime.fromtimestamp(observations.at, tz=timezone.utc))
        ax.set_title(f"{evidence.id}: {series.selector}"[:110], fontsize=9)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        path = folder / f"{rank:02d}-{_slug(evidence.component or '')}-{_slug(series.name)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
