"""Onset detection: real departures are found at the right minute; normal behaviour is not flagged."""

import numpy as np

from tests.factory import AT, daily, step_up, timeline
from tools.anomaly import detect

WINDOW_START = AT - 3600
BASELINE = 3 * 3600


def test_level_shift_is_found_at_its_onset():
    ts = timeline()
    onset = AT - 25 * 60
    values = step_up(ts, daily(ts, 0.01, noise=0.1), onset, 0.05)
    found = detect(ts, values, WINDOW_START, AT, BASELINE, "up")
    assert found is not None
    assert abs(found.onset - onset) <= 120
    assert found.direction == "up" and found.persistence > 0.9 and found.score > 0.5


def test_strong_daily_pattern_without_incident_is_normal():
    ts = timeline()
    # 60% daily swing, the window sits on the steep morning ramp.
    values = daily(ts, 100, amplitude=0.6, noise=0.03, seed=3)
    for end in (AT, AT - 6 * 3600, AT - 12 * 3600):
        assert detect(ts, values, end - 3600, end, BASELINE, "both") is None


def test_spike_as_tall_as_the_baselines_own_spikes_is_normal():
    ts = timeline()
    values = daily(ts, 0.2, amplitude=0.1, noise=0.05, seed=4)
    # A cron job: 6-minute bursts to about 0.8 at every half hour, in the baseline and the window alike.
    for start in np.arange(ts[0], AT, 1800.0):
        values[(ts >= start) & (ts < start + 360)] += 0.6
    assert detect(ts, values, WINDOW_START, AT, BASELINE, "up") is None


def test_single_point_spike_is_not_an_onset():
    ts = timeline()
    values = daily(ts, 0.01, noise=0.1, seed=5)
    values[np.searchsorted(ts, AT - 20 * 60)] = 0.5
    assert detect(ts, values, WINDOW_START, AT, BASELINE, "up") is None


def test_direction_is_respected():
    ts = timeline()
    onset = AT - 20 * 60
    values = step_up(ts, daily(ts, 0.9, amplitude=0.02, noise=0.01, seed=6), onset, -0.2)
    assert detect(ts, values, WINDOW_START, AT, BASELINE, "up") is None
    found = detect(ts, values, WINDOW_START, AT, BASELINE, "down")
    assert found is not None and found.direction == "down" and abs(found.onset - onset) <= 120


def test_yesterdays_outage_at_the_same_hour_does_not_create_one_today():
    ts = timeline()
    values = daily(ts, 0.01, noise=0.1, seed=7)
    yesterday = (ts >= AT - 86400 - 30 * 60) & (ts <= AT - 86400)
    values[yesterday] += 0.2
    assert detect(ts, values, WINDOW_START, AT, BASELINE, "up") is None


def test_too_little_baseline_gives_no_verdict():
    ts = timeline(hours=1.1)
    values = step_up(ts, daily(ts, 0.01, noise=0.1), AT - 20 * 60, 0.05)
    assert detect(ts, values, WINDOW_START, AT, BASELINE, "up") is None
