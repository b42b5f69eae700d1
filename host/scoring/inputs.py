"""The one place a run's timestamps become what LoadGen's scoring reads (a ScoreInput), and
the one scoring call of a run from its settings: a live run and ``edgeperf score`` share both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgeperf.scoring.loadgen import ScoreInput, Summary, score

if TYPE_CHECKING:
    from edgeperf.run.querylog import QueryLogData
    from edgeperf.settings import TestSettings


def score_input(scenario: str, q: QueryLogData) -> ScoreInput:
    """Turn the device's timestamps into what LoadGen's scoring reads."""
    if q.rows == 0:
        return ScoreInput(scenario, np.zeros(0, np.int64), np.zeros(0, np.int64))
    lat = q.done_ns - q.issue_ns
    start = q.start_ns
    if scenario == "Offline":
        return ScoreInput(scenario, lat, np.array([int(lat.max())], np.int64))
    if scenario == "MultiStream":
        return ScoreInput(scenario, np.repeat(lat, q.samples_per_row), lat,
                          final_issue_ns=int(q.issue_ns[-1] - start))
    if scenario == "Server":
        return ScoreInput(scenario, lat, lat, final_scheduled_ns=int(q.issue_ns[-1] - start),
                          final_done_ns=int(q.done_ns.max() - start))
    return ScoreInput(scenario, lat, lat, final_issue_ns=int(q.issue_ns[-1] - start))


def score_input_summary(scenario: str, reply: dict[str, Any]) -> ScoreInput:
    """The same from a summarised run: every latency, sorted, and the last issue and
    completion times (all that LoadGen's scoring reads; only per-query order is gone)."""
    lat = reply["latencies_sorted_ns"]
    ls = reply["latency_summary"]
    fin_issue, fin_done = int(ls["final_issue_ns"]), int(ls["final_done_ns"])
    if scenario == "Offline":
        return ScoreInput(scenario, lat, np.array([int(lat[-1])], np.int64))
    if scenario == "MultiStream":
        return ScoreInput(scenario, np.repeat(lat, int(reply["samples_per_row"])), lat,
                          final_issue_ns=fin_issue)
    if scenario == "Server":
        return ScoreInput(scenario, lat, lat, final_scheduled_ns=fin_issue,
                          final_done_ns=fin_done)
    return ScoreInput(scenario, lat, lat, final_issue_ns=fin_issue)


def score_with_settings(inp: ScoreInput, requested: TestSettings, eff: TestSettings,
                        extra_invalid_reasons: list[str] | None = None) -> Summary:
    """Score a run as LoadGen does for its requested and effective settings."""
    scen = requested.scenario
    return score(inp, min_duration_ns=requested.min_duration_ms * 1_000_000,
                 min_query_count=eff.min_query_count,
                 # LoadGen: an Offline run must answer every sample of its one query
                 min_sample_count=(eff.samples_per_query or requested.min_query_count)
                 if scen == "Offline" else 0,
                 target_latency_ns=(eff.target_latency_ns or 0) if scen == "Server" else 0,
                 target_percentile=eff.target_latency_percentile,
                 extra_invalid_reasons=extra_invalid_reasons)
