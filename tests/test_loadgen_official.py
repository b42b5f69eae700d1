"""--loadgen official: the real MLCommons LoadGen 6.0.17 (mlperf_loadgen) drives the device's
backend; its files come back unchanged and result.json takes its figures from them."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import numpy as np
import pytest

import edgeperf
from edgeperf.boards.profile import BoardProfile
from edgeperf.cli.main import main
from edgeperf.outputs.mlperf_logs import parse_detail
from edgeperf.run.execute import EXIT_ERROR, EXIT_USAGE, EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset
from edgeperf_agent import loadgen_official
from edgeperf_agent.agent import Agent
from edgeperf_agent.backends import SyntheticBackend
from edgeperf_agent.dispatch import Call
from edgeperf_agent.lgseq import SampleOrder, loaded_sample_set, offline_sample_count

import mlperf_loadgen  # noqa: E402,F401  (the dev extra installs it: a missing one fails)
LOCAL = BoardProfile(name="local", link_type="local")
LG_FILES = ["mlperf_log_accuracy.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt",
            "mlperf_log_trace.json"]


def _settings(scenario: str, **kw):
    s = preset("smoke", scenario)
    changes = dict(min_duration_ms=100, min_query_count=100, warmup_queries=2,
                   target_latency_ns=200_000)
    changes.update(kw)
    return dataclasses.replace(s, **changes)


def _detail(out):
    return parse_detail(out / "mlperf_log_detail.txt")


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_performance_run_writes_loadgens_files(tmp_path, scenario):
    out = tmp_path / scenario
    extra = {"target_qps": 20000.0} if scenario == "Offline" else {}
    r = execute(RunSpec(model="synthetic:busy:100", settings=_settings(scenario, **extra),
                        board=LOCAL, out_dir=out, loadgen="official"))
    assert sorted(p.name for p in out.iterdir()) == sorted([*LG_FILES, "result.json"])
    events = _detail(out)
    assert events[0]["key"] == "loadgen_version" and events[0]["value"].startswith("6.0.17 @")
    detail = {e["key"]: e["value"] for e in events}
    assert detail["effective_scenario"] == scenario
    assert detail["qsl_reported_total_count"] == detail["qsl_reported_performance_count"] == 256
    rec = json.loads((out / "result.json").read_text())
    assert rec["driver"] == "loadgen-official" and rec["loadgen_version"] == "6.0.17"
    assert "not run" in rec["scoring"]["edgeperf"] and rec["summary"] is None
    assert rec["result"] == detail["result_validity"] == "VALID", r.invalid_reasons
    assert r.exit_code == EXIT_VALID and r.summary is None
    assert rec["loadgen"]["result_query_count"] == detail["result_query_count"]
    if scenario == "Offline":  # 1.1 x 0.1 s x 20000/s, as LoadGen sizes it
        assert detail["effective_samples_per_query"] == 2200
        assert rec["loadgen"]["metric"]["value"] == detail["result_samples_per_second"]
    else:
        assert rec["loadgen"]["metric"]["value"] == detail["early_stopping_latency_ss"]
        assert detail["result_min_latency_ns"] >= 100_000  # busy:100 is inside each query


def test_edgeperf_driver_is_named(tmp_path):
    r = execute(RunSpec(model="synthetic:null", settings=_settings("SingleStream"),
                        board=LOCAL, out_dir=tmp_path))
    assert r.result["driver"] == "edgeperf"


def test_accuracy_top1_equals_edgeperf_driver(tmp_path):
    with edgeperf.connect("local") as dev:
        ours = dev.run(task="ic-digits", mode="accuracy", out_dir=tmp_path / "edgeperf")
        lg = dev.run(task="ic-digits", mode="accuracy", out_dir=tmp_path / "official",
                     loadgen="official")
    assert lg.result["driver"] == "loadgen-official" and ours.result["driver"] == "edgeperf"
    assert lg.accuracy.count == ours.accuracy.count > 100
    assert lg.accuracy.value == ours.accuracy.value  # same model, same samples: exactly
    events = _detail(tmp_path / "official")
    assert events[0]["key"] == "loadgen_version" and events[0]["value"].startswith("6.0.17")
    detail = {e["key"]: e["value"] for e in events}
    assert detail["effective_test_mode"] == "AccuracyOnly"
    assert detail["qsl_reported_total_count"] == lg.accuracy.count


class Recording(SyntheticBackend):
    """busy:US, recording the position of every sample it answers and each invoke's span.
    Its set-up (building an invoker) and its first ``slow`` calls (the warm-up, before
    StartTest) each sleep ``nap`` s: a slow neighbour of the timed region."""

    def __init__(self, us: int, slow: int = 0, nap: float = 0.0) -> None:
        super().__init__(f"busy:{us}")
        self.slow, self.nap = slow, nap
        self.calls: list[int] = []
        self.spans: list[int] = []

    def invoker(self):
        time.sleep(self.nap)
        work, calls, spans, pc = super().invoker(), self.calls, self.spans, time.perf_counter_ns

        def invoke(s):
            if len(calls) < self.slow:
                time.sleep(self.nap)
            t0 = pc()
            work(s)
            spans.append(pc() - t0)
            calls.append(int(s))
        return invoke


def _official(backend, n, settings, warmup=0):
    files = {}

    def emit(event, header, body):
        files.setdefault(header["name"], bytearray()).extend(body)
    spq = settings.get("samples_per_query", 1)
    qsl = loaded_sample_set(n, n, settings.get("qsl_rng_seed", 0), settings["scenario"],
                            spq)[:n]
    reply = loadgen_official.run_official(backend, n, {
        "loadgen": settings, "qsl_indices": qsl, "qsl_total": n, "warmup_queries": warmup,
        "enable_trace": False}, emit)
    details = {}
    for line in bytes(files["mlperf_log_detail.txt"]).decode().splitlines():
        ev = json.loads(line[len(":::MLLOG "):])
        details[ev["key"]] = ev["value"]
    return reply, details, qsl


SEEDS = dict(qsl_rng_seed=3, sample_index_rng_seed=12345, schedule_rng_seed=777)


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Offline"])
def test_issued_samples_are_lgseqs(scenario):
    """LoadGen issued exactly the queries and samples lgseq predicts for the same settings and
    seeds (positions in the loaded set, which is the pushed set)."""
    n, spq = 100, 8 if scenario == "MultiStream" else 1
    s = dict(scenario=scenario, min_duration_ms=0, min_query_count=150, max_query_count=150,
             target_latency_ns=1_000_000, samples_per_query=spq, **SEEDS)
    if scenario == "Offline":
        s.update(target_qps=1000.0, min_duration_ms=200, max_query_count=0)
    b = Recording(1)
    reply, detail, qsl = _official(b, n, s)
    assert reply["loaded_set_matches"] and detail["loaded_qsl_set"][:n] == qsl
    if scenario == "Offline":
        count = offline_sample_count(200, 1000.0, 150)
        assert detail["effective_samples_per_query"] == len(b.calls) == count == 220
        want = SampleOrder(scenario, n, count, 1, SEEDS["sample_index_rng_seed"]).next(1)
    else:
        assert detail["result_query_count"] == 150
        want = SampleOrder(scenario, n, spq, 150, SEEDS["sample_index_rng_seed"]).next(150)
        want = np.remainder(want, n)
    assert b.calls == want.tolist()


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_timed_region_holds_only_the_query(scenario):
    """A slow neighbour (an invoker that takes 0.3 s to build, two warm-up calls of 0.3 s
    each) stays out of every LoadGen latency, and each query's work (200 us a sample) is in
    it."""
    nap, us = 0.3, 200
    spq = 8 if scenario == "MultiStream" else 1
    s = dict(scenario=scenario, min_duration_ms=0, min_query_count=60, max_query_count=60,
             target_latency_ns=2_000_000, samples_per_query=spq, target_qps=500.0,
             target_latency_percentile=0.9, **SEEDS)
    if scenario == "Offline":
        s.update(min_query_count=200, max_query_count=0)
    b = Recording(us, slow=2, nap=nap)
    t0 = time.perf_counter_ns()
    reply, d, _ = _official(b, 64, s, warmup=2)
    assert reply["start_ns"] - t0 >= 2 * nap * 1e9  # the set-up and warm-up ran before StartTest
    assert d["result_max_latency_ns"] < nap * 1e9  # ... and not inside any query
    inside = b.spans[2 * spq:]  # the calls LoadGen's queries made
    if scenario == "Offline":  # per-sample latencies: the last is the query's
        assert len(inside) == 200 and d["result_max_latency_ns"] >= sum(inside)
        return
    assert len(inside) == 60 * spq and d["result_min_latency_ns"] >= us * 1000 * spq
    # all of the work is inside LoadGen's intervals (Server: plus any queueing)
    assert d["result_mean_latency_ns"] * 60 >= sum(inside) - 60


def test_missing_module_names_the_install(tmp_path, capsys):
    """A device without mlperf_loadgen (hidden from the agent's Python): exit 1, the fix."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['mlperf_loadgen'] = None\n")
    py = tmp_path / "python"
    py.write_text(f"#!/bin/sh\nPYTHONPATH={hide} exec {sys.executable} \"$@\"\n")
    py.chmod(0o755)
    board = tmp_path / "hidden.toml"
    board.write_text(f'[board]\nname = "hidden"\n[link]\ntype = "local"\npython = "{py}"\n')
    code = main(["run", "--board", str(board), "--model", "synthetic:null", "--scenario",
                 "SingleStream", "--loadgen", "official", "--out", str(tmp_path / "o"),
                 "--quiet"])
    assert code == EXIT_ERROR
    assert "pip install mlcommons-loadgen" in capsys.readouterr().err


def test_agent_reply_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlperf_loadgen", None)
    agent = Agent()
    agent.backend = SyntheticBackend("null")
    with pytest.raises(loadgen_official.LoadGenError, match="pip install mlcommons-loadgen"):
        agent.run_official(Call(1, "run_official", {"loadgen": {"scenario": "SingleStream"}}))
    assert loadgen_official.available() is False


def test_mcu_board_is_a_usage_error(capsys):
    code = main(["run", "--board", "emulated-tiny", "--task", "ic-digits", "--loadgen",
                 "official", "--quiet"])
    assert code == EXIT_USAGE
    assert "MLPerf Tiny" in capsys.readouterr().err
