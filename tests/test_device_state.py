"""The device's state: cool-down gate, throttling verdict, governor control, install advice.

The rules are checked here on telemetry records; tests/test_ssh.py runs them end to end.
"""

from __future__ import annotations

from edgeperf.boards.profile import BoardProfile
from edgeperf.links.ssh.deploy import install_advice
from edgeperf.run.client import AgentDied
from edgeperf.run.device_state import (
    GovernorControl,
    cool_down,
    hottest_c,
    throttling,
    warnings_for,
)


class FakeClient:
    """Answers telemetry with the temperatures given, one per call."""

    def __init__(self, temps):
        self.temps = list(temps)
        self.calls = 0
        self.requests = []
        self.fail = False

    def telemetry(self):
        t = self.temps[min(self.calls, len(self.temps) - 1)]
        self.calls += 1
        return {"thermal": [] if t is None else [{"zone": "z0", "type": "cpu", "temp_c": t},
                                                 {"zone": "z1", "type": "bogus",
                                                  "temp_c": -273.0}]}

    def request(self, op, **fields):
        self.requests.append((op, fields))
        if self.fail:
            raise AgentDied("governor: ssh pi: the SSH connection dropped", "Died", op)
        if fields.get("action") == "restore":
            return {"restored": {"0": "ondemand"}, "failed": {}}, b""
        return {"governors": {"0": "performance" if fields.get("action") == "set"
                              else "ondemand"}}, b""


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def board(**kw):
    return BoardProfile(name="b", link_type="ssh", host="h", **kw)


def test_cool_down_waits_until_cool():
    client, clock, events = FakeClient([70.0, 65.0, 59.9]), Clock(), []
    rec = cool_down(client, board(cool_down_below_c=60.0, cool_down_max_wait_s=30), lambda e, d:
                    events.append(d), sleep=clock.sleep, clock=clock, poll_s=2.0)
    assert rec == {"threshold_c": 60.0, "max_wait_s": 30, "start_c": 70.0, "waited_s": 4.0,
                   "end_c": 59.9, "reached": True, "polls": 3}
    assert [e["temp_c"] for e in events] == [70.0, 65.0, 59.9] and events[-1]["done"]
    assert warnings_for({"cool_down": rec}) == []


def test_cool_down_is_bounded_and_warns():
    client, clock = FakeClient([80.0]), Clock()
    rec = cool_down(client, board(cool_down_below_c=50.0, cool_down_max_wait_s=5),
                    lambda e, d: None, sleep=clock.sleep, clock=clock, poll_s=2.0)
    assert (rec["waited_s"], rec["reached"], rec["end_c"], rec["polls"]) == (5.0, False, 80.0, 4)
    assert warnings_for({"cool_down": rec}) == [
        "edgeperf: the device did not cool below 50 C within 5 s (it was at 80.0 C); the run "
        "started warm"]


def test_cool_down_without_sensor_or_threshold():
    assert cool_down(FakeClient([70.0]), board(), lambda e, d: None) is None
    rec = cool_down(FakeClient([None]), board(cool_down_below_c=50.0), lambda e, d: None)
    assert rec["skipped"] == "the device reports no temperature" and rec["waited_s"] == 0.0
    assert warnings_for({"cool_down": rec}) == [
        "edgeperf: cool-down gate skipped: the device reports no temperature"]
    assert hottest_c({"thermal": [{"temp_c": 999.0}, {"temp_c": 41.5}]}) == 41.5


def test_governor_control_restores_once_and_survives_a_dead_link():
    client = FakeClient([40.0])
    g = GovernorControl(client, board(governor="performance"))
    rec = g.apply()
    assert rec == {"requested": "performance", "before": {"0": "ondemand"},
                   "during": {"0": "performance"}}
    g.restore()
    g.restore()
    assert [f.get("action") for _, f in client.requests] == ["get", "set", "restore"]
    assert rec["restored"] == {"0": "ondemand"}
    client2 = FakeClient([40.0])
    g2 = GovernorControl(client2, board(governor="performance"))
    g2.apply()
    client2.fail = True
    g2.restore()  # never raises
    assert g2.record["restored"] is None
    assert "the agent restores the governors itself" in g2.record["restore_note"]
    assert GovernorControl(client, board()).apply() is None


def _cpu(n, cur, mx, gov="performance", limit=None):
    return {"cpu": n, "cur_khz": cur, "max_khz": mx, "min_khz": 600000,
            "limit_khz": limit or mx, "governor": gov}


def _snap(cpus=(), thr=None, limited=()):
    return {"thermal": [], "cpus": list(cpus), "throttling": thr,
            "cpus_freq_limited": list(limited)}


def test_throttling_verdicts():
    ok = _snap([_cpu(0, 1800, 1800), _cpu(1, 1800, 1800)])
    assert throttling({"before": ok, "before_run": ok, "after_run": ok, "after": ok}, None) == {
        "throttled": False, "throttled_reasons": [], "throttling_observable": True}
    # vcgencmd says so now, in two snapshots: one reason
    now = _snap(thr={"raw": "0x50005", "now": ["under-voltage", "throttled"],
                     "since_boot": ["under-voltage", "throttled"]})
    v = throttling({"before": _snap(thr={"now": [], "since_boot": []}), "before_run": now,
                    "after_run": now, "after": now}, None)
    assert v["throttled_reasons"] == ["vcgencmd get_throttled: under-voltage (before run)",
                                      "vcgencmd get_throttled: throttled (before run)"]
    # a sticky flag already set before the run is not this run's doing
    old = _snap(thr={"now": [], "since_boot": ["throttled"]})
    assert not throttling({"before": old, "after": old}, None)["throttled"]
    # a thermal cap on the frequency limit that appeared during the run
    capped = _snap([_cpu(0, 1200, 1800, gov="schedutil", limit=1200)], limited=[0])
    v = throttling({"before": _snap([_cpu(0, 1800, 1800)]), "after_run": capped}, [0])
    assert v["throttled_reasons"] == [
        "frequency limit below maximum on cpu 0 after the run (not before)"]
    # performance governor, every run CPU below max right after the run
    slow = _snap([_cpu(0, 1500, 1800), _cpu(1, 1800, 1800)])
    assert throttling({"after_run": slow}, [0])["throttled_reasons"] == [
        "under the performance governor every CPU of the run was below its maximum frequency "
        "after it (cpu0 1500/1800 kHz)"]
    assert not throttling({"after_run": slow}, [0, 1])["throttled"]  # cpu1 ran at max
    ondemand = _snap([_cpu(0, 600, 1800, gov="ondemand")])
    assert not throttling({"after_run": ondemand}, [0])["throttled"]  # idle-low is normal
    nothing = throttling({"before": _snap(), "after": _snap()}, None)
    assert nothing == {"throttled": False, "throttled_reasons": [],
                       "throttling_observable": False}
    assert warnings_for({"throttled": True, "throttled_reasons": ["x", "y"]}) == [
        "edgeperf: the device throttled during the run: x; y"]


CHECK = {"python": "3.11.2", "machine": "aarch64", "system": "Linux", "numpy": None,
         "runtimes": {"ai_edge_litert": None, "tflite_runtime": None}, "runtime_errors": {},
         "os_release": {"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
         "board_model": "Raspberry Pi 4 Model B Rev 1.4", "termux": False,
         "externally_managed": False, "in_venv": False}


def test_install_advice():
    assert install_advice(dict(CHECK, numpy="1.26.4", runtimes={"tflite_runtime": "2.14.0"}),
                          "python3", True) == []
    assert install_advice(dict(CHECK, numpy="1.26.4"), "python3", False) == []
    pi = install_advice(CHECK, "python3", True)
    assert pi == ["numpy and a TFLite runtime missing (python3 3.11.2 on Debian GNU/Linux 12 "
                  "(bookworm), aarch64); install on the device: python3 -m pip install "
                  "tflite-runtime 'numpy<2'"]
    managed = install_advice(dict(CHECK, externally_managed=True), "python3", False)[0]
    assert managed.startswith("numpy missing (") and "python3 -m pip install tflite-runtime " \
        "'numpy<2' (the OS manages this Python, so use a venv: python3 -m venv " \
        "~/edgeperf-venv && ~/edgeperf-venv/bin/python -m pip install tflite-runtime " \
        "'numpy<2', then set link.python = \"~/edgeperf-venv/bin/python\"" in managed
    generic = dict(CHECK, board_model=None, machine="x86_64")
    assert install_advice(generic, "/opt/py", True)[0].endswith(
        "install on the device: /opt/py -m pip install numpy ai-edge-litert")
    numpy2 = dict(generic, numpy="2.1.0", runtime_errors={
        "tflite_runtime": "ImportError: numpy.core.multiarray failed to import"})
    assert install_advice(numpy2, "python3", True)[0].endswith("python3 -m pip install "
                                                               "'numpy<2'")
    termux = dict(generic, termux=True, os_release={}, system="Linux")
    advice = install_advice(termux, "python", True)[0]
    assert "install on the device: pkg install python-numpy; then python -m pip install " \
           "tflite-runtime (Google publishes no Android wheels" in advice
