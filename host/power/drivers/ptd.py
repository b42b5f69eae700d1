"""PTDaemon (SPEC's power/temperature daemon, MLPerf's bridge to Yokogawa analysers), client side.

The protocol is text over TCP, one command and one reply line a time, lines ending in CRLF::

    Hello                 -> Hello, PTDaemon here!
    Identify              -> <model>,<...>,version=<x.y.z>-<...>
    RR                    -> Ranges,<amp auto>,<amp range>,<volt auto>,<volt range>
    SR,V,Auto | SR,V,<v>  -> Range V changed
    SR,A,Auto | SR,A,<a>  -> Range A changed
    Go,1000,0,<mark>      -> Starting untimed measurement, maximum 500000 samples at 1000ms ...
    RL                    -> Last <n> samples, then n lines "Time,...,Watts,...,PF,..."
    Stop                  -> Stopping untimed measurement
    anything refused      -> Error: <what>

MLPerf measures twice: a ranging run with automatic ranges, then a testing run with the
ranges fixed from the ranging maxima (volts: the maximum; amps: 1.1 x the maximum, as
power-dev's server does). ``PtdMeter`` does both when the session asks for the phases.

Samples come back one of two ways. With ``?logfile=PATH`` (PTDaemon started with ``-l PATH``
on a file this host can read: the same machine, or a shared directory) they are the log's
lines carrying this measurement's ``Mark``, which is how power-dev's server reads them; the
file is followed while the run goes on and read to the end after Stop, so a connection that
drops mid-run loses no sample. Otherwise they are read back with RL while the measurement
runs (every ``poll_s``; 0 reads them all after Stop), and a daemon that drops the connection
leaves the samples read so far. Their ``Time`` field is
the daemon's wall clock (UTC, as power-dev starts PTDaemon with TZ=UTC); it is placed on
the host clock through the host's wall clock, so PTDaemon's machine must share the host's
time (the same machine, or NTP as MLPerf requires). ``?clock_offset_ms=X`` corrects a known
offset (PTD clock - host clock).

Every command and reply is recorded with its host times in ``session_record`` (with the
phases' steps, the ranges set and, with ``?console=FILE``, PTDaemon's console output read
at close), from which power/powerdev.py writes power-dev's session files.
``?device_type=N`` declares PTDaemon's device number (power-dev's deviceType) for them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import numpy as np

from edgeperf.power import spl
from edgeperf.power.clock import WallAnchor
from edgeperf.power.meter import Meter, MeterError, MeterURL
from edgeperf.power.powerdev import SessionRecord
from edgeperf.power.trace import PowerTrace

DEFAULT_PORT = 8888
EOL = b"\r\n"
AMPS_HEADROOM = 1.1


class PtdError(MeterError):
    """PTDaemon refused a command, or the connection to it failed."""


class PtdClient:
    """One TCP connection to PTDaemon; ``cmd`` sends a line and returns the reply line."""

    def __init__(self, host: str, port: int, timeout: float = 10.0,
                 record: SessionRecord | None = None) -> None:
        self.where = f"PTDaemon at {host}:{port}"
        self.timeout = timeout
        self.log: list[tuple[str, str]] = []  # (command, reply), as power-dev's server.json
        self.record = record or SessionRecord(where=self.where)  # the same, with host times
        self._buf = b""
        self._lock = threading.RLock()
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise PtdError(f"{self.where}: cannot connect ({exc}); is PTDaemon running with "
                           f"-p {port}? ('edgeperf emulate ptd --port {port}' rehearses "
                           "without an analyser)") from None
        self.sock.settimeout(timeout)

    def _readline(self) -> str:
        while EOL not in self._buf:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise PtdError(f"{self.where}: no reply in {self.timeout:.0f} s") from None
            except OSError as exc:
                raise PtdError(f"{self.where}: connection lost ({exc})") from None
            if not data:
                raise PtdError(f"{self.where}: the daemon closed the connection")
            self._buf += data
        line, _, self._buf = self._buf.partition(EOL)
        return line.decode("utf-8", "replace")

    def cmd(self, command: str, *, check: bool = True) -> str:
        with self._lock:
            sent = time.time()
            try:
                try:
                    self.sock.sendall(command.encode() + EOL)
                except OSError as exc:
                    raise PtdError(f"{self.where}: connection lost sending {command!r} "
                                   f"({exc})") from None
                reply = self._readline()
            except PtdError as exc:
                self.record.message(command, sent, None, time.time(), str(exc))
                raise
            self.record.message(command, sent, reply, time.time())
            self.log.append((command, reply))
        if check and reply.startswith("Error"):
            raise PtdError(f"{self.where} answered {reply!r} to {command!r}")
        return reply

    def read_samples(self) -> list[str]:
        """RL: the samples not read yet, as PTDaemon's log lines (without Mark)."""
        with self._lock:
            head = self.cmd("RL")
            parts = head.split()
            if len(parts) < 2 or parts[0] != "Last" or not parts[1].isdigit():
                raise PtdError(f"{self.where} answered {head!r} to 'RL'; expected "
                               "'Last <n> samples'")
            return [self._readline() for _ in range(int(parts[1]))]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def parse_ranges(reply: str) -> dict[str, Any]:
    """``Ranges,<amp auto>,<amp range>,<volt auto>,<volt range>``."""
    p = reply.split(",")
    if len(p) < 5 or p[0] != "Ranges":
        return {"raw": reply}

    def setting(i: int) -> str:  # what SR puts back: the range as PTDaemon wrote it, or Auto
        try:
            return p[i + 1] if p[i] == "0" and float(p[i + 1]) > 0 else "Auto"
        except ValueError:
            return "Auto"

    return {"amps_auto": p[1] == "1", "amps": float(p[2]), "volts_auto": p[3] == "1",
            "volts": float(p[4]), "raw": reply, "amps_setting": setting(1),
            "volts_setting": setting(3)}


class PtdMeter(Meter):
    needs_ranging = True

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, interval_ms: int = 1000,
                 ranging: bool = True, poll_s: float = 1.0, timeout: float = 10.0,
                 clock_offset_ms: float = 0.0, volts: str | None = None,
                 amps: str | None = None, settle_s: float | None = None,
                 logfile: str | None = None, url: str = "", console: str | None = None,
                 device_type: int | None = None) -> None:
        self.host, self.port = host, port
        self.url = url or f"ptd://{host}:{port}"
        self.interval_ms = int(interval_ms)
        self.needs_ranging = ranging and volts is None and amps is None
        self.fixed = (volts, amps)
        self.poll_s = poll_s
        self.logfile = logfile
        self._log_pos = 0  # where this measurement's part of the log file begins
        self._log_tail = b""  # a line PTDaemon has not finished writing
        # an analyser settles after a range change (power-dev waits 10 s); by default two
        # periods before the workload and after it, so whole periods cover the window
        self.lead_s = self.settle_s = (2 * self.interval_ms / 1000 if settle_s is None
                                       else float(settle_s))
        self.clock_offset_ns = int(clock_offset_ms * 1e6)
        self.session_record = SessionRecord(where=f"PTDaemon at {host}:{port}",
                                            meter_url=self.url, console_path=console,
                                            device_type=device_type)
        self.client = PtdClient(host, port, timeout, self.session_record)
        self.session_record.note(f"connected to {self.client.where}; lead {self.lead_s:g} s "
                                 f"and settle {self.settle_s:g} s around each run")
        self.identity = ""
        self.initial_ranges: dict[str, Any] = {}
        self.ranges_set: dict[str, dict[str, str]] = {}
        self._lines: list[str] = []
        self._mark = ""
        self._phase = "testing"
        self._anchor = WallAnchor.now()
        self._error: str | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._running = False
        self._closed = False
        self._handshake()

    @classmethod
    def from_url(cls, u: MeterURL) -> PtdMeter:
        host, _, port = u.target.rpartition(":")
        if not host:
            host, port = u.target or "127.0.0.1", str(DEFAULT_PORT)
        try:
            return cls(host.strip("[]"), int(port),
                       interval_ms=int(u.get("interval_ms", "1000") or 1000),
                       ranging=u.get("ranging", "1") not in ("0", "no", "false"),
                       poll_s=float(u.get("poll_s", "1") or 1),
                       timeout=float(u.get("timeout", "10") or 10),
                       clock_offset_ms=float(u.get("clock_offset_ms", "0") or 0),
                       volts=u.get("volts"), amps=u.get("amps"),
                       settle_s=float(u.params["settle_s"]) if u.get("settle_s") else None,
                       logfile=u.get("logfile") or None, url=u.text,
                       console=u.get("console") or None,
                       device_type=int(u.params["device_type"]) if u.get("device_type")
                       else None)
        except ValueError as exc:
            raise MeterError(f"meter {u.text}: {exc}; options are interval_ms, ranging, "
                             "poll_s, timeout, clock_offset_ms, volts, amps, settle_s, "
                             "logfile, console, device_type") from None

    def _handshake(self) -> None:
        hello = self.client.cmd("Hello")
        if hello != "Hello, PTDaemon here!":
            self.client.close()
            raise PtdError(f"{self.client.where} is not PTDaemon: it answered {hello!r} to "
                           "'Hello'")
        self.identity = self.client.cmd("Identify")
        self.initial_ranges = parse_ranges(self.client.cmd("RR"))

    # ---------------------------------------------------------------- phases
    def configure_phase(self, phase: str, ranging: PowerTrace | None = None) -> None:
        self._phase = phase
        self.session_record.phase(phase, 0, "setting the ranges")
        if phase == "testing" and ranging is not None and len(ranging):
            v = float(np.nanmax(ranging.volts))
            a = float(np.nanmax(ranging.amps)) * AMPS_HEADROOM
            if not (v > 0 and a > 0):
                raise PtdError(f"{self.client.where}: the ranging run reported no volts/amps "
                               "maxima; cannot fix the testing ranges")
            self._set_ranges(f"{v:.6g}", f"{a:.6g}", phase)
        elif self.fixed != (None, None):
            self._set_ranges(self.fixed[0] or "Auto", self.fixed[1] or "Auto", phase)
        else:
            self._set_ranges("Auto", "Auto", phase)
            if phase == "ranging":  # power-dev sends it twice (its checker counts SR,A)
                self.client.cmd("SR,A,Auto")

    def _set_ranges(self, volts: str, amps: str, phase: str) -> None:
        self.client.cmd(f"SR,V,{volts}")
        self.client.cmd(f"SR,A,{amps}")
        self.ranges_set[phase] = {"volts": volts, "amps": amps}
        self.session_record.note(f"{phase}: ranges set to {volts} V, {amps} A")

    # ---------------------------------------------------------------- measurement
    def start(self, mark: str) -> None:
        self._lines = []
        self._error = None
        self._mark = mark
        if self.logfile is not None:
            try:
                self._log_pos = os.path.getsize(self.logfile)
            except FileNotFoundError:
                self._log_pos = 0  # PTDaemon creates it with the first sample
            except OSError as exc:
                raise PtdError(f"cannot read PTDaemon's log {self.logfile}: {exc}") from None
            self._log_tail = b""
        self._anchor = WallAnchor.now()
        self.client.cmd(f"Go,{self.interval_ms},0,{mark}")
        self.session_record.phase(self._phase, 1, f"measuring, mark {mark!r}")
        self._running = True
        self._stopping.clear()
        self._poller = None
        if self.poll_s > 0:  # poll_s=0: read everything after Stop, as power-dev does
            self._poller = threading.Thread(target=self._poll, name="ptd-poll", daemon=True)
            self._poller.start()

    def _read_new(self) -> list[str]:
        """The samples that arrived since the last read: RL, or the log file's new lines."""
        if self.logfile is None:
            return self.client.read_samples()
        try:
            with open(self.logfile, "rb") as f:
                f.seek(self._log_pos)
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PtdError(f"cannot read PTDaemon's log {self.logfile}: {exc}") from None
        self._log_pos += len(data)
        data = self._log_tail + data
        whole, _, self._log_tail = data.rpartition(b"\n")
        mark = f",Mark,{self._mark}"
        return [line for line in whole.decode("utf-8", "replace").splitlines()
                if line.rstrip("\r").endswith(mark)]

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                self._lines += self._read_new()
            except PtdError as exc:
                self._error = str(exc)
                return

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=self.client.timeout + 1)
        if self._error is not None:
            if self.logfile is not None:
                self._lines += self._read_new()  # the log has them all the same
            raise PtdError(f"the meter failed during the measurement: {self._error}")
        self.session_record.phase(self._phase, 2, "stopping")
        try:
            self.client.cmd("Stop")
        except PtdError as exc:
            self._error = str(exc)
            if self.logfile is not None:
                self._lines += self._read_new()
            raise
        try:
            self._lines += self._read_new()
        except PtdError as exc:
            self._error = str(exc)
            raise
        self.session_record.phase(self._phase, 3, f"stopped; {len(self._lines)} samples")

    def trace(self) -> PowerTrace:
        rows = []
        bad = 0
        order = spl.log_date_order(self._lines, time.time_ns())  # the samples are recent
        for line in self._lines:
            try:
                rows.append(spl.parse_line(line, order))
            except ValueError:
                bad += 1
        offset = self._anchor.offset_ns + self.clock_offset_ns
        tr = PowerTrace(np.array([r[0] for r in rows], np.int64) - np.int64(offset),
                        [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                        [r[4] for r in rows], interval_ns=self.interval_ms * 1_000_000,
                        meter=self.url, mark=self._mark, wall_offset_ns=offset,
                        # ms timestamps, plus how well the two machines' clocks agree
                        timing_uncertainty_ns=500_000 + self._anchor.uncertainty_ns)
        if bad:
            tr.notes.append(f"{bad} lines from PTDaemon were not samples and were skipped")
        return tr

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "identify": self.identity, "initial_ranges":
                self.initial_ranges, "ranges": self.ranges_set,
                "interval_ms": self.interval_ms, "messages": self.client.log[-200:]}

    def close(self) -> None:
        """Stop any measurement and put the ranges back as they were found."""
        if self._closed:
            return
        self._closed = True
        if self._running:
            try:
                self.stop()
            except MeterError:
                pass
        try:
            if self.initial_ranges.get("volts") is not None:
                v = self.initial_ranges
                self.client.cmd(f"SR,V,{v['volts_setting']}", check=False)
                self.client.cmd(f"SR,A,{v['amps_setting']}", check=False)
                self.session_record.note("ranges put back as they were found")
        except MeterError:
            pass
        self.client.close()
        rec = self.session_record
        if rec.console_path is not None and rec.console is None:
            try:
                with open(rec.console_path, encoding="utf-8", errors="replace") as f:
                    rec.console = f.read()
            except OSError as exc:
                rec.console_error = str(exc)

    def describe(self) -> str:
        return f"{self.url} ({self.identity.split(',')[0] if self.identity else 'PTDaemon'})"


def wait_for_port(host: str, port: int, timeout: float = 5.0) -> None:
    """Until something accepts connections on host:port (an emulator starting up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
