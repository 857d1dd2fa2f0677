"""Scenario folders (docs/scenarios.md): a description, its telemetry, and the ground truth.

``load_scenario`` reads only what a responder would know (scenario.yml) and points every source at
the folder's files; ``load_truth`` reads truth.yml, for the evaluator alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

if TYPE_CHECKING:
    from index.config import MemoryConfig

from bot.config import ConfigError, ServiceConfig, SleuthConfig, explain
from bot.investigate import InvestigationRequest, parse_at, RequestError
from tools.changes import ChangesConfig
from tools.logs import LogsConfig
from tools.metrics import MetricsConfig
from tools.safeload import InputError, decode_text, load_yaml
from tools.taxonomy import ACTIONS, CATEGORIES

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
RUNBOOKS_DIR = Path(__file__).resolve().parent.parent / "runbooks"
DEMO_SCENARIO = "demo"


class ScenarioDescription(BaseModel):
    model_config = {"extra": "forbid"}

    title: str
    symptom: str
    service: str | None = None
    at: str
    window: str = "1h"
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    baseline: str | None = None


class Decoy(BaseModel):
    model_config = {"extra": "forbid"}

    component: str | None = None
    change_id: str | None = None
    note: str = ""


class Truth(BaseModel):
    model_config = {"extra": "forbid"}

    category: str
    component: str
    mitigations: list[str] = Field(default_factory=list)
    onset: str | None = None
    decoy: Decoy | None = None

    def model_post_init(self, _: Any) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is not a taxonomy id ({', '.join(CATEGORIES)})")
        unknown = [m for m in self.mitigations if m not in ACTIONS]
        if unknown:
            raise ValueError(f"mitigations {unknown} are not taxonomy actions ({', '.join(ACTIONS)})")


@dataclass
class Scenario:
    folder: Path
    description: ScenarioDescription
    request: InvestigationRequest
    config: SleuthConfig
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(decode_text(path.read_bytes(), str(path)), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a YAML mapping")
    return data


def load_scenario(folder: Path, base: SleuthConfig | None = None) -> Scenario:
    """A scenario folder as a request plus a config whose sources read the folder's files."""
    folder = Path(folder)
    described = folder / "scenario.yml"
    if not described.is_file():
        raise ConfigError(f"{folder} is not a scenario folder: it has no scenario.yml (see docs/scenarios.md)")
    try:
        description = ScenarioDescription.model_validate(_read_yaml(described))
    except ValidationError as exc:
        raise explain(exc, str(described)) from exc
    config = (base or SleuthConfig()).model_copy(deep=True)
    metrics, logs, changes = folder / "metrics.om", folder / "logs.jsonl", folder / "changes.jsonl"
    config.metrics = MetricsConfig(openmetrics=[metrics] if metrics.exists() else [], step_s=config.metrics.step_s,
                                   links=config.metrics.links)
    config.logs = LogsConfig(files=[logs] if logs.exists() else [])
    config.changes = ChangesConfig(files=[changes] if changes.exists() else [])
    config.services = {**config.services, **description.services}
    history = scenario_history(folder)
    if history:
        config.memory = history_memory(history, config.memory)
    config.investigation.window = description.window
    if description.baseline:
        config.investigation.baseline = description.baseline
    try:
        at = parse_at(description.at)
    except RequestError as exc:
        raise ConfigError(f"{described}: 'at' {exc}") from exc
    request = InvestigationRequest(description.symptom, description.service, at, description.window)
    return Scenario(folder, description, request, config)


def scenario_history(folder: Path) -> list[Path]:
    """Past incidents a scenario may remember: its own history/ and the history/ beside it."""
    return [p for p in (Path(folder) / "history", Path(folder).parent / "history") if p.is_dir()]


def history_memory(paths: list[Path], base: "MemoryConfig | None" = None) -> "MemoryConfig":
    """A memory holding the postmortems under ``paths``, built once and cached by content.

    Built in a fresh folder, then renamed into place, so a run never sees a half-built memory.
    """
    import hashlib
    import os
    import shutil
    import tempfile

    from index.config import MemoryConfig
    from index.errors import SleuthIndexError
    from index.records import collect
    from index.store import Memory

    embedding = (base or MemoryConfig()).embedding
    digest = hashlib.sha256(embedding.model_dump_json().encode())
    runbooks = RUNBOOKS_DIR if RUNBOOKS_DIR.is_dir() else None
    files = sorted(f for p in paths + ([runbooks] if runbooks else []) for f in p.rglob("*") if f.is_file())
    for f in files:
        digest.update(str(f.relative_to(f.parents[1])).encode() + f.read_bytes())
    root = Path(tempfile.gettempdir()) / "sleuth-scenario-memory"
    target = root / digest.hexdigest()[:20]
    config = MemoryConfig(path=target, embedding=embedding)
    if (target / ".complete").exists():
        return config
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="building-", dir=root))
    try:
        records, _skipped = collect(paths)
        memory = Memory(MemoryConfig(path=building, embedding=embedding))
        memory.add_records(records)
        if runbooks:
            memory.add_runbooks(collect([runbooks], runbooks=True)[0])
        (building / ".complete").touch()
        try:
            os.replace(building, target)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)  # another run finished first: use its copy
    except SleuthIndexError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise ConfigError(f"the scenario's history could not be read: {exc}") from exc
    return config


def load_truth(folder: Path) -> Truth | None:
    path = Path(folder) / "truth.yml"
    if not path.is_file():
        return None
    try:
        return Truth.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc.errors()[0]['msg']}") from exc


def find_scenarios(paths: list[Path]) -> list[Path]:
    """Scenario folders among ``paths``: each path is a scenario folder or a folder of them."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if (path / "scenario.yml").is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.glob("*/scenario.yml")))
        else:
            raise ConfigError(f"{path} is neither a scenario folder nor a folder of scenarios")
    if not found:
        raise ConfigError(f"no scenarios (folders with a scenario.yml) under {', '.join(map(str, paths))}")
    return found
