"""A model spec (``builtin:NAME``, ``synthetic:KIND``, a .tflite, .onnx or .pte path) -> the
bytes to push and the backend that runs them.

Everything a model file can be refused for is said here, before a device is involved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgeperf.errors import RunError
from edgeperf_agent.backends import BackendError, check_tflite_bytes


@dataclass
class ModelRef:
    spec: str
    backend: str  # "tflite" | "onnx" | "executorch" | "synthetic"
    name: str
    data: bytes | None = None
    kind: str = ""  # synthetic kind

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None


def resolve_model(spec: str) -> ModelRef:
    if spec.startswith("synthetic:"):
        return ModelRef(spec, "synthetic", spec, kind=spec.split(":", 1)[1])
    if spec.startswith("builtin:"):
        from edgeperf.models.builtin import builtin_model

        name = spec.split(":", 1)[1]
        try:
            return ModelRef(spec, "tflite", spec, data=builtin_model(name))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    path = Path(spec)
    if not path.exists():
        raise RunError(f"model file {spec} does not exist; pass a .tflite, .onnx or .pte path, "
                       "builtin:NAME (see 'edgeperf models') or synthetic:null|busy:US|sleep:US")
    if path.is_dir():
        raise RunError(f"model {spec} is a directory; pass a .tflite, .onnx or .pte file")
    data = path.read_bytes()
    backend = model_format(spec, data)
    if backend == "tflite":
        try:
            check_tflite_bytes(data)
        except BackendError as exc:
            raise RunError(f"{spec}: {exc}") from None
        _check_builtin_ops(spec, data)
    return ModelRef(spec, backend, path.name, data=data)


def model_format(spec: str, data: bytes) -> str:
    """The backend for a model file: by its contents where they say (TFLite's and
    ExecuTorch's flatbuffer identifiers), else by its suffix; a file that is neither is
    refused with what it looks like."""
    ident = bytes(data[4:8])
    suffix = Path(spec).suffix.lower()
    if len(data) < 16:
        raise RunError(f"{spec}: {len(data)} bytes is too short to be a model file")
    if ident == b"TFL3":
        if suffix in (".onnx", ".pte"):
            raise RunError(f"{spec}: the file is a TFLite flatbuffer, not {suffix}; rename it "
                           ".tflite")
        return "tflite"
    if ident[:2] == b"ET" and ident[2:].isdigit():
        return "executorch"
    if suffix == ".onnx":
        if data[:1] != b"\x08":  # ModelProto's ir_version, which exporters write first
            looks = "a zip archive" if data[:2] == b"PK" else "not a protobuf ModelProto"
            raise RunError(f"{spec}: not an ONNX model ({looks}); export it again, or pass "
                           "the .onnx file itself")
        return "onnx"
    if suffix == ".pte":
        raise RunError(f"{spec}: not an ExecuTorch program (file identifier {ident!r}, "
                       "expected ET followed by a version); export it again with "
                       "executorch's to_executorch()")
    if suffix == ".tflite":
        return "tflite"  # check_tflite_bytes names what is wrong with it
    raise RunError(f"{spec}: cannot tell which runtime runs this file; pass a .tflite, "
                   ".onnx or .pte model")


def _check_builtin_ops(spec: str, data: bytes) -> None:
    """Refuse, before anything is pushed, a model that needs custom or TensorFlow ops."""
    from edgeperf.models.tflite_reader import TfliteReadError, read_model, unsupported_ops_message

    try:
        problem = unsupported_ops_message(read_model(data))
    except TfliteReadError:
        return  # the runtime on the device gives its own word on a file it cannot read
    if problem:
        raise RunError(f"{spec}: {problem}")
