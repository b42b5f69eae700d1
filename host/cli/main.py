"""The ``edgeperf`` command line: the parser, made of one module a command, and ``main``."""

from __future__ import annotations

import argparse
import sys

from edgeperf import __version__
from edgeperf.cli import emulate, info, line_sim, listings, report, run, score, trust
from edgeperf.boards.profile import BoardError
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
    emulate.add_parser(sub)
    listings.add_parsers(sub)
    line_sim.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BoardError as exc:  # no such board, a profile that does not parse, a bad URL
        say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
