"""host.scoring: the fewest queries with which early stopping can pass, asked of LoadGen itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from lgrun import detail_values, run_loadgen

from edgeperf.scoring.loadgen import early_stopping_min_queries
from edgeperf.settings import preset

P999_FROM_CONF = 99.9 * 0.01  # what "target_latency_percentile = 99.9" gives, in LoadGen too

# (scenario, percentile) -> fewest queries; 64/662 and 459 are LoadGen's own summary numbers
MIN_QUERIES = {
    ("SingleStream", 0.9): 64, ("SingleStream", 0.99): 662, ("SingleStream", 0.999): 6636,
    ("MultiStream", 0.9): 64, ("MultiStream", 0.99): 662, ("MultiStream", 0.999): 6636,
    ("Server", 0.9): 44, ("Server", 0.99): 459, ("Server", 0.999): 4603,
}


@pytest.mark.parametrize("scenario, p", sorted(MIN_QUERIES))
def test_early_stopping_min_queries_values(scenario: str, p: float) -> None:
    assert early_stopping_min_queries(scenario, p) == MIN_QUERIES[scenario, p]
    assert early_stopping_min_queries(scenario, P999_FROM_CONF) == MIN_QUERIES[scenario, 0.999]


def test_offline_has_no_early_stopping_minimum() -> None:
    assert early_stopping_min_queries("Offline", 0.99) == 1
    with pytest.raises(ValueError, match="percentile"):
        early_stopping_min_queries("Server", 99.0)


def _loadgen_case(scenario: str, p: float, n: int) -> dict:
    pct = {"SingleStream": "single_stream_target_latency_percentile",
           "MultiStream": "multi_stream_target_latency_percentile",
           "Server": "server_target_latency_percentile"}[scenario]
    settings = {"min_duration_ms": 0, "min_query_count": n, "max_query_count": n, pct: p,
                "single_stream_expected_latency_ns": 1000,
                "multi_stream_expected_latency_ns": 1000,
                # Server: no query can be over a 10 s bound; 100k QPS keeps the run short
                "server_target_qps": 100_000.0, "server_target_latency_ns": 10**10}
    return dict(scenario=scenario, settings=settings)


@pytest.fixture(scope="module")
def loadgen_boundaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cases = {f"{scen}-{p}-{n}": _loadgen_case(scen, p, n)
             for (scen, p), need in MIN_QUERIES.items() for n in (need - 1, need)}
    return run_loadgen(cases, tmp_path_factory.mktemp("es-min"))


@pytest.mark.parametrize("scenario, p", sorted(MIN_QUERIES))
def test_min_queries_is_where_loadgens_early_stopping_starts_to_pass(
        scenario: str, p: float, loadgen_boundaries: dict[str, Path]) -> None:
    # A run of N queries, none over the bound: LoadGen's early stopping fails at N - 1 and
    # passes at N.
    need = early_stopping_min_queries(scenario, p)
    below = detail_values(loadgen_boundaries[f"{scenario}-{p}-{need - 1}"])
    at = detail_values(loadgen_boundaries[f"{scenario}-{p}-{need}"])
    assert (below["result_query_count"], at["result_query_count"]) == (need - 1, need)
    assert (below["early_stopping_met"], at["early_stopping_met"]) == (False, True)


@pytest.mark.parametrize("name", ["quick", "mobile"])
@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server"])
def test_short_presets_follow_the_percentile_in_force(name: str, scenario: str) -> None:
    base = {"quick": 128, "mobile": 1024}[name]
    extra = {"target_qps": 50.0} if scenario == "Server" else {}
    for p in (0.9, 0.99, P999_FROM_CONF):
        s = preset(name, scenario, target_latency_percentile=p, **extra)
        assert s.min_query_count == max(base, early_stopping_min_queries(scenario, p))
    default = preset(name, scenario)
    assert default.min_query_count == max(
        base, early_stopping_min_queries(scenario, default.target_latency_percentile))
    assert preset(name, scenario, target_latency_percentile=P999_FROM_CONF).min_query_count == (
        MIN_QUERIES[scenario, 0.999])
    # an explicit minimum is the caller's, as any override
    assert preset(name, scenario, min_query_count=10, **extra).min_query_count == 10
    # smoke is meant to be short, and mlperf is mlperf.conf: neither follows
    assert preset("smoke", scenario, target_latency_percentile=P999_FROM_CONF
                  ).min_query_count == 100
    assert preset("mlperf", scenario, target_latency_percentile=P999_FROM_CONF
                  ).min_query_count == preset("mlperf", scenario).min_query_count


def test_a_conf_percentile_raises_the_short_presets_minimum() -> None:
    # what the CLI's --user-conf does to a preset: the conf's p99.9 is the percentile in force
    conf = "*.MultiStream.target_latency_percentile = 99.9\n"
    s = preset("quick", "MultiStream", confs=[conf])
    assert (s.target_latency_percentile, s.min_query_count) == (P999_FROM_CONF, 6636)
    # a conf's own min_query_count is kept, as an override's
    s = preset("quick", "MultiStream", confs=[conf + "*.*.min_query_count = 700\n"])
    assert s.min_query_count == 700
    assert preset("quick", "MultiStream", confs=[conf], min_query_count=5).min_query_count == 5


def test_mean_wraps_as_loadgens_int64_sum_and_truncates_toward_zero() -> None:
    """A 600 s Offline run of 105.6 M samples summed past 2**63 (as LoadGen's int64 does) and
    printed a negative mean; C++ divides toward zero where Python's // floors."""
    import numpy as np

    from edgeperf.scoring.loadgen import mean_ns

    lat = np.full(16, (1 << 62) // 8 + 3, dtype=np.int64)  # sum = 2**63 + 48: wraps
    wrapped = int(np.sum(lat, dtype=np.int64))
    assert wrapped < 0
    assert mean_ns(lat) == -((-wrapped) // 16)  # toward zero
    assert mean_ns(np.array([1, 2], np.int64)) == 1
    assert mean_ns(np.array([-3, 0], np.int64)) == -1  # -1.5 -> -1, not -2
