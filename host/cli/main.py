"""The ``edgeperf`` command line: the parser, made of one module a command, and ``main``."""

from __future__ import annotations

import argparse
import shlex
import sys

from edgeperf import __version__
from edgeperf.cli import (
    campaign,
    emulate,
    info,
    line_sim,
    listings,
    report,
    report_cmd,
    results,
    run,
    score,
    serial_key,
    submission,
    trust,
)
from edgeperf.errors import EdgeperfError, UsageError
from edgeperf.cli.common import EXIT_CODES_HELP, EXIT_ERROR, EXIT_USAGE, formatter, say


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edgeperf", formatter_class=formatter, epilog=EXIT_CODES_HELP,
        description="MLPerf-style inference benchmarks, timed on the device. "
                    "'edgeperf COMMAND --help' tells more.")
    ap.add_argument("--version", action="version", version=f"edgeperf {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    run.add_parser(sub)
    score.add_parser(sub)
    info.add_parser(sub)
    trust.add_parser(sub)
    report.add_parser(sub)
    report_cmd.add_parser(sub)
    emulate.add_parser(sub)
    listings.add_parsers(sub)
    line_sim.add_parser(sub)
    serial_key.add_parser(sub)
    submission.add_parser(sub)
    results.add_parsers(sub)
    campaign.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = make_parser().parse_args(argv)
    args.command_line = "edgeperf " + shlex.join(raw)  # what result.json records
    try:
        return args.fn(args)
    except UsageError as exc:  # no such board, settings that contradict, a bad input file
        say(str(exc))
        return EXIT_USAGE
    except EdgeperfError as exc:  # a link, an agent, a task, a run that could not start
        say(str(exc))
        return EXIT_ERROR
    except OSError as exc:  # a disk that fills, a directory removed under a run
        say(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
