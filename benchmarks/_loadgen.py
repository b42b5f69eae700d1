"""The baseline: MLCommons LoadGen (Python bindings) driving a null or busy Python SUT.

What each LoadGen figure includes (the labels in the tables say which one they use):

* StartTest wall: ``StartTestWithLogSettings`` from call to return, timed by the caller:
  reading the settings, LoadGen's query generation (sample indices, the Server schedule),
  the run itself, and writing the summary and detail logs at the end;
* SUT window: the SUT's own clock (``time.perf_counter_ns``) from entering the first
  IssueQuery to the return of the last QuerySamplesComplete: the run only, as the agent's
  ``log.end_ns - log.start_ns`` is; it includes the SUT's two stamps (``stamp_cost_ns``);
* LoadGen's own clock: its summary's "QPS w/ loadgen overhead" is (N - 1) / the time from
  LoadGen's start of the run to the last query's issue, so 1 / that is its mean
  issue-to-issue period;
* latencies (p50, mean, p99): LoadGen's issue stamp to its completion stamp of each query
  (Server: from the query's scheduled time), from the summary.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import mlperf_loadgen as lg
except ImportError:  # the benchmarks still run; the LoadGen columns say why they are empty
    lg = None

MISSING = ("mlperf_loadgen is not importable; install it with "
           "'pip install mlcommons-loadgen' to measure the LoadGen baselines")


def available() -> bool:
    return lg is not None


@dataclass
class LoadGenRun:
    wall_ns: int  # StartTestWithLogSettings, call to return
    window_ns: int  # SUT clock: first IssueQuery entered .. last QuerySamplesComplete returned
    summary: dict[str, float]  # figures of mlperf_log_summary.txt


_SUMMARY_KEYS = (("Mean latency (ns)", "mean_ns"), ("Min latency (ns)", "min_ns"),
                 ("50.00 percentile latency (ns)", "p50_ns"),
                 ("90.00 percentile latency (ns)", "p90_ns"),
                 ("99.00 percentile latency (ns)", "p99_ns"),
                 ("QPS w/ loadgen overhead", "qps_with_overhead"),
                 ("Scheduled samples per second", "scheduled_qps"),
                 ("Completed samples per second", "completed_qps"),
                 ("min_query_count", "min_query_count"))


def _parse_summary(text: str) -> dict[str, float]:
    out = {}
    for key, name in _SUMMARY_KEYS:
        m = re.search(re.escape(key) + r"\s*:\s*([0-9.]+)", text)
        if m:
            out[name] = float(m.group(1))
    return out


def _sut_issue(work: Callable[[int], Any] | None, stamps: list[int] | None,
               complete: Callable[[Any], None] | None = None):
    """The SUT's IssueQuery: run work(sample index) for each sample (if given), complete the
    query from inside IssueQuery as a synchronous SUT does; with ``stamps`` ([first, last]),
    also stamp the first entry and every return of QuerySamplesComplete. ``complete``
    replaces QuerySamplesComplete (to time the SUT outside LoadGen)."""
    complete = complete or lg.QuerySamplesComplete
    response, pc = lg.QuerySampleResponse, time.perf_counter_ns
    if stamps is not None:
        def issue_stamped(qs: Any) -> None:
            if not stamps[0]:
                stamps[0] = pc()
            complete([response(q.id, 0, 0) for q in qs])
            stamps[1] = pc()
        return issue_stamped
    if work is None:
        def issue(qs: Any) -> None:
            complete([response(q.id, 0, 0) for q in qs])
        return issue

    def issue_work(qs: Any) -> None:
        for q in qs:
            work(q.index)
        complete([response(q.id, 0, 0) for q in qs])
    return issue_work


def _run(ts: Any, n: int, work: Callable[[int], Any] | None, stamp: bool) -> LoadGenRun:
    if work is not None and stamp:
        raise ValueError("the stamped SUT is the null SUT")
    stamps = [0, 0] if stamp else None

    def flush() -> None:
        pass

    def load(_: Any) -> None:
        pass

    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = 0
    ts.max_duration_ms = 0
    ts.min_query_count = n
    ts.max_query_count = n
    outdir = tempfile.mkdtemp(prefix="edgeperf-bench-loadgen-")
    try:
        ls = lg.LogSettings()
        ls.enable_trace = False
        ls.log_output.outdir = outdir
        sut = lg.ConstructSUT(_sut_issue(work, stamps), flush)
        qsl = lg.ConstructQSL(1024, 1024, load, load)
        t0 = time.perf_counter_ns()
        lg.StartTestWithLogSettings(sut, qsl, ts, ls)
        t1 = time.perf_counter_ns()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        summary = _parse_summary((Path(outdir) / "mlperf_log_summary.txt").read_text())
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    if summary.get("min_query_count") != n:
        raise RuntimeError(f"LoadGen ran with min_query_count "
                           f"{summary.get('min_query_count')}, not {n}")
    return LoadGenRun(t1 - t0, stamps[1] - stamps[0] if stamps else 0, summary)


def single_stream(n: int, work: Callable[[int], Any] | None = None,
                  stamp: bool = False) -> LoadGenRun:
    """Run n SingleStream queries against a Python SUT that calls work(sample index) (or
    nothing) and completes each query inside IssueQuery. ``stamp`` (null SUT only) adds the
    SUT-clock window. Trace logging is off; the logs go to a temporary directory that is
    removed afterwards."""
    if lg is None:
        raise RuntimeError(MISSING)
    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.SingleStream
    ts.single_stream_expected_latency_ns = 1000
    return _run(ts, n, work, stamp)


def server(n: int, qps: float, latency_bound_ns: int = 10_000_000) -> LoadGenRun:
    """Run n Server queries at ``qps`` (LoadGen's Poisson schedule, default seeds) against
    the null Python SUT, which completes each query inside IssueQuery."""
    if lg is None:
        raise RuntimeError(MISSING)
    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.Server
    ts.server_target_qps = qps
    ts.server_target_latency_ns = latency_bound_ns
    return _run(ts, n, None, False)


def stamp_cost_ns(number: int = 1_000_000) -> float:
    """What the stamps add to each IssueQuery of the stamped SUT: its two extra statements
    (the first-entry test and the last-completion stamp), timed with timeit, best of five,
    less an empty statement's time."""
    env = {"stamps": [1, 0], "pc": time.perf_counter_ns}
    stamp = "if not stamps[0]:\n    stamps[0] = pc()\nstamps[1] = pc()"
    cost = min(timeit.repeat(stamp, globals=env, number=number, repeat=5))
    empty = min(timeit.repeat("pass", number=number, repeat=5))
    return (cost - empty) / number * 1e9
