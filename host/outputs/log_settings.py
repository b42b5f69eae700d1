"""The settings as LoadGen 6.0.17's logs list them: the detail log's requested_* and
effective_* keys, in its order, and the effective values the summary's "Test Parameters
Used" block prints.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import (
    DEFAULT_EXPECTED_LATENCY_NS,
    SettingsError,
    TestSettings,
    effective_settings,
)
from edgeperf_agent import lgseq


def resolve_effective(settings: TestSettings, summary: Summary | None,
                      effective: TestSettings | None,
                      total_sample_count: int | None) -> TestSettings:
    """The effective settings to log: ``effective`` as given, else resolved from the
    requested ``settings``; Offline's samples per query taken from the run when the device
    estimated the rate."""
    eff = effective or effective_settings(settings, total_sample_count=total_sample_count)
    if eff.samples_per_query is None:  # Offline with the rate estimated on the device
        spq = (summary.sample_count // max(summary.query_count, 1) if summary
               else settings.min_query_count)
        eff = dataclasses.replace(eff, samples_per_query=spq)
    return eff


def requested_log_items(r: TestSettings) -> list[tuple[str, Any]]:
    """The requested_* keys of LoadGen's detail log, in its order (6.0.17)."""
    scen = r.scenario
    items: list[tuple[str, Any]] = [("scenario", scen), ("test_mode", r.mode)]
    pct = r.target_latency_percentile or lgseq.default_percentile(scen)
    if scen == "SingleStream":
        # LoadGen's expected latencies are doubles (logged with %g: 1e+07)
        items += [("single_stream_expected_latency_ns",
                   float(r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen])),
                  ("single_stream_target_latency_percentile", pct)]
    elif scen == "MultiStream":
        items += [("multi_stream_expected_latency_ns",
                   float(r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen])),
                  ("multi_stream_target_latency_percentile", pct),
                  ("multi_stream_samples_per_query",
                   r.samples_per_query or lgseq.MULTISTREAM_SAMPLES_PER_QUERY)]
    elif scen == "Server":
        items += [("server_target_qps", float(r.target_qps)),
                  ("server_target_latency_ns", r.target_latency_ns or 0),
                  ("server_target_latency_percentile", pct),
                  ("server_coalesce_queries", False),
                  ("server_find_peak_qps_decimals_of_precision", 1),
                  ("server_find_peak_qps_boundary_step_size", 1.0),
                  ("server_max_async_queries", 0),
                  ("server_num_issue_query_threads", 0)]
    else:
        items += [("offline_expected_qps", float(r.target_qps))]
    items += [("min_duration_ms", r.min_duration_ms), ("max_duration_ms", r.max_duration_ms),
              ("min_query_count", r.min_query_count), ("max_query_count", r.max_query_count),
              ("qsl_rng_seed", r.qsl_rng_seed),
              ("sample_index_rng_seed", r.sample_index_rng_seed),
              ("schedule_rng_seed", r.schedule_rng_seed)]
    items += _audit_items(r)
    items += [("performance_sample_count_override", r.performance_sample_count),
              ("accuracy_sample_count_override", 0),
              ("sample_concatenate_permutation", False)]
    return [("requested_" + k, v) for k, v in items]


def _audit_items(s: TestSettings) -> list[tuple[str, Any]]:
    """The compliance audits' keys, as set; print_timestamps and performance_issue_unique,
    which edgeperf does not implement, with LoadGen's defaults."""
    return [("accuracy_log_rng_seed", s.accuracy_log_rng_seed),
            ("accuracy_log_probability", float(s.accuracy_log_probability)),
            ("accuracy_log_sampling_target", s.accuracy_log_sampling_target),
            ("print_timestamps", False), ("performance_issue_unique", False),
            ("performance_issue_same", bool(s.performance_issue_same)),
            ("performance_issue_same_index", s.performance_issue_same_index)]


def effective_log_items(eff: TestSettings, total_sample_count: int | None = None
                        ) -> list[tuple[str, Any]]:
    """The effective_* keys (without prefix) as LoadGen's TestSettingsInternal logs them.

    ``eff`` comes from effective_settings; for Offline its samples_per_query must be known.
    LoadGen's view differs from ours in two places: for SingleStream/MultiStream its
    target_qps is 1 / expected latency and its target_latency is 0.
    """
    scen = eff.scenario
    spq = eff.samples_per_query
    if spq is None:
        raise SettingsError("Offline samples_per_query is not known yet; call "
                            "effective_settings(..., expected_qps=<warm-up QPS>)")
    if scen in DEFAULT_EXPECTED_LATENCY_NS:
        target_qps, target_latency = 1e9 / (eff.target_latency_ns or 1), 0
    else:
        target_qps, target_latency = float(eff.target_qps), eff.target_latency_ns or 0
    perf_count = eff.performance_sample_count or (total_sample_count or 0)
    items: list[tuple[str, Any]] = [
        ("scenario", scen), ("test_mode", eff.mode), ("samples_per_query", spq),
        ("target_qps", target_qps), ("target_latency_ns", target_latency),
        ("target_latency_percentile", eff.target_latency_percentile),
        ("max_async_queries", 0 if scen == "Server" else 1),
        ("target_duration_ms", 0 if scen == "Offline" else eff.min_duration_ms),
        ("min_duration_ms", eff.min_duration_ms), ("max_duration_ms", eff.max_duration_ms),
        ("min_query_count", eff.min_query_count), ("max_query_count", eff.max_query_count),
        ("min_sample_count", eff.min_query_count * spq),
        ("qsl_rng_seed", eff.qsl_rng_seed), ("sample_index_rng_seed", eff.sample_index_rng_seed),
        ("schedule_rng_seed", eff.schedule_rng_seed),
    ]
    items += _audit_items(eff)
    items += [("performance_sample_count", perf_count),
              ("accuracy_sample_count", total_sample_count or perf_count),
              ("sample_concatenate_permutation", False)]
    return items
