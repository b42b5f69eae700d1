"""``edgeperf report RUN_DIR``: a run's power trace and latency histogram, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeperf.cli.common import EXIT_ERROR, EXIT_VALID, formatter, say


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="draw a run's power trace and latency histogram (PNG)",
                       formatter_class=formatter,
                       description="Draw a run's power trace and latency histogram into a PNG "
                                   "(needs matplotlib: the 'report' extra).")
    p.add_argument("run_dir", help="a run's output directory")
    p.add_argument("--out", metavar="FILE", help="the PNG (default: RUN_DIR/report.png)")
    p.set_defaults(fn=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from edgeperf.outputs.report import ReportError, write_report

    try:
        path = write_report(Path(args.run_dir), Path(args.out) if args.out else None)
    except ReportError as exc:
        say(str(exc))
        return EXIT_ERROR
    print(path)
    return EXIT_VALID
