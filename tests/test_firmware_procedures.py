"""MLPerf Tiny's procedures through the driver and the emulated DUT on a pty, exact figures from
its virtual clock; energy with edgeperf's LPM01A driver against its emulator."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from edgeperf.models.network import forward
from edgeperf.tasks.metrics import auc, top1
from edgeperf.tasks.registry import load_task
from edgeperf_firmware import protocol as P
from edgeperf_firmware.dut import DutError
from edgeperf_firmware.emulated_dut import (
    EmulatedDut,
    ad01_results_line,
    ad01_score,
    quantize_float_to_int8,
)
from edgeperf_firmware.run import run_procedure, task_inputs

# virtual microseconds an inference takes on each of the five performance inputs
TIMES = [1250, 800, 1000, 1600, 1111]


@pytest.fixture(scope="module")
def ic(host_cache_root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPERF_CACHE", str(host_cache_root))
        task = load_task("ic-digits")
        samples, _ = task_inputs(task)
        from edgeperf_firmware.emulated_dut import ic_digits_network

        return task, samples, ic_digits_network()


def timed_dut(ic, **kw) -> EmulatedDut:
    _, samples, net = ic
    us = {s.data: t for s, t in zip(samples[:5], TIMES, strict=True)}
    return EmulatedDut(net=net, infer_us=lambda data: us.get(data, 1000), **kw)


def test_performance_median_throughput_is_exact(ic, tmp_path):
    task = ic[0]
    with timed_dut(ic) as emu:
        r = run_procedure(emu.path, 115200, "performance", task, tmp_path, boot_wait=0.05)
    assert r.valid and r.reasons == [] and len(r.windows) == 5
    for w, us in zip(r.windows, TIMES, strict=True):
        # N from the calibration run: the fewest inferences past 1.1 x 10 s
        assert w.n == math.ceil(11_000_000 / us)
        assert w.t1_us - w.t0_us == w.n * us
        assert w.throughput == w.n / ((w.n * us) / 1e6)
        assert w.seconds >= 10.0
    assert [w.sample for w in r.windows] == [0, 1, 2, 3, 4]  # a different input each window
    # the median is the 1111 us window's: 9901 inferences in 10.999011 s
    assert r.windows[4].n == 9901
    assert r.value == 9901 / (9901 * 1111 / 1e6) == pytest.approx(900.0900090009)
    assert "Median throughput is    900.090 inf./sec." in (tmp_path / "results.txt").read_text()
    lines = (tmp_path / "results.txt").read_text().splitlines()
    found = [m.group(1) for ln in lines
             if (m := re.match(r".* Median throughput is\s+([\d\.]+) inf\./sec\..*", ln))]
    assert found == ["900.090"]  # the Tiny checker's reading
    runner = json.loads((tmp_path / "results.json").read_text())
    assert [e["infer"]["iterations"] for e in runner] == [w.n for w in r.windows]
    assert list(runner[0]) == ["file", "classes", "class", "bytes_to_send", "stride",
                               "total_length", "infer", "mode"]
    assert list(runner[0]["infer"]) == ["start_time", "end_time", "results", "elapsed_time",
                                        "total_inferences", "iterations", "warmups",
                                        "throughput"]
    bridge = json.loads((tmp_path / "bridge.json").read_text())
    assert bridge["result"] == "VALID" and bridge["value"] == r.value
    assert emu.ahead_max == 0


def test_a_window_under_10_s_is_the_rule_it_breaks(ic, tmp_path):
    with timed_dut(ic) as emu:
        r = run_procedure(emu.path, 115200, "performance", ic[0], tmp_path, window_s=2.0,
                          boot_wait=0.05)
    assert not r.valid and len(r.windows) == 5
    assert r.reasons[0] == ("window 1 ran 2.200 s of inference, under MLPerf Tiny's minimum of "
                            "10 s a window")
    assert len(r.reasons) == 5
    assert r.value == pytest.approx(1e6 / 1111, rel=1e-3)  # the figure is still reported


def test_a_reset_mid_procedure_is_invalid_and_keeps_the_windows_measured(ic, tmp_path):
    with timed_dut(ic) as emu:
        # each window: two calibration infers (1 inference, then 0.1 s worth), then its own
        emu.reset_at_infer = 3 * 3 + 3  # window 4's timed infer
        r = run_procedure(emu.path, 115200, "performance", ic[0], tmp_path, boot_wait=0.05)
    assert not r.valid
    assert [w.index for w in r.windows] == [1, 2, 3]
    assert r.reasons[0].startswith("window 4: ") and "the board reset during 'infer " in \
        r.reasons[0] and "m-timestamp-mode-performance" in r.reasons[0]
    assert r.reasons[1] == "3 window(s) measured, MLPerf Tiny needs exactly 5"
    kept = sorted(w.throughput for w in r.windows)
    assert r.value == kept[1]  # median of what was measured, reported but INVALID
    text = (tmp_path / "results.txt").read_text()
    assert "Median throughput" not in text and "ERROR 1 - loop_count was not exactly 5." in text


def test_accuracy_equals_the_numpy_models_top1(ic, tmp_path):
    task, samples, net = ic
    with EmulatedDut(net=net) as emu:
        r = run_procedure(emu.path, 115200, "accuracy", task, tmp_path, boot_wait=0.05)
    x = [np.frombuffer(P.decode_int8(s.data), np.int8).reshape(net.input_shape) for s in samples]
    ref = top1(np.concatenate([forward(net, xi) for xi in x]), task.dataset.labels)
    assert r.valid and r.count == len(samples) == 360
    assert r.value == ref and r.passed == (ref >= task.target)
    assert r.metric == "top1" and 0.95 < ref < 1.0
    assert f"Top 1% = {100 * ref:2.1f}" in (tmp_path / "results.txt").read_text()
    assert emu.commands.count("infer 1 0") == 360 and emu.ahead_max == 0


def test_accuracy_interrupted_by_a_reset_is_invalid(ic, tmp_path):
    with EmulatedDut(net=ic[2]) as emu:
        emu.reset_at_infer = 100
        r = run_procedure(emu.path, 115200, "accuracy", ic[0], tmp_path, boot_wait=0.05)
    assert not r.valid and r.count == 99
    assert "sample 99 of 360" in r.reasons[0] and "99 sample(s) were scored" in r.reasons[0]
    assert r.reasons[1] == ("99 of 360 samples scored: an accuracy run needs every sample of "
                            "the task once")
    assert "Top 1%" not in (tmp_path / "results.txt").read_text()


def test_accuracy_auc_on_ad_synthetic(tmp_path):
    from edgeperf.tasks.training import AD_SYNTHETIC, build

    task = load_task("ad-synthetic")
    net = build(AD_SYNTHETIC).int8_net
    samples, real = task_inputs(task)
    inputs = task.dataset.inputs[0]
    # as Tiny's AD runner sends them: the task's real values as float32, not quantized
    assert [s.data for s in samples] == [np.asarray(x, "<f4").tobytes() for x in inputs]
    np.testing.assert_array_equal(real, inputs)
    with EmulatedDut("ad01", net=net) as emu:
        r = run_procedure(emu.path, 921600, "accuracy", task, tmp_path, boot_wait=0.05)
    # the board's anomaly score as the reference firmware prints it (6 decimals)
    scores = [float("%0.6f" % ad01_score(net, np.frombuffer(s.data, "<f4"))) for s in samples]
    assert r.valid and r.metric == "auc" and r.count == 600
    assert r.outputs == [[v] for v in scores]
    assert r.value == auc(np.array(scores), task.dataset.labels) == r.auc
    assert r.value >= 0.85 and r.passed
    assert emu.commands.count("db load 512") == 600


def test_ad01_reference_is_tinys_quantize_and_float32_sequential_mse():
    """emulated_dut's ad01 functions against Tiny's code read literally, one float32 operation
    at a time: QuantizeFloatToInt8 (round() of the float32 quotient, halves away from zero)
    and calculate_result (diffsum += diff * diff in index order, then /= the count)."""
    from edgeperf.tasks.training import AD_SYNTHETIC, build

    f32 = np.float32
    scale, zp = 0.5, -3
    x = np.array([0.25, -0.25, 0.75, -0.75, 0.2499999, 1e9, -1e9, 63.0, -70.0, np.nan], f32)
    got = quantize_float_to_int8(x, scale, zp)
    want = []
    for v in x:
        q = f32(v) / f32(scale)
        r = math.floor(abs(float(q)) + 0.5) * (1 if q >= 0 else -1) if q == q else -256
        want.append(max(-128, min(127, r + zp)))
    assert got.tolist() == want == [-2, -4, -1, -5, -3, 127, -128, 123, -128, -128]

    t = build(AD_SYNTHETIC)
    net = t.int8_net
    out_q = net.int8[-1].out
    for x in t.inputs[::97]:
        q = quantize_float_to_int8(x, net.input_q.scale, net.input_q.zero_point)
        y = forward(net, q.reshape(net.input_shape)).reshape(-1)
        diffsum = f32(0)
        for i in range(len(x)):
            diff = f32(f32(int(y[i]) - out_q.zero_point) * f32(out_q.scale)) - f32(x[i])
            diffsum = f32(diffsum + f32(diff * diff))
        diffsum = f32(diffsum / f32(len(x)))
        assert ad01_score(net, x).tobytes() == diffsum.tobytes()
        assert ad01_results_line(diffsum) == f"m-results-[{float(diffsum):0.6f}]"


def test_the_wrong_model_on_the_board_is_refused(ic, tmp_path):
    with EmulatedDut("ad01", net=ic[2]) as emu:
        with pytest.raises(DutError, match="runs model ad01 but task ic-digits needs ic01"):
            run_procedure(emu.path, 115200, "accuracy", ic[0], tmp_path, boot_wait=0.05)


def test_energy_between_the_last_two_events_with_the_lpm01a(ic, tmp_path):
    from edgeperf.power.drivers.lpm01a import Lpm01aMeter
    from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator

    watts, us = 0.0198, 2000
    with Lpm01aEmulator(watts) as lpm:
        meter = Lpm01aMeter(lpm.path, freq="1k", output="energy")
        try:
            with EmulatedDut(mode="energy", net=ic[2], infer_us=us,
                             on_timestamp=lpm.gpio_falling_edge) as emu:
                # short windows keep the test fast: the result says they break the rule
                r = run_procedure(emu.path, 9600, "energy", ic[0], tmp_path, meter=meter,
                                  window_s=0.25, boot_wait=0.05)
        finally:
            meter.close()
    assert emu.commands[0] == "dut name"  # through the interface board
    assert len(r.windows) == 5 and not r.valid
    assert all("under MLPerf Tiny's minimum of 10 s" in why for why in r.reasons)
    for w in r.windows:
        i0, i1 = w.events[-2:]
        assert w.energy_per_inf_uj == float(np.sum(w.samples_j[i0:i1])) * 1e6 / w.n
        assert w.seconds == pytest.approx((i1 - i0) / 1000, rel=1e-12)  # (i1 - i0) x 1 ms
        assert w.samples_j[i0] == pytest.approx(watts / 1000, rel=1e-3)  # 1 kHz energy samples
        # a constant 19.8 mW over the time the N inferences really took between the events
        # (the DUT sleeps 2 ms an inference: at least that, more on a loaded machine), give
        # or take a sample at each end
        assert w.seconds >= w.n * us / 1e6 - 0.002
        assert w.energy_per_inf_uj == pytest.approx(watts * w.seconds / w.n * 1e6, rel=1e-3)
        # and that time is the DUT's own, edge to edge, to a meter sample
        gaps = np.diff(np.array(lpm.edges, np.int64)) / 1e9
        assert np.min(np.abs(gaps - w.seconds)) <= 0.0015, (w.seconds, gaps)
    assert r.value == sorted(w.energy_per_inf_uj for w in r.windows)[2]
    text = (tmp_path / "results.txt").read_text()
    assert "Median energy cost" not in text
    assert "All inference times must be at least 10 seconds." in text
