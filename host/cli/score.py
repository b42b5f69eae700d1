"""``edgeperf score FILE --scenario S``: score a run's querylog.npz, or timestamps or latencies
recorded elsewhere, by LoadGen's rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeperf.cli.common import (
    EXIT_CODES_HELP,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    add_settings_args,
    build_settings,
    formatter,
    say,
)
from edgeperf.scoring.loadgen import SCENARIOS

DEFAULT_PRESET = "smoke"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a run's querylog.npz, or timestamps or latencies "
                                     "recorded elsewhere", formatter_class=formatter,
                       description="Score a file of timestamps or latencies by LoadGen's "
                                   "rules and print LoadGen's summary. A run's querylog.npz is "
                                   "scored as the run scored it (its own settings).",
                       epilog=EXIT_CODES_HELP)
    p.add_argument("latencies", metavar="FILE",
                   help="a run's querylog.npz; a CSV with a header naming issue_ns or "
                        "scheduled_ns, done_ns and optionally start_ns (ns, one row a query); "
                        "or bare latencies, SingleStream/MultiStream only (.npy, or one "
                        "integer of ns a line)")
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    add_settings_args(p, DEFAULT_PRESET)
    p.add_argument("--json", action="store_true", help="also print the summary as JSON")
    p.set_defaults(fn=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from edgeperf.outputs.mlperf_logs import format_summary
    from edgeperf.scoring.files import ScoreFileError, score_file
    from edgeperf.settings import SettingsError

    try:
        s = build_settings(args, args.scenario)
        scored = score_file(args.latencies, s, samples_per_query=args.samples_per_query)
    except SettingsError as exc:
        say(str(exc))
        return EXIT_USAGE
    except ScoreFileError as exc:
        say(str(exc))
        return exc.exit_code
    summ = scored.summary
    print(format_summary(summ, scored.settings, sut_name=Path(args.latencies).name,
                         effective=scored.effective), end="")
    if args.json:
        print(json.dumps(summ.to_dict(), indent=1))
    return EXIT_VALID if summ.valid else EXIT_INVALID
