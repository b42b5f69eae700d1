"""The baseline: MLCommons LoadGen (Python bindings) driving a Python SUT in SingleStream."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

try:
    import mlperf_loadgen as lg
except ImportError:  # the benchmarks still run; the LoadGen columns say why they are empty
    lg = None

MISSING = ("mlperf_loadgen is not importable; install it with "
           "'pip install mlcommons-loadgen' to measure the LoadGen baselines")


def available() -> bool:
    return lg is not None


def _parse_summary(text: str) -> dict[str, int]:
    out = {}
    for key, name in (("Mean latency (ns)", "mean_ns"), ("Min latency (ns)", "min_ns"),
                      ("50.00 percentile latency (ns)", "p50_ns"),
                      ("90.00 percentile latency (ns)", "p90_ns")):
        m = re.search(re.escape(key) + r"\s*:\s*(\d+)", text)
        if m:
            out[name] = int(m.group(1))
    m = re.search(r"min_query_count : (\d+)", text)
    if m:
        out["min_query_count"] = int(m.group(1))
    return out


def single_stream(n: int, work: Callable[[int], Any] | None = None,
                  ) -> tuple[int, dict[str, int]]:
    """Run n SingleStream queries against a Python SUT that calls work(sample index) (or
    nothing) and completes the query from inside IssueQuery, as a synchronous SUT does.

    Returns (wall ns of StartTest, figures of the summary). Trace logging is off; the
    summary and detail logs go to a temporary directory that is removed afterwards.
    """
    if lg is None:
        raise RuntimeError(MISSING)
    complete, response = lg.QuerySamplesComplete, lg.QuerySampleResponse

    if work is None:
        def issue(qs: Any) -> None:
            complete([response(q.id, 0, 0) for q in qs])
    else:
        def issue(qs: Any) -> None:
            for q in qs:
                work(q.index)
            complete([response(q.id, 0, 0) for q in qs])

    def flush() -> None:
        pass

    def load(_: Any) -> None:
        pass

    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.SingleStream
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = 0
    ts.max_duration_ms = 0
    ts.min_query_count = n
    ts.max_query_count = n
    ts.single_stream_expected_latency_ns = 1000
    outdir = tempfile.mkdtemp(prefix="edgeperf-bench-loadgen-")
    try:
        ls = lg.LogSettings()
        ls.enable_trace = False
        ls.log_output.outdir = outdir
        sut = lg.ConstructSUT(issue, flush)
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
    return t1 - t0, summary
