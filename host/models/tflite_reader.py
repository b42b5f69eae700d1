"""Read what the host needs from any .tflite file, without a runtime and without TensorFlow.

Before a model goes to a device, the host lists the operators it uses (a model needing a
custom or TensorFlow "Flex" op is refused there, naming the ops, rather than failing on the
device with a runtime's less helpful message) and its input and output tensors (shape,
dynamic dimensions, type, quantization), which a dataset is fitted to.

The reader walks the flatbuffer by raw offsets and the field slots of schema.fbs; it reads
only, and bounds-checks every offset so that a damaged file gives a TfliteReadError.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass

from edgeperf.models.tflite_schema import (
    FILE_IDENTIFIER,
    ModelField,
    OperatorCodeField,
    OperatorField,
    QuantizationField,
    SubGraphField,
    TensorField,
)

CUSTOM = 32
FLEX_PREFIX = "Flex"

# BuiltinOperator names by code, as schema.fbs numbers them.
_NAMES = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM
CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND
SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM
CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE
SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW
ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK
REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS
WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG
REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL
BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD
UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR
RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE STABLEHLO_MULTIPLY
STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE
STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL
STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL
STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER
STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT STABLEHLO_SUBTRACT STABLEHLO_TANH
STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT STABLEHLO_DYNAMIC_SLICE
STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA STABLEHLO_DOT_GENERAL
STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE STABLEHLO_GATHER STABLEHLO_TRANSPOSE
DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT
STABLEHLO_CBRT STABLEHLO_CASE
"""
BUILTIN_OPERATOR_NAMES: dict[int, str] = dict(enumerate(_NAMES.split()))

# TensorType names by code (schema.fbs), as numpy spells the ones it has.
TENSOR_TYPES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}


class TfliteReadError(ValueError):
    """The bytes are not a readable .tflite flatbuffer."""


@dataclass(frozen=True)
class OperatorCode:
    builtin_code: int
    custom_code: str | None
    version: int

    @property
    def name(self) -> str:
        if self.builtin_code == CUSTOM:
            return self.custom_code or "CUSTOM"
        return BUILTIN_OPERATOR_NAMES.get(self.builtin_code, f"BUILTIN_{self.builtin_code}")

    @property
    def is_custom(self) -> bool:
        return self.builtin_code == CUSTOM

    @property
    def is_flex(self) -> bool:
        """A TensorFlow op carried as a custom op (needs the Flex delegate)."""
        return self.is_custom and (self.custom_code or "").startswith(FLEX_PREFIX)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 where a dimension is dynamic
    dtype: str
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def quantization(self) -> tuple[float, int]:
        """Per-tensor (scale, zero_point) as runtimes report it; (0.0, 0) when not quantized."""
        if len(self.scale) == 1:
            return self.scale[0], self.zero_point[0] if self.zero_point else 0
        return 0.0, 0

    @property
    def dynamic_dims(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape_signature) if d < 0)


@dataclass(frozen=True)
class ModelInfo:
    version: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    op_counts: dict[str, int]  # operator name -> number of nodes, over all subgraphs
    inputs: tuple[TensorInfo, ...]  # of the main (first) subgraph
    outputs: tuple[TensorInfo, ...]
    subgraphs: int

    @property
    def custom_ops(self) -> list[str]:
        return sorted({c.name for c in self.operator_codes if c.is_custom and not c.is_flex})

    @property
    def flex_ops(self) -> list[str]:
        return sorted({c.name for c in self.operator_codes if c.is_flex})


class _Buf:
    """Bounds-checked reads of little-endian scalars and flatbuffer tables."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise TfliteReadError(f"offset {pos} is outside the {len(self.data)}-byte file")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field(self, table: int, slot: int) -> int | None:
        vtable = table - self.unpack("<i", table)
        vt_size = self.unpack("<H", vtable)
        if 4 + 2 * slot >= vt_size:
            return None
        off = self.unpack("<H", vtable + 4 + 2 * slot)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.unpack("<I", pos)

    def scalar(self, table: int, slot: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self.field(table, slot)
        return default if pos is None else self.unpack(fmt, pos)

    def vector(self, table: int, slot: int) -> tuple[int, int]:
        """(start of the elements, count); (0, 0) when the field is absent."""
        pos = self.field(table, slot)
        if pos is None:
            return 0, 0
        start = self.deref(pos)
        n = self.unpack("<I", start)
        return start + 4, n

    def tables(self, table: int, slot: int) -> list[int]:
        start, n = self.vector(table, slot)
        return [self.deref(start + 4 * i) for i in range(n)]

    def numbers(self, table: int, slot: int, fmt: str) -> tuple:
        start, n = self.vector(table, slot)
        size = struct.calcsize(fmt)
        return tuple(self.unpack(fmt, start + size * i) for i in range(n))

    def string(self, table: int, slot: int) -> str | None:
        pos = self.field(table, slot)
        if pos is None:
            return None
        start = self.deref(pos)
        n = self.unpack("<I", start)
        if start + 4 + n > len(self.data):
            raise TfliteReadError("a string runs past the end of the file")
        return self.data[start + 4:start + 4 + n].decode("utf-8", "replace")


def _tensor(b: _Buf, t: int) -> TensorInfo:
    shape = tuple(int(d) for d in b.numbers(t, TensorField.SHAPE, "<i"))
    signature = tuple(int(d) for d in b.numbers(t, TensorField.SHAPE_SIGNATURE, "<i")) or shape
    type_code = int(b.scalar(t, TensorField.TYPE, "<b"))
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    dim = 0
    q = b.field(t, TensorField.QUANTIZATION)
    if q is not None:
        qt = b.deref(q)
        scale = tuple(float(s) for s in b.numbers(qt, QuantizationField.SCALE, "<f"))
        zero_point = tuple(int(z) for z in b.numbers(qt, QuantizationField.ZERO_POINT, "<q"))
        dim = int(b.scalar(qt, QuantizationField.QUANTIZED_DIMENSION, "<i"))
    return TensorInfo(b.string(t, TensorField.NAME) or "", shape, signature,
                      TENSOR_TYPES.get(type_code, f"type{type_code}"), scale, zero_point, dim)


def read_model(data: bytes) -> ModelInfo:
    """Operators, inputs and outputs of a .tflite file's bytes."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise TfliteReadError("not a TFLite flatbuffer (no 'TFL3' file identifier)")
    b = _Buf(bytes(data))
    try:
        model = b.deref(0)
        codes = []
        for c in b.tables(model, ModelField.OPERATOR_CODES):
            deprecated = int(b.scalar(c, OperatorCodeField.DEPRECATED_BUILTIN_CODE, "<b"))
            builtin = int(b.scalar(c, OperatorCodeField.BUILTIN_CODE, "<i"))
            # schema.fbs: the real code is the larger of the two (old files set only the first)
            codes.append(OperatorCode(max(deprecated, builtin),
                                      b.string(c, OperatorCodeField.CUSTOM_CODE),
                                      int(b.scalar(c, OperatorCodeField.VERSION, "<i", 1))))
        counts: Counter[str] = Counter()
        subgraphs = b.tables(model, ModelField.SUBGRAPHS)
        for sg in subgraphs:
            for op in b.tables(sg, SubGraphField.OPERATORS):
                index = int(b.scalar(op, OperatorField.OPCODE_INDEX, "<I"))
                if index >= len(codes):
                    raise TfliteReadError(f"an operator uses opcode {index} of {len(codes)}")
                counts[codes[index].name] += 1
        inputs: tuple[TensorInfo, ...] = ()
        outputs: tuple[TensorInfo, ...] = ()
        if subgraphs:
            main = subgraphs[0]
            tensors = b.tables(main, SubGraphField.TENSORS)

            def pick(slot: int) -> tuple[TensorInfo, ...]:
                idx = b.numbers(main, slot, "<i")
                if any(not 0 <= i < len(tensors) for i in idx):
                    raise TfliteReadError("a subgraph input or output names a missing tensor")
                return tuple(_tensor(b, tensors[i]) for i in idx)

            inputs, outputs = pick(SubGraphField.INPUTS), pick(SubGraphField.OUTPUTS)
        return ModelInfo(int(b.scalar(model, ModelField.VERSION, "<I")),
                         b.string(model, ModelField.DESCRIPTION) or "", tuple(codes),
                         dict(sorted(counts.items())), inputs, outputs, len(subgraphs))
    except (struct.error, UnicodeDecodeError, RecursionError) as exc:
        raise TfliteReadError(f"damaged TFLite flatbuffer: {exc}") from None


def unsupported_ops_message(info: ModelInfo) -> str | None:
    """Why a stock runtime cannot run the model (custom or Flex ops), or None if it can."""
    parts = []
    if info.flex_ops:
        parts.append("TensorFlow (Flex) ops " + ", ".join(info.flex_ops))
    if info.custom_ops:
        parts.append("custom ops " + ", ".join(info.custom_ops))
    if not parts:
        return None
    return ("the model needs " + " and ".join(parts) + ", which a stock TFLite runtime does "
            "not have; re-export it with builtin ops only (TFLiteConverter with "
            "target_spec.supported_ops = [TFLITE_BUILTINS] or TFLITE_BUILTINS_INT8)")


__all__ = ["BUILTIN_OPERATOR_NAMES", "ModelInfo", "OperatorCode", "TensorInfo",
           "TfliteReadError", "read_model", "unsupported_ops_message"]
