"""What TFLite's benchmark_model exposes, through edgeperf: the runtime chosen, XNNPACK off,
an external delegate loaded with its options (a real shared library speaking the external
delegate ABI, built here: tests/delegate/recording_delegate.c), the warm-up count, and the
memory window the costs are read in."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeperf.boards.profile import BoardProfile
from edgeperf.cli.runtime_args import _options, runtime_options
from edgeperf.errors import RunError
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset
from edgeperf_agent import memory

LOCAL = BoardProfile(name="local", link_type="local")
SOURCE = Path(__file__).parent / "delegate" / "recording_delegate.c"


@pytest.fixture(scope="module")
def delegate_lib(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("delegate") / "librecording_delegate.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(SOURCE)], check=True)
    return lib


def settings(**kw):
    return dataclasses.replace(preset("smoke", "SingleStream"), **{
        "min_query_count": 100, "min_duration_ms": 0, "warmup_queries": 3, **kw})


def run(tmp_path, board=LOCAL, **load_options):
    o = execute(RunSpec(model="builtin:mlp", settings=settings(), board=board,
                        out_dir=tmp_path, load_options=load_options))
    return o, json.loads((tmp_path / "result.json").read_text())


@pytest.mark.parametrize("runtime", ["ai_edge_litert", "tflite_runtime"])
def test_external_delegate_gets_its_options(tmp_path, monkeypatch, delegate_lib, runtime,
                                            tflite_python) -> None:
    log = tmp_path / "delegate.log"
    monkeypatch.setenv("EDGEPERF_DELEGATE_LOG", str(log))  # the local agent inherits it
    board = LOCAL if runtime == "ai_edge_litert" else BoardProfile(
        name="pi-like", link_type="local", python=tflite_python)
    o, res = run(tmp_path / "run", board, runtime=runtime,
                 delegate={"path": str(delegate_lib), "options": {"device": "usb:0",
                                                                  "cache": "off"}})
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    d = res["model"]["details"]
    assert d["runtime"] == runtime
    assert d["delegate"] == {"path": str(delegate_lib),
                             "options": {"device": "usb:0", "cache": "off"}}
    lines = log.read_text().splitlines()
    assert sorted(lines[:2]) == ["cache=off", "device=usb:0"] and lines[2] == "created"
    assert "prepare" in lines  # the runtime handed it the graph


def test_a_delegate_that_fails_or_is_missing_is_named_before_the_run(tmp_path, delegate_lib):
    with pytest.raises(RunError, match=r"the delegate library .*librecording_delegate.so does "
                                       r"not load .*no Edge TPU found"):
        run(tmp_path / "a", delegate={"path": str(delegate_lib),
                                      "options": {"fail": "no Edge TPU found"}})
    assert not list((tmp_path / "a").glob("querylog*"))  # nothing timed
    with pytest.raises(RunError, match=r"/nonexistent/libedgetpu.so.1 does not load.*"
                                       r"cannot open shared object file"):
        run(tmp_path / "b", delegate={"path": "/nonexistent/libedgetpu.so.1"})


def test_no_xnnpack_and_warmup_are_recorded(tmp_path) -> None:
    o = execute(RunSpec(model="builtin:mlp", settings=settings(warmup_queries=7), board=LOCAL,
                        out_dir=tmp_path, load_options={"xnnpack": False}))
    assert o.exit_code == EXIT_VALID
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["model"]["details"]["xnnpack"] is False
    costs = res["model_costs"]
    assert costs["warmup"]["queries"] == 7
    assert costs["warmup"]["first_ns"] <= costs["warmup"]["max_ns"]
    assert "no XNNPACK" in (tmp_path / "mlperf_log_summary.txt").read_text()


def test_a_runtime_the_device_lacks_is_named(tmp_path, tflite_python) -> None:
    board = BoardProfile(name="pi-like", link_type="local", python=tflite_python)
    with pytest.raises(RunError, match="ai_edge_litert: No module named 'ai_edge_litert'"):
        run(tmp_path, board, runtime="ai_edge_litert")


def test_flag_parsing() -> None:
    assert _options("/opt/a:b/libedgetpu.so.1:device=usb:0,x=1", "--delegate") == (
        "/opt/a:b/libedgetpu.so.1", {"device": "usb:0", "x": "1"})
    assert _options("xnnpack", "--ep") == ("xnnpack", {})
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _options("lib.so:a=1,oops", "--delegate")
    ns = argparse.Namespace(runtime="tflite-runtime", xnnpack=False, delegate=None,
                            ep=["xnnpack:intra_op_num_threads=2", "cpu"], graph_opt="basic",
                            state=["stateN=state"])
    assert runtime_options(ns) == {
        "runtime": "tflite_runtime", "xnnpack": False,
        "providers": [["xnnpack", {"intra_op_num_threads": "2"}], ["cpu", {}]],
        "graph_optimization": "basic", "state": {"stateN": "state"}}


def test_memory_window_sees_what_was_allocated_in_it() -> None:
    w = memory.Window()
    block = np.ones(64 << 20, np.uint8)  # 64 MiB, touched
    del block
    got = w.close()
    assert got["scope"] == "window"
    assert got["peak_kib"] - got["start_kib"] >= 60 << 10
    w2 = memory.Window()  # a new window starts from the resident set now
    assert w2.close()["peak_kib"] - w2.start_kib < 32 << 10
