"""End to end on the local board: each scenario, both backends, both runtimes, bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
from runs import small

from edgeperf.boards.profile import BoardProfile
from edgeperf.cli.main import main
from edgeperf.outputs.mlperf_logs import parse_detail, parse_summary
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.execute import EXIT_ERROR, EXIT_INVALID, EXIT_VALID, RunError, RunSpec, execute
from edgeperf.run.querylog import read_spill

LOCAL = BoardProfile(name="local", link_type="local")




def _files(out):
    return sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_each_scenario_synthetic(tmp_path, scenario):
    out = tmp_path / scenario
    o = execute(RunSpec(model="synthetic:busy:20", settings=small(scenario), board=LOCAL,
                        out_dir=out))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    assert _files(out) == ["mlperf_log_accuracy.json",
                           "mlperf_log_detail.txt", "mlperf_log_summary.txt",
                           "mlperf_log_trace.json", "querylog.npz", "result.json"]
    res = json.loads((out / "result.json").read_text())
    assert res["schema"] == "edgeperf.result/1" and res["result"] == "VALID"
    q = read_querylog(out / "querylog.npz")
    lat = q["done_ns"] - q["issue_ns"]
    assert (lat >= 20_000).all()  # busy:20 spins at least 20 us inside the timed region
    summ = parse_summary((out / "mlperf_log_summary.txt").read_text())
    assert summ["Scenario"] == scenario and summ["Result is"] == "VALID"
    rows = len(q["done_ns"])
    if scenario == "Offline":
        assert o.summary.sample_count == rows >= 300 and o.summary.query_count == 1
        assert (q["issue_ns"] == q["issue_ns"][0]).all()
    elif scenario == "MultiStream":
        assert rows >= 700 and len(q["sample_idx"]) == rows * 8
        assert (lat >= 8 * 20_000).all()  # 8 samples per query
    else:
        assert o.summary.query_count == rows >= 80
    json.loads((out / "mlperf_log_trace.json").read_text())  # valid JSON, unlike LoadGen's
    detail = {e["key"]: e["value"] for e in parse_detail(out / "mlperf_log_detail.txt")}
    assert detail["result_validity"] == "VALID"
    assert detail["effective_scenario"] == scenario


@pytest.mark.parametrize("scenario,model", [("SingleStream", "builtin:mlp"),
                                            ("MultiStream", "builtin:mlp-batch8"),
                                            ("MultiStream", "builtin:mlp"),
                                            ("Server", "builtin:mlp-int8"),
                                            ("Offline", "builtin:cnn")])
def test_each_scenario_tflite(tmp_path, scenario, model):
    o = execute(RunSpec(model=model, settings=small(scenario), board=LOCAL, out_dir=tmp_path))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    details = res["model"]["details"]
    assert details["runtime"] == "ai_edge_litert"
    assert res["run"]["checksum_ok"] is True
    if scenario == "MultiStream":
        assert res["run"]["batched"] is (model == "builtin:mlp-batch8")
    assert res["transfers"]["model_bytes_sent"] == res["model"]["size"] > 0


def test_tflite_runtime_with_numpy1(tmp_path, tflite_python):
    """The agent on a Raspberry-Pi-OS-like Python: tflite_runtime 2.14 and numpy<2."""
    board = BoardProfile(name="pi-like", link_type="local", python=tflite_python)
    for scen, model in (("SingleStream", "builtin:mlp-int8"), ("Offline", "builtin:cnn-int8")):
        o = execute(RunSpec(model=model, settings=small(scen), board=board,
                            out_dir=tmp_path / scen))
        assert o.exit_code == EXIT_VALID, o.invalid_reasons
        res = json.loads((tmp_path / scen / "result.json").read_text())
        assert res["device"]["runtimes"]["tflite_runtime"] == "2.14.0"
        assert res["device"]["runtimes"]["ai_edge_litert"] is None
        assert res["device"]["numpy"].startswith("1.")
        assert res["model"]["details"]["runtime"] == "tflite_runtime"


def test_second_run_sends_nothing(tmp_path):
    s = small("SingleStream")
    first = execute(RunSpec(model="builtin:mlp", settings=s, board=LOCAL, out_dir=tmp_path / "a"))
    again = execute(RunSpec(model="builtin:mlp", settings=s, board=LOCAL, out_dir=tmp_path / "b"))
    t1, t2 = first.result["transfers"], again.result["transfers"]
    assert t1["model_bytes_sent"] > 0 and t1["samples_bytes_sent"] == 64 + 256 * 64 * 4
    assert t2 == {"model_bytes_sent": 0, "samples_bytes_sent": 0}


def test_same_seed_same_sample_order(tmp_path):
    s = small("SingleStream", max_query_count=80)
    a = execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=tmp_path / "a"))
    b = execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=tmp_path / "b"))
    c = execute(RunSpec(model="synthetic:null", settings=dataclasses.replace(
        s, sample_index_rng_seed=7), board=LOCAL, out_dir=tmp_path / "c"))
    ia, ib, ic = (read_querylog(x.out_dir / "querylog.npz")["sample_idx"] for x in (a, b, c))
    assert len(ia) == 80 and (ia == ib).all() and not (ia == ic).all()


def test_invalid_run_exit_code(tmp_path):
    # 50 queries cannot satisfy SingleStream early stopping (needs 64)
    s = small("SingleStream", min_query_count=50, max_query_count=50)
    o = execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=tmp_path))
    assert o.exit_code == EXIT_INVALID
    text = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert "Result is : INVALID" in text
    assert " * Only processed 50 queries." in text
    assert " * Need to process at least 64 queries for early stopping." in text


def test_agent_killed_mid_run_keeps_measurements(tmp_path):
    pid = {}
    seen = []

    def report(event, data):
        if event == "hello":
            pid["agent"] = data["pid"]
        if event == "progress":
            seen.append(data["queries"])
            if len(seen) == 2:
                os.kill(pid["agent"], signal.SIGKILL)

    s = small("SingleStream", min_duration_ms=30_000, max_duration_ms=0, min_query_count=100)
    o = execute(RunSpec(model="synthetic:busy:200", settings=s, board=LOCAL, out_dir=tmp_path),
                report)
    assert o.exit_code == EXIT_ERROR
    assert "agent" in o.error and ("exited" in o.error or "died" in o.error)
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["result"] == "INVALID" and res["valid"] is False
    assert any("died" in r for r in res["invalid_reasons"])
    q = read_querylog(tmp_path / "querylog.npz")
    assert len(q["done_ns"]) >= seen[0] > 0  # everything received before the kill is kept
    assert "Result is : INVALID" in (tmp_path / "mlperf_log_summary.txt").read_text()


def test_spill_file_rebuilds_querylog(tmp_path):
    from edgeperf.run.querylog import QueryLogCollector

    col = QueryLogCollector(tmp_path / "q.spill")
    issue = np.arange(10, dtype="<i8")
    body = issue.tobytes() + (issue + 5).tobytes() + np.arange(10, dtype="<u4").tobytes()
    col.add(0, 10, 1, body)
    col.close()
    with open(tmp_path / "q.spill", "ab") as f:
        f.write(b"EPQL" + b"\x00" * 7)  # a torn write at the end
    back = read_spill(tmp_path / "q.spill")
    assert back.rows == 10 and (back.done_ns - back.issue_ns == 5).all()


def test_sleep_model_run_is_valid_and_each_query_sleeps(tmp_path):
    """synthetic:sleep:US sleeps (the core stays free) inside the timed region of a query."""
    s = small("SingleStream", min_query_count=100, max_query_count=100)
    o = execute(RunSpec(model="synthetic:sleep:2000", settings=s, board=LOCAL,
                        out_dir=tmp_path))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    assert o.summary.query_count == 100
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["result"] == "VALID" and res["model"]["details"]["sleep_ns"] == 2_000_000
    q = read_querylog(tmp_path / "querylog.npz")
    lat = q["done_ns"] - q["issue_ns"]
    assert len(lat) == 100 and (lat >= 2_000_000).all()


@pytest.mark.parametrize("model,needle", [
    ("missing.tflite", "does not exist"),
    ("notmodel.tflite", "not a TFLite flatbuffer"),
    ("truncated.tflite", "refused the model"),
    ("builtin:nope", "unknown built-in model"),
    ("synthetic:busy:x", "positive duration"),
    ("synthetic:sleep:0", "sleep needs a positive duration"),
])
def test_bad_models(tmp_path, model, needle):
    from edgeperf.models.builtin import builtin_model

    (tmp_path / "notmodel.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "truncated.tflite").write_bytes(builtin_model("mlp")[:900])
    path = str(tmp_path / model) if model.endswith(".tflite") else model
    with pytest.raises(RunError, match=needle):
        execute(RunSpec(model=path, settings=small("SingleStream"), board=LOCAL,
                        out_dir=tmp_path / "out"))
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no half-written run left behind


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "synthetic:null", "--scenario", "Sideways"])
    assert exc.value.code == 2
    assert "unknown scenario 'Sideways'" in capsys.readouterr().err
    code = main(["run", "--model", "synthetic:null", "--scenario", "SingleStream",
                 "--min-queries", "500", "--max-queries", "100"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--min-queries (500) > --max-queries (100): raise --max-queries or set it to 0" in err
    code = main(["run", "--model", "synthetic:null", "--scenario", "Offline",
                 "--min-duration", "20", "--max-duration", "10"])
    err = capsys.readouterr().err
    assert code == 2 and "--min-duration (20 s) > --max-duration (10 s)" in err


def test_cli_run_and_score(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--model", "synthetic:null", "--scenario", "SingleStream",
                 "--preset", "smoke", "--min-queries", "100", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Result is : VALID" in printed and "Early stopping 90.0th percentile" in printed
    lat = np.arange(1, 2001, dtype=np.int64) * 1000
    f = tmp_path / "lat.txt"
    f.write_text("\n".join(str(x) for x in lat) + "\n")
    assert main(["score", str(f), "--scenario", "SingleStream"]) == 0
    text = capsys.readouterr().out
    assert "90.0th percentile latency (ns) : 1801000" in text
    assert " * Would discard 167 highest latency queries." in text
    assert " * Processed at least 64 queries (2000)." in text


def test_cli_info_boards_models(capsys):
    assert main(["info", "--board", "local", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["protocol"] == 1 and info["cpu_count"] >= 1
    assert info["runtimes"]["ai_edge_litert"]
    assert info["clock"]["source"] == "time.perf_counter_ns"
    assert isinstance(info["telemetry"]["cpus"], list)
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "runtimes   ai_edge_litert" in text and "clock      time.perf_counter_ns" in text
    assert main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines if ln.startswith("local ")] == [["local", "local"]]
    assert main(["models"]) == 0
    models = capsys.readouterr().out.split()
    assert {"builtin:mlp", "builtin:mlp-int8", "synthetic:null"} <= set(models)
    assert main(["info", "--board", "nope"]) == 2  # a usage error, as every unknown name
    assert "no board profile named 'nope'; known boards: android-termux, emulated-tiny, " \
        "local, nucleo-l4r5zi, qemu-mps2-an385, qemu-mps2-an385-ad01, raspberry-pi-4" in \
        capsys.readouterr().err


def test_trace_is_capped_and_querylog_rescores(tmp_path, capsys):
    s = small("SingleStream", min_query_count=12_000, max_query_count=12_000)
    o = execute(RunSpec(model="synthetic:null", settings=s, board=LOCAL, out_dir=tmp_path))
    assert o.exit_code == EXIT_VALID
    trace = json.loads((tmp_path / "mlperf_log_trace.json").read_text())
    assert len(trace["traceEvents"]) == 10_000
    assert trace["otherData"]["rows_in_run"] == 12_000 and trace["otherData"]["truncated"]
    with read_querylog(tmp_path / "querylog.npz") as z:
        assert len(z["done_ns"]) == 12_000
    # the raw QueryLog re-scores to the same early-stopping estimate
    assert main(["score", str(tmp_path / "querylog.npz"), "--scenario", "SingleStream"]) == 0
    line = f"Early stopping 90.0th percentile estimate: {o.summary.early_stopping.estimate_ns}"
    assert line in capsys.readouterr().out


def test_offline_cut_by_max_duration_is_invalid(tmp_path):
    # the expected QPS claims 1e6/s, the device manages ~1000/s: max duration cuts the query
    s = small("Offline", target_qps=1e6, min_duration_ms=300, max_duration_ms=300,
              min_query_count=1)
    o = execute(RunSpec(model="synthetic:busy:1000", settings=s, board=LOCAL, out_dir=tmp_path))
    assert o.exit_code == EXIT_INVALID
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["run"]["offline_sample_count"] == 330_000
    rows = res["run"]["rows_received"]
    assert 0 < rows < 330_000
    assert f"the Offline query is incomplete: {rows} of 330000 samples answered" in \
        res["invalid_reasons"]
    assert "Min queries satisfied : NO" in (tmp_path / "mlperf_log_summary.txt").read_text()
