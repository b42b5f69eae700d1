"""Write .tflite flatbuffers without TensorFlow.

edgeperf ships its own small models (builtin.py) so a benchmark never downloads one and
every run can be traced to a byte-identical file. This module builds the flatbuffer by
hand with ``flatbuffers.Builder`` against the field numbers in tflite_schema.py.

    mb = ModelBuilder()
    x = mb.add_tensor("x", [1, 4], "float32")
    w = mb.add_constant("w", np.ones((2, 4), np.float32))
    y = mb.add_tensor("y", [1, 2], "float32")
    mb.add_operator("FULLY_CONNECTED", [x, w, -1], [y], {"fused_activation_function": "RELU"})
    mb.set_inputs([x]); mb.set_outputs([y])
    blob = mb.to_bytes()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np

from edgeperf.models.tflite_schema import (
    BOOL,
    BUFFER_ALIGNMENT,
    BYTE,
    FILE_IDENTIFIER,
    FLOAT32,
    INT32,
    INT32_VECTOR,
    NUMPY_DTYPES,
    OPTIONS_TABLES,
    SCHEMA_VERSION,
    Activation,
    BufferField,
    BuiltinOperator,
    BuiltinOptions,
    ModelField,
    OperatorCodeField,
    OperatorField,
    Padding,
    QuantizationField,
    SubGraphField,
    TensorField,
    TensorType,
    operator_version,
)

__all__ = ["ModelBuilder", "Quantization", "TensorType", "BuiltinOperator", "Activation", "Padding"]

OPTIONAL_INPUT = -1  # TFLite's marker for an omitted operator input (e.g. no bias)
_MAX_DEPRECATED_CODE = 127  # PLACEHOLDER_FOR_GREATER_OP_CODES


@dataclass(frozen=True)
class Quantization:
    """Affine quantization real = scale * (q - zero_point), per tensor or per channel.

    Per-channel (several scales) applies along ``quantized_dimension`` of the tensor, as
    TFLite uses for weights: dimension 0 for FC [out, in] and CONV [out, h, w, in],
    dimension 3 for DEPTHWISE [1, h, w, out].
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(s) for s in np.atleast_1d(self.scale)))
        object.__setattr__(
            self, "zero_point", tuple(int(z) for z in np.atleast_1d(self.zero_point))
        )
        if len(self.scale) != len(self.zero_point) or not self.scale:
            raise ValueError(
                f"Quantization: {len(self.scale)} scales but {len(self.zero_point)} zero points;"
                " give one of each per channel"
            )

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: TensorType
    buffer: int
    quantization: Quantization | None
    shape_signature: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Operator:
    op: BuiltinOperator
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any]
    custom_code: str | None = None


def _tensor_type(dtype: TensorType | str | np.dtype | type) -> TensorType:
    if isinstance(dtype, TensorType):
        return dtype
    if isinstance(dtype, str) and dtype.upper() in TensorType.__members__:
        return TensorType[dtype.upper()]
    try:
        npd = np.dtype(dtype)
    except TypeError:
        npd = None
    for ttype, known in NUMPY_DTYPES.items():
        if npd is not None and known.newbyteorder("=") == npd.newbyteorder("="):
            return ttype
    known_names = ", ".join(t.name.lower() for t in TensorType)
    raise ValueError(f"ModelBuilder: dtype {dtype!r} is not supported; use one of {known_names}")


class ModelBuilder:
    """Collects tensors and operators of one subgraph, then serialises them as TFLite."""

    def __init__(self, description: str = "edgeperf") -> None:
        self.description = description
        self._tensors: list[_Tensor] = []
        self._operators: list[_Operator] = []
        self._buffers: list[bytes] = [b""]  # buffer 0 is the empty one, by convention
        self._inputs: list[int] = []
        self._outputs: list[int] = []

    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: TensorType | str | np.dtype | type,
        data: np.ndarray | None = None,
        quantization: Quantization | None = None,
        shape_signature: Sequence[int] | None = None,
    ) -> int:
        """Add a tensor (a constant when ``data`` is given) and return its index.

        ``shape_signature`` marks dynamic dimensions with -1 (``shape`` then holds the sizes
        a runtime allocates until the tensor is resized), as the converter writes it.
        """
        ttype = _tensor_type(dtype)
        shape = tuple(int(d) for d in shape)
        signature = None
        if shape_signature is not None:
            signature = tuple(int(d) for d in shape_signature)
            if len(signature) != len(shape) or any(
                s != -1 and s != d for s, d in zip(signature, shape, strict=True)
            ):
                raise ValueError(
                    f"ModelBuilder: tensor {name!r}: shape_signature {signature} must have "
                    f"the rank of shape {shape} and -1 or the same size in each dimension"
                )
        buffer = 0
        if data is not None:
            arr = np.asarray(data)
            want = NUMPY_DTYPES[ttype]
            if arr.dtype.newbyteorder("=") != want.newbyteorder("="):
                raise TypeError(
                    f"ModelBuilder: tensor {name!r} is {ttype.name} but its data is "
                    f"{arr.dtype}; pass data.astype(np.{want.name})"
                )
            if arr.shape != shape:
                raise ValueError(
                    f"ModelBuilder: tensor {name!r} has shape {shape} but its data "
                    f"has shape {arr.shape}"
                )
            self._buffers.append(np.ascontiguousarray(arr, dtype=want).tobytes())
            buffer = len(self._buffers) - 1
        if quantization is not None and quantization.per_channel:
            dim = quantization.quantized_dimension
            if not 0 <= dim < len(shape) or shape[dim] != len(quantization.scale):
                raise ValueError(
                    f"ModelBuilder: tensor {name!r} has {len(quantization.scale)} "
                    f"channel scales but dimension {dim} of shape {shape}"
                )
        self._tensors.append(_Tensor(name, shape, ttype, buffer, quantization, signature))
        return len(self._tensors) - 1

    def add_constant(
        self, name: str, data: np.ndarray, quantization: Quantization | None = None
    ) -> int:
        """Add a constant tensor whose shape and type come from ``data``."""
        arr = np.asarray(data)
        return self.add_tensor(name, arr.shape, arr.dtype, arr, quantization)

    def add_operator(
        self,
        op: BuiltinOperator | str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: Mapping[str, Any] | None = None,
        version: int | None = None,
    ) -> int:
        """Add an operator; ``options`` keys are schema field names ("fused_activation_function").

        The version defaults to what the TFLite converter records for the first input's type.
        """
        op = BuiltinOperator[op] if isinstance(op, str) else BuiltinOperator(op)
        self._check_tensors(op.name, inputs, outputs)
        table = OPTIONS_TABLES[op]
        options = dict(options or {})
        known = {f.key for f in table.fields} if table else set()
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"ModelBuilder: {op.name} has no option {unknown}; known: {sorted(known) or 'none'}"
            )
        for key, enum_type in (("fused_activation_function", Activation), ("padding", Padding)):
            if isinstance(options.get(key), str):
                options[key] = enum_type[options[key].upper()]
        if version is None:
            version = operator_version(op, self._tensors[inputs[0]].dtype)
        self._operators.append(_Operator(op, version, tuple(inputs), tuple(outputs), options))
        return len(self._operators) - 1

    def add_custom_operator(
        self, custom_code: str, inputs: Sequence[int], outputs: Sequence[int], version: int = 1
    ) -> int:
        """Add a CUSTOM op named ``custom_code`` ("FlexAddV2" for a TensorFlow op).

        No stock runtime can run such a model without the op registered; edgeperf writes
        them only to check that it refuses them, naming the op.
        """
        if not custom_code:
            raise ValueError("ModelBuilder: a custom operator needs a custom_code")
        self._check_tensors(custom_code, inputs, outputs)
        self._operators.append(_Operator(BuiltinOperator.CUSTOM, version, tuple(inputs),
                                         tuple(outputs), {}, custom_code))
        return len(self._operators) - 1

    def _check_tensors(self, op: str, inputs: Sequence[int], outputs: Sequence[int]) -> None:
        count = len(self._tensors)
        for i in (*inputs, *outputs):
            if not (i == OPTIONAL_INPUT or 0 <= i < count):
                raise IndexError(
                    f"ModelBuilder: {op} refers to tensor {i}, but there are {count} tensors"
                )

    def set_inputs(self, tensors: Sequence[int]) -> None:
        self._inputs = list(tensors)

    def set_outputs(self, tensors: Sequence[int]) -> None:
        self._outputs = list(tensors)

    def to_bytes(self) -> bytes:
        """Serialise; the same calls always give the same bytes (models are sha256-addressed)."""
        if not self._inputs or not self._outputs:
            raise ValueError("ModelBuilder: call set_inputs() and set_outputs() before to_bytes()")
        b = flatbuffers.Builder(1024 + sum(len(d) + BUFFER_ALIGNMENT for d in self._buffers))
        buffers = [_write_buffer(b, data) for data in self._buffers]
        tensors = [_write_tensor(b, t) for t in self._tensors]
        codes: dict[tuple[BuiltinOperator, int, str | None], int] = {}
        for o in self._operators:
            codes.setdefault((o.op, o.version, o.custom_code), len(codes))
        operators = [
            _write_operator(b, o, codes[(o.op, o.version, o.custom_code)]) for o in self._operators
        ]
        code_tables = [_write_operator_code(b, *key) for key in codes]

        tensors_vec = _offset_vector(b, tensors)
        inputs_vec = _int32_vector(b, self._inputs)
        outputs_vec = _int32_vector(b, self._outputs)
        operators_vec = _offset_vector(b, operators)
        name = b.CreateString("main")
        b.StartObject(len(SubGraphField))
        b.PrependUOffsetTRelativeSlot(SubGraphField.TENSORS, tensors_vec, 0)
        b.PrependUOffsetTRelativeSlot(SubGraphField.INPUTS, inputs_vec, 0)
        b.PrependUOffsetTRelativeSlot(SubGraphField.OUTPUTS, outputs_vec, 0)
        b.PrependUOffsetTRelativeSlot(SubGraphField.OPERATORS, operators_vec, 0)
        b.PrependUOffsetTRelativeSlot(SubGraphField.NAME, name, 0)
        subgraph = b.EndObject()

        codes_vec = _offset_vector(b, code_tables)
        subgraphs_vec = _offset_vector(b, [subgraph])
        description = b.CreateString(self.description)
        buffers_vec = _offset_vector(b, buffers)
        b.StartObject(len(ModelField))
        b.PrependUint32Slot(ModelField.VERSION, SCHEMA_VERSION, 0)
        b.PrependUOffsetTRelativeSlot(ModelField.OPERATOR_CODES, codes_vec, 0)
        b.PrependUOffsetTRelativeSlot(ModelField.SUBGRAPHS, subgraphs_vec, 0)
        b.PrependUOffsetTRelativeSlot(ModelField.DESCRIPTION, description, 0)
        b.PrependUOffsetTRelativeSlot(ModelField.BUFFERS, buffers_vec, 0)
        b.Finish(b.EndObject(), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())


def _offset_vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _int32_vector(b: flatbuffers.Builder, values: Sequence[int]) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype="<i4"))


def _write_buffer(b: flatbuffers.Builder, data: bytes) -> int:
    data_vec = None
    if data:
        # Align so the vector's payload (not its length prefix) starts on 16 bytes: runtimes
        # map weights in place and SIMD kernels read them with aligned loads.
        b.Prep(BUFFER_ALIGNMENT, len(data))
        data_vec = b.CreateByteVector(data)
    b.StartObject(len(BufferField))
    if data_vec is not None:
        b.PrependUOffsetTRelativeSlot(BufferField.DATA, data_vec, 0)
    return b.EndObject()


def _write_quantization(b: flatbuffers.Builder, q: Quantization) -> int:
    scale = b.CreateNumpyVector(np.asarray(q.scale, dtype="<f4"))
    zero_point = b.CreateNumpyVector(np.asarray(q.zero_point, dtype="<i8"))
    b.StartObject(len(QuantizationField))
    b.PrependUOffsetTRelativeSlot(QuantizationField.SCALE, scale, 0)
    b.PrependUOffsetTRelativeSlot(QuantizationField.ZERO_POINT, zero_point, 0)
    b.PrependInt32Slot(QuantizationField.QUANTIZED_DIMENSION, q.quantized_dimension, 0)
    return b.EndObject()


def _write_tensor(b: flatbuffers.Builder, t: _Tensor) -> int:
    shape = _int32_vector(b, t.shape)
    signature = _int32_vector(b, t.shape_signature) if t.shape_signature is not None else None
    name = b.CreateString(t.name)
    quant = _write_quantization(b, t.quantization) if t.quantization else None
    b.StartObject(len(TensorField))
    b.PrependUOffsetTRelativeSlot(TensorField.SHAPE, shape, 0)
    if signature is not None:
        b.PrependUOffsetTRelativeSlot(TensorField.SHAPE_SIGNATURE, signature, 0)
    b.PrependInt8Slot(TensorField.TYPE, int(t.dtype), 0)
    b.PrependUint32Slot(TensorField.BUFFER, t.buffer, 0)
    b.PrependUOffsetTRelativeSlot(TensorField.NAME, name, 0)
    if quant is not None:
        b.PrependUOffsetTRelativeSlot(TensorField.QUANTIZATION, quant, 0)
    return b.EndObject()


def _write_options(b: flatbuffers.Builder, o: _Operator) -> tuple[BuiltinOptions, int | None]:
    table = OPTIONS_TABLES[o.op]
    if table is None:
        return BuiltinOptions.NONE, None
    vectors = {
        f.key: _int32_vector(b, o.options[f.key])
        for f in table.fields
        if f.kind == INT32_VECTOR and o.options.get(f.key) is not None
    }
    b.StartObject(len(table.fields))
    for f in table.fields:
        value = o.options.get(f.key, f.default)
        if f.kind == INT32_VECTOR:
            if f.key in vectors:
                b.PrependUOffsetTRelativeSlot(f.slot, vectors[f.key], 0)
        elif f.kind == BYTE:
            b.PrependInt8Slot(f.slot, int(value), int(f.default))
        elif f.kind == INT32:
            b.PrependInt32Slot(f.slot, int(value), int(f.default))
        elif f.kind == FLOAT32:
            b.PrependFloat32Slot(f.slot, float(value), float(f.default))
        elif f.kind == BOOL:
            b.PrependBoolSlot(f.slot, bool(value), bool(f.default))
        else:  # pragma: no cover - a schema table with a kind this writer lacks
            raise AssertionError(f"unknown option kind {f.kind}")
    return table.tag, b.EndObject()


def _write_operator(b: flatbuffers.Builder, o: _Operator, opcode_index: int) -> int:
    inputs = _int32_vector(b, o.inputs)
    outputs = _int32_vector(b, o.outputs)
    tag, options = _write_options(b, o)
    b.StartObject(len(OperatorField))
    b.PrependUint32Slot(OperatorField.OPCODE_INDEX, opcode_index, 0)
    b.PrependUOffsetTRelativeSlot(OperatorField.INPUTS, inputs, 0)
    b.PrependUOffsetTRelativeSlot(OperatorField.OUTPUTS, outputs, 0)
    if options is not None:
        b.PrependUint8Slot(OperatorField.BUILTIN_OPTIONS_TYPE, int(tag), 0)
        b.PrependUOffsetTRelativeSlot(OperatorField.BUILTIN_OPTIONS, options, 0)
    return b.EndObject()


def _write_operator_code(
    b: flatbuffers.Builder, op: BuiltinOperator, version: int, custom_code: str | None = None
) -> int:
    custom = b.CreateString(custom_code) if custom_code is not None else None
    b.StartObject(len(OperatorCodeField))
    if custom is not None:
        b.PrependUOffsetTRelativeSlot(OperatorCodeField.CUSTOM_CODE, custom, 0)
    b.PrependInt8Slot(
        OperatorCodeField.DEPRECATED_BUILTIN_CODE, min(int(op), _MAX_DEPRECATED_CODE), 0
    )
    b.PrependInt32Slot(OperatorCodeField.VERSION, version, 1)
    b.PrependInt32Slot(OperatorCodeField.BUILTIN_CODE, int(op), 0)
    return b.EndObject()
