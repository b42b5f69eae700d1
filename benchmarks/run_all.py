"""Run every benchmark, one subprocess each (so none disturbs another), and print one table.

    python benchmarks/run_all.py [--queries N] [--markdown FILE]     (about 2 minutes)

Each script's own output (per-repeat raw figures) is shown as it runs; the combined table
of figures, baselines, ratios and PASS/MISS against the issue's goals comes last.
Exit status: 0 when every script ran (whatever the verdicts), 1 when one failed to run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description="Run all edgeperf benchmarks; print one table.")
    ap.add_argument("--queries", type=int, default=1_000_000,
                    help="queries of the null loop and memory runs (default 1,000,000)")
    ap.add_argument("--markdown", help="also write the combined table as Markdown here")
    args = ap.parse_args()
    q = str(args.queries)
    plan = [("bench_loop.py", ["--queries", q, "--repeats", "5"]),
            ("bench_bias.py", ["--queries", "20000", "--busy-us", "100", "--repeats", "3"]),
            ("bench_memory.py", ["--queries", q, "--repeats", "3"]),
            ("bench_scoring.py", ["--latencies", "1000000", "--repeats", "3"]),
            ("bench_offline.py", ["--samples", "200000", "--repeats", "5"]),
            ("bench_campaign_scale.py", ["--quick"])]  # 4 boards; 32 without --quick
    started = datetime.datetime.now().astimezone()
    t0 = time.monotonic()
    rows: list[_common.Row] = []
    failed = []
    loads = []  # (when, 1-minute load average): the cores are shared with other processes
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-") as tmp:
        for script, extra in plan:
            loads.append((script, os.getloadavg()[0]))
            out = os.path.join(tmp, script + ".json")
            cmd = [sys.executable, str(HERE / script)] + extra + ["--json", out]
            print(f"\n$ {' '.join(cmd)}", flush=True)
            if subprocess.run(cmd).returncode or not os.path.exists(out):
                failed.append(script)
                continue
            rows += _common.rows_from_json(out)
    elapsed = time.monotonic() - t0
    loads.append(("end", os.getloadavg()[0]))
    print()
    _common.print_header(f"run_all: started {started:%Y-%m-%d %H:%M %Z}, took {elapsed:.0f} s")
    print("1-minute load average as each script started, and at the end: "
          + ", ".join(f"{name} {load:.2f}" for name, load in loads))
    print(_common.table(rows))
    _common.print_notes(rows)
    goals = [r for r in rows if r.goal is not None]
    missed = [r for r in goals if r.verdict == "MISS"]
    print(f"\n{len(goals)} goals: {len(goals) - len(missed)} PASS, {len(missed)} MISS")
    for r in missed:
        print(f"  MISS {r.section}, {r.figure}: {_common.fmt(r.value)} {r.unit} > "
              f"{_common.fmt(r.goal)} {r.unit}")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
    if args.markdown:
        Path(args.markdown).write_text(_common.markdown_table(rows) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
