"""The sample set a run pushes: a task's, or one generated to fit the model's inputs, laid
out in LoadGen's loaded-set order."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeperf.errors import RunError
from edgeperf_agent.lgseq import loaded_sample_set


def loaded_set_order(n_samples: int, qsl_rng_seed: int) -> np.ndarray:
    """The QSL indices of a set of ``n_samples`` in the order LoadGen loads them, so that
    LoadGen's sample positions (device_agent/lgseq.py) name the samples LoadGen would issue."""
    return np.asarray(loaded_sample_set(n_samples, n_samples, qsl_rng_seed,
                                        "SingleStream")[:n_samples], np.int64)


def generate_samples(inputs: list[dict[str, Any]], n: int, seed: int) -> list[np.ndarray]:
    """A seeded sample set that fits the model's inputs (for models without a dataset)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for info in inputs:  # a sample's shape: the backend's word, else all but the batch
        shape = [max(1, d) for d in info.get("sample_shape", info["shape"][1:])]
        dt = np.dtype(info["dtype"])
        if dt.kind == "f":
            a = rng.uniform(-1.0, 1.0, size=[n, *shape]).astype(dt)
        elif dt.kind in "iu":
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            a = rng.integers(lo, hi, size=[n, *shape], endpoint=True, dtype=dt)
        elif dt.kind == "b":
            a = rng.integers(0, 2, size=[n, *shape]).astype(dt)
        else:
            raise RunError(f"input {info['name']!r} has dtype {dt.name}, for which edgeperf "
                           "cannot generate samples; supply a dataset")
        arrays.append(a)
    return arrays


def check_dynamic_inputs(inputs: list[dict[str, Any]], shapes: dict | None) -> None:
    """A model with dynamic dimensions (other than the batch) needs them set: a runtime
    would otherwise allocate them as 1 and the benchmark would time a 1x1 image."""
    for info in inputs:
        if "dim_names" in info:  # ONNX: the agent resolved what it could; -1 is still open
            if any(d < 0 for d in info["shape"]):
                shown = ",".join(str(d) if d >= 0 else (n or "N")
                                 for d, n in zip(info["shape"], info["dim_names"], strict=False))
                raise RunError(f"input {info['name']!r} has dynamic dimensions [{shown}]; set "
                               f"them with --input-shape {info['name']}:"
                               + ",".join(str(d) if d >= 0 else "N" for d in info["shape"]))
            continue
        sig = info.get("shape_signature") or info["shape"]
        if any(d < 0 for d in sig[1:]) and not (shapes and (info["name"] in shapes
                                                           or (len(inputs) == 1 and "" in shapes))):
            example = ",".join(str(d if d > 0 else 224) for d in [1, *sig[1:]])
            raise RunError(f"input {info['name']!r} has dynamic dimensions (shape signature "
                           f"{sig}); set them with --input-shape {info['name']}:{example}")
