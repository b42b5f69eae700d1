"""The reference firmware's network as C: layer table, int8 weights, int32 biases, and the
fixed-point multipliers, from the project's own trained model.

Generated at build time from the task's cached model (``edgeperf.tasks.training``), never
committed and never downloaded. Every number the C computes with is derived here by the same
functions the numpy reference uses (``reference_ops.quantize_multiplier``,
``activation_range_int8``, the softmax's float32 exp table), so the firmware only adds and
multiplies integers in the reference's order. Before writing, the network is checked to be
the one the task's -int8.tflite was written from (``to_tflite`` of it equals the file's
bytes), and the file's SHA-256 is written into the source: the firmware's weights are the
.tflite's.

The model descriptor also says how the board talks about the model, as MLPerf Tiny's reference
for its id does (``protocol.TINY_IO``): ic01 takes the int8 input offset by 128 and prints the
dequantized output vector with 3 decimals; ad01 takes float32 inputs it quantizes itself and
prints the mean squared reconstruction error (see th_port.c and emulated_dut.ad01_score).

``python -m edgeperf_firmware.gen_weights [ic-digits|ad-synthetic] > model.c``
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeperf import errors
from edgeperf.models import reference_ops as ops
from edgeperf.models.network import (
    Conv,
    Dense,
    Depthwise,
    Network,
    Pool,
    Reshape,
    Softmax,
    to_tflite,
)
from edgeperf_firmware.protocol import TINY_IO

# which task becomes which MLPerf Tiny model id (m-model-[...])
MODEL_IDS = {"ic-digits": "ic01", "ad-synthetic": "ad01"}
ARENA_MAX = 4096  # nn.c's activation buffers (bytes each)
INPUT_MAX = 4096  # th_port.c's input tensor (int8 values)
FLOAT_INPUT_MAX = 1024  # th_port.c's float32 input (values; 4 bytes each)
OUTPUT_MAX = 256  # th_port.c's output tensor
DB_MAX = 96 * 96 * 3  # ee.h's MAX_DB_INPUT_SIZE: the most bytes a 'db load' takes


class GenerateError(errors.EdgeperfError, ValueError):
    """The network cannot be expressed in the firmware's layer table; names what does not fit."""


@dataclass(frozen=True)
class Generated:
    source: str  # model.c
    task: str
    model_id: str
    tflite_sha256: str
    input_size: int
    output_size: int


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    fmt = "0x%08xu" if ctype == "uint32_t" else "%d"
    rows = [", ".join(fmt % v for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"


def _f32_bits(v: float | np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float32).view(np.uint32)


def _multipliers(x_q: ops.QParams, w_scale: np.ndarray, out_q: ops.QParams) -> tuple[list, list]:
    """Per-channel (Q0.31, shift) as reference_ops._weighted_output derives them."""
    real = x_q.scale * np.asarray(w_scale, np.float64) / out_q.scale
    pairs = [ops.quantize_multiplier(float(m)) for m in np.atleast_1d(real)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def network_source(net: Network, model_id: str, description: str) -> tuple[str, int, int]:
    """(C source defining NN_MODEL, input size, output size) for an int8 network."""
    if model_id not in TINY_IO:
        raise GenerateError(f"model id {model_id!r}: the firmware speaks "
                            f"{', '.join(TINY_IO)}")
    io = TINY_IO[model_id]
    if not net.quantized:
        raise GenerateError("the firmware runs int8 networks; quantize the network first")
    shape = tuple(net.input_shape[1:])  # (h, w, c) or (n,)
    x_q = net.input_q
    arrays: list[str] = []
    layers: list[str] = []
    for i, (layer, p) in enumerate(zip(net.layers, net.int8, strict=True)):
        f = {"op": "", "kh": 1, "kw": 1, "sh": 1, "sw": 1, "pad_t": 0, "pad_l": 0,
             "multiplier": 1, "in_zp": x_q.zero_point, "out_zp": p.out.zero_point,
             "lo": -128, "hi": 127}
        if isinstance(layer, Reshape):
            shape = tuple(layer.shape[1:])
            x_q = p.out
            continue
        if isinstance(layer, (Conv, Depthwise, Pool)):
            if len(shape) != 3:
                raise GenerateError(f"layer {i}: {type(layer).__name__} needs an NHWC input")
            ih, iw, ic = shape
            if isinstance(layer, Pool):
                kh, kw = layer.size
            else:
                kh, kw = layer.w.shape[1], layer.w.shape[2]
            oh, f["pad_t"], _ = ops.output_size(ih, kh, layer.stride[0], layer.padding)
            ow, f["pad_l"], _ = ops.output_size(iw, kw, layer.stride[1], layer.padding)
            oc = layer.w.shape[0] if isinstance(layer, Conv) else \
                layer.w.shape[3] if isinstance(layer, Depthwise) else ic
            f.update(kh=kh, kw=kw, sh=layer.stride[0], sw=layer.stride[1], ih=ih, iw=iw,
                     ic=ic, oh=oh, ow=ow, oc=oc)
            shape = (oh, ow, oc)
        elif isinstance(layer, (Dense, Softmax)):
            n_in = int(np.prod(shape))
            oc = layer.w.shape[0] if isinstance(layer, Dense) else n_in
            f.update(ih=1, iw=1, ic=n_in, oh=1, ow=1, oc=oc)
            shape = (oc,)
        else:
            raise GenerateError(f"layer {i}: {type(layer).__name__} has no firmware kernel")
        name = f"L{i}"
        if isinstance(layer, (Conv, Depthwise, Dense)):
            f["op"] = {Conv: "NN_CONV", Depthwise: "NN_DEPTHWISE",
                       Dense: "NN_FULLY_CONNECTED"}[type(layer)]
            if isinstance(layer, Depthwise):
                f["multiplier"] = f["oc"] // f["ic"]
            f["lo"], f["hi"] = ops.activation_range_int8(layer.activation, p.out)
            mult, shift = _multipliers(x_q, p.w_scale, p.out)
            arrays += [_c_array("int8_t", f"{name}_w", p.w),
                       _c_array("int32_t", f"{name}_b", p.bias),
                       _c_array("int32_t", f"{name}_m", np.array(mult, np.int64)),
                       _c_array("int8_t", f"{name}_s", np.array(shift, np.int64))]
            refs = f".w = {name}_w, .bias = {name}_b, .mult = {name}_m, .shift = {name}_s"
        elif isinstance(layer, Pool):
            f["op"] = "NN_MAX_POOL" if layer.kind == "MAX" else "NN_AVERAGE_POOL"
            refs = ""
        else:  # Softmax: the exp table reference_ops.softmax_int8 builds, as float32 bits
            f["op"] = "NN_SOFTMAX"
            if f["oc"] > 256:
                raise GenerateError(f"layer {i}: the firmware's softmax takes at most 256 values")
            table = np.exp(np.float32(-x_q.scale * layer.beta) * np.arange(256, dtype=np.float32))
            arrays.append(_c_array("uint32_t", f"{name}_exp", _f32_bits(table), 8))
            refs = (f".exp_table = {name}_exp, "
                    f".out_scale_bits = 0x{int(_f32_bits(p.out.scale)):08x}u")
        if int(np.prod(shape)) > ARENA_MAX:
            raise GenerateError(f"layer {i}: its output ({int(np.prod(shape))} bytes) exceeds "
                                f"the firmware's {ARENA_MAX}-byte activation buffers")
        fields = ", ".join(f".{k} = {v}" for k, v in f.items())
        layers.append(f"    {{{fields}{', ' + refs if refs else ''}}},")
        x_q = p.out
    input_size, output_size = int(np.prod(net.input_shape)), int(np.prod(shape))
    if input_size > INPUT_MAX:
        raise GenerateError(f"the input ({input_size} bytes) exceeds the firmware's {INPUT_MAX}")
    if output_size > OUTPUT_MAX:
        raise GenerateError(f"the output ({output_size} bytes) exceeds the firmware's "
                            f"{OUTPUT_MAX}")
    if io.input_kind == "float32" and input_size > min(FLOAT_INPUT_MAX, DB_MAX // 4):
        raise GenerateError(f"the float32 input ({input_size} values) exceeds the firmware's "
                            f"{FLOAT_INPUT_MAX}")
    if io.result_kind == "mse" and output_size != input_size:
        raise GenerateError(f"{model_id} scores the reconstruction error: the output "
                            f"({output_size} values) must be the input's size ({input_size})")
    out_q = net.int8[-1].out
    kinds = {"int8-offset": "NN_INPUT_INT8_OFFSET", "float32": "NN_INPUT_FLOAT32",
             "vector": "NN_RESULT_VECTOR", "mse": "NN_RESULT_MSE"}
    source = (
        '#include "nn.h"\n\n'
        + "\n".join(arrays)
        + f"\nstatic const nn_layer_t LAYERS[{len(layers)}] = {{\n" + "\n".join(layers) + "\n};\n\n"
        + "const nn_model_t NN_MODEL = {\n"
        + f'    .id = "{model_id}",\n    .description = "{description}",\n'
        + f"    .input_size = {input_size}, .output_size = {output_size},\n"
        + f"    .arena_size = {ARENA_MAX}, .n_layers = {len(layers)},\n"
        + f"    .output_zp = {out_q.zero_point}, "
        + f".output_scale_bits = 0x{int(_f32_bits(out_q.scale)):08x}u,\n"
        + f"    .input_kind = {kinds[io.input_kind]}, .result_kind = {kinds[io.result_kind]}, "
        + f".result_decimals = {io.decimals},\n"
        + f"    .input_zp = {net.input_q.zero_point}, "
        + f".input_scale_bits = 0x{int(_f32_bits(net.input_q.scale)):08x}u,\n"
        + f"    .uart_baud = {io.baud}u,\n"
        + "    .layers = LAYERS,\n};\n")
    return source, input_size, output_size


def generate(task: str = "ic-digits") -> Generated:
    """model.c for a built-in task's int8 model, checked against the task's .tflite file."""
    from edgeperf.tasks import training

    recipes = {"ic-digits": training.IC_DIGITS, "ad-synthetic": training.AD_SYNTHETIC}
    if task not in recipes:
        raise GenerateError(f"no firmware model for task {task!r}; the firmware has "
                            f"{', '.join(recipes)}")
    t = training.build(recipes[task])
    tflite = Path(t.model_path("int8")).read_bytes()
    if to_tflite(t.int8_net, f"edgeperf task {t.name} int8") != tflite:
        raise GenerateError(f"the int8 network does not rewrite to {t.model_path('int8')}; the "
                            f"task cache is stale or damaged: delete {t.directory} and rebuild")
    digest = hashlib.sha256(tflite).hexdigest()
    source, n_in, n_out = network_source(
        t.int8_net, MODEL_IDS[task], f"edgeperf {task} int8 {digest[:16]}")
    header = (f"/* Generated by firmware_bridge/gen_weights.py from the {task} int8 model:\n"
              f" * recipe {t.meta['key']}, {t.model_path('int8').name} sha256 {digest}.\n"
              " * Do not edit; rebuilt with the firmware. */\n")
    return Generated(header + source, task, MODEL_IDS[task], digest, n_in, n_out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.stdout.write(generate(*argv[:1]).source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
