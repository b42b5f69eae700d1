"""MCU boards through edgeperf's own CLI, API, profiles and run directory: the emulated Tiny DUT
on a real pty (pyserial), exact figures from its virtual clock; the tiny profile parser's
errors; 'edgeperf emulate mcu --python' serving a port a run can use."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

import edgeperf
from edgeperf.boards.profile import BoardError, load_board, parse_board, with_overrides
from edgeperf.cli.main import main
from edgeperf_firmware.emulated_dut import EmulatedDut

TINY_FILES = {"result.json", "mlperf_log_summary.txt", "mlperf_log_detail.txt", "results.txt",
              "log.txt", "results.json", "bridge.json"}


@pytest.fixture(scope="module")
def net(host_cache_root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPERF_CACHE", str(host_cache_root))
        from edgeperf_firmware.emulated_dut import ic_digits_network

        return ic_digits_network()


@pytest.fixture
def dut(net):
    """An ic01 DUT on a pty whose inferences take 1250 virtual us: 800 inf./sec. exactly."""
    with EmulatedDut(net=net, infer_us=1250) as emu:
        yield emu


def url(emu: EmulatedDut, **extra: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in {"model": "ic01", **extra}.items())
    return f"tiny://{emu.path}?{q}"


# ---------------------------------------------------------------- profiles


def test_the_reference_board_profile():
    p = load_board("nucleo-l4r5zi")
    assert p.link_type == "tiny" and p.meter_url == "lpm01a:///dev/ttyACM2?freq=1k&output=energy"
    t = p.tiny
    assert (t.port, t.baud, t.energy_baud, t.model, t.default_task) == (
        "/dev/ttyACM0", 115200, 9600, "ic01", "ic-digits")
    assert t.line("performance") == ("/dev/ttyACM0", 115200)
    assert t.line("accuracy") == ("/dev/ttyACM0", 115200)
    assert t.line("energy") == ("/dev/ttyACM1", 115200)  # the interface board
    assert p.to_dict()["tiny"]["interface_port"] == "/dev/ttyACM1"


def test_emulated_profiles_have_no_port_and_say_where_it_comes_from():
    for name, kind in (("emulated-tiny", "python"), ("qemu-mps2-an385", "qemu")):
        t = load_board(name).tiny
        assert t.port is None and t.emulate == kind and t.model == "ic01"
    p = with_overrides(load_board("emulated-tiny"), port="/dev/pts/9")
    assert p.tiny.line("performance") == ("/dev/pts/9", 115200)
    assert p.tiny.line("energy") == ("/dev/pts/9", 9600)  # no interface board: the DUT's own
    t = load_board("qemu-mps2-an385-ad01").tiny  # the ad01 build, at the AD reference's baud
    assert (t.port, t.emulate, t.model, t.baud, t.default_task) == (
        None, "qemu", "ad01", 921600, "ad-synthetic")


def test_tiny_urls():
    t = load_board("tiny:///dev/ttyACM3?model=ad01").tiny
    assert (t.port, t.baud, t.default_task) == ("/dev/ttyACM3", 921600, "ad-synthetic")
    t = load_board("tiny:///dev/ttyACM3?baud=57600&interface=/dev/ttyACM4").tiny
    assert (t.baud, t.model, t.line("energy")) == (57600, None, ("/dev/ttyACM4", 115200))
    with pytest.raises(BoardError, match=r"unknown parameter 'parity'; allowed: baud, "):
        load_board("tiny:///dev/ttyACM3?parity=E")
    with pytest.raises(BoardError, match=r"write tiny:///dev/ttyACM0\?model=ic01"):
        load_board("tiny://dev/ttyACM3")
    with pytest.raises(BoardError, match=r"model is 'ic02'; allowed: kws01, vww01, ic01, ad01"):
        load_board("tiny:///dev/ttyACM3?model=ic02")


@pytest.mark.parametrize("text, message", [
    ('[link]\ntype = "tiny"\nmodel = "ic01"\n',
     r"x.toml: a tiny board needs link.port, the DUT's serial device .* or link.emulate"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\nmodel = "kws02"\n',
     r"link.model is 'kws02'; allowed: kws01, vww01, ic01, ad01"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\nbaud = "fast"\n',
     r"link.baud must be a positive whole number of baud \(115200 for performance"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\nenergy_baud = 0\n',
     r"link.energy_baud must be a positive whole number"),
    ('[link]\ntype = "tiny"\nemulate = "renode"\n',
     r"link.emulate is 'renode'; allowed: python, qemu"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\nparity = "E"\n',
     r"link.parity belongs to a serial link, but link.type is 'tiny'"),
    ('[link]\ntype = "serial"\nport = "/dev/ttyUSB0"\nmodel = "ic01"\n',
     r"link.model belongs to a tiny link, but link.type is 'serial'"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\n[interface]\nbaud = 115200\n',
     r"interface.port must be the board's serial device"),
    ('[link]\ntype = "ssh"\nhost = "pi"\n[interface]\nport = "/dev/ttyACM1"\n',
     r"\[interface\] .* belongs to a tiny board, but link.type is 'ssh'"),
    ('[link]\ntype = "tiny"\nport = "/dev/ttyACM0"\n[interface]\nport = "/dev/x"\nspeed = 1\n',
     r"unknown key 'interface.speed'; allowed in \[interface\]: baud, port"),
])
def test_profile_errors_name_the_key_and_the_fix(text, message):
    with pytest.raises(BoardError, match=message):
        parse_board(text, "x.toml")


def test_port_applies_to_mcu_boards_only():
    with pytest.raises(BoardError, match=r"--port applies to MCU boards .*local has a local"):
        with_overrides(load_board("local"), port="/dev/pts/1")


# ---------------------------------------------------------------- edgeperf run


def test_performance_through_the_cli_exact_figures_and_files(dut, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--board", url(dut), "--mode", "performance", "--out", str(out),
                 "--quiet"])
    assert code == 0
    assert TINY_FILES <= {p.name for p in out.iterdir()}
    rec = json.loads((out / "result.json").read_text())
    assert (rec["result"], rec["valid"], rec["exit_code"], rec["mode"]) == ("VALID", True, 0,
                                                                           "performance")
    assert rec["task"] == "ic-digits:int8" and rec["board"]["link"] == "tiny"
    assert rec["value"] == 800.0 and rec["unit"] == "inf./sec." and rec["reasons"] == []
    # N from calibration: the fewest 1250 us inferences past 1.1 x 10 s
    assert [w["n"] for w in rec["procedure"]["windows"]] == [8800] * 5
    assert [w["seconds"] for w in rec["procedure"]["windows"]] == [11.0] * 5
    summary = (out / "mlperf_log_summary.txt").read_text()
    assert "Scenario : MLPerf Tiny performance (median throughput of 5 windows of >= 10 s; " \
           "not a LoadGen scenario)" in summary
    assert "Median throughput (inf./sec.) : 800.000\nResult is : VALID\n" in summary
    assert "Window 3 : 8800 inferences in 11.000000 s, 800.000 inf./sec." in summary
    text = (out / "results.txt").read_text()
    assert [m[1] for ln in text.splitlines()
            if (m := re.match(r".* Median throughput is\s+([\d\.]+) inf\./sec\..*", ln))] == [
        "800.000"]
    from edgeperf.outputs.detail import parse_detail

    events = {e["key"]: e["value"] for e in parse_detail(out / "mlperf_log_detail.txt")}
    assert events["result_validity"] == "VALID"
    assert events["edgeperf_tiny_performance_value"] == 800.0
    assert not any(k.startswith(("effective_", "requested_", "early_stopping")) for k in events)
    printed = capsys.readouterr().out
    assert "=== MLPerf Tiny performance on tiny:" in printed and "800.000" in printed


def test_a_short_window_is_invalid_with_the_rule_named(dut, tmp_path, capsys):
    out = tmp_path / "short"
    code = main(["run", "--board", url(dut), "--mode", "performance", "--tiny-window-s", "2",
                 "--out", str(out), "--quiet"])
    assert code == 3
    rec = json.loads((out / "result.json").read_text())
    # measured, but not valid: 1760 inferences of 1250 us
    assert rec["result"] == "INVALID" and rec["value"] == 1760 / (1760 * 1250 / 1e6)
    assert rec["reasons"][0] == ("window 1 ran 2.200 s of inference, under MLPerf Tiny's "
                                 "minimum of 10 s a window")
    summary = (out / "mlperf_log_summary.txt").read_text()
    assert "Result is : INVALID\n  Windows of at least 10 s : NO\n" in summary
    assert "Median throughput is" not in (out / "results.txt").read_text()


def test_accuracy_on_the_emulated_board_it_starts_itself(tmp_path, capsys):
    out = tmp_path / "acc"
    code = main(["run", "--board", "emulated-tiny", "--task", "ic-digits", "--mode",
                 "accuracy", "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "emulated-tiny has no port: started the Python emulated DUT (ic01" in err
    assert "accuracy: 360/360 samples" in err
    rec = json.loads((out / "result.json").read_text())
    assert rec["value"] == 350 / 360 and rec["accuracy"]["passed"] is True
    assert rec["accuracy"]["count"] == 360
    assert "Top 1% = 97.2" in (out / "results.txt").read_text()
    assert "top1     : 0.972222\n" in (out / "accuracy.txt").read_text()


def test_a_missed_accuracy_target_exits_3(dut, tmp_path, capsys):
    dut.malformed = {"m-results-": "m-results-[1.000,0.000,0.000,0.000,0.000,0.000,0.000,"
                                   "0.000,0.000,0.000]"}  # always class 0
    code = main(["run", "--board", url(dut), "--mode", "accuracy", "--out",
                 str(tmp_path / "a"), "--quiet"])
    assert code == 3
    err = capsys.readouterr().err
    # 38 of the 360 held-out digits are zeros
    assert "accuracy FAIL: top1 0.105556 misses the target >= 0.9652" in err
    rec = json.loads((tmp_path / "a" / "result.json").read_text())
    assert rec["value"] == 38 / 360 and rec["accuracy"]["passed"] is False
    assert rec["exit_code"] == 3 and rec["result"] == "VALID"  # the procedure held its rules


def test_energy_needs_a_meter(dut, tmp_path, capsys):
    code = main(["run", "--board", url(dut), "--mode", "energy", "--out",
                 str(tmp_path / "e")])
    assert code == 2
    assert (f"energy mode needs an energy monitor and board tiny:{dut.path} names none: pass "
            "--meter 'lpm01a:///dev/ttyACM0?freq=1k&output=energy'") in capsys.readouterr().err


def test_an_emulated_board_started_for_an_energy_run_brings_its_shield(tmp_path, capsys):
    """emulated-tiny has no port: an energy run starts the Python DUT behind an emulated
    interface board with an emulated LPM01A (10 mW) its timestamps drive, and measures with
    it; 1 ms an inference (in real time), so about 10 uJ an inference."""
    out = tmp_path / "e"
    code = main(["run", "--board", "emulated-tiny", "--mode", "energy", "--tiny-window-s",
                 "0.25", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err  # 0.25 s windows
    assert "its timestamps into an emulated LPM01A (10 mW)" in err
    rec = json.loads((out / "result.json").read_text())
    windows = rec["procedure"]["windows"]
    assert len(windows) == 5 and rec["unit"] == "uJ/inf."
    for w in windows:  # 10 uJ a 1 ms sample: the energy is the samples between the events
        samples = w["events"][-1] - w["events"][-2]
        assert w["seconds"] == samples / 1000
        assert w["energy_per_inf_uj"] == pytest.approx(10.0 * samples / w["n"], rel=1e-9)
    code = main(["run", "--board", "emulated-tiny", "--mode", "energy", "--meter",
                 "lpm01a:///dev/ttyACM0", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "brings its own emulated LPM01A: drop --meter" in capsys.readouterr().err


def test_energy_with_the_lpm01a_through_the_cli(net, tmp_path, capsys):
    from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator

    watts, us = 0.0198, 2000
    with Lpm01aEmulator(watts) as lpm, EmulatedDut(mode="energy", net=net, infer_us=us,
                                                   on_timestamp=lpm.gpio_falling_edge) as emu:
        out = tmp_path / "energy"
        code = main(["run", "--board", url(emu, energy_baud="9600"), "--mode", "energy",
                     "--meter", f"lpm01a://{lpm.path}?freq=1k&output=energy",
                     "--tiny-window-s", "0.25", "--out", str(out), "--quiet"])
    assert code == 3  # 0.25 s windows: the rule says so
    rec = json.loads((out / "result.json").read_text())
    assert rec["baud"] == 9600 and rec["unit"] == "uJ/inf."
    assert len(rec["procedure"]["windows"]) == 5
    # the median window's energy: the constant power over the time its inferences really
    # took (2 ms each on an idle machine, 39.6 uJ; longer when the machine is loaded)
    med = sorted(rec["procedure"]["windows"], key=lambda w: w["energy_per_inf_uj"])[2]
    assert rec["value"] == med["energy_per_inf_uj"]
    assert med["seconds"] >= med["n"] * us / 1e6 - 0.002
    assert rec["value"] == pytest.approx(watts * med["seconds"] / med["n"] * 1e6, rel=1e-3)
    assert emu.commands[0] == "dut name"  # through the interface board
    assert "Median energy (uJ/inf.) : " in (out / "mlperf_log_summary.txt").read_text()


def test_a_wrong_port_is_named(tmp_path, capsys):
    code = main(["run", "--board", "tiny:///dev/edgeperf-no-such-port?model=ic01", "--out",
                 str(tmp_path / "x")])
    assert code == 1
    assert "serial port /dev/edgeperf-no-such-port does not exist" in capsys.readouterr().err


def test_a_baud_mismatch_is_named(dut, tmp_path, capsys):
    dut.garbage = True  # what a board at another baud looks like
    code = main(["run", "--board", url(dut, baud="9600"), "--out", str(tmp_path / "x"),
                 "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "check the baud rate: the driver runs at 9600 baud" in err


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "SingleStream"], "not LoadGen scenarios: drop --scenario"),
    (["--model", "builtin:mlp"], "drop --model"),
    (["--mode", "submission"], "--mode submission is not one of them"),
    (["--task", "ad-synthetic"], "runs model ic01 (link.model), which is task ic-digits"),
])
def test_agent_flags_on_an_mcu_board_are_refused(argv, message, tmp_path, capsys):
    assert main(["run", "--board", "emulated-tiny", "--out", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_mcu_flags_on_an_agent_board_are_refused(capsys):
    assert main(["run", "--task", "ic-digits", "--mode", "energy"]) == 2
    assert "--mode energy is MLPerf Tiny's energy procedure" in capsys.readouterr().err
    assert main(["run", "--model", "builtin:mlp", "--scenario", "SingleStream", "--port",
                 "/dev/pts/1"]) == 2
    assert "--port applies to microcontroller boards" in capsys.readouterr().err


def test_info_prints_the_duts_name_profile_and_model(dut, capsys):
    assert main(["info", "--board", "emulated-tiny", "--port", dut.path]) == 0
    out = capsys.readouterr().out
    assert "dut        edgeperf-emulated-dut\n" in out
    assert "profile    ULPMark for tinyML Firmware V0.0.1\n" in out
    assert "model      ic01 (profile: ic01)\n" in out


# ---------------------------------------------------------------- the API


def test_the_api_runs_the_procedure_and_returns_a_tiny_result(dut, tmp_path):
    with edgeperf.connect("emulated-tiny", port=dut.path) as dev:
        assert dev.is_mcu and dev.link == f"tiny {dut.path} at 115200 baud"
        assert dev.info()["model"] == "ic01"
        r = dev.run(task="ic-digits", mode="performance", out_dir=tmp_path / "p",
                    boot_wait=0.05)
        assert isinstance(r, edgeperf.TinyResult)
        assert (r.valid, r.value, r.unit, r.exit_code) == (True, 800.0, "inf./sec.", 0)
        assert [w.n for w in r.windows] == [8800] * 5 and r.out_dir == tmp_path / "p"
        r = dev.run(mode="performance", out_dir=tmp_path / "s", windows=3, window_s=1.0,
                    boot_wait=0.05)
        assert not r.valid and r.exit_code == 3 and len(r.windows) == 3
        assert "3 window(s) measured, MLPerf Tiny needs exactly 5 (of 3 asked for)" in r.reasons
        with pytest.raises(edgeperf.UsageError, match=r"scenario= is an option of agent runs"):
            dev.run(task="ic-digits", scenario="SingleStream")
        with pytest.raises(edgeperf.UsageError, match=r"take no min_query_count="):
            dev.run(task="ic-digits", min_query_count=10)
    with pytest.raises(edgeperf.UsageError, match=r"connection is closed"):
        dev.run()


# ---------------------------------------------------------------- edgeperf emulate mcu


def _interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops it: it exits 0."""
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_emulate_mcu_python_prints_a_port_a_run_can_use(tmp_path, capsys):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edgeperf.cli", "emulate", "mcu",
                             "--python"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        m = re.search(r"the Python emulated DUT \(ic01, performance mode, 1000 us an "
                      r"inference\) on (/dev/pts/\d+)", first)
        assert m, first
        port = m[1]
        assert proc.stdout.readline().startswith(
            f"edgeperf: use it with: edgeperf run --board emulated-tiny --port {port} ")
        out = tmp_path / "emulated"
        assert main(["run", "--board", "emulated-tiny", "--port", port, "--out", str(out),
                     "--quiet"]) == 0
        assert json.loads((out / "result.json").read_text())["value"] == 1000.0
    finally:
        _interrupt(proc)


def test_emulate_mcu_energy_prints_the_board_and_its_shield(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edgeperf.cli", "emulate", "mcu",
                             "--python", "--energy", "--watts", "0.02"], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert "into an emulated LPM01A (20 mW) on /dev/pts/" in first, first
        m = re.search(r"--port (/dev/pts/\d+) --mode energy --meter '(lpm01a://\S+)'",
                      proc.stdout.readline())
        assert m
        out = tmp_path / "e"
        assert main(["run", "--board", "emulated-tiny", "--port", m[1], "--mode", "energy",
                     "--meter", m[2], "--tiny-window-s", "0.2", "--out", str(out),
                     "--quiet"]) == 3  # 0.2 s windows
        rec = json.loads((out / "result.json").read_text())
        w = rec["procedure"]["windows"][0]
        samples = w["events"][-1] - w["events"][-2]
        assert w["energy_per_inf_uj"] == pytest.approx(20.0 * samples / w["n"], rel=1e-9)
    finally:
        _interrupt(proc)


# ---------------------------------------------------------------- the qemu reference board


def test_the_qemu_board_started_for_a_run_gives_exact_figures(tmp_path, capsys):
    """qemu-mps2-an385 with no port: the run builds the reference firmware (cached) and boots
    it under -icount shift=6, where m-lap-us is exact: the same figures on every boot."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; run scripts/test.sh (it installs "
                        "gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm)",
                        pytrace=False)
    out = tmp_path / "qemu"
    code = main(["run", "--board", "qemu-mps2-an385", "--mode", "performance", "--out",
                 str(out)])  # MLPerf Tiny's 5 windows of 10 s: about 3 s of host time
    assert code == 0
    assert "started the reference firmware (ic01, performance mode) on qemu" in \
        capsys.readouterr().err
    rec = json.loads((out / "result.json").read_text())
    laps = [(w["n"], w["t0_us"], w["t1_us"]) for w in rec["procedure"]["windows"]]
    assert laps == [(216, 0, 11_000_648), (216, 0, 11_001_671), (216, 0, 10_999_417),
                    (216, 0, 10_998_878), (216, 0, 11_006_689)]
    assert rec["value"] == 216 / (11_000_648 / 1e6)  # window 1's: the median of the five
    assert rec["result"] == "VALID" and rec["sut_name"] == "edgeperf-reference-mps2-an385 (ic01)"
    assert "Median throughput is     19.635 inf./sec." in (out / "results.txt").read_text()


def test_the_qemu_board_started_for_an_energy_run_gives_exact_figures(tmp_path, capsys):
    """qemu-mps2-an385 with no port, energy mode: the run starts the energy bench (the
    firmware behind an emulated interface board, its timestamp line into an emulated LPM01A
    drawing 10 mW, edges placed on the device's clock) and measures with its shield. Under
    icount every window's samples are exact, so the median is exactly 10 uJ x 10951 / 215.
    MLPerf Tiny's 5 windows of 10 s, played in real time: about a minute."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; run scripts/test.sh", pytrace=False)
    out = tmp_path / "qemu-energy"
    code = main(["run", "--board", "qemu-mps2-an385", "--mode", "energy", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "behind an emulated interface board, its timestamp line into an emulated LPM01A" \
        in err
    rec = json.loads((out / "result.json").read_text())
    windows = rec["procedure"]["windows"]
    assert [(w["n"], w["events"][-1] - w["events"][-2]) for w in windows] == [
        (215, 10951), (215, 10952), (215, 10950), (215, 10949), (215, 10957)]
    assert rec["result"] == "VALID" and rec["unit"] == "uJ/inf."
    assert rec["value"] == pytest.approx(10.0 * 10951 / 215, rel=1e-12)  # 509.3488 uJ/inf.
    text = (out / "results.txt").read_text()
    m = re.search(r"Median energy cost is ([\d\.]+) uJ/inf", text)  # Tiny's checker's regex
    assert m and m[1] == "509.3488"

