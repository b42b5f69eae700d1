"""A task's runs on an open session: accuracy, performance on the task's data (with an
output audit), and submission (accuracy, then performance), as ``edgeperf run --task``.

    mode performance   timed scenarios; with a task the samples are the task's
    mode accuracy      every sample once; metric and target checked (accuracy.txt)
    mode submission    accuracy, then performance, as LoadGen's SubmissionRun: DIR/accuracy
                       and DIR/performance (DIR/accuracy/SCENARIO, DIR/performance/SCENARIO
                       with several); a missed target fails the whole run (exit 3);
                       then the compliance audits TEST01 and TEST04 (compliance_runs.py):
                       DIR/TEST01, DIR/TEST04, a failed verdict makes the run INVALID
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError
from edgeperf.run.execute import run_on
from edgeperf.run.session import Session
from edgeperf.run.spec import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    Reporter,
    RunResult,
    RunSpec,
)
from edgeperf.settings import TestSettings
from edgeperf.tasks.accuracy import AccuracySpec, run_accuracy_on
from edgeperf.tasks.registry import Task

_RANK = {EXIT_VALID: 0, EXIT_INVALID: 1, EXIT_ERROR: 2, EXIT_USAGE: 3}


def worst(a: int, b: int) -> int:
    """The exit code that says more is wrong (an error over INVALID over VALID)."""
    return max(a, b, key=lambda c: _RANK.get(c, 2))


def check_task_args(model: str | None, task: str | None, mode: str, audit_outputs: int,
                    audit_against: str | Path | None) -> None:
    """The combinations of model, task, mode and audit that cannot run, refused first."""
    if not task and not model:
        raise UsageError("pass model='FILE.tflite' or task='NAME' (see 'edgeperf tasks')")
    if not task and (mode != "performance" or audit_outputs):
        what = "audit_outputs" if mode == "performance" else f"mode {mode!r}"
        raise UsageError(f"{what} needs a dataset and a quality target: pass task='NAME' (see "
                         "'edgeperf tasks'), or a task .toml naming your model and dataset")
    if audit_outputs < 0:
        raise UsageError("audit_outputs=N needs N >= 0")
    if audit_outputs and mode == "accuracy":
        raise UsageError("audit_outputs audits a performance run; use it with mode "
                         "'performance' (and audit_against an accuracy run) or 'submission'")
    if audit_outputs and mode == "performance" and not audit_against:
        raise UsageError("audit_outputs needs the accuracy outputs to compare with: pass "
                         "audit_against=RUN_DIR (an accuracy run of the same task) or use mode "
                         "'submission'")


@dataclasses.dataclass
class TaskRun:
    """One ``Device.run`` with a task or a mode other than performance."""

    session: Session
    task_name: str | None
    model: str | None
    mode: str
    base: RunSpec  # the run's spec but for settings and out_dir
    input_shapes: dict[str, list[int]] | None
    trace_all: bool
    audit_outputs: int
    audit_against: str | Path | None
    progress: Reporter | None
    compliance: bool = True  # submission mode: the audits TEST01 and TEST04 after each run

    def run(self, settings: list[TestSettings], root: Path, single_out: bool) -> list[RunResult]:
        from edgeperf.tasks.audit import check_reference, load_reference, reference_from_outputs
        from edgeperf.tasks.registry import load_task

        task = None
        if self.task_name:
            task = load_task(self.task_name, lambda msg: self._say("task", {"message": msg}))
            if self.model:
                task = task.with_model(self.model)
        reference = None
        if self.audit_against:
            reference = load_reference(self.audit_against)
            check_reference(reference, task)
        assert task is not None  # check_task_args: no other mode without a task
        acc = None
        per_scenario = self.mode == "submission" and len(settings) > 1
        if self.mode in ("accuracy", "submission"):
            # one accuracy run (a submission of several scenarios: one a scenario, each in
            # its scenario's settings, as LoadGen's SubmissionRun and the tree have them)
            acc = self._accuracy(task, settings[0], root / "accuracy" / (
                settings[0].scenario if per_scenario else "") if self.mode == "submission"
                else root)
            acc_result = RunResult(acc.out_dir, None, acc.exit_code, None,
                                   list(acc.result.reasons), acc.record, settings[0].scenario,
                                   self.mode, acc.result)
            if self.mode == "accuracy":
                return [acc_result]
        results = []
        for i, s in enumerate(settings):
            out = root
            if self.mode == "submission":
                out = root / "performance" / (s.scenario if per_scenario else "")
                if i:
                    acc = self._accuracy(task, s, root / "accuracy" / s.scenario)
                if self.audit_outputs:
                    reference = reference_from_outputs(acc.outputs, str(acc.out_dir), task,
                                                       acc.record["model"]["sha256"])
            elif len(settings) > 1 or not single_out:
                out = root / s.scenario
            r = self._performance(task, s, out, (reference, self.audit_outputs)
                                  if self.audit_outputs else None)
            if acc is not None:
                from edgeperf.tasks.run import annotate_with_accuracy

                annotate_with_accuracy(out, acc.out_dir, acc.result)
                r.accuracy = acc.result
                r.exit_code = worst(acc.exit_code, r.exit_code)
                r.result = _reload(out, r.result)
            if self.mode == "submission" and acc is not None and self.compliance:
                self._audits(task, s, out, acc.out_dir, root, per_scenario, r)
            results.append(r)
        return results

    def _accuracy(self, task: Task, s: TestSettings, acc_dir: Path) -> Any:
        """The accuracy phase, logged with the scenario's settings (a Server run's rate and
        bound too)."""
        return run_accuracy_on(self.session, AccuracySpec(
            task, self.session.profile, acc_dir, self.base.threads, self.input_shapes,
            scenario=s.scenario, settings=s, loadgen=self.base.loadgen,
            load_options=self._runtime_options()), self.progress)

    def _runtime_options(self) -> dict[str, Any]:
        """The caller's runtime options (--ep, --state, --no-xnnpack...) without the input
        shapes, which the task's runs set themselves."""
        return {k: v for k, v in self.base.load_options.items() if k != "input_shapes"}

    def _audits(self, task: Task, s: TestSettings, perf: Path, acc_dir: Path, root: Path,
                per_scenario: bool, r: RunResult) -> None:
        """TEST01 and TEST04 after the performance run; their verdicts join its record."""
        from edgeperf.tasks.compliance_runs import run_audits

        verdicts, runs = run_audits(
            self.task_name, s, perf, acc_dir,
            lambda test: root / test / (s.scenario if per_scenario else ""),
            lambda ts, d: self._performance(task, ts, d, None, meter=False),
            lambda ev, data: self._say(ev, data))
        for v, run in zip(verdicts.values(), runs, strict=True):
            if not v["passed"]:
                r.exit_code = worst(r.exit_code, EXIT_INVALID)
            if run.exit_code not in (EXIT_VALID, EXIT_INVALID):
                r.exit_code = worst(r.exit_code, run.exit_code)
        r.result = _reload(perf, r.result)

    def _performance(self, task: Task, s: TestSettings, out: Path,
                     audit: Any, meter: bool = True) -> RunResult:
        """One performance run on the task's data; ``meter=False`` (the compliance audits,
        which MLPerf does not power-measure) leaves a power meter out."""
        from edgeperf.tasks.run import annotate_with_audit, task_perf_spec

        spec = task_perf_spec(task, s, out, board=self.session.profile,
                              threads=self.base.threads, input_shapes=self.input_shapes,
                              audit=audit, trace_all=self.trace_all,
                              conf_files=list(self.base.conf_files))
        b = self.base  # what the task's spec leaves to the caller
        spec = dataclasses.replace(spec, meter=b.meter if meter else None,
                                   idle_baseline_s=b.idle_baseline_s if meter else 0.0,
                                   querylog=b.querylog, run_idle_timeout=b.run_idle_timeout,
                                   loadgen=b.loadgen, profile_ops=b.profile_ops,
                                   load_options=dict(self._runtime_options(),
                                                     **spec.load_options))
        r = run_on(self.session, spec, self.progress)  # the spec carries its options
        r.mode = self.mode
        if r.result.get("audit"):
            annotate_with_audit(out, r.result["audit"])
        return r

    def _say(self, event: str, data: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event, data)


def _reload(out: Path, rec: dict[str, Any]) -> dict[str, Any]:
    """result.json as the annotation left it (the accuracy result and submission_result)."""
    from edgeperf.outputs import record

    try:
        return record.load_result(out)
    except OSError:
        return rec
