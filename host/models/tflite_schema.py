"""The slice of the TFLite flatbuffer schema (schema.fbs, version 3) that edgeperf writes.

Only numbers live here: enum values, table field slots and how each supported operator
encodes its options. The writer (tflite_writer.py) builds tables from these with a plain
``flatbuffers.Builder``; no generated code is needed, so nothing here imports TensorFlow.
Values follow the public schema.fbs; a field's slot is its position in its table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
BUFFER_ALIGNMENT = 16  # schema.fbs: Buffer.data (force_align: 16)


class TensorType(enum.IntEnum):
    FLOAT32 = 0
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    INT16 = 7
    INT8 = 9


NUMPY_DTYPES: dict[TensorType, np.dtype] = {
    TensorType.FLOAT32: np.dtype("<f4"),
    TensorType.INT32: np.dtype("<i4"),
    TensorType.UINT8: np.dtype("u1"),
    TensorType.INT64: np.dtype("<i8"),
    TensorType.INT16: np.dtype("<i2"),
    TensorType.INT8: np.dtype("i1"),
}


class BuiltinOperator(enum.IntEnum):
    AVERAGE_POOL_2D = 1
    CONV_2D = 3
    DEPTHWISE_CONV_2D = 4
    FULLY_CONNECTED = 9
    MAX_POOL_2D = 17
    RELU = 19
    RELU6 = 21
    RESHAPE = 22
    SOFTMAX = 25
    CUSTOM = 32  # a user op named by OperatorCode.custom_code (runtimes need it registered)


class BuiltinOptions(enum.IntEnum):
    """Tags of the Operator.builtin_options union."""

    NONE = 0
    Conv2DOptions = 1
    DepthwiseConv2DOptions = 2
    Pool2DOptions = 5
    FullyConnectedOptions = 8
    SoftmaxOptions = 9
    ReshapeOptions = 17


class Activation(enum.IntEnum):
    """ActivationFunctionType: the activation an op fuses into its output."""

    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3


class Padding(enum.IntEnum):
    SAME = 0
    VALID = 1


# Field slots, table by table (position of the field in schema.fbs).
class ModelField(enum.IntEnum):
    VERSION = 0
    OPERATOR_CODES = 1
    SUBGRAPHS = 2
    DESCRIPTION = 3
    BUFFERS = 4


class OperatorCodeField(enum.IntEnum):
    DEPRECATED_BUILTIN_CODE = 0
    CUSTOM_CODE = 1
    VERSION = 2
    BUILTIN_CODE = 3


class SubGraphField(enum.IntEnum):
    TENSORS = 0
    INPUTS = 1
    OUTPUTS = 2
    OPERATORS = 3
    NAME = 4


class TensorField(enum.IntEnum):
    SHAPE = 0
    TYPE = 1
    BUFFER = 2
    NAME = 3
    QUANTIZATION = 4
    IS_VARIABLE = 5
    SPARSITY = 6
    SHAPE_SIGNATURE = 7  # -1 marks a dynamic dimension


class QuantizationField(enum.IntEnum):
    MIN = 0
    MAX = 1
    SCALE = 2
    ZERO_POINT = 3
    DETAILS_TYPE = 4
    DETAILS = 5
    QUANTIZED_DIMENSION = 6


class OperatorField(enum.IntEnum):
    OPCODE_INDEX = 0
    INPUTS = 1
    OUTPUTS = 2
    BUILTIN_OPTIONS_TYPE = 3
    BUILTIN_OPTIONS = 4


class BufferField(enum.IntEnum):
    DATA = 0


# Scalar kinds an options field can have; the writer maps each to a Prepend*Slot call.
BYTE, INT32, FLOAT32, BOOL, INT32_VECTOR = "byte", "int32", "float32", "bool", "int32[]"


@dataclass(frozen=True)
class OptionField:
    """One field of an options table: its key in ``options``, slot, kind and schema default."""

    key: str
    slot: int
    kind: str
    default: float | int | bool | None = 0


@dataclass(frozen=True)
class OptionsTable:
    tag: BuiltinOptions
    fields: tuple[OptionField, ...]


_CONV = OptionsTable(
    BuiltinOptions.Conv2DOptions,
    (
        OptionField("padding", 0, BYTE),
        OptionField("stride_w", 1, INT32),
        OptionField("stride_h", 2, INT32),
        OptionField("fused_activation_function", 3, BYTE),
        OptionField("dilation_w_factor", 4, INT32, 1),
        OptionField("dilation_h_factor", 5, INT32, 1),
    ),
)
_DEPTHWISE = OptionsTable(
    BuiltinOptions.DepthwiseConv2DOptions,
    (
        OptionField("padding", 0, BYTE),
        OptionField("stride_w", 1, INT32),
        OptionField("stride_h", 2, INT32),
        OptionField("depth_multiplier", 3, INT32),
        OptionField("fused_activation_function", 4, BYTE),
        OptionField("dilation_w_factor", 5, INT32, 1),
        OptionField("dilation_h_factor", 6, INT32, 1),
    ),
)
_POOL = OptionsTable(
    BuiltinOptions.Pool2DOptions,
    (
        OptionField("padding", 0, BYTE),
        OptionField("stride_w", 1, INT32),
        OptionField("stride_h", 2, INT32),
        OptionField("filter_width", 3, INT32),
        OptionField("filter_height", 4, INT32),
        OptionField("fused_activation_function", 5, BYTE),
    ),
)

OPTIONS_TABLES: dict[BuiltinOperator, OptionsTable | None] = {
    BuiltinOperator.CONV_2D: _CONV,
    BuiltinOperator.DEPTHWISE_CONV_2D: _DEPTHWISE,
    BuiltinOperator.AVERAGE_POOL_2D: _POOL,
    BuiltinOperator.MAX_POOL_2D: _POOL,
    BuiltinOperator.FULLY_CONNECTED: OptionsTable(
        BuiltinOptions.FullyConnectedOptions,
        (
            OptionField("fused_activation_function", 0, BYTE),
            OptionField("weights_format", 1, BYTE),
            OptionField("keep_num_dims", 2, BOOL, False),
        ),
    ),
    BuiltinOperator.SOFTMAX: OptionsTable(
        BuiltinOptions.SoftmaxOptions, (OptionField("beta", 0, FLOAT32, 0.0),)
    ),
    BuiltinOperator.RESHAPE: OptionsTable(
        BuiltinOptions.ReshapeOptions, (OptionField("new_shape", 0, INT32_VECTOR, None),)
    ),
    BuiltinOperator.RELU: None,
    BuiltinOperator.RELU6: None,
    BuiltinOperator.CUSTOM: None,  # custom ops carry opaque custom_options, never written here
}


def operator_version(op: BuiltinOperator, input_type: TensorType) -> int:
    """The op version TFLite's converter records, so runtimes pick the right kernel rules.

    Float kernels are version 1; int8 variants arrived later (FC 4, CONV/DEPTHWISE 3,
    SOFTMAX/POOL/RELU 2), and a runtime refuses a model whose version it does not know.
    """
    if input_type != TensorType.INT8:
        return 1
    return {
        BuiltinOperator.FULLY_CONNECTED: 4,
        BuiltinOperator.CONV_2D: 3,
        BuiltinOperator.DEPTHWISE_CONV_2D: 3,
    }.get(op, 2 if op != BuiltinOperator.RESHAPE else 1)
