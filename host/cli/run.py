"""``edgeperf run``: timed scenarios on a board; with a task, accuracy and submission runs and
the output audit.

    --mode performance   timed scenarios (default); with --task the samples are the task's
    --mode accuracy      every sample once; metric and target checked (accuracy.txt)
    --mode submission    accuracy, then performance, as LoadGen's SubmissionRun: DIR/accuracy
                         and DIR/performance; a missed target fails the whole run (exit 3)

A microcontroller board (link.type = "tiny") runs MLPerf Tiny's procedures instead
(cli/run_tiny.py): --mode performance, accuracy or energy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import edgeperf
from edgeperf.cli.common import (
    EXIT_CODES_HELP,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    add_board_arg,
    add_settings_args,
    add_ssh_args,
    add_store_arg,
    build_settings,
    count,
    early_stopping_hint,
    formatter,
    non_negative,
    out_dir_problem,
    print_summary,
    say,
    scenarios,
    settings_overrides,
    use_store,
    worst,
)
from edgeperf.cli.progress import ProgressPrinter
from edgeperf.cli.runtime_args import add_runtime_args, runtime_options
from edgeperf.cli.run_tiny import add_tiny_args, agent_board_problem, cmd_run_tiny, mcu_profile

DEFAULT_PRESET = "quick"

EXAMPLES = """examples:
  edgeperf run --model builtin:mlp --scenario SingleStream
  edgeperf run --model my_model.tflite --scenario Server --target-qps 200 --target-latency-ms 20
  edgeperf run --task ic-digits --mode submission --scenario SingleStream
  edgeperf run --board raspberry-pi-4 --model builtin:mlp --scenario Offline --meter sysfs
  edgeperf run --board emulated-tiny --task ic-digits --mode performance   # MLPerf Tiny

"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a benchmark on a board", formatter_class=formatter,
                       description="Run MLPerf scenarios on a board, timed on the device; "
                                   "write LoadGen's logs and result.json, print the summary.",
                       epilog=EXAMPLES + EXIT_CODES_HELP)
    add_board_arg(r)
    r.add_argument("--model",
                   help="a .tflite, .onnx or .pte path, builtin:NAME or "
                        "synthetic:null|busy:US|sleep:US (see 'edgeperf models'; with --task: "
                        "your own model for the task's data and target)")
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
    r.add_argument("--loadgen", choices=("edgeperf", "official"), default="edgeperf",
                   help="who drives and times the run on the device: edgeperf's own loops, "
                        "or the official MLCommons LoadGen (needs 'pip install "
                        "mlcommons-loadgen' on the device; its own log files are written) "
                        "(default: edgeperf)")
    add_ssh_args(r)
    add_store_arg(r)
    t = r.add_argument_group("tasks and accuracy")
    t.add_argument("--task", metavar="NAME",
                   help="a task (model + dataset + target): ic-digits, ad-synthetic, "
                        "tasks/NAME.toml or a .toml path; NAME:VARIANT picks int8 or fp32")
    t.add_argument("--mode", default="performance", choices=(*edgeperf.MODES, "energy"),
                   help="accuracy: every sample once, metric checked; submission: accuracy, "
                        "performance, then the compliance audits TEST01 and TEST04; energy: "
                        "MLPerf Tiny's energy procedure (MCU boards, with --meter) (default: "
                        "performance)")
    t.add_argument("--no-compliance", dest="compliance", action="store_false",
                   help="submission mode without TEST01 and TEST04 (quicker; an open result "
                        "needs none, a closed one both)")
    t.add_argument("--into", metavar="TREE",
                   help="submission mode: then lay the runs out in this submission tree "
                        "('edgeperf submission init' made it), as 'submission add' does")
    t.add_argument("--system", metavar="NAME",
                   help="with --into: the system's name in the tree (systems/NAME.json)")
    t.add_argument("--benchmark", metavar="NAME",
                   help="with --into: the rules' benchmark (default: the one the task runs)")
    t.add_argument("--audit-outputs", type=count(0), default=0, metavar="N",
                   help="after the timed run, check N queried samples' outputs against an "
                        "accuracy run's (MLPerf TEST01)")
    t.add_argument("--audit-against", metavar="RUN_DIR",
                   help="the accuracy run that --audit-outputs compares with")
    t.add_argument("--input-shape", action="append", metavar="[NAME:]D,D,...",
                   help="set an input's shape (dynamic dimensions), e.g. 1,224,224,3")
    add_runtime_args(r)
    p = r.add_argument_group("power and long runs")
    p.add_argument("--meter", metavar="URL",
                   help="measure power: ptd://HOST:PORT, lpm01a:///dev/ttyACM0, joulescope, "
                        "sysfs (the device's sensors) or csv:FILE (default: the board's "
                        "[meter] url, if any)")
    p.add_argument("--idle-baseline", type=non_negative, default=0.0, metavar="S",
                   help="with --meter: measure the idle device for S seconds first, for net "
                        "figures")
    p.add_argument("--querylog", choices=("auto", "full", "summary"), default="auto",
                   help="summary: the device keeps the per-query log and sends its sorted "
                        "latencies (exact scoring; for long runs over a serial line); full: "
                        "every query's row; auto (default): full, unless a serial line would "
                        "not carry it while the run lasts (the run says which it chose)")
    add_tiny_args(r)
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
    if getattr(args, "into", None) and (mode != "submission" or not args.system):
        return ("--into TREE lays a submission run out in a tree: it needs --mode submission "
                "and --system NAME (and the tree from 'edgeperf submission init')")
    if mode != "accuracy" and not args.scenario:
        return ("--scenario is needed for a performance run (SingleStream, MultiStream, "
                "Server, Offline)")
    return None


def cmd_run(args: argparse.Namespace) -> int:
    """Check the flags, connect once, run each scenario through ``Device.run`` and print each
    result as it comes (a task's accuracy and submission modes: all of them in one call).
    An MCU board runs MLPerf Tiny's procedure instead (run_tiny.py)."""
    from edgeperf.outputs.record import COMMAND_LINE

    use_store(args)
    token = COMMAND_LINE.set(getattr(args, "command_line", None))  # each run's result.json
    try:
        return _cmd_run(args)
    finally:
        COMMAND_LINE.reset(token)


def _cmd_run(args: argparse.Namespace) -> int:
    profile = mcu_profile(args.board)
    if profile is not None and args.loadgen == "official":
        say(f"--loadgen official: board {args.board} is a microcontroller; MCU boards run "
            "MLPerf Tiny's procedures (EEMBC runner protocol), not LoadGen's: leave "
            "--loadgen out")
        return EXIT_USAGE
    if profile is not None:
        return cmd_run_tiny(args, profile)
    problem = agent_board_problem(args) or _usage_problem(args)
    if problem:
        say(problem)
        return EXIT_USAGE
    try:
        input_shapes = parse_input_shapes(args.input_shape)
        load_options = runtime_options(args)
    except ValueError as exc:
        say(str(exc))
        return EXIT_USAGE
    scenario_names = [s for group in (args.scenario or [["SingleStream"]]) for s in group]
    # settled here, in the flags' words, before a board is touched (UsageError)
    settings = {scen: build_settings(args, scen) for scen in scenario_names}
    label = (args.task or args.model).replace(":", "-").replace("/", "_")
    root = Path(args.out) if args.out else Path("results") / (
        time.strftime("%Y%m%d-%H%M%S") + "-" + label)
    problem = out_dir_problem(root)
    if problem:
        say(problem)
        return EXIT_USAGE
    # one call for a task's modes with an accuracy phase (it runs once for all scenarios);
    # one a scenario otherwise, each printed as soon as it is done
    together = args.mode != "performance"
    calls = [scenario_names] if together else [[scen] for scen in scenario_names]
    targets = {scen: (s.min_duration_ms / 1000, s.min_query_count) for scen, s in
               settings.items()}
    code, shown = EXIT_VALID, set()
    with ProgressPrinter(quiet=args.quiet, targets=targets) as printer, \
            edgeperf.connect(args.board, identity=args.identity, known_hosts=args.known_hosts,
                             python=args.python, progress=printer) as dev:
        for names in calls:
            one_out = together or (args.out and len(scenario_names) == 1)
            results = dev.run(
                args.model, task=args.task, scenario=names if together else names[0],
                mode=args.mode, preset=args.preset, user_conf=args.user_conf,
                conf_model=args.conf_model, seed=args.seed,
                out_dir=root if one_out else root / names[0],
                threads=args.threads, meter=args.meter, idle_baseline_s=args.idle_baseline,
                querylog=args.querylog, input_shapes=input_shapes, trace_all=args.trace_all,
                load_options=load_options, profile_ops=args.profile_ops,
                audit_outputs=args.audit_outputs, audit_against=args.audit_against,
                loadgen=args.loadgen, progress=printer, compliance=args.compliance,
                **settings_overrides(args))
            for r in results if isinstance(results, list) else [results]:
                _record_command(r, getattr(args, "command_line", None))
                printer.close()  # nothing live while a summary prints
                code = worst(code, _print_result(args, r, settings.get(r.scenario), shown))
    if getattr(args, "into", None):
        code = worst(code, _into_tree(args, root))
    return code


def _into_tree(args: argparse.Namespace, root: Path) -> int:
    """--into: the runs just made, laid out in the tree (whatever their verdicts: the tree's
    check says what a result lacks)."""
    from edgeperf.submission.tree import add_runs
    from edgeperf.tasks.compliance_runs import audit_plan

    bench = args.benchmark or audit_plan(args.task)[1]["benchmark"]
    if not bench:
        say(f"--into: task {args.task} is no benchmark of the tree's rules; pass --benchmark "
            f"NAME (the runs are kept in {root}: 'edgeperf submission add' takes them)")
        return EXIT_USAGE
    keys = add_runs(args.into, [root], system_name=args.system, benchmark=bench)
    for k in keys:
        print(f"added {k} to {args.into}")
    print(f"next: edgeperf submission check {args.into}")
    return EXIT_VALID


def _record_command(r: Any, command: str | None) -> None:
    """The command line into result.json of the run and of the runs it made with it (a
    submission run's accuracy phase and compliance audits): their READMEs quote it."""
    if not command:
        return
    from edgeperf.outputs import record

    dirs = {Path(r.out_dir)}
    dirs.add(Path((r.result.get("accuracy") or {}).get("run_dir") or r.out_dir))
    dirs |= {Path(v["dir"]) for k, v in (r.result.get("compliance_audits") or {}).items()
             if k != "plan"}
    for d in dirs:
        try:
            rec = record.load_result(d)
        except (OSError, ValueError):
            continue  # a run that left no record keeps none
        rec["command"] = command
        record.write_record(d, rec)
    r.result["command"] = command


def _what(args: argparse.Namespace, r: Any) -> str:
    """The task (NAME:VARIANT, as it was run) or the model."""
    task = r.result.get("task") or {}
    if not task.get("name"):
        return args.model
    return f"{task['name']}:{task['variant']}" if task.get("variant") else task["name"]


def _driver_line(rec: dict[str, Any]) -> str:
    if rec.get("driver") == "loadgen-official":
        return (f"driver: loadgen-official (MLCommons LoadGen {rec.get('loadgen_version')} on "
                "the device; its own summary below)")
    return "driver: edgeperf (edgeperf's loops on the device, scored by LoadGen's rules)"


def _print_result(args: argparse.Namespace, r: Any, s: Any, shown: set[str]) -> int:
    """A run's summary, warnings, power block and error; why it was INVALID, if it can say.
    A submission run's accuracy phase is printed (once) before its performance runs."""
    acc_dir = (r.result.get("accuracy") or {}).get("run_dir") if r.mode == "submission" \
        else str(r.out_dir) if r.mode == "accuracy" else None
    if acc_dir and acc_dir not in shown:
        shown.add(acc_dir)
        print(f"\n=== accuracy of {_what(args, r)} on {args.board} -> {acc_dir}")
        sys.stdout.write((Path(acc_dir) / "accuracy.txt").read_text())
        if r.accuracy is not None and not r.accuracy.passed:
            for why in r.accuracy.reasons:
                say(f"accuracy FAIL: {why}")
    if r.mode == "accuracy":
        return r.exit_code
    print(f"\n=== {r.scenario} on {args.board}: {_what(args, r)} -> {r.out_dir}")
    print(_driver_line(r.result))
    print_summary(Path(r.out_dir))
    for warning in r.result.get("warnings", []):
        say(f"warning: {warning.removeprefix('edgeperf: ')}")
    if r.result.get("power"):
        from edgeperf.power.energy import format_power_block

        sys.stdout.write(format_power_block(r.result["power"]))
    if r.result.get("op_profile"):
        from edgeperf.outputs.op_profile import text

        print(text(r.result["op_profile"]))
    for why in (r.result.get("audit") or {}).get("invalid_reasons", []):
        say(why)
    for test, v in (r.result.get("compliance_audits") or {}).items():
        if test == "plan":
            continue
        acc = "" if "accuracy_pass" not in v else \
            f"accuracy {'TEST PASS' if v['accuracy_pass'] else 'TEST FAIL'}, "
        perf = v.get("verify_performance") or v.get("error", "no verdict")
        print(f"compliance {test}: {acc}performance {perf} ({v['dir']})")
    if r.error:
        say(r.error)
        say(f"everything measured was kept in {r.out_dir}")
    if r.exit_code == EXIT_INVALID and r.summary is not None and s is not None:
        hint = early_stopping_hint(s, args.preset, r.summary.query_count)
        if hint:
            say(f"hint: {hint}")
    return r.exit_code
