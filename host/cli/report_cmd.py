"""``edgeperf report --campaign ID`` / ``--compare A B`` (also ``edgeperf html-report``): a
campaign's runs, or a comparison's, as one self-contained HTML file (tables, latency
distributions, power traces, energy, the comparison's verdicts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeperf.cli.common import EXIT_VALID, count, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("html-report", formatter_class=formatter,
                       help="a campaign or a comparison as one self-contained HTML page",
                       description="One HTML file, viewable without a network: a table per "
                                   "board and model, latency distributions, power traces, "
                                   "energy, and the comparison with a previous campaign "
                                   "(edgeperf compare's tests and verdicts). 'edgeperf report "
                                   "RUN_DIR' draws one run as a PNG.")
    add_html_args(p, required=True)
    p.add_argument("--out", metavar="FILE", default="report.html",
                   help="the HTML file (default: report.html)")
    p.set_defaults(fn=cmd_html_report)


def add_html_args(p: argparse.ArgumentParser, required: bool) -> None:
    """What names the HTML report's runs, and the comparison's options."""
    which = p.add_mutually_exclusive_group(required=required)
    which.add_argument("--campaign", metavar="ID", help="HTML: the campaign's runs")
    which.add_argument("--compare", nargs=2, metavar=("A", "B"),
                       help="HTML: B against A, as 'edgeperf compare' takes them (run ids or "
                            "filters, e.g. campaign=ID)")
    p.add_argument("--against", metavar="ID", help="with --campaign: compare with this "
                                                   "campaign (the previous one)")
    p.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                   help="flag a change of the scored figure beyond PCT percent (default: 5)")
    p.add_argument("--alpha", type=float, default=0.01, metavar="P",
                   help="and only with Mann-Whitney's p below P (default: 0.01)")
    p.add_argument("--resamples", type=count(100), default=2000, metavar="B",
                   help="bootstrap resamples (default: 2000)")
    p.add_argument("--store", metavar="URL", help="the results store (default: $EDGEPERF_STORE)")


def cmd_html_report(args: argparse.Namespace) -> int:
    from edgeperf.errors import UsageError
    from edgeperf.reports.html import campaign_report, compare_report
    from edgeperf.store.db import open_store

    if args.against and not args.campaign:
        raise UsageError("--against goes with --campaign (--compare A B names both sides)")
    kw = {"threshold": args.threshold / 100, "alpha": args.alpha, "resamples": args.resamples}
    with open_store(args.store) as st:
        if args.campaign:
            page = campaign_report(st, args.campaign, args.against, **kw)
        else:
            page = compare_report(st, args.compare[0], args.compare[1], **kw)
    out = Path(args.out or "report.html")
    out.write_text(page, encoding="utf-8")
    print(out)
    return EXIT_VALID
