"""``edgeperf run --board <MCU board>``: one of MLPerf Tiny's procedures through the firmware
bridge, instead of the agent's scenarios.

    --mode performance   median throughput of 5 windows of >= 10 s each (inf./sec.)
    --mode accuracy      every sample of the task once (infer 1 0), its metric and target
    --mode energy        median energy per inference of 5 windows, with --meter (uJ/inf.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import edgeperf
from edgeperf.boards.profile import BoardProfile, load_board
from edgeperf.cli.common import (
    EXIT_USAGE,
    count,
    out_dir_problem,
    positive,
    print_summary,
    say,
)
from edgeperf.cli.progress import ProgressPrinter
from edgeperf.errors import UsageError

TINY_WINDOWS, TINY_WINDOW_S = 5, 10.0  # MLPerf Tiny's rules (firmware_bridge.procedures)


def add_tiny_args(r: argparse.ArgumentParser) -> None:
    g = r.add_argument_group("microcontroller boards (MLPerf Tiny; link.type = \"tiny\")")
    g.add_argument("--port", metavar="PATH",
                   help="the board's serial port, over its profile's (an emulated board's: "
                        "what 'edgeperf emulate mcu' prints)")
    g.add_argument("--tiny-windows", type=count(1), default=None, metavar="N",
                   help=f"performance/energy windows (default: {TINY_WINDOWS}, as MLPerf Tiny "
                        "requires; another count makes the result INVALID)")
    g.add_argument("--tiny-window-s", type=positive, default=None, metavar="S",
                   help=f"seconds of inference a window (default: {TINY_WINDOW_S:g}, MLPerf "
                        "Tiny's minimum; shorter makes the result INVALID, the rule named)")


def mcu_profile(board: str) -> BoardProfile | None:
    """The board's profile when it is an MCU board; None otherwise (or when it cannot be
    loaded: the agent's path says why, as it always has)."""
    try:
        profile = load_board(board)
    except UsageError:
        return None
    return profile if profile.link_type == "tiny" else None


def agent_board_problem(args: argparse.Namespace) -> str | None:
    """The MCU flags on a board that runs the agent."""
    if args.mode == "energy":
        return (f"--mode energy is MLPerf Tiny's energy procedure, for microcontroller boards "
                f"(link.type = \"tiny\"); board {args.board} runs the agent: measure its power "
                "with --meter in a performance run")
    for flag, value in (("--port", args.port), ("--tiny-windows", args.tiny_windows),
                        ("--tiny-window-s", args.tiny_window_s)):
        if value is not None:
            return f"{flag} applies to microcontroller boards; board {args.board} runs the agent"
    return None


def _problem(args: argparse.Namespace, profile: BoardProfile) -> str | None:
    what = f"board {profile.name} is a microcontroller running MLPerf Tiny's procedures"
    if args.model:
        return (f"{what}: it runs the model its firmware was built with; drop --model (pass "
                "--task for the task it runs)")
    if args.scenario:
        return (f"{what}, not LoadGen scenarios: drop --scenario and pick --mode performance, "
                "accuracy or energy")
    if args.mode not in ("performance", "accuracy", "energy"):
        return f"{what}: --mode {args.mode} is not one of them (performance, accuracy, energy)"
    for flag, given in (("--audit-outputs", args.audit_outputs), ("--input-shape",
                        args.input_shape), ("--threads", args.threads),
                        ("--idle-baseline", args.idle_baseline),
                        ("--meter", args.meter and args.mode != "energy")):
        if given:
            return f"{what}: {flag} does not apply to it" + (
                " outside --mode energy" if flag == "--meter" else "")
    return None


def cmd_run_tiny(args: argparse.Namespace, profile: BoardProfile) -> int:
    problem = _problem(args, profile)
    if problem:
        say(problem)
        return EXIT_USAGE
    label = (args.task or (profile.tiny.default_task if profile.tiny else None) or
             profile.name).replace(":", "-").replace("/", "_")
    root = Path(args.out) if args.out else Path("results") / (
        time.strftime("%Y%m%d-%H%M%S") + f"-{label}-{args.mode}")
    problem = out_dir_problem(root)
    if problem:
        say(problem)
        return EXIT_USAGE
    tuning = {k: v for k, v in (("windows", args.tiny_windows),
                                ("window_s", args.tiny_window_s)) if v is not None}
    with ProgressPrinter(quiet=args.quiet) as printer, \
            edgeperf.connect(profile, port=args.port, progress=printer) as dev:
        r = dev.run(task=args.task, mode=args.mode, out_dir=root, meter=args.meter,
                    progress=printer, **tuning)
        printer.close()
    _record_command(Path(r.out_dir), getattr(args, "command_line", None))
    print(f"\n=== MLPerf Tiny {r.mode} on {profile.name}: {r.task} -> {r.out_dir}")
    print_summary(Path(r.out_dir))
    if r.mode == "accuracy" and r.passed is False:
        for why in r.reasons:
            say(f"accuracy FAIL: {why}")
    return r.exit_code


def _record_command(out: Path, command: str | None) -> None:
    """The command line into the MCU run's result.json (its tree README quotes it)."""
    import json

    rec_path = out / "result.json"
    if not command or not rec_path.is_file():
        return
    rec = json.loads(rec_path.read_text())
    rec["command"] = command
    tmp = rec_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n")
    tmp.replace(rec_path)
