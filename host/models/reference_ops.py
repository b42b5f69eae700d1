"""Pure-numpy reference kernels for the ops tflite_writer.py can emit, float32 and int8.

They are the oracle for the built-in models: a device's output is checked against them, so
the int8 kernels follow TFLite's integer arithmetic (int32 accumulators, Q0.31 fixed-point
multipliers rounded as a chosen kernel family rounds, activation clamps in the quantized
domain, the float LUT softmax) rather than dequantize-compute-requantize.
Layouts are TFLite's: NHWC activations, FC weights [out, in], CONV [out, h, w, in],
DEPTHWISE [1, h, w, in * multiplier].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine quantization of an activation: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


# ---------------------------------------------------------------- quantization arithmetic


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= q * 2**(shift - 31) with q a Q0.31 int32."""
    if real == 0.0:
        return 0, 0
    frac, shift = math.frexp(real)
    q = int(math.floor(abs(frac) * (1 << 31) + 0.5)) * (1 if frac > 0 else -1)  # round half away
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


Rounding = Literal["single", "double", "ruy"]
ROUNDINGS: tuple[str, ...] = ("single", "double", "ruy")
DEFAULT_ROUNDING: Rounding = "single"


def multiply_by_quantized_multiplier(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    rounding: Rounding = DEFAULT_ROUNDING,
) -> np.ndarray:
    """acc * multiplier * 2**(shift - 31), rounded the way a TFLite kernel family rounds.

    TFLite kernels disagree by 1 LSB on rounding ties, so each family is kept to check a
    runtime bit-exactly: "single" is one round-half-up of the 64-bit product (TFLite's
    reference kernels with TFLITE_SINGLE_ROUNDING, as LiteRT builds them; XNNPACK lands
    within 1 LSB of it); "double" is gemmlowp's SaturatingRoundingDoublingHighMul then
    RoundingDivideByPOT, ties away from zero (reference kernels of TF <= 2.14); "ruy" is the
    ARM SQRDMULH + SRSHL pair, ties up at both steps (TFLite's optimized built-in kernels).
    """
    x = np.asarray(acc, dtype=np.int64) << np.maximum(np.asarray(shift, np.int64), 0)
    m = np.asarray(multiplier, dtype=np.int64)
    right = np.maximum(-np.asarray(shift, dtype=np.int64), 0)
    one = np.int64(1)
    if rounding == "single":
        total = 31 + right
        return (x * m + (one << (total - 1))) >> total
    if rounding == "double":
        ab = x * m
        t = ab + np.where(ab >= 0, one << 30, 1 - (one << 30))
        high = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C division truncates toward zero
        mask = (one << right) - 1
        return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0))
    if rounding == "ruy":
        high = (2 * x * m + (one << 31)) >> 32
        return (high + ((one << right) >> 1)) >> right
    raise ValueError(f"rounding {rounding!r} is not one of {', '.join(ROUNDINGS)}")


def requantize(
    acc: np.ndarray,
    real_multiplier: np.ndarray,
    zero_point: int,
    lo: int,
    hi: int,
    rounding: Rounding = DEFAULT_ROUNDING,
) -> np.ndarray:
    """int32 accumulator -> int8 output, channel-wise multipliers along the last axis."""
    pairs = [quantize_multiplier(float(m)) for m in np.atleast_1d(real_multiplier)]
    q = np.array([p[0] for p in pairs], dtype=np.int64)
    s = np.array([p[1] for p in pairs], dtype=np.int64)
    out = multiply_by_quantized_multiplier(acc, q, s, rounding) + zero_point
    return np.clip(out, lo, hi).astype(np.int8)


def activation_range_int8(activation: str, out: QParams) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the fused activation as an int8 clamp."""

    def q(v: float) -> int:
        return out.zero_point + int(np.round(v / out.scale))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    raise ValueError(f"activation {activation!r} is not one of NONE, RELU, RELU6")


def activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "NONE":
        return x
    if activation == "RELU":
        return np.maximum(x, 0)
    if activation == "RELU6":
        return np.clip(x, 0, 6)
    raise ValueError(f"activation {activation!r} is not one of NONE, RELU, RELU6")


def quantize(x: np.ndarray, q: QParams) -> np.ndarray:
    """Float -> int8 as TFLite's QUANTIZE op does (round half away from zero, saturate)."""
    v = np.asarray(x, np.float64) / q.scale
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(r + q.zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(x: np.ndarray, q: QParams) -> np.ndarray:
    return (q.scale * (np.asarray(x, np.float32) - q.zero_point)).astype(np.float32)


# ---------------------------------------------------------------- windows and padding


def output_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) as TFLite computes SAME/VALID padding."""
    if padding == "SAME":
        out = -(-size // stride)
    elif padding == "VALID":
        out = (size - kernel) // stride + 1
    else:
        raise ValueError(f"padding {padding!r} is not SAME or VALID")
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _windows(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: str, fill: float | int
) -> np.ndarray:
    """NHWC -> [N, OH, OW, C, KH, KW] windows, the padding filled with ``fill``."""
    oh, pt, pb = output_size(x.shape[1], kh, stride[0], padding)
    ow, pl, pr = output_size(x.shape[2], kw, stride[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))
    return win[:, :: stride[0], :: stride[1]][:, :oh, :ow]


# ---------------------------------------------------------------- float32 kernels


def _float_output(y: np.ndarray, b: np.ndarray | None, activation: str) -> np.ndarray:
    """The float kernels' tail: bias, activation, back to float32."""
    if b is not None:
        y = y + b
    return activate(y, activation).astype(np.float32)


def fully_connected(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, activation: str = "NONE"
) -> np.ndarray:
    y = x.reshape(-1, w.shape[1]).astype(np.float64) @ w.astype(np.float64).T
    return _float_output(y, b, activation)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
) -> np.ndarray:
    win = _windows(x.astype(np.float64), w.shape[1], w.shape[2], stride, padding, 0.0)
    y = np.einsum("nhwcij,oijc->nhwo", win, w.astype(np.float64))
    return _float_output(y, b, activation)


def depthwise_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
) -> np.ndarray:
    mult = w.shape[3] // x.shape[3]
    win = _windows(x.astype(np.float64), w.shape[1], w.shape[2], stride, padding, 0.0)
    win = np.repeat(win, mult, axis=3)  # output channel k reads input channel k // mult
    y = np.einsum("nhwcij,ijc->nhwc", win, w[0].astype(np.float64))
    return _float_output(y, b, activation)


def pool2d(
    x: np.ndarray,
    kind: str,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: str = "VALID",
    activation: str = "NONE",
) -> np.ndarray:
    """MAX or AVERAGE pooling; TFLite's average leaves padding out of the count."""
    win = _windows(x.astype(np.float64), *size, stride, padding, np.nan)
    y = np.nanmax(win, axis=(4, 5)) if kind == "MAX" else np.nanmean(win, axis=(4, 5))
    return activate(y, activation).astype(np.float32)


def softmax(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    z = beta * (x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- int8 kernels


def _weighted_output(acc: np.ndarray, bias: np.ndarray | None, x_q: QParams,
                     w_scale: np.ndarray, out_q: QParams, activation: str,
                     rounding: Rounding) -> np.ndarray:
    """The common end of FC, CONV and DEPTHWISE in int8: int32 bias, per-channel
    multiplier input_scale * weight_scale / output_scale, fused activation, requantize."""
    if bias is not None:
        acc = acc + bias
    real = x_q.scale * np.asarray(w_scale, np.float64) / out_q.scale
    lo, hi = activation_range_int8(activation, out_q)
    return requantize(acc, real, out_q.zero_point, lo, hi, rounding)


def fully_connected_int8(
    x: np.ndarray,
    x_q: QParams,
    w: np.ndarray,
    w_scale: np.ndarray,
    bias: np.ndarray | None,
    out_q: QParams,
    activation: str = "NONE",
    rounding: Rounding = DEFAULT_ROUNDING,
) -> np.ndarray:
    acc = (x.reshape(-1, w.shape[1]).astype(np.int64) - x_q.zero_point) @ w.astype(np.int64).T
    return _weighted_output(acc, bias, x_q, w_scale, out_q, activation, rounding)


def conv2d_int8(
    x: np.ndarray,
    x_q: QParams,
    w: np.ndarray,
    w_scale: np.ndarray,
    bias: np.ndarray | None,
    out_q: QParams,
    stride: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
    rounding: Rounding = DEFAULT_ROUNDING,
) -> np.ndarray:
    xs = x.astype(np.int64) - x_q.zero_point  # padding adds real zeros, i.e. 0 after the shift
    win = _windows(xs, w.shape[1], w.shape[2], stride, padding, 0)
    acc = np.einsum("nhwcij,oijc->nhwo", win, w.astype(np.int64))
    return _weighted_output(acc, bias, x_q, w_scale, out_q, activation, rounding)


def depthwise_conv2d_int8(
    x: np.ndarray,
    x_q: QParams,
    w: np.ndarray,
    w_scale: np.ndarray,
    bias: np.ndarray | None,
    out_q: QParams,
    stride: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
    rounding: Rounding = DEFAULT_ROUNDING,
) -> np.ndarray:
    mult = w.shape[3] // x.shape[3]
    xs = x.astype(np.int64) - x_q.zero_point
    win = np.repeat(_windows(xs, w.shape[1], w.shape[2], stride, padding, 0), mult, axis=3)
    acc = np.einsum("nhwcij,ijc->nhwc", win, w[0].astype(np.int64))
    return _weighted_output(acc, bias, x_q, w_scale, out_q, activation, rounding)


def pool2d_int8(
    x: np.ndarray,
    kind: str,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    out_q: QParams,
    activation: str = "NONE",
) -> np.ndarray:
    """Pooling keeps the input's quantization (TFLite requires in == out params)."""
    lo, hi = activation_range_int8(activation, out_q)
    if kind == "MAX":
        win = _windows(x.astype(np.int64), *size, stride, padding, np.iinfo(np.int64).min)
        return np.clip(win.max(axis=(4, 5)), lo, hi).astype(np.int8)
    win = _windows(x.astype(np.int64), *size, stride, padding, 0)
    ones = _windows(np.ones(x.shape, np.int64), *size, stride, padding, 0)
    acc, count = win.sum(axis=(4, 5)), ones.sum(axis=(4, 5))
    half = count // 2
    num = np.where(acc > 0, acc + half, acc - half)
    avg = np.sign(num) * (np.abs(num) // count)  # C division truncates toward zero
    return np.clip(avg, lo, hi).astype(np.int8)


def softmax_int8(x: np.ndarray, x_q: QParams, out_q: QParams, beta: float = 1.0) -> np.ndarray:
    """The optimized kernel's float32 exp table over int8 steps, rounded half to even."""
    table = np.exp(np.float32(-x_q.scale * beta) * np.arange(256, dtype=np.float32))
    steps = x.max(axis=-1, keepdims=True).astype(np.int32) - x.astype(np.int32)
    e = table[steps].astype(np.float32)
    inv = np.float32(1.0) / (
        e.sum(axis=-1, keepdims=True, dtype=np.float32) * np.float32(out_q.scale)
    )
    out = np.rint(e * inv).astype(np.int32) + out_q.zero_point
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8)
