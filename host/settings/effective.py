"""Effective settings: what a run will really use, resolved as LoadGen's TestSettingsInternal.

The detail log records both the requested and the effective settings, as LoadGen does, so a
reader sees why a run issued the number of queries it did.
"""

from __future__ import annotations

import dataclasses

from edgeperf.settings.requested import TestSettings
from edgeperf_agent import lgseq

# LoadGen's own defaults where a scenario leaves a value unset (test_settings.h).
DEFAULT_EXPECTED_LATENCY_NS = {"SingleStream": 1_000_000, "MultiStream": 8_000_000}


def offline_sample_count(requested: TestSettings, qps: float) -> int:
    """Samples in the one Offline query, as LoadGen: max(min_query_count, 1.1 * duration * qps),
    by the one function the agent uses too (device_agent.lgseq)."""
    return lgseq.offline_sample_count(requested.min_duration_ms, qps, requested.min_query_count)


def effective_settings(requested: TestSettings, *, expected_qps: float | None = None,
                       total_sample_count: int | None = None) -> TestSettings:
    """What the run will really use, resolved as LoadGen's TestSettingsInternal does.

    Call it on *requested* settings only (Offline's min_query_count means samples there and
    1 here). For Offline without a target QPS, pass the ``expected_qps`` the device measured
    in warm-up; until then ``samples_per_query`` stays None. ``total_sample_count`` resolves
    performance_sample_count = 0 to the whole sample set.
    """
    r = requested.validate()
    eff = dataclasses.replace(r)
    scen = r.scenario
    asked = None if scen == "Offline" else r.target_latency_percentile  # Offline: the default
    eff.target_latency_percentile = asked or lgseq.default_percentile(scen)
    if scen in DEFAULT_EXPECTED_LATENCY_NS:
        eff.target_latency_ns = r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen]
        eff.target_qps = 0.0
    if scen == "SingleStream" or scen == "Server":
        eff.samples_per_query = 1
    elif scen == "MultiStream":
        eff.samples_per_query = r.samples_per_query or lgseq.MULTISTREAM_SAMPLES_PER_QUERY
    else:  # Offline: all samples in one query
        qps = r.target_qps or (expected_qps or 0.0)
        eff.target_qps = qps
        eff.target_latency_ns = 0
        if r.samples_per_query is not None:
            eff.samples_per_query = max(r.samples_per_query, r.min_query_count)
        else:
            eff.samples_per_query = offline_sample_count(r, qps) if qps > 0 else None
        eff.min_query_count = 1
    if r.performance_sample_count == 0 and total_sample_count:
        eff.performance_sample_count = total_sample_count
    return eff

