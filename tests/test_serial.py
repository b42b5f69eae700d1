"""The serial link end to end: real pseudo-terminals through the line simulator (host/line_sim),
pyserial on the host side (host/serial_link.SerialLink), the agent zipapp serving the device
side (``serve --serial``), each scenario, and the faults a real line has."""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from runs import small as _small
from serial_agent import Agent

from edgeperf.boards.profile import BoardError, BoardProfile, SerialParams, load_board, parse_board
from edgeperf.cli.progress import ProgressPrinter
from edgeperf.links.base import LinkError
from edgeperf.links.bundle import local_agent_path
from edgeperf.links.serial import SerialLink
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.client import AgentClient, AgentDied
from edgeperf.run.execute import EXIT_ERROR, EXIT_VALID, RunSpec, execute, score_input
from edgeperf.scoring.loadgen import score
from edgeperf.testing.line_sim import Faults, LineSim
from edgeperf_agent import wire

FAST = 921600
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def line(request, tmp_path):
    """(sim, agent, board) at the baud and faults the test asks for (indirect param)."""
    baud, faults = getattr(request, "param", (FAST, Faults()))
    sim = LineSim(baud, faults, seed=1).start()
    agent = Agent(sim, tmp_path / "agent-cache")
    board = BoardProfile(name="sim", link_type="serial",
                         serial=SerialParams(sim.host_path, baud))
    yield sim, agent, board
    agent.stop()
    sim.close()


def small(scenario: str, **kw):
    if scenario == "Server":
        # modest, with a loose bound: the simulator, the agent and the host share a loaded
        # 2-core CI box, and any stall of the agent counts in a Server latency
        kw = dict(dict(target_qps=500.0, target_latency_ns=250_000_000), **kw)
    return _small(scenario, **kw)


def querylog(out: Path) -> dict[str, np.ndarray]:
    with read_querylog(out / "querylog.npz") as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------- scenarios end to end


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_each_scenario_over_the_line(line, tmp_path, scenario):
    sim, agent, board = line
    out = tmp_path / scenario
    o = execute(RunSpec(model="synthetic:busy:20", settings=small(scenario), board=board,
                        out_dir=out))
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((out / "result.json").read_text())
    assert res["run"]["checksum_ok"] is True  # every timestamp arrived intact
    q = querylog(out)
    rows = len(q["done_ns"])
    assert rows == res["run"]["rows"] >= 80
    assert ((q["done_ns"] - q["issue_ns"]) >= 20_000).all()
    line_stats = res["transfers"]["line"]
    assert line_stats["sessions"] == 1 and line_stats["resets"] == 0
    assert res["board"]["serial"]["baud"] == FAST
    assert 0 < line_stats["line_bytes_in"] <= sim.to_host.stats.bytes_in  # all via the line


@pytest.mark.parametrize("line", [(115200, Faults())], indirect=True)
def test_tflite_model_at_115200_with_transfer_progress(line, tmp_path):
    """The one run at a real UART's speed: a model and a 64 KiB sample set take seconds,
    so the pushes show progress lines (bytes, rate, time left)."""
    sim, agent, board = line
    err = io.StringIO()
    printer = ProgressPrinter(0, 80, stream=err)
    t0 = time.monotonic()
    o = execute(RunSpec(model="builtin:mlp", settings=small("SingleStream", max_query_count=80),
                        board=board, out_dir=tmp_path), printer)
    took = time.monotonic() - t0
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    sent = res["transfers"]["samples_bytes_sent"] + res["transfers"]["model_bytes_sent"]
    assert sent > 64 * 1024
    assert took >= sent / (115200 / 10)  # the simulator keeps the line's real pace
    lines = [x for x in err.getvalue().splitlines() if "push samples" in x]
    assert lines and lines[-1].startswith("  push samples: 64.1 KiB/64.1 KiB [####")
    assert "KiB/s, 0 s left" in lines[-1]
    rate = float(lines[-1].split("] ")[1].split(" KiB/s")[0]) * 1024
    # never faster than the line (how close to it a loaded machine gets is not a promise a
    # test can hold: the efficiency is measured by benchmarks/bench_serial)
    assert 0 < rate <= 11520


@pytest.mark.parametrize("line", [(115200, Faults())], indirect=True)
def test_clocksync_over_a_115200_baud_line_states_a_bound_that_holds(line):
    """ClockSync over the real serial link at 115200 baud: the stated bound holds (agent and
    host share this machine's CLOCK_MONOTONIC, so the true offset is 0), and it is narrower
    than half the shortest round trip because the frames' wire time, the reliable layer's
    bytes included, is subtracted. (Issue 6's 2 ms goal is a speed figure, measured by
    benchmarks/bench_serial.py: 1.1-1.2 ms; see docs/PERFORMANCE.md.)"""
    from edgeperf.links import open_link
    from edgeperf.power.clocksync import ClockSync
    from edgeperf.run.client import AgentClient

    sim, agent, board = line
    link = open_link(board)
    try:
        assert link.bytes_per_s == 11520.0  # 8N1: ten bits a byte
        # the DATA frame's fixed 24 bytes and {"c":N} with this session's connection id
        conn = link.ep.sid ^ link.ep.peer
        assert link.frame_overhead_bytes == 24 + len('{"c":%d}' % conn)
        client = AgentClient(link)
        client.hello()
        points = [ClockSync(client, link_bytes_per_s=link.bytes_per_s).sync() for _ in range(2)]
        client.bye()
    finally:
        link.close()
    print("ClockSync at 115200 baud: bound/offset/min RTT/wire (ns):",
          [(p.uncertainty_ns, p.offset_ns, p.rtt_min_ns, p.wire_ns) for p in points])
    for p in points:
        assert abs(p.offset_ns) <= p.uncertainty_ns, p
        assert p.method == "intersection" and p.uncertainty_ns < p.rtt_min_ns // 2, p
        # request + reply with 31 bytes of framing each cannot cross 115200 baud faster
        assert p.wire_ns >= (2 * 31 + 100) * 1e9 / 11520, p


@pytest.mark.parametrize("line", [(115200, Faults())], indirect=True)
def test_power_run_over_a_115200_baud_line(line, tmp_path):
    """A PTDaemon-measured run of a board on a 115200-baud line: ClockSync over the line maps
    the device's window onto the host clock within its stated bound (both ends read this
    machine's CLOCK_MONOTONIC, so the true mapping is the identity), and the energy over the
    window is within 1% of the emulated analyser's truth."""
    from edgeperf.testing.emulators.load_profile import WindowProfile
    from edgeperf.testing.emulators.ptd import PtdEmulator

    sim, agent, board = line
    prof = WindowProfile(2.0, 5.0)

    def report(event, data):
        if event == "power_window":
            prof.set_window(data["start_ns"], data["end_ns"])

    with PtdEmulator(prof) as emu:
        o = execute(RunSpec(model="synthetic:busy:1000",
                            settings=small("SingleStream", min_query_count=1500,
                                           max_query_count=1500),
                            board=board, out_dir=tmp_path,
                            # poll_s=0: samples are read after Stop, once the report has put
                            # the busy level on the run's window (the emulator computes a
                            # period's mean when it is read)
                            meter=f"{emu.url}?interval_ms=20&poll_s=0"),
                    report)
    assert o.exit_code == EXIT_VALID, (o.invalid_reasons, o.result.get("power"))
    p = o.result["power"]
    w = p["window"]
    assert p["valid"] and w["uncertainty_start_ns"] > 0
    # the goal a serial line is held to is 2 ms: a warning only above it
    goal_warned = any("over the 2 ms goal" in x for x in p["warnings"])
    assert goal_warned == (p["clock_uncertainty_us"] > 2000), p["warnings"]
    assert abs(w["host_start_ns"] - w["device_start_ns"]) <= w["uncertainty_start_ns"]
    assert abs(w["host_end_ns"] - w["device_end_ns"]) <= w["uncertainty_end_ns"]
    truth = prof.energy_j(w["device_start_ns"], w["device_end_ns"])
    assert abs(p["energy_j"] - truth) <= 0.01 * truth
    print("power run at 115200 baud: window bounds (ns)", w["uncertainty_start_ns"],
          w["uncertainty_end_ns"], "energy error", (p["energy_j"] - truth) / truth)


def test_agent_answers_a_quick_op_with_the_ack_aboard_and_acks_a_slow_op_first(tmp_path):
    """The agent on a bare pty, the host's reliable endpoint driven by hand: the reply to
    ``clock`` is the only frame the agent sends (it carries the ACK), while a slower
    operation (``governor``) is acknowledged by an ACK frame before the agent starts on it."""
    import tty

    from edgeperf_agent import reliable

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    env = dict(os.environ, EDGEPERF_AGENT_CACHE=str(tmp_path / "cache"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([sys.executable, str(local_agent_path()), "serve", "--serial",
                             os.ttyname(slave), "--baud", "115200"], env=env,
                            stderr=subprocess.DEVNULL)
    ep = reliable.Endpoint(initiator=True)
    dec = wire.FrameDecoder()

    def exchange(deadline: float, until) -> list[wire.Frame]:
        got: list[wire.Frame] = []
        while time.monotonic() < deadline and not until(got):
            out = ep.poll(time.monotonic())
            if out:
                os.write(master, out)
            if select.select([master], [], [], 0.02)[0]:
                data = os.read(master, 65536)
                ep.feed(data, time.monotonic())
                got += [f for f in dec.feed(data) if f.type != wire.SYN]
        return got

    try:
        exchange(time.monotonic() + 20, lambda got: ep.established)
        assert ep.established, "the agent did not answer on the pty"
        for op, want in (("clock", [wire.DATA]), ("governor", [wire.ACK, wire.DATA])):
            ep.send(wire.encode(wire.REQUEST, 7, {"op": op}))
            got = exchange(time.monotonic() + 10, lambda got: any(
                f.type == wire.DATA for f in got))
            assert [f.type for f in got] == want, (op, [f.kind for f in got])
            reply = wire.FrameDecoder().feed(got[-1].body)
            assert reply and reply[0].seq == 7  # the agent's answer (or its error) to us
            if op == "clock":  # the reply acknowledged the request
                assert "a" in got[0].header and ep.pending == 0
            ep.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)


# ---------------------------------------------------------------- faults


def test_corrupted_line_gives_the_clean_run_exactly(tmp_path):
    """0.1% of bytes corrupted each way: the same queries, sample order, model hash,
    outputs and QueryLog checksum as on a clean line with the same seed."""

    def outputs_of_queried(client, ctx):
        # after the timed run, same agent and model: the outputs of the first 64 queried
        # samples, fetched over the same (noisy) line
        idx = [int(i) for i in ctx["querylog"].sample_idx[:64]]
        _, outs = client.infer(ctx["samples_sha"], indices=idx)
        return {"outputs": [o.hex() for o in outs], "invalid_reasons": []}

    runs = {}
    for name, flip in (("clean", 0.0), ("noisy", 0.001)):
        with LineSim(FAST, Faults(flip_rate=flip), seed=3) as sim:
            agent = Agent(sim, tmp_path / f"cache-{name}")
            board = BoardProfile(name="sim", link_type="serial",
                                 serial=SerialParams(sim.host_path, FAST))
            try:
                o = execute(RunSpec(model="builtin:mlp", sample_count=64,
                                    settings=small("SingleStream", max_query_count=300,
                                                   min_query_count=300),
                                    board=board, out_dir=tmp_path / name,
                                    after_run=outputs_of_queried))
            finally:
                agent.stop()
            assert o.exit_code == EXIT_VALID, o.invalid_reasons
            runs[name] = (json.loads((tmp_path / name / "result.json").read_text()),
                          querylog(tmp_path / name), sim.to_device.stats, sim.to_host.stats,
                          tmp_path / f"cache-{name}")
    (clean, qc, *_), (noisy, qn, to_dev, to_host, cache) = runs["clean"], runs["noisy"]
    assert to_dev.flipped > 30 and to_host.flipped > 0  # the faults did happen
    line_stats = noisy["transfers"]["line"]
    assert line_stats["retransmits"] + line_stats["fast_retransmits"] > 0
    assert noisy["run"]["checksum_ok"] is True and clean["run"]["checksum_ok"] is True
    assert len(qn["done_ns"]) == len(qc["done_ns"]) == 300
    assert (qn["sample_idx"] == qc["sample_idx"]).all()
    assert noisy["model"]["sha256"] == clean["model"]["sha256"]
    assert noisy["samples"]["sha256"] == clean["samples"]["sha256"]
    outs = noisy["audit"]["outputs"]
    assert len(outs) == 64 and len(outs[0]) == 2 * 10 * 4  # float32[10] each, as hex
    assert outs == clean["audit"]["outputs"]  # byte for byte
    stored = (cache / "models" / f"{noisy['model']['sha256']}.tflite").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == noisy["model"]["sha256"]


def test_agent_restarted_mid_run(line, tmp_path):
    """The board resets mid-run: the host notices within seconds, keeps what arrived, marks
    the run INVALID with the reason; the next run works with no manual step."""
    sim, agent, board = line
    seen: list[int] = []
    killed: list[float] = []

    def report(event, data):
        if event == "progress":
            seen.append(data["queries"])
            if len(seen) == 2:
                agent.kill()
                killed.append(time.monotonic())
                agent.start()  # as systemd's Restart=always would

    s = small("SingleStream", min_duration_ms=60_000, max_duration_ms=0, min_query_count=100)
    o = execute(RunSpec(model="synthetic:busy:200", settings=s, board=board,
                        out_dir=tmp_path / "cut"), report)
    noticed = time.monotonic() - killed[0]
    assert noticed < 10.0
    assert o.exit_code == EXIT_ERROR
    assert "the agent restarted" in o.error
    res = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert res["result"] == "INVALID"
    assert any("restarted" in r for r in res["invalid_reasons"])
    assert len(querylog(tmp_path / "cut")["done_ns"]) >= seen[0] > 0
    again = execute(RunSpec(model="synthetic:null", settings=small("SingleStream"),
                            board=board, out_dir=tmp_path / "next"))
    assert again.exit_code == EXIT_VALID, again.invalid_reasons


def test_link_carries_on_in_the_new_session_after_a_restart(line):
    sim, agent, board = line
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=20)
        pid = c.hello()["pid"]
        assert c.compact_querylog  # a slow link: QueryLog stretches travel compressed
        agent.kill()
        agent.start()
        with pytest.raises(AgentDied, match="the agent restarted"):
            c.request("telemetry", timeout=20)
        assert c.hello()["pid"] == agent.proc.pid != pid
        assert link.stats.resets == 1 and link.stats.sessions == 2
    finally:
        link.close()


def test_line_disappears_mid_run(line, tmp_path):
    sim, agent, board = line
    seen: list[int] = []

    def report(event, data):
        if event == "progress":
            seen.append(data["queries"])
            if len(seen) == 2:
                sim.close()  # the pty is gone (a USB adapter pulled out)

    s = small("SingleStream", min_duration_ms=60_000, max_duration_ms=0, min_query_count=100)
    o = execute(RunSpec(model="synthetic:busy:200", settings=s, board=board,
                        out_dir=tmp_path), report)
    assert o.exit_code == EXIT_ERROR
    assert f"serial {sim.host_path}: the port went away" in o.error
    assert len(querylog(tmp_path)["done_ns"]) >= seen[0] > 0  # nothing measured lost
    assert agent.proc.wait(timeout=10) == 1
    assert "went away" in agent.stop()


def test_no_agent_is_a_clear_error(tmp_path):
    with LineSim(FAST) as sim:
        t0 = time.monotonic()
        with pytest.raises(LinkError, match="no edgeperf agent answered at 921600 baud"):
            SerialLink(sim.host_path, FAST, connect_timeout=1.0)
        assert time.monotonic() - t0 < 3.0
    with pytest.raises(LinkError, match="cannot open it"):
        SerialLink(str(tmp_path / "ttyNOPE"), FAST)


def test_boot_garbage_before_the_agent_starts(tmp_path):
    """Boot messages on the line before the agent runs, the host already knocking."""
    with LineSim(FAST, seed=2) as sim:
        banner = (b"[    0.000000] Booting Linux on physical CPU 0x0\r\n" * 40
                  + bytes(range(256)) * 8 + wire.MAGIC * 50)
        sim.inject("to_host", banner)
        got: dict = {}

        def connect():
            try:
                got["link"] = SerialLink(sim.host_path, FAST, connect_timeout=15)
            except LinkError as exc:
                got["error"] = exc

        t = threading.Thread(target=connect)
        t.start()
        time.sleep(1.0)  # the host sends SYNs into a device that is still booting
        sim.inject("to_host", b"\r\nRaspbian GNU/Linux 12 raspberrypi ttyGS0\r\n" * 10)
        agent = Agent(sim, tmp_path / "cache")
        t.join(timeout=20)
        try:
            assert "link" in got, got.get("error")
            link = got["link"]
            assert link.ep.decoder.stats.garbage_bytes >= len(banner)
            info = AgentClient(link).hello()
            assert info["pid"] == agent.proc.pid
            link.close()
        finally:
            agent.stop()


def test_endless_garbage_and_huge_lengths_hold_both_ends_bounded(line):
    sim, agent, board = line
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=20)
        pid = c.hello()["pid"]
        rss0 = _rss_kib(pid)
        head = wire._HEAD.pack(wire.MAGIC, wire.WIRE_VERSION, wire.DATA, 0, 16, 2**31)
        forged = head + wire._CRC.pack(__import__("zlib").crc32(head))
        rng = np.random.default_rng(0)
        peak = 0
        for _ in range(20):  # ~640 KB of garbage and forged heads, each way
            junk = (forged + rng.bytes(16_000)) * 2
            sim.inject("to_device", junk)
            sim.inject("to_host", junk)
            time.sleep(0.05)
            peak = max(peak, link.ep.buffered)
        assert peak < 64 * 1024
        assert c.hello()["pid"] == pid  # both ends still talk
        assert _rss_kib(pid) - rss0 < 20 * 1024
        assert link.ep.decoder.stats.oversized > 0
    finally:
        link.close()


def _rss_kib(pid: int) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1])
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------- the agent without pyserial


def test_agent_falls_back_to_termios_without_pyserial(tmp_path, tflite_python):
    probe = subprocess.run([tflite_python, "-c", "import serial"], capture_output=True)
    assert probe.returncode != 0  # that Python has no pyserial
    with LineSim(FAST) as sim:
        agent = Agent(sim, tmp_path / "cache", python=tflite_python)
        board = BoardProfile(name="sim", link_type="serial",
                             serial=SerialParams(sim.host_path, FAST))
        try:
            o = execute(RunSpec(model="builtin:mlp-int8", settings=small("SingleStream"),
                                board=board, out_dir=tmp_path / "out"))
        finally:
            err = agent.stop()
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    assert "(termios)" in err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    assert res["device"]["runtimes"]["tflite_runtime"] == "2.14.0"


# ---------------------------------------------------------------- summary mode


def test_summary_mode_scores_exactly_like_the_full_log(line):
    """The device keeps the log and sends sorted latencies: LoadGen's numbers are the same
    as from the full per-query log, fetched afterwards from the device."""
    sim, agent, board = line
    link = SerialLink(sim.host_path, FAST)
    try:
        c = AgentClient(link, timeout=30)
        c.hello()
        c.load_model("synthetic", kind="null")
        s = small("SingleStream", min_query_count=30_000, max_query_count=30_000)
        from edgeperf.run.execute import _agent_settings, score_input_summary
        from edgeperf.settings import effective_settings

        events: list[dict] = []
        reply = c.run(_agent_settings(s, effective_settings(s)), samples=None,
                      sample_count=256, on_event=lambda h, b: events.append(h),
                      querylog="summary")
        rows = sum(h["rows"] for h in events if h.get("event") == "querylog")
        assert rows == 10_000 and reply["rows"] == 30_000
        assert len(reply["latencies_sorted_ns"]) == 30_000
        hdr, body = c.results()  # the full log stayed on the device
        assert hdr["rows"] == 30_000
        from edgeperf.run.querylog import QueryLogCollector

        col = QueryLogCollector()
        col.add(0, hdr["rows"], hdr["samples_per_row"], body)
        q = col.data(start_ns=reply["start_ns"])
        assert q.checksum() == reply["checksum"]
        kw = dict(min_duration_ns=0, min_query_count=100)
        full = score(score_input("SingleStream", q), **kw).to_dict()
        summ = score(score_input_summary("SingleStream", reply), **kw).to_dict()
        assert summ == full and full["early_stopping"]["estimate_ns"] > 0
    finally:
        link.close()


# ---------------------------------------------------------------- board profiles


def test_serial_board_url_and_profile():
    b = load_board("serial:///dev/ttyUSB0?baud=921600&parity=E&flow_control=rtscts")
    assert (b.link_type, b.serial) == ("serial", SerialParams("/dev/ttyUSB0", 921600, "E", 1,
                                                              "rtscts"))
    assert load_board("serial:///dev/ttyACM0").serial.baud == 115200
    generic = load_board(str(ROOT / "boards" / "serial-generic.toml"))
    assert generic.serial == SerialParams("/dev/ttyUSB0", 115200, "N", 1, "none")
    assert generic.to_dict()["serial"]["port"] == "/dev/ttyUSB0"
    unit = (ROOT / "boards" / "edgeperf-agent-serial.service").read_text()
    assert ("ExecStart=/usr/bin/python3 /opt/edgeperf/agent.pyz serve --serial /dev/ttyGS0 "
            "--baud 115200") in unit and "Restart=always" in unit


@pytest.mark.parametrize("text,needle", [
    ('[link]\ntype = "serial"\n', "a serial link needs link.port"),
    ('[link]\ntype = "serial"\nport = "/dev/x"\nbaud = -5\n', "link.baud must be a positive"),
    ('[link]\ntype = "serial"\nport = "/dev/x"\nparity = "Q"\n',
     "link.parity is 'Q'; allowed: N (none), E (even), O (odd)"),
    ('[link]\ntype = "serial"\nport = "/dev/x"\nstopbits = 3\n', "link.stopbits is 3; allowed"),
    ('[link]\ntype = "serial"\nport = "/dev/x"\nflow_control = "dtr"\n',
     "link.flow_control is 'dtr'; allowed: none, rtscts, xonxoff"),
    ('[link]\ntype = "local"\nbaud = 9600\n', "link.baud belongs to a serial link"),
    ('[link]\ntype = "serial"\nport = "/dev/x"\nspeed = 9600\n', "unknown key 'link.speed'"),
])
def test_serial_profile_errors_name_file_key_and_allowed_values(text, needle):
    with pytest.raises(BoardError) as ei:
        parse_board(text, "boards/pi.toml")
    assert str(ei.value).startswith("boards/pi.toml: ") and needle in str(ei.value)


@pytest.mark.parametrize("url,needle", [
    ("serial://dev/ttyUSB0", "three slashes"),
    ("serial:///dev/ttyUSB0?bauds=9600", "unknown parameter 'bauds'"),
    ("serial:///dev/ttyUSB0?baud=fast", "baud must be a positive"),
])
def test_bad_board_urls(url, needle):
    with pytest.raises(BoardError, match=needle):
        load_board(url)
