"""The reference firmware's energy bench on qemu: the board wired as MLPerf Tiny's energy runs
wire a real one, with emulated instruments where the hardware would be.

::

    host --(port: pty)--> interface board --(qemu UART0)--> DUT (reference firmware)
                                                      DUT timestamp line (qemu UART1)
    host --(meter_url: pty)--> LPM01A <------- D7 ---------------'

* The interface board (``InterfaceRelay``) is what the host opens, as MLCommons' runner
  opens the real one: ``dut <cmd>%`` is acknowledged with ``m-dut-passthrough(<cmd>)`` and
  ``m-ready`` and passed to the DUT as ``<cmd>%``; each DUT line comes back prefixed
  ``[dut]: ``; ``name%`` names the interface board. It passes a DUT line on only once every
  edge the firmware wrote to its timestamp line before that line has been played into the
  shield (``TimestampLine.settle``): qemu runs about 100x ahead of real time, and a reply
  that came before its window had been played would stop the meter too early.
* The shield (the emulated LPM01A, lag 0.5 s) gets the firmware's falling edges on the
  device's clock (``falling_to(shield, device_clock=True)``): the samples between the two
  events of a window are the device's window rounded up to whole samples, the same on every
  run under icount, so with the shield's constant load the energy per inference is exact:
  ``watts x ceil(window / period) x period / N``.

``edgeperf emulate mcu --mode energy`` serves one (both ports printed); a run on the
qemu-mps2-an385 profile with no port starts one and measures with its shield.
"""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path
from typing import Any

from edgeperf.testing.emulators.load_profile import LoadProfile
from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator
from edgeperf.testing.pty_device import PtyDevice, write_all
from edgeperf_firmware import protocol as P
from edgeperf_firmware.timestamp_line import TimestampLine, falling_to

WATTS = 0.010  # the shield's load: 10 mW, constant (3.03 mA at its 3.3 V)
LAG_S = 0.5  # the shield holds samples this long: an edge played late still lands in place
METER_QUERY = "freq=1k&output=energy"  # the Tiny runner's setting: energy per 1 ms sample


class InterfaceRelay(PtyDevice):
    """MLPerf Tiny's interface board between the host (this pty) and a DUT's UART (``dut_fd``,
    raw and non-blocking); ``before_line`` is called before each DUT line is passed on."""

    thread_name = "interface-board"

    def __init__(self, dut_fd: int, before_line: Any = None) -> None:
        super().__init__()
        self.dut_fd = dut_fd
        self.before_line = before_line
        self.commands: list[str] = []
        self._write_lock = threading.Lock()
        self._up = threading.Thread(target=self._from_dut, name="interface-board-dut",
                                    daemon=True)

    def start(self) -> InterfaceRelay:
        super().start()
        self._up.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._up.join(timeout=2)
        super().close()

    def _to_host(self, lines: list[str]) -> None:
        data = "".join(f"{line}\r\n" for line in lines).encode("ascii", "replace")
        with self._write_lock:
            write_all(self.master, data, self._closing)

    def _to_dut(self, command: str) -> None:
        write_all(self.dut_fd, f"{command}{P.TERMINATOR}".encode("ascii", "replace"),
                  self._closing)

    def _loop(self) -> None:  # from the host
        term = P.TERMINATOR.encode()
        while not self._closing.is_set():
            try:
                r, _, _ = select.select([self.master], [], [], 0.05)
                if not r:
                    continue
                self._inbuf += os.read(self.master, 4096)
            except OSError:
                return
            while term in self._inbuf:
                raw, _, self._inbuf = self._inbuf.partition(term)
                command = raw.decode("ascii", "replace").strip()
                self.commands.append(command)
                if command.startswith("dut "):
                    inner = command[4:]
                    self._to_host([P.passthrough_line(inner), P.READY])
                    self._to_dut(inner)
                else:
                    self._to_host([P.INTERFACE_NAME, P.READY] if command == "name"
                                  else [P.READY])

    def _from_dut(self) -> None:
        buf = b""
        while not self._closing.is_set():
            try:
                r, _, _ = select.select([self.dut_fd], [], [], 0.05)
                if not r:
                    continue
                buf += os.read(self.dut_fd, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            while b"\n" in buf:
                raw, _, buf = buf.partition(b"\n")
                line = raw.decode("ascii", "replace").replace("\r", "")
                if self.before_line is not None:
                    self.before_line()
                self._to_host([P.DUT_PREFIX + line])


class EnergyBench:
    """The reference firmware (an energy-mode build) on qemu behind an emulated interface
    board, its timestamp line into an emulated LPM01A: ``port`` for the host's DUT driver,
    ``meter_url`` for its meter."""

    def __init__(self, elf: str | Path, profile: LoadProfile | float = WATTS,
                 lag_s: float = LAG_S) -> None:
        self.elf, self.profile, self.lag_s = Path(elf), profile, lag_s
        self.shield: Lpm01aEmulator | None = None
        self.board: Any = None
        self.line: TimestampLine | None = None
        self.relay: InterfaceRelay | None = None

    @property
    def port(self) -> str:
        return self.relay.path if self.relay else ""

    @property
    def meter_url(self) -> str:
        return f"lpm01a://{self.shield.path}?{METER_QUERY}" if self.shield else ""

    def start(self) -> EnergyBench:
        from edgeperf_firmware.qemu import QemuBoard

        try:
            self.shield = Lpm01aEmulator(self.profile, lag_s=self.lag_s).start()
            self.board = QemuBoard(self.elf).start(run=False)
            self.line = TimestampLine(self.board.line_fd,
                                      falling_to(self.shield, device_clock=True), paced=True)
            self.relay = InterfaceRelay(self.board.port_fd, self.line.settle).start()
            self.board.cont()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for part in (self.relay, self.line, self.board, self.shield):
            if part is not None:
                part.close()

    def __enter__(self) -> EnergyBench:
        return self.start() if self.relay is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
