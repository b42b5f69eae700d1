"""What TEST01's output logging costs a run (built-in mlp, one thread): the same runner, the
same samples, with and without accuracy-log sampling, interleaved repeat by repeat, medians.

* plain: ScenarioRunner with no accuracy_log_* settings (the loops never see the logging);
* test01: accuracy_log_probability P (default 0.05: far more than a real TEST01, which logs
  4096 of a 600 s run's samples, about 0.007 at 1,000 queries/s), each logged output copied
  after its query from the invoke's own buffers.

SingleStream: p90 latency of the QueryLog and the run's wall time per query; Offline:
samples/s of the one query. The baseline of each figure is the plain run of the same repeat.
No goal: the ratios are reported as measured (1.0: logging costs nothing measurable).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile

import _common
import numpy as np

from edgeperf.models.builtin import builtin_model
from edgeperf_agent.backends import TfliteBackend
from edgeperf_agent.scenarios import RunSettings, ScenarioRunner

N_SAMPLES = 256
SEED = 20240601


def backend(tmp: str) -> TfliteBackend:
    path = os.path.join(tmp, "mlp.tflite")
    with open(path, "wb") as f:
        f.write(builtin_model("mlp"))
    b = TfliteBackend(path, num_threads=1)
    shape = [N_SAMPLES] + list(b.inputs[0]["shape"][1:])
    b.bind([np.random.default_rng(SEED).uniform(-1.0, 1.0, size=shape).astype(np.float32)])
    return b


def once(b: TfliteBackend, scenario: str, n: int, prob: float) -> dict[str, float]:
    extra = {"offline_sample_count": n} if scenario == "Offline" else {
        "min_query_count": n, "max_query_count": n}
    s = RunSettings.from_dict(dict(scenario=scenario, warmup_queries=100,
                                   accuracy_log_probability=prob, accuracy_log_rng_seed=7,
                                   **extra))
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, b.gather_invoker(),
                       b.batch, backend=b)
    gc.collect()
    log = r.run()
    issue, done, _ = log.slice(0, log.rows)
    issue, done = np.asarray(issue), np.asarray(done)
    logged = len(r.outlog.entries()[0]) if r.outlog is not None else 0
    if scenario == "Offline":
        return {"samples_per_s": n / ((int(done.max()) - int(issue[0])) / 1e9),
                "logged": logged}
    lat = np.sort(done - issue)
    return {"p90_ns": float(lat[int(0.9 * len(lat))]),
            "wall_ns_per_query": float((int(done[-1]) - int(issue[0])) / n), "logged": logged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=200_000)
    ap.add_argument("--probability", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    n, p = args.queries, args.probability
    _common.print_header(f"bench_acclog: TEST01 output logging, mlp, N = {n}, P = {p}, "
                         f"{args.repeats} repeats")
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-acclog-") as tmp:
        b = backend(tmp)
        med = _common.interleaved(args.repeats, {
            "ss-plain": lambda: once(b, "SingleStream", n, 0.0),
            "ss-test01": lambda: once(b, "SingleStream", n, p),
            "off-plain": lambda: once(b, "Offline", n, 0.0),
            "off-test01": lambda: once(b, "Offline", n, p)})
    note = f"{med('ss-test01', 'logged'):.0f} of {n} queries logged"
    rows = [
        _common.Row("test01", "SingleStream p90 latency, logging", med("ss-test01", "p90_ns"),
                    "ns", [("the same run without logging", med("ss-plain", "p90_ns"))],
                    note=note + "; the copy follows the query, outside its interval"),
        _common.Row("test01", "SingleStream wall time a query, logging",
                    med("ss-test01", "wall_ns_per_query"), "ns",
                    [("the same run without logging", med("ss-plain", "wall_ns_per_query"))],
                    note="between queries: the copy and the loop's return and re-entry"),
        _common.Row("test01", "Offline samples/s, logging", med("off-test01", "samples_per_s"),
                    "samples/s", [("the same run without logging",
                                   med("off-plain", "samples_per_s"))],
                    note=f"{med('off-test01', 'logged'):.0f} of {n} samples logged; inside "
                         "the one query, after each logged sample's completion"),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
