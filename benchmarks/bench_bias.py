"""Median latency bias with a known 100 us workload (SyntheticBackend "busy:100").

bias = median(measured latency) - the busy-wait's nominal duration. Three measurements of
the same busy-wait function (the backend's own invoker), medians over repeats:

* agent: ScenarioRunner SingleStream, median(done - issue) from the QueryLog;
* bare: a plain loop timing the same call with two perf_counter_ns reads. Its bias is the
  floor set by the busy-wait itself (call, overshoot of its last clock poll, return);
* LoadGen: mlcommons-loadgen SingleStream, a Python SUT that runs the same busy-wait in
  IssueQuery and completes there; the summary's 50.00 percentile latency.

Goal (issue): agent bias at most 0.5 us.
"""

from __future__ import annotations

import argparse
import gc
from array import array

import _common
import _loadgen
import numpy as np

from edgeperf_agent.backends import SyntheticBackend
from edgeperf_agent.scenarios import RunSettings, ScenarioRunner

GOAL_NS = 500.0


def agent_once(n: int, busy_us: float, busy_ns: int) -> dict[str, float]:
    settings = RunSettings(scenario="SingleStream", min_query_count=n, max_query_count=n,
                           warmup_queries=100)
    runner = ScenarioRunner(settings, SyntheticBackend(f"busy:{busy_us:g}").invoker(), 1024,
                            lambda *a: None)
    gc.collect()
    log = runner.run()
    issue, done, _ = log.slice(0, log.rows)
    lat = done - issue
    return {"bias_ns": float(np.median(lat)) - busy_ns,
            "mean_bias_ns": float(np.mean(lat)) - busy_ns}


def bare_once(n: int, busy_us: float, busy_ns: int) -> dict[str, float]:
    f = SyntheticBackend(f"busy:{busy_us:g}").invoker()
    issue = array("q", [0]) * n
    done = array("q", [0]) * n
    for j in range(100):
        f(j)
    gc.collect()
    _common.bare_loop(n, f, issue, done)
    lat = np.frombuffer(done, np.int64) - np.frombuffer(issue, np.int64)
    return {"bias_ns": float(np.median(lat)) - busy_ns,
            "mean_bias_ns": float(np.mean(lat)) - busy_ns}


def loadgen_once(n: int, busy_us: float, busy_ns: int) -> dict[str, float]:
    f = SyntheticBackend(f"busy:{busy_us:g}").invoker()
    gc.collect()
    summary = _loadgen.single_stream(n, work=f).summary
    return {"bias_ns": summary["p50_ns"] - busy_ns, "mean_bias_ns": summary["mean_ns"] - busy_ns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--busy-us", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    n = args.queries
    busy_ns = SyntheticBackend(f"busy:{args.busy_us:g}").busy_ns
    _common.print_header(f"bench_bias: SingleStream latency bias with busy:{args.busy_us:g}, "
                         f"N = {n}, {args.repeats} repeats")
    lg_rows = _loadgen.available()
    med = _common.interleaved(args.repeats, {
        "agent": lambda: agent_once(n, args.busy_us, busy_ns),
        "bare": lambda: bare_once(n, args.busy_us, busy_ns),
        "loadgen": (lambda: loadgen_once(n, args.busy_us, busy_ns)) if lg_rows else None})
    if not lg_rows:
        print(_loadgen.MISSING)
    rows = [
        _common.Row(
            "2 bias", f"busy:{args.busy_us:g} median(done - issue) - {busy_ns} ns",
            med("agent", "bias_ns"), "ns",
            [("bare loop, same busy-wait", med("bare", "bias_ns"))]
            + ([("LoadGen + busy Python SUT, p50 (LoadGen's issue to completion stamps)",
                 med("loadgen", "bias_ns"))] if lg_rows else []),
            goal=GOAL_NS),
        _common.Row(
            "2 bias", f"busy:{args.busy_us:g} mean(done - issue) - {busy_ns} ns",
            med("agent", "mean_bias_ns"), "ns",
            [("bare loop, same busy-wait", med("bare", "mean_bias_ns"))]
            + ([("LoadGen + busy Python SUT, mean (LoadGen's issue to completion stamps)",
                 med("loadgen", "mean_bias_ns"))] if lg_rows else []),
            note="the mean includes preemptions by the host OS/hypervisor; no goal is set "
                 "on it"),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
