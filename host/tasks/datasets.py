"""A task's dataset: inputs and labels, read from .npz and fitted to a model's inputs.

A user dataset is an .npz file with an array ``inputs`` (samples along axis 0; a model with
several inputs takes ``inputs_0``, ``inputs_1``, ...) and an array ``labels`` with one
label a sample. Fitting never reshapes: a sample must already have the model's per-sample
shape, so a dataset made for another model is refused rather than silently misread. Float
data going into a quantized input is quantized with that input's scale and zero point, as
TFLite's QUANTIZE op does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import errors


class DatasetError(errors.TaskError, ValueError):
    """A dataset that cannot be used; the message names the file, the arrays and the fix."""


@dataclass(frozen=True)
class Dataset:
    name: str
    inputs: tuple[np.ndarray, ...]  # one array per model input, samples along axis 0
    labels: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        if not self.inputs:
            raise DatasetError(f"dataset {self.name}: no input arrays")
        n = len(self.inputs[0])
        for i, a in enumerate(self.inputs):
            if a.ndim < 1 or len(a) != n:
                raise DatasetError(f"dataset {self.name}: input array {i} has "
                                   f"{len(a) if a.ndim else 0} samples, input 0 has {n}; every "
                                   "input needs one entry a sample")
        if len(self.labels) != n:
            raise DatasetError(f"dataset {self.name}: {len(self.labels)} labels for {n} "
                               "samples; give exactly one label a sample (labels[i] belongs "
                               "to inputs[i])")
        if n == 0:
            raise DatasetError(f"dataset {self.name} has no samples")

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def sha256(self) -> str:
        """Names the data: layout and bytes of every input and of the labels."""
        h = hashlib.sha256()
        for a in (*self.inputs, self.labels):
            h.update(f"{a.dtype.str}{list(a.shape)}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    @property
    def sample_bytes(self) -> int:
        return sum(a[0].nbytes for a in self.inputs)


def load_npz(path: str | Path) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path} is not a readable .npz file of plain arrays: {exc}") from None
    if "inputs" in arrays:
        inputs = [arrays["inputs"]]
    else:
        inputs = [arrays[f"inputs_{i}"] for i in range(len(arrays)) if f"inputs_{i}" in arrays]
    if not inputs or "labels" not in arrays:
        raise DatasetError(f"{path} has arrays {sorted(arrays)}; a dataset needs 'inputs' "
                           "(or inputs_0, inputs_1, ... for several model inputs) and 'labels'")
    for a in inputs:
        if a.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: inputs of dtype {a.dtype} are not numeric tensors")
    return Dataset(path.name, tuple(inputs), arrays["labels"], str(path))


def quantize_to(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Real values -> integer codes: round half away from zero, saturate (TFLite QUANTIZE)."""
    v = np.asarray(x, np.float64) / scale
    r = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    info = np.iinfo(dtype)
    return np.clip(r, info.min, info.max).astype(dtype)


def _detail(d: Any) -> dict[str, Any]:
    """A runtime's input details (dict) or the reader's TensorInfo, as one dict."""
    if isinstance(d, dict):
        return d
    return {"name": d.name, "shape": list(d.shape), "dtype": d.dtype,
            "quantization": list(d.quantization)}


def fit(dataset: Dataset, model_inputs: Sequence[Any]) -> list[np.ndarray]:
    """The dataset's inputs as the model takes them: checked per sample, cast or quantized."""
    details = [_detail(d) for d in model_inputs]
    if len(details) != len(dataset.inputs):
        names = ", ".join(repr(d["name"]) for d in details)
        raise DatasetError(f"dataset {dataset.name} has {len(dataset.inputs)} input arrays but "
                           f"the model has {len(details)} inputs ({names})")
    out = []
    for arr, d in zip(dataset.inputs, details, strict=True):
        want_shape = [int(x) for x in d.get("sample_shape", d["shape"][1:])]
        want = np.dtype(d["dtype"])
        if list(arr.shape[1:]) != want_shape:
            raise DatasetError(
                f"dataset {dataset.name} does not fit the model: its samples are "
                f"{list(arr.shape[1:])} but input {d['name']!r} takes {want_shape} a sample "
                f"(model shape {list(d['shape'])}); reshape the inputs in the .npz to "
                f"[N, {', '.join(map(str, want_shape))}]")
        scale, zero_point = float(d["quantization"][0]), int(d["quantization"][1])
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DatasetError(f"dataset {dataset.name}: inputs contain NaN or infinity")
        if arr.dtype == want:
            out.append(np.ascontiguousarray(arr))
        elif arr.dtype.kind == "f" and want.kind == "f":
            out.append(arr.astype(want))
        elif arr.dtype.kind == "f" and want.kind in "iu" and scale > 0:
            out.append(quantize_to(arr, want, scale, zero_point))
        else:
            raise DatasetError(
                f"dataset {dataset.name}: inputs are {arr.dtype} but input {d['name']!r} takes "
                f"{want.name}" + (" without quantization parameters" if want.kind in "iu"
                                  else "") + "; store the inputs in the .npz as " + want.name +
                " (scaled as the model expects) or as float values for a quantized input")
    return out


def real_values(dataset: Dataset, model_inputs: Sequence[Any], index: int = 0) -> np.ndarray:
    """Input ``index`` as real numbers: float data as is, quantized data dequantized."""
    arr = dataset.inputs[index]
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    d = _detail(model_inputs[index])
    scale, zero_point = float(d["quantization"][0]), int(d["quantization"][1])
    if scale > 0:
        return scale * (arr.astype(np.float64) - zero_point)
    return arr.astype(np.float64)
