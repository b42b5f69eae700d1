"""The onnx backend: real .onnx files from PyPI packages (Silero's VAD with its state and its
several inputs, RapidOCR's PP-OCR models with dynamic dimensions), small models written
here with onnx.helper for exact checks (state carried, batches, profiles), and the errors a
user meets before anything is timed."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeperf.boards.profile import BoardProfile
from edgeperf.errors import RunError
from edgeperf.models.packaged import packaged_models
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset
from edgeperf_agent.backend_onnx import OnnxBackend
from edgeperf_agent.backends import BackendError

LOCAL = BoardProfile(name="local", link_type="local")
VAD = packaged_models("silero_vad", ".onnx")
OCR = packaged_models("rapidocr_onnxruntime", ".onnx")


def settings(scenario: str = "SingleStream", **kw):
    return dataclasses.replace(preset("smoke", scenario), **{
        "min_query_count": 100, "min_duration_ms": 0, "warmup_queries": 4, **kw})


def save(tmp_path, graph, name="m.onnx", opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgeperf-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def accumulator(tmp_path, batch="N"):
    """y = x + s, s' = y: fed its own output, the model sums every input it has seen."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    s2 = helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [batch, 4])
    g = helper.make_graph([helper.make_node("Add", ["x", "s"], ["y"], name="add"),
                           helper.make_node("Identity", ["y"], ["s_out"], name="carry")],
                          "acc", [x, s], [y, s2])
    return save(tmp_path, g, "acc.onnx")


def scaler(tmp_path, dims=("N", 3)):
    """y = 2 * x, with a dynamic batch: answers each row on its own (batches are exact)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"], name="double")],
                          "scale", [x], [y], initializer=[two])
    return save(tmp_path, g, "scale.onnx")


# ---------------------------------------------------------------- the backend itself


def test_state_input_is_fed_the_previous_output(tmp_path) -> None:
    b = OnnxBackend(str(accumulator(tmp_path)), state={"s_out": "s"})
    d = b.describe()
    assert [i["name"] for i in d["inputs"]] == ["x"]  # the state takes no samples
    assert d["state"][0]["name"] == "s" and d["state"][0]["fed_by"] == "s_out"
    assert d["inputs"][0]["sample_shape"] == [4]
    xs = np.arange(20, dtype=np.float32).reshape(5, 4)
    b.bind([xs])
    run = b.invoker()
    for k in range(5):
        run(k)
    assert np.array_equal(b.output_buffers[0], xs.sum(axis=0, keepdims=True))
    with pytest.raises(BackendError, match="no output 'nope'"):
        OnnxBackend(str(accumulator(tmp_path)), state={"nope": "s"})


def test_without_state_both_inputs_take_samples(tmp_path) -> None:
    b = OnnxBackend(str(accumulator(tmp_path)))
    assert [i["name"] for i in b.describe()["inputs"]] == ["x", "s"]
    xs = np.ones((3, 4), np.float32)
    ss = np.full((3, 4), 5, np.float32)
    b.bind([xs, ss])
    b.invoker()(2)
    assert np.array_equal(b.output_buffers[0], np.full((1, 4), 6, np.float32))


def test_named_dims_follow_the_shape_the_user_sets() -> None:
    # silero_vad_half: input [batch, sequence], state [2, batch, 128]
    b = OnnxBackend(str(VAD["silero_vad/silero_vad_half"]), input_shapes={"input": [1, 512]},
                    state={"stateN": "state"})
    d = b.describe()
    assert d["inputs"][0]["shape"] == [1, 512] and d["inputs"][0]["sample_shape"] == [512]
    assert d["state"][0]["shape"] == [2, 1, 128]
    with pytest.raises(BackendError, match="fixed size 3 in dimension 1"):
        OnnxBackend(str(OCR["rapidocr_onnxruntime/ch_PP-OCRv4_rec_infer"]),
                    input_shapes={"x": [1, 4, 48, 320]})


def test_batched_model_answers_each_sample_in_its_row(tmp_path) -> None:
    b = OnnxBackend(str(scaler(tmp_path)), input_shapes={"x": [4, 3]})
    assert b.batch == 4 and b.describe()["inputs"][0]["sample_shape"] == [3]
    xs = np.arange(30, dtype=np.float32).reshape(10, 3)
    b.bind([xs])
    gather = b.gather_invoker()
    order = np.array([7, 2, 9, 0, 5], np.int64)
    gather(order, 1, 3)  # samples 2, 9, 0 in rows 0..2
    assert np.array_equal(b.output_buffers[0][:3], 2 * xs[[2, 9, 0]])
    assert np.array_equal(b.outputs_fn()(6)[0], 2 * xs[6:7])


def test_profile_counts_every_profiled_inference(tmp_path) -> None:
    b = OnnxBackend(str(accumulator(tmp_path)), state={"s_out": "s"})
    b.bind([np.ones((8, 4), np.float32)])
    table = b.profile_ops(list(range(8)) * 3)
    assert table["runs"] == 24 and table["node_count"] == 2
    by_node = {r[0]: r for r in table["rows"]}
    assert by_node["add"][1] == "Add" and by_node["add"][3] == 24  # warm-up runs left out
    assert by_node["carry"][3] == 24
    assert table["total_ns"] == sum(r[4] for r in table["rows"]) > 0


def test_unknown_operator_and_corrupt_file_are_named(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    g = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
                          "odd", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    odd = tmp_path / "odd.onnx"
    onnx.save(model, str(odd))
    with pytest.raises(BackendError, match="Frobnicate") as e:
        OnnxBackend(str(odd))
    assert "lacks that operator" in str(e.value)
    bad = tmp_path / "torn.onnx"
    bad.write_bytes(scaler(tmp_path).read_bytes()[:60])
    with pytest.raises(BackendError, match="not a valid ONNX file"):
        OnnxBackend(str(bad))
    with pytest.raises(BackendError, match="XnnpackExecutionProvider is not in this device"):
        OnnxBackend(str(scaler(tmp_path)), providers=[["xnnpack", {"intra_op_num_threads": 1}]])


# ---------------------------------------------------------------- runs, end to end


def test_silero_vad_streams_its_state_single_stream(tmp_path) -> None:
    o = execute(RunSpec(model=str(VAD["silero_vad/silero_vad_half"]), settings=settings(),
                        board=LOCAL, out_dir=tmp_path, sample_count=16,
                        load_options={"input_shapes": {"input": [1, 512]},
                                      "state": {"stateN": "state"}},
                        profile_ops=20))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    d = res["model"]["details"]
    assert d["backend"] == "onnx" and d["providers"] == ["CPUExecutionProvider"]
    assert res["samples"]["generated"] and len(d["inputs"]) == 1
    costs = res["model_costs"]
    assert costs["init_ns"] > 0 and costs["first_inference_ns"] > 0
    assert costs["warmup"]["queries"] == 4 and costs["warmup"]["max_ns"] >= \
        costs["warmup"]["mean_ns"] >= costs["warmup"]["min_ns"] > 0
    mem = costs["memory"]
    assert mem["after_init_kib"] > 0 and mem["peak_run_kib"] >= mem["run_start_kib"] > 0
    assert costs["backend"]["runtime"] == "onnxruntime"
    summary = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert "Model costs on the device" in summary and "First inference (ms)" in summary
    assert summary.index("Model costs") > summary.index("Test Parameters Used")
    prof = res["op_profile"]
    assert prof["available"] and prof["runs"] == 20 and prof["file"] == "op_profile.csv"
    rows = list(csv.DictReader((tmp_path / "op_profile.csv").open()))
    assert len(rows) == prof["nodes"] and {"LSTM", "Conv"} <= {r["op_type"] for r in rows}
    assert [r["op_type"] for r in rows if r["share_pct"] == "contains"] == ["If"] * sum(
        r["op_type"] == "If" for r in rows)


def test_several_inputs_and_offline(tmp_path) -> None:
    # silero_vad_16k_sequence: input [sequence_length, 576], h and c [1, 1, 128]
    o = execute(RunSpec(model=str(VAD["silero_vad/silero_vad_16k_sequence"]),
                        settings=settings("Offline", min_query_count=1), board=LOCAL,
                        out_dir=tmp_path, sample_count=8,
                        load_options={"input_shapes": {"input": [2, 576]}}))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    d = json.loads((tmp_path / "result.json").read_text())["model"]["details"]
    assert [(i["name"], i["sample_shape"]) for i in d["inputs"]] == [
        ("input", [2, 576]), ("h", [1, 128]), ("c", [1, 128])]


def test_dynamic_dimensions_must_be_set(tmp_path) -> None:
    model = str(OCR["rapidocr_onnxruntime/ch_PP-OCRv4_rec_infer"])
    with pytest.raises(RunError, match=r"dynamic dimensions \[1,3,\?,p2o.DynamicDimension.1\]"
                                       r".*--input-shape x:1,3,N,N"):
        execute(RunSpec(model=model, settings=settings(), board=LOCAL, out_dir=tmp_path,
                        sample_count=4))
    o = execute(RunSpec(model=model, settings=settings(min_query_count=100), board=LOCAL,
                        out_dir=tmp_path / "set", sample_count=4,
                        load_options={"input_shapes": {"x": [1, 3, 48, 160]}}))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons


def test_files_that_are_not_onnx_are_refused_on_the_host(tmp_path) -> None:
    tfl = tmp_path / "model.onnx"
    tfl.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    with pytest.raises(RunError, match="TFLite flatbuffer, not .onnx"):
        execute(RunSpec(model=str(tfl), settings=settings(), board=LOCAL, out_dir=tmp_path))
    z = tmp_path / "zipped.onnx"
    z.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(RunError, match="not an ONNX model \\(a zip archive\\)"):
        execute(RunSpec(model=str(z), settings=settings(), board=LOCAL, out_dir=tmp_path))


def test_execution_provider_named_short_with_options(tmp_path) -> None:
    b = OnnxBackend(str(scaler(tmp_path)), providers=[["cpu", {"arena_extend_strategy":
                                                              "kSameAsRequested"}]],
                    graph_optimization="basic", num_threads=1)
    d = b.describe()
    assert d["providers"] == ["CPUExecutionProvider"]
    assert d["requested_providers"] == ["CPUExecutionProvider"]
    assert d["graph_optimization"] == "basic" and d["num_threads"] == 1
    with pytest.raises(BackendError, match="graph optimisation level 'fastest'"):
        OnnxBackend(str(scaler(tmp_path)), graph_optimization="fastest")


def test_info_lists_the_backends(capsys) -> None:
    from edgeperf.cli.main import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend    tflite: ai_edge_litert" in out
    assert f"backend    onnx: onnxruntime {__import__('onnxruntime').__version__}" in out
    assert "backend    executorch: missing; install: pip install executorch" in out
