"""The host's .tflite reader against the runtime's own view of the same files."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.models.builtin import builtin_model, list_builtin
from edgeperf.models.tflite_reader import (
    BUILTIN_OPERATOR_NAMES,
    TfliteReadError,
    read_model,
    unsupported_ops_message,
)
from edgeperf.models.tflite_writer import ModelBuilder

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:  # the older runtime
    from tflite_runtime.interpreter import Interpreter, OpResolverType


def runtime_view(blob: bytes) -> tuple[list[dict], list[dict], set[str]]:
    it = Interpreter(model_content=blob,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return (it.get_input_details(), it.get_output_details(),
            {o["op_name"] for o in it._get_ops_details()})


def custom_model(code: str) -> bytes:
    mb = ModelBuilder()
    x = mb.add_tensor("x", (1, 4), "float32")
    y = mb.add_tensor("y", (1, 4), "float32")
    z = mb.add_tensor("z", (1, 4), "float32")
    mb.add_operator("RELU", [x], [y])
    mb.add_custom_operator(code, [y], [z])
    mb.set_inputs([x])
    mb.set_outputs([z])
    return mb.to_bytes()


def test_operator_names_follow_the_schema() -> None:
    """LiteRT's wheel ships the schema's generated enum: every code must agree."""
    from ai_edge_litert import schema_py_generated as schema
    theirs = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    shared = set(theirs) & set(BUILTIN_OPERATOR_NAMES)
    assert len(shared) >= 160
    assert {c: BUILTIN_OPERATOR_NAMES[c] for c in shared} == {c: theirs[c] for c in shared}


@pytest.mark.parametrize("name", list_builtin())
def test_builtin_models_read_as_the_runtime_sees_them(name: str) -> None:
    blob = builtin_model(name)
    info = read_model(blob)
    ins, outs, ops = runtime_view(blob)
    assert set(info.op_counts) == ops and info.subgraphs == 1
    assert info.description == f"edgeperf builtin:{name}"
    for mine, theirs in ((info.inputs, ins), (info.outputs, outs)):
        assert [t.name for t in mine] == [d["name"] for d in theirs]
        assert [list(t.shape) for t in mine] == [d["shape"].tolist() for d in theirs]
        assert [t.dtype for t in mine] == [np.dtype(d["dtype"]).name for d in theirs]
        for t, d in zip(mine, theirs, strict=True):
            assert t.quantization[1] == d["quantization"][1]
            assert t.quantization[0] == pytest.approx(d["quantization"][0], rel=1e-7)
    assert info.custom_ops == [] and unsupported_ops_message(info) is None


def test_custom_and_flex_ops_are_named_and_the_runtime_refuses_them() -> None:
    for code, kind in (("MyFancyOp", "custom ops MyFancyOp"),
                       ("FlexAddV2", "TensorFlow (Flex) ops FlexAddV2")):
        blob = custom_model(code)
        info = read_model(blob)
        assert info.op_counts == {code: 1, "RELU": 1}
        msg = unsupported_ops_message(info)
        assert msg is not None and kind in msg and "TFLITE_BUILTINS" in msg
        with pytest.raises((RuntimeError, ValueError), match=code):
            runtime_view(blob)


def test_shape_signature_marks_dynamic_dims() -> None:
    mb = ModelBuilder()
    x = mb.add_tensor("x", (1, 1, 1, 2), "float32", shape_signature=(1, -1, -1, 2))
    y = mb.add_tensor("y", (1, 1, 1, 2), "float32", shape_signature=(1, -1, -1, 2))
    mb.add_operator("RELU", [x], [y])
    mb.set_inputs([x])
    mb.set_outputs([y])
    blob = mb.to_bytes()
    info = read_model(blob)
    assert info.inputs[0].shape_signature == (1, -1, -1, 2)
    assert info.inputs[0].dynamic_dims == (1, 2)
    ins, _, _ = runtime_view(blob)
    assert ins[0]["shape_signature"].tolist() == [1, -1, -1, 2]
    with pytest.raises(ValueError, match="shape_signature"):
        ModelBuilder().add_tensor("x", (1, 2), "float32", shape_signature=(1, 3))


def test_damaged_files_are_refused() -> None:
    blob = builtin_model("mlp")
    with pytest.raises(TfliteReadError, match="TFL3"):
        read_model(b"\0" * 64)
    with pytest.raises(TfliteReadError):
        read_model(blob[:200])
    rs = np.random.RandomState(0)
    for _ in range(50):  # garbage after a valid header: an error, never a crash or a hang
        junk = bytearray(blob)
        pos = rs.randint(8, len(junk), 20)
        junk[pos[0]:pos[0] + 4] = rs.bytes(4)
        try:
            read_model(bytes(junk))
        except TfliteReadError:
            pass
