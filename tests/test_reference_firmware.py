"""The reference firmware (firmware_bridge/reference_firmware/) built with gcc-arm-none-eabi and
run on qemu's mps2-an385: the MLPerf Tiny protocol reply for reply, outputs bit-exact with
the numpy int8 reference and LiteRT, lap times exact under icount, the energy mode's
timestamp line into the emulated LPM01A; and the ad01 build (the ad-synthetic autoencoder)
speaking Tiny's AD protocol: float32 inputs, the reconstruction error bit-exact with
emulated_dut.ad01_score, the AUC of a whole accuracy run exact.

Nothing here skips: scripts/test.sh installs the compiler and qemu, and a missing one fails
with the install to run.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import serial

from edgeperf.models import reference_ops as ops
from edgeperf.models.network import forward
from edgeperf.tasks.metrics import auc
from edgeperf.tasks.training import AD_SYNTHETIC, IC_DIGITS
from edgeperf.tasks.training import build as train
from edgeperf_firmware.build import Firmware, build
from edgeperf_firmware.emulated_dut import ad01_results_line, ad01_score
from edgeperf_firmware.protocol import encode_int8
from edgeperf_firmware.qemu import QemuBoard, QemuError
from edgeperf_firmware.timestamp_line import TICK_HZ, TimestampLine, falling_to, parse_edge

HOW = ("run scripts/test.sh (it installs gcc-arm-none-eabi, libnewlib-arm-none-eabi and "
       "qemu-system-arm)")
SAMPLES = range(0, 360, 10)  # 36 of the held-out digits

# Exact figures under -icount shift=6 (64 ns a guest instruction): they count the instructions
# of the firmware's loop on a given input, the same on every boot and host for one build
# (Debian bookworm's gcc-arm-none-eabi 12.2, which scripts/test.sh installs; another compiler
# emits other instructions). Each test that asserts one measures it on two boots.
LAP_20_SAMPLE_0 = (0, 1_018_597)  # m-lap-us-t0, m-lap-us-t1 of 'infer 20 0' on sample 0
LAP_40_SAMPLE_0 = (0, 2_037_173)  # 'infer 40 0': 50928.8 us an inference, 21 us of laps
BOOT_EDGES = (523, 25_799)  # energy mode: the boot pulse (falling, rising), device ticks
ENERGY_WINDOW_10_SAMPLE_0 = 12_757_768  # ticks between the falling edges of 'infer 10 0'
# ad01 (the ad-synthetic dense autoencoder, 128-64-16-64-128): 8409.35 us an inference
AD_LAP_20_SAMPLE_0 = (0, 168_207)
AD_LAP_40_SAMPLE_0 = (0, 336_394)
AD_SAMPLES = range(0, 600, 15)  # 40 of the 600 held-out clips, both classes
# the AUC of the 600 scores as the board prints them (6 decimals); the float32 scores give
# 0.9486222, Tiny's 3 decimals would give 0.8683444 (protocol.TINY_IO)
AD_AUC = 0.9486277777777777


def _require_tools() -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; {HOW}", pytrace=False)


class Console:
    """The protocol UART as the MLCommons runner reads it: lines ending at '\\n', '\\r'
    dropped, a reply ending at the line containing m-ready."""

    def __init__(self, port: str, baud: int = 115200) -> None:
        self.port = serial.Serial(port, baud, timeout=0.05)
        self._buf = b""

    def line(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line within {timeout} s (partial {self._buf!r})")
            self._buf += self.port.read(self.port.in_waiting or 1)
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("ascii").replace("\r", "")

    def reply(self, timeout: float = 5.0) -> list[str]:
        lines = [self.line(timeout)]
        while "m-ready" not in lines[-1]:
            lines.append(self.line(timeout))
        return lines

    def command(self, text: str, timeout: float = 5.0) -> list[str]:
        self.port.write(f"{text}%".encode("ascii"))
        return self.reply(timeout)

    def load(self, data: bytes, per_line: int = 31) -> list[str]:
        first = self.command(f"db load {len(data)}")
        assert first == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
        for i in range(0, len(data), per_line):
            last = self.command(f"db {data[i:i + per_line].hex()}")
        return last

    def close(self) -> None:
        self.port.close()


class Booted:
    def __init__(self, fw: Firmware, realtime: bool = False) -> None:
        baud = 9600 if fw.mode == "energy" else 115200
        self.board = QemuBoard(fw.elf, realtime=realtime).start(run=False)
        self.line = TimestampLine(self.board.line_fd, paced=fw.mode == "energy")
        self.console = Console(self.board.port, baud)
        self.board.cont()
        self.banner = self.console.reply()
        self.boot_edges = self.line.wait(2) if fw.mode == "energy" else []

    def close(self) -> None:
        self.console.close()
        self.line.close()
        self.board.close()


@pytest.fixture(scope="session")
def session_cache(host_cache_root: Path) -> Iterator[None]:
    """The session's host cache (conftest's) for session fixtures too: the model the firmware
    is built from is the one the tests' reference computes with, trained once a session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPERF_CACHE", str(host_cache_root))
        yield


@pytest.fixture(scope="session")
def firmware(session_cache: None) -> dict[str, Firmware]:
    _require_tools()
    return {mode: build(mode) for mode in ("performance", "energy")}


@pytest.fixture(scope="session")
def trained(session_cache: None):
    return train(IC_DIGITS)


@pytest.fixture(scope="session")
def ad_firmware(session_cache: None) -> Firmware:
    _require_tools()
    return build("performance", "ad-synthetic")


@pytest.fixture(scope="session")
def ad_trained(session_cache: None):
    return train(AD_SYNTHETIC)


@pytest.fixture(scope="session")
def ad_board(ad_firmware: Firmware) -> Iterator[Booted]:
    b = Booted(ad_firmware)
    yield b
    b.close()


@pytest.fixture(scope="session")
def board(firmware: dict[str, Firmware]) -> Iterator[Booted]:
    b = Booted(firmware["performance"])
    yield b
    b.close()
    assert not b.board.alive()


@pytest.fixture(scope="session")
def energy_board(firmware: dict[str, Firmware]) -> Iterator[Booted]:
    b = Booted(firmware["energy"])
    yield b
    b.close()


def sample_bytes(trained, k: int) -> bytes:
    return encode_int8(ops.quantize(trained.inputs[k][None], trained.int8_net.input_q).tobytes())


def reference_int8(trained, k: int) -> np.ndarray:
    net = trained.int8_net
    return forward(net, ops.quantize(trained.inputs[k][None], net.input_q)).reshape(-1)


def results_line(q: np.ndarray, out_q: ops.QParams) -> str:
    """What the IC reference's th_results prints: DequantizeInt8ToFloat, then %0.3f."""
    values = [np.float32(int(v) - out_q.zero_point) * np.float32(out_q.scale) for v in q]
    return "m-results-[" + ",".join("%0.3f" % float(v) for v in values) + "]"


def ad_sample_bytes(ad_trained, k: int) -> bytes:
    """An ad01 sample as Tiny's AD runner sends it: the real values as float32 (LE)."""
    return np.asarray(ad_trained.inputs[k], "<f4").tobytes()


def laps(reply: list[str]) -> list[int]:
    return [int(m.group(1)) for ln in reply if (m := re.match(r"^m-lap-us-(\d+)$", ln))]


# ---------------------------------------------------------------- build


def test_build_is_small_cached_and_carries_the_tasks_model(firmware, trained) -> None:
    fw = firmware["performance"]
    assert build("performance").elf == fw.elf  # unchanged sources: not rebuilt
    assert fw.model_id == "ic01"
    assert fw.tflite_sha256 == hashlib.sha256(Path(trained.model_path("int8")).read_bytes()
                                              ).hexdigest()
    assert 4_000 < fw.size["text"] < 32_768, fw.size
    assert firmware["energy"].elf != fw.elf
    model_c = (fw.elf.parent / "model.c").read_text()
    assert fw.tflite_sha256 in model_c and "static const int8_t L0_w[72]" in model_c


# ---------------------------------------------------------------- protocol


def test_boot_banner_performance(board: Booted) -> None:
    assert board.banner[0] == "m-timestamp-mode-performance"
    assert re.fullmatch(r"m-lap-us-\d+", board.banner[1])  # th_timestamp_initialize's
    assert board.banner[2:] == ["m-init-done", "m-ready"]


def test_name_profile_help(board: Booted) -> None:
    c = board.console
    assert c.command("name") == ["m-name-dut-[edgeperf-reference-mps2-an385]", "m-ready"]
    assert re.match(r"^m-(name)-dut-\[([^]]+)]$", c.command("name")[0])  # the runner's regex
    assert c.command("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]",
                                    "m-model-[ic01]", "m-ready"]
    helptext = c.command("help")
    assert helptext[0] == "ULPMark for tinyML Firmware V0.0.1" and helptext[-1] == "m-ready"


def test_errors_name_the_problem_and_end_with_ready(board: Booted) -> None:
    c = board.console
    assert c.command("bogus") == ["e-[Unknown command: bogus]", "m-ready"]
    assert c.command("") == ["e-[Unknown command: ]", "m-ready"]
    assert c.command("db") == ["e-[Command 'db' requires a subcommand]", "m-ready"]
    assert c.command("db load") == ["e-[Command 'db load' requires the # of bytes]", "m-ready"]
    assert c.command("db load 0") == ["e-[Command 'db load' must be >0 bytes]", "m-ready"]
    assert c.command("db load 27649") == [
        "e-[Supplied buffer size 27649 exceeds maximum of 27648]", "m-ready"]
    assert c.command("db load 2") == ["m-[Expecting 2 bytes]", "m-ready"]
    assert c.command("db abc") == ["e-[Insufficent number of hex digits]", "m-ready"]
    assert c.command("db zz") == ["e-[Invalid hex digit 'zz']", "m-ready"]
    assert c.command("db 0102") == ["m-load-done", "m-ready"]
    assert c.command("db 03") == ["e-[All 2 bytes are loaded; send 'db load N' first]",
                                  "m-ready"]
    assert c.command("infer 0") == ["e-[Inference iterations must be >0]", "m-ready"]
    assert c.command("infer 1 -1") == ["e-[Inference warmup must be >=0]", "m-ready"]
    assert c.command("infer 1 0") == ["e-[Input db has 2 bytes, expected 64]", "m-ready"]
    # a command longer than the firmware's 80-byte buffer is cut there, as EE_CMD_SIZE does
    assert c.command("x" * 100) == [f"e-[Unknown command: {'x' * 80}]", "m-ready"]


def test_db_load_and_print(board: Booted, trained) -> None:
    data = sample_bytes(trained, 3)
    assert board.console.load(data) == ["m-load-done", "m-ready"]
    printed = board.console.command("db print")
    want = ["m-buffer-" + "-".join(f"{b:02x}" for b in data[i:i + 8])
            for i in range(0, len(data), 8)]
    assert printed == want + ["m-ready"]


def test_outputs_are_bit_exact_with_numpy_and_litert(board: Booted, trained) -> None:
    from ai_edge_litert.interpreter import Interpreter

    net = trained.int8_net
    out_q = net.int8[-1].out
    interp = Interpreter(model_path=str(trained.model_path("int8")))
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    for k in SAMPLES:
        assert board.console.load(sample_bytes(trained, k))[0] == "m-load-done"
        reply = board.console.command("infer 1 0")
        assert reply[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-1"]
        assert len(laps(reply[3:5])) == 2 and reply[5] == "m-infer-done"
        assert len(reply) == 8 and reply[-1] == "m-ready"
        want = reference_int8(trained, k)
        assert reply[-2] == results_line(want, out_q), f"sample {k}"
        got = np.round(np.array(reply[-2][len("m-results-["):-1].split(","), np.float64)
                       / out_q.scale).astype(np.int64) + out_q.zero_point
        np.testing.assert_array_equal(got, want)
        interp.set_tensor(inp["index"], ops.quantize(trained.inputs[k][None], net.input_q))
        interp.invoke()
        np.testing.assert_array_equal(interp.get_tensor(out["index"]).reshape(-1), got)
        assert board.console.command("results") == [reply[-2], "m-ready"]


# ---------------------------------------------------------------- timing under icount


def _lap_window(b: Booted, data: bytes, n: int) -> tuple[int, int]:
    b.console.load(data)
    # qemu runs the window in host time: 3400 inferences take under 2 s on an idle core and
    # longer on a busy one; the wait grows with N (the device times the window, not this)
    reply = b.console.command(f"infer {n} 0", timeout=5.0 + n / 100)
    t = laps(reply)
    assert len(t) == 2, reply
    return t[0], t[1]


def test_lap_times_are_exact_and_reproducible_across_boots(firmware, board, trained) -> None:
    data = sample_bytes(trained, 0)
    first = (_lap_window(board, data, 20), _lap_window(board, data, 40))
    again = Booted(firmware["performance"])  # a second qemu, booted afresh
    try:
        second = (_lap_window(again, data, 20), _lap_window(again, data, 40))
    finally:
        again.close()
    assert first == second == (LAP_20_SAMPLE_0, LAP_40_SAMPLE_0)
    first = first[0]
    assert 20 / ((first[1] - first[0]) / 1e6) == pytest.approx(19.6349, abs=1e-4)  # inf./sec.


def test_a_window_past_the_timers_32_bits_does_not_wrap(board: Booted, trained) -> None:
    """The APB timer's 32 bits last 171.8 s at 25 MHz; its wraps are counted, so a longer
    window (3400 inferences: 173 s of device time, under 2 s here) is still linear in N, up
    to the wrap's interrupt and the 64-bit arithmetic of a count past 32 bits (108 us)."""
    t0, t1 = _lap_window(board, sample_bytes(trained, 0), 3400)
    per = (LAP_40_SAMPLE_0[1] - LAP_20_SAMPLE_0[1]) / 20  # 50928.8 us
    fixed = LAP_20_SAMPLE_0[1] - 20 * per  # 21 us: the laps themselves
    assert t1 - t0 > 2 ** 32 / 25
    assert 0 <= (t1 - t0) - (fixed + 3400 * per) <= 200


def test_build_command_line_prints_the_firmware(firmware) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "edgeperf_firmware.build", "--mode",
                        "performance"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{firmware['performance'].elf}  (performance, ic01, text ")


def test_a_reset_boots_again_with_the_banner(firmware, trained) -> None:
    b = Booted(firmware["performance"])
    try:
        b.console.load(sample_bytes(trained, 1))
        b.board.reset()
        assert b.console.reply() == b.banner  # the same banner, the same first lap
        assert b.console.command("infer 1 0") == ["e-[Input db has 0 bytes, expected 64]",
                                                  "m-ready"]  # the buffer went with the reset
    finally:
        b.close()
    assert not b.board.alive()


def test_a_missing_firmware_is_named(tmp_path: Path) -> None:
    with pytest.raises(QemuError, match=r"firmware .*nothing.elf does not exist; build it "
                                        r"with: python -m edgeperf_firmware.build"):
        QemuBoard(tmp_path / "nothing.elf").start()


def test_qemu_refusing_to_start_is_reported_with_its_words(firmware) -> None:
    # qemu may or may not have opened its QMP socket before it checks -icount
    with pytest.raises(QemuError, match=r"(?s)qemu failed to start the board \((qemu exited "
                                        r"\(status 1\) before its QMP socket opened|qemu "
                                        r"closed its QMP socket)\); it said: .*Invalid shift"):
        QemuBoard(firmware["performance"].elf, icount_shift=11).start()


def test_timestamp_command_reads_the_lap_timer(board: Booted) -> None:
    a = laps(board.console.command("timestamp"))
    b = laps(board.console.command("timestamp"))
    assert len(a) == len(b) == 1 and b[0] > a[0]


# ---------------------------------------------------------------- energy mode


def test_energy_mode_banner_pulses_and_exact_window(firmware, energy_board, trained) -> None:
    b = energy_board
    assert b.banner == ["m-timestamp-mode-energy", "m-init-done", "m-ready"]
    assert [(e.falling, e.ticks) for e in b.boot_edges[:2]] == [(True, BOOT_EDGES[0]),
                                                                (False, BOOT_EDGES[1])]
    b.console.load(sample_bytes(trained, 0))
    b.line.clear()
    reply = b.console.command("infer 10 0", timeout=30)
    assert reply[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-10"]
    assert reply[3:] == ["m-infer-done", results_line(reference_int8(trained, 0),
                                                      trained.int8_net.int8[-1].out), "m-ready"]
    e = b.line.wait(4)
    assert [x.falling for x in e] == [True, False, True, False]
    # 1 ms low from the falling edge's reading, plus the printing of its record
    pulses = (e[0].ticks, e[1].ticks - e[0].ticks, e[3].ticks - e[2].ticks)
    assert pulses == (22, 25_224, 25_541)
    assert e[2].ticks - e[0].ticks == ENERGY_WINDOW_10_SAMPLE_0
    assert not b.line.malformed
    # a second boot: the same window to the tick, and the same boot pulse
    again = Booted(firmware["energy"])
    try:
        edges = again.boot_edges
        again.console.load(sample_bytes(trained, 0))
        again.line.clear()
        again.console.command("infer 10 0", timeout=30)
        e2 = again.line.wait(4)
    finally:
        again.close()
    assert (edges[0].ticks, edges[1].ticks) == BOOT_EDGES
    assert e2[2].ticks - e2[0].ticks == ENERGY_WINDOW_10_SAMPLE_0
    assert (e2[0].ticks, e2[1].ticks - e2[0].ticks, e2[3].ticks - e2[2].ticks) == pulses


def test_parse_edge_refuses_what_is_not_a_record() -> None:
    assert parse_edge(b"F42", 7).device_ns == 42 * 40
    assert parse_edge(b"R1\r").falling is False
    for bad in (b"", b"F", b"X12", b"F1a"):
        with pytest.raises(ValueError, match="not a timestamp-line record"):
            parse_edge(bad)


def test_energy_run_end_to_end_through_the_emulated_lpm01a(energy_board, trained) -> None:
    """The firmware's falling edges, read off its second UART and played on the device's
    clock, drive the emulated PowerShield's D7 input; the project's LPM01A driver streams
    energy samples at 1 kHz, and the energy between the two events over N is the energy per
    inference: with a constant 10 mW load, 10 mW x the device's window / N, to the meter's
    resolution (an event lands in the sample after it: at most one 10 uJ sample more or
    less in the window, 1 uJ an inference)."""
    from edgeperf.power.drivers.lpm01a import Lpm01aMeter
    from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator

    b, n, watts = energy_board, 10, 0.010
    b.console.load(sample_bytes(trained, 0))
    with Lpm01aEmulator(watts) as emu:
        meter = Lpm01aMeter(emu.path, freq="1k", output="energy")
        try:
            b.line.on_edge = falling_to(emu)
            meter.start("energy window")
            time.sleep(meter.lead_s)
            b.line.clear()
            b.console.command(f"infer {n} 0", timeout=30)
            b.line.wait_played(4)  # qemu runs ~100x ahead of real time: the reply came first
            time.sleep(meter.settle_s)
            meter.stop()
            trace = meter.trace()
            events = [int(e.sample_index) for e in meter.events]
        finally:
            b.line.on_edge = None
            meter.close()
    assert len(events) == 2, events
    period = trace.interval_ns / 1e9
    joules = np.asarray(trace.watts, np.float64) * period
    uj_per_inf = float(joules[events[0]:events[1]].sum()) * 1e6 / n
    edges = b.line.edges
    window_s = (edges[2].ticks - edges[0].ticks) / TICK_HZ
    assert window_s * TICK_HZ == ENERGY_WINDOW_10_SAMPLE_0
    expected = watts * window_s * 1e6 / n  # 10 mW x 0.51031072 s / 10 = 510.31 uJ/inf.
    assert expected == pytest.approx(510.31072, abs=1e-6)
    print(f"energy: meter {uj_per_inf:.3f} uJ/inf., device window {expected:.3f}")
    assert abs(uj_per_inf - expected) <= 1.0 + 0.2, (uj_per_inf, expected)


def test_the_energy_bench_measures_the_devices_window_exactly(firmware, trained) -> None:
    """The bench (energy_bench.py): the firmware behind an emulated interface board, its
    timestamp line into the emulated LPM01A on the device's clock. The samples between the
    two events are the device's window (falling edge to falling edge, in 25 MHz ticks)
    rounded up to whole 1 ms samples, so 10 mW gives an exact energy per inference; the reply
    comes only once the window has been played to the shield."""
    import math

    from edgeperf.power.meter import open_meter
    from edgeperf_firmware import procedures
    from edgeperf_firmware.dut import InterfaceDut
    from edgeperf_firmware.energy_bench import EnergyBench

    n = 10
    with EnergyBench(firmware["energy"].elf, 0.010) as bench:
        meter = open_meter(bench.meter_url)
        try:
            with InterfaceDut(bench.port, 9600) as dut:
                info = dut.identify(0.5)
                assert (info.name, info.model) == ("edgeperf-reference-mps2-an385", "ic01")
                dut.mode = "energy"
                dut.load(sample_bytes(trained, 0))
                bench.line.clear()
                reply, events, joules, period = procedures._metered(dut, meter, n, 0, "w")
                edges = bench.line.edges
        finally:
            meter.close()
        assert bench.relay.commands[:2] == ["dut name", "dut profile"]
        assert bench.shield.late_edges == 0
    assert reply.results and period == 0.001
    falling = [e.ticks for e in edges if e.falling]
    assert falling[-1] - falling[-2] == ENERGY_WINDOW_10_SAMPLE_0  # 510.31072 ms
    samples = events[-1] - events[-2]
    assert samples == math.ceil(ENERGY_WINDOW_10_SAMPLE_0 * 40 / 1e6) == 511
    assert float(joules[events[-2]:events[-1]].sum()) * 1e6 / n == pytest.approx(511.0,
                                                                               rel=1e-12)



# ---------------------------------------------------------------- ad01: anomaly detection


def test_ad01_build_carries_the_ad_synthetic_model(ad_firmware, ad_trained) -> None:
    import subprocess
    import sys

    fw = ad_firmware
    assert build("performance", "ad-synthetic").elf == fw.elf  # cached: the task is in the key
    assert (fw.model_id, fw.task) == ("ad01", "ad-synthetic")
    assert fw.tflite_sha256 == hashlib.sha256(
        Path(ad_trained.model_path("int8")).read_bytes()).hexdigest()
    assert 18_432 < fw.size["text"] < 40_960, fw.size  # 18432 weight bytes
    model_c = (fw.elf.parent / "model.c").read_text()
    assert fw.tflite_sha256 in model_c and "static const int8_t L0_w[8192]" in model_c
    assert ".input_kind = NN_INPUT_FLOAT32, .result_kind = NN_RESULT_MSE, " \
           ".result_decimals = 6," in model_c
    r = subprocess.run([sys.executable, "-m", "edgeperf_firmware.build", "--mode",
                        "performance", "--task", "ad-synthetic"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{fw.elf}  (performance, ad01, text ")


def test_ad01_banner_name_and_profile(ad_board: Booted) -> None:
    c = ad_board.console
    assert ad_board.banner[0] == "m-timestamp-mode-performance"
    assert ad_board.banner[2:] == ["m-init-done", "m-ready"]
    assert c.command("name") == ["m-name-dut-[edgeperf-reference-mps2-an385]", "m-ready"]
    assert c.command("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]",
                                    "m-model-[ad01]", "m-ready"]


def test_ad01_db_takes_a_float32_sample(ad_board: Booted, ad_trained) -> None:
    c = ad_board.console
    assert c.command("db load 128") == ["m-[Expecting 128 bytes]", "m-ready"]
    c.command("db " + "00" * 31)
    assert c.command("infer 1 0") == ["e-[Input db has 31 bytes, expected 512]", "m-ready"]
    data = ad_sample_bytes(ad_trained, 7)
    assert len(data) == 512 and c.load(data) == ["m-load-done", "m-ready"]
    want = ["m-buffer-" + "-".join(f"{b:02x}" for b in data[i:i + 8])
            for i in range(0, len(data), 8)]
    assert c.command("db print") == want + ["m-ready"]


def test_ad01_scores_are_bit_exact_with_the_numpy_reference(ad_board: Booted,
                                                             ad_trained) -> None:
    net = ad_trained.int8_net
    labels = set()
    for k in AD_SAMPLES:
        assert ad_board.console.load(ad_sample_bytes(ad_trained, k))[0] == "m-load-done"
        reply = ad_board.console.command("infer 1 0")
        assert reply[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-1"]
        assert len(laps(reply[3:5])) == 2 and reply[5:6] == ["m-infer-done"]
        assert len(reply) == 8 and reply[-1] == "m-ready"
        want = ad01_results_line(ad01_score(net, ad_trained.inputs[k]))
        assert reply[-2] == want, f"sample {k}"
        assert re.fullmatch(r"m-results-\[0\.\d{6}]", reply[-2])
        assert ad_board.console.command("results") == [want, "m-ready"]
        labels.add(int(ad_trained.labels[k]))
    assert labels == {0, 1}


def test_ad01_lap_times_are_exact_and_reproducible_across_boots(ad_firmware, ad_board,
                                                                ad_trained) -> None:
    data = ad_sample_bytes(ad_trained, 0)
    first = (_lap_window(ad_board, data, 20), _lap_window(ad_board, data, 40))
    again = Booted(ad_firmware)
    try:
        second = (_lap_window(again, data, 20), _lap_window(again, data, 40))
    finally:
        again.close()
    assert first == second == (AD_LAP_20_SAMPLE_0, AD_LAP_40_SAMPLE_0)
    per = (AD_LAP_40_SAMPLE_0[1] - AD_LAP_20_SAMPLE_0[1]) / 20
    assert per == 8409.35  # us an inference: 118.9 inf./sec.


def test_ad01_accuracy_run_on_the_qemu_board_gives_the_references_auc(ad_trained, tmp_path,
                                                                       capsys) -> None:
    """The qemu-mps2-an385-ad01 profile has no port: the run builds the ad01 firmware and
    boots it (emulators.start(kind="qemu", model="ad01")), then scores all 600 held-out clips,
    512 bytes each over the pty (25 s on an idle 2-core machine, up to 50 s under load:
    qemu takes a UART byte in some 70 us). Every
    score is the numpy reference's, so the AUC is too, to the last bit."""
    import json

    from edgeperf.cli.main import main

    out = tmp_path / "ad01"
    code = main(["run", "--board", "qemu-mps2-an385-ad01", "--mode", "accuracy", "--out",
                 str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "started the reference firmware (ad01, performance mode) on qemu" in err
    net = ad_trained.int8_net
    want = [float("%0.6f" % ad01_score(net, x)) for x in ad_trained.inputs]
    runner = json.loads((out / "results.json").read_text())
    assert [e["infer"]["results"] for e in runner] == [[v] for v in want]
    ref = auc(np.array(want), ad_trained.labels)
    rec = json.loads((out / "result.json").read_text())
    assert rec["value"] == ref == AD_AUC
    assert rec["accuracy"]["count"] == 600 and rec["accuracy"]["passed"] is True
    assert rec["result"] == "VALID" and rec["sut_name"] == "edgeperf-reference-mps2-an385 (ad01)"
