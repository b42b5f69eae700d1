"""Power runs end to end on the local board, with emulated instruments.

The local agent stamps the QueryLog with perf_counter_ns and the host clock is monotonic_ns:
the same CLOCK_MONOTONIC on Linux, so the run's true window on the host clock is the
device's own numbers, and an emulated load profile driven by them has a known energy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_power_sysfs import fake_sysfs  # tests/ is on sys.path (rootdir import mode)

from edgeperf.boards.profile import BoardError, BoardProfile, parse_board
from edgeperf.cli.main import main
from edgeperf.outputs.mlperf_logs import parse_detail, parse_summary
from edgeperf.power.drivers.lpm01a import Lpm01aMeter
from edgeperf.power.drivers.ptd import PtdMeter
from edgeperf.run.execute import EXIT_INVALID, EXIT_VALID, RunError, RunSpec, execute
from edgeperf.settings import preset
from edgeperf.testing.emulators.load_profile import WindowProfile
from edgeperf.testing.emulators.ptd import PtdEmulator

ROOT = Path(__file__).resolve().parent.parent
LOCAL = BoardProfile(name="local", link_type="local")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_MONOTONIC identity")


def settings(scenario="SingleStream", queries=1500):
    s = preset("smoke", scenario)
    kw = dict(min_query_count=queries, max_query_count=queries, min_duration_ms=0,
              warmup_queries=2)
    if scenario == "Offline":
        kw.pop("max_query_count")
    return dataclasses.replace(s, **kw)


def driven(profile: WindowProfile, levels: dict[str, float] | None = None):
    """A reporter that puts the profile's busy level on each phase's run window."""
    def report(event, data):
        if event == "power_window":
            w = (levels or {}).get(data["phase"])
            profile.set_window(data["start_ns"], data["end_ns"], w)
    return report


def run(tmp_path, meter, report=None, scenario="SingleStream", model="synthetic:busy:1000",
        queries=1500, board=LOCAL, idle=0.0):
    return execute(RunSpec(model=model, settings=settings(scenario, queries), board=board,
                           out_dir=tmp_path, meter=meter, idle_baseline_s=idle), report)


def test_ptd_energy_within_1_percent_of_truth(tmp_path):
    prof = WindowProfile(2.0, 5.0)
    with PtdEmulator(prof) as emu:
        o = run(tmp_path, f"{emu.url}?interval_ms=20&poll_s=0", driven(prof))
        ranges = (emu.state.volts_range, emu.state.amps_range)
    assert o.exit_code == EXIT_VALID, (o.invalid_reasons, o.result.get("power"))
    p = o.result["power"]
    assert p["valid"] and not p["invalid_reasons"]
    w = p["window"]
    # the true window: the QueryLog's own device times, which are host-clock times here
    assert abs(w["host_start_ns"] - w["device_start_ns"]) <= w["uncertainty_start_ns"]
    assert abs(w["host_end_ns"] - w["device_end_ns"]) <= w["uncertainty_end_ns"]
    assert w["uncertainty_start_ns"] <= 1_000_000
    truth = prof.energy_j(w["device_start_ns"], w["device_end_ns"])
    assert abs(p["energy_j"] - truth) <= 0.01 * truth
    assert p["avg_watts"] == pytest.approx(5.0, rel=0.01)
    assert p["energy_per_query_mj"] == pytest.approx(truth / 1500 * 1e3, rel=0.01)
    assert p["uj_per_inference"] == pytest.approx(p["energy_per_query_mj"] * 1e3)
    # ranging first, with automatic ranges; testing ranges fixed from its maxima
    assert p["ranging"]["avg_watts"] == pytest.approx(5.0, rel=0.01)
    assert p["ranging_rule_ok"] is True
    testing_ranges = p["instrument"]["ranges"]["testing"]
    assert testing_ranges == {"volts": "230", "amps": "0.0239129"}  # amps: 1.1 x 0.021739
    assert ranges == ("Auto", "Auto")  # put back when the run ended
    # outputs: spl.txt for both phases, detail log's power_begin/end, the summary's block
    for rel, phase in (("spl.txt", "testing"), ("ranging/spl.txt", "ranging")):
        lines = (tmp_path / rel).read_text().splitlines()
        assert len(lines) >= 70 and lines[0].startswith("Time,")
        assert lines[0].endswith(f"_synthetic-busy-1000_{phase}")
    detail = {e["key"]: e["value"] for e in parse_detail(tmp_path / "mlperf_log_detail.txt")}
    assert (detail["power_begin"], detail["power_end"]) == (w["power_begin"], w["power_end"])
    assert detail["edgeperf_power_valid"] is True
    text = (tmp_path / "mlperf_log_summary.txt").read_text()
    loadgen, _, block = text.partition("\n================================================\n"
                                       "Power\n")
    assert loadgen.endswith("No errors encountered during test.\n")
    assert parse_summary(text)["Result is"] == "VALID"
    assert "Power result is : VALID" in block and "Energy per query (mJ) : " in block
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["power"]["energy_j"] == p["energy_j"]
    assert res["files"]["spl_testing"] == "spl.txt"


def test_testing_power_5_percent_below_ranging_is_flagged(tmp_path):
    prof = WindowProfile(2.0, 5.0)
    with PtdEmulator(prof) as emu:
        o = run(tmp_path, f"{emu.url}?interval_ms=20&poll_s=0",
                driven(prof, {"ranging": 5.0, "testing": 4.6}), queries=800)
    assert o.summary is not None and o.summary.valid  # the latency result is untouched
    assert o.exit_code == EXIT_INVALID
    p = o.result["power"]
    assert not p["valid"] and p["ranging_rule_ok"] is False
    why = [r for r in p["invalid_reasons"] if "below the ranging phase's" in r]
    assert len(why) == 1 and "(MLPerf allows at most 5%)" in why[0], p["invalid_reasons"]
    drop = 1 - p["avg_watts"] / p["ranging"]["avg_watts"]
    assert 0.06 < drop < 0.10  # 4.6 W against 5 W, less what the window edges blur


def test_meter_that_disconnects_leaves_latencies_and_marks_power_invalid(tmp_path):
    with PtdEmulator(5.0, drop_after_s=0.6) as emu:
        o = run(tmp_path, f"{emu.url}?interval_ms=20&poll_s=0.1&ranging=0", queries=1500)
    assert o.exit_code == EXIT_INVALID
    assert o.summary is not None and o.summary.valid and o.summary.query_count == 1500
    assert o.result["result"] == "VALID"  # LoadGen's verdict on the latencies
    p = o.result["power"]
    assert not p["valid"]
    assert any("failed during the measurement" in r and "closed the connection" in r
               for r in p["invalid_reasons"]), p["invalid_reasons"]
    assert any("the meter's samples cover" in r for r in p["invalid_reasons"])
    assert p["phases"]["testing"]["samples"] >= 5  # what was read before the drop is kept
    summary = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert "Result is : VALID" in summary and "Power result is : INVALID" in summary


def test_ptdaemon_error_is_reported_with_its_message(tmp_path):
    errors = {"Go": "Error: Analyzer not responding (USB)"}
    with PtdEmulator(5.0, errors=errors) as emu:
        o = run(tmp_path, f"{emu.url}?interval_ms=20", queries=200)
        port = emu.port
    assert o.summary is not None and o.summary.valid
    p = o.result["power"]
    assert not p["valid"]
    assert p["invalid_reasons"][0].startswith(
        f"ranging: PTDaemon at 127.0.0.1:{port} answered 'Error: Analyzer not responding "
        "(USB)' to 'Go,20,0,")
    assert any(r.startswith("testing: PTDaemon at") for r in p["invalid_reasons"])


def test_unreachable_meter_fails_before_the_run(tmp_path):
    with pytest.raises(RunError, match=r"meter ptd://127.0.0.1:1: PTDaemon at 127.0.0.1:1: "
                                       r"cannot connect"):
        run(tmp_path, "ptd://127.0.0.1:1")


def test_device_sensors_in_an_offline_run_with_idle_baseline(tmp_path, monkeypatch):
    # the local board's agent inherits this process's environment: its sysfs root, as a
    # device is configured with it
    monkeypatch.setenv("EDGEPERF_SYSFS_ROOT", str(fake_sysfs(tmp_path / "sys")))
    o = run(tmp_path / "out", "sysfs:ina219?interval_ms=10", scenario="Offline",
            model="synthetic:busy:500", queries=3000, idle=0.2)  # a 1.5 s window
    p = o.result["power"]
    assert o.exit_code == EXIT_VALID, (o.invalid_reasons, p["invalid_reasons"])
    assert p["avg_watts"] == pytest.approx(3.25, rel=1e-9)
    assert p["energy_j"] == pytest.approx(3.25 * p["duration_s"], rel=1e-6)
    assert p["samples_per_joule"] == pytest.approx(o.summary.sample_count / p["energy_j"])
    assert p["watts"] == pytest.approx(3.25, rel=1e-6)
    assert p["idle_watts"] == pytest.approx(3.25) and "net_samples_per_joule" not in p
    assert any("no more than the idle baseline" in w for w in p["warnings"])
    assert "ranging" not in p  # the device's sensors need no ranging


def test_board_profile_names_the_meter(tmp_path):
    b = parse_board('[link]\ntype = "local"\n[meter]\nurl = "ptd://10.0.0.9:8888"\n',
                    "pi.toml")
    assert b.meter_url == "ptd://10.0.0.9:8888" and b.to_dict()["meter"] == b.meter_url
    with pytest.raises(BoardError, match=r"unknown key 'meter.port'; allowed in \[meter\]: url"):
        parse_board('[link]\ntype = "local"\n[meter]\nport = 1\n', "pi.toml")
    with pytest.raises(BoardError, match="meter.url must be a meter URL string"):
        parse_board('[link]\ntype = "local"\n[meter]\nurl = 5\n', "pi.toml")
    with PtdEmulator(5.0) as emu:
        board = BoardProfile(name="pi", link_type="local",
                             meter_url=f"{emu.url}?interval_ms=20&ranging=0")
        o = run(tmp_path, None, board=board, queries=300)
    assert o.result["power"]["url"] == board.meter_url and o.result["board"]["meter"]


def test_cli_run_with_meter_then_report(tmp_path, capsys):
    out = tmp_path / "run"
    with PtdEmulator(5.0) as emu:
        code = main(["run", "--model", "synthetic:busy:500", "--scenario", "SingleStream",
                     "--preset", "smoke", "--min-queries", "1000", "--out", str(out),
                     "--quiet", "--meter", f"{emu.url}?interval_ms=20&ranging=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Result is : VALID" in printed and "Power result is : VALID" in printed
    assert main(["report", str(out)]) == 0
    png = out / "report.png"
    assert capsys.readouterr().out.strip() == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert main(["report", str(tmp_path)]) == 1
    assert "has no result.json" in capsys.readouterr().err


def _spawn(args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "edgeperf.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_emulators_for_rehearsal():
    ptd = _spawn(["emulate", "ptd", "--port", "0", "--watts", "7.5"])
    lpm = _spawn(["emulate", "lpm01a", "--watts", "0.033"])
    try:
        line = ptd.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        assert line.startswith("edgeperf: emulated PTDaemon listening on ptd://127.0.0.1:")
        host, port = url[len("ptd://"):].rsplit(":", 1)
        m = PtdMeter(host, int(port), interval_ms=50, poll_s=100)
        m.start("cli")
        time.sleep(0.3)
        m.stop()
        assert set(m.trace().watts) == {7.5}
        m.close()
        line = lpm.stdout.readline()
        path = line.split(" on ")[1].split()[0]
        assert path.startswith("/dev/pts/")
        s = Lpm01aMeter(path, freq="100")
        s.start("cli")
        time.sleep(0.3)
        s.stop()
        tr = s.trace()
        s.close()
        assert len(tr) >= 20 and set(tr.amps.round(6)) == {0.01}  # 33 mW at 3.3 V
    finally:
        _stop(ptd)
        _stop(lpm)
