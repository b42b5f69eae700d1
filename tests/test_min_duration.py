"""LoadGen's min-duration rule on the device: the last query is issued at or after it."""

from __future__ import annotations

import dataclasses

import pytest

from edgeperf.boards.profile import BoardProfile
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset

LOCAL = BoardProfile(name="local", link_type="local")


@pytest.mark.parametrize("scenario,model", [("SingleStream", "synthetic:null"),
                                            ("SingleStream", "synthetic:busy:3"),
                                            ("MultiStream", "synthetic:null")])
def test_fast_queries_meet_the_min_duration_by_their_issue_time(tmp_path, scenario, model):
    """A query that finishes past the min duration but was issued before it does not meet
    it (LoadGen scores the last *issue* time): the agent issues one more query."""
    for i in range(2):
        # an expected latency of 100 ns: LoadGen pre-generates 3,000,000 queries for 150 ms
        s = dataclasses.replace(preset("smoke", scenario), min_duration_ms=150,
                                min_query_count=700 if scenario == "MultiStream" else 100,
                                max_duration_ms=0, warmup_queries=2, target_latency_ns=100)
        o = execute(RunSpec(model=model, settings=s, board=LOCAL, out_dir=tmp_path / str(i)))
        assert o.exit_code == EXIT_VALID, o.invalid_reasons
        q = read_querylog(tmp_path / str(i) / "querylog.npz")
        last_issue = int(q["issue_ns"][-1] - q["start_ns"])
        assert last_issue >= 150_000_000
        assert int(q["issue_ns"][-2] - q["start_ns"]) < 150_000_000  # and not one more


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_a_system_faster_than_expected_runs_out_of_generated_queries(tmp_path, scenario):
    """LoadGen pre-generates twice the min duration's queries at the expected latency and
    issues no others: at the default 1 ms and 2 s, 4001 queries, which a null model issues in
    far less than 2 s, so the run misses the min duration and is INVALID with LoadGen's
    recommendation (checked against mlcommons-loadgen 6.0.17: the same 4001, the same
    verdict), not run on past the queries LoadGen would have had."""
    s = dataclasses.replace(preset("smoke", scenario), min_duration_ms=2000, max_duration_ms=0,
                            min_query_count=100, warmup_queries=2, target_latency_ns=1_000_000)
    o = execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=tmp_path))
    q = read_querylog(tmp_path / "querylog.npz")
    assert len(q["issue_ns"]) == 4001
    assert o.result["run"]["stop_reason"].startswith("all 4001 generated queries issued")
    assert o.summary is not None and not o.summary.valid and not o.summary.min_duration_met
    text = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert "Decrease the expected latency so the loadgen pre-generates more queries." in text
