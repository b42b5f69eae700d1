"""Power figures for docs/PERFORMANCE.md (Power section): ClockSync bounds and errors,
energy error against a known truth, the device sampler's effect on latencies, LPM01A timing.

    python benchmarks/bench_power.py [--quick]

Truth is known because the local agent's clock (perf_counter_ns) and the host clock
(monotonic_ns) are the same CLOCK_MONOTONIC on Linux.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from edgeperf.boards.profile import BoardProfile  # noqa: E402
from edgeperf.links.local import LocalLink  # noqa: E402
from edgeperf.power.clocksync import ClockSync  # noqa: E402
from edgeperf.power.drivers.lpm01a import Lpm01aMeter  # noqa: E402
from edgeperf.power.energy import integrate  # noqa: E402
from edgeperf.run.client import AgentClient  # noqa: E402
from edgeperf.run.execute import RunSpec, execute  # noqa: E402
from edgeperf.settings import preset  # noqa: E402
from edgeperf.testing.emulators.load_profile import StepProfile, WindowProfile  # noqa: E402
from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator  # noqa: E402
from edgeperf.testing.emulators.ptd import PtdEmulator  # noqa: E402
from edgeperf.testing.emulators.uart_link import UartRateLink  # noqa: E402

LOCAL = BoardProfile(name="local", link_type="local")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def clocksync(link, n, **kw):
    client = AgentClient(link)
    client.hello()
    cs = ClockSync(client, **kw)
    unc, err, rtt, took = [], [], [], []
    for _ in range(n):
        t = time.perf_counter()
        sp = cs.sync()
        took.append(time.perf_counter() - t)
        unc.append(sp.uncertainty_ns)
        err.append(abs(sp.offset_ns))  # the truth is 0
        rtt.append(sp.rtt_min_ns)
        assert abs(sp.offset_ns) <= sp.uncertainty_ns, sp
    client.bye()
    link.close()
    return {"syncs": n, "unc_us_median": statistics.median(unc) / 1e3,
            "unc_us_max": max(unc) / 1e3, "err_us_max": max(err) / 1e3,
            "rtt_min_us_median": statistics.median(rtt) / 1e3,
            "burst_ms_median": statistics.median(took) * 1e3}


def energy_run(interval_ms, queries, out):
    prof = WindowProfile(2.0, 5.0)

    def report(ev, d):
        if ev == "power_window":
            prof.set_window(d["start_ns"], d["end_ns"])

    s = dataclasses.replace(preset("smoke", "SingleStream"), min_query_count=queries,
                            max_query_count=queries, min_duration_ms=0, warmup_queries=2)
    with PtdEmulator(prof) as emu:
        o = execute(RunSpec(model="synthetic:busy:1000", settings=s, board=LOCAL, out_dir=out,
                            meter=f"{emu.url}?interval_ms={interval_ms}&poll_s=0"), report)
    p = o.result["power"]
    w = p["window"]
    truth = prof.energy_j(w["device_start_ns"], w["device_end_ns"])
    return {"interval_ms": interval_ms, "window_s": round(p["duration_s"], 3),
            "energy_j": round(p["energy_j"], 5), "truth_j": round(truth, 5),
            "error_pct": round((p["energy_j"] - truth) / truth * 100, 4),
            "edge_bound_pct": round(2 * 3 * interval_ms / 4000 / truth * 100, 3),
            "valid": p["valid"]}


def sampler_effect(out, queries, interval_ms):
    s = dataclasses.replace(preset("smoke", "SingleStream"), min_query_count=queries,
                            max_query_count=queries, min_duration_ms=0, warmup_queries=10)
    meter = f"sysfs:ina219?interval_ms={interval_ms}" if interval_ms else None
    o = execute(RunSpec(model="synthetic:busy:100", settings=s, board=LOCAL, out_dir=out,
                        meter=meter))
    with np.load(out / "querylog.npz") as z:
        lat = np.sort(z["done_ns"] - z["issue_ns"]) / 1e3
    n = len(lat)
    return {"sampler_ms": interval_ms or "none", "p50_us": round(float(lat[n // 2]), 1),
            "p99_us": round(float(lat[int(n * 0.99)]), 1),
            "p99.9_us": round(float(lat[int(n * 0.999)]), 1), "max_us": round(float(lat[-1]), 1),
            "over_110us": int((lat > 110).sum()), "queries": n,
            "power_samples": (o.result.get("power") or {}).get("samples_in_window")}


def lpm(freq, fmt, seconds):
    prof = StepProfile([(0.0, 0.01), (0.3, 0.04), (0.6, 0.01)])
    with Lpm01aEmulator(prof) as emu:
        m = Lpm01aMeter(emu.path, freq=freq, fmt=fmt)
        m.start("b")
        time.sleep(seconds)
        m.stop()
        tr = m.trace()
        m.close()
    a, b = prof.t0_ns + 100_000_000, prof.t0_ns + int((seconds - 0.1) * 1e9)
    e = integrate(tr, a, b)
    truth = prof.energy_j(a, b)
    # the first sample wholly after the 0.3 s step is stamped at its period's middle
    half = 1e9 / {"1k": 1000, "10k": 10000}[freq] / 2
    rise = int(tr.t_ns[np.argmax(tr.watts > 0.025)] - prof.t0_ns - 300_000_000 - half)
    return {"freq": freq, "format": fmt, "samples": len(tr),
            "timing_bound_us": tr.timing_uncertainty_ns / 1e3,
            "step_error_us": round(rise / 1e3, 1),
            "energy_error_pct": round((e.energy_j - truth) / truth * 100, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    q = args.quick
    print("## ClockSync, local link (32 exchanges, 8 kept)")
    print(clocksync(LocalLink(), 10 if q else 50))
    print("## ClockSync, 115200 baud (UartRateLink), wire time subtracted")
    link = UartRateLink(LocalLink(), 115200)
    print(clocksync(link, 3 if q else 10, link_bytes_per_s=link.bytes_per_s))
    print("## ClockSync, 115200 baud, half the round trip only")
    print(clocksync(UartRateLink(LocalLink(), 115200), 3 if q else 10))
    tmp = Path(tempfile.mkdtemp())
    print("## Energy against the truth, emulated PTDaemon, 2 W idle / 5 W busy")
    for interval, queries in ((20, 3000), (50, 3000), (1000, 3000 if q else 10000)):
        print(energy_run(interval, queries, tmp / f"e{interval}"))
    print("## The device sampler's effect on SingleStream latencies (synthetic:busy:100)")
    from test_power_sysfs import fake_sysfs
    # the local board's agent inherits this environment: its sysfs root, as a device's
    os.environ["EDGEPERF_SYSFS_ROOT"] = str(fake_sysfs(tmp / "sys"))
    for iv in (None, 100, 10):
        print(sampler_effect(tmp / f"s{iv}", 5000 if q else 30000, iv))
    print("## LPM01A emulator on a pty: timing bound and error of a 30 mW step")
    for freq, fmt in (("1k", "ascii_dec"), ("10k", "bin_hexa")):
        print(lpm(freq, fmt, 1.0))


if __name__ == "__main__":
    main()
