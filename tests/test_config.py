"""sleuth.yml: the documented example loads, interpolation works, and mistakes name their fix."""

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_duration

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_example_is_valid():
    config = load_config(ROOT / "sleuth.example.yml", env={"PROMETHEUS_URL": "http://prom:9090"})
    assert config.metrics.prometheus.url == "http://prom:9090"
    assert config.services["checkout"].depends_on == ["payments", "checkout-db"]
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
