"""A run on edgeperf and one through the real LoadGen, same seeds and settings: the same
samples in the same order, and the same Server schedule.

The edgeperf side is a whole run on the local board (host -> agent -> QueryLog ->
querylog.npz), so this checks the sequences where they are used, not only
device_agent/lgseq.py (tests/test_lgseq.py does that, draw by draw).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from test_lgseq import OFFICIAL, loadgen, logged, samples

from edgeperf.boards.profile import BoardProfile
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.execute import RunSpec, execute
from edgeperf.settings import preset

LOCAL = BoardProfile(name="local", link_type="local")
QSL, SAMPLE, SCHEDULE = OFFICIAL
N = 256  # LoadGen's performance_sample_count here, and edgeperf's sample set

CASES = {
    "SingleStream": dict(min_query_count=400),
    "MultiStream": dict(min_query_count=120, samples_per_query=8),
    "Offline": dict(min_query_count=1500, target_qps=1000.0),
    "Server": dict(min_query_count=300, min_duration_ms=400, target_qps=3000.0,
                   target_latency_ns=50_000_000),
}


def loadgen_config(scenario: str, kw: dict) -> dict:
    cfg = dict(scenario=scenario, total=N, perf=N, qsl_rng_seed=QSL,
               sample_index_rng_seed=SAMPLE, schedule_rng_seed=SCHEDULE,
               min_query_count=kw["min_query_count"],
               min_duration_ms=kw.get("min_duration_ms", 0))
    if scenario == "MultiStream":
        cfg["multi_stream_samples_per_query"] = kw["samples_per_query"]
    if scenario == "Offline":
        cfg["offline_expected_qps"] = kw["target_qps"]
    if scenario == "Server":
        cfg["server_target_qps"] = kw["target_qps"]
        cfg["server_target_latency_ns"] = kw["target_latency_ns"]
    return cfg


@pytest.fixture(scope="module")
def loadgen_runs() -> dict:
    names = list(CASES)
    return dict(zip(names, loadgen([loadgen_config(n, CASES[n]) for n in names]), strict=True))


def edgeperf_run(tmp_path, scenario: str) -> tuple[np.ndarray, dict]:
    kw = dict(CASES[scenario], min_duration_ms=CASES[scenario].get("min_duration_ms", 0),
              max_duration_ms=0, warmup_queries=2)
    s = dataclasses.replace(preset("smoke", scenario), **kw)
    assert (s.qsl_rng_seed, s.sample_index_rng_seed, s.schedule_rng_seed) == OFFICIAL
    out = tmp_path / scenario
    execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=out,
                    sample_count=N))
    with read_querylog(out / "querylog.npz") as z:
        pos = z["sample_idx"].astype(np.int64)
        qsl = z["qsl_index"][pos % N]
    result = json.loads((out / "result.json").read_text())
    return qsl, result


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Offline"])
def test_the_same_samples_in_the_same_order_as_loadgen(tmp_path, loadgen_runs, scenario):
    lg = loadgen_runs[scenario]
    qsl, result = edgeperf_run(tmp_path, scenario)
    want = samples(lg)
    assert len(qsl) == len(want)
    assert qsl.tolist() == want
    # the sample set on the device is LoadGen's loaded set, in its order
    assert result["samples"]["qsl_first"] == lg["loaded"][0][:16]


def test_server_issues_loadgens_queries_on_loadgens_schedule(tmp_path, loadgen_runs):
    lg = loadgen_runs["Server"]
    qsl, result = edgeperf_run(tmp_path, "Server")
    assert qsl.tolist() == samples(lg)
    assert result["run"]["rows"] == logged(lg, "generated_query_count") == len(lg["issued"])
    assert result["run"]["generated_query_count"] == logged(lg, "generated_query_count")
    detail = (tmp_path / "Server" / "mlperf_log_detail.txt").read_text().splitlines()
    ours = [json.loads(line[9:]) for line in detail if '"result_scheduled_samples_per_sec"'
            in line]
    assert ours[0]["value"] == logged(lg, "result_scheduled_samples_per_sec")
