"""The DUT driver against the emulated DUT on a real pty, opened with real pyserial."""

from __future__ import annotations

import os
import time

import pytest
import serial

from edgeperf_firmware import protocol as P
from edgeperf_firmware.dut import (
    Dut,
    DutBaudError,
    DutCommandError,
    DutNoReady,
    DutProtocolError,
    DutReset,
    DutTimeout,
    InterfaceDut,
)
from edgeperf_firmware.emulated_dut import EmulatedDut

INPUT = bytes(range(256))[:64]


@pytest.fixture
def emu():
    with EmulatedDut(infer_us=1234) as e:
        yield e


@pytest.fixture
def dut(emu):
    with Dut(emu.path, 115200, line_timeout=0.5, infer_timeout=2.0) as d:
        yield d


def test_identify_reads_the_boot_banner_name_and_profile(emu, dut):
    emu.reset()  # with the port open: pyserial flushes what came before it opened
    info = dut.identify(boot_wait=0.3)
    assert (info.name, info.model, info.mode) == ("edgeperf-emulated-dut", "ic01", "performance")
    assert info.profile == P.FW_VERSION


def test_every_command(emu, dut):
    dut.identify(boot_wait=0.05)
    dut.load(INPUT)
    assert emu.buffer == INPUT and dut.db_print() == INPUT
    r = dut.infer(100, 5)
    assert r.elapsed_us == 100 * 1234  # virtual time: exactly N x infer_us
    assert r.t0_us == 5 * 1234  # the clock starts at the reset, the warmups come first
    assert len(r.results) == 10 and abs(sum(r.results) - 1) < 0.02  # a softmax
    assert dut.results() == r.results
    assert [ln.kind for ln in dut.command("timestamp")] == ["lap", "ready"]
    assert dut.command("help")[0].text == P.FW_VERSION
    assert emu.commands[:3] == ["name", "profile", "db load 64"]
    assert emu.commands[3:6] == P.db_lines(INPUT)


def test_the_driver_never_writes_ahead_of_a_reply(emu, dut):
    """The emulated DUT measures what the host wrote before each reply went out."""
    dut.identify(boot_wait=0.05)
    for _ in range(3):
        dut.load(INPUT)  # 3 db lines each
        dut.infer(3, 0)
    assert emu.ahead_max == 0
    assert sum(c.startswith("db ") and not c.startswith("db load") for c in emu.commands) == 9
    # the instrument works: a host that writes every db line at once is caught
    raw = serial.Serial(emu.path, 115200, timeout=0.2)
    raw.write(b"db load 200%" + b"".join(P.frame(x) for x in P.db_lines(bytes(200))))
    time.sleep(0.3)
    raw.close()
    assert emu.ahead_max > 100


def test_an_error_reply_names_the_command_and_the_board_message(emu, dut):
    dut.load(INPUT)
    emu.error_on = {"infer": "Inference iterations must be >0"}
    with pytest.raises(DutCommandError) as ei:
        dut.infer(5, 0)
    assert ei.value.command == "infer 5 0"
    assert ei.value.board_message == "Inference iterations must be >0"
    assert "refused 'infer 5 0': e-[Inference iterations must be >0]" in str(ei.value)
    emu.error_on = {}
    with pytest.raises(DutCommandError, match=r"e-\[Unknown command: bogus\]"):
        dut.command("bogus")
    assert dut.infer(2, 0).elapsed_us == 2 * 1234  # still in step after the errors


def test_a_malformed_reply_says_which_line(emu, dut):
    dut.load(INPUT)
    emu.malformed = {"m-lap-us-": "m-lap-us-12x"}
    with pytest.raises(DutProtocolError) as ei:
        dut.infer(10, 0)
    msg = str(ei.value)
    assert "malformed reply to 'infer 10 0'" in msg and "'m-lap-us-12x'" in msg
    emu.malformed = {"m-lap-us-": "m-note"}
    with pytest.raises(DutProtocolError, match="0 m-lap-us lines, expected 2"):
        dut.infer(10, 0)
    emu.malformed = {"m-[Expecting": "m-[Expecting 3 bytes]"}
    with pytest.raises(DutProtocolError, match="expects 3 bytes, not 64"):
        dut.load(INPUT)


def test_a_missing_m_ready_is_its_own_message(emu, dut):
    emu.no_ready_on = {"name"}
    with pytest.raises(DutNoReady) as ei:
        dut.identify(boot_wait=0.05)
    msg = str(ei.value)
    assert "the reply to 'name' never ended with m-ready" in msg
    assert "'m-name-dut-[edgeperf-emulated-dut]'" in msg and "0.5 s" in msg
    assert ei.value.last_line == "m-name-dut-[edgeperf-emulated-dut]"


def test_no_reply_at_all_names_the_command_and_what_to_check():
    master, slave = os.openpty()
    try:
        with Dut(os.ttyname(slave), 115200, line_timeout=0.3) as d:
            with pytest.raises(DutTimeout) as ei:
                d.identify(boot_wait=0.05)
        assert not isinstance(ei.value, DutNoReady)
        assert "no reply to 'name' within 0.3 s (nothing was ever received)" in str(ei.value)
        assert "baud rate (115200)" in str(ei.value)
    finally:
        os.close(master)
        os.close(slave)


def test_garbage_where_the_banner_should_be_says_check_the_baud(emu, dut):
    emu.garbage = True
    emu.reset()
    with pytest.raises(DutBaudError) as ei:
        dut.identify(boot_wait=0.3)
    assert "where the boot banner should be" in str(ei.value)
    assert "check the baud rate: the driver runs at 115200 baud" in str(ei.value)


def test_garbage_in_a_reply_says_check_the_baud(emu, dut):
    emu.garbage = True
    with pytest.raises(DutBaudError, match="where the reply to 'name' should be.*check the baud"):
        dut.identify(boot_wait=0.05)


def test_a_reset_mid_command_is_detected_and_the_driver_resynchronises(emu, dut):
    dut.identify(boot_wait=0.05)
    dut.load(INPUT)
    emu.reset_at_infer = 1
    with pytest.raises(DutReset) as ei:
        dut.infer(50, 0)
    assert ei.value.command == "infer 50 0"
    assert ei.value.banner == P.boot_lines("performance", 0)
    assert "the board reset during 'infer 50 0'" in str(ei.value)
    assert emu.buffer == b""  # the reboot lost the input: the driver is in step again
    dut.load(INPUT)
    assert dut.infer(4, 0).elapsed_us == 4 * 1234


def test_behind_the_interface_board(tmp_path):
    stamps = []
    with EmulatedDut(mode="energy", interface=True, real_time=False, infer_us=500,
                     on_timestamp=lambda: stamps.append(time.monotonic())) as emu:
        with InterfaceDut(emu.path, 9600, line_timeout=0.5) as d:
            info = d.identify(boot_wait=0.05)
            assert info.model == "ic01"
            d.mode = "energy"
            d.load(INPUT)
            r = d.infer(20, 0)
            assert (r.t0_us, r.t1_us, len(r.results)) == (None, None, 10)
            assert len(stamps) == 2  # the timestamp line, before and after the timed loop
            assert emu.commands[0] == "dut name"
            assert emu.commands[3:6] == ["dut " + x for x in P.db_lines(INPUT, 26)]
            assert d.db_payload == P.DB_PAYLOAD_ENERGY and emu.ahead_max == 0
            emu.reset_at_infer = 2
            with pytest.raises(DutReset, match="through the interface board"):
                d.infer(5, 0)
            assert d.command("name")[0].value == "edgeperf-emulated-dut"
