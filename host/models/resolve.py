"""A model spec (``builtin:NAME``, ``synthetic:KIND``, a .tflite path) -> the bytes to push.

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
    backend: str  # "tflite" | "synthetic"
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
        raise RunError(f"model file {spec} does not exist; pass a .tflite path, "
                       "builtin:NAME (see 'edgeperf models') or synthetic:null|busy:US|sleep:US")
    if path.is_dir():
        raise RunError(f"model {spec} is a directory; pass a .tflite file")
    data = path.read_bytes()
    try:
        check_tflite_bytes(data)
    except BackendError as exc:
        raise RunError(f"{spec}: {exc}") from None
    _check_builtin_ops(spec, data)
    return ModelRef(spec, "tflite", path.name, data=data)


def _check_builtin_ops(spec: str, data: bytes) -> None:
    """Refuse, before anything is pushed, a model that needs custom or TensorFlow ops."""
    from edgeperf.models.tflite_reader import TfliteReadError, read_model, unsupported_ops_message

    try:
        problem = unsupported_ops_message(read_model(data))
    except TfliteReadError:
        return  # the runtime on the device gives its own word on a file it cannot read
    if problem:
        raise RunError(f"{spec}: {problem}")
