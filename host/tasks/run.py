"""``edgeperf run`` with a task, a mode, an output audit or input shapes; ``edgeperf tasks``.

    --mode performance   timed scenarios (default); with --task the samples are the task's
    --mode accuracy      every sample once; metric and target checked (accuracy.txt)
    --mode submission    accuracy, then performance, as LoadGen's SubmissionRun: DIR/accuracy
                         and DIR/performance; a missed target fails the whole run (exit 3)

The performance summary of a submission run carries the accuracy result, so a FAIL never
hides behind a VALID performance result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.boards.profile import BoardError, BoardProfile
from edgeperf.links.base import LinkError
from edgeperf.outputs import record
from edgeperf.run.execute import (
    DEFAULT_SAMPLE_COUNT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    RunError,
    RunSpec,
    execute,
    resolve_model,
)
from edgeperf.settings import SettingsError, TestSettings
from edgeperf.tasks.accuracy import AccuracyResult, AccuracySpec, model_inputs, run_accuracy
from edgeperf.tasks.audit import (
    AuditError,
    AuditReference,
    OutputAudit,
    check_reference,
    load_reference,
    reference_from_outputs,
)
from edgeperf.tasks.datasets import DatasetError, fit
from edgeperf.tasks.registry import Task, TaskError, list_tasks, load_task
from edgeperf.tasks.training import TrainingError
from edgeperf_agent.lgseq import loaded_sample_set

PERF_SET_BYTES = 64 * 1024 * 1024  # default cap of a task's performance sample set
MODES = ("performance", "accuracy", "submission")
_RANK = {EXIT_VALID: 0, EXIT_INVALID: 1, EXIT_ERROR: 2, EXIT_USAGE: 3}


def parse_input_shapes(items: list[str] | None) -> dict[str, list[int]] | None:
    """``[NAME:]D,D,...`` items -> {name or "": dims}; "" means the model's only input."""
    if not items:
        return None
    shapes: dict[str, list[int]] = {}
    for item in items:
        name, _, dims = item.rpartition(":")
        try:
            shape = [int(d) for d in dims.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--input-shape {item!r}: expected [NAME:]D,D,... with positive integers, "
                "e.g. 1,224,224,3 or input_1:1,224,224,3") from None
        if not shape or min(shape) < 1:
            raise argparse.ArgumentTypeError(f"--input-shape {item!r}: sizes must be >= 1")
        shapes[name] = shape
    return shapes


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
        raise RunError(f"a task needs a .tflite model, not {task.model}")
    try:
        arrays = fit(task.dataset, model_inputs(model.data, input_shapes))
    except DatasetError as exc:
        raise RunError(str(exc)) from None
    n = len(task.dataset)
    per_sample = sum(a[0].nbytes for a in arrays)
    k = settings.performance_sample_count or min(n, DEFAULT_SAMPLE_COUNT,
                                                 max(1, PERF_SET_BYTES // max(per_sample, 1)))
    subset = perf_subset(n, min(k, n), settings.qsl_rng_seed)
    after = None
    if audit is not None:
        ref, count = audit
        after = OutputAudit(ref, subset, count, settings.sample_index_rng_seed, task.tolerance)
    return RunSpec(model=task.model, settings=settings, board=board, out_dir=out,
                   threads=threads, samples=[a[subset] for a in arrays],
                   qsl_indices=subset.tolist(),
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


def _say(msg: str) -> None:
    print(f"edgeperf: {msg}", file=sys.stderr)


def _worst(a: int, b: int) -> int:
    return max(a, b, key=lambda c: _RANK.get(c, 2))


def _run_accuracy(task: Task, args: argparse.Namespace, out: Path,
                  input_shapes: dict[str, list[int]] | None, settings: TestSettings):
    quiet = args.quiet

    def report(event: str, data: dict[str, Any]) -> None:
        if not quiet and event == "accuracy":
            print(f"  accuracy: {data['done']}/{data['total']} samples", file=sys.stderr)

    outcome = run_accuracy(AccuracySpec(task, args.board_profile, out, args.threads, input_shapes,
                                        scenario=settings.scenario, settings=settings), report)
    print(f"\n=== accuracy of {task.full_name} on {args.board} -> {out}")
    sys.stdout.write((out / "accuracy.txt").read_text())
    if not outcome.result.passed:
        for why in outcome.result.reasons:
            _say(f"accuracy FAIL: {why}")
    return outcome


def cmd_run_task(args: argparse.Namespace) -> int:
    """``edgeperf run`` when --task, --mode, --audit-outputs or --input-shape is given."""
    from edgeperf.cli.main import _board, _print_summary, build_settings
    from edgeperf.cli.progress import ProgressPrinter

    try:
        args.board_profile = _board(args)  # a profile, a .toml or ssh://, with --identity etc.
    except BoardError as exc:
        _say(str(exc))
        return EXIT_ERROR
    mode = args.mode
    if not args.task and not args.model:
        _say("pass --model FILE.tflite or --task NAME (see 'edgeperf tasks')")
        return EXIT_USAGE
    if not args.task and (mode != "performance" or args.audit_outputs):
        _say(f"{'--audit-outputs' if mode == 'performance' else '--mode ' + mode} needs a "
             "dataset and a quality target: pass --task NAME (see 'edgeperf tasks'), or a "
             "task .toml naming your model and dataset")
        return EXIT_USAGE
    if args.audit_outputs < 0:
        _say("--audit-outputs N needs N >= 0")
        return EXIT_USAGE
    if args.audit_outputs and mode == "accuracy":
        _say("--audit-outputs audits a performance run; use it with --mode performance "
             "(and --audit-against an accuracy run) or --mode submission")
        return EXIT_USAGE
    if args.audit_outputs and mode == "performance" and not args.audit_against:
        _say("--audit-outputs needs the accuracy outputs to compare with: pass --audit-against "
             "RUN_DIR (an accuracy run of the same task) or use --mode submission")
        return EXIT_USAGE
    if mode != "accuracy" and not args.scenario:
        _say("--scenario is needed for a performance run (SingleStream, MultiStream, Server, "
             "Offline)")
        return EXIT_USAGE
    try:
        input_shapes = parse_input_shapes(args.input_shape)
    except argparse.ArgumentTypeError as exc:
        _say(str(exc))
        return EXIT_USAGE
    scenarios = [s for group in (args.scenario or [["SingleStream"]]) for s in group]
    try:
        settings = [build_settings(args, scen) for scen in scenarios]
    except SettingsError as exc:
        _say(str(exc))
        return EXIT_USAGE
    label = (args.task or args.model).replace(":", "-").replace("/", "_")
    root = Path(args.out) if args.out else Path("results") / (
        time.strftime("%Y%m%d-%H%M%S") + "-" + label)
    try:
        task = None
        if args.task:
            task = load_task(args.task, lambda msg: None if args.quiet else _say(msg))
            if args.model:
                task = task.with_model(args.model)
        reference = None
        if args.audit_against:
            reference = load_reference(args.audit_against)
            check_reference(reference, task)
        code = EXIT_VALID
        acc = None
        if mode in ("accuracy", "submission"):
            acc_dir = root / "accuracy" if mode == "submission" else root
            # the accuracy phase logs the run's settings (a Server run's rate and bound too)
            acc = _run_accuracy(task, args, acc_dir, input_shapes, settings[0])
            code = acc.exit_code
            if mode == "accuracy":
                return code
            if args.audit_outputs:
                reference = reference_from_outputs(acc.outputs, str(acc_dir), task,
                                                   acc.record["model"]["sha256"])
        for s in settings:
            out = root
            if mode == "submission":
                out = root / "performance" / (s.scenario if len(settings) > 1 else "")
            elif len(settings) > 1 or not args.out:
                out = root / s.scenario
            printer = ProgressPrinter(s.min_duration_ms / 1000, s.min_query_count,
                                      quiet=args.quiet)
            audit = (reference, args.audit_outputs) if args.audit_outputs else None
            if task is not None:
                spec = task_perf_spec(task, s, out, board=args.board_profile, threads=args.threads,
                                      input_shapes=input_shapes, audit=audit,
                                      trace_all=args.trace_all, conf_files=args.user_conf)
            else:
                spec = RunSpec(model=args.model, settings=s, board=args.board_profile, out_dir=out,
                               threads=args.threads, conf_files=args.user_conf,
                               trace_all=args.trace_all,
                               load_options={"input_shapes": input_shapes})
            outcome = execute(spec, printer)
            if outcome.result.get("audit"):
                annotate_with_audit(out, outcome.result["audit"])
            if acc is not None:
                annotate_with_accuracy(out, acc.out_dir, acc.result)
            print(f"\n=== {s.scenario} on {args.board}: {task.full_name if task else args.model}"
                  f" -> {out}")
            _print_summary(out)
            for why in (outcome.result.get("audit") or {}).get("invalid_reasons", []):
                _say(why)
            if outcome.error:
                _say(outcome.error)
                _say(f"everything measured was kept in {out}")
            code = _worst(code, outcome.exit_code)
        return code
    except (TaskError, TrainingError, AuditError, RunError, BoardError, SettingsError,
            LinkError) as exc:
        _say(str(exc))
        return EXIT_ERROR


def cmd_tasks(args: argparse.Namespace) -> int:
    """List the built-in tasks and those in ./tasks/*.toml."""
    for d in list_tasks():
        variants = "/".join(v for v in d.variants if v) or "-"
        print(f"{d.name:16s} {variants:10s} {d.metric:5s} {d.target_text}")
        print(f"{'':16s} {d.description}" + ("" if d.source == "built-in" else
                                               f" [{d.source}]"))
    return EXIT_VALID


__all__ = ["MODES", "annotate_with_accuracy", "cmd_run_task", "cmd_tasks", "parse_input_shapes",
           "perf_subset", "task_perf_spec"]
