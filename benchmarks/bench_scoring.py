"""Speed of host.scoring.score() on 1,000,000 SingleStream latencies, early stopping included.

The latencies are int64 nanoseconds drawn from a seeded lognormal (median 1 ms, sigma 0.3,
plus a 1% tail five times slower), the shape of a real run. score() gets a fresh ScoreInput
each repeat and must sort, take percentiles and run early stopping at p90 and p99.
The baseline is the floor any scorer pays: one numpy sort of the same array.

Goal (issue): score() on 1,000,000 latencies takes at most 0.5 s (median of 3).
"""

from __future__ import annotations

import argparse
import time

import _common
import numpy as np

from edgeperf.scoring.loadgen import ScoreInput, early_stopping_stream, score

GOAL_S = 0.5


def latencies(n: int, seed: int = 20240601) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(np.log(1e6), 0.3, n)
    tail = rng.random(n) < 0.01
    lat[tail] *= 5
    return lat.astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latencies", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    n = args.latencies
    _common.print_header(f"bench_scoring: score() on {n} SingleStream latencies, "
                         f"{args.repeats} repeats")
    lat = latencies(n)
    t_score: list[float] = []
    t_sort: list[float] = []
    t_es: list[float] = []
    summary = None
    for rep in range(args.repeats):
        inp = ScoreInput("SingleStream", lat.copy(), lat.copy(), final_issue_ns=int(lat.sum()))
        t0 = time.perf_counter()
        summary = score(inp, min_duration_ns=600 * 10**9, min_query_count=1024)
        t_score.append(time.perf_counter() - t0)
        a = lat.copy()
        t0 = time.perf_counter()
        s = np.sort(a)
        t_sort.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        early_stopping_stream(s, 0.9, also_p99=True)
        t_es.append(time.perf_counter() - t0)
        print(f"rep {rep + 1}: score() {t_score[-1]:.4f} s, np.sort {t_sort[-1]:.4f} s, "
              f"early stopping (p90 + p99) on sorted input {t_es[-1]:.4f} s", flush=True)
    assert summary is not None
    es = " / ".join(x.strip() for x in summary.early_stopping.lines)
    print(f"score(): {summary.result} {summary.metric_name} = {summary.metric_value:.0f}; {es}")
    rows = [
        _common.Row("4 scoring", f"score(), {n} latencies", _common.median(t_score), "s",
                    [("one np.sort of the same array", _common.median(t_sort))], goal=GOAL_S,
                    note=f"of which early stopping (p90 and p99 estimates) takes "
                         f"{_common.median(t_es):.4f} s; the rest is sorting"),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
