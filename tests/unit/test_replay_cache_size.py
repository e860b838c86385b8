"""The replay cache's size from the settings: twice the nonces live at the peak rate over the
timestamp window, a power of two, unless the operator sets `nonce_slots`."""

from __future__ import annotations

import pytest

from openkms.config import ConfigError, Settings, load_settings


def test_the_default_size_is_the_window_at_the_peak_rate() -> None:
    settings = Settings()
    assert settings.nonce_slots == 0 and settings.nonce_peak_rate == 2000
    # 2 x 2,000/s x 900 s = 3.6 million, rounded up: the 96 MiB table of before.
    assert settings.replay_cache_slots == 1 << 22


def test_a_shorter_window_or_a_lower_rate_makes_it_smaller() -> None:
    assert Settings(timestamp_window_seconds=300).replay_cache_slots == 1 << 21
    assert Settings(nonce_peak_rate=100).replay_cache_slots == 1 << 18  # 180,000 rounded up
    assert Settings(nonce_peak_rate=1, timestamp_window_seconds=60).replay_cache_slots == 1 << 16  # floor


def test_the_operator_size_wins() -> None:
    assert Settings(nonce_slots=5000, nonce_peak_rate=100_000).replay_cache_slots == 5000
    loaded = load_settings(None, environ={"OPENKMS_NONCE_SLOTS": "65536", "OPENKMS_NONCE_PEAK_RATE": "50"})
    assert loaded.replay_cache_slots == 65536


@pytest.mark.parametrize(
    ("name", "value"), [("OPENKMS_NONCE_SLOTS", "100"), ("OPENKMS_NONCE_PEAK_RATE", "0")]
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name.removeprefix("OPENKMS_").lower()):
        load_settings(None, environ={name: value})
