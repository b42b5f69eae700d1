"""A task's performance run and the annotations a submission adds to it: the run's spec on
the task's data (LoadGen's loaded set of the task's samples, with an output audit), and the
accuracy and audit results written into the performance run's summary and result.json.

The command line (cli/run.py) and the library (tasks/modes.py) build their task runs from
these; neither prints anything here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.boards.profile import BoardProfile
from edgeperf.outputs import record
from edgeperf.run.execute import DEFAULT_SAMPLE_COUNT, RunError, RunSpec, resolve_model
from edgeperf.settings import TestSettings
from edgeperf.store.record import record_run_safely
from edgeperf.tasks.accuracy import fit_to_device, AccuracyResult, model_inputs
from edgeperf.tasks.audit import AuditReference, OutputAudit
from edgeperf.tasks.datasets import DatasetError, fit
from edgeperf.tasks.registry import Task
from edgeperf_agent.lgseq import loaded_sample_set

PERF_SET_BYTES = 64 * 1024 * 1024  # default cap of a task's performance sample set


def perf_subset(n: int, k: int, seed: int) -> np.ndarray:
    """The dataset indices of a performance sample set of k, in LoadGen's loaded-set order:
    LoadGen 6.0.17 loads a shuffle (qsl_rng_seed) of the first k of the n samples."""
    k = min(k, n)
    return np.asarray(loaded_sample_set(n, k, seed, "SingleStream")[:k], np.int64)


def task_perf_spec(task: Task, settings: TestSettings, out: Path, *, board: str | BoardProfile,
                   threads: int | None, input_shapes: dict[str, list[int]] | None,
                   audit: tuple[AuditReference, int] | None = None,
                   trace_all: bool = False, conf_files: list[str] | None = None) -> RunSpec:
    """A performance run on a task's data; with ``audit`` (reference, N) an output audit."""
    model = resolve_model(task.model)
    if model.data is None:
        raise RunError(f"a task needs a model file (.tflite, .onnx, .pte), not {task.model}")
    arrays = None  # an .onnx or .pte: fitted at load, to the inputs its runtime reports
    if model.backend == "tflite":
        try:
            arrays = fit(task.dataset, model_inputs(model.data, input_shapes))
        except DatasetError as exc:
            raise RunError(str(exc)) from None
    n = len(task.dataset)
    per_sample = sum(a[0].nbytes for a in (arrays or task.dataset.inputs))
    k = settings.performance_sample_count or min(n, DEFAULT_SAMPLE_COUNT,
                                                 max(1, PERF_SET_BYTES // max(per_sample, 1)))
    subset = perf_subset(n, min(k, n), settings.qsl_rng_seed)
    after = None
    if audit is not None:
        ref, count = audit
        after = OutputAudit(ref, subset, count, settings.sample_index_rng_seed, task.tolerance)
    return RunSpec(model=task.model, settings=settings, board=board, out_dir=out,
                   threads=threads,
                   samples=[a[subset] for a in arrays] if arrays is not None else None,
                   fit_samples=None if arrays is not None else (
                       lambda inputs: [a[subset] for a in fit_to_device(task, inputs)]),
                   qsl_indices=subset.tolist(), qsl_total=n,
                   load_options={"input_shapes": input_shapes} if input_shapes else {},
                   after_run=after, trace_all=trace_all, conf_files=list(conf_files or []),
                   record_extra={"task": dict(task.describe(), performance_samples=len(subset),
                                              qsl_subset_first=subset[:16].tolist())})


def _summary_line(run_dir: Path, line: str) -> None:
    """Add a line under "Result is : ..." in a performance summary (edgeperf's addition to
    LoadGen's layout; parse_summary reads it as one more label)."""
    summary = run_dir / "mlperf_log_summary.txt"
    if summary.exists():
        lines = summary.read_text().splitlines()
        at = next((i + 1 for i, s in enumerate(lines) if s.startswith("Result is :")), 0)
        while at < len(lines) and lines[at].startswith(("Accuracy result", "Output audit")):
            at += 1
        lines.insert(at, line)
        summary.write_text("\n".join(lines) + "\n")
        from edgeperf.power.powerdev import rehash

        # a PTDaemon run's session files hash the summary: record the edit, hash again
        rehash(run_dir, f"edgeperf added the line {line.split(' : ')[0]!r} to the summary "
                        "after the session")


def annotate_with_audit(perf_dir: Path, audit: dict[str, Any]) -> None:
    if audit.get("passed"):
        text = (f"PASS ({audit['checked']} samples equal the accuracy run's in "
                f"{audit['reference']})")
    else:
        text = "FAIL (" + "; ".join(audit.get("invalid_reasons") or ["see result.json"]) + ")"
    _summary_line(perf_dir, f"Output audit : {text}")


def annotate_with_accuracy(perf_dir: Path, acc_dir: Path, acc: AccuracyResult) -> None:
    """Put the accuracy result into a performance run's summary and result.json."""
    _summary_line(perf_dir, f"Accuracy result : {acc.result} ({acc.detail()}; see "
                            f"{acc_dir / 'accuracy.txt'})")
    rec = record.load_result(perf_dir)
    rec["accuracy"] = dict(acc.to_dict(), run_dir=str(acc_dir))
    rec["submission_result"] = "VALID" if acc.passed and rec.get("valid") else (
        "FAIL" if not acc.passed else "INVALID")
    record.write_record(perf_dir, rec)
    record_run_safely(perf_dir)  # its store row, brought up to date


__all__ = ["PERF_SET_BYTES", "annotate_with_accuracy", "annotate_with_audit", "perf_subset",
           "task_perf_spec"]
