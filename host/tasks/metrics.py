"""Quality metrics of an accuracy run: Top-1, AUC, MSE, and the target check.

The host computes them from the raw outputs the device returned, as MLPerf's accuracy
scripts do from mlperf_log_accuracy.json, so a device can never grade itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class MetricError(ValueError):
    """Outputs and labels that a metric cannot be computed on; the message says why."""


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose highest output is the label's class (first index on ties)."""
    out = np.asarray(outputs)
    lab = np.asarray(labels).reshape(-1)
    if out.ndim < 2:
        raise MetricError(f"top1 needs one row of class scores per sample, got shape {out.shape}")
    out = out.reshape(len(out), -1)
    if len(out) != len(lab):
        raise MetricError(f"top1: {len(out)} outputs but {len(lab)} labels")
    if len(lab) == 0:
        raise MetricError("top1 of no samples")
    if lab.dtype.kind not in "iu" and not np.array_equal(lab, np.round(lab)):
        raise MetricError("top1 labels must be class indices (integers)")
    lab = lab.astype(np.int64)
    if lab.min() < 0 or lab.max() >= out.shape[1]:
        raise MetricError(f"top1 labels must be class indices in [0, {out.shape[1]}), "
                          f"got {lab.min()}..{lab.max()}")
    return float(np.count_nonzero(out.argmax(axis=1) == lab)) / len(lab)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the positive class (label 1).

    Rank-based (Mann-Whitney U) with tied scores given their average rank, which is the
    exact area of the ROC curve drawn through ties as diagonal segments. Ranks are kept
    doubled so the sum stays an exact integer until the one final division.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if len(s) != len(lab):
        raise MetricError(f"auc: {len(s)} scores but {len(lab)} labels")
    if not np.isin(lab, (0, 1)).all():
        raise MetricError("auc labels must be 0 (normal) or 1 (anomalous/positive)")
    if np.isnan(s).any():
        raise MetricError("auc: a score is NaN")
    pos = lab == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise MetricError(f"auc needs both classes; got {n_pos} positive and {n_neg} negative")
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    # doubled average rank of a tie group spanning 1-based ranks [a, b]: a + b
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    doubled = np.empty(len(s), dtype=np.int64)
    doubled[order] = np.repeat(starts + 1 + ends, ends - starts)
    u_doubled = int(doubled[pos].sum()) - n_pos * (n_pos + 1)
    return u_doubled / (2 * n_pos * n_neg)


def mse(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error between the outputs and same-shaped targets."""
    out = np.asarray(outputs, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.float64)
    if len(out) != len(lab):
        raise MetricError(f"mse: {len(out)} outputs but {len(lab)} labels")
    if out.reshape(len(out), -1).shape != lab.reshape(len(lab), -1).shape:
        raise MetricError(f"mse: outputs of shape {out.shape[1:]} per sample cannot be "
                          f"compared with labels of shape {lab.shape[1:]}")
    return float(np.mean((out.reshape(lab.shape) - lab) ** 2))


def reconstruction_error(outputs: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Per-sample mean squared difference between an autoencoder's output and its input."""
    out = np.asarray(outputs, dtype=np.float64)
    inp = np.asarray(inputs, dtype=np.float64)
    out, inp = out.reshape(len(out), -1), inp.reshape(len(inp), -1)
    if out.shape != inp.shape:
        raise MetricError(f"reconstruction error: outputs have {out.shape[1]} values a sample "
                          f"but inputs {inp.shape[1]}")
    return np.mean((out - inp) ** 2, axis=1)


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    "top1": Metric("top1", top1, True, "Top-1 accuracy (fraction of samples right)"),
    "auc": Metric("auc", auc, True, "area under the ROC curve of the score"),
    "mse": Metric("mse", mse, False, "mean squared error against the labels"),
}


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise MetricError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name]


def meets(metric: Metric, value: float, target: float) -> bool:
    """Whether ``value`` reaches ``target`` (at least it, or for MSE at most it). NaN fails."""
    if not np.isfinite(value):
        return False
    return value >= target if metric.higher_is_better else value <= target
