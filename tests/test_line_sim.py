"""The line simulator (host/line_sim.py): real ptys, the line's pace, its faults, its CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from edgeperf.testing.line_sim import Faults, LineSim

ROOT = Path(__file__).resolve().parent.parent


def transfer(sim: LineSim, data: bytes, settle: float = 0.3,
             at_most: float = 10.0) -> tuple[bytes, float]:
    h = serial.Serial(sim.host_path, sim.baud, timeout=0, write_timeout=10)
    d = serial.Serial(sim.device_path, sim.baud, timeout=0)
    try:
        t0 = time.monotonic()
        writer = threading.Thread(target=h.write, args=(data,))  # the reader keeps up
        writer.start()
        got = bytearray()
        last = time.monotonic()
        while time.monotonic() - last < settle and time.monotonic() - t0 < at_most:
            chunk = d.read(65536)
            if chunk:
                got += chunk
                last = time.monotonic()
            time.sleep(0.002)
        writer.join()
        return bytes(got), last - t0
    finally:
        h.close()
        d.close()


def test_paces_bytes_at_the_baud_rate():
    data = os.urandom(4800)  # 1.0 s at 48000 baud (4800 B/s)
    with LineSim(48000) as sim:
        got, took = transfer(sim, data)
    assert got == data
    # never faster than the line (the promise); how much slower depends on the machine's
    # load, so the upper bound only catches a stalled relay
    assert 0.95 <= took < 10


def test_flips_and_drops_at_the_configured_rates():
    data = bytes(200_000)
    with LineSim(4_000_000, Faults(flip_rate=0.01, drop_rate=0.005), seed=4) as sim:
        got, _ = transfer(sim, data)
        st = sim.to_device.stats
    assert 0.008 * len(data) < st.flipped < 0.012 * len(data)
    assert 0.004 * len(data) < st.dropped < 0.006 * len(data)
    assert len(got) == len(data) - st.dropped
    ones = sum(bin(b).count("1") for b in got)  # one bit a flipped byte (unless dropped)
    assert 0 <= st.flipped - ones <= 40


def test_pulled_cable_loses_bytes_and_plugging_it_back_restores_the_line():
    with LineSim(1_000_000) as sim:
        sim.pull()
        lost, _ = transfer(sim, b"x" * 1000)
        sim.plug()
        back, _ = transfer(sim, b"y" * 1000)
        assert lost == b"" and sim.to_device.stats.lost_unplugged == 1000
        assert back == b"y" * 1000


def test_garbage_bursts_arrive_between_the_data():
    with LineSim(1_000_000, Faults(garbage_every=0.1, garbage_bytes=32)) as sim:
        got, _ = transfer(sim, b"", settle=1.0, at_most=0.55)
        assert len(got) >= 3 * 32 and sim.to_device.stats.garbage == len(got)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="flip_rate must be in"):
        Faults(flip_rate=1.5)
    with pytest.raises(ValueError, match="baud must be positive"):
        LineSim(0)


def test_cli_prints_both_paths_and_relays_until_stopped():
    p = subprocess.Popen([sys.executable, "-m", "edgeperf.cli", "line-sim", "--baud", "115200",
                          "--flip-rate", "0.001"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        host = p.stdout.readline().split()
        device = p.stdout.readline().split()
        assert host[:2] == ["host", "side:"] and device[:2] == ["device", "side:"]
        assert os.path.exists(host[2]) and os.path.exists(device[2])
        assert "relaying at 115200 baud, flip rate 0.001" in p.stdout.readline()
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) == 0
    assert "to_device: DirectionStats" in p.stderr.read()
