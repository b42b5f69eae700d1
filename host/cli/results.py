"""``edgeperf results list|show|export`` (the results store) and ``edgeperf compare A B``
(is B's scored figure different from A's, and is it real?)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from edgeperf.cli.common import EXIT_INVALID, EXIT_VALID, count, formatter, positive

COMPARE_EXIT_HELP = """exit codes:
  0  nothing flagged
  3  a change flagged (over --threshold, p < --alpha and a CI that excludes 0)
  1  the store cannot be read
  2  a usage error (bad flags, no such run, no run matching a filter)"""
_FILTERS_HELP = ("A run is an id (from 'edgeperf results list') or a filter key=value[,key=value] "
                 "with keys board, model, task, scenario, campaign, result, since (a date "
                 "2026-12-01, UTC, or an age: 3d, 12h, 30m): its latest run; campaign=ID takes "
                 "the latest run of each board/model/scenario of the campaign, matched with "
                 "the other side's.")
_STORE_HELP = ("the results store: a SQLite file or postgresql://user@host/db (default: "
               "$EDGEPERF_STORE, else ~/.local/share/edgeperf/results.sqlite)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("results", help="the results store: list, show and export recorded runs",
                       formatter_class=formatter,
                       description="Every run is recorded in the results store (board, device, "
                                   "model, settings, summary, energy, raw latencies). "
                                   "docs/notes/store.md has its schema.")
    rs = r.add_subparsers(dest="results_cmd", required=True, metavar="ACTION")
    ls = rs.add_parser("list", help="the runs recorded, oldest first", formatter_class=formatter)
    _filter_args(ls)
    ls.add_argument("--limit", type=count(1), metavar="N", help="only the newest N")
    ls.set_defaults(fn=cmd_list)
    sh = rs.add_parser("show", help="one run, every field", formatter_class=formatter)
    sh.add_argument("id", type=count(1), help="the run's id")
    sh.add_argument("--json", action="store_true", help="as JSON")
    sh.add_argument("--store", metavar="URL", help=_STORE_HELP)
    sh.set_defaults(fn=cmd_show)
    ex = rs.add_parser("export", help="the runs as CSV or JSON, every column",
                       formatter_class=formatter)
    fmt = ex.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", action="store_true", help="CSV: a header, one row a run")
    fmt.add_argument("--json", action="store_true", help="JSON: a list, one object a run")
    ex.add_argument("--out", metavar="FILE", help="write there (default: stdout)")
    _filter_args(ex)
    ex.set_defaults(fn=cmd_export)

    c = sub.add_parser("compare", help="compare two runs (or campaigns): each figure's change, "
                                       "tested on the raw latencies", formatter_class=formatter,
                       description="B against A: the figure each scenario scores (SingleStream "
                                   "p90, MultiStream and Server p99 latency, Offline "
                                   "throughput) tested with Mann-Whitney U on the raw "
                                   "per-query latencies and a bootstrap confidence interval of "
                                   "the difference; the other figures and each run's stability "
                                   "(coefficient of variation, p99/p50) beside them. "
                                   + _FILTERS_HELP, epilog=COMPARE_EXIT_HELP)
    c.add_argument("a", metavar="A", help="the baseline: a run id or a filter")
    c.add_argument("b", metavar="B", help="the run compared with it")
    c.add_argument("--threshold", type=_percent, default=5.0, metavar="PCT",
                   help="flag a change of the scored figure beyond PCT percent (default: 5)")
    c.add_argument("--alpha", type=_fraction, default=0.01, metavar="P",
                   help="and only with Mann-Whitney's p below P (default: 0.01)")
    c.add_argument("--confidence", type=_confidence, default=95.0, metavar="PCT",
                   help="the bootstrap interval's confidence (default: 95)")
    c.add_argument("--resamples", type=count(100), default=2000, metavar="B",
                   help="bootstrap resamples (default: 2000)")
    c.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default: 0)")
    c.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    c.add_argument("--store", metavar="URL", help=_STORE_HELP)
    c.set_defaults(fn=cmd_compare)


def _filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("which runs (all of them by default)")
    for key, what in (("board", "this board's runs"),
                      ("model", "this model's, by its name or as given"),
                      ("task", "this task's, NAME or NAME:VARIANT"),
                      ("scenario", "this scenario's"), ("campaign", "this campaign's"),
                      ("result", "VALID (or INVALID) runs")):
        g.add_argument(f"--{key}", metavar=key.upper(), help=f"only {what}")
    g.add_argument("--since", metavar="WHEN",
                   help="recorded since a date (2026-12-01, UTC) or an age (3d, 12h, 30m)")
    p.add_argument("--store", metavar="URL", help=_STORE_HELP)


def _percent(text: str) -> float:
    return positive(text.rstrip("%"))


def _confidence(text: str) -> float:
    v = _percent(text)
    if v >= 100:
        raise argparse.ArgumentTypeError(f"must be a percentage below 100, got {text}")
    return v


def _fraction(text: str) -> float:
    v = positive(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def _filters(args: argparse.Namespace) -> dict[str, str]:
    from edgeperf.store.query import parse_since

    f = {k: getattr(args, k) for k in ("board", "model", "task", "scenario", "campaign",
                                       "result") if getattr(args, k)}
    if args.since:
        f["since"] = parse_since(args.since)
    return f


def _open(args: argparse.Namespace) -> Any:
    from edgeperf.store.db import open_store

    return open_store(args.store)


# ---------------------------------------------------------------- results
def _figure(row: dict[str, Any]) -> str:
    v, unit = row.get("metric_value"), row.get("metric_unit") or ""
    if v is None:
        return "-"
    return _ns(v) if unit == "ns" else f"{v:.6g} {unit}"


def _ns(v: float | None, signed: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    sign = "+" if signed else ""
    return f"{v / 1e6:{sign}.3f} ms" if abs(v) >= 1e7 else f"{v / 1e3:{sign}.2f} us"


def cmd_list(args: argparse.Namespace) -> int:
    from edgeperf.store.query import list_runs

    with _open(args) as st:
        rows = list_runs(st, _filters(args), args.limit, columns=[
            "id", "recorded_at", "board", "model", "task", "scenario", "mode", "kind",
            "result", "metric_value", "metric_unit", "run_dir"])
    print(f"{'id':>5}  {'recorded (UTC)':19}  {'board':14} {'model or task':24} "
          f"{'scenario':12} {'result':7} {'figure':>18}  run directory")
    for r in rows:
        what = r["task"] or r["model"] or "-"
        scen = r["scenario"] or r["mode"] or "-"
        print(f"{r['id']:>5}  {r['recorded_at'][:19]:19}  {r['board'] or '-':14} {what:24} "
              f"{scen:12} {r['result'] or '-':7} {_figure(r):>18}  {r['run_dir']}")
    return EXIT_VALID


def cmd_show(args: argparse.Namespace) -> int:
    from edgeperf.store.query import get_run, latency_counts

    with _open(args) as st:
        row = get_run(st, args.id)
        lat = latency_counts(st, args.id)
    row["latencies_stored"] = None if lat is None else {"kept": lat[0], "count": lat[1]}
    if args.json:
        print(json.dumps(row, indent=1, sort_keys=False))
        return EXIT_VALID
    for k, v in row.items():
        if isinstance(v, (dict, list)):
            text = json.dumps(v, indent=1).replace("\n", "\n" + " " * 20)
            print(f"{k:19} {text}")
        else:
            print(f"{k:19} {'-' if v is None else v}")
    return EXIT_VALID


def cmd_export(args: argparse.Namespace) -> int:
    from edgeperf.store import schema
    from edgeperf.store.query import decoded, list_runs

    with _open(args) as st:
        rows = list_runs(st, _filters(args))
    if args.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=schema.COLUMN_NAMES, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    else:
        text = json.dumps([decoded(r) for r in rows], indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_VALID


# ---------------------------------------------------------------- compare
def cmd_compare(args: argparse.Namespace) -> int:
    from edgeperf.errors import UsageError
    from edgeperf.store.compare import compare_runs
    from edgeperf.store.query import get_latencies, pairs, select_runs

    out: dict[str, Any] = {"a": args.a, "b": args.b, "threshold": args.threshold / 100,
                           "alpha": args.alpha, "comparisons": []}
    with _open(args) as st:
        matched, lonely = pairs(select_runs(st, args.a), select_runs(st, args.b))
        if not matched:
            raise UsageError(f"A ({args.a}) and B ({args.b}) have no board/model/scenario in "
                             "common: " + "; ".join(lonely))
        flagged = False
        for a, b in matched:
            for r in (a, b):
                if r["kind"] != "loadgen":
                    raise UsageError(f"run {r['id']} is an MLPerf Tiny run (an MCU's); "
                                     "compare takes runs of LoadGen scenarios")
            if a["scenario"] != b["scenario"]:
                raise UsageError(f"run {a['id']} is {a['scenario']} and run {b['id']} "
                                 f"{b['scenario']}: compare runs of one scenario")
            c = compare_runs(a, b, get_latencies(st, a["id"]), get_latencies(st, b["id"]),
                             threshold=args.threshold / 100, alpha=args.alpha,
                             confidence=args.confidence / 100, resamples=args.resamples,
                             seed=args.seed)
            _print_comparison(c, a, b, args)
            flagged |= c.flagged
            out["comparisons"].append(dict(c.to_dict(), run_a=_brief(a), run_b=_brief(b)))
    for line in lonely:
        print(f"not compared: {line}")
    out["flagged"], out["unmatched"] = flagged, lonely
    if args.json:
        Path(args.json).write_text(json.dumps(_finite(out), indent=1) + "\n")
    n = sum(1 for c in out["comparisons"] if c["flagged"])
    print(f"\n{n} of {len(matched)} comparison{'s' if len(matched) != 1 else ''} flagged"
          if flagged else f"\nnothing flagged ({len(matched)} compared)")
    return EXIT_INVALID if flagged else EXIT_VALID


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in ("id", "recorded_at", "board", "model", "task", "scenario",
                                  "result", "run_dir", "campaign_id")}


def _finite(o: Any) -> Any:
    """JSON has no NaN or infinity: null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def _value(v: float | None, unit: str, signed: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if unit == "ns":
        return _ns(v, signed)
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<1e-300" if p == 0 else f"{p:.3g}"


def _print_comparison(c: Any, a: dict[str, Any], b: dict[str, Any],
                      args: argparse.Namespace) -> None:
    print(f"\n{c.scenario} on {a['board']}, {a['model'] or a['task']}")
    for side, r in (("A", a), ("B", b)):
        print(f"  {side}: run {r['id']} {r['model'] or r['task']} {r['result']}, recorded "
              f"{r['recorded_at'][:19]}Z, {r['run_dir']}")
    ci_head = f"{c.ci_label} of B-A"
    print(f"{'figure':32} {'A':>12} {'B':>12} {'change':>8}  {'test':16} {'p':>8}  "
          f"{ci_head:26} verdict")
    for f in c.figures:
        name = f.name + (" (scored)" if f.scored else "")
        ch = "-" if f.change is None else f"{f.change * 100:+.2f}%"
        ci = "-" if f.ci is None else (f"[{_value(f.ci[0], f.unit, True)}, "
                                       f"{_value(f.ci[1], f.unit, True)}]")
        test = f.test.replace(" on inter-completion intervals", "") if f.test else "-"
        print(f"{name:32} {_value(f.a, f.unit):>12} {_value(f.b, f.unit):>12} {ch:>8}  "
              f"{test:16} {_p(f.p):>8}  {ci:26} {f.verdict}")
    mw = c.mann_whitney
    if mw is not None:
        print(f"Mann-Whitney U (two-sided; normal approximation, continuity and tie "
              f"corrections): U = {mw.u:.6g}, z = {mw.z:.4g}, n = {mw.n_a} / {mw.n_b}, "
              f"p = {_p(mw.p)}")
        print(f"{c.ci_label}: percentile method, B = {c.resamples}, seed {args.seed}; "
              f"flagged when |change| > {args.threshold:g}%, p < {args.alpha:g} and the CI "
              "excludes 0")
    for note in c.notes:
        print(f"note: {note}")
