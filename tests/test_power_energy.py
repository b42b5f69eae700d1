"""Energy over a window, load profiles, spl.txt and the summary's Power block."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeperf.power import energy, spl
from edgeperf.power.meter import parse_meter_url
from edgeperf.power.trace import PowerTrace
from edgeperf.testing.emulators.load_profile import (
    ConstantProfile,
    StepProfile,
    WindowProfile,
    load_profile,
)

S = 1_000_000_000


def _interval_trace(watts, period_s=1.0, t0_s=0.0):
    n = len(watts)
    t = np.array([round((t0_s + (i + 1) * period_s) * S) for i in range(n)], np.int64)
    return PowerTrace(t, watts, interval_ns=int(period_s * S))


def test_interval_samples_integrate_exactly_and_cut_edge_periods():
    tr = _interval_trace([2.0, 4.0, 6.0, 8.0])  # periods (0,1], (1,2], (2,3], (3,4] s
    e = energy.integrate(tr, 0, 4 * S)
    assert e.energy_j == pytest.approx(20.0, abs=1e-12) and e.covered and not e.problems
    # half of the first and last periods: 2*0.5 + 4 + 6 + 8*0.5
    e = energy.integrate(tr, S // 2, 7 * S // 2)
    assert e.energy_j == pytest.approx(15.0, abs=1e-12)
    assert e.avg_watts == pytest.approx(5.0) and e.samples == 4


def test_instant_samples_trapezoid_with_interpolated_edges():
    t = np.array([0, 1, 2, 3], np.int64) * S
    tr = PowerTrace(t, [0.0, 2.0, 2.0, 0.0])
    assert energy.integrate(tr, 0, 3 * S).energy_j == pytest.approx(4.0)
    # from 0.5 s (1 W, interpolated) to 2.5 s (1 W): 0.75 + 2 + 0.75
    assert energy.integrate(tr, S // 2, 5 * S // 2).energy_j == pytest.approx(3.5)


def test_uncovered_window_is_reported_not_extrapolated():
    tr = _interval_trace([5.0, 5.0], t0_s=1.0)  # covers (1, 3] s
    e = energy.integrate(tr, 0, 3 * S)
    assert not e.covered
    assert "cover 2.000 s of the 3.000 s measurement window" in e.problems[0]
    inst = PowerTrace(np.array([1, 2], np.int64) * S, [1.0, 1.0])
    e = energy.integrate(inst, 0, 3 * S)
    assert not e.covered and "cover 1.000 s" in e.problems[0]
    assert energy.integrate(PowerTrace.empty(), 0, S).problems == [
        "the meter recorded no samples"]


def test_gap_inside_the_window_is_reported():
    ms = 1_000_000
    t = np.concatenate([np.arange(0, 500, 10), np.arange(670, 2001, 10)]) * ms  # 0.17 s gap
    e = energy.integrate(PowerTrace(t, np.ones(len(t))), 0, 2000 * ms)
    assert e.covered and e.energy_j == pytest.approx(2.0)  # bridged linearly
    assert e.problems == [] and e.warnings == [
        "the meter's samples have a gap of 0.180 s inside the window (expected every 0.010 s)"]
    # over a tenth of the window, a gap invalidates
    e = energy.integrate(PowerTrace(t, np.ones(len(t))), 0, 1000 * ms)
    assert e.problems == [
        "the meter's samples have a gap of 0.180 s inside the window (expected every 0.010 s)"]


def test_scenario_figures():
    f = energy.scenario_figures("SingleStream", 10.0, 5.0, 1000, 1000)
    assert f == {"energy_per_query_mj": pytest.approx(10.0), "uj_per_inference":
                 pytest.approx(10_000.0)}
    f = energy.scenario_figures("Offline", 10.0, 5.0, 1, 5000)
    assert f["samples_per_joule"] == pytest.approx(500.0) and f["watts"] == pytest.approx(2.0)
    f = energy.scenario_figures("Server", 10.0, 5.0, 400, 400, completed_qps=80.0)
    assert f["queries_per_second_per_watt"] == pytest.approx(40.0)
    f = energy.scenario_figures("MultiStream", 8.0, 4.0, 100, 800, prefix="net_")
    assert f["net_energy_per_query_mj"] == pytest.approx(80.0)
    assert f["net_uj_per_inference"] == pytest.approx(10_000.0)


def test_ranging_rule_5_percent():
    assert energy.ranging_check(9.6, 10.0) is None
    assert energy.ranging_check(9.5, 10.0) is None
    why = energy.ranging_check(9.4, 10.0)
    assert why is not None and "6.0% below the ranging phase's 10 W" in why
    assert energy.ranging_check(12.0, 10.0) is None  # higher is not this rule's business


def test_step_profile_energy_and_file(tmp_path):
    p = StepProfile([(0, 1.0), (1, 3.0), (3, 2.0)])
    p.anchor(10 * S)
    assert p.energy_j(10 * S, 14 * S) == pytest.approx(1 + 6 + 2)
    assert p.mean_watts(11 * S, 13 * S) == pytest.approx(3.0)
    r = StepProfile([(0, 1.0), (1, 3.0), (2, 1.0)], repeat=True)  # period 2 s: 1 W, 3 W
    assert r.energy_j(0, 10 * S) == pytest.approx(20.0)
    f = tmp_path / "load.txt"
    f.write_text("# seconds watts\n0 2.5\n0.5, 4\nrepeat\n1 2.5\n")
    q = load_profile(str(f))
    assert isinstance(q, StepProfile) and q.repeat
    assert q.energy_j(0, 2 * S) == pytest.approx(2 * (0.5 * 2.5 + 0.5 * 4))
    assert isinstance(load_profile("7.5"), ConstantProfile)
    with pytest.raises(ValueError, match="neither a number of watts nor a file"):
        load_profile(str(tmp_path / "missing"))


def test_window_profile():
    w = WindowProfile(2.0, 5.0)
    assert w.energy_j(0, 10 * S) == pytest.approx(20.0)
    w.set_window(2 * S, 4 * S)
    w.set_window(6 * S, 7 * S, watts=11.0)
    assert w.energy_j(0, 10 * S) == pytest.approx(2 * 10 + 3 * 2 + 9 * 1)
    assert w.mean_watts(3 * S, 3 * S) == pytest.approx(5.0)


def test_spl_line_format_and_round_trip(tmp_path):
    wall = 1_608_718_911_496_700_000  # 12-23-2020 10:21:51.4967 UTC
    line = spl.format_line(wall, 23.43, 228.37, 0.20428, 0.5023, "testing-workload")
    assert line == ("Time,12-23-2020 10:21:51.496,Watts,23.430000,Volts,228.370000,"
                    "Amps,0.204280,PF,0.502300,Mark,testing-workload")
    assert spl.parse_line(line) == (1_608_718_911_496_000_000, 23.43, 228.37, 0.20428,
                                    0.5023, "testing-workload")
    no_pf = spl.format_line(wall, 1.5, float("nan"), float("nan"), float("nan"), None)
    assert no_pf == "Time,12-23-2020 10:21:51.496,Watts,1.500000,Volts,-1,Amps,-1,PF,-1"
    ms_wall = wall - 700_000  # on a whole millisecond, so the ms timestamps round-trip
    tr = PowerTrace(np.array([1, 2], np.int64) * S, [1.0, 2.0], [230.0, 230.0],
                    [0.01, 0.02], wall_offset_ns=ms_wall, mark="m")
    spl.write_spl(tmp_path / "spl.txt", tr)
    back = spl.read_spl(tmp_path / "spl.txt", mark="m", wall_offset_ns=ms_wall)
    assert back.t_ns.tolist() == [1_000_000_000, 2_000_000_000]
    shifted = spl.read_spl(tmp_path / "spl.txt", mark="m", wall_offset_ns=wall)
    assert shifted.t_ns.tolist() == [999_300_000, 1_999_300_000]  # truncated to the ms
    assert back.watts.tolist() == [1.0, 2.0] and back.amps.tolist() == [0.01, 0.02]
    with pytest.raises(ValueError, match="not a power-dev sample line"):
        spl.parse_line("Watts,1")


def test_spl_lines_written_day_first_are_read_too(tmp_path):
    """The issue's example line (``28-12-2020``) and power-dev's (``12-23-2020``) both read;
    a day-first file whose early lines are ambiguous (days <= 12) takes the order its first
    unambiguous date settles, and a live meter's ambiguous lines the order nearest now."""
    tail = ",Watts,22.95,Volts,228.57,Amps,0.206,PF,0.486,Mark,x"
    dmy = spl.parse_line("Time,28-12-2020 15:21:14.682" + tail)
    mdy = spl.parse_line("Time,12-28-2020 15:21:14.682" + tail)
    assert dmy == mdy and dmy[0] == 1_609_168_874_682_000_000
    (tmp_path / "dmy.txt").write_text("".join(
        f"Time,{d:02d}-01-2021 00:00:00.000{tail}\n" for d in (5, 12, 13)))
    tr = spl.read_spl(tmp_path / "dmy.txt")
    assert np.diff(tr.t_ns).tolist() == [7 * 86_400 * S, 86_400 * S]  # Jan 5, 12, 13
    ambiguous = ["Time,01-05-2021 00:00:00.000" + tail]  # Jan 5 or May 1
    may_1 = 1_619_827_200 * S
    assert spl.log_date_order(ambiguous) is None
    assert spl.log_date_order(ambiguous, near_wall_ns=may_1 + 3600 * S) == "dmy"
    assert spl.log_date_order(ambiguous, near_wall_ns=may_1 - 100 * 86_400 * S) == "mdy"


def test_power_block_labels_do_not_collide_with_loadgen():
    block = energy.format_power_block({"meter": "ptd://x:1", "valid": False,
                                       "invalid_reasons": ["meter gone"], "avg_watts": 4.5,
                                       "energy_j": 9.0, "energy_per_query_mj": 3.0,
                                       "idle_watts": float("nan")})
    assert "Power result is : INVALID\n * meter gone\n" in block
    assert "Average power (W) : 4.5\n" in block and "Energy per query (mJ) : 3\n" in block
    assert "Idle power" not in block  # NaN values are left out
    assert "\nResult is" not in block


def test_meter_urls():
    u = parse_meter_url("ptd://10.0.0.2:8888?interval_ms=100")
    assert (u.scheme, u.target, u.params) == ("ptd", "10.0.0.2:8888", {"interval_ms": "100"})
    assert parse_meter_url("lpm01a:///dev/ttyACM0").target == "/dev/ttyACM0"
    assert parse_meter_url("csv:logs/p.csv").target == "logs/p.csv"
    assert (parse_meter_url("sysfs").scheme, parse_meter_url("sysfs").target) == ("sysfs", "")
    assert parse_meter_url("sysfs:ina219?capacity=500").params == {"capacity": "500"}
    assert parse_meter_url("joulescope").scheme == "joulescope"
    assert math.isclose(energy.mean_power(_interval_trace([1.0, 3.0])), 2.0)
