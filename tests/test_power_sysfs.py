"""The device's own sensors: the agent's sensors/sample_power operations on a fake sysfs tree,
which the agent is given the way a device is configured ($EDGEPERF_SYSFS_ROOT in its
environment), never by the host."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from edgeperf.links.local import LocalLink
from edgeperf.power.clock import host_ns
from edgeperf.power.clocksync import ClockMap, ClockSync
from edgeperf.power.drivers.sysfs import SysfsMeter
from edgeperf.power.meter import MeterError, open_meter
from edgeperf.run.client import AgentClient, AgentError


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


def local_agent(root: Path):
    """The local board's agent reading ``root`` as its sysfs tree, said hello to."""
    link = LocalLink(env={"EDGEPERF_SYSFS_ROOT": str(root)})
    client = AgentClient(link)
    client.hello()
    return link, client


@pytest.fixture
def root(tmp_path) -> Path:
    return fake_sysfs(tmp_path / "sys")


@pytest.fixture
def agent(root):
    link, client = local_agent(root)
    yield client
    client.bye()
    link.close()


ROW_DTYPE = [("t", "<i8"), ("w", "<f8"), ("v", "<f8"), ("a", "<f8")]
TIMER_SLACK_NS = 50_000  # rounding of the sampler's wait; its timed wait never ends early


def check_sampling(t: np.ndarray, interval_ns: int, h0: int, h1: int) -> None:
    """What the sampler (device_agent/power.py) promises, whatever the machine's load, for
    rows taken between h0 (before 'start' was sent) and h1 (after 'stop' replied), both read
    on the clock the rows are stamped with:

    * a read when started and one more when stopped: at least 2 rows, all in [h0, h1], each
      stamped later than the one before (reads are sequential, stamped mid-read);
    * a fixed-rate schedule that skips, never bursts, when it falls behind: the loop's k-th
      read starts no earlier than the thread's start + k * interval (its deadline grows by at
      least one interval a read), so every row but the stop read has t[k] >= h0 + k *
      interval, and rows <= 2 + (h1 - h0) / interval.

    How many reads a busy machine fits in is not promised (a late thread skips ticks), so no
    lower bound beyond 2 and no typical spacing is asserted."""
    n = len(t)
    assert n >= 2
    assert h0 <= t[0] and t[-1] <= h1
    assert (np.diff(t) > 0).all()
    k = np.arange(n - 1)
    early = t[:-1] < h0 + k * interval_ns - TIMER_SLACK_NS
    assert not early.any(), f"reads {np.flatnonzero(early)} came ahead of the schedule"
    assert n <= 2 + (h1 - h0 + TIMER_SLACK_NS) // interval_ns


def start_sampler(agent, **kw) -> tuple[dict, int]:
    """Start the device's sampler; returns its reply and the host time before the request.
    The local agent stamps with perf_counter_ns, the clock this process reads too."""
    h0 = time.perf_counter_ns()
    reply, _ = agent.request("sample_power", action="start", **kw)
    assert h0 <= reply["monotonic_ns"] <= time.perf_counter_ns()  # one clock for both
    return reply, h0


def stop_sampler(agent) -> tuple[dict, np.ndarray, int]:
    hdr, body = agent.request("sample_power", action="stop")
    h1 = time.perf_counter_ns()
    rows = np.frombuffer(body, ROW_DTYPE)
    assert hdr["rows"] == len(rows) == hdr["taken"] and hdr["dropped"] == 0
    assert hdr["errors"] == 0
    return hdr, rows, h1


def test_sensors_found_and_sampled(agent, root):
    info, _ = agent.request("sensors")
    assert info["root"] == str(root)
    assert [(s["id"], s["name"]) for s in info["sensors"]] == [
        ("hwmon:hwmon1", "ina219"), ("hwmon:hwmon2", "ina226"),
        ("power_supply:BAT0", "Battery")]
    start, h0 = start_sampler(agent, sensor="BAT0", interval_ms=10)
    assert start["sensor"]["id"] == "power_supply:BAT0" and start["interval_ns"] == 10_000_000
    time.sleep(0.15)
    new = root / "class/power_supply/BAT0/voltage_now.new"
    new.write_text("4000000\n")
    c0 = time.perf_counter_ns()
    os.replace(new, root / "class/power_supply/BAT0/voltage_now")  # sysfs reads are atomic
    c1 = time.perf_counter_ns()
    time.sleep(0.15)
    with pytest.raises(AgentError, match="already running"):
        agent.request("sample_power", action="start")
    hdr, rows, h1 = stop_sampler(agent)
    check_sampling(rows["t"], 10_000_000, h0, h1)
    assert set(rows["a"]) == {0.5}  # |current_now|
    w = np.round(rows["w"], 9)
    # each read sees the file as it was then: 1.9 W until the change, 2.0 W after it, and
    # the read at stop (after the change) 2.0 W
    assert set(w) <= {1.9, 2.0} and (np.diff(w) >= 0).all() and w[-1] == 2.0
    assert (w[:-1][rows["t"][1:] < c0] == 1.9).all()  # read ended before the next began
    assert (w[1:][rows["t"][:-1] > c1] == 2.0).all()  # read began after the last ended
    with pytest.raises(AgentError, match="not running"):
        agent.request("sample_power", action="stop")


def test_hwmon_watts_and_volts_times_amps(agent):
    for sensor, watts in (("ina219", 3.25), ("hwmon2", 3.0)):
        _, h0 = start_sampler(agent, sensor=sensor, interval_ms=20)
        time.sleep(0.1)
        _, rows, h1 = stop_sampler(agent)
        check_sampling(rows["t"], 20_000_000, h0, h1)
        assert set(rows["w"]) == {watts}


def test_sensor_errors_name_what_there_is(agent, tmp_path):
    with pytest.raises(AgentError, match=r"no sensor 'ina3221'; the device has: hwmon:hwmon1 "
                                         r"\(ina219\), hwmon:hwmon2 \(ina226\), "
                                         r"power_supply:BAT0 \(Battery\)"):
        agent.request("sample_power", action="start", sensor="ina3221")
    with pytest.raises(AgentError, match="needs action 'start' or 'stop'"):
        agent.request("sample_power", action="pause")
    link, bare = local_agent(tmp_path / "empty")
    try:
        with pytest.raises(AgentError, match="no power sensor on this device"):
            bare.request("sample_power", action="start")
    finally:
        bare.bye()
        link.close()


def test_the_sysfs_root_is_device_configuration_never_the_hosts(agent, root, tmp_path):
    """The tree the agent reads is the device's: a request naming one is refused (a host
    could otherwise point the agent at any directory), and so is a meter URL with root=."""
    other = fake_sysfs(tmp_path / "other")
    for op, fields in (("sensors", {}), ("sample_power", {"action": "start"})):
        with pytest.raises(AgentError) as ei:
            agent.request(op, root=str(other), **fields)
        assert str(ei.value) == (
            f"{op} refuses a sysfs root from the host: the sysfs root is device "
            "configuration, set as EDGEPERF_SYSFS_ROOT in the agent's environment on the "
            "device (default /sys); drop root from the request (meter URL sysfs, without "
            "?root=)")
    info, _ = agent.request("sensors")  # the device's own tree, as configured
    assert info["root"] == str(root) and len(info["sensors"]) == 3
    with pytest.raises(MeterError, match=r"meter sysfs:ina219\?root=/x: the sysfs root is "
                                         r"device configuration, not a meter option: set "
                                         r"EDGEPERF_SYSFS_ROOT in the agent's environment"):
        open_meter("sysfs:ina219?root=/x")


def test_meter_maps_device_samples_to_the_host_clock(agent):
    m = open_meter("sysfs:ina219?interval_ms=10")
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
    assert set(tr.watts) == {3.25} and set(tr.volts) == {5.0}
    # the bound is ClockMap's between the two syncs: never wider than the wider of theirs
    # (how wide they are depends on the round trips a busy machine gives, so no fixed figure)
    unc = tr.timing_uncertainty_ns
    assert 0 < unc <= max(before.uncertainty_ns, state["after"].uncertainty_ns)
    # device stamps mapped to the host clock fall inside the host's bracket of the sampling,
    # and there are as many as the sampler's schedule allows in it (see check_sampling)
    assert h0 - unc <= tr.t_ns[0] and tr.t_ns[-1] <= h1 + unc
    assert 2 <= len(tr) <= 2 + (h1 - h0 + 2 * unc + TIMER_SLACK_NS) // 10_000_000
    assert (np.diff(tr.t_ns) > 0).all()
    assert "ina219" in m.describe()
