"""The PTDaemon client against the emulated PTDaemon on loopback."""

from __future__ import annotations

import socket
import time

import pytest

from edgeperf.power.clock import host_ns
from edgeperf.power.drivers.ptd import PtdError, PtdMeter
from edgeperf.power.energy import integrate
from edgeperf.power.meter import MeterError, open_meter
from edgeperf.testing.emulators.load_profile import WindowProfile
from edgeperf.testing.emulators.ptd import PtdEmulator


def _talk(port: int, lines: list[str]) -> list[str]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf, out = b"", []
    for line in lines:
        s.sendall(line.encode() + b"\r\n")
        while b"\r\n" not in buf:
            buf += s.recv(4096)
        reply, _, buf = buf.partition(b"\r\n")
        out.append(reply.decode())
    s.close()
    return out


def test_emulator_speaks_ptdaemon_replies():
    with PtdEmulator(5.0) as emu:
        got = _talk(emu.port, ["Hello", "RR", "SR,V,Auto", "SR,A,2.5", "RR", "SR,A,-1",
                               "Go,1000,0,m1", "Go,1000,0,m2", "Stop", "Stop", "Bogus"])
    assert got == ["Hello, PTDaemon here!", "Ranges,1,-1.0,1,-1.0", "Range V changed",
                   "Range A changed", "Ranges,0,2.500000,1,-1.0",
                   "Error: invalid range '-1' for A",
                   "Starting untimed measurement, maximum 500000 samples at 1000ms with 0 "
                   "rampup samples",
                   "Error: measurement already running", "Stopping untimed measurement",
                   "Error: no measurement to stop", "Unknown command"]


def test_meter_reads_samples_and_fixes_ranges_from_ranging():
    with PtdEmulator(23.0, volts=230.0, pf=0.5) as emu:
        m = open_meter(f"{emu.url}?interval_ms=20&poll_s=0.05")
        assert isinstance(m, PtdMeter) and m.needs_ranging
        assert m.identity.startswith("EdgeperfEmulatedWT310,")
        m.configure_phase("ranging")
        m.start("r1")
        time.sleep(0.3)
        m.stop()
        tr = m.trace()
        ms = emu.state.measurement
        assert len(tr) == (ms.stop_ns - ms.t0_ns) // ms.interval_ns >= 12  # every period
        assert tr.interval_ns == 20_000_000
        assert set(tr.watts) == {23.0} and set(tr.volts) == {230.0} and set(tr.pf) == {0.5}
        assert tr.amps[0] == pytest.approx(0.2, abs=1e-6)
        # samples are 20 ms apart on the host clock, read back from their ms timestamps
        assert set((tr.t_ns[1:] - tr.t_ns[:-1]).tolist()) <= {19_000_000, 20_000_000,
                                                                21_000_000}
        m.configure_phase("testing", tr)
        assert m.ranges_set["ranging"] == {"volts": "Auto", "amps": "Auto"}
        assert m.ranges_set["testing"] == {"volts": "230", "amps": "0.22"}  # 1.1 x max amps
        assert emu.state.volts_range == "230" and emu.state.amps_range == "0.22"
        cmds = [c for c, _ in m.client.log]
        assert cmds[:3] == ["Hello", "Identify", "RR"] and "Go,20,0,r1" in cmds
        m.close()
        assert emu.state.volts_range == "Auto"  # ranges put back as they were found


def test_energy_of_a_profile_within_the_edge_bound():
    prof = WindowProfile(2.0, 5.0)
    with PtdEmulator(prof) as emu:
        m = PtdMeter(emu.host, emu.port, interval_ms=20, poll_s=0)  # read after Stop
        m.start("e")
        time.sleep(0.1)
        t0 = host_ns()
        time.sleep(0.6)
        t1 = host_ns()
        prof.set_window(t0, t1)
        time.sleep(0.06)
        m.stop()
        e = integrate(m.trace(), t0, t1)
        m.close()
    truth = prof.energy_j(t0, t1)
    # each edge period is mixed idle/busy: at most 3 W x 20 ms / 4 off per edge (+ ms stamps)
    assert abs(e.energy_j - truth) <= 2 * 3 * 0.020 / 4 + 2 * 3 * 0.001
    assert e.covered and not e.problems


def test_daemon_error_reply_is_reported_with_its_message():
    with PtdEmulator(5.0, errors={"Go": "Error: Analyzer not responding (USB)"}) as emu:
        m = PtdMeter(emu.host, emu.port)
        with pytest.raises(PtdError) as exc:
            m.start("x")
        m.close()
    assert str(exc.value) == (f"PTDaemon at 127.0.0.1:{emu.port} answered 'Error: Analyzer "
                              "not responding (USB)' to 'Go,1000,0,x'")


def test_not_ptdaemon_and_nothing_listening():
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()
    with pytest.raises(MeterError, match=r"cannot connect .* is PTDaemon running with -p"):
        PtdMeter("127.0.0.1", port)
    with PtdEmulator(5.0, errors={"Hello": "Welcome to something else"}) as emu:
        with pytest.raises(PtdError, match="is not PTDaemon: it answered 'Welcome to"):
            PtdMeter(emu.host, emu.port)


def test_disconnect_mid_measurement_keeps_samples_read_so_far():
    with PtdEmulator(4.0, drop_after_s=0.6) as emu:
        m = PtdMeter(emu.host, emu.port, interval_ms=20, poll_s=0.1)
        m.start("d")
        time.sleep(1.0)
        with pytest.raises(MeterError, match="failed during the measurement.*closed the "
                                             "connection"):
            m.stop()
        tr = m.trace()
        m.close()
        ms, dropped = emu.state.measurement, emu.state.dropped_ns
    # what was read before the drop, and nothing after it (the drop comes at 0.6 s or, on a
    # loaded machine, later: the bound is the periods complete when it came)
    assert dropped is not None
    assert len(tr) >= 1 and len(tr) <= (dropped - ms.t0_ns) // ms.interval_ns
    assert set(tr.watts) == {4.0}


def test_samples_from_ptdaemons_log_file_as_power_dev_reads_them(tmp_path):
    """?logfile=: the lines of PTDaemon's -l log carrying this measurement's Mark, from where
    the log stood at Go (earlier lines, of this mark or another, are not this run's); RL is
    never sent."""
    log = tmp_path / "ptd.log"
    old = "Time,12-23-2020 10:21:51.496,Watts,9.0,Volts,230.0,Amps,0.04,PF,1.0,Mark,"
    log.write_text(old + "other\n" + old + "L\n")
    with PtdEmulator(6.0, logfile=log) as emu:
        m = open_meter(f"{emu.url}?interval_ms=20&poll_s=0.05&logfile={log}")
        assert m.logfile == str(log)
        m.start("L")
        time.sleep(0.4)
        m.stop()
        tr = m.trace()
        ms = emu.state.measurement
        cmds = [c for c, _ in m.client.log]
        m.close()
    assert "RL" not in cmds
    assert len(tr) == (ms.stop_ns - ms.t0_ns) // ms.interval_ns == ms.logged >= 15
    assert set(tr.watts) == {6.0} and set(tr.volts) == {230.0}
    assert set((tr.t_ns[1:] - tr.t_ns[:-1]).tolist()) <= {19_000_000, 20_000_000, 21_000_000}
    lines = log.read_text().splitlines()
    assert len(lines) == 2 + len(tr) and all(x.endswith(",Mark,L") for x in lines[2:])


def test_with_a_log_file_a_dropped_connection_loses_no_sample(tmp_path):
    log = tmp_path / "ptd.log"
    with PtdEmulator(4.0, drop_after_s=0.3, logfile=log) as emu:
        m = PtdMeter(emu.host, emu.port, interval_ms=20, poll_s=0.1, logfile=str(log))
        m.start("d")
        time.sleep(0.8)
        with pytest.raises(MeterError, match="PTDaemon at .*: the daemon closed the "
                                             "connection"):
            m.stop()
        t_stop = host_ns()
        tr = m.trace()
        m.close()
        ms = emu.state.measurement
    # every period up to the stop attempt, past the drop at 0.3 s (RL would keep <= 0.3 s)
    assert len(tr) >= (t_stop - ms.t0_ns) // ms.interval_ns - 2 >= 30
    assert set(tr.watts) == {4.0}
