"""Per-query overhead of the agent's SingleStream loop with the ``null`` backend.

Three loops answer the same N null queries, repeated and reported as medians:

* agent: ScenarioRunner(SingleStream, min = max query count = N).run() with
  SyntheticBackend("null"); timed from outside (wall of run(), warm-up and final flush
  included) and from inside (the QueryLog: done - issue, and issue-to-issue period);
* bare: a plain Python loop doing only what the timed loop must do: two perf_counter_ns
  reads, a call of a no-op function, two stores into preallocated array('q');
* LoadGen: mlcommons-loadgen SingleStream with a null Python SUT that completes each
  query inside IssueQuery; min duration 0, trace off. Overhead = StartTest wall / N.

Goal (issue): the agent's run() wall / N is at most 1.0 us per query on a 2-core machine.
"""

from __future__ import annotations

import argparse
import gc
import time
from array import array

import _common
import _loadgen
import numpy as np

from device_agent.backends import SyntheticBackend
from device_agent.scenarios import RunSettings, ScenarioRunner

GOAL_US = 1.0
LOADGEN_CPP_US = 2.85  # quoted in the issue; not measured here (no C++ SUT in this repo)


def agent_once(n: int, warmup: int) -> dict[str, float]:
    settings = RunSettings(scenario="SingleStream", min_query_count=n, max_query_count=n,
                           warmup_queries=warmup)
    runner = ScenarioRunner(settings, SyntheticBackend("null").invoker(), 1024,
                            lambda *a: None)
    gc.collect()
    t0 = time.perf_counter_ns()
    log = runner.run()
    t1 = time.perf_counter_ns()
    if log.rows != n:
        raise RuntimeError(f"agent answered {log.rows} queries, not {n} "
                           f"({runner.stop_reason})")
    issue, done, _ = log.slice(0, n)
    return {"wall_us": (t1 - t0) / n / 1e3,
            "span_us": (log.end_ns - log.start_ns) / n / 1e3,
            "latency_ns": float(np.median(done - issue)),
            "period_ns": float(np.median(np.diff(issue)))}


def _noop(sample: int) -> None:
    return None


def bare_once(n: int) -> dict[str, float]:
    issue = array("q", [0]) * n
    done = array("q", [0]) * n
    _common.bare_loop(1000, _noop, issue, done)  # warm the code path, as the agent's warm-up does
    gc.collect()
    t0 = time.perf_counter_ns()
    _common.bare_loop(n, _noop, issue, done)
    t1 = time.perf_counter_ns()
    i = np.frombuffer(issue, np.int64)
    d = np.frombuffer(done, np.int64)
    return {"wall_us": (t1 - t0) / n / 1e3, "latency_ns": float(np.median(d - i)),
            "period_ns": float(np.median(np.diff(i)))}


def loadgen_once(n: int) -> dict[str, float]:
    gc.collect()
    wall, summary = _loadgen.single_stream(n)
    return {"wall_us": wall / n / 1e3, "mean_ns": float(summary["mean_ns"]),
            "p50_ns": float(summary["p50_ns"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5, help="3-5; medians are reported")
    ap.add_argument("--warmup", type=int, default=1000, help="agent warm-up queries")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    n = args.queries
    _common.print_header(f"bench_loop: SingleStream null-query loop overhead, N = {n}, "
                         f"{args.repeats} repeats")
    lg_rows = _loadgen.available()
    med = _common.interleaved(args.repeats, {
        "agent": lambda: agent_once(n, args.warmup), "bare": lambda: bare_once(n),
        "loadgen": (lambda: loadgen_once(n)) if lg_rows else None})
    if not lg_rows:
        print(_loadgen.MISSING)
    rows = [
        _common.Row(
            "1 loop", "null SingleStream, run() wall / N", med("agent", "wall_us"), "us",
            [("bare Python loop", med("bare", "wall_us"))]
            + ([("LoadGen + null Python SUT", med("loadgen", "wall_us"))] if lg_rows else [])
            + [("LoadGen C++ SUT (quoted in issue, not measured)", LOADGEN_CPP_US)],
            goal=GOAL_US,
            note=f"run() wall includes {args.warmup} warm-up queries, chunk set-up and the "
                 f"final QueryLog flush; the loop alone (start_ns..end_ns) is "
                 f"{med('agent', 'span_us'):.3f} us/query"),
        _common.Row("1 loop", "null SingleStream, median issue-to-issue period",
                    med("agent", "period_ns"), "ns",
                    [("bare Python loop", med("bare", "period_ns"))]),
        _common.Row("1 loop", "null query latency, median(done - issue)",
                    med("agent", "latency_ns"), "ns",
                    [("bare Python loop", med("bare", "latency_ns"))]
                    + ([("LoadGen + null Python SUT, p50", med("loadgen", "p50_ns")),
                        ("LoadGen + null Python SUT, mean", med("loadgen", "mean_ns"))]
                       if lg_rows else [])),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
