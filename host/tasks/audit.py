"""Output audit of a performance run, in the manner of MLPerf's TEST01.

A system could answer fast in performance mode by doing less than it did in accuracy mode.
TEST01 catches that by logging some performance-mode outputs and comparing them with the
accuracy run's. edgeperf asks for those outputs right after the timed run, from the same
agent and the same loaded interpreter (the ``infer`` operation), for N samples the timed run
queried (chosen with a seed): the timed loop stays untouched (no output copies inside it)
while the model, the runtime, its delegates and its state are those that were timed. Each
output must equal the accuracy run's for the same sample byte for byte, or within the task's
tolerance (max |difference| of dequantized values); a mismatch makes the run INVALID and
names the samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import errors
from edgeperf.outputs.mlperf_logs import parse_accuracy_json
from edgeperf.run.client import AgentClient, AgentError
from edgeperf.tasks.registry import Task


class AuditError(errors.TaskError, ValueError):
    """No usable reference to audit against; the message names the fix."""


@dataclass(frozen=True)
class AuditReference:
    outputs: dict[int, bytes]  # qsl_idx -> raw output bytes of the accuracy run
    source: str
    task: dict[str, Any] | None = None  # the accuracy run's result.json "task", if any
    model_sha256: str | None = None


def load_reference(run_dir: str | Path) -> AuditReference:
    """An accuracy run's outputs: RUN_DIR holds mlperf_log_accuracy.json (or, for a
    submission run, RUN_DIR/accuracy does)."""
    d = Path(run_dir)
    if not (d / "mlperf_log_accuracy.json").exists() and (d / "accuracy").is_dir():
        d = d / "accuracy"
    path = d / "mlperf_log_accuracy.json"
    if not path.exists():
        raise AuditError(f"{run_dir} holds no mlperf_log_accuracy.json; pass the directory of "
                         "an accuracy run (edgeperf run --task NAME --mode accuracy --out DIR)")
    try:
        entries = parse_accuracy_json(path)
    except ValueError as exc:
        raise AuditError(str(exc)) from None
    if not entries:
        raise AuditError(f"{path} holds no outputs (a performance run's accuracy log is "
                         "empty); pass the directory of an accuracy run")
    task = sha = None
    rec_path = d / "result.json"
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        task, sha = rec.get("task"), (rec.get("model") or {}).get("sha256")
    return AuditReference({e.qsl_idx: e.data for e in entries}, str(d), task, sha)


def reference_from_outputs(outputs: list[bytes], source: str, task: Task,
                           model_sha256: str | None) -> AuditReference:
    return AuditReference(dict(enumerate(outputs)), source, task.describe(), model_sha256)


def check_reference(ref: AuditReference, task: Task) -> None:
    """The reference must be an accuracy run over the same data."""
    if ref.task is None:
        return
    theirs = (ref.task.get("dataset") or {}).get("sha256")
    if theirs and theirs != task.dataset.sha256:
        raise AuditError(f"the accuracy run in {ref.source} used dataset {theirs[:12]} "
                         f"({ref.task.get('name')}), this run's task {task.full_name} uses "
                         f"{task.dataset.sha256[:12]}: audit against an accuracy run of the "
                         "same task")


def max_abs_diff(a: bytes, b: bytes, output_details: list[dict[str, Any]]) -> float:
    """Largest |difference| of the dequantized outputs; inf when the layouts differ."""
    from edgeperf.tasks.accuracy import decode_outputs

    if len(a) != len(b):
        return float("inf")
    try:
        xa, xb = decode_outputs([a], output_details), decode_outputs([b], output_details)
    except Exception:  # noqa: BLE001 - bytes that do not decode do not match
        return float("inf")
    worst = 0.0
    for u, v in zip(xa, xb, strict=True):
        d = np.abs(u - v)
        if np.isnan(d).any():
            if not np.array_equal(np.isnan(u), np.isnan(v)):
                return float("inf")
            d = np.nan_to_num(d)
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst


class OutputAudit:
    """The runner's ``after_run`` hook: N queried samples' outputs against the reference."""

    def __init__(self, reference: AuditReference, qsl_of: np.ndarray, n: int, seed: int,
                 tolerance: float = 0.0) -> None:
        self.reference, self.qsl_of = reference, np.asarray(qsl_of, np.int64)
        self.n, self.seed, self.tolerance = int(n), int(seed), float(tolerance)

    def pick(self, sample_idx: np.ndarray) -> list[int]:
        queried = np.unique(np.asarray(sample_idx, np.int64))
        k = min(self.n, len(queried))
        rs = np.random.RandomState(self.seed % (1 << 32))
        return sorted(int(i) for i in rs.choice(queried, k, replace=False)) if k else []

    def __call__(self, client: AgentClient, ctx: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {"reference": self.reference.source, "requested": self.n,
                               "tolerance": self.tolerance,
                               "reference_model_sha256": self.reference.model_sha256}
        try:
            picked = self.pick(ctx["querylog"].sample_idx)
            _, outs = client.infer(ctx["samples_sha"], indices=picked)
            qsl = [int(self.qsl_of[p]) for p in picked]
            mismatches, missing = [], []
            for q, got in zip(qsl, outs, strict=True):
                want = self.reference.outputs.get(q)
                if want is None:
                    missing.append(q)
                elif got != want:
                    diff = max_abs_diff(want, got, ctx["details"]["outputs"])
                    if not diff <= self.tolerance:
                        mismatches.append({"qsl_idx": q, "max_abs_diff": diff})
        except AgentError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken audit must fail the run, not hide
            rec.update(passed=False, invalid_reasons=[f"output audit could not run: {exc}"])
            return rec
        rec.update(checked=len(qsl), qsl_idx=qsl, mismatches=mismatches, missing=missing,
                   passed=not mismatches and not missing and bool(qsl))
        reasons = []
        if mismatches:
            shown = ", ".join(str(m["qsl_idx"]) for m in mismatches[:20])
            worst = max(m["max_abs_diff"] for m in mismatches)
            reasons.append(f"output audit: {len(mismatches)} of {len(qsl)} samples differ from "
                           f"the accuracy run in {self.reference.source} (qsl_idx {shown}; "
                           f"max |difference| {worst:g}, tolerance {self.tolerance:g})")
        if missing:
            reasons.append(f"output audit: the accuracy run in {self.reference.source} has no "
                           f"output for qsl_idx {', '.join(map(str, missing[:20]))}")
        if not qsl:
            reasons.append("output audit: the run queried no samples to audit")
        rec["invalid_reasons"] = reasons
        return rec
