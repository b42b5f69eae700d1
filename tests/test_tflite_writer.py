"""The .tflite writer and the built-in models, checked against a real TFLite runtime.

Runs with either runtime (ai_edge_litert or tflite_runtime): the file must load and compute
the same numbers as the numpy reference in both.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from edgeperf.models import reference_ops as ops
from edgeperf.models.builtin import (
    builtin_info,
    builtin_model,
    builtin_network,
    list_builtin,
    reference_forward,
)
from edgeperf.models.network import Conv, Depthwise, Network, Pool, forward, quantize, to_tflite
from edgeperf.models.reference_ops import QParams
from edgeperf.models.tflite_writer import ModelBuilder, Quantization

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:  # the older runtime, as shipped for Raspberry Pi OS and friends
    from tflite_runtime.interpreter import Interpreter, OpResolverType

# Kernels a device may run: the default (XNNPACK where it applies) and TFLite's own.
RESOLVERS = {
    "default": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}

# The files are addressed by SHA-256; these must hold on every host and numpy version.
GOLDEN_SHA256 = {
    "mlp": "42ca6b27aacf0105d37849c661949e8750eb0dae41c82c8a21f345d8d10d6cdb",
    "mlp-int8": "fa81ab922dee5cff7ee466569bd944b82031449deb8872613172075fe0a521c7",
    "mlp-batch8": "e41f69d7f40ca3a0311bdc36e8d7feb821b40822c06548d291674bcaa87d6d0a",
    "cnn": "ef10a6a26c863a1138ac742df88974c056ae443527dfd33f854de96e4eed4cc0",
    "cnn-int8": "361ffb48e9a087d09b3e30d46efd15ec3d34bc2409f84101696b17f75262b2fa",
}
INT8_MODELS = ["mlp-int8", "cnn-int8"]


def load(blob: bytes, resolver: str = "default") -> Interpreter:
    it = Interpreter(model_content=blob, experimental_op_resolver_type=RESOLVERS[resolver])
    it.allocate_tensors()
    return it


def run(it: Interpreter, x: np.ndarray) -> np.ndarray:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def random_input(shape: tuple[int, ...], dtype: str, rs: np.random.RandomState) -> np.ndarray:
    if dtype == "int8":
        return rs.randint(-128, 128, size=shape).astype(np.int8)
    return rs.uniform(0.0, 1.0, size=shape).astype(np.float32)


# ---------------------------------------------------------------- a minimal flatbuffer reader
# Independent of the writer: raw offsets and the slot numbers of schema.fbs.


def _field(buf: bytes, table: int, slot: int) -> int | None:
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * slot >= vt_size:
        return None
    off = struct.unpack_from("<H", buf, vtable + 4 + 2 * slot)[0]
    return table + off if off else None


def _deref(buf: bytes, pos: int) -> int:
    return pos + struct.unpack_from("<I", buf, pos)[0]


def _vector(buf: bytes, field_pos: int) -> tuple[int, int]:
    start = _deref(buf, field_pos)
    return start + 4, struct.unpack_from("<I", buf, start)[0]


def _tables(buf: bytes, table: int, slot: int) -> list[int]:
    start, n = _vector(buf, _field(buf, table, slot))
    return [_deref(buf, start + 4 * i) for i in range(n)]


# ---------------------------------------------------------------- built-in models


def test_list_builtin_has_the_cli_models() -> None:
    assert {"mlp", "mlp-int8", "mlp-batch8"} <= set(list_builtin())
    assert sorted(list_builtin()) == sorted(GOLDEN_SHA256)


def test_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: mlp, mlp-int8, mlp-batch8"):
        builtin_model("resnet50")
    with pytest.raises(ValueError, match="'resnet50'"):
        reference_forward("resnet50", np.zeros((1, 64), np.float32))


@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_builtin_is_deterministic(name: str) -> None:
    first = to_tflite(builtin_network(name), description=f"edgeperf builtin:{name}")
    second = to_tflite(builtin_network(name), description=f"edgeperf builtin:{name}")
    assert first == second == builtin_model(name)
    assert hashlib.sha256(first).hexdigest() == GOLDEN_SHA256[name]


@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_flatbuffer_layout(name: str) -> None:
    buf = builtin_model(name)
    assert buf[4:8] == b"TFL3"
    model = _deref(buf, 0)
    assert struct.unpack_from("<I", buf, _field(buf, model, 0))[0] == 3  # Model.version

    buffers = _tables(buf, model, 4)
    assert _field(buf, buffers[0], 0) is None  # buffer 0 is the empty buffer
    sizes = []
    for b in buffers[1:]:
        start, n = _vector(buf, _field(buf, b, 0))
        assert start % 16 == 0, f"buffer data at {start} is not 16-byte aligned"
        sizes.append(n)
    net = builtin_network(name)
    n_weighted = sum(hasattr(layer, "w") for layer in net.layers)
    assert len(sizes) >= 2 * n_weighted and all(n > 0 for n in sizes)

    codes = _tables(buf, model, 1)
    assert codes
    for code in codes:
        deprecated = struct.unpack_from("<b", buf, _field(buf, code, 0))[0]
        builtin = struct.unpack_from("<i", buf, _field(buf, code, 3))[0]
        assert deprecated == min(builtin, 127) and builtin > 0


@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_io_details_are_as_built(name: str) -> None:
    info = builtin_info(name)
    it = load(builtin_model(name))
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    for detail, shape, dtype, q in (
        (inp, info.input_shape, info.input_dtype, info.input_quantization),
        (out, info.output_shape, info.output_dtype, info.output_quantization),
    ):
        assert tuple(detail["shape"]) == shape
        assert detail["dtype"] == np.dtype(dtype)
        if q is None:
            assert detail["quantization"] == (0.0, 0)
        else:
            assert detail["quantization"][1] == q.zero_point
            assert detail["quantization"][0] == pytest.approx(q.scale, rel=1e-7)


def test_mlp_shapes_and_int8_params() -> None:
    assert builtin_info("mlp").input_shape == (1, 64)
    assert builtin_info("mlp-batch8").input_shape == (8, 64)
    assert builtin_info("mlp-batch8").output_shape == (8, 10)
    info = builtin_info("mlp-int8")
    assert (info.input_dtype, info.output_dtype) == ("int8", "int8")
    assert info.input_quantization == QParams(float(np.float32(1 / 255)), -128)
    assert info.output_quantization == QParams(1 / 256, -128)


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_outputs_match_reference(name: str, resolver: str) -> None:
    info = builtin_info(name)
    it = load(builtin_model(name), resolver)
    rs = np.random.RandomState(1234)
    exact = total = 0
    for _ in range(40):
        x = random_input(info.input_shape, info.input_dtype, rs)
        got, want = run(it, x), reference_forward(name, x)
        assert got.shape == want.shape and got.dtype == want.dtype
        if info.output_dtype == "int8":
            diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
            assert diff.max() <= 1
            exact += int((diff == 0).sum())
            total += diff.size
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if info.output_dtype == "int8":  # a reference always 1 LSB off would pass the bound
        assert exact / total >= 0.97


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_reference_is_bit_exact_with_tflite_kernels(name: str) -> None:
    """TFLite's optimized built-in kernels round like ARM's SQRDMULH: 'ruy' rounding."""
    info = builtin_info(name)
    it = load(builtin_model(name), "builtin")
    rs = np.random.RandomState(99)
    for _ in range(100):
        x = random_input(info.input_shape, "int8", rs)
        np.testing.assert_array_equal(run(it, x), reference_forward(name, x, rounding="ruy"))


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_int8_model_tracks_the_float_model(name: str) -> None:
    q = builtin_info(f"{name}-int8")
    rs = np.random.RandomState(5)
    worst = 0.0
    for _ in range(50):
        xq = random_input(q.input_shape, "int8", rs)
        yq = reference_forward(f"{name}-int8", xq)
        y = reference_forward(name, ops.dequantize(xq, q.input_quantization))
        worst = max(worst, float(np.abs(ops.dequantize(yq, q.output_quantization) - y).max()))
    assert worst < 0.03


def test_batch8_rows_equal_single_mlp_calls() -> None:
    single, batch = load(builtin_model("mlp")), load(builtin_model("mlp-batch8"))
    x = np.random.RandomState(8).uniform(0, 1, size=(8, 64)).astype(np.float32)
    rows = np.concatenate([run(single, x[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(run(batch, x), rows, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)


def test_weights_round_trip_and_per_channel_params() -> None:
    net = builtin_network("cnn-int8")
    it = load(builtin_model("cnn-int8"))
    tensors = {d["name"]: d for d in it.get_tensor_details()}
    for i, (layer, p) in enumerate(zip(net.layers, net.int8, strict=True), start=1):
        if not hasattr(layer, "w"):
            continue
        prefix = next(n.split("/")[0] for n in tensors if n.endswith(f"_{i}/weights"))
        w, b = tensors[f"{prefix}/weights"], tensors[f"{prefix}/bias"]
        np.testing.assert_array_equal(it.get_tensor(w["index"]), p.w)
        np.testing.assert_array_equal(it.get_tensor(b["index"]), p.bias)
        assert b["dtype"] == np.int32
        wq = w["quantization_parameters"]
        axis = 3 if isinstance(layer, Depthwise) else 0
        assert wq["quantized_dimension"] == axis
        assert len(wq["scales"]) == layer.w.shape[axis] > 1
        assert not wq["zero_points"].any()
        in_scale = net.input_q.scale if i == 1 else net.int8[i - 2].out.scale
        np.testing.assert_allclose(
            b["quantization_parameters"]["scales"], in_scale * wq["scales"], rtol=1e-6
        )


# ---------------------------------------------------------------- single ops via ModelBuilder


def _one_op(
    op: str,
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...],
    consts: list[np.ndarray | None],
    options: dict,
) -> bytes:
    mb = ModelBuilder()
    x = mb.add_tensor("x", x_shape, "float32")
    ins = [x] + [-1 if c is None else mb.add_constant(f"c{i}", c) for i, c in enumerate(consts)]
    y = mb.add_tensor("y", y_shape, "float32")
    mb.add_operator(op, ins, [y], options)
    mb.set_inputs([x])
    mb.set_outputs([y])
    return mb.to_bytes()


def _check_float(blob: bytes, x_shape: tuple[int, ...], reference) -> None:
    it = load(blob)
    rs = np.random.RandomState(3)
    for _ in range(5):
        x = rs.normal(size=x_shape).astype(np.float32)
        np.testing.assert_allclose(run(it, x), reference(x), rtol=1e-5, atol=1e-6)


def test_fully_connected_relu6_without_bias() -> None:
    w = np.random.RandomState(0).normal(0, 3, size=(5, 7)).astype(np.float32)
    blob = _one_op(
        "FULLY_CONNECTED", (2, 7), (2, 5), [w, None], {"fused_activation_function": "RELU6"}
    )
    _check_float(blob, (2, 7), lambda x: np.clip(x @ w.T, 0, 6))


def test_relu_and_reshape() -> None:
    _check_float(
        _one_op("RELU", (1, 3, 4), (1, 3, 4), [], {}), (1, 3, 4), lambda x: np.maximum(x, 0)
    )
    shape = np.array([2, 6], np.int32)
    blob = _one_op("RESHAPE", (1, 3, 4), (2, 6), [shape], {"new_shape": [2, 6]})
    _check_float(blob, (1, 3, 4), lambda x: x.reshape(2, 6))


def test_softmax_beta() -> None:
    _check_float(
        _one_op("SOFTMAX", (3, 5), (3, 5), [], {"beta": 0.5}), (3, 5), lambda x: ops.softmax(x, 0.5)
    )


def test_conv2d_strided_same_padding() -> None:
    rs = np.random.RandomState(1)
    w, b = rs.normal(size=(3, 3, 2, 2)).astype(np.float32), rs.normal(size=3).astype(np.float32)
    opts = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "fused_activation_function": "RELU"}
    blob = _one_op("CONV_2D", (1, 7, 6, 2), (1, 4, 3, 3), [w, b], opts)
    ref = lambda x: ops.conv2d(x, w, b, (2, 2), "SAME", "RELU")  # noqa: E731
    _check_float(blob, (1, 7, 6, 2), ref)
    # the numpy kernel itself, against a direct loop at one output position
    x = rs.normal(size=(1, 7, 6, 2)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (0, 1), (0, 0)))  # SAME, stride 2: pads (1,1) and (0,1)
    direct = max(0.0, float((xp[0, 2:5, 2:4] * w[1, :, :2]).sum() + b[1]))
    assert ref(x)[0, 1, 1, 1] == pytest.approx(direct, rel=1e-5)


def test_depthwise_conv2d_with_multiplier() -> None:
    rs = np.random.RandomState(2)
    w, b = rs.normal(size=(1, 3, 2, 6)).astype(np.float32), rs.normal(size=6).astype(np.float32)
    opts = {"padding": "VALID", "stride_h": 1, "stride_w": 1, "depth_multiplier": 2}
    blob = _one_op("DEPTHWISE_CONV_2D", (1, 5, 4, 3), (1, 3, 3, 6), [w, b], opts)
    _check_float(blob, (1, 5, 4, 3), lambda x: ops.depthwise_conv2d(x, w, b, (1, 1), "VALID"))


@pytest.mark.parametrize("kind,op", [("MAX", "MAX_POOL_2D"), ("AVERAGE", "AVERAGE_POOL_2D")])
def test_pools_with_same_padding(kind: str, op: str) -> None:
    opts = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_height": 3, "filter_width": 3}
    blob = _one_op(op, (1, 5, 5, 2), (1, 3, 3, 2), [], opts)
    _check_float(blob, (1, 5, 5, 2), lambda x: ops.pool2d(x, kind, (3, 3), (2, 2), "SAME"))


def test_int8_conv_pool_stack_with_nonzero_input_zero_point() -> None:
    """Padding must add real zeros: visible only when the input zero point is not -128."""
    rs = np.random.RandomState(4)
    layers = (
        Conv(
            rs.normal(size=(4, 3, 3, 2)).astype(np.float32),
            rs.normal(size=4).astype(np.float32),
            (2, 2),
            "SAME",
            "RELU6",
        ),
        Depthwise(
            rs.normal(size=(1, 3, 3, 8)).astype(np.float32),
            rs.normal(size=8).astype(np.float32),
            (1, 1),
            "SAME",
            "NONE",
        ),
        Pool("AVERAGE", (3, 3), (2, 2), "SAME"),
        Pool("MAX", (2, 2), (1, 1), "SAME"),
    )
    calib = rs.uniform(-1.0, 2.0, size=(64, 1, 7, 7, 2)).astype(np.float32)
    net = quantize(Network((1, 7, 7, 2), layers), calib)
    assert net.input_q.zero_point not in (-128, 0)
    blob = to_tflite(net)
    default, builtin = load(blob), load(blob, "builtin")
    for _ in range(20):
        x = rs.randint(-128, 128, size=(1, 7, 7, 2)).astype(np.int8)
        np.testing.assert_array_equal(run(builtin, x), forward(net, x, rounding="ruy"))
        assert np.abs(run(default, x).astype(int) - forward(net, x)).max() <= 1


# ---------------------------------------------------------------- builder errors and rounding


def test_builder_rejects_mistakes() -> None:
    mb = ModelBuilder()
    with pytest.raises(TypeError, match="astype"):
        mb.add_tensor("w", (2,), "float32", np.zeros(2, np.float64))
    with pytest.raises(ValueError, match="shape"):
        mb.add_tensor("w", (3,), "float32", np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="channel scales"):
        mb.add_tensor(
            "w", (3, 4), "int8", np.zeros((3, 4), np.int8), Quantization((0.1, 0.2), (0, 0), 0)
        )
    x = mb.add_tensor("x", (1, 4), "float32")
    with pytest.raises(IndexError, match="tensor 7"):
        mb.add_operator("RELU", [x], [7])
    with pytest.raises(ValueError, match="no option"):
        mb.add_operator("SOFTMAX", [x], [x], {"alpha": 1.0})
    with pytest.raises(ValueError, match="set_inputs"):
        mb.to_bytes()


def test_rounding_families_on_ties() -> None:
    """The three kernel families part only where a result lands on (or near) a half."""
    q, shift = ops.quantize_multiplier(0.25)
    assert (q, shift) == (1 << 30, -1)  # 0.5 in Q0.31, then one right shift
    acc = np.array([-10, -2, 2, -11, 3])  # exact: -2.5, -0.5, 0.5, -2.75, 0.75

    def mbqm(rounding: str) -> list[int]:
        return ops.multiply_by_quantized_multiplier(acc, q, shift, rounding).tolist()

    assert mbqm("single") == [-2, 0, 1, -3, 1]  # ties up, once
    assert mbqm("double") == [-3, -1, 1, -3, 1]  # final tie away from zero
    assert mbqm("ruy") == [-2, 0, 1, -2, 1]  # ties up, twice: -5.5 -> -5 -> -2.5 -> -2
    assert ops.quantize_multiplier(0.0) == (0, 0)
    with pytest.raises(ValueError, match="rounding"):
        ops.multiply_by_quantized_multiplier(acc, q, shift, "banker")
