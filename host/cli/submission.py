"""``edgeperf submission init|add|check``: lay out an MLPerf submission tree from edgeperf runs
and check it by the rules of its version (edgeperf.submission)."""

from __future__ import annotations

import argparse

from edgeperf.cli.common import EXIT_CODES_HELP, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submission", help="build an MLPerf submission tree from runs and check "
                                          "it", formatter_class=formatter,
                       epilog=EXIT_CODES_HELP)
    cmds = p.add_subparsers(dest="submission_cmd", required=True, metavar="STEP")
    from edgeperf.submission import check, tree

    tree.add_parsers(cmds)
    check.add_parser(cmds)
