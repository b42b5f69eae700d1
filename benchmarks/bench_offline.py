"""Offline throughput of a batched model against the same model unbatched (built-in mlp).

The issue's defect: Offline on ``mlp-batch8`` ran every sample as a whole batch of copies of
itself and was 2.4x slower per sample than ``mlp``. Now a batch holds 8 distinct samples.
Four measurements, interleaved repeat by repeat, medians reported:

* agent, mlp and mlp-batch8: TfliteBackend(model, num_threads=1) bound to the same seeded
  set of 256 samples (uniform in [-1, 1], as host.runner.generate_samples makes them);
  ScenarioRunner(Offline, offline_sample_count=N, warmup_queries=W) with the backend's
  invoker, gather invoker and batch, as the agent's ``run`` builds it; samples/s = N / (the
  last completion - the query's issue), as scoring reads the QueryLog;
* bare, mlp and mlp-batch8: a plain loop over the same N positions calling the same
  invoker (one sample) or gather invoker (8 distinct samples a call), timed from outside:
  the runtime's own rate, the floor for the agent's Offline loop.

No goal: the batched/unbatched ratio is reported as measured (above 1: batching pays).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

import _common
import numpy as np

from edgeperf.models.builtin import builtin_model
from edgeperf_agent.backends import TfliteBackend
from edgeperf_agent.lgseq import offline_positions
from edgeperf_agent.scenarios import RunSettings, ScenarioRunner

MODELS = ("mlp", "mlp-batch8")
N_SAMPLES = 256
SEED = 20240601


def backend(name: str, tmp: str) -> TfliteBackend:
    path = os.path.join(tmp, name + ".tflite")
    with open(path, "wb") as f:
        f.write(builtin_model(name))
    b = TfliteBackend(path, num_threads=1)
    shape = [N_SAMPLES] + [max(1, d) for d in b.inputs[0]["shape"][1:]]
    b.bind([np.random.default_rng(SEED).uniform(-1.0, 1.0, size=shape).astype(np.float32)])
    return b


def agent_once(b: TfliteBackend, n: int, warmup: int) -> dict[str, float]:
    settings = RunSettings(scenario="Offline", offline_sample_count=n, warmup_queries=warmup)
    runner = ScenarioRunner(settings, b.invoker(), N_SAMPLES, lambda *a: None,
                            b.gather_invoker(), b.batch)
    gc.collect()
    log = runner.run()
    if log.rows != n:
        raise RuntimeError(f"Offline answered {log.rows} samples, not {n} "
                           f"({runner.stop_reason})")
    issue, done, _ = log.slice(0, n)
    return {"samples_per_s": n / ((int(done.max()) - int(issue[0])) / 1e9)}


def bare_once(b: TfliteBackend, n: int) -> dict[str, float]:
    order = offline_positions(n, N_SAMPLES)
    gather = b.gather_invoker()
    invoke = b.invoker()
    batch = b.batch
    gc.collect()
    t0 = time.perf_counter_ns()
    if gather is None:
        for s in order.tolist():
            invoke(s)
    else:
        for k in range(0, n - batch + 1, batch):
            gather(order, k, batch)
        if n % batch:
            gather(order, n - n % batch, n % batch)
    t1 = time.perf_counter_ns()
    return {"samples_per_s": n / ((t1 - t0) / 1e9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200_000, help="Offline query size N")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1000, help="agent warm-up queries")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    n = args.samples
    _common.print_header(f"bench_offline: Offline samples/s, mlp vs mlp-batch8, N = {n}, "
                         f"{args.repeats} repeats")
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-offline-") as tmp:
        backends = {name: backend(name, tmp) for name in MODELS}
        print("runtime: " + ", ".join(f"{k} batch {b.batch} ({b.runtime})"
                                      for k, b in backends.items()), flush=True)
        measures = {}
        for name, b in backends.items():
            measures[f"agent-{name}"] = lambda b=b: agent_once(b, n, args.warmup)
            measures[f"bare-{name}"] = lambda b=b: bare_once(b, n)
        med = _common.interleaved(args.repeats, measures)
    single, batched = (med(f"agent-{m}", "samples_per_s") for m in MODELS)
    rows = [
        _common.Row("5 offline", "mlp-batch8 Offline, samples/s", batched, "samples/s",
                    [("mlp (batch 1) Offline, same runner", single),
                     ("bare loop of mlp-batch8's gather invoker", med("bare-mlp-batch8",
                                                                     "samples_per_s"))],
                    note=f"ratio here is a rate over a rate: batch8 / batch1 = "
                         f"{batched / single:.2f} (above 1: batching pays; the issue's "
                         f"defect measured 0.42); num_threads=1, {n} samples, "
                         f"{args.warmup} warm-up queries"),
        _common.Row("5 offline", "mlp Offline, samples/s", single, "samples/s",
                    [("bare loop of mlp's invoker", med("bare-mlp", "samples_per_s"))],
                    note="ratio = agent's rate / the bare loop's (below 1: the runner's "
                         "Offline loop costs that much of the runtime's rate)"),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
