"""The two drivers on the same model and device: edgeperf's loops against the official
MLCommons LoadGen (``--loadgen official``), both on the local board's agent.

For each model and scenario, the two drivers run one after the other on one connection
(same pushed model and samples, same settings and seeds), ``--repeats`` times, alternating;
the medians of each driver's figures are printed with their ratio (official / edgeperf):

* metric: the scenario's (SingleStream, MultiStream: the early-stopping latency estimate in
  ns; Server: completed samples/s; Offline: samples/s), from edgeperf's Summary or from
  LoadGen's mlperf_log_detail.txt;
* mean: the mean sample latency (MultiStream: query latency), in ns.

A second table measures the choice the official driver made for its SUT (queries answered
in LoadGen's issue callback) against a single worker thread that takes each query from a
queue: mean SingleStream latency of busy:100 through LoadGen, in-process, both ways.

Run: .venv/bin/python benchmarks/bench_loadgen_drivers.py [--repeats 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path

import mlperf_loadgen as lg

import edgeperf

# per model: the expected latency (LoadGen pre-generates min_duration / it queries: too long
# an expectation and a faster device runs out of queries before the min duration) and the
# Offline expected rate (LoadGen sizes the query 1.1 x min_duration x it)
MODELS = {"synthetic:busy:100": (100_000, 12_000.0), "builtin:mlp": (2_000, 400_000.0)}
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")


def _settings(model: str, scenario: str, seconds: float) -> dict:
    latency, offline_qps = MODELS[model]
    s = {"preset": "smoke", "min_duration_ms": int(seconds * 1000), "warmup_queries": 10,
         "max_duration_ms": 60_000, "target_latency_ns": latency}
    if scenario == "MultiStream":
        s["min_query_count"] = 700
    if scenario == "Server":
        s.update(target_qps=2000.0, target_latency_ns=10_000_000, min_query_count=1000)
    if scenario == "Offline":
        s.update(target_qps=offline_qps, min_query_count=1000, target_latency_ns=None)
    return s


def _figures(r) -> tuple[float, float]:
    if r.summary is not None:  # edgeperf
        stats = r.summary.queries if r.summary.scenario == "MultiStream" else r.summary.samples
        return float(r.summary.metric), float(stats.mean_ns)
    lgr = r.result["loadgen"]
    return float(lgr["metric"]["value"]), float(lgr["result_mean_latency_ns"])


def drivers(repeats: int, seconds: float, root: Path) -> None:
    print(f"{'model':<20} {'scenario':<13} {'figure':<7} {'edgeperf':>12} {'official':>12} "
          f"{'ratio':>7}  valid (edgeperf/official)")
    with edgeperf.connect("local") as dev:
        for model in MODELS:
            for scen in SCENARIOS:
                got: dict[str, list[tuple[float, float]]] = {"edgeperf": [], "official": []}
                valid: dict[str, list[str]] = {"edgeperf": [], "official": []}
                for rep in range(repeats):
                    for drv in ("edgeperf", "official") if rep % 2 == 0 else ("official",
                                                                              "edgeperf"):
                        s = _settings(model, scen, seconds)
                        r = dev.run(model, scenario=scen, loadgen=drv,
                                    out_dir=root / model.replace(":", "-") / scen / f"{drv}{rep}",
                                    **s)
                        got[drv].append(_figures(r))
                        valid[drv].append(r.result["result"][0])
                for k, name in enumerate(("metric", "mean")):
                    e = statistics.median(x[k] for x in got["edgeperf"])
                    o = statistics.median(x[k] for x in got["official"])
                    print(f"{model:<20} {scen:<13} {name:<7} {e:>12.1f} {o:>12.1f} "
                          f"{o / e:>7.3f}  {''.join(valid['edgeperf'])}/"
                          f"{''.join(valid['official'])}", flush=True)


def _busy(us: int):
    ns, pc = us * 1000, time.perf_counter_ns

    def work() -> None:
        end = pc() + ns
        while pc() < end:
            pass
    return work


def _loadgen_mean(issue, n: int) -> float:
    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.SingleStream
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms, ts.min_query_count, ts.max_query_count = 0, n, n
    ts.single_stream_expected_latency_ns = 100_000
    with tempfile.TemporaryDirectory() as out:
        log = lg.LogSettings()
        log.log_output.outdir = out
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = False
        sut = lg.ConstructSUT(issue, lambda: None)
        qsl = lg.ConstructQSL(64, 64, lambda s: None, lambda s: None)
        lg.StartTestWithLogSettings(sut, qsl, ts, log)
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        text = (Path(out) / "mlperf_log_summary.txt").read_text()
    line = next(x for x in text.splitlines() if x.startswith("Mean latency (ns)"))
    return float(line.split(":")[1])


def sut_shapes(repeats: int, n: int = 5000) -> None:
    """In the issue callback (what loadgen_official.py does) against one worker thread."""
    work = _busy(100)
    resp = lg.QuerySampleResponse(0, 0, 0)
    one = [resp]
    complete = lg.QuerySamplesComplete

    def inline(qs) -> None:
        for q in qs:
            work()
            resp.id = q.id
            complete(one)

    todo: queue.SimpleQueue = queue.SimpleQueue()

    def worker() -> None:
        while True:
            qs = todo.get()
            if qs is None:
                return
            for q in qs:
                work()
                resp.id = q.id
                complete(one)

    results: dict[str, list[float]] = {"callback": [], "worker thread": []}
    for _ in range(repeats):
        results["callback"].append(_loadgen_mean(inline, n))
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        results["worker thread"].append(_loadgen_mean(todo.put, n))
        todo.put(None)
        t.join()
    print(f"\nSUT shape, SingleStream busy:100 x {n} queries through LoadGen, median of "
          f"{repeats}: mean latency and what it adds to the 100 us of work")
    for name, xs in results.items():
        m = statistics.median(xs)
        print(f"  {name:<14} mean {m:>9.0f} ns   overhead {m - 100_000:>7.0f} ns")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="min duration of each run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        drivers(args.repeats, args.seconds, Path(root))
    sut_shapes(args.repeats)


if __name__ == "__main__":
    main()
