"""What the commands share: exit codes, the settings and board flags, argument types,
messages in the words of the command line, and the printing of a run's summary.

Public to the cli package: each command module imports from here, never from another
command's module.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import edgeperf
from edgeperf.boards.profile import BoardProfile, load_board, with_overrides
from edgeperf.run.execute import EXIT_ERROR, EXIT_INVALID, EXIT_USAGE, EXIT_VALID
from edgeperf.scoring.loadgen import SCENARIOS, early_stopping_min_queries
from edgeperf.settings import PRESETS, ConfError, SettingsError, TestSettings

__all__ = ["DEFAULT_BOARD", "EXIT_CODES_HELP", "EXIT_ERROR", "EXIT_INVALID", "EXIT_USAGE",
           "EXIT_VALID", "add_board_arg", "add_settings_args", "add_ssh_args", "board",
           "build_settings", "count", "early_stopping_hint", "formatter", "in_flag_words",
           "install_command", "install_hints", "non_negative", "out_dir_problem", "positive",
           "print_summary", "say", "scenarios", "settings_overrides", "worst"]

EXIT_CODES_HELP = """exit codes:
  0  VALID (every run of the command)
  3  a run completed but is INVALID, or missed its accuracy target
  1  an error (an agent that died mid-run too: what it measured is still written)
  2  a usage error (bad flags, an unknown board, an --out that cannot be a directory)"""

DEFAULT_BOARD = "local"
_BOARD_HELP = (f"board profile name (see 'edgeperf boards'), .toml path, ssh://[user@]host[:port] "
               f"or serial:///dev/ttyX (default: {DEFAULT_BOARD}, this machine)")
_RANK = {EXIT_VALID: 0, EXIT_INVALID: 1, EXIT_ERROR: 2, EXIT_USAGE: 3}


class _Formatter(argparse.HelpFormatter):
    """Help text filled to the terminal, except indented paragraphs (examples, the exit-code
    table), kept line for line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        return "\n\n".join(p if "\n  " in p else super(_Formatter, self)._fill_text(
            p, width, indent) for p in paragraphs)


formatter = _Formatter


def say(msg: str) -> None:
    """A message to the user, on stderr, in the command line's words."""
    print(f"edgeperf: {install_hints(msg)}", file=sys.stderr, flush=True)


def worst(a: int, b: int) -> int:
    """The exit code of two runs: usage error > error > INVALID > VALID."""
    return max(a, b, key=lambda c: _RANK.get(c, 2))


# ---------------------------------------------------------------- argument types
def scenarios(text: str) -> list[str]:
    """``--scenario``: a comma list of LoadGen's scenario names, any case."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no scenario named; choose from {', '.join(SCENARIOS)}")
    lower = {s.lower(): s for s in SCENARIOS}
    for n in names:
        if n.lower() not in lower:
            raise argparse.ArgumentTypeError(
                f"unknown scenario {n!r}; choose from {', '.join(SCENARIOS)}")
    return [lower[n.lower()] for n in names]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def non_negative(text: str) -> float:
    v = _number(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return v


def positive(text: str) -> float:
    v = _number(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return v


def count(minimum: int, note: str = ""):
    """A whole-number argument type with a lower bound; ``note`` says what to do instead."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {v}{note}")
        return v

    parse.__name__ = "whole number"
    return parse


# ---------------------------------------------------------------- settings flags
def add_settings_args(p: argparse.ArgumentParser, default_preset: str) -> None:
    g = p.add_argument_group("test settings (over the preset and conf files)")
    g.add_argument("--preset", default=default_preset, choices=PRESETS,
                   help=f"starting settings (default: {default_preset}; README: Presets)")
    g.add_argument("--user-conf", action="append", default=[], metavar="FILE",
                   help="LoadGen-format conf file (repeatable, later wins)")
    g.add_argument("--conf-model", default="*", metavar="NAME",
                   help="model name the conf keys are looked up for (default: *)")
    g.add_argument("--min-queries", type=count(0), metavar="N",
                   help="the fewest queries a run issues (Offline: samples) (default: the "
                        "preset's, raised to what early stopping needs for quick and mobile)")
    g.add_argument("--max-queries", type=count(0), metavar="N",
                   help="the most queries a run issues, 0 for no limit (default: the preset's)")
    g.add_argument("--min-duration", type=non_negative, metavar="S",
                   help="seconds a run lasts at least (default: the preset's)")
    g.add_argument("--max-duration", type=non_negative, metavar="S",
                   help="seconds after which no query is issued, 0 for none (default: the "
                        "preset's)")
    g.add_argument("--target-latency-ms", type=non_negative, metavar="X",
                   help="Server: the latency bound; SingleStream/MultiStream: expected latency")
    g.add_argument("--target-qps", type=positive, metavar="Q",
                   help="Server: arrival rate; Offline: expected throughput (queries a second)")
    g.add_argument("--samples-per-query", type=count(1), metavar="N",
                   help="MultiStream: samples a query (default: LoadGen's 8); Offline: samples "
                        "in its one query (default: from the duration and --target-qps)")
    g.add_argument("--seed", type=int, metavar="N", help="all three RNG seeds")


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TestSettings fields the flags set (over the preset and the conf files)."""
    changes: dict[str, Any] = {}
    if args.min_queries is not None:
        changes["min_query_count"] = args.min_queries
    if args.max_queries is not None:
        changes["max_query_count"] = args.max_queries
    if args.min_duration is not None:
        changes["min_duration_ms"] = int(round(args.min_duration * 1000))
    if args.max_duration is not None:
        changes["max_duration_ms"] = int(round(args.max_duration * 1000))
    if args.target_latency_ms is not None:
        changes["target_latency_ns"] = int(round(args.target_latency_ms * 1e6))
    if args.target_qps is not None:
        changes["target_qps"] = args.target_qps
    if args.samples_per_query is not None:
        changes["samples_per_query"] = args.samples_per_query
    if getattr(args, "warmup", None) is not None:
        changes["warmup_queries"] = args.warmup
    return changes


def build_settings(args: argparse.Namespace, scenario: str) -> TestSettings:
    """``edgeperf.preset`` with the flags: the preset, the conf files, then the flags and the
    seed, validated; a SettingsError in the flags' words (a conf file's, in the file's)."""
    changes = settings_overrides(args)
    if args.seed is not None:
        changes.update(qsl_rng_seed=args.seed, sample_index_rng_seed=args.seed,
                       schedule_rng_seed=args.seed)
    try:
        return edgeperf.preset(args.preset, scenario, user_conf=args.user_conf,
                               model=args.conf_model, **changes)
    except ConfError:
        raise  # it quotes the conf file's line: its words are the file's
    except SettingsError as exc:
        raise SettingsError(in_flag_words(str(exc))) from None


# TestSettings' field names -> the flags that set them (durations in the flags' units)
_FLAGS = {"min_query_count": "--min-queries", "max_query_count": "--max-queries",
          "samples_per_query": "--samples-per-query", "target_qps": "--target-qps"}
_SCALED = {"min_duration_ms": ("--min-duration", 1e3, "s"),
           "max_duration_ms": ("--max-duration", 1e3, "s"),
           "target_latency_ns": ("--target-latency-ms", 1e6, "ms")}


def in_flag_words(msg: str) -> str:
    """A settings message as a command-line user needs it: the flags, not the field names
    ("min_duration_ms (20000)" -> "--min-duration (20 s)"), and no Python call to make."""
    msg = re.sub(r"preset\('\w+', '\w+', target_qps=(\d+)\)", r"--target-qps \1", msg)
    for key, (flag, scale, unit) in _SCALED.items():
        msg = re.sub(rf"(?<![\w.]){key} \((\d+)\)", lambda m, f=flag, s=scale, u=unit:
                     f"{f} ({int(m[1]) / s:g} {u})", msg)
        msg = re.sub(rf"(?<![\w.]){key}\b", flag, msg)
    for key, flag in _FLAGS.items():
        msg = re.sub(rf"(?<![\w.]){key}\b", flag, msg)
    return msg


def install_hints(msg: str) -> str:
    """A library's ``pip install 'edgeperf[extra]'`` as the command that works here."""
    return re.sub(r"pip install '(?:edgeperf)?\[(\w+)\]'", lambda m: install_command(m[1]),
                  msg)


def install_command(extra: str) -> str:
    """How to install an extra here: from a clone (an editable install), this venv's pip
    with ``-e '.[extra]'``; from an installed wheel, ``pip install 'edgeperf[extra]'``."""
    clone = Path(edgeperf.__file__).resolve().parents[1]
    pip = Path(sys.executable).parent / "pip"
    pip_cmd = _short(pip) if pip.exists() else f"{_short(Path(sys.executable))} -m pip"
    if (clone / "pyproject.toml").is_file() and (clone / "host" / "__init__.py").is_file():
        where = "." if Path.cwd().resolve() == clone else str(clone)
        return f"{pip_cmd} install -e '{where}[{extra}]'"
    return f"{pip_cmd} install 'edgeperf[{extra}]'"


def _short(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def early_stopping_hint(s: TestSettings, preset_name: str, query_count: int) -> str | None:
    """Why an INVALID run had too few queries for early stopping, and the fix; else None."""
    if s.scenario == "Offline" or not s.target_latency_percentile:
        return None
    needed = early_stopping_min_queries(s.scenario, s.target_latency_percentile)
    if query_count >= needed:
        return None
    return (f"{s.scenario}'s early stopping needs at least {needed} queries at the "
            f"{s.target_latency_percentile * 100:g}th percentile; this run issued {query_count} "
            f"(--preset {preset_name}: {s.min_query_count} at least). Pass --min-queries "
            f"{needed}, or use --preset quick, which raises the minimum itself")


# ---------------------------------------------------------------- board flags
def add_board_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help=_BOARD_HELP)


def add_store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URL",
                   help="record the runs in this results store: a SQLite file, "
                        "postgresql://user@host/db (a lab's shared one) or 'off' (default: "
                        "$EDGEPERF_STORE, else ~/.local/share/edgeperf/results.sqlite)")


def use_store(args: argparse.Namespace) -> None:
    """--store: this process's runs (and the store's messages) go to that store."""
    if getattr(args, "store", None):
        os.environ["EDGEPERF_STORE"] = args.store


def add_ssh_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("SSH boards (over the profile and ~/.ssh/config)")
    g.add_argument("--identity", metavar="FILE", help="private key file")
    g.add_argument("--known-hosts", metavar="FILE",
                   help="known_hosts file to check (and, for trust, to write)")
    g.add_argument("--python", metavar="PATH",
                   help="the device's Python for the agent (over the profile's link.python)")


def board(args: argparse.Namespace) -> BoardProfile:
    """--board (a profile name, a .toml path or a URL) with the SSH flags; BoardError."""
    return with_overrides(load_board(args.board), identity=args.identity,
                          known_hosts=args.known_hosts, python=args.python)


# ---------------------------------------------------------------- output
def out_dir_problem(path: Path) -> str | None:
    """Why ``--out`` cannot become the run's directory, or None. Nothing is left behind: the
    directories a probe creates are removed again (the run creates them when it starts)."""
    missing = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    if not at.is_dir():
        what = "is a file" if at == path else f"cannot be created: {at} is a file"
        return f"--out {path} {what}; name a directory (it is created if missing)"
    made: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            made.append(d)
        if not os.access(path, os.W_OK | os.X_OK):
            return f"--out {path}: the directory is not writable; name another"
    except OSError as exc:
        return (f"--out {path} cannot be created ({exc.strerror or exc}); name a directory "
                "you can write")
    finally:
        for d in reversed(made):
            d.rmdir()
    return None


COSTS = "Model costs on the device"  # outputs/model_costs.py's heading


def print_summary(out: Path) -> None:
    """A run's mlperf_log_summary.txt up to its test parameters."""
    path = out / "mlperf_log_summary.txt"
    if path.exists():
        text = path.read_text()
        cut = text.find("\n================================================\nTest Parameters")
        sys.stdout.write(text[:cut if cut > 0 else len(text)].rstrip() + "\n")
        costs = text.find("\n================================================\n" + COSTS)
        if costs > 0:  # benchmark_model's figures, after LoadGen's
            end = text.find("\n====", costs + 100)
            sys.stdout.write(text[costs:end if end > 0 else len(text)].rstrip() + "\n")
        sys.stdout.flush()
