"""``edgeperf report RUN_DIR``: a run's power trace and latency histogram, as a PNG;
``edgeperf report --campaign ID [--against ID]`` or ``--compare A B``: one self-contained
HTML page (report_cmd.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeperf.cli.common import EXIT_ERROR, EXIT_USAGE, EXIT_VALID, formatter, say
from edgeperf.cli.report_cmd import add_html_args, cmd_html_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="a run as a PNG, or a campaign or a comparison as one "
                                      "self-contained HTML page",
                       formatter_class=formatter,
                       description="RUN_DIR: draw a run's power trace and latency histogram "
                                   "into a PNG (needs matplotlib: the 'report' extra). "
                                   "--campaign ID [--against ID] or --compare A B: one HTML "
                                   "file, viewable without a network: a table per board and "
                                   "model, latency distributions, power traces, energy, and "
                                   "the comparison (edgeperf compare's tests and verdicts).")
    p.add_argument("run_dir", nargs="?", help="a run's output directory (the PNG)")
    p.add_argument("--out", metavar="FILE",
                   help="the PNG (default: RUN_DIR/report.png) or the HTML file (default: "
                        "report.html)")
    add_html_args(p, required=False)
    p.set_defaults(fn=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from edgeperf.outputs.report import ReportError, write_report

    if args.campaign or args.compare:
        if args.run_dir:
            say(f"give a run directory ({args.run_dir}) or --campaign/--compare, not both")
            return EXIT_USAGE
        return cmd_html_report(args)
    if not args.run_dir:
        say("give a run's directory (a PNG), or --campaign ID or --compare A B (an HTML "
            "page)")
        return EXIT_USAGE

    try:
        path = write_report(Path(args.run_dir), Path(args.out) if args.out else None)
    except ReportError as exc:
        say(str(exc))
        return EXIT_ERROR
    print(path)
    return EXIT_VALID
