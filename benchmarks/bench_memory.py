"""Memory per query of a SingleStream null run: the agent against LoadGen.

Each measurement runs in its own subprocess (this script with --child KIND), so heaps,
allocator caches and peak RSS never leak from one measurement into the next:

* agent-tracemalloc: tracemalloc's peak of traced Python/numpy memory during runner.run(),
  and what is still held after it (the QueryLog), both over N;
* agent-run / agent-idle: peak RSS (VmHWM) of a process that runs N queries versus one
  that imports numpy and device_agent and builds the same runner without running it;
  agent-run also reports its own RSS delta around run() (peak reset just before);
* loadgen-run / loadgen-idle: peak RSS of a process running LoadGen SingleStream with a
  null Python SUT for N queries versus one that only imports mlperf_loadgen.

Goal (issue): the agent uses at most 24 bytes per query (LoadGen holds about 320).
The goal is applied to the agent's peak during run(), measured both ways, and to what it
still holds after run().
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

import _common

GOAL_B = 24.0


def _runner(n: int):
    from edgeperf_agent.backends import SyntheticBackend
    from edgeperf_agent.scenarios import RunSettings, ScenarioRunner
    settings = RunSettings(scenario="SingleStream", min_query_count=n, max_query_count=n,
                           warmup_queries=10)
    return ScenarioRunner(settings, SyntheticBackend("null").invoker(), 1024, lambda *a: None)


def child(kind: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind == "agent-idle":
        import numpy  # noqa: F401 - the agent-run child imports it too
        _runner(n)
    elif kind == "agent-run":
        runner = _runner(n)
        out["reset"] = _common.reset_peak_rss()
        before = _common.proc_status()
        log = runner.run()
        after = _common.proc_status()
        out.update(rows=log.rows, nbytes=log.nbytes, rss_before=before["VmRSS"],
                   rss_after=after["VmRSS"], hwm_after=after["VmHWM"])
    elif kind == "agent-tracemalloc":
        import tracemalloc
        runner = _runner(n)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        log = runner.run()
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(rows=log.rows, peak=peak - base, retained=cur - base)
    elif kind == "loadgen-idle":
        import mlperf_loadgen  # noqa: F401
    elif kind == "loadgen-run":
        import _loadgen
        out["reset"] = _common.reset_peak_rss()
        before = _common.proc_status()
        _loadgen.single_stream(n)
        after = _common.proc_status()
        out.update(rss_before=before["VmRSS"], hwm_after=after["VmHWM"])
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    out["hwm"] = _common.proc_status()["VmHWM"]
    return out


def spawn(kind: str, n: int) -> dict[str, Any]:
    p = subprocess.run([sys.executable, __file__, "--child", kind, "--queries", str(n)],
                       capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"child {kind} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.queries
    if args.child:
        print(json.dumps(child(args.child, n)))
        return
    import _loadgen
    _common.print_header(f"bench_memory: bytes per query of a SingleStream null run, N = {n}, "
                         f"{args.repeats} repeats (one subprocess per measurement)")
    kinds = ["agent-idle", "agent-run", "agent-tracemalloc"]
    if _loadgen.available():
        kinds += ["loadgen-idle", "loadgen-run"]
    else:
        print(_loadgen.MISSING)
    res: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rep in range(args.repeats):
        for k in kinds:
            res[k].append(spawn(k, n))
        print(f"rep {rep + 1}: {json.dumps({k: v[-1] for k, v in res.items()})}", flush=True)

    def med(kind: str, f) -> float:
        return _common.median([f(r) for r in res[kind]])

    idle = med("agent-idle", lambda r: r["hwm"])
    agent_hwm = med("agent-run", lambda r: r["hwm"]) - idle
    agent_inproc = med("agent-run", lambda r: r["hwm_after"] - r["rss_before"])
    agent_held = med("agent-run", lambda r: r["rss_after"] - r["rss_before"])
    tm_peak = med("agent-tracemalloc", lambda r: r["peak"])
    tm_held = med("agent-tracemalloc", lambda r: r["retained"])
    nbytes = med("agent-run", lambda r: r["nbytes"])
    lg_base: list = []
    if _loadgen.available():
        lg_hwm = med("loadgen-run", lambda r: r["hwm"]) - med("loadgen-idle", lambda r: r["hwm"])
        lg_inproc = med("loadgen-run", lambda r: r["hwm_after"] - r["rss_before"])
        lg_base = [("LoadGen, peak RSS run - import-only process", lg_hwm / n),
                   ("LoadGen, peak RSS in-process around StartTest", lg_inproc / n)]
    print(f"agent-idle peak RSS {idle / 1e6:.1f} MB; peak RSS reset before run(): "
          f"{res['agent-run'][0]['reset']}")
    rows = [
        _common.Row("3 memory", "peak during run(), tracemalloc / N", tm_peak / n, "B/query",
                    lg_base, goal=GOAL_B,
                    note="tracemalloc slows the null loop about 6x, so the QueryLog is "
                         "flushed every 500 ms in smaller stretches than in an untraced run; "
                         "the RSS figures below are the untraced truth"),
        _common.Row("3 memory", "peak RSS, run process - idle process / N", agent_hwm / n,
                    "B/query", lg_base[:1], goal=GOAL_B),
        _common.Row("3 memory", "peak RSS in-process around run() / N", agent_inproc / n,
                    "B/query", lg_base[1:], goal=GOAL_B),
        _common.Row("3 memory", "held after run(), tracemalloc / N", tm_held / n, "B/query",
                    lg_base[:1], goal=GOAL_B,
                    note=f"QueryLog.nbytes (what the agent reports) is {nbytes / n:.2f} "
                         f"B/query; RSS held after run() {agent_held / n:.2f} B/query"),
    ]
    _common.finish(rows, args.json)


if __name__ == "__main__":
    main()
