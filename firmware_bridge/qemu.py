"""The reference firmware on qemu's mps2-an385: a board whose UART is a pseudo-terminal.

::

    qemu-system-arm -M mps2-an385 -nodefaults -display none -monitor none \\
        -kernel firmware.elf -serial pty -serial pty \\
        -icount shift=6,align=off,sleep=on -S -qmp unix:SOCKET,server=on,wait=off

* ``-icount shift=6``: every guest instruction advances the virtual clock by 2**6 = 64 ns
  (15.6 MIPS, a Cortex-M3 of that class), and the APB timers count on that clock. The
  instructions of an inference are the same on every run, so the ``m-lap-us`` figures are
  exactly reproducible, whatever the host's load. ``sleep=on``: while the firmware waits for
  input in WFI the virtual clock follows real time, and qemu sleeps instead of spinning.
* UART0 (the first ``-serial``) carries the protocol; UART1 (the second) carries the
  timestamp line's edges (timestamp_line.py). qemu's pty chardev drops output while no one
  holds the pty open, so the board starts paused (``-S``), the harness opens both ptys (raw,
  no echo: an echoing tty would feed the firmware its own output) and holds them open for
  its lifetime, then continues the CPU over QMP. A client that opens ``port`` before
  ``cont()`` (``start(run=False)``) reads the boot banner; pyserial flushes a port's queued
  input when it opens it, so one opening later sees what follows (``reset()`` boots again).
  The pty paths come from QMP's ``query-chardev``. qemu notices that a
  pty has a reader by polling once a second from its start, and reads no input before
  then, so ``cont()`` waits until that poll has passed (PTY_POLL_S after the launch): the
  board answers its first command at once.
* The virtual clock runs about 100x ahead of real time (an inference of 51 ms takes half a
  millisecond). ``realtime=True`` adds ``align=on``, qemu's pacing of the virtual clock to
  the host's, for a host that times the board by its own clock (the MLCommons runner's 10 s
  check); it lags the device clock by about 2 %.
* ``close()`` quits over QMP and waits; the process is also told to die with its parent
  (PR_SET_PDEATHSIG), so a killed test run leaves no qemu behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tty
from pathlib import Path

from edgeperf import errors

QEMU = "qemu-system-arm"
MACHINE = "mps2-an385"
ICOUNT_SHIFT = 6  # 64 ns of virtual time per instruction
PTY_POLL_S = 1.1  # qemu's char-pty polls for a reader every 1 s while it has none
INSTALL = ("run scripts/test.sh, which installs it, or: apt-get install qemu-system-arm "
           "gcc-arm-none-eabi libnewlib-arm-none-eabi")


class QemuError(errors.EdgeperfError, RuntimeError):
    """qemu cannot run the board; the message names what failed and what to check."""


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuError(f"{QEMU} is not installed, so the qemu board cannot start; {INSTALL}")
    return path


def _die_with_parent() -> None:  # in the child, before exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Qmp:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path: Path, timeout: float = 10.0,
                 proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if proc is not None and proc.poll() is not None:
                    raise QemuError(f"qemu exited (status {proc.returncode}) before its QMP "
                                    "socket opened") from None
                if time.monotonic() > deadline:
                    raise QemuError(f"qemu's QMP socket {path} did not open within "
                                    f"{timeout:.0f} s") from None
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self._buf = b""
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self._buf:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise QemuError("qemu closed its QMP socket")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, **arguments: object) -> object:
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QemuError(f"QMP {command}: {reply['error'].get('desc', reply)}")

    def close(self) -> None:
        self.sock.close()


class QemuBoard:
    """qemu-system-arm running ``elf`` on mps2-an385. ``port`` is the protocol UART's pty,
    ``line_fd`` the timestamp line's (read by timestamp_line.TimestampLine)."""

    def __init__(self, elf: str | Path, *, icount_shift: int = ICOUNT_SHIFT,
                 realtime: bool = False) -> None:
        self.elf = Path(elf)
        self.icount_shift = icount_shift
        self.realtime = realtime
        self.proc: subprocess.Popen | None = None
        self.qmp: Qmp | None = None
        self.port = ""
        self.line_port = ""
        self._fds: list[int] = []
        self._tmp: str | None = None
        self._launched = 0.0
        self.log: Path | None = None

    @property
    def line_fd(self) -> int:
        return self._fds[1]

    @property
    def port_fd(self) -> int:
        """The protocol UART's pty as the harness holds it (raw, non-blocking), for a relay
        that stands between the board and its host (energy_bench.py)."""
        return self._fds[0]

    def command(self, socket_path: Path) -> list[str]:
        align = "on" if self.realtime else "off"
        return [qemu_binary(), "-M", MACHINE, "-nodefaults", "-display", "none",
                "-monitor", "none", "-kernel", str(self.elf), "-serial", "pty",
                "-serial", "pty", "-icount", f"shift={self.icount_shift},align={align},sleep=on",
                "-S", "-qmp", f"unix:{socket_path},server=on,wait=off"]

    def start(self, run: bool = True) -> QemuBoard:
        """Start qemu; with ``run=False`` the CPU stays stopped until ``cont()``, so a client
        can open ``port`` first (pyserial flushes what is queued when it opens a port: a
        banner printed before would be lost)."""
        if self.proc is not None:
            raise QemuError("this qemu board is already started")
        if not self.elf.is_file():
            raise QemuError(f"firmware {self.elf} does not exist; build it with: python -m "
                            "edgeperf_firmware.build")
        self._tmp = tempfile.mkdtemp(prefix="edgeperf-qemu-")
        sock = Path(self._tmp) / "qmp.sock"
        self._launched = time.monotonic()
        self.log = Path(self._tmp) / "qemu.log"  # not a pipe: nothing reads it while running
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command(sock), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)
        try:
            self.qmp = Qmp(sock, proc=self.proc)
            ptys = {c["label"]: c["filename"] for c in self.qmp.execute("query-chardev")
                    if str(c.get("filename", "")).startswith("pty:")}
            paths = [ptys.get(f"serial{i}", "")[len("pty:"):] for i in (0, 1)]
            if not all(paths):
                raise QemuError(f"qemu did not report its two serial ptys (got {ptys})")
            self.port, self.line_port = paths
            for path in paths:  # hold them open before the CPU runs: nothing is lost
                fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                tty.setraw(fd)
                self._fds.append(fd)
            if run:
                self.cont()
        except BaseException as exc:
            output = self._stop().strip()
            if isinstance(exc, Exception) and output:
                raise QemuError(f"qemu failed to start the board ({exc}); it said: "
                                f"{output}") from None
            raise
        return self

    def cont(self) -> None:
        """Let the CPU run (it boots: banner on ``port``, the first edge on the line), once
        qemu reads the ptys' input."""
        time.sleep(max(0.0, self._launched + PTY_POLL_S - time.monotonic()))
        self.qmp.execute("cont")

    def reset(self) -> None:
        """A reset of the board (the firmware boots again and prints its banner)."""
        self.qmp.execute("system_reset")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _stop(self) -> str:
        output = ""
        if self.proc is not None:
            if self.proc.poll() is None and self.qmp is not None:
                try:
                    self.qmp.execute("quit")
                except (QemuError, OSError):
                    pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            try:
                output = self.log.read_text(errors="replace")
            except OSError:
                pass
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        return output

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> QemuBoard:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m edgeperf_firmware.qemu [--mode energy] [--realtime]``: build the firmware,
    boot it, print the ports, serve until Ctrl-C."""
    import argparse

    from edgeperf_firmware.build import MODES, FirmwareBuildError, build

    ap = argparse.ArgumentParser(prog="python -m edgeperf_firmware.qemu",
                                 description=main.__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=MODES, default="performance")
    ap.add_argument("--realtime", action="store_true",
                    help="pace the virtual clock to the host's (icount align=on)")
    args = ap.parse_args(argv)
    try:
        fw = build(args.mode)
        board = QemuBoard(fw.elf, realtime=args.realtime).start()
    except (FirmwareBuildError, QemuError) as exc:
        print(f"edgeperf_firmware.qemu: {exc}", flush=True)
        return 1
    print(f"edgeperf: reference firmware ({fw.mode}, {fw.model_id}) on qemu {MACHINE}: "
          f"{board.port}; timestamp line on {board.line_port} (Ctrl-C to stop)", flush=True)
    try:
        while board.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
