"""Campaign scale: N emulated boards driven at once from this host (issue 14).

Each board is its own profile (a .toml of link type ``local``: the agent runs as a
subprocess of this machine) running ``synthetic:sleep:US`` SingleStream, a model that
sleeps rather than spins, so that the boards do not compete for the cores and what is
measured is the host's own cost of driving them. Two campaigns, the same settings:

* solo: one board alone (the baseline, measured in the same run);
* scale: N boards at once (default 32), one campaign, one thread a board.

Figures, while the runs are going: the host process's CPU time (getrusage(RUSAGE_SELF),
every thread of this process, less the sampler thread's own) and the agents' (each agent's
/proc/PID/stat), over the window in which every board is inside its timed run (from the last
board's first issue to the first board's last completion, on the device clock, which on a
local board is this machine's CLOCK_MONOTONIC), divided by the window's wall time and by the
boards running: "% of a core per board" (goal: at most 1 %). The whole campaign's figures
(connects, health checks, scoring, writing the logs, the store) are printed as well.
Every board's query count (from its result.json) must equal the solo run's: the settings
make the count a fixed number (min_query_count = max_query_count = Q, a min duration that Q
sleeps always outlast), independent of the machine's speed.

    .venv/bin/python benchmarks/bench_campaign_scale.py [--boards 32] [--queries 12000]
        [--sleep-us 2000] [--quick] [--profile auto|always|never] [--json FILE]

``--profile``: run the N-board campaign once more under cProfile (every thread), and print
where the host's time goes; ``auto`` does so when the goal is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import numpy as np

from edgeperf.campaigns import run_campaign
from edgeperf.outputs.querylog_file import read_querylog

GOAL_PCT = 1.0  # % of one core per board, while the runs are going
TICK = os.sysconf("SC_CLK_TCK")


def plan(boards: list[Path], name: str, out: Path, queries: int, sleep_us: int,
         min_duration_ms: int) -> dict[str, Any]:
    """SingleStream of synthetic:sleep:US, exactly ``queries`` queries on every board."""
    return {
        "models": [f"synthetic:sleep:{sleep_us}"],
        "scenarios": ["SingleStream"],
        "campaign": {"name": name, "out": str(out), "retries": 0, "preset": "quick"},
        "boards": [{"name": str(b)} for b in boards],
        "settings": {"min_query_count": queries, "max_query_count": queries,
                     "min_duration_ms": min_duration_ms, "max_duration_ms": 0,
                     "target_latency_ns": sleep_us * 1000, "warmup_queries": 10},
    }


def board_profiles(where: Path, n: int) -> list[Path]:
    where.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = where / f"emu{i:02d}.toml"
        p.write_text(f'[board]\nname = "emu{i:02d}"\ndescription = "emulated board {i}: an '
                     'agent subprocess of this machine"\n\n[link]\ntype = "local"\n')
        out.append(p)
    return out


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Sampler:
    """Every ``period`` s: (perf_counter_ns, this process's CPU less the sampler's own,
    each agent's CPU). Agents are added as their boards report healthy."""

    def __init__(self, period: float = 0.2) -> None:
        self.period = period
        self.pids: dict[str, int] = {}
        self.rows: list[tuple[int, float, dict[int, float]]] = []
        self.own_cpu_s = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _sample(self) -> None:
        agents = {}
        for pid in list(self.pids.values()):
            c = proc_cpu_s(pid)
            if c is not None:
                agents[pid] = c
        self.own_cpu_s = time.thread_time()
        self.rows.append((time.perf_counter_ns(), self_cpu_s() - self.own_cpu_s, agents))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()
        self._sample()

    def __enter__(self) -> Sampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def at(self, t_ns: int) -> tuple[float, float]:
        """(host CPU s, agents' CPU s) at t, interpolated between the samples around it."""
        ts = np.array([r[0] for r in self.rows], np.float64)
        host = np.array([r[1] for r in self.rows])
        pids = sorted({p for r in self.rows for p in r[2]})
        agents = 0.0
        for pid in pids:  # a pid missing from a sample (not started, or ended): carry over
            vals, last = [], 0.0
            for r in self.rows:
                last = r[2].get(pid, last)
                vals.append(last)
            agents += float(np.interp(t_ns, ts, vals))
        return float(np.interp(t_ns, ts, host)), agents


@dataclass
class Measured:
    boards: int
    wall_s: float  # the whole campaign
    host_cpu_s: float  # the whole campaign, this process (less the sampler)
    children_cpu_s: float  # the whole campaign, the agents (reaped children)
    window_s: float  # every board inside its timed run
    window_host_cpu_s: float
    window_agents_cpu_s: float
    counts: dict[str, int]  # board -> query count (result.json)
    results: dict[str, str]  # board -> VALID/INVALID/status
    stops: dict[str, str]
    device_events: int
    run_s: list[float] = field(default_factory=list)  # each board's timed run
    window_at_s: tuple[float, float] = (0.0, 0.0)  # the window, from the campaign's start
    load: float = 0.0  # 1-minute load average at the end

    @property
    def host_pct_per_board(self) -> float:
        return 100.0 * self.window_host_cpu_s / self.window_s / self.boards

    @property
    def agents_pct_per_board(self) -> float:
        return 100.0 * self.window_agents_cpu_s / self.window_s / self.boards


def run_one(boards: list[Path], name: str, work: Path, args: argparse.Namespace,
            profile: bool = False) -> Measured:
    out = work / name
    p = plan(boards, name, out, args.queries, args.sleep_us, args.min_duration_ms)
    sampler = Sampler()
    lock = threading.Lock()
    device_events = [0]

    def progress(event: str, data: dict[str, Any]) -> None:
        if event == "healthy" and data.get("agent_pid"):
            sampler.pids[data["board"]] = int(data["agent_pid"])
        elif event == "device":
            with lock:
                device_events[0] += 1
        elif event in ("cell-failed", "unhealthy", "board-error", "warning"):
            print(f"  [{data['board']}] {event}: {data['text']}", flush=True)

    profiles: list[cProfile.Profile] = []
    orig_run = threading.Thread.run
    if profile:
        def profiled_run(self: threading.Thread) -> None:
            pr = cProfile.Profile(time.thread_time)  # CPU, not the wall time of a wait
            profiles.append(pr)
            pr.enable()
            try:
                orig_run(self)
            finally:
                pr.disable()
    children0 = children_cpu_s()
    with sampler:
        if profile:
            threading.Thread.run = profiled_run  # type: ignore[method-assign]
        t0, c0, t0_ns = time.perf_counter(), self_cpu_s(), time.perf_counter_ns()
        try:
            r = run_campaign(p, progress=progress)
        finally:
            threading.Thread.run = orig_run  # type: ignore[method-assign]
        wall, host = time.perf_counter() - t0, self_cpu_s() - c0
    host -= sampler.own_cpu_s  # the sampler thread's own CPU, all of it
    children = children_cpu_s() - children0
    counts, results, stops, starts, ends, run_s = {}, {}, {}, [], [], []
    for cid, cell in sorted(r.cells.items()):
        board = cid.split("/", 1)[0]
        d = out / cid
        results[board] = cell.get("result") or cell["status"]
        try:
            rec = json.loads((d / "result.json").read_text())
            q = read_querylog(d / "querylog.npz")
        except (OSError, ValueError) as exc:
            counts[board], stops[board] = -1, f"no result: {exc}"
            continue
        counts[board] = int(rec["summary"]["query_count"])
        stops[board] = str((rec.get("run") or {}).get("stop_reason", "?"))
        starts.append(int(q["issue_ns"][0]))
        ends.append(int(q["done_ns"][-1]))
        run_s.append((ends[-1] - starts[-1]) / 1e9)
    if profile:
        print_profile(profiles, args.profile_lines)
    w0, w1 = (max(starts), min(ends)) if starts else (0, 0)
    if w1 <= w0:
        raise SystemExit(f"{name}: the boards' runs never overlapped (the last started "
                         f"{(w0 - w1) / 1e9:.1f} s after the first ended): raise --queries")
    h0, a0 = sampler.at(w0)
    h1, a1 = sampler.at(w1)
    return Measured(len(boards), wall, host, children, (w1 - w0) / 1e9, h1 - h0, a1 - a0,
                    counts, results, stops, device_events[0], run_s,
                    ((w0 - t0_ns) / 1e9, (w1 - t0_ns) / 1e9), os.getloadavg()[0])


def print_profile(profiles: list[cProfile.Profile], lines: int) -> None:
    if not profiles:
        return
    st = pstats.Stats(profiles[0])
    for pr in profiles[1:]:
        st.add(pr)
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        st.stream = buf
        st.sort_stats(key).print_stats(lines)
        text = buf.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"\nprofile of the host process, every thread's CPU time, by {key} (the "
              "whole campaign):")
        print(body.rstrip())


def describe(m: Measured, what: str) -> None:
    print(f"{what}: {m.boards} board(s), campaign wall {m.wall_s:.1f} s, each board's run "
          f"{min(m.run_s):.1f}-{max(m.run_s):.1f} s; all boards inside their runs for "
          f"{m.window_s:.1f} s (from {m.window_at_s[0]:.1f} s to {m.window_at_s[1]:.1f} s "
          f"of the campaign): host {m.window_host_cpu_s:.2f} CPU s = "
          f"{m.host_pct_per_board:.3f} % of a core per board, agents "
          f"{m.window_agents_cpu_s:.2f} CPU s = {m.agents_pct_per_board:.2f} % per board; "
          f"whole campaign: host {m.host_cpu_s:.2f} CPU s ({m.host_cpu_s / m.boards:.3f} a "
          f"board), agents {m.children_cpu_s:.2f} CPU s; {m.device_events} device progress "
          f"events; load average {m.load:.2f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=32, help="emulated boards at once")
    ap.add_argument("--queries", type=int, default=12000,
                    help="SingleStream queries a board (min = max query count)")
    ap.add_argument("--sleep-us", type=int, default=2000, help="synthetic:sleep:US")
    ap.add_argument("--min-duration-ms", type=int, default=10_000,
                    help="min duration (Q sleeps of US always outlast it)")
    ap.add_argument("--quick", action="store_true",
                    help="4 boards, 1500 queries (a few seconds a run)")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="profile the host over one more N-board campaign (auto: when the "
                         "goal is missed)")
    ap.add_argument("--profile-lines", type=int, default=25)
    ap.add_argument("--keep", action="store_true", help="keep the campaigns' folders")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    if args.quick:
        args.boards, args.queries, args.min_duration_ms = 4, 1500, 1000
        if args.profile == "auto":
            args.profile = "never"
    if args.queries * args.sleep_us // 1000 <= args.min_duration_ms:
        ap.error(f"--queries {args.queries} sleeps of {args.sleep_us} us do not outlast the "
                 f"min duration {args.min_duration_ms} ms: the count would depend on speed")
    _common.print_header(
        f"bench_campaign_scale: {args.boards} emulated local boards at once vs one alone, "
        f"synthetic:sleep:{args.sleep_us} SingleStream, {args.queries} queries a board")
    print(f"settings: preset quick; min_query_count = max_query_count = {args.queries}, "
          f"min_duration_ms = {args.min_duration_ms}, max_duration_ms = 0, target_latency_ns "
          f"= {args.sleep_us * 1000} (generated queries: max({args.queries}, "
          f"2 x {args.min_duration_ms} ms / {args.sleep_us} us + 1)), warmup_queries = 10",
          flush=True)
    work = Path(tempfile.mkdtemp(prefix="edgeperf-bench-campaign-"))
    saved = {k: os.environ.get(k) for k in ("EDGEPERF_STORE", "EDGEPERF_CACHE")}
    os.environ["EDGEPERF_STORE"] = str(work / "store.sqlite")  # not the user's store
    os.environ["EDGEPERF_CACHE"] = str(work / "cache")
    try:
        boards = board_profiles(work / "boards", args.boards)
        # one-time costs (the agent's zipapp, lazy imports, the store's schema) land in
        # neither measured campaign
        run_one(boards[:1], "warm-up", work, argparse.Namespace(
            **{**vars(args), "queries": 200, "min_duration_ms": 0}))
        solo = run_one(boards[:1], "solo", work, args)
        describe(solo, "solo ")
        scale = run_one(boards, "scale", work, args)
        describe(scale, "scale")
        ref = solo.counts[boards[0].stem]
        print(f"\nquery counts against the solo run's {ref} ({solo.stops[boards[0].stem]}):")
        unequal = 0
        for b in sorted(scale.counts):
            same = scale.counts[b] == ref
            unequal += not same
            print(f"  {b}: {scale.counts[b]} {'equal' if same else 'NOT EQUAL'} "
                  f"({scale.results[b]}; {scale.stops[b]})")
        print(f"verdict: {args.boards - unequal}/{args.boards} boards equal to the solo count"
              + ("" if unequal else " (all equal)"))
        invalid = sorted(b for b, r in scale.results.items() if r != "VALID")
        if invalid:
            print(f"not VALID: {', '.join(invalid)}")
        missed = scale.host_pct_per_board > GOAL_PCT
        if args.profile == "always" or (args.profile == "auto" and missed):
            print("\nprofiling: one more N-board campaign under cProfile (slower: its "
                  "figures are not the ones above)", flush=True)
            prof = run_one(boards, "profiled", work, args, profile=True)
            describe(prof, "profiled")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    n = args.boards
    rows = [
        _common.Row("14 campaign", f"host CPU per board, {n} boards running",
                    scale.host_pct_per_board, "% core",
                    [("one board alone, same settings", solo.host_pct_per_board)],
                    goal=GOAL_PCT,
                    note=f"this process's CPU (every thread, less the sampler) over the "
                         f"{scale.window_s:.1f} s in which all {n} boards were inside their "
                         f"timed runs, / that wall time / {n}; solo window "
                         f"{solo.window_s:.1f} s"),
        _common.Row("14 campaign", f"agents' CPU per board, {n} boards running",
                    scale.agents_pct_per_board, "% core",
                    [("one board alone", solo.agents_pct_per_board)],
                    note=f"/proc/PID/stat of each agent over the same window; "
                         f"synthetic:sleep:{args.sleep_us} sleeps, so this is the agent's "
                         "loop, timing and QueryLog sends"),
        _common.Row("14 campaign", f"host CPU a board, whole {n}-board campaign",
                    scale.host_cpu_s / n, "CPU s",
                    [("one board alone, whole campaign", solo.host_cpu_s)],
                    note="connect and health check, the run, scoring, LoadGen's logs, "
                         "result.json, the store"),
        _common.Row("14 campaign", f"campaign wall time, {n} boards", scale.wall_s, "s",
                    [("one board alone", solo.wall_s)]),
        _common.Row("14 campaign", f"boards whose query count differs from solo ({ref})",
                    float(unequal), "boards", goal=0.0,
                    note=f"{n - unequal}/{n} equal"),
    ]
    _common.finish(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
