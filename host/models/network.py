"""A small sequential network: its numpy forward pass, int8 quantization, and .tflite bytes.

One description feeds three consumers, so the file a device runs, the reference it is
checked against and the quantization of both can never drift apart. Quantization follows
what TFLite's post-training converter produces: per-channel symmetric int8 weights, int32
biases at input_scale * weight_scale, asymmetric int8 activations from calibration ranges,
softmax output at scale 1/256 and zero point -128, pools and reshapes keeping their input's
parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from edgeperf.models import reference_ops as ops
from edgeperf.models.reference_ops import DEFAULT_ROUNDING, QParams, Rounding
from edgeperf.models.tflite_writer import ModelBuilder, Quantization


@dataclass(frozen=True)
class Dense:
    w: np.ndarray  # [out, in] float32
    b: np.ndarray  # [out] float32
    activation: str = "NONE"


@dataclass(frozen=True)
class Conv:
    w: np.ndarray  # [out, kh, kw, in] float32
    b: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    activation: str = "NONE"


@dataclass(frozen=True)
class Depthwise:
    w: np.ndarray  # [1, kh, kw, in * multiplier] float32
    b: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    activation: str = "NONE"


@dataclass(frozen=True)
class Pool:
    kind: str  # "MAX" or "AVERAGE"
    size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: str = "VALID"


@dataclass(frozen=True)
class Reshape:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Softmax:
    beta: float = 1.0


Layer = Dense | Conv | Depthwise | Pool | Reshape | Softmax
_WEIGHTED = (Dense, Conv, Depthwise)
_CHANNEL_AXIS = {Dense: 0, Conv: 0, Depthwise: 3}  # TFLite's quantized_dimension for each


@dataclass(frozen=True)
class Int8Params:
    """What quantization adds to one layer: its output params and integer weights."""

    out: QParams
    w: np.ndarray | None = None  # int8
    w_scale: np.ndarray | None = None  # float32, one per output channel
    bias: np.ndarray | None = None  # int32


@dataclass(frozen=True)
class Network:
    """A float32 network, or an int8 one when ``input_q`` and ``int8`` are set."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    input_q: QParams | None = None
    int8: tuple[Int8Params, ...] | None = None

    @property
    def quantized(self) -> bool:
        return self.int8 is not None


# ---------------------------------------------------------------- forward passes


def _float_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    if isinstance(layer, Dense):
        return ops.fully_connected(x, layer.w, layer.b, layer.activation)
    if isinstance(layer, Conv):
        return ops.conv2d(x, layer.w, layer.b, layer.stride, layer.padding, layer.activation)
    if isinstance(layer, Depthwise):
        return ops.depthwise_conv2d(
            x, layer.w, layer.b, layer.stride, layer.padding, layer.activation
        )
    if isinstance(layer, Pool):
        return ops.pool2d(x, layer.kind, layer.size, layer.stride, layer.padding)
    if isinstance(layer, Reshape):
        return x.reshape(layer.shape)
    return ops.softmax(x, layer.beta)


def _int8_layer(
    layer: Layer, p: Int8Params, x: np.ndarray, x_q: QParams, rounding: Rounding
) -> np.ndarray:
    if isinstance(layer, Dense):
        return ops.fully_connected_int8(
            x, x_q, p.w, p.w_scale, p.bias, p.out, layer.activation, rounding
        )
    if isinstance(layer, (Conv, Depthwise)):
        op = ops.conv2d_int8 if isinstance(layer, Conv) else ops.depthwise_conv2d_int8
        return op(x, x_q, p.w, p.w_scale, p.bias, p.out, layer.stride, layer.padding,
                  layer.activation, rounding)
    if isinstance(layer, Pool):
        return ops.pool2d_int8(x, layer.kind, layer.size, layer.stride, layer.padding, p.out)
    if isinstance(layer, Reshape):
        return x.reshape(layer.shape)
    return ops.softmax_int8(x, x_q, p.out, layer.beta)


def forward(net: Network, x: np.ndarray, rounding: Rounding = DEFAULT_ROUNDING) -> np.ndarray:
    """The reference output for one input of the network's input shape and type.

    ``rounding`` picks the int8 kernel family to match bit-exactly (see reference_ops).
    """
    want = np.int8 if net.quantized else np.float32
    x = np.asarray(x)
    if x.shape != net.input_shape or x.dtype != want:
        raise ValueError(
            f"network input must be {np.dtype(want).name}{list(net.input_shape)}, "
            f"got {x.dtype}{list(x.shape)}"
        )
    if net.int8 is None:
        for layer in net.layers:
            x = _float_layer(layer, x)
        return x
    x_q = net.input_q
    for layer, p in zip(net.layers, net.int8, strict=True):
        x, x_q = _int8_layer(layer, p, x, x_q, rounding), p.out
    return x


# ---------------------------------------------------------------- quantization


def _snap(v: float) -> float:
    """Round a range end outward to 6 significant bits, so ulp-level differences between
    BLAS builds during calibration cannot change the quantized file's bytes."""
    if v == 0.0:
        return 0.0
    step = 2.0 ** (math.floor(math.log2(abs(v))) - 5)
    return math.copysign(math.ceil(abs(v) / step) * step, v)


def activation_qparams(lo: float, hi: float) -> QParams:
    """Asymmetric int8 params for a calibrated range, which must contain 0 (as TFLite's)."""
    lo, hi = min(_snap(lo), 0.0), max(_snap(hi), 0.0)
    scale = float(np.float32((hi - lo) / 255.0)) if hi > lo else 1.0
    zero_point = int(np.clip(round(ops.INT8_MIN - lo / scale), ops.INT8_MIN, ops.INT8_MAX))
    return QParams(scale, zero_point)


def _quantize_weights(layer: Dense | Conv | Depthwise, in_q: QParams, out: QParams) -> Int8Params:
    axis = _CHANNEL_AXIS[type(layer)]
    w = np.moveaxis(layer.w.astype(np.float32), axis, 0)
    peak = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    shape = (-1,) + (1,) * (w.ndim - 1)
    wq = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    bias_scale = np.float64(in_q.scale) * scale.astype(np.float64)
    bias = np.round(layer.b.astype(np.float64) / bias_scale).astype(np.int32)
    return Int8Params(out, np.moveaxis(wq, 0, axis), scale, bias)


def quantize(net: Network, calibration: np.ndarray) -> Network:
    """Post-training int8 quantization, calibrated on a batch of float inputs.

    ``calibration`` is [samples, *input_shape]; ranges are min/max over all of it.
    """
    if net.quantized:
        raise ValueError("quantize: the network is already int8")
    xs = [np.asarray(c, np.float32) for c in calibration]
    in_q = activation_qparams(float(np.min(xs)), float(np.max(xs)))
    x_q, params = in_q, []
    for layer in net.layers:
        xs = [_float_layer(layer, x) for x in xs]
        if isinstance(layer, Softmax):
            out = QParams(1.0 / 256.0, -128)
        elif isinstance(layer, (Pool, Reshape)):
            out = x_q
        else:
            out = activation_qparams(float(np.min(xs)), float(np.max(xs)))
        if isinstance(layer, _WEIGHTED):
            params.append(_quantize_weights(layer, x_q, out))
        else:
            params.append(Int8Params(out))
        x_q = out
    return replace(net, input_q=in_q, int8=tuple(params))


# ---------------------------------------------------------------- .tflite emission

_OPS = {
    Dense: "FULLY_CONNECTED",
    Conv: "CONV_2D",
    Depthwise: "DEPTHWISE_CONV_2D",
    Reshape: "RESHAPE",
    Softmax: "SOFTMAX",
}


def _op_name(layer: Layer) -> str:
    if isinstance(layer, Pool):
        return "MAX_POOL_2D" if layer.kind == "MAX" else "AVERAGE_POOL_2D"
    return _OPS[type(layer)]


def _options(layer: Layer, in_shape: tuple[int, ...]) -> dict[str, object]:
    if isinstance(layer, Dense):
        return {"fused_activation_function": layer.activation}
    if isinstance(layer, (Conv, Depthwise)):
        opts: dict[str, object] = {
            "padding": layer.padding,
            "stride_h": layer.stride[0],
            "stride_w": layer.stride[1],
            "fused_activation_function": layer.activation,
        }
        if isinstance(layer, Depthwise):
            opts["depth_multiplier"] = layer.w.shape[3] // in_shape[3]
        return opts
    if isinstance(layer, Pool):
        return {
            "padding": layer.padding,
            "stride_h": layer.stride[0],
            "stride_w": layer.stride[1],
            "filter_height": layer.size[0],
            "filter_width": layer.size[1],
        }
    if isinstance(layer, Reshape):
        return {"new_shape": list(layer.shape)}
    return {"beta": layer.beta}


def _q(p: QParams | None) -> Quantization | None:
    return None if p is None else Quantization((p.scale,), (p.zero_point,))


def to_tflite(net: Network, description: str = "edgeperf") -> bytes:
    """Serialise the network; tensors are named by op and position ("conv_2d_1/weights")."""
    mb = ModelBuilder(description)
    dtype = "int8" if net.quantized else "float32"
    shape = net.input_shape
    x = mb.add_tensor("input", shape, dtype, quantization=_q(net.input_q))
    probe = np.zeros(net.input_shape, np.float32)
    int8 = net.int8 or (None,) * len(net.layers)
    for i, (layer, p) in enumerate(zip(net.layers, int8, strict=True), start=1):
        op = _op_name(layer)
        name = f"{op.lower()}_{i}"
        probe = _float_layer(layer, probe)
        inputs = [x]
        if isinstance(layer, _WEIGHTED):
            axis = _CHANNEL_AXIS[type(layer)]
            if p is None:
                w = mb.add_constant(f"{name}/weights", layer.w.astype(np.float32))
                b = mb.add_constant(f"{name}/bias", layer.b.astype(np.float32))
            else:
                zeros = (0,) * len(p.w_scale)
                w = mb.add_constant(
                    f"{name}/weights", p.w, Quantization(tuple(p.w_scale), zeros, axis)
                )
                bias_scale = np.float64(_input_scale(net, i)) * p.w_scale.astype(np.float64)
                b = mb.add_constant(
                    f"{name}/bias", p.bias, Quantization(tuple(bias_scale), zeros, 0)
                )
            inputs += [w, b]
        elif isinstance(layer, Reshape):
            inputs.append(mb.add_constant(f"{name}/shape", np.array(layer.shape, np.int32)))
        y = mb.add_tensor(name, probe.shape, dtype, quantization=_q(p.out if p else None))
        mb.add_operator(op, inputs, [y], _options(layer, shape))
        x, shape = y, probe.shape
    mb.set_inputs([0])
    mb.set_outputs([x])
    return mb.to_bytes()


def _input_scale(net: Network, layer_number: int) -> float:
    """Scale of the tensor feeding layer ``layer_number`` (1-based) of an int8 network."""
    return net.input_q.scale if layer_number == 1 else net.int8[layer_number - 2].out.scale
