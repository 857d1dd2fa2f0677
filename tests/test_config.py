"""sleuth.yml: the documented example loads, interpolation works, and mistakes name their fix."""

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from tools.timeparse import parse_duration

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_example_is_valid():
    config = load_config(ROOT / "sleuth.example.yml", env={"PROMETHEUS_URL": "http://prom:9090"})
    assert config.metrics.prometheus.url == "http://prom:9090"
    assert config.services["checkout"].depends_on == ["payments", "postgres"]
    assert "or 0 *" in config.services["checkout"].signals["error_rate"]  # 0, not absent, before the first 5xx
    assert "code=~\"5..\"" in config.services["checkout"].signals["error_rate"]
    assert config.changes.webhook.store == ROOT / ".sleuth/changes.sqlite3"


@pytest.mark.parametrize(("text", "error"), [
    ("metrics:\n  prometheus: {url: x}\n  openmetrics: [a.om]\n", "either prometheus or openmetrics"),
    ("logs:\n  filez: [a.log]\n", "unknown key 'logs.filez'; did you mean 'files'?"),
    ("investigation:\n  window: forever\n", "'investigation.window' is invalid"),
    ("metrics:\n  prometheus: {timeout_s: 3}\n", "'metrics.prometheus.url' is required"),
    ("metrics: [1, 2\n", "not valid YAML at line"),
    ("- just\n- a list\n", "must be a mapping"),
    ("changes:\n  github:\n    repos: [{repo: 'not a repo', service: x}]\n", "changes.github.repos.0.repo"),
])
def test_mistakes_are_one_sentence_naming_the_field(tmp_path, text, error):
    path = tmp_path / "sleuth.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(path, env={})
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("1h30m") == 5400 and parse_duration(120) == 120
    for bad in ("", "1x", "h", "-5m", 0):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_model_settings_come_from_the_environment_over_the_file(tmp_path):
    from bot.config import load_config

    path = tmp_path / "sleuth.yml"
    path.write_text("model:\n  base_url: http://file.example/v1\n  model: from-file\n")
    env = {"SLEUTH_LLM_BASE_URL": "http://127.0.0.1:9/v1", "SLEUTH_LLM_MODEL": "from-env", "OPENAI_API_KEY": "k"}
    config = load_config(path, env)
    assert (config.model.base_url, config.model.model, config.model.api_key) == ("http://127.0.0.1:9/v1", "from-env", "k")
    assert load_config(path, {}).model.model == "from-file"
    assert load_config(None, {"SLEUTH_LLM_MODEL": "m"}).model.configured


def test_a_bad_model_or_storage_setting_is_one_sentence(tmp_path):
    import pytest

    from bot.config import ConfigError, load_config

    path = tmp_path / "sleuth.yml"
    path.write_text("storage:\n  postgres: mysql://x\n")
    with pytest.raises(ConfigError, match="storage.postgres.*postgresql://"):
        load_config(path, {})
    path.write_text("agent:\n  deadline: soon\n")
    with pytest.raises(ConfigError, match="agent.deadline"):
        load_config(path, {})


def test_postgres_state_without_its_extra_is_one_sentence(monkeypatch):
    """PostgreSQL support is an extra: configured without it, the bot says how to install it."""
    import sys

    import pytest

    from bot.agent import open_checkpointer
    from bot.config import ConfigError, StorageConfig
    from bot.incidents.database import Database, StoreError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed: importing it fails
    storage = StorageConfig(postgres="postgresql://127.0.0.1:5432/postgres")
    with pytest.raises(ConfigError, match=r"pip install 'incident-sleuth\[postgres\]'"):
        with open_checkpointer(storage):
            pass
    with pytest.raises(StoreError, match=r"pip install 'incident-sleuth\[postgres\]'"):
        Database(storage)
