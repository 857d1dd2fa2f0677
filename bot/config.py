"""sleuth.yml: one typed configuration, environment-variable interpolation, one-sentence errors.

``${NAME}`` is replaced by the environment variable NAME (an error if unset), ``${NAME:-default}``
falls back to the default. Unknown keys are errors that suggest the nearest known key, so a typo
never silently disables a source.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from bot.alerts import AlertsConfig
from index.config import MemoryConfig
from tools.changes import ChangesConfig
from tools.logs import LogsConfig
from tools.metrics import MetricsConfig
from tools.safeload import InputError, decode_text, load_yaml
from tools.timeparse import parse_duration


POSTGRES_MISSING = ("storage.postgres is set but Sleuth's PostgreSQL support is not installed; "
                    "pip install 'incident-sleuth[postgres]' (or remove storage.postgres to use the SQLite file)")


class ConfigError(Exception):
    """A configuration problem, as one sentence naming the field and the fix."""


class ServiceConfig(BaseModel):
    """What Sleuth knows about one service: its dependencies and custom signal queries."""

    model_config = {"extra": "forbid"}

    depends_on: list[str] = Field(default_factory=list)
    signals: dict[str, str] = Field(default_factory=dict, description="signal name -> PromQL")
    owner: str | None = None


class InvestigationConfig(BaseModel):
    model_config = {"extra": "forbid"}

    window: str = Field("1h", description="how far back from --at the onset is searched")
    baseline: str = Field("3h", description="the normal period before the window")
    change_lookback: str = Field("2h", description="how long before the onset a change may be the cause")
    source_timeout: str = Field("20s", description="longest a source may take before it is reported as failed")
    max_components: int = Field(40, ge=1, le=500, description="components scanned per investigation")

    @field_validator("window", "baseline", "change_lookback", "source_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class ModelConfig(BaseModel):
    """An OpenAI-compatible chat model. SLEUTH_LLM_BASE_URL, SLEUTH_LLM_MODEL and OPENAI_API_KEY override it."""

    model_config = {"extra": "forbid", "protected_namespaces": ()}

    base_url: str | None = Field(None, description="e.g. https://api.openai.com/v1 or http://localhost:11434/v1")
    model: str | None = Field(None, description="the model name the endpoint expects")
    api_key: str | None = Field(None, description="defaults to $OPENAI_API_KEY; local servers accept anything")
    timeout: str = Field("60s", description="longest one model call may take")
    max_retries: int = Field(2, ge=0, le=10, description="retries of timeouts, 5xx and 429 within the budget")
    tool_calling: bool = Field(True, description="false for models without tool calling")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    prompt_price_per_1k: float = Field(0.0, ge=0.0, description="USD per 1,000 prompt tokens, for the cost estimate")
    completion_price_per_1k: float = Field(0.0, ge=0.0, description="USD per 1,000 completion tokens")

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def configured(self) -> bool:
        return bool(self.model)


class AgentConfig(BaseModel):
    """Budgets per investigation; hitting one ends with the best answer so far."""

    model_config = {"extra": "forbid"}

    max_tool_calls: int = Field(8, ge=0, le=100, description="model tool calls per investigation or follow-up")
    max_tokens: int = Field(60000, ge=1000, description="prompt plus completion tokens per investigation")
    deadline: str = Field("120s", description="wall-clock limit for the model's part of an investigation")
    tool_output_chars: int = Field(3000, ge=200, le=100000, description="cap on one compacted tool output")

    @field_validator("deadline")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class SafetyConfig(BaseModel):
    """Redaction before anything reaches the model or Slack."""

    model_config = {"extra": "forbid"}

    redact_emails: bool = True
    redact_ips: bool = Field(False, description="also redact IPv4/IPv6 addresses")
    patterns: list[str] = Field(default_factory=list, description="extra regular expressions to redact")

    @field_validator("patterns")
    @classmethod
    def _regex(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return value


class StorageConfig(BaseModel):
    """Where conversations (checkpoints), incidents and timelines are kept."""

    model_config = {"extra": "forbid"}

    sqlite: Path = Field(Path(".sleuth/state.db"), description="SQLite file (the default)")
    postgres: str | None = Field(None, description="postgresql://... to keep state in PostgreSQL instead")

    @field_validator("postgres")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("postgres must be a URL like postgresql://user@host:5432/db")
        return value


ROLE_NAMES = ("commander", "approvers", "anyone")


def _roles(value: list[str], allowed: tuple[str, ...]) -> list[str]:
    if not value:
        raise ValueError(f"name at least one of {', '.join(allowed)}")
    for name in value:
        if name not in allowed:
            guess = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            raise ValueError(f"{name!r} is not a role; use {', '.join(allowed)}{hint}")
    return list(dict.fromkeys(value))


class SlackRolesConfig(BaseModel):
    """Who may do what to an incident in Slack. Each entry lists roles: ``commander`` (the
    incident's commander), ``approvers`` (``slack.approvers``), ``anyone`` (any channel member).
    A refusal is private and names who may."""

    model_config = {"extra": "forbid"}

    commander: list[str] = Field(default_factory=lambda: ["commander", "approvers"], description=(
        "who may hand command to someone else (anyone may take it while the incident has no commander)"))
    severity: list[str] = Field(default_factory=lambda: ["commander", "approvers"],
                                description="who may change the severity")
    status: list[str] = Field(default_factory=lambda: ["commander", "approvers"],
                              description="who may change the status (resolving is `resolve`)")
    resolve: list[str] = Field(default_factory=lambda: ["commander", "approvers"],
                               description="who may resolve the incident")
    decide: list[str] = Field(default_factory=lambda: ["approvers", "commander"], description=(
        "who may approve or reject mitigations (not `anyone`): the approvers, and the commander when listed; "
        "with approvers configured, only a commander appointed by an approver counts (never one who took "
        "command or opened the incident); with none configured, the commander decides"))

    @field_validator("commander", "severity", "status", "resolve")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return _roles(value, ROLE_NAMES)

    @field_validator("decide")
    @classmethod
    def _deciders(cls, value: list[str]) -> list[str]:
        if "anyone" in value:
            raise ValueError("approval comes from people you name: use approvers and/or commander, not anyone")
        return _roles(value, ("approvers", "commander"))


class SlackConfig(BaseModel):
    """The Slack app. Tokens come from SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET."""

    model_config = {"extra": "forbid"}

    approvers: list[str] = Field(default_factory=list, description=(
        "user ids (U...) or user-group ids (S...) who may approve or reject mitigations and, by default, "
        "change the commander, severity and status and resolve (slack.roles)"))
    roles: SlackRolesConfig = Field(default_factory=SlackRolesConfig,
                                    description="who may change the commander, severity, status, resolve, decide")
    resolve_wait_s: float = Field(20.0, ge=0.0, le=600.0, description=(
        "resolve waits this long for the channel's running investigation to finish (so its diagnosis makes "
        "the summary); one still running after that, or still queued, is posted or stopped as after resolution"))
    timeline_reaction: str = Field("round_pushpin", description="a message given this reaction joins the timeline")
    command: str = Field("/diagnose", description="the slash command, as in manifest.yml")
    max_investigations: int = Field(2, ge=1, le=64, description=(
        "investigations run at once; more wait their turn (CPU-bound, and one process runs Python on one "
        "core at a time: more than 2 only slows acks and first messages)"))
    takeover_after_s: float = Field(45.0, ge=5.0, le=3600.0, description=(
        "claimed work whose process stopped beating this long is taken over and replayed"))
    shutdown_grace_s: float = Field(20.0, ge=0.0, le=600.0, description=(
        "on SIGTERM, running work gets this long to finish; what is still running then is handed back "
        "for another process (or the next one) to resume"))
    delivery_deadline_s: float = Field(900.0, ge=1.0, le=86400.0, description=(
        "work that Slack could not take (5xx, 429, no connection) is retried with backoff, in the running "
        "process, until this long after it arrived; then the channel is told once Slack answers again"))
    retry_backoff_s: float = Field(2.0, gt=0.0, le=600.0, description=(
        "the first wait before work that Slack could not take is tried again (doubling, with jitter)"))
    retry_backoff_max_s: float = Field(60.0, gt=0.0, le=3600.0, description=(
        "the longest wait between tries (a longer Retry-After from Slack is honoured)"))
    sweep_interval_s: float | None = Field(None, gt=0.0, le=600.0, description=(
        "how often claims are beaten for and due retries and stale work are looked for "
        "(default: a quarter of takeover_after_s, between 1 and 5 s)"))

    @field_validator("approvers")
    @classmethod
    def _approver_ids(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not re.fullmatch(r"[UWS][A-Z0-9]{2,}", entry):
                raise ValueError(f"{entry!r} is not a Slack user id (U...) or user-group id (S...)")
        return value

    @model_validator(mode="after")
    def _someone_decides(self) -> "SlackConfig":
        if not self.approvers and self.roles.decide == ["approvers"]:
            raise ValueError("roles.decide names only approvers but slack.approvers is empty, so nobody could "
                             "approve; add approvers or put commander in roles.decide")
        return self


class SleuthConfig(BaseModel):
    model_config = {"extra": "forbid"}

    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    changes: ChangesConfig = Field(default_factory=ChangesConfig)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    investigation: InvestigationConfig = Field(default_factory=InvestigationConfig)
    memory: MemoryConfig | None = Field(None, description="past-incident memory (sleuth index add fills it)")
    model: ModelConfig = Field(default_factory=ModelConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="the alert intake on sleuth serve")


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str], where: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where}: environment variable {name} is not set; export it or write ${{{name}:-default}}"
            )

        return _VAR.sub(replace, value)
    return value


def _known_fields(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in path:
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return list(getattr(current, "model_fields", {}))
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", ()) or (annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            args = getattr(candidate, "__args__", ())
            nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if nested:
                current = nested[0]
                break
        else:
            return []
    return list(getattr(current, "model_fields", {}))


def explain(error: ValidationError, source: str) -> ConfigError:
    """The first validation problem as one sentence: where, what, and how to fix it."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = _known_fields(SleuthConfig, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(known) or 'none'}"
        return ConfigError(f"{source}: unknown key '{where}'; {hint}")
    if first["type"] == "missing":
        return ConfigError(f"{source}: '{where}' is required; add it")
    message = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(f"{source}: '{where}' is invalid: {message}")


MAX_CONFIG_BYTES = 5_000_000


def load_config(path: Path | None, env: dict[str, str] | None = None) -> SleuthConfig:
    """Read sleuth.yml (or nothing: the defaults) and validate it.

    Relative file paths inside the file are resolved against the file's folder.
    """
    env = dict(os.environ) if env is None else env
    if path is None:
        return apply_environment(SleuthConfig(), env)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}; pass an existing file to --config") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {len(data) / 1e6:.1f} MB; a sleuth.yml is at most {MAX_CONFIG_BYTES // 1_000_000} MB")
    try:
        raw = load_yaml(decode_text(data, str(path)), str(path)) or {}
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of sections (metrics:, logs:, changes:, services:)")
    raw = interpolate(raw, env)
    try:
        config = SleuthConfig.model_validate(raw)
    except ValidationError as exc:
        raise explain(exc, str(path)) from exc
    return apply_environment(resolve_paths(config, Path(path).parent), env)


def apply_environment(config: SleuthConfig, env: dict[str, str]) -> SleuthConfig:
    """SLEUTH_LLM_BASE_URL, SLEUTH_LLM_MODEL and OPENAI_API_KEY override the model section."""
    if env.get("SLEUTH_LLM_BASE_URL"):
        config.model.base_url = env["SLEUTH_LLM_BASE_URL"]
    if env.get("SLEUTH_LLM_MODEL"):
        config.model.model = env["SLEUTH_LLM_MODEL"]
    if env.get("OPENAI_API_KEY") and not config.model.api_key:
        config.model.api_key = env["OPENAI_API_KEY"]
    return config


def resolve_paths(config: SleuthConfig, base: Path) -> SleuthConfig:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    config.metrics.openmetrics = [fix(p) for p in config.metrics.openmetrics]
    config.logs.files = [fix(p) for p in config.logs.files]
    config.changes.files = [fix(p) for p in config.changes.files]
    if config.changes.webhook:
        config.changes.webhook.store = fix(config.changes.webhook.store)
    if config.memory:
        config.memory.path = fix(config.memory.path)
    config.storage.sqlite = fix(config.storage.sqlite)
    return config
