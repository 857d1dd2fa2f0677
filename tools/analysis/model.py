"""The analysis's data: the observations it reads, per-component profiles, candidate causes, shared constants."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.anomaly import Anomaly
from tools.metrics.catalog import Signal
from tools.changes import Change
from tools.logs import Template, TemplateChange
from tools.metrics import Series

# Labels that name who sent the traffic a series measures: when the value is itself a component,
# the series says as much about that component as about the one that served it.
ATTRIBUTION_LABELS = ("tenant", "client", "caller", "consumer", "source_service", "client_service")
ERROR_LEVELS = ("error", "fatal")
QUALITY_KINDS = frozenset({"model", "index", "data", "prompt"})


@dataclass
class Observations:
    """Everything the sources returned for one investigation (the input of ``analyse``)."""

    symptom_text: str
    service: str | None
    at: float
    window_start: float
    baseline_s: float
    change_lookback_s: float
    step_s: float = 60.0
    topology: dict[str, list[str]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # component -> who to page
    series: dict[str, list[Series]] = field(default_factory=dict)  # component -> series
    signal_names: dict[str, str] = field(default_factory=dict)  # query -> catalog signal name
    links: dict[str, str] = field(default_factory=dict)  # query -> link
    templates: list[Template] = field(default_factory=list)
    log_queries: dict[str, str] = field(default_factory=dict)  # component -> query
    log_links: dict[str, str] = field(default_factory=dict)  # component -> link
    changes: list[Change] = field(default_factory=list)
    change_queries: list[str] = field(default_factory=list)
    # Similar past incidents (dicts: id, title, similarity, score, categories, mitigations, ...).
    similar: list[dict] = field(default_factory=list)
    similar_query: str = ""
    # What limited the investigation, in plain words (a young stack's short history, ...).
    limits: list[str] = field(default_factory=list)
    # Host components (node:<host>) -> the services running on that host.
    hosts: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SeriesAnomaly:
    component: str
    series: Series
    signal: Signal
    anomaly: Anomaly
    evidence_id: str = ""


@dataclass
class Profile:
    """How one component behaved in the window."""

    name: str
    series: list[Series] = field(default_factory=list)
    anomalies: list[SeriesAnomaly] = field(default_factory=list)
    templates: list[TemplateChange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Departures of the host it runs on (node:<host>): they say why, never where.
    host_anomalies: list[SeriesAnomaly] = field(default_factory=list)

    @property
    def strength(self) -> float:
        return max((a.anomaly.score for a in self.anomalies), default=0.0)

    @property
    def onset(self) -> float | None:
        """When its strongest departures began: the earliest of those at least half as strong as
        the strongest, so a weaker blip before them does not date the component."""
        strong = [a.anomaly for a in self.anomalies if a.anomaly.score >= 0.15]
        if not strong:
            return None
        top = max(a.score for a in strong)
        return min(a.onset for a in strong if a.score >= 0.5 * top)


@dataclass
class Candidate:
    category: str
    component: str
    score: float
    support: dict[str, float]
    evidence: list[str]
    reasons: list[str]
    scope: dict[str, str] = field(default_factory=dict)
    change: Change | None = None
    refuted: str = ""
    weak: bool = False  # drawn from a slow drift alone: a lead, said as such


@dataclass
class Precedent:
    """What similar past incidents say about a category: the share of their vote, and who voted."""

    share: float
    evidence: list[str]
    mitigations: dict[str, list[str]]  # action -> past incident ids it resolved


# --- formatting ---------------------------------------------------------------------------------


def fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude != 0 and magnitude < 0.01:
        return f"{value:.4f}"
    if magnitude < 10:
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}"


def fmt_duration(seconds: float) -> str:
    minutes = abs(seconds) / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{abs(seconds):.0f} s"
