"""The host's driver of an MLPerf Tiny DUT over its UART (pyserial), with the runner's rules.

Rules it keeps, the same as MLCommons Tiny's runner so a board one accepts the other does:

* One command at a time, and nothing more is written until its reply has ended (at any line
  containing ``m-ready``): a ``db`` line of 31 payload bytes (26 behind an interface board),
  then its reply. A host that writes kilobytes ahead deadlocks a real UART and qemu alike.
* Each reply line must come within 5 s (30 s while ``infer`` runs); a timeout names the
  command and the last line seen, and says whether the board said nothing or only never
  ended its reply with ``m-ready``.
* ``e-[...]`` becomes :class:`DutCommandError` naming the command and the board's message; a
  protocol line whose value is unreadable becomes :class:`DutProtocolError`; bytes that are
  not text where a banner or reply should be become :class:`DutBaudError` (check the baud).
* A boot banner in the middle of a session is a reset: the driver reads the banner to its
  ``m-ready``, resynchronises (a ``name`` probe, answered in full) and raises
  :class:`DutReset` so the procedure in progress can say so and keep what it measured.

:class:`InterfaceDut` is the same DUT behind the energy-mode interface board: each command
goes as ``dut <cmd>``, the board answers ``m-dut-passthrough(<cmd>)``, ``m-ready``, then the
DUT's lines prefixed ``[dut]: ``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeperf import errors
from edgeperf_firmware import protocol as P


class DutError(errors.LinkError):
    """The board over its serial line did not do what the protocol says; names the command,
    the last line seen and what to check."""

    def __init__(self, message: str, command: str = "", last_line: str = "") -> None:
        super().__init__(message)
        self.command, self.last_line = command, last_line


class DutTimeout(DutError):
    """Nothing (or nothing more) came within the line timeout."""


class DutNoReady(DutTimeout):
    """The board answered but never ended the reply with ``m-ready``."""


class DutCommandError(DutError):
    """The board answered ``e-[...]``; ``board_message`` is what is inside the brackets."""

    def __init__(self, message: str, command: str, board_message: str) -> None:
        super().__init__(message, command, P.error_line(board_message))
        self.board_message = board_message


class DutProtocolError(DutError):
    """A reply the protocol does not allow (a malformed line, a missing timestamp, ...)."""


class DutBaudError(DutError):
    """Bytes that are not protocol text: almost always a baud-rate mismatch."""


class DutReset(DutError):
    """The board rebooted mid-session (its boot banner came in a reply)."""

    def __init__(self, message: str, command: str, banner: list[str]) -> None:
        super().__init__(message, command, banner[0] if banner else "")
        self.banner = banner


@dataclass
class DutInfo:
    name: str
    profile: str
    model: str
    mode: str  # timestamp mode from the boot banner ('' when no banner was seen)


@dataclass
class InferReply:
    n: int
    warmups: int
    t0_us: int | None  # None in energy mode: the timestamps are edges on the GPIO line
    t1_us: int | None
    results: list[float]
    lines: list[str] = field(default_factory=list)

    @property
    def elapsed_us(self) -> int | None:
        return None if self.t0_us is None or self.t1_us is None else self.t1_us - self.t0_us


class Dut:
    """A DUT on a serial port (a path, or any pyserial URL; or an open ``serial_port``)."""

    interface = False

    def __init__(self, port: str, baud: int = 115200, *, db_payload: int | None = None,
                 line_timeout: float = P.LINE_TIMEOUT_S,
                 infer_timeout: float = P.INFER_TIMEOUT_S,
                 log: Callable[[str], None] | None = None, serial_port: Any = None) -> None:
        self.port_name, self.baud = port, baud
        self.db_payload = db_payload or (P.DB_PAYLOAD_ENERGY if self.interface else P.DB_PAYLOAD)
        self.line_timeout, self.infer_timeout = line_timeout, infer_timeout
        self.log = log or (lambda text: None)
        self.mode = ""
        self.info: DutInfo | None = None
        self.last_line = ""
        self.commands_sent = 0
        self._buf = bytearray()
        self.log(f"Initializing SerialDevice on port: {port} at {baud} baud")
        if serial_port is None:
            import serial

            try:
                serial_port = serial.serial_for_url(port, baudrate=baud, timeout=0.05,
                                                    write_timeout=line_timeout)
            except (OSError, serial.SerialException) as exc:
                raise DutError(f"{port}: cannot open the board's serial port ({exc}); check "
                               "the cable and that no other program (a terminal, the "
                               "runner) holds it") from None
        self.ser = serial_port

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        try:
            self.ser.close()
        except OSError:
            pass

    def __enter__(self) -> Dut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- lines
    def _garbage(self, data: bytes, command: str) -> DutBaudError:
        where = f"the reply to '{command}'" if command else "the boot banner"
        return DutBaudError(
            f"{self.port_name}: received bytes that are not protocol text where {where} "
            f"should be ({bytes(data[:16]).hex(' ')}); check the baud rate: the driver runs "
            f"at {self.baud} baud, MLPerf Tiny boards use 115200 in performance and accuracy "
            "mode and 9600 in energy mode (921600 for ad01 boards), as their firmware's "
            "th_serialport_initialize sets it", command, self.last_line)

    def _read_line(self, timeout: float, command: str) -> str | None:
        """The next line (without CR/LF/NUL), or None when nothing completes in ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                return None
            try:
                chunk = self.ser.read(max(1, self.ser.in_waiting))
            except OSError as exc:
                raise DutError(f"{self.port_name}: the serial port failed: {exc}",
                               command, self.last_line) from None
            if chunk:
                if not P.printable(chunk):
                    raise self._garbage(chunk, command)
                self._buf += chunk
                deadline = time.monotonic() + timeout  # the timeout is per line, as the runner's
        raw, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        line = raw.decode("ascii").replace("\r", "").replace("\0", "").strip()
        if line:
            self.last_line = line
        return line

    def _write(self, command: str) -> None:
        try:
            self.ser.write(P.frame(command))
            self.ser.flush()
        except OSError as exc:
            raise DutError(f"{self.port_name}: cannot write '{command}': {exc}",
                           command, self.last_line) from None
        self.commands_sent += 1

    def _timeout(self, command: str, got: list[str], timeout: float) -> DutTimeout:
        if got:
            return DutNoReady(
                f"{self.port_name}: the reply to '{command}' never ended with m-ready: "
                f"{len(got)} line(s) came, the last {got[-1]!r}, then nothing for "
                f"{timeout:g} s; the firmware must print m-ready after every command "
                "(ee_serial_command_parser_callback) - check that it knows the command and "
                "flushes its output", command, got[-1])
        last = f"the last line seen was {self.last_line!r}" if self.last_line else \
            "nothing was ever received"
        return DutTimeout(
            f"{self.port_name}: no reply to '{command}' within {timeout:g} s ({last}); check "
            "that the board is powered and flashed with MLPerf Tiny firmware, that this is its "
            f"UART, and the baud rate ({self.baud})", command, self.last_line)

    def _reply(self, command: str, timeout: float, unwrap: bool = False) -> list[str]:
        """Lines up to the one containing m-ready (``unwrap``: the DUT's lines behind the
        interface board, up to the DUT's own m-ready, as the runner's IOManager reads)."""
        got: list[str] = []
        while True:
            line = self._read_line(timeout, command)
            if line is None:
                raise self._timeout(command, got, timeout)
            line = self._unwrap(line) if unwrap else line
            if not line:
                continue
            if P.is_boot(line):
                self._reset(command, line, timeout)
            got.append(line)
            if line == P.READY if unwrap else P.is_ready(line):
                return got

    def _reset(self, command: str, first: str, timeout: float) -> None:
        banner = [first]
        while not P.is_ready(banner[-1]):
            line = self._read_line(timeout, command)
            if line is None:
                break
            if line:
                banner.append(self._unwrap(line))
        if first.startswith(P.MODE_PREFIX):
            self.mode = first[len(P.MODE_PREFIX):]
        self.resync()
        via = "through the interface board" if self.interface else "in the reply"
        raise DutReset(
            f"{self.port_name}: the board reset during '{command}' (its boot banner "
            f"{' / '.join(banner)} came {via}); what it was doing is lost - check its power "
            "supply, watchdog and stack size", command, banner)

    def resync(self) -> None:
        """Drop whatever is in flight and probe with ``name`` until a whole reply answers it."""
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self._buf.clear()
        self._write(self._wire("name"))
        seen_name = False
        deadline = time.monotonic() + 2 * self.line_timeout
        while time.monotonic() < deadline:
            line = self._read_line(self.line_timeout, "name")
            if line is None:
                break
            line = self._unwrap(line)
            if line.startswith("m-name-"):
                seen_name = True
            elif seen_name and line == P.READY:
                return
        raise DutTimeout(f"{self.port_name}: the board did not answer 'name' after a reset; "
                         "it may still be rebooting or stuck - power-cycle it", "name",
                         self.last_line)

    # ---------------------------------------------------------------- commands
    def _wire(self, command: str) -> str:
        return command

    def _unwrap(self, line: str) -> str:
        return line

    def command(self, command: str, timeout: float | None = None) -> list[P.Line]:
        """Send one command, read its whole reply, parse it. ``e-[...]`` and malformed lines
        raise once the reply has ended, so the line stays in step."""
        timeout = self.line_timeout if timeout is None else timeout
        self._write(self._wire(command))
        lines = self._dut_reply(command, timeout)
        parsed, problem = [], None
        for text in lines:
            try:
                parsed.append(P.parse(text))
            except P.ProtocolError as exc:
                problem = problem or (text, str(exc))
        for ln in parsed:
            if ln.kind == "error":
                raise DutCommandError(f"{self.port_name}: the board refused '{command}': "
                                      f"{ln.text}", command, str(ln.value))
        if problem:
            raise DutProtocolError(f"{self.port_name}: malformed reply to '{command}': "
                                   f"{problem[0]!r} ({problem[1]})", command, problem[0])
        return parsed

    def _dut_reply(self, command: str, timeout: float) -> list[str]:
        return self._reply(command, timeout)

    def _malformed(self, command: str, why: str, lines: list[P.Line]) -> DutProtocolError:
        last = lines[-2].text if len(lines) > 1 else (lines[-1].text if lines else "")
        return DutProtocolError(f"{self.port_name}: malformed reply to '{command}': {why} "
                                f"(reply: {' / '.join(ln.text for ln in lines)[:300]})",
                                command, last)

    def wait_boot(self, seconds: float = 0.5) -> list[str]:
        """Read what the board says on its own for ``seconds`` (a boot banner after power-up
        or a reset); sets ``mode`` when a banner is seen."""
        got: list[str] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = self._read_line(max(0.01, end - time.monotonic()), "")
            if line is None:
                break
            line = self._unwrap(line)
            if line.startswith(P.MODE_PREFIX):
                self.mode = line[len(P.MODE_PREFIX):]
            if line:
                got.append(line)
        return got

    def identify(self, boot_wait: float = 0.5) -> DutInfo:
        """The runner's start: name, then profile (model and firmware version)."""
        self.wait_boot(boot_wait)
        self.log("Retrieving name from DUT ...")
        lines = self.command("name")
        names = [ln.value for ln in lines if ln.kind == "name"]
        if not names:
            raise self._malformed("name", "no m-name-dut-[...] line", lines)
        self.log(f"Device name retrieved: {names[0]}")
        lines = self.command("profile")
        profile = next((ln.value for ln in lines if ln.kind == "profile"), None)
        model = next((ln.value for ln in lines if ln.kind == "model"), None)
        if model is None:
            raise self._malformed("profile", "no m-model-[...] line", lines)
        if profile:
            self.log(f"Device profile retrieved: {profile}")
        self.log(f"Device model retrieved: {model}")
        self.info = DutInfo(str(names[0]), str(profile or ""), str(model), self.mode)
        return self.info

    def load(self, data: bytes) -> None:
        """``db load N``, then ``db`` lines of ``db_payload`` bytes, each answered in full."""
        if not data:
            raise DutProtocolError("db load needs at least one byte")
        cmd = f"db load {len(data)}"
        lines = self.command(cmd)
        expecting = [ln.value for ln in lines if ln.kind == "expecting"]
        if expecting != [len(data)]:
            why = (f"the board expects {expecting[0]} bytes, not {len(data)}" if expecting
                   else "no m-[Expecting N bytes] line (is N above the firmware's "
                   "MAX_DB_INPUT_SIZE?)")
            raise self._malformed(cmd, why, lines)
        chunks = P.db_lines(data, self.db_payload)
        for i, line in enumerate(chunks):
            reply = self.command(line)
            done = any(ln.kind == "load_done" for ln in reply)
            if done != (i == len(chunks) - 1):
                where = "early" if done else "missing after the last byte"
                raise self._malformed(f"db (line {i + 1} of {len(chunks)})",
                                      f"m-load-done {where}", reply)

    def infer(self, n: int, warmups: int = 0) -> InferReply:
        cmd = P.infer_command(n, warmups)
        lines = self.command(cmd, timeout=self.infer_timeout)
        laps = [int(ln.value) for ln in lines if ln.kind == "lap"]
        results = next((ln.value for ln in lines if ln.kind == "results"), None)
        if results is None:
            raise self._malformed(cmd, "no m-results-[...] line", lines)
        if self.mode == "energy":
            return InferReply(n, warmups, None, None, list(results), [ln.text for ln in lines])
        if len(laps) != 2:
            raise self._malformed(cmd, f"{len(laps)} m-lap-us lines, expected 2 (before and "
                                  "after the timed loop)", lines)
        if laps[1] < laps[0]:
            raise self._malformed(cmd, f"m-lap-us went backwards ({laps[0]} -> {laps[1]}): "
                                  "the microsecond timer wrapped or restarted inside the "
                                  "window; a window must stay within one timer period", lines)
        return InferReply(n, warmups, laps[0], laps[1], list(results), [ln.text for ln in lines])

    def results(self) -> list[float]:
        lines = self.command("results")
        res = next((ln.value for ln in lines if ln.kind == "results"), None)
        if res is None:
            raise self._malformed("results", "no m-results-[...] line", lines)
        return list(res)

    def db_print(self) -> bytes:
        lines = self.command("db print")
        return bytes.fromhex("".join(str(ln.value).replace("-", "") for ln in lines
                                     if ln.kind == "buffer"))


class InterfaceDut(Dut):
    """The DUT behind MLPerf Tiny's interface board (energy mode)."""

    interface = True

    def _wire(self, command: str) -> str:
        return P.passthrough(command)

    def _unwrap(self, line: str) -> str:
        return line[len(P.DUT_PREFIX):] if line.startswith(P.DUT_PREFIX) else line

    def _dut_reply(self, command: str, timeout: float) -> list[str]:
        ack = self._reply(P.passthrough(command), self.line_timeout)
        if P.passthrough_line(command) not in ack:
            raise DutProtocolError(
                f"{self.port_name}: the interface board did not acknowledge 'dut {command}' "
                f"with {P.passthrough_line(command)!r} (got {' / '.join(ack)}); check that the "
                "port is the interface board's, not the DUT's", command, ack[-1])
        return self._reply(command, timeout, unwrap=True)
