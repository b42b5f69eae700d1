"""Tasks: a model, a dataset, a metric and a quality target, as MLPerf pairs them.

Two reference tasks are built in and need no download (their models are trained here, see
training.py); a user adds a task with a TOML file::

    # tasks/my-kws.toml
    name = "my-kws"                 # optional, default: the file's stem
    description = "keyword spotting on our test clips"
    model = "kws_int8.tflite"       # relative to this file
    dataset = "kws_test.npz"        # arrays 'inputs' and 'labels'
    metric = "top1"                 # top1 | auc | mse
    target = 0.90                   # top1, auc: at least this; mse: at most this
    score = "output"                # auc only: "output" (the score is the output's last
                                    # value: a sigmoid's, or a softmax's positive class) or
                                    # "reconstruction_error" (an autoencoder's)
    output = 0                      # which model output the metric reads
    tolerance = 0.0                 # output audit: max |difference| allowed (0: byte-exact)

``--task NAME`` finds a built-in task, else ``tasks/NAME.toml`` in the current directory;
``--task path/to/file.toml`` names a file. ``NAME:VARIANT`` picks a built-in task's variant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import errors
from edgeperf.tasks.datasets import Dataset, DatasetError, load_npz
from edgeperf.tasks.metrics import METRICS, Metric, get_metric

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TASKS_DIR = Path("tasks")
SCORES = ("output", "reconstruction_error")


class TaskError(errors.TaskError, errors.UsageError):
    """A task that does not exist or is defined wrongly: nothing was run, so it is a usage
    error too (exit 2, as an unknown board); the message names the fix."""


@dataclass(frozen=True)
class Task:
    """A task ready to run: its model file, its dataset and the target to reach."""

    name: str
    variant: str
    description: str
    model: str  # a model spec the runner resolves: a .tflite path or builtin:NAME
    dataset: Dataset
    metric: Metric
    target: float
    target_text: str  # how the target was set, for accuracy.txt
    score: str = "output"
    output_index: int = 0
    tolerance: float = 0.0
    source: str = "built-in"
    reference: dict[str, Any] = field(default_factory=dict)  # e.g. the fp32 reference metric

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name

    def with_model(self, spec: str) -> Task:
        """The same dataset and target for another model (a user's build of it)."""
        return replace(self, model=spec, variant="")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "variant": self.variant, "source": self.source,
                "model": self.model, "metric": self.metric.name, "score": self.score,
                "target": self.target, "target_text": self.target_text,
                "tolerance": self.tolerance, "output_index": self.output_index,
                "dataset": {"name": self.dataset.name, "sha256": self.dataset.sha256,
                            "samples": len(self.dataset)},
                "reference": self.reference}


@dataclass(frozen=True)
class TaskDef:
    """What ``edgeperf tasks`` lists: a task before its model and data are built or read."""

    name: str
    description: str
    metric: str
    target_text: str
    variants: tuple[str, ...]
    source: str
    make: Callable[[str, Callable[[str], None] | None], Task]


# ---------------------------------------------------------------- built-in tasks


def _ic_digits(variant: str, report: Callable[[str], None] | None) -> Task:
    from edgeperf.tasks.training import IC_DIGITS, build

    t = build(IC_DIGITS, report)
    ref = float(t.meta["float_metric"])
    target = 0.99 * ref
    return Task(
        "ic-digits", variant, _BUILTIN["ic-digits"].description, str(t.model_path(variant)),
        Dataset("ic-digits held-out split", (t.inputs,), t.labels, str(t.directory)),
        get_metric("top1"), target,
        f">= {target:.4f}: 99% of the fp32 reference model's Top-1 {ref:.4f} (MLPerf's rule)",
        reference={"fp32_top1": ref, "train_seconds": t.meta["train_seconds"],
                   "recipe": t.meta["key"]})


AD_TARGET = 0.85


def _ad_synthetic(variant: str, report: Callable[[str], None] | None) -> Task:
    from edgeperf.tasks.training import AD_SYNTHETIC, build

    t = build(AD_SYNTHETIC, report)
    return Task(
        "ad-synthetic", variant, _BUILTIN["ad-synthetic"].description,
        str(t.model_path(variant)),
        Dataset("ad-synthetic held-out clips", (t.inputs,), t.labels, str(t.directory)),
        get_metric("auc"), AD_TARGET,
        f">= {AD_TARGET}: MLPerf Tiny's anomaly-detection quality target",
        score="reconstruction_error",
        reference={"fp32_auc": float(t.meta["float_metric"]),
                   "train_seconds": t.meta["train_seconds"], "recipe": t.meta["key"]})


# int8 and fp32 .tflite; the fp32 network on the onnx and executorch backends
VARIANTS = ("int8", "fp32", "onnx", "executorch")

_BUILTIN: dict[str, TaskDef] = {
    "ic-digits": TaskDef(
        "ic-digits", "image classification: scikit-learn's 8x8 digits, a small depthwise-"
        "separable CNN trained here (held-out split of 360 images)", "top1",
        ">= 99% of the fp32 model's Top-1", VARIANTS, "built-in", _ic_digits),
    "ad-synthetic": TaskDef(
        "ad-synthetic", "anomaly detection: a dense autoencoder on synthetic machine-sound "
        "spectra (300 normal, 300 faulty clips); score = reconstruction error", "auc",
        f">= {AD_TARGET} AUC", VARIANTS, "built-in", _ad_synthetic),
}


# ---------------------------------------------------------------- user tasks (TOML)

_KEYS = {"name", "description", "model", "dataset", "metric", "target", "score", "output",
         "tolerance"}


def _user_def(path: Path) -> TaskDef:
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"cannot read task file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TaskError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise TaskError(f"{path}: unknown key(s) {', '.join(unknown)}; a task file has "
                        f"{', '.join(sorted(_KEYS))}")
    missing = [k for k in ("model", "dataset", "metric", "target") if k not in doc]
    if missing:
        raise TaskError(f"{path}: missing {', '.join(missing)}; a task needs model, dataset, "
                        "metric and target")
    if doc["metric"] not in METRICS:
        raise TaskError(f"{path}: metric {doc['metric']!r} is not one of "
                        f"{', '.join(METRICS)}")
    score = doc.get("score", "output")
    if score not in SCORES:
        raise TaskError(f"{path}: score {score!r} is not one of {', '.join(SCORES)}")
    if score == "reconstruction_error" and doc["metric"] != "auc":
        raise TaskError(f"{path}: score = 'reconstruction_error' goes with metric = 'auc'")
    for key in ("target", "tolerance"):
        if key in doc and (isinstance(doc[key], bool) or not isinstance(doc[key], (int, float))
                           or not np.isfinite(doc[key])):
            raise TaskError(f"{path}: {key} must be a number, got {doc[key]!r}")
    if doc.get("tolerance", 0) < 0:
        raise TaskError(f"{path}: tolerance must be >= 0")
    output = doc.get("output", 0)
    if isinstance(output, bool) or not isinstance(output, int) or output < 0:
        raise TaskError(f"{path}: output must be a model output's index (0, 1, ...)")
    name = str(doc.get("name", path.stem))
    metric = get_metric(doc["metric"])
    sense = "at least" if metric.higher_is_better else "at most"
    target_text = f"{'>=' if metric.higher_is_better else '<='} {doc['target']:g} ({sense}, " \
                  f"from {path.name})"

    def make(variant: str, report: Callable[[str], None] | None) -> Task:
        if variant:
            raise TaskError(f"task {name} ({path}) has no variants; drop ':{variant}'")
        model = (path.parent / str(doc["model"])).resolve()
        if not model.is_file():
            raise TaskError(f"{path}: model {doc['model']!r} does not exist (looked for "
                            f"{model})")
        data_path = (path.parent / str(doc["dataset"])).resolve()
        try:
            dataset = load_npz(data_path)
        except DatasetError as exc:
            raise TaskError(f"{path}: {exc}") from None
        return Task(name, "", str(doc.get("description", "")), str(model), dataset, metric,
                    float(doc["target"]), target_text, score, output,
                    float(doc.get("tolerance", 0.0)), str(path))

    return TaskDef(name, str(doc.get("description", "")), metric.name, target_text, ("",),
                   str(path), make)


# ---------------------------------------------------------------- lookup


def list_tasks(tasks_dir: Path = TASKS_DIR) -> list[TaskDef]:
    """The built-in tasks, then the valid TOML files in ``tasks_dir``."""
    found = list(_BUILTIN.values())
    if tasks_dir.is_dir():
        for path in sorted(tasks_dir.glob("*.toml")):
            try:
                found.append(_user_def(path))
            except TaskError:
                continue
    return found


def find_task(spec: str, tasks_dir: Path = TASKS_DIR) -> tuple[TaskDef, str]:
    """(definition, variant) for ``NAME[:VARIANT]`` or a .toml path."""
    if spec.endswith(".toml") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise TaskError(f"task file {spec} does not exist")
        return _user_def(path), ""
    name, _, variant = spec.partition(":")
    if name in _BUILTIN:
        d = _BUILTIN[name]
        variant = variant or d.variants[0]
        if variant not in d.variants:
            raise TaskError(f"task {name} has variants {', '.join(d.variants)}, not "
                            f"{variant!r}")
        return d, variant
    path = tasks_dir / f"{name}.toml"
    if path.is_file():
        return _user_def(path), variant
    known = [d.name for d in list_tasks(tasks_dir)]
    raise TaskError(f"unknown task {spec!r}; known tasks: {', '.join(known)} (see 'edgeperf "
                    f"tasks'), or pass the path of a task .toml file")


def load_task(spec: str, report: Callable[[str], None] | None = None,
              tasks_dir: Path = TASKS_DIR) -> Task:
    """The task ``spec`` names, with its model built (or read from the cache) and its data."""
    d, variant = find_task(spec, tasks_dir)
    return d.make(variant, report)
