"""The built-in models the CLI names ``builtin:NAME``: small, deterministic, self-checking.

They let a benchmark run with nothing downloaded: each is built from a fixed seed in well
under a second, is byte-identical on every host (so its SHA-256 names it), and comes with a
numpy reference forward pass that a device's output must match.

Weights come from ``numpy.random.RandomState``, whose stream numpy keeps frozen across
releases, so host and device builds agree whatever their numpy versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from edgeperf.models.network import (
    Conv,
    Dense,
    Depthwise,
    Network,
    Pool,
    Reshape,
    Softmax,
    forward,
    quantize,
    to_tflite,
)
from edgeperf.models.reference_ops import DEFAULT_ROUNDING, QParams, Rounding

__all__ = [
    "BuiltinInfo",
    "builtin_info",
    "builtin_model",
    "builtin_network",
    "list_builtin",
    "reference_forward",
]

_SEED = 20240617
_CALIBRATION_SAMPLES = 256


@dataclass(frozen=True)
class BuiltinInfo:
    """What a caller needs to feed a built-in model and read its output."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    input_dtype: str  # "float32" or "int8"
    input_quantization: QParams | None
    output_shape: tuple[int, ...]
    output_dtype: str
    output_quantization: QParams | None


def _glorot(
    rs: np.random.RandomState, fan_out: int, fan_in: int, shape: tuple[int, ...]
) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rs.uniform(-limit, limit, size=shape).astype(np.float32)


def _bias(rs: np.random.RandomState, n: int) -> np.ndarray:
    return rs.uniform(-0.1, 0.1, size=n).astype(np.float32)


def _mlp_layers() -> tuple[Dense, Dense, Softmax]:
    """64 -> 32 (RELU) -> 10 -> softmax: an 8x8 image classifier's shape."""
    rs = np.random.RandomState(_SEED)
    w1, b1 = _glorot(rs, 32, 64, (32, 64)), _bias(rs, 32)
    # Half-size output weights keep the logits' int8 step under 1/128: a 1-LSB rounding
    # difference between runtimes' kernels then moves a softmax output by under 1 LSB.
    w2, b2 = _glorot(rs, 10, 32, (10, 32)) * np.float32(0.5), _bias(rs, 10)
    return Dense(w1, b1, "RELU"), Dense(w2, b2), Softmax(1.0)


def _cnn_layers() -> tuple[Conv, Depthwise, Pool, Pool, Reshape, Dense, Softmax]:
    """8x8x1 -> conv 3x3x8 -> depthwise 3x3 -> max pool -> avg pool -> 2x2x8 -> fc 10."""
    rs = np.random.RandomState(_SEED + 1)
    conv = Conv(_glorot(rs, 8 * 9, 9, (8, 3, 3, 1)), _bias(rs, 8), (1, 1), "SAME", "RELU")
    dw = Depthwise(_glorot(rs, 9, 9, (1, 3, 3, 8)), _bias(rs, 8), (1, 1), "SAME", "RELU6")
    fc = Dense(_glorot(rs, 10, 32, (10, 32)), _bias(rs, 10))
    return (
        conv,
        dw,
        Pool("MAX", (2, 2), (2, 2), "VALID"),
        Pool("AVERAGE", (2, 2), (2, 2), "VALID"),
        Reshape((1, 32)),
        fc,
        Softmax(1.0),
    )


def _calibration(shape: tuple[int, ...]) -> np.ndarray:
    """Pixel-like inputs in [0, 1), the range the float models are meant for."""
    rs = np.random.RandomState(_SEED + 100)
    return rs.uniform(0.0, 1.0, size=(_CALIBRATION_SAMPLES, *shape)).astype(np.float32)


_MODELS: dict[str, tuple[str, Callable[[], Network]]] = {
    "mlp": (
        "float32 MLP 64-32-10 with softmax, input [1, 64]",
        lambda: Network((1, 64), _mlp_layers()),
    ),
    "mlp-int8": (
        "the mlp quantized to int8 (int8 input and output)",
        lambda: quantize(Network((1, 64), _mlp_layers()), _calibration((1, 64))),
    ),
    "mlp-batch8": (
        "the mlp with batch 8, input [8, 64], for one batched MultiStream call",
        lambda: Network((8, 64), _mlp_layers()),
    ),
    "cnn": (
        "float32 CNN: conv, depthwise conv, max and average pool, reshape, fc, softmax; "
        "input [1, 8, 8, 1]",
        lambda: Network((1, 8, 8, 1), _cnn_layers()),
    ),
    "cnn-int8": (
        "the cnn quantized to int8 (int8 input and output)",
        lambda: quantize(Network((1, 8, 8, 1), _cnn_layers()), _calibration((1, 8, 8, 1))),
    ),
}


def list_builtin() -> list[str]:
    """Names accepted as ``builtin:NAME``."""
    return list(_MODELS)


def builtin_network(name: str) -> Network:
    """Build the model's description afresh (weights, quantization); not cached."""
    if name not in _MODELS:
        raise ValueError(f"unknown built-in model {name!r}; known: {', '.join(_MODELS)}")
    return _MODELS[name][1]()


@cache
def _network(name: str) -> Network:
    return builtin_network(name)


@cache
def builtin_model(name: str) -> bytes:
    """The .tflite bytes of a built-in model; the same bytes on every call and host."""
    return to_tflite(_network(name), description=f"edgeperf builtin:{name}")


def builtin_info(name: str) -> BuiltinInfo:
    """Input and output shape, type and quantization, without loading a runtime."""
    net = _network(name)
    dtype = "int8" if net.quantized else "float32"
    out = forward(net, np.zeros(net.input_shape, np.int8 if net.quantized else np.float32))
    return BuiltinInfo(
        name,
        _MODELS[name][0],
        net.input_shape,
        dtype,
        net.input_q,
        out.shape,
        dtype,
        net.int8[-1].out if net.int8 else None,
    )


def reference_forward(
    name: str, x: np.ndarray, rounding: Rounding = DEFAULT_ROUNDING
) -> np.ndarray:
    """The numpy reference output of ``builtin_model(name)`` for input ``x``.

    ``x`` must have the model's input shape and dtype (int8 for the -int8 models, already
    quantized with ``builtin_info(name).input_quantization``). Int8 outputs are within
    1 LSB of any TFLite kernel; ``rounding`` names the kernel family to match exactly
    ("single": reference kernels and XNNPACK, "ruy": TFLite's optimized kernels).
    """
    return forward(_network(name), x, rounding)
