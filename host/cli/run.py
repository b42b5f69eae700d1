"""``edgeperf run``: timed scenarios on a board; with a task, accuracy and submission runs and
the output audit.

    --mode performance   timed scenarios (default); with --task the samples are the task's
    --mode accuracy      every sample once; metric and target checked (accuracy.txt)
    --mode submission    accuracy, then performance, as LoadGen's SubmissionRun: DIR/accuracy
                         and DIR/performance; a missed target fails the whole run (exit 3)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from edgeperf.boards.profile import BoardError
from edgeperf.cli.common import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    add_board_arg,
    add_settings_args,
    add_ssh_args,
    board,
    build_settings,
    count,
    early_stopping_hint,
    formatter,
    non_negative,
    out_dir_problem,
    print_summary,
    say,
    scenarios,
    worst,
)
from edgeperf.cli.progress import ProgressPrinter

DEFAULT_PRESET = "quick"
MODES = ("performance", "accuracy", "submission")

EXAMPLES = """examples:
  edgeperf run --model builtin:mlp --scenario SingleStream
  edgeperf run --model my_model.tflite --scenario Server --target-qps 200 --target-latency-ms 20
  edgeperf run --task ic-digits --mode submission --scenario SingleStream
  edgeperf run --board raspberry-pi-4 --model builtin:mlp --scenario Offline --meter sysfs

"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a benchmark on a board", formatter_class=formatter,
                       description="Run MLPerf scenarios on a board, timed on the device; "
                                   "write LoadGen's logs and result.json, print the summary.",
                       epilog=EXAMPLES + EXIT_CODES_HELP)
    add_board_arg(r)
    r.add_argument("--model",
                   help="a .tflite path, builtin:NAME or synthetic:null|busy:US (see 'edgeperf "
                        "models'; with --task: your own model for the task's data and target)")
    r.add_argument("--scenario", type=scenarios, action="append",
                   help="SingleStream, MultiStream, Server, Offline (comma list or repeat)")
    add_settings_args(r, DEFAULT_PRESET)
    r.add_argument("--threads", type=count(1, " (leave it out for the runtime's own choice)"),
                   metavar="N", help="runtime threads (default: the runtime's own choice)")
    r.add_argument("--out", metavar="DIR",
                   help="output directory, created if missing (default: "
                        "results/TIMESTAMP-MODEL/SCENARIO)")
    r.add_argument("--quiet", action="store_true", help="no progress (the summary still prints)")
    r.add_argument("--trace-all", action="store_true",
                   help="every query in mlperf_log_trace.json (default: the first 10,000)")
    add_ssh_args(r)
    t = r.add_argument_group("tasks and accuracy")
    t.add_argument("--task", metavar="NAME",
                   help="a task (model + dataset + target): ic-digits, ad-synthetic, "
                        "tasks/NAME.toml or a .toml path; NAME:VARIANT picks int8 or fp32")
    t.add_argument("--mode", default="performance", choices=MODES,
                   help="accuracy: every sample once, metric checked; submission: accuracy "
                        "then performance (default: performance)")
    t.add_argument("--audit-outputs", type=count(0), default=0, metavar="N",
                   help="after the timed run, check N queried samples' outputs against an "
                        "accuracy run's (MLPerf TEST01)")
    t.add_argument("--audit-against", metavar="RUN_DIR",
                   help="the accuracy run that --audit-outputs compares with")
    t.add_argument("--input-shape", action="append", metavar="[NAME:]D,D,...",
                   help="set an input's shape (dynamic dimensions), e.g. 1,224,224,3")
    p = r.add_argument_group("power and long runs")
    p.add_argument("--meter", metavar="URL",
                   help="measure power: ptd://HOST:PORT, lpm01a:///dev/ttyACM0, joulescope, "
                        "sysfs (the device's sensors) or csv:FILE (default: the board's "
                        "[meter] url, if any)")
    p.add_argument("--idle-baseline", type=non_negative, default=0.0, metavar="S",
                   help="with --meter: measure the idle device for S seconds first, for net "
                        "figures")
    p.add_argument("--querylog", choices=("full", "summary"), default="full",
                   help="summary: the device keeps the per-query log and sends its sorted "
                        "latencies (exact scoring; for long runs over a serial line) "
                        "(default: full)")
    r.set_defaults(fn=cmd_run)


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
            raise ValueError(f"--input-shape {item!r}: expected [NAME:]D,D,... with positive "
                             "integers, e.g. 1,224,224,3 or input_1:1,224,224,3") from None
        if not shape or min(shape) < 1:
            raise ValueError(f"--input-shape {item!r}: sizes must be >= 1")
        shapes[name] = shape
    return shapes


def _usage_problem(args: argparse.Namespace) -> str | None:
    """The combinations of flags that cannot run, refused before anything starts."""
    mode = args.mode
    if not args.task and not args.model:
        return "run needs --model FILE.tflite (or builtin:NAME) or --task NAME (see " \
               "'edgeperf models' and 'edgeperf tasks')"
    if not args.task and (mode != "performance" or args.audit_outputs):
        return (f"{'--audit-outputs' if mode == 'performance' else '--mode ' + mode} needs a "
                "dataset and a quality target: pass --task NAME (see 'edgeperf tasks'), or a "
                "task .toml naming your model and dataset")
    if args.audit_outputs and mode == "accuracy":
        return ("--audit-outputs audits a performance run; use it with --mode performance "
                "(and --audit-against an accuracy run) or --mode submission")
    if args.audit_outputs and mode == "performance" and not args.audit_against:
        return ("--audit-outputs needs the accuracy outputs to compare with: pass "
                "--audit-against RUN_DIR (an accuracy run of the same task) or use --mode "
                "submission")
    if mode != "accuracy" and not args.scenario:
        return ("--scenario is needed for a performance run (SingleStream, MultiStream, "
                "Server, Offline)")
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from edgeperf.settings import SettingsError

    problem = _usage_problem(args)
    try:
        input_shapes = None if problem else parse_input_shapes(args.input_shape)
        all_settings = [] if problem else [
            build_settings(args, scen)
            for scen in [s for group in (args.scenario or [["SingleStream"]]) for s in group]]
        profile = None if problem else board(args)  # a profile, a .toml or a URL, with flags
    except (ValueError, SettingsError, BoardError) as exc:
        problem = str(exc)
    label = (args.task or args.model or "").replace(":", "-").replace("/", "_")
    root = Path(args.out) if args.out else Path("results") / (
        time.strftime("%Y%m%d-%H%M%S") + "-" + label)
    problem = problem or out_dir_problem(root)
    if problem:
        say(problem)
        return EXIT_USAGE
    try:
        return _run(args, profile, all_settings, input_shapes, root)
    except OSError as exc:  # a disk that fills, a directory removed under the run
        say(f"{exc.filename or root}: {exc.strerror or exc}")
        return EXIT_ERROR


def _run(args: argparse.Namespace, profile: Any, all_settings: list, input_shapes: Any,
         root: Path) -> int:
    from edgeperf.links import LinkError
    from edgeperf.run.execute import RunError, RunSpec, execute
    from edgeperf.settings import SettingsError
    from edgeperf.tasks.audit import AuditError, check_reference, load_reference
    from edgeperf.tasks.registry import TaskError, load_task
    from edgeperf.tasks.run import annotate_with_accuracy, annotate_with_audit, task_perf_spec
    from edgeperf.tasks.training import TrainingError

    mode = args.mode
    try:
        task = None
        if args.task:
            task = load_task(args.task, lambda msg: None if args.quiet else say(msg))
            if args.model:
                task = task.with_model(args.model)
        reference = None
        if args.audit_against:
            reference = load_reference(args.audit_against)
            check_reference(reference, task)
        code, acc = EXIT_VALID, None
        if mode in ("accuracy", "submission"):
            acc, code, reference = _accuracy(args, task, profile, root, input_shapes,
                                             all_settings[0], reference)
            if mode == "accuracy":
                return code
        for s in all_settings:
            out = root
            if mode == "submission":
                out = root / "performance" / (s.scenario if len(all_settings) > 1 else "")
            elif len(all_settings) > 1 or not args.out:
                out = root / s.scenario
            audit = (reference, args.audit_outputs) if args.audit_outputs else None
            if task is not None:
                spec = task_perf_spec(task, s, out, board=profile, threads=args.threads,
                                      input_shapes=input_shapes, audit=audit,
                                      trace_all=args.trace_all, conf_files=args.user_conf)
            else:
                spec = RunSpec(model=args.model, settings=s, board=profile, out_dir=out,
                               threads=args.threads, conf_files=args.user_conf,
                               trace_all=args.trace_all, meter=args.meter,
                               idle_baseline_s=args.idle_baseline, querylog=args.querylog,
                               load_options={"input_shapes": input_shapes} if input_shapes
                               else {})
            with ProgressPrinter(s.min_duration_ms / 1000, s.min_query_count,
                                 quiet=args.quiet) as printer:
                outcome = execute(spec, printer)
            if outcome.result.get("audit"):
                annotate_with_audit(out, outcome.result["audit"])
            if acc is not None:
                annotate_with_accuracy(out, acc.out_dir, acc.result)
            _print_run(args, s, task.full_name if task else args.model, out, outcome)
            code = worst(code, outcome.exit_code)
        return code
    except (TaskError, TrainingError, AuditError, RunError, BoardError, SettingsError,
            LinkError) as exc:
        say(str(exc))
        return EXIT_ERROR


def _accuracy(args: argparse.Namespace, task: Any, profile: Any, root: Path,
              input_shapes: Any, settings: Any, reference: Any) -> tuple[Any, int, Any]:
    """The accuracy phase (all of an accuracy run): (outcome, exit code, audit reference)."""
    from edgeperf.tasks.accuracy import AccuracySpec, run_accuracy
    from edgeperf.tasks.audit import reference_from_outputs

    out = root / "accuracy" if args.mode == "submission" else root
    # the accuracy phase logs the run's settings (a Server run's rate and bound too)
    with ProgressPrinter(quiet=args.quiet) as printer:
        acc = run_accuracy(AccuracySpec(task, profile, out, args.threads, input_shapes,
                                        scenario=settings.scenario, settings=settings), printer)
    print(f"\n=== accuracy of {task.full_name} on {args.board} -> {out}")
    sys.stdout.write((out / "accuracy.txt").read_text())
    for why in acc.result.reasons if not acc.result.passed else []:
        say(f"accuracy FAIL: {why}")
    if args.audit_outputs and args.mode == "submission":
        reference = reference_from_outputs(acc.outputs, str(out), task,
                                           acc.record["model"]["sha256"])
    return acc, acc.exit_code, reference


def _print_run(args: argparse.Namespace, s: Any, what: str, out: Path, outcome: Any) -> None:
    """A run's summary, warnings, power block and error; why it was INVALID, if it can say."""
    print(f"\n=== {s.scenario} on {args.board}: {what} -> {out}")
    print_summary(out)
    for warning in outcome.result.get("warnings", []):
        say(f"warning: {warning.removeprefix('edgeperf: ')}")
    if outcome.result.get("power"):
        from edgeperf.power.energy import format_power_block

        sys.stdout.write(format_power_block(outcome.result["power"]))
    for why in (outcome.result.get("audit") or {}).get("invalid_reasons", []):
        say(why)
    if outcome.error:
        say(outcome.error)
        say(f"everything measured was kept in {out}")
    if outcome.exit_code == EXIT_INVALID and outcome.summary is not None:
        hint = early_stopping_hint(s, args.preset, outcome.summary.query_count)
        if hint:
            say(f"hint: {hint}")
