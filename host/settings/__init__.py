"""Test settings: requested (``TestSettings``), effective (as LoadGen resolves them), named
presets and LoadGen conf files, one module each; the names other packages use, here."""

from edgeperf.settings.conf import ConfEntry, ConfError, ConfWarning, apply_conf, parse_conf
from edgeperf.settings.effective import (
    DEFAULT_EXPECTED_LATENCY_NS,
    effective_settings,
    offline_sample_count,
)
from edgeperf.settings.presets import (
    MLPERF_SEEDS,
    PRESETS,
    SERVER_DEFAULT_TARGET_LATENCY_NS,
    SERVER_DEFAULT_TARGET_QPS,
    preset,
)
from edgeperf.settings.requested import MODES, SCENARIOS, SettingsError, TestSettings

__all__ = [
    "DEFAULT_EXPECTED_LATENCY_NS", "MLPERF_SEEDS", "MODES", "PRESETS", "SCENARIOS",
    "SERVER_DEFAULT_TARGET_LATENCY_NS", "SERVER_DEFAULT_TARGET_QPS", "ConfEntry", "ConfError",
    "ConfWarning", "SettingsError", "TestSettings", "apply_conf", "effective_settings",
    "offline_sample_count", "parse_conf", "preset",
]
