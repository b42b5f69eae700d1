"""Firmware bridge link figures (issue 12):

(a) the time the bridge's driver (edgeperf_firmware.Dut) takes to load one input with
    ``db load N`` and ``db <hex>`` lines of 31 bytes, for an ic-digits input (64 bytes) and a
    96x96x3 input (27648 bytes), at 115200 baud through the line simulator
    (edgeperf.testing.line_sim.LineSim, which paces at the baud rate: qemu's UART is not
    paced), with the Python emulated DUT on the line's device side; against the line's
    limits for the protocol's hex encoding (bytes on the wire a payload byte, and the
    lock-step exchange: every line waits for its reply);
(b) the host CPU the driver uses during one ``infer`` window of ~10 s (its process's
    getrusage, the driver alone in a process of its own), for the Python DUT (real-time
    inferences of 50.93 ms, the qemu firmware's time) and for the qemu board
    (``-icount shift=6,align=on``, paced to the host); qemu's own CPU from /proc/PID/stat.

    python benchmarks/bench_tiny_link.py [--loads 5] [--window-n 197]   (prints Markdown)

The emulated DUT refuses inputs above 4096 bytes (emulated_dut.MAX_DB_INPUT_SIZE, the
firmware's buffer); this script raises that module constant to 27648 in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeperf_firmware import emulated_dut  # noqa: E402
from edgeperf_firmware import protocol as P  # noqa: E402

BAUD = 115200
BITS_PER_CHAR = 10  # 8N1
SIZES = {"ic-digits input (8x8x1 int8)": 64, "96x96x3 input (uint8)": 96 * 96 * 3}
INFER_US = 50929  # the qemu firmware's time per ic-digits inference (icount shift=6)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def wire_bytes(size: int, payload: int = P.DB_PAYLOAD) -> tuple[int, int]:
    """(bytes host -> DUT, bytes DUT -> host) of one load, as the driver and firmware send
    them: the commands with their '%', each reply's lines with CR LF, m-ready last."""
    lines = [f"db load {size}", *P.db_lines(bytes(size), payload)]
    out = sum(len(c) + 1 for c in lines)
    back = len(P.expecting_line(size)) + 2 + len(P.READY) + 2
    back += (len(lines) - 2) * (len(P.READY) + 2) + len(P.LOAD_DONE) + 2 + len(P.READY) + 2
    return out, back


# ---------------------------------------------------------------- (a) load time


def _attach(dut: emulated_dut.EmulatedDut, path: str) -> None:
    """Serve the emulated DUT on ``path`` (the line simulator's device end) instead of its
    own pty."""
    own = dut.master
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    dut.master = fd
    os.close(own)


def load_times(loads: int) -> list[dict]:
    from edgeperf.testing.line_sim import LineSim
    from edgeperf_firmware.dut import Dut

    emulated_dut.MAX_DB_INPUT_SIZE = max(SIZES.values())
    rows = []
    with LineSim(BAUD, bits_per_char=BITS_PER_CHAR) as sim:
        emu = emulated_dut.EmulatedDut("ic01", infer_us=INFER_US)
        _attach(emu, sim.device_path)
        with emu, Dut(sim.host_path, BAUD) as dut:
            dut.identify(0.2)
            for name, size in SIZES.items():
                data = bytes(range(256)) * (size // 256) + bytes(size % 256)
                times = []
                for _ in range(loads):
                    t0 = time.perf_counter()
                    dut.load(data)
                    times.append(time.perf_counter() - t0)
                    if bytes(emu.buffer) != data:
                        raise SystemExit(f"{name}: the DUT's buffer differs from what was sent")
                out, back = wire_bytes(size)
                rate = BAUD / BITS_PER_CHAR
                rows.append({"name": name, "size": size, "median_s": statistics.median(times),
                             "min_s": min(times), "max_s": max(times), "loads": loads,
                             "lines": -(-size // P.DB_PAYLOAD), "out": out, "back": back,
                             "hex_s": size * (2 + 4 / P.DB_PAYLOAD) / rate,
                             "stream_s": out / rate, "lockstep_s": (out + back) / rate})
    return rows


# ---------------------------------------------------------------- (b) CPU during a window


def worker(port: str, n: int) -> int:
    """The driver alone in this process: identify, load a 64-byte input, then one
    ``infer n 0``; prints its CPU and wall time for the infer as JSON."""
    from edgeperf_firmware.dut import Dut

    with Dut(port, BAUD) as dut:
        dut.identify(0.3)
        dut.load(bytes(range(64)))
        print("window", flush=True)
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        reply = dut.infer(n, 0)
        r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    print(json.dumps({"wall_s": w1 - w0, "user_s": r1.ru_utime - r0.ru_utime,
                      "sys_s": r1.ru_stime - r0.ru_stime, "device_us": reply.elapsed_us}),
          flush=True)
    return 0


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def window_cpu(port: str, n: int, other_pid: int | None) -> dict:
    p = subprocess.Popen([sys.executable, __file__, "--worker", port, str(n)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if line != "window":
        p.wait()
        raise SystemExit(f"the driver worker failed before its window (said {line!r})")
    c0, s0 = (_proc_cpu(other_pid) if other_pid else None), resource.getrusage(
        resource.RUSAGE_SELF)
    res = json.loads(p.stdout.readline())
    c1, s1 = (_proc_cpu(other_pid) if other_pid else None), resource.getrusage(
        resource.RUSAGE_SELF)
    p.wait()
    if other_pid:
        res["other_s"] = c1 - c0
    else:  # the emulated DUT runs in this process
        res["other_s"] = (s1.ru_utime - s0.ru_utime) + (s1.ru_stime - s0.ru_stime)
    return res


def cpu_rows(n: int) -> list[tuple[str, dict, str]]:
    from edgeperf_firmware.build import build
    from edgeperf_firmware.qemu import QemuBoard

    rows = []
    with emulated_dut.EmulatedDut("ic01", infer_us=INFER_US, real_time=True) as emu:
        rows.append(("Python emulated DUT (pty)", window_cpu(emu.path, n, None),
                     "the emulated DUT (this benchmark's process)"))
    with QemuBoard(build("performance").elf, realtime=True) as board:
        rows.append(("qemu mps2-an385 reference firmware (pty)",
                     window_cpu(board.port, n, board.proc.pid), "qemu-system-arm"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", type=int, default=5, help="loads of each size (median)")
    ap.add_argument("--window-n", type=int, default=197,
                    help="inferences in the CPU window (197 x 50.93 ms = 10.03 s)")
    ap.add_argument("--worker", nargs=2, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]))

    rate = BAUD / BITS_PER_CHAR
    print(f"# Firmware bridge link, {time.strftime('%Y-%m-%d %H:%M %Z')}, load average "
          f"{os.getloadavg()[0]:.2f}")
    print()
    print(f"(a) load one input at {BAUD} baud 8N1 ({rate:.0f} B/s) through LineSim, Python "
          f"DUT, `db` lines of {P.DB_PAYLOAD} bytes = {2 * P.DB_PAYLOAD + 4} bytes on the "
          f"wire ({(2 * P.DB_PAYLOAD + 4) / P.DB_PAYLOAD:.3f} a payload byte)")
    print()
    print("| input | bytes | db lines | wire bytes out / back | hex limit | streamed commands "
          "| lock-step exchange | measured (median, min-max) | measured / lock-step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in load_times(args.loads):
        print(f"| {r['name']} | {r['size']} | {r['lines']} | {r['out']} / {r['back']} | "
              f"{r['hex_s'] * 1e3:.1f} ms | {r['stream_s'] * 1e3:.1f} ms | "
              f"{r['lockstep_s'] * 1e3:.1f} ms | {r['median_s'] * 1e3:.1f} ms "
              f"({r['min_s'] * 1e3:.1f}-{r['max_s'] * 1e3:.1f}, {r['loads']} loads) | "
              f"{r['median_s'] / r['lockstep_s']:.3f} |")
    print()
    print(f"(b) host CPU during one `infer {args.window_n} 0` window (driver in its own process)")
    print()
    print("| board | window wall | device time | driver CPU (user + sys) | driver CPU / wall "
          "| the board's own CPU | board CPU / wall |")
    print("|---|---|---|---|---|---|---|")
    for name, r, other in cpu_rows(args.window_n):
        cpu = r["user_s"] + r["sys_s"]
        print(f"| {name} | {r['wall_s']:.2f} s | {r['device_us'] / 1e6:.2f} s | "
              f"{cpu * 1e3:.0f} ms ({r['user_s'] * 1e3:.0f} + {r['sys_s'] * 1e3:.0f}) | "
              f"{100 * cpu / r['wall_s']:.2f} % | {other}: {r['other_s']:.2f} s | "
              f"{100 * r['other_s'] / r['wall_s']:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
