"""A float32 Network as an .onnx model: the reference tasks on the onnx backend.

The graph keeps the TFLite model's interface (NHWC input, the same output), so a task's
dataset and scoring are the same on every backend. Convolutions and pools run in ONNX's
NCHW between a Transpose in and a Transpose out (ONNX Runtime's optimiser folds the pairs);
padding is TFLite's SAME/VALID, written as explicit pads (TFLite puts the odd pixel after);
average pools leave the padding out of the count, as TFLite does. Needs the ``onnx``
package on the host (``pip install onnx``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeperf.errors import RunError
from edgeperf.models.network import Conv, Dense, Depthwise, Network, Pool, Reshape, Softmax
from edgeperf.models.reference_ops import output_size

OPSET = 17
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise RunError("writing a task's model as .onnx needs the onnx package on the host: "
                       "pip install onnx") from None
    return onnx


def to_onnx(net: Network, description: str = "edgeperf") -> bytes:
    """The .onnx bytes of a float32 network (an int8 one is refused: the int8 task variants
    are TFLite's)."""
    if net.quantized:
        raise ValueError("to_onnx: write the float32 network (int8 models stay .tflite)")
    onnx = _onnx()
    h, tp = onnx.helper, onnx.TensorProto
    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def name(stem: str) -> str:
        count[0] += 1
        return f"{stem}_{count[0]}"

    def const(stem: str, value: np.ndarray) -> str:
        n = name(stem)
        inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activate(x: str, activation: str) -> str:
        if activation == "NONE":
            return x
        if activation == "RELU":
            return node("Relu", [x])
        if activation == "RELU6":
            return node("Clip", [x, const("lo", np.float32(0)), const("hi", np.float32(6))])
        raise ValueError(f"to_onnx: activation {activation} is not written")

    def pads(shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
             padding: str) -> tuple[list[int], tuple[int, int]]:
        oh, top, bottom = output_size(shape[1], kernel[0], stride[0], padding)
        ow, left, right = output_size(shape[2], kernel[1], stride[1], padding)
        return [top, left, bottom, right], (oh, ow)

    x = "input"
    shape = tuple(net.input_shape)
    for layer in net.layers:
        if isinstance(layer, Dense):
            x = node("Gemm", [x, const("w", layer.w.astype(np.float32)),
                              const("b", layer.b.astype(np.float32))], transB=1)
            x = activate(x, layer.activation)
            shape = (shape[0], int(layer.w.shape[0]))
        elif isinstance(layer, (Conv, Depthwise)):
            kh, kw = int(layer.w.shape[1]), int(layer.w.shape[2])
            p, (oh, ow) = pads(shape, (kh, kw), layer.stride, layer.padding)
            if isinstance(layer, Conv):
                w, group, cout = layer.w.transpose(0, 3, 1, 2), 1, int(layer.w.shape[0])
            else:  # TFLite [1, kh, kw, in * mult] -> [in * mult, 1, kh, kw], group = in
                w, group = layer.w[0].transpose(2, 0, 1)[:, None], int(shape[3])
                cout = int(layer.w.shape[3])
            t = node("Transpose", [x], perm=NHWC_TO_NCHW)
            t = node("Conv", [t, const("w", w.astype(np.float32)),
                              const("b", layer.b.astype(np.float32))],
                     kernel_shape=[kh, kw], strides=list(layer.stride), pads=p, group=group)
            x = activate(node("Transpose", [t], perm=NCHW_TO_NHWC), layer.activation)
            shape = (shape[0], oh, ow, cout)
        elif isinstance(layer, Pool):
            p, (oh, ow) = pads(shape, layer.size, layer.stride, layer.padding)
            t = node("Transpose", [x], perm=NHWC_TO_NCHW)
            attrs: dict[str, Any] = dict(kernel_shape=list(layer.size),
                                         strides=list(layer.stride), pads=p)
            if layer.kind == "MAX":
                t = node("MaxPool", [t], **attrs)
            else:
                t = node("AveragePool", [t], count_include_pad=0, **attrs)
            x = node("Transpose", [t], perm=NCHW_TO_NHWC)
            shape = (shape[0], oh, ow, shape[3])
        elif isinstance(layer, Reshape):
            x = node("Reshape", [x, const("shape", np.asarray(layer.shape, np.int64))])
            shape = tuple(layer.shape)
        elif isinstance(layer, Softmax):
            if layer.beta != 1.0:
                x = node("Mul", [x, const("beta", np.float32(layer.beta))])
            x = node("Softmax", [x], axis=-1)
        else:
            raise ValueError(f"to_onnx: layer {type(layer).__name__} is not written")
    nodes.append(h.make_node("Identity", [x], ["output"], name="output"))
    graph = h.make_graph(nodes, "edgeperf", [h.make_tensor_value_info(
        "input", tp.FLOAT, list(net.input_shape))],
        [h.make_tensor_value_info("output", tp.FLOAT, list(shape))], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)],
                         producer_name="edgeperf", doc_string=description)
    model.ir_version = 8  # what ONNX Runtime 1.16 and newer read
    onnx.checker.check_model(model)
    return model.SerializeToString()
