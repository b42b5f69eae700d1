"""Issue 15: every queue between the scenario loop and a slow line is bounded, and nothing
that waits for the line waits inside the timed loop.

* the reliable layer's outbox refuses what would take it past its limit (``Backlog``);
* the serial server polls new line bytes only once the kernel took the last ones (a port
  nobody reads no longer collects a window per retransmission);
* a run's QueryLog stretches and progress events are offers the line declines while it is
  behind; the rows stay in the run's log and go after the timed loop;
* ``--querylog auto`` (the default) sends the whole log unless the line would not carry it
  while the run lasts, and says what it chose;
* a 1,000,000-query null run over a 115200-baud line: the agent's queue and RSS stay within
  their stated bounds, and the scores equal those of the device's own full log.
"""

from __future__ import annotations

import os
import pty
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from serial_agent import Agent

from edgeperf.links.serial import SerialLink
from edgeperf.run.client import AgentClient
from edgeperf.run.execute import score_input, score_input_summary
from edgeperf.run.querylog import QueryLogCollector
from edgeperf.scoring.loadgen import score
from edgeperf.testing.line_sim import LineSim
from edgeperf_agent import logsend, reliable, serial_serve, wire
from edgeperf_agent.agent import Agent as DeviceAgent
from edgeperf_agent.dispatch import Call
from edgeperf_agent.scenarios import STRETCH_ROWS, RunSettings, ScenarioRunner

# ---------------------------------------------------------------- the reliable layer


def test_outbox_refuses_what_would_take_it_past_its_limit() -> None:
    ep = reliable.Endpoint(initiator=True, max_outbox=10_000)
    ep.send(b"x" * 6000)
    assert ep.room == 4000
    with pytest.raises(reliable.Backlog, match="past its 10000-byte limit"):
        ep.send(b"y" * 4001)
    assert ep.pending == 6000  # nothing of the refused message was queued
    ep.send(b"y" * 4000)
    assert ep.room == 0 and ep.pending == 10_000


def _established_server(tmp_path: Path) -> tuple[serial_serve.SerialServer, int,
                                                  reliable.Endpoint]:
    """A SerialServer on a raw pty whose other end nobody reads, in a session with a host
    endpoint driven by hand (its frames are fed straight in, not through the pty)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(slave, False)
    srv = serial_serve.SerialServer(slave, 11_520.0, DeviceAgent(str(tmp_path / "cache")),
                                    log=lambda msg: None)
    host = reliable.Endpoint(initiator=True, sid=7)
    t = time.monotonic()
    for _ in range(4):
        srv.ep.feed(host.poll(t), t)
        host.feed(srv.ep.poll(t), t)
    assert srv.ep.established and host.established
    assert srv.ep.take_events() == ["established"]
    srv.session = 1  # as serve() would have counted it
    return srv, master, host


def test_a_port_nobody_reads_does_not_collect_retransmissions(tmp_path) -> None:
    """The host stopped reading (a USB gadget port whose host is suspended): every timer
    that ran out used to append the window again to the bytes waiting for the kernel."""
    srv, master, _ = _established_server(tmp_path)
    try:
        srv.ep.rto = srv.ep._rto = 0.01
        srv.ep.max_rto = 0.02
        srv._send(b"z" * 200_000)
        peak = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            srv.pump(0.005)
            peak = max(peak, len(srv.out))
        frame = reliable.DEFAULT_SEGMENT + reliable.FRAME_SLACK
        # the timers ran out long ago (their segments never left): nothing was added for them
        assert srv.ep._unacked and max(seg.due for seg in srv.ep._unacked) < time.monotonic()
        assert peak <= reliable.DEFAULT_WINDOW * frame, peak
        assert srv.peak_queued <= 200_000 + reliable.DEFAULT_WINDOW * frame
    finally:
        os.close(master)
        os.close(srv.fd)


def test_stretches_and_progress_are_declined_while_the_line_is_behind(tmp_path) -> None:
    srv, master, _ = _established_server(tmp_path)
    try:
        srv.ep.send(b"q" * serial_serve.QUEUE_BOUND)  # more than the line carries soon
        pending = srv.ep.pending
        assert srv._emit(5, "querylog", {"first": 0, "rows": 1}, b"r" * 20) is False
        assert srv._emit(5, "progress", {"queries": 1}, b"") is False
        assert srv.ep.pending <= pending and srv.declined == 2
        srv._emit(5, "offline", {"samples": 3}, b"")  # must go: queued all the same
        assert srv.ep.pending > pending
        assert srv.peak_queued >= serial_serve.QUEUE_BOUND
    finally:
        os.close(master)
        os.close(srv.fd)


# ---------------------------------------------------------------- the runner's side


def _null_runner(sink, wait_line, n: int, scenario: str = "SingleStream") -> ScenarioRunner:
    s = RunSettings.from_dict({"scenario": scenario, "min_query_count": n,
                               "max_query_count": n, "min_duration_ns": 0,
                               "max_duration_ns": 0, "warmup_queries": 0,
                               "flush_interval_ns": 1_000_000, "target_qps": 5000.0})
    return ScenarioRunner(s, lambda i: None, 16, sink, wait_line=wait_line)


@pytest.mark.parametrize("scenario", ["SingleStream", "Server", "Offline"])
def test_declined_rows_stay_in_the_log_and_go_after_the_timed_loop(scenario) -> None:
    """A line that declines every stretch while the run lasts: the rows all arrive, once,
    in order, and the only waits for room come after the last query completed, however slow
    the line (each wait here sleeps 50 ms: a deliberately slow neighbour)."""
    got: list[tuple[int, int]] = []
    waits: list[int] = []
    state = {"open": False}

    def sink(event, header, body):
        if event != "querylog":
            return state["open"]
        if not state["open"]:
            return False
        got.append((header["first"], header["rows"]))
        assert len(body) == header["rows"] * 20
        return True

    def wait_line():
        waits.append(time.perf_counter_ns())
        time.sleep(0.05)
        state["open"] = True

    n = 3 * STRETCH_ROWS + 17
    runner = _null_runner(sink, wait_line, n, scenario)
    log = runner.run()
    assert log.rows == n and len(waits) == 1 and waits[0] >= log.end_ns
    firsts = [f for f, _ in got]
    assert firsts == sorted(firsts) and sum(r for _, r in got) == n
    assert all(a + r == b for (a, r), (b, _) in zip(got, got[1:], strict=False))
    assert max(r for _, r in got) <= STRETCH_ROWS


def test_a_line_that_declines_and_cannot_wait_is_an_error_not_a_hang() -> None:
    runner = _null_runner(lambda e, h, b: False, None, 100)
    with pytest.raises(Exception, match="cannot wait for room"):
        runner.run()


class _Sink:
    def __init__(self) -> None:
        self.rows: list[tuple[int, int]] = []

    def __call__(self, seq, event, header, body):
        if event == "querylog":
            self.rows.append((header["first"], header["rows"]))
        return True


def _stretch(first: int, rows: int) -> tuple[dict, bytes]:
    return ({"first": first, "rows": rows, "samples_per_row": 1},
            np.arange(rows, dtype="<i8").tobytes() * 2 + np.zeros(rows, "<u4").tobytes())


@pytest.mark.parametrize("rate, used", [(11_520.0, "summary"), (1e9, "full"), (None, "full")])
def test_auto_projects_from_what_the_run_produced(rate, used) -> None:
    """8192 raw rows (160 KiB) produced in 0.5 s: more than half of a 115200-baud line
    carries, far less than half of a fast one; a pipe (no rate) always takes it all."""
    sink = _Sink()
    call = Call(1, "run", {"querylog": "auto"}, sink=sink)
    start = time.perf_counter_ns() - 500_000_000
    sender = logsend.LogSender(call, rate, lambda: start)
    for first in range(0, 4 * STRETCH_ROWS, STRETCH_ROWS):
        assert sender("querylog", *_stretch(first, STRETCH_ROWS)) is True
    mode = sender.mode()
    assert mode["used"] == used and mode["requested"] == "auto"
    if used == "summary":  # the head is 10,000 rows, the rest stays on the device
        assert sink.rows == [(0, STRETCH_ROWS), (STRETCH_ROWS, 10_000 - STRETCH_ROWS)]
        assert "B/s" in mode["reason"] and "--querylog full" in mode["reason"]
    else:
        assert sum(r for _, r in sink.rows) == 4 * STRETCH_ROWS


# ---------------------------------------------------------------- end to end


def _status_kib(pid: int, key: str) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith(key + ":"):
            return int(ln.split()[1])
    raise AssertionError(f"no {key} for {pid}")


N = 1_000_000
# the agent's memory for a run: its QueryLog (20 bytes a row), the sorted latencies it packs
# for the summary (the issue/done copies, their difference and the sort: 5 x 8 bytes a row,
# transient), and room for the interpreter's own churn. The line's queue is bounded apart.
RSS_BOUND_KIB = (N * (20 + 40)) // 1024 + 32 * 1024


def test_a_million_query_null_run_over_115200_baud_keeps_its_bounds_and_scores_exactly(
        tmp_path) -> None:
    with LineSim(115200, seed=4) as sim:
        agent = Agent(sim, tmp_path / "agent-cache")
        link = SerialLink(sim.host_path, 115200)
        try:
            c = AgentClient(link, timeout=60)
            pid = c.hello()["pid"]
            c.load_model("synthetic", kind="null")
            rss0 = _status_kib(pid, "VmRSS")
            settings = {"scenario": "SingleStream", "min_query_count": N, "max_query_count": N,
                        "min_duration_ns": 0, "max_duration_ns": 0, "warmup_queries": 10,
                        "sample_index_rng_seed": 1, "schedule_rng_seed": 1}
            events: list[dict] = []
            reply = c.run(settings, samples=None, sample_count=256, idle_timeout=600,
                          on_event=lambda h, b: events.append(h))  # querylog: auto
            hwm = _status_kib(pid, "VmHWM")
            mode, queue = reply["querylog_mode"], reply["line_queue"]
            assert reply["rows"] == N and mode["used"] == "summary", mode
            assert "115200" not in mode["reason"] and "B/s" in mode["reason"]
            # the rows sent whole before the switch (at least 10,000) are the summary's head
            rows = sum(h["rows"] for h in events if h.get("event") == "querylog")
            assert 10_000 <= rows == mode["head_rows"] < N
            # the line's queue: its bound plus one stretch, whatever the run produced
            assert queue["peak_bytes"] <= serial_serve.QUEUE_BOUND + STRETCH_ROWS * 20 + 4096
            assert hwm - rss0 <= RSS_BOUND_KIB, (hwm, rss0, RSS_BOUND_KIB)
            # the device's own log, fetched over a line made fast for the check: the scores
            # from the summary are the scores from every row
            sim.rate = 4_000_000 / 10
            col = QueryLogCollector()
            first = 0
            while first < N:
                hdr, body = c.results(first)
                col.add(hdr["first"], hdr["rows"], hdr["samples_per_row"], body)
                first += hdr["rows"]
            q = col.data(start_ns=reply["start_ns"])
            assert q.rows == N and q.checksum() == reply["checksum"]
            kw = dict(min_duration_ns=0, min_query_count=100)
            full = score(score_input("SingleStream", q), **kw).to_dict()
            summ = score(score_input_summary("SingleStream", reply), **kw).to_dict()
            assert summ == full and full["query_count"] == N
        finally:
            link.close()
            agent.stop()


def test_querylog_full_still_forces_the_whole_log(tmp_path) -> None:
    """20,000 null queries over 115200 baud: auto would summarise; full sends every row
    (after the timed loop, at the line's pace) and says it was asked for."""
    with LineSim(115200, seed=5) as sim:
        agent = Agent(sim, tmp_path / "agent-cache")
        link = SerialLink(sim.host_path, 115200)
        try:
            c = AgentClient(link, timeout=60)
            c.hello()
            c.load_model("synthetic", kind="null")
            n = 20_000
            settings = {"scenario": "SingleStream", "min_query_count": n, "max_query_count": n,
                        "min_duration_ns": 0, "max_duration_ns": 0, "warmup_queries": 0,
                        "sample_index_rng_seed": 1, "schedule_rng_seed": 1}
            col = QueryLogCollector()

            def on_event(h, b):
                if h.get("event") == "querylog":
                    col.add(h["first"], h["rows"], h["samples_per_row"], b)
            reply = c.run(settings, samples=None, sample_count=256, idle_timeout=600,
                          on_event=on_event, querylog="full")
            mode = reply["querylog_mode"]
            assert (mode["requested"], mode["used"], mode["reason"]) == ("full", "full",
                                                                         "requested")
            assert mode["head_rows"] is None
            q = col.data(start_ns=reply["start_ns"])
            assert q.rows == n and q.checksum() == reply["checksum"]
            assert "latencies_sorted_ns" not in reply
        finally:
            link.close()
            agent.stop()


def test_wire_header_of_a_stretch_is_what_the_sender_budgets() -> None:
    """STRETCH_HEADER_BYTES covers a compact stretch's event header and framing."""
    from edgeperf_agent import qlcodec
    h, b = _stretch(123_456, STRETCH_ROWS)
    h, b = qlcodec.encode_stretch(h, b)
    frame = wire.encode(wire.EVENT, 2**31, dict(h, event="querylog"), b)
    assert len(frame) - len(b) <= logsend.STRETCH_HEADER_BYTES


def test_logged_outputs_pages_fit_the_wire_header_limit(tmp_path) -> None:
    """TEST01 with one-byte outputs: a page of MAX_CHUNK outputs put 4 M ids in its JSON
    header, 80x the wire's limit, and the reply became a WireError: every logged output
    of the run was lost. Pages now hold what the header can carry, and page on."""
    agent = DeviceAgent(str(tmp_path / "cache"))
    n = 40_000
    seq = np.arange(2**62, 2**62 + n, dtype=np.int64)
    agent.logged = (seq, np.full(n, 4_000_000_000, np.int64), np.zeros((n, 1), np.uint8))
    got = 0
    while got < n:
        frame = wire.Frame(wire.REQUEST, 9, {"op": "logged_outputs", "first": got})
        type_, header, body = agent.handle(frame)
        assert type_ == wire.RESPONSE, header
        wire.encode(type_, 9, header, body)  # within the header limit, or WireError
        assert header["seq_ids"] == seq[got:got + header["count"]].tolist()
        got += header["count"]
    assert got == n and header["count"] < n
