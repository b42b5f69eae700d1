"""Named settings: LoadGen's mlperf.conf (``mlperf``) and edgeperf's shorter presets."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from edgeperf.scoring.loadgen import early_stopping_min_queries
from edgeperf.settings.conf import apply_conf_fields
from edgeperf.settings.requested import SCENARIOS, SettingsError, TestSettings
from edgeperf_agent import lgseq

# LoadGen 6.0.17's built-in mlperf.conf (loadgen/mlperf.conf, embedded in the wheel).
MLPERF_SEEDS = {
    "qsl_rng_seed": 2085463073848966840,
    "sample_index_rng_seed": 2747215439041700203,
    "schedule_rng_seed": 16159082839903944936,
}
# Server presets need an arrival rate and a bound; these apply unless the caller gives them.
SERVER_DEFAULT_TARGET_QPS = 50.0
SERVER_DEFAULT_TARGET_LATENCY_NS = 100_000_000

PRESETS = ("mlperf", "mobile", "quick", "smoke")
# (min_query_count, min_duration_ms, max_duration_ms) of edgeperf's own presets.
_SHORT_PRESETS = {"mobile": (1024, 60_000, 600_000), "quick": (128, 10_000, 60_000),
                  "smoke": (100, 0, 20_000)}


def preset(name: str, scenario: str, *, confs: list[str | os.PathLike[str]] | None = None,
           conf_model: str = "*", **overrides: Any) -> TestSettings:
    """Named settings for a scenario; then LoadGen conf files (``confs``, looked up for
    ``conf_model``, as apply_conf); then keyword overrides (e.g. target_qps=50) win.

    ``mlperf`` is LoadGen 6.0.17's mlperf.conf for a model without model-specific lines
    (over LoadGen's TestSettings defaults), field for field: 600 s minimum everywhere;
    min_query_count 662 for MultiStream and LoadGen's default 100 elsewhere (current
    mlperf.conf no longer sets 1024 for SingleStream or 270336 for Server: early stopping
    replaced them); expected latencies 10 ms (SingleStream) and 80 ms (MultiStream); Server
    bound 10 ms; placeholder target_qps 1.0 for Server and Offline (so Offline issues
    1.1 * 600 s * 1 = 660 samples, as LoadGen would), all meant to be overridden as user.conf
    would. ``mobile``/``quick``/``smoke`` shorten the run. Offline: min_query_count is the
    minimum sample count of the single query (LoadGen's meaning); in the short presets
    target_qps 0 lets the device estimate the rate in warm-up. Server presets other than
    mlperf default to target_qps 50 and a 100 ms bound. ``mobile`` and ``quick`` raise
    min_query_count to ``scoring.early_stopping_min_queries`` at the percentile in force
    (a conf's or an override's included) unless min_query_count itself is set by either.
    """
    if scenario not in SCENARIOS:
        raise SettingsError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    s = TestSettings(scenario=scenario, **MLPERF_SEEDS)
    if name == "mlperf":
        s.min_duration_ms = 600_000
        s.target_latency_ns = {"SingleStream": 10_000_000, "MultiStream": 80_000_000,
                               "Server": 10_000_000}.get(scenario)
        if scenario == "MultiStream":
            s.min_query_count = 662
            s.samples_per_query = lgseq.MULTISTREAM_SAMPLES_PER_QUERY
        if scenario in ("Server", "Offline"):
            s.target_qps = 1.0  # mlperf.conf's placeholders, "to be overridden by user.conf"
    elif name in _SHORT_PRESETS:
        s.min_query_count, s.min_duration_ms, s.max_duration_ms = _SHORT_PRESETS[name]
        if scenario == "MultiStream":
            s.samples_per_query = lgseq.MULTISTREAM_SAMPLES_PER_QUERY
        if scenario == "Server":
            s.target_qps = SERVER_DEFAULT_TARGET_QPS
            s.target_latency_ns = SERVER_DEFAULT_TARGET_LATENCY_NS
    else:
        raise SettingsError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if scenario != "Offline":
        s.target_latency_percentile = lgseq.default_percentile(scenario)
    s, from_conf = apply_conf_fields(s, confs or [], conf_model)
    try:
        s = dataclasses.replace(s, **overrides)
    except TypeError as e:
        raise SettingsError(f"preset {name!r}: {e}") from None
    if name in ("mobile", "quick") and "min_query_count" not in {*overrides, *from_conf}:
        # never a preset that cannot be VALID: as many queries as early stopping needs at
        # the percentile in force (an overridden one too: 662 at p99, 6636 at p99.9)
        pct = s.validate().target_latency_percentile
        if pct is not None:
            s.min_query_count = max(s.min_query_count,
                                    early_stopping_min_queries(scenario, pct))
    return s.validate()

