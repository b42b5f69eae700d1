"""``edgeperf score FILE --scenario S``: score a run's querylog.npz, or timestamps or latencies
recorded elsewhere, by LoadGen's rules; ``edgeperf score RUN_DIR/querylog.spill``: rebuild the
outputs of a run that could not write them (a full disk) from its spill, by its own
settings, into the spill's directory (or --out)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeperf.cli.common import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
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
                   help="a run's querylog.npz; a run's querylog.spill (the outputs are "
                        "rebuilt from it: querylog.npz, LoadGen's logs, result.json); a "
                        "CSV with a header naming issue_ns or scheduled_ns, done_ns and "
                        "optionally start_ns (ns, one row a query); or bare latencies, "
                        "SingleStream/MultiStream only (.npy, or one integer of ns a line)")
    p.add_argument("--scenario", choices=SCENARIOS,
                   help="required, except for a spill that recorded its run's settings")
    add_settings_args(p, DEFAULT_PRESET)
    p.add_argument("--json", action="store_true", help="also print the summary as JSON")
    p.add_argument("--out", metavar="DIR",
                   help="a spill's rebuilt outputs go here (default: the spill's directory)")
    p.set_defaults(fn=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from edgeperf.outputs.mlperf_logs import format_summary
    from edgeperf.scoring.files import ScoreFileError, score_file
    from edgeperf.settings import SettingsError

    if Path(args.latencies).name.endswith(".spill"):
        return _rebuild(args)
    if not args.scenario:
        say("--scenario is required (only a run's spill file records its own)")
        return EXIT_USAGE
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


def _rebuild(args: argparse.Namespace) -> int:
    """A spill -> the run's outputs, scored by the settings the run recorded in it (without
    them, by --scenario and the flags)."""
    from types import SimpleNamespace

    from edgeperf.outputs import record
    from edgeperf.outputs.mlperf_logs import format_summary
    from edgeperf.run.querylog import read_spill_file
    from edgeperf.scoring.inputs import score_input, score_with_settings
    from edgeperf.settings import SettingsError, TestSettings, effective_settings

    path = Path(args.latencies)
    try:
        spill = read_spill_file(path)
    except (OSError, ValueError) as exc:
        say(f"{path}: cannot read the spill: {exc}")
        return EXIT_ERROR
    if spill.note:
        say(f"note: {spill.note}")
    meta, q = spill.meta or {}, spill.q
    scenario = meta.get("scenario") or args.scenario
    if not scenario or (args.scenario and args.scenario != scenario):
        say(f"{path} records no settings (its run never reached its end): pass --scenario"
            if not scenario else f"{path} is a {scenario} run's; --scenario {args.scenario} "
            "does not fit it")
        return EXIT_USAGE
    if not q.rows:
        say(f"{path} holds no queries: nothing to rebuild")
        return EXIT_ERROR
    out = Path(args.out) if args.out else path.parent
    if (out / "result.json").exists():
        say(f"{out} already holds a run's result.json: pass --out DIR for the rebuilt outputs")
        return EXIT_USAGE
    try:
        s = TestSettings.from_dict(meta["requested"]) if meta else build_settings(args, scenario)
        eff = TestSettings.from_dict(meta["effective"]) if meta else effective_settings(s)
    except SettingsError as exc:
        say(str(exc))
        return EXIT_USAGE
    if not q.start_ns:
        q.start_ns = int(q.issue_ns[0])
    errors = [f"rebuilt from {path}: it holds {q.rows} of the {meta['rows_measured']} queries "
              "the run measured"] if q.rows < meta.get("rows_measured", 0) else []
    summary = score_with_settings(score_input(scenario, q), s, eff, extra_invalid_reasons=errors)
    rec = dict(meta.get("record") or {"board": {"name": "unknown"}, "model": {"name": path.stem}})
    rec.update(rebuilt_from=str(path.resolve()), run=dict(meta.get("run") or {}, rows=q.rows),
               settings={"requested": s.to_dict(), "effective": eff.to_dict()})
    written = SimpleNamespace(settings=s, conf_files=[], trace_all=False)
    try:
        record.write_run(out, written, eff, rec, q, summary, errors,  # type: ignore[arg-type]
                         drop_spill=False)
    except OSError as exc:
        from edgeperf.outputs.disk import free_space

        say(f"cannot write the rebuilt outputs to {out} ({free_space(out)}): {exc}; pass "
            "--out DIR on a disk with room")
        return EXIT_ERROR
    print(format_summary(summary, s, sut_name=path.name, effective=eff), end="")
    print(f"rebuilt {q.rows} queries from {path} into {out}: querylog.npz, mlperf_log_*, "
          "result.json")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=1))
    return EXIT_VALID if summary.valid else EXIT_INVALID
