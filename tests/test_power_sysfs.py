"""The device's own sensors: the agent's sensors/sample_power operations on a fake sysfs tree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from host.client import AgentClient, AgentError
from host.link import LocalLink
from host.power.clocksync import ClockMap, ClockSync
from host.power.meter import MeterError, host_ns, open_meter
from host.power.sysfs_meter import SysfsMeter


def fake_sysfs(root: Path) -> Path:
    """An INA219 on a Pi power board, a phone-style battery, and things that are not sensors."""
    def put(rel: str, text: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")

    put("class/hwmon/hwmon0/name", "cpu_thermal")
    put("class/hwmon/hwmon0/temp1_input", "48000")
    put("class/hwmon/hwmon1/name", "ina219")
    put("class/hwmon/hwmon1/power1_input", "3250000")  # uW
    put("class/hwmon/hwmon1/curr1_input", "650")  # mA
    put("class/hwmon/hwmon1/in1_input", "5000")  # mV
    put("class/hwmon/hwmon2/name", "ina226")  # no power file: volts x amps
    put("class/hwmon/hwmon2/curr1_input", "-250")
    put("class/hwmon/hwmon2/in1_input", "12000")
    put("class/power_supply/AC/type", "Mains")
    put("class/power_supply/AC/online", "1")
    put("class/power_supply/BAT0/type", "Battery")
    put("class/power_supply/BAT0/current_now", "-500000")  # uA, negative on discharge here
    put("class/power_supply/BAT0/voltage_now", "3800000")  # uV
    return root


@pytest.fixture
def agent(local_client):
    return local_client


def test_sensors_found_and_sampled(agent, tmp_path):
    root = fake_sysfs(tmp_path / "sys")
    info, _ = agent.request("sensors", root=str(root))
    assert [(s["id"], s["name"]) for s in info["sensors"]] == [
        ("hwmon:hwmon1", "ina219"), ("hwmon:hwmon2", "ina226"),
        ("power_supply:BAT0", "Battery")]
    start, _ = agent.request("sample_power", action="start", sensor="BAT0", interval_ms=10,
                             root=str(root))
    assert start["sensor"]["id"] == "power_supply:BAT0" and start["interval_ns"] == 10_000_000
    time.sleep(0.15)
    new = root / "class/power_supply/BAT0/voltage_now.new"
    new.write_text("4000000\n")
    os.replace(new, root / "class/power_supply/BAT0/voltage_now")  # sysfs reads are atomic
    time.sleep(0.15)
    with pytest.raises(AgentError, match="already running"):
        agent.request("sample_power", action="start", root=str(root))
    hdr, body = agent.request("sample_power", action="stop")
    rows = np.frombuffer(body, [("t", "<i8"), ("w", "<f8"), ("v", "<f8"), ("a", "<f8")])
    assert hdr["rows"] == len(rows) and 12 <= len(rows) <= 32 and hdr["errors"] == 0
    assert set(rows["a"]) == {0.5}  # |current_now|
    assert rows["w"][0] == pytest.approx(1.9) and rows["w"][-1] == pytest.approx(2.0)
    assert set(np.round(rows["w"], 9)) == {1.9, 2.0}
    steps = np.diff(rows["t"])
    assert (steps > 0).all() and 8e6 < np.median(steps) < 12e6
    with pytest.raises(AgentError, match="not running"):
        agent.request("sample_power", action="stop")


def test_hwmon_watts_and_volts_times_amps(agent, tmp_path):
    root = fake_sysfs(tmp_path / "sys")
    for sensor, watts in (("ina219", 3.25), ("hwmon2", 3.0)):
        agent.request("sample_power", action="start", sensor=sensor, interval_ms=20,
                      root=str(root))
        time.sleep(0.1)
        hdr, body = agent.request("sample_power", action="stop")
        w = np.frombuffer(body, "<f8").reshape(-1, 4)[:, 1]
        assert hdr["rows"] >= 3 and set(w) == {watts}


def test_sensor_errors_name_what_there_is(agent, tmp_path):
    root = fake_sysfs(tmp_path / "sys")
    with pytest.raises(AgentError, match=r"no sensor 'ina3221'; the device has: hwmon:hwmon1 "
                                         r"\(ina219\), hwmon:hwmon2 \(ina226\), "
                                         r"power_supply:BAT0 \(Battery\)"):
        agent.request("sample_power", action="start", sensor="ina3221", root=str(root))
    with pytest.raises(AgentError, match="no power sensor on this device"):
        agent.request("sample_power", action="start", root=str(tmp_path / "empty"))
    with pytest.raises(AgentError, match="needs action 'start' or 'stop'"):
        agent.request("sample_power", action="pause")


def test_root_from_the_environment(tmp_path):
    root = fake_sysfs(tmp_path / "sys")
    link = LocalLink(env={"EDGEPERF_SYSFS_ROOT": str(root)})
    client = AgentClient(link)
    try:
        client.hello()
        info, _ = client.request("sensors")
        assert info["root"] == str(root) and len(info["sensors"]) == 3
    finally:
        client.bye()
        link.close()


def test_meter_maps_device_samples_to_the_host_clock(agent, tmp_path):
    root = fake_sysfs(tmp_path / "sys")
    m = open_meter(f"sysfs:ina219?root={root}&interval_ms=10")
    assert isinstance(m, SysfsMeter)
    with pytest.raises(MeterError, match="works only inside a run"):
        m.start("x")
    cs = ClockSync(agent)
    before = cs.sync()
    state = {}
    m.bind_agent(agent, lambda: ClockMap(before, state.get("after")))
    h0 = host_ns()
    m.start("s")
    time.sleep(0.2)
    m.stop()
    h1 = host_ns()
    state["after"] = cs.sync()
    tr = m.trace()
    assert len(tr) >= 5 and set(tr.watts) == {3.25} and set(tr.volts) == {5.0}
    # device stamps mapped to the host clock fall inside the host's bracket of the sampling
    assert h0 - tr.timing_uncertainty_ns <= tr.t_ns[0] and tr.t_ns[-1] <= h1 + \
        tr.timing_uncertainty_ns
    assert tr.timing_uncertainty_ns < 1_000_000
    assert "ina219" in m.describe()
