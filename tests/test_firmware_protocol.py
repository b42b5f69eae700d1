"""The protocol's definitions: commands, reply lines and their parsers, db sizes, hex."""

from __future__ import annotations

import pytest

from edgeperf_firmware import protocol as P


def test_commands_are_framed_with_percent_and_infer_always_names_warmups():
    assert P.frame("name") == b"name%"
    assert P.infer_command(20, 5) == "infer 20 5"
    assert P.infer_command(1, 0) == "infer 1 0"
    assert P.passthrough("infer 1 0") == "dut infer 1 0"
    with pytest.raises(P.ProtocolError):
        P.frame("db 00%")
    with pytest.raises(P.ProtocolError):
        P.infer_command(0, 0)


def test_db_lines_carry_31_bytes_or_26_behind_a_power_manager():
    data = bytes(range(64))
    lines = P.db_lines(data)
    assert [len(ln) for ln in lines] == [3 + 62, 3 + 62, 3 + 4]
    assert lines[0] == "db " + bytes(range(31)).hex()
    energy = P.db_lines(data, P.DB_PAYLOAD_ENERGY)
    assert [len(ln) - 3 for ln in energy] == [52, 52, 24]
    assert b"".join(P.from_hex(ln[3:]) for ln in energy) == data
    assert max(len("dut " + ln) for ln in energy) < P.CMD_SIZE  # fits the firmware's buffer
    assert P.to_hex(b"\x00\xff\x80") == "00ff80"  # lowercase, two digits a byte


def test_from_hex_refuses_odd_and_invalid_digits_in_the_firmwares_words():
    with pytest.raises(P.ProtocolError, match="Insufficent number of hex digits"):
        P.from_hex("abc")
    with pytest.raises(P.ProtocolError, match="Invalid hex digit"):
        P.from_hex("zz")


def test_boot_banners():
    assert P.boot_lines("performance", 17) == ["m-timestamp-mode-performance", "m-lap-us-17",
                                               "m-init-done", "m-ready"]
    assert P.boot_lines("energy") == ["m-timestamp-mode-energy", "m-init-done", "m-ready"]
    assert all(P.is_boot(x) for x in ("m-timestamp-mode-energy", "m-init-done"))
    assert not P.is_boot("m-ready")


@pytest.mark.parametrize("line, kind, value", [
    ("m-ready", "ready", None),
    ("m-lap-us-123456", "lap", 123456),
    ("m-results-[0.117,0.000,0.789]", "results", [0.117, 0.0, 0.789]),
    ("m-results-[1.5e-03]", "results", [0.0015]),
    ("m-[Expecting 64 bytes]", "expecting", 64),
    ("m-load-done", "load_done", None),
    ("m-name-dut-[unspecified]", "name", "unspecified"),
    ("m-profile-[ULPMark for tinyML Firmware V0.0.1]", "profile",
     "ULPMark for tinyML Firmware V0.0.1"),
    ("m-model-[ic01]", "model", "ic01"),
    ("e-[Unknown command: bogus]", "error", "Unknown command: bogus"),
    ("m-warmup-start-10", "warmup_start", 10),
    ("m-warmup-done", "warmup_done", None),
    ("m-infer-start-20", "infer_start", 20),
    ("m-infer-done", "infer_done", None),
    ("m-timestamp-mode-energy", "boot", "energy"),
    ("m-init-done", "init_done", None),
    ("m-dut-passthrough(infer 1 0)", "passthrough", "infer 1 0"),
    ("m-buffer-00-01-02", "buffer", "00-01-02"),
    ("Supplied buffer size 9000 exceeds maximum of 4096", "other", None),
])
def test_parse_every_reply_line(line, kind, value):
    got = P.parse(line)
    assert (got.kind, got.value) == (kind, value)


def test_formatters_and_parsers_agree():
    for line in [P.name_line("x"), *P.profile_lines("ad01"), P.expecting_line(5),
                 P.lap_line(7), P.error_line("bad"), P.passthrough_line("name"),
                 P.results_line([0.5, 0.25])]:
        assert P.parse(line).kind != "other"
    assert P.lap_line(P.LAP_WRAP + 3) == "m-lap-us-3"  # a 32-bit counter wraps
    assert P.results_line([0.5, 0.25]) == "m-results-[0.500,0.250]"  # the reference's %0.3f


@pytest.mark.parametrize("line", ["m-lap-us-12x", "m-lap-us-", "m-results-[0.1,abc]",
                                  "m-[Expecting lots bytes]", "m-timestamp-mode-turbo"])
def test_malformed_protocol_lines_raise(line):
    with pytest.raises(P.ProtocolError):
        P.parse(line)


def test_a_reply_ends_at_any_line_containing_m_ready_as_the_runner_reads():
    assert P.is_ready("m-ready") and P.is_ready("[dut]: m-ready")
    assert P.printable(b"m-ready\r\n\0") and not P.printable(bytes([0xed, 0xe2, 0x8d]))
