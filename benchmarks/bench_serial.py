"""Serial-line figures, measured through the line simulator (host/line_sim.py) run as its
own process, with the agent zipapp serving the device side and SerialLink on the host:

* push efficiency: payload bytes / (baud / 10) bytes a second, for a 64 KiB push at 115200
  and 921600 baud (goal: >= 90%);
* QueryLog bytes per query of a 10,000-query SingleStream null run (goal: <= 3);
* a 1,000,000-query SingleStream null run in summary mode: bytes and line time of its
  results, against what the full compact log would cost;
* the same run with ``--querylog`` left to the device (auto): what it chose, the line
  queue's peak and the agent's memory;
* ClockSync over the line at 115200 and 921600 baud: the stated bound, the true error (the
  agent and the host read the same CLOCK_MONOTONIC, so the true offset is 0), the shortest
  round trip and the wire time subtracted from it (goal at 115200: bound <= 2 ms).

    python benchmarks/bench_serial.py [--quick]     (prints a Markdown table)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeperf.links.bundle import local_agent_path  # noqa: E402
from edgeperf.links.serial import SerialLink  # noqa: E402
from edgeperf.power.clocksync import ClockSync  # noqa: E402
from edgeperf.run.client import AgentClient  # noqa: E402
from edgeperf_agent import wire  # noqa: E402


class Line:
    """``edgeperf line-sim`` and an agent on its device side, as separate processes."""

    def __init__(self, baud: int, cache: str) -> None:
        self.baud = baud
        self.sim = subprocess.Popen([sys.executable, "-m", "edgeperf.cli", "line-sim", "--baud",
                                     str(baud)], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
        self.host = self.sim.stdout.readline().split()[-1]
        self.device = self.sim.stdout.readline().split()[-1]
        env = dict(os.environ, EDGEPERF_AGENT_CACHE=cache)
        self.agent = subprocess.Popen([sys.executable, str(local_agent_path()), "serve",
                                       "--serial", self.device, "--baud", str(baud)],
                                      env=env, stderr=subprocess.DEVNULL)
        self.link = SerialLink(self.host, baud)
        self.client = AgentClient(self.link, timeout=300)
        self.client.hello()

    def close(self) -> None:
        self.client.bye()
        self.link.close()
        for p in (self.agent, self.sim):
            p.terminate()
            p.wait()


def push_efficiency(baud: int, size: int, trials: int = 3) -> dict:
    """The median of ``trials`` pushes of ``size`` random bytes, each to a fresh agent."""
    runs = []
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as cache:
            line = Line(baud, cache)
            try:
                data = os.urandom(size)
                before = line.link.stats.retransmits + line.link.stats.fast_retransmits
                t0 = time.monotonic()
                _, sent = line.client.push_model(data)
                took = time.monotonic() - t0
                again = line.link.stats.retransmits + line.link.stats.fast_retransmits - before
            finally:
                line.close()
        runs.append({"baud": baud, "bytes": sent, "seconds": took, "retransmits": again,
                     "efficiency": sent / took / (baud / 10)})
    runs.sort(key=lambda r: r["efficiency"])
    med = dict(runs[len(runs) // 2])
    med["efficiency_range"] = [runs[0]["efficiency"], runs[-1]["efficiency"]]
    return med


def null_settings(n: int) -> dict:
    return {"scenario": "SingleStream", "min_query_count": n, "max_query_count": n,
            "min_duration_ns": 0, "max_duration_ns": 0, "warmup_queries": 10,
            "sample_index_rng_seed": 1, "schedule_rng_seed": 1}


def querylog_bytes(n: int = 10_000) -> dict:
    """What the QueryLog of an n-query null run costs on the line, frames included."""
    with tempfile.TemporaryDirectory() as cache:
        line = Line(921600, cache)
        try:
            c = line.client
            c.load_model("synthetic", kind="null")
            framed = 0
            rows = 0

            def count(header: dict, body: bytes) -> None:
                nonlocal framed, rows
                if header.get("event") == "querylog":
                    framed += len(wire.encode(wire.EVENT, 1, header, body))
                    rows += int(header["rows"])

            before = line.link.stats.line_bytes_in
            reply, _ = c.request("run", settings=null_settings(n), samples=None,
                                 sample_count=256, querylog_encoding="delta1", on_event=count,
                                 timeout=300)
            line_in = line.link.stats.line_bytes_in - before
        finally:
            line.close()
    return {"queries": reply["rows"], "rows_sent": rows, "framed_bytes": framed,
            "bytes_per_query": framed / n, "line_bytes_per_query": line_in / n,
            "raw_bytes_per_query": 20}


def summary_run(n: int, baud: int = 115200) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        line = Line(baud, cache)
        try:
            c = line.client
            c.load_model("synthetic", kind="null")
            before = line.link.stats.line_bytes_in
            t0 = time.monotonic()
            reply = c.run(null_settings(n), samples=None, sample_count=256, on_event=None,
                          querylog="summary", idle_timeout=600)
            took = time.monotonic() - t0
            line_in = line.link.stats.line_bytes_in - before
            run_s = (reply["end_ns"] - reply["start_ns"]) / 1e9
        finally:
            line.close()
    rate = baud / 10
    full = 1.6 * n  # bytes of the full compact log (bench: ~1.5 B a query, null model)
    return {"queries": n, "baud": baud, "run_seconds": run_s, "total_seconds": took,
            "line_bytes": line_in, "line_seconds": line_in / rate,
            "full_log_line_seconds_estimate": full / rate}


def _status_kib(pid: int, key: str) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith(key + ":"):
            return int(ln.split()[1])
    return 0


def auto_run(n: int, baud: int = 115200) -> dict:
    """An n-query null run with ``--querylog`` left to the device (auto): what it chose,
    the most the line's queue held, and the agent's memory for the run."""
    with tempfile.TemporaryDirectory() as cache:
        line = Line(baud, cache)
        try:
            c = line.client
            c.load_model("synthetic", kind="null")
            pid = line.agent.pid
            rss0 = _status_kib(pid, "VmRSS")
            t0 = time.monotonic()
            reply = c.run(null_settings(n), samples=None, sample_count=256, on_event=None,
                          idle_timeout=600)
            took = time.monotonic() - t0
            hwm = _status_kib(pid, "VmHWM")
        finally:
            line.close()
    mode, queue = reply["querylog_mode"], reply["line_queue"]
    return {"queries": n, "baud": baud, "used": mode["used"], "head_rows": mode["head_rows"],
            "reason": mode["reason"], "queue_peak_bytes": queue["peak_bytes"],
            "queue_bound_bytes": queue["bound_bytes"], "declined": queue["declined_offers"],
            "agent_rss_kib_before": rss0, "agent_hwm_kib": hwm, "total_seconds": took,
            "run_seconds": (reply["end_ns"] - reply["start_ns"]) / 1e9}


def clocksync(baud: int, syncs: int = 5) -> dict:
    """``syncs`` ClockSync bursts (32 exchanges, 8 kept) over one session at ``baud``."""
    with tempfile.TemporaryDirectory() as cache:
        line = Line(baud, cache)
        try:
            cs = ClockSync(line.client, link_bytes_per_s=line.link.bytes_per_s)
            points = [cs.sync() for _ in range(syncs)]
        finally:
            line.close()
    for p in points:  # the bound must hold, or the figure means nothing
        assert abs(p.offset_ns) <= p.uncertainty_ns, p
    bounds = sorted(p.uncertainty_ns for p in points)
    return {"baud": baud, "syncs": syncs, "bound_median_ms": bounds[len(bounds) // 2] / 1e6,
            "bound_max_ms": bounds[-1] / 1e6,
            "error_max_ms": max(abs(p.offset_ns) for p in points) / 1e6,
            "rtt_min_ms": min(p.rtt_min_ns for p in points) / 1e6,
            "wire_ms": max(p.wire_ns for p in points) / 1e6}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 queries, not 1,000,000")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only-auto", action="store_true",
                    help="only the 1,000,000-query run with --querylog auto")
    args = ap.parse_args()
    if args.only_auto:
        a = auto_run(100_000 if args.quick else 1_000_000)
        print(json.dumps(a, indent=1) if args.json else _auto_row(a))
        return 0
    res = {"push": [push_efficiency(115200, 64 * 1024), push_efficiency(921600, 64 * 1024),
                    push_efficiency(921600, 512 * 1024)],
           "querylog": querylog_bytes(10_000),
           "summary": summary_run(100_000 if args.quick else 1_000_000),
           "auto": auto_run(100_000 if args.quick else 1_000_000),
           "clocksync": [clocksync(115200), clocksync(921600)]}
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print("| measurement | figure | goal |\n|---|---|---|")
    for p in res["push"]:
        lo, hi = p["efficiency_range"]
        print(f"| push {p['bytes'] // 1024} KiB at {p['baud']} baud (median of 3) | "
              f"{p['seconds']:.2f} s, {100 * p['efficiency']:.1f}% of the line rate "
              f"(range {100 * lo:.1f}-{100 * hi:.1f}%) | >= 90% |")
    q = res["querylog"]
    print(f"| QueryLog, {q['queries']:,}-query SingleStream null run | "
          f"{q['bytes_per_query']:.2f} B/query in frames ({q['line_bytes_per_query']:.2f} "
          f"B/query of line bytes with the reliable layer; raw 20) | <= 3 B/query |")
    s = res["summary"]
    print(f"| {s['queries']:,}-query run, summary mode, {s['baud']} baud | results "
          f"{s['line_bytes'] / 1024:.1f} KiB = {s['line_seconds']:.1f} s of line time "
          f"(run {s['run_seconds']:.1f} s, total {s['total_seconds']:.1f} s); the full compact "
          f"log would take ~{s['full_log_line_seconds_estimate']:.0f} s | not minutes |")
    print(_auto_row(res["auto"]))
    for c in res["clocksync"]:
        print(f"| ClockSync at {c['baud']} baud ({c['syncs']} syncs of 32 exchanges) | bound "
              f"{c['bound_median_ms']:.2f} ms median, {c['bound_max_ms']:.2f} ms max; true "
              f"error <= {c['error_max_ms']:.2f} ms; min round trip {c['rtt_min_ms']:.1f} ms, "
              f"{c['wire_ms']:.1f} ms of it wire time | "
              f"{'<= 2 ms' if c['baud'] == 115200 else '-'} |")
    return 0


def _auto_row(a: dict) -> str:
    return (f"| {a['queries']:,}-query run, --querylog auto (the default), {a['baud']} baud | "
            f"{a['used']} chosen, head {a['head_rows'] or 0:,} rows; line queue peak "
            f"{a['queue_peak_bytes'] / 1024:.1f} KiB (bound {a['queue_bound_bytes'] // 1024} KiB "
            f"+ one stretch), {a['declined']} offers declined; agent RSS "
            f"{a['agent_rss_kib_before'] / 1024:.1f} MiB before, peak "
            f"{a['agent_hwm_kib'] / 1024:.1f} MiB; run {a['run_seconds']:.1f} s, total "
            f"{a['total_seconds']:.1f} s | queue bounded |")


if __name__ == "__main__":
    sys.exit(main())
