"""Deterministic numpy training of the reference tasks' models, cached by recipe.

The reference tasks need trained models, and nothing may be downloaded, so edgeperf trains
them itself: a small depthwise-separable CNN (the shape of MLPerf Tiny's DS-CNN) on
scikit-learn's bundled 8x8 digits, and a small dense autoencoder (the shape of MLPerf Tiny's
anomaly-detection model) on synthetic machine-sound spectra. Plain numpy, float64, seeded
with ``numpy.random.RandomState`` (whose stream numpy keeps frozen): the same recipe gives
the same weights on the same numpy and BLAS, in seconds (layers and gradients: numpy_nn.py).

What a build produces is cached under the host cache dir (``$EDGEPERF_CACHE`` or
``~/.cache/edgeperf``) in ``tasks/<name>-<hash of the recipe>/``: the float weights, the
held-out dataset, the calibration inputs and the .tflite files. Concurrent builds of the same
recipe (two test workers) take a file lock, so one trains and the other reads its result.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import errors
from edgeperf.links.bundle import _host_cache
from edgeperf.models.network import Network, Reshape, Softmax, forward, quantize, to_tflite
from edgeperf.tasks.numpy_nn import (
    ConvLayer,
    DenseLayer,
    DepthwiseLayer,
    GlobalAvgPool,
    Layer,
    MaxPool2,
    mse_grad,
    softmax_xent_grad,
    train,
)

CACHE_FORMAT = 1


class TrainingError(errors.TaskError, RuntimeError):
    """A reference model cannot be built here; the message names what is missing."""


# ---------------------------------------------------------------- datasets


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, shipped inside the wheel), in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise TrainingError("the ic-digits task reads scikit-learn's bundled digits; install "
                            "it with: pip install 'edgeperf[tasks]' (or scikit-learn)") from None
    d = load_digits()
    x = (np.asarray(d.data, np.float64) / 16.0).reshape(-1, 8, 8, 1)
    return x, np.asarray(d.target, np.int64)


MELS, FRAMES = 32, 4


def machine_spectra(rs: np.random.RandomState, n: int, anomalous: bool) -> np.ndarray:
    """Log-mel-like spectra [n, FRAMES * MELS] of a rotating machine, in about [0, 1].

    Normal: a fundamental near mel bin 3.2 with decaying harmonics over a sloped noise floor,
    varying from clip to clip in pitch, level and noise. Anomalous clips add one fault: a
    tone between the harmonics (a bearing whine), a pitch off the normal range, a burst of
    broadband noise in some frames, or a harmonic that has gone weak.
    """
    bins = np.arange(MELS, dtype=np.float64)
    out = np.empty((n, FRAMES, MELS))
    for i in range(n):
        f0 = rs.uniform(3.0, 3.4)
        amp = 0.8 * rs.uniform(0.85, 1.15, size=6) / np.arange(1, 7)
        floor = rs.uniform(0.05, 0.09) * np.exp(-bins / 24.0)
        fault = rs.randint(4) if anomalous else -1
        if fault == 1:
            f0 += rs.choice([-1.0, 1.0]) * rs.uniform(0.2, 0.45)
        if fault == 3:
            amp[rs.randint(1, 4)] *= rs.uniform(0.35, 0.65)
        tone_bin, tone_amp = rs.uniform(4.0, 28.0), rs.uniform(0.05, 0.15)
        burst = rs.rand(FRAMES) < 0.5
        for f in range(FRAMES):
            spec = floor * rs.uniform(0.9, 1.1) + np.abs(rs.normal(0.0, 0.015, MELS))
            gain = rs.uniform(0.92, 1.08)
            for k in range(6):
                spec += gain * amp[k] * np.exp(-0.5 * ((bins - (k + 1) * f0) / 0.7) ** 2)
            if fault == 0:
                spec += tone_amp * np.exp(-0.5 * ((bins - tone_bin) / 0.6) ** 2)
            if fault == 2 and burst[f]:
                spec += rs.uniform(0.02, 0.06)
            out[i, f] = np.log1p(10.0 * spec) / np.log1p(10.0)
    return out.reshape(n, FRAMES * MELS)


# ---------------------------------------------------------------- the recipes


@dataclass(frozen=True)
class Trained:
    """A trained reference model and its held-out data, as read from the cache."""

    name: str
    float_net: Network
    inputs: np.ndarray  # held-out inputs, float32, [N, *input_shape[1:]]
    labels: np.ndarray
    calibration: np.ndarray  # [K, *input_shape]
    meta: dict[str, Any]
    directory: Path

    @cached_property
    def int8_net(self) -> Network:
        """The int8 network the -int8.tflite file was written from (quantize is
        deterministic), for numpy reference outputs."""
        return quantize(self.float_net, self.calibration)

    def model_path(self, variant: str) -> Path:
        """int8 and fp32: the .tflite files; onnx: the fp32 network as .onnx (written here
        on first use); executorch: the fp32 network as .pte, which
        scripts/export_executorch.py writes (it needs torch and executorch)."""
        if variant == "onnx":
            path = self.directory / f"{self.name}-fp32.onnx"
            if not path.exists():
                from edgeperf.models.onnx_writer import to_onnx

                tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
                tmp.write_bytes(to_onnx(self.float_net, f"edgeperf task {self.name} fp32"))
                os.replace(tmp, path)
            return path
        if variant == "executorch":
            path = self.directory / f"{self.name}-fp32.pte"
            if not path.exists():
                raise TrainingError(
                    f"{self.name}:executorch needs the task's model exported to .pte: run "
                    f"'python scripts/export_executorch.py --task {self.name}' with a Python "
                    "that has torch, executorch and edgeperf (scripts/test.sh makes "
                    ".venv-executorch), or pass your own --model FILE.pte")
            return path
        return self.directory / f"{self.name}-{variant}.tflite"


@dataclass(frozen=True)
class Recipe:
    """How to build one reference model: its layers, how they become a Network, its data."""

    name: str
    seed: int
    settings: dict[str, Any]
    layers: Callable[[np.random.RandomState, dict[str, Any]], list[Layer]]
    network: Callable[[list[Layer], dict[str, Any]], Network]
    data: Callable[[Recipe, np.random.RandomState], tuple[np.ndarray, ...]]

    def key(self, source: bytes) -> str:
        text = json.dumps({"name": self.name, "seed": self.seed, "settings": self.settings,
                           "format": CACHE_FORMAT,
                           "source": hashlib.sha256(source).hexdigest()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ic_layers(rs: np.random.RandomState, st: dict[str, Any]) -> list[Layer]:
    """Conv 3x3, then two depthwise-separable blocks (depthwise 3x3 + pointwise 1x1) with a
    max pool between, a global average pool and a dense classifier."""
    w = st["width"]
    return [ConvLayer(rs, 1, w, 3, "RELU"), DepthwiseLayer(rs, w, 3, "RELU"),
            ConvLayer(rs, w, 2 * w, 1, "RELU"), MaxPool2(),
            DepthwiseLayer(rs, 2 * w, 3, "RELU"), ConvLayer(rs, 2 * w, 2 * w, 1, "RELU"),
            GlobalAvgPool(), DenseLayer(rs, 2 * w, 10, "NONE")]


def _ic_network(layers: list[Layer], st: dict[str, Any]) -> Network:
    out: list = []
    for la in layers:
        if isinstance(la, GlobalAvgPool):
            out += [la.export_pool(4, 4), Reshape((1, 2 * st["width"]))]
        else:
            out.append(la.export())
    return Network((1, 8, 8, 1), tuple(out) + (Softmax(1.0),))


def _ic_data(recipe: Recipe, rs: np.random.RandomState) -> tuple[np.ndarray, ...]:
    """(train x, train y, held-out x, held-out y): a seeded split of the 1797 digits."""
    x, y = digits()
    order = rs.permutation(len(x))
    test, train = order[:recipe.settings["test_count"]], order[recipe.settings["test_count"]:]
    return x[train], y[train], x[test], y[test]


def _ad_layers(rs: np.random.RandomState, st: dict[str, Any]) -> list[Layer]:
    sizes = [FRAMES * MELS, *st["hidden"], FRAMES * MELS]
    last = len(sizes) - 2
    return [DenseLayer(rs, a, b, "RELU" if i < last else "NONE")
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))]


def _ad_network(layers: list[Layer], st: dict[str, Any]) -> Network:
    return Network((1, FRAMES * MELS), tuple(la.export() for la in layers))


def _ad_data(recipe: Recipe, rs: np.random.RandomState) -> tuple[np.ndarray, ...]:
    """Normal clips to train on; a held-out set of normal (label 0) and faulty (1) clips."""
    st = recipe.settings
    train = machine_spectra(rs, st["train_count"], anomalous=False)
    normal = machine_spectra(rs, st["test_normal"], anomalous=False)
    faulty = machine_spectra(rs, st["test_anomalous"], anomalous=True)
    labels = np.r_[np.zeros(len(normal), np.int64), np.ones(len(faulty), np.int64)]
    return train, train, np.concatenate([normal, faulty]), labels


IC_DIGITS = Recipe("ic-digits", 20250101, {
    "width": 8, "epochs": 30, "batch": 32, "lr": 0.01, "test_count": 360, "calibration": 256,
    "loss": "softmax-cross-entropy",
}, _ic_layers, _ic_network, _ic_data)
AD_SYNTHETIC = Recipe("ad-synthetic", 20250102, {
    "hidden": [64, 16, 64], "epochs": 60, "batch": 32, "lr": 0.003, "train_count": 1000,
    "test_normal": 300, "test_anomalous": 300, "calibration": 256, "loss": "mse",
}, _ad_layers, _ad_network, _ad_data)
_LOSSES = {"softmax-cross-entropy": softmax_xent_grad, "mse": mse_grad}


def _train_recipe(recipe: Recipe) -> tuple[Network, np.ndarray, np.ndarray, np.ndarray]:
    """Train; returns (float network, held-out inputs, labels, calibration inputs)."""
    st = recipe.settings
    rs = np.random.RandomState(recipe.seed)
    x, y, x_test, y_test = recipe.data(recipe, rs)
    layers = recipe.layers(rs, st)
    train(layers, x, _LOSSES[st["loss"]], y, rs, st["epochs"], st["batch"], st["lr"])
    net = recipe.network(layers, st)
    calibration = x[:st["calibration"]].astype(np.float32)[:, None]
    return net, x_test.astype(np.float32), y_test, calibration


# ---------------------------------------------------------------- the cache


def cache_root() -> Path:
    return _host_cache() / "tasks"


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # no POSIX locks (Windows): concurrent builds write the same files
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _network_arrays(net: Network) -> dict[str, np.ndarray]:
    arrays = {}
    for i, layer in enumerate(net.layers):
        if hasattr(layer, "w"):
            arrays[f"{i}/w"], arrays[f"{i}/b"] = layer.w, layer.b
    return arrays


def _with_arrays(net: Network, arrays: Any) -> Network:
    from dataclasses import replace

    layers = tuple(replace(layer, w=arrays[f"{i}/w"], b=arrays[f"{i}/b"])
                   if hasattr(layer, "w") else layer for i, layer in enumerate(net.layers))
    return replace(net, layers=layers)


def _source(recipe: Recipe) -> bytes:
    """What the recipe reads from outside its seed: the digits file scikit-learn ships (a new
    scikit-learn with other data must not reuse an old cache). Found without importing
    scikit-learn, which takes a second."""
    if recipe is not IC_DIGITS:
        return b""
    spec = importlib.util.find_spec("sklearn")
    data = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = path.read_bytes()
    if data is None:
        digits()  # raises TrainingError naming the install when scikit-learn is missing
        raise TrainingError("scikit-learn is installed but its bundled digits.csv.gz was not "
                            "found; reinstall scikit-learn")
    return data


def _float_metric(recipe: Recipe, net: Network, inputs: np.ndarray,
                  labels: np.ndarray) -> float:
    from edgeperf.tasks.metrics import auc, reconstruction_error, top1

    outs = np.concatenate([forward(net, x[None]) for x in inputs])
    if recipe is IC_DIGITS:
        return top1(outs, labels)
    return auc(reconstruction_error(outs, inputs), labels)


def build(recipe: Recipe, report: Callable[[str], None] | None = None) -> Trained:
    """The trained model for ``recipe``: from the cache, or trained now and cached."""
    key = recipe.key(_source(recipe))
    directory = cache_root() / f"{recipe.name}-{key}"
    with _locked(cache_root() / f".{recipe.name}-{key}.lock"):
        if not (directory / "meta.json").exists():
            if report:
                report(f"training the {recipe.name} reference model (once; cached in "
                       f"{directory})")
            t0 = time.perf_counter()
            net, inputs, labels, calibration = _train_recipe(recipe)
            seconds = time.perf_counter() - t0
            int8 = quantize(net, calibration)
            tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            np.savez(tmp / "weights.npz", **_network_arrays(net))
            np.savez(tmp / "data.npz", inputs=inputs, labels=labels, calibration=calibration)
            (tmp / f"{recipe.name}-fp32.tflite").write_bytes(
                to_tflite(net, f"edgeperf task {recipe.name} fp32"))
            (tmp / f"{recipe.name}-int8.tflite").write_bytes(
                to_tflite(int8, f"edgeperf task {recipe.name} int8"))
            meta = dict(recipe=recipe.name, key=key, seed=recipe.seed,
                        settings=recipe.settings, train_seconds=round(seconds, 3),
                        numpy=np.__version__,
                        float_metric=_float_metric(recipe, net, inputs, labels))
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(tmp, directory)
    return load(recipe, directory)


def load(recipe: Recipe, directory: Path) -> Trained:
    meta = json.loads((directory / "meta.json").read_text())
    skeleton = recipe.network(recipe.layers(np.random.RandomState(0), recipe.settings),
                              recipe.settings)
    with np.load(directory / "weights.npz") as w:
        net = _with_arrays(skeleton, {k: w[k] for k in w.files})
    with np.load(directory / "data.npz") as d:
        inputs, labels, calibration = d["inputs"], d["labels"], d["calibration"]
    return Trained(recipe.name, net, inputs, labels, calibration, meta, directory)
