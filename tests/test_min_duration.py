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
        s = dataclasses.replace(preset("smoke", scenario), min_duration_ms=150,
                                min_query_count=700 if scenario == "MultiStream" else 100,
                                max_duration_ms=0, warmup_queries=2)
        o = execute(RunSpec(model=model, settings=s, board=LOCAL, out_dir=tmp_path / str(i)))
        assert o.exit_code == EXIT_VALID, o.invalid_reasons
        q = read_querylog(tmp_path / str(i) / "querylog.npz")
        last_issue = int(q["issue_ns"][-1] - q["start_ns"])
        assert last_issue >= 150_000_000
        assert int(q["issue_ns"][-2] - q["start_ns"]) < 150_000_000  # and not one more
