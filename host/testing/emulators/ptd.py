"""An emulated PTDaemon with an emulated analyser behind it, on a TCP port.

It speaks the protocol ``host/power/ptd.py`` describes, line for line, so the real client is
tested against it and users can rehearse a power run without an analyser
(``edgeperf emulate ptd --port 8888 --watts 5``).

The analyser averages its load profile over each update period (as a Yokogawa does) and
reports volts (``volts``, constant), amps (W / (V x PF)) and the power factor. A period's
mean is computed from the profile when the sample is read (RL), not when the period ends;
for a fixed profile that is the same thing, and it lets a test drive the profile by a run
whose window is known only once the run has ended.

With ``logfile`` it also writes every sample, as each period completes, to that file with
its ``Mark`` (PTDaemon's ``-l`` log, which power-dev's server reads the samples from).

With ``console`` it writes PTDaemon's console output there (what power-dev's server tees
into ptd_logs.txt), one ``MM-DD-YYYY HH:MM:SS.mmm: message`` line (UTC) an event: its
start, "Uncertainty checking for <model> is activated" when the identity names a Yokogawa
model, "Go with mark '<mark>'", "Completed test" on Stop, and "ERROR: ..." for each error
reply. Those are the lines MLCommons' power_checker reads; the wording of the first is the
emulator's own.

Fault injection for tests: ``errors`` maps a command prefix to the reply it gets (``{"Go":
"Error: analyzer not responding"}``); ``drop_after_s`` closes the connection that many
seconds after Go.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edgeperf.power.clock import WallAnchor, host_ns
from edgeperf.power.spl import format_line, format_time
from edgeperf.testing.emulators.load_profile import ConstantProfile, LoadProfile

IDENTITY = "EdgeperfEmulatedWT310,edgeperf emulated analyser (not an instrument),version=1.10.0-emu"
MAX_SAMPLES = 500000


@dataclass
class _Measurement:
    t0_ns: int
    interval_ns: int
    mark: str
    read: int = 0  # samples handed out so far
    logged: int = 0  # samples written to the log file so far
    stop_ns: int | None = None


@dataclass
class _State:
    volts_range: str = "Auto"
    amps_range: str = "Auto"
    measurement: _Measurement | None = None
    last: tuple[float, float, float, float] | None = None
    commands: list[str] = field(default_factory=list)
    dropped_ns: int | None = None  # when drop_after_s closed the connection


class PtdEmulator:
    def __init__(self, profile: LoadProfile | float = 5.0, *, host: str = "127.0.0.1",
                 port: int = 0, volts: float = 230.0, pf: float = 1.0,
                 errors: dict[str, str] | None = None, drop_after_s: float | None = None,
                 identity: str = IDENTITY, logfile: str | Path | None = None,
                 console: str | Path | None = None) -> None:
        self.profile = profile if isinstance(profile, LoadProfile) else ConstantProfile(profile)
        self.volts, self.pf = float(volts), float(pf)
        self.errors = dict(errors or {})
        self.drop_after_s = drop_after_s
        self.identity = identity
        self.state = _State()
        self.anchor = WallAnchor.now()
        self._lock = threading.Lock()
        self._srv = socket.create_server((host, port))
        self._srv.settimeout(0.2)
        self.host, self.port = self._srv.getsockname()[:2]
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._conns: list[socket.socket] = []
        self.logfile = Path(logfile) if logfile else None
        self._logger: threading.Thread | None = None
        self.console = Path(console) if console else None
        model = identity.split(",")[0]
        self._say(f"edgeperf emulated PTDaemon listening on {self.host}:{self.port}, "
                  f"analyser {model}")
        if model.startswith("Yokogawa"):
            self._say(f"Uncertainty checking for {model} is activated")

    def _say(self, message: str) -> None:
        """A line of PTDaemon's console output."""
        if self.console is not None:
            with open(self.console, "a", encoding="utf-8") as f:
                f.write(f"{format_time(self.anchor.to_wall_ns(host_ns()))}: {message}\n")

    @property
    def url(self) -> str:
        return f"ptd://{self.host}:{self.port}"

    # ---------------------------------------------------------------- server
    def start(self) -> PtdEmulator:
        self._thread = threading.Thread(target=self.serve_forever, name="ptd-emulator",
                                        daemon=True)
        self._thread.start()
        self._start_logger()
        return self

    def _start_logger(self) -> None:
        if self.logfile is not None and self._logger is None:
            self._logger = threading.Thread(target=self._log_loop, name="ptd-log", daemon=True)
            self._logger.start()

    def serve_forever(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _log_loop(self) -> None:
        """PTDaemon's ``-l`` log: each period's line as soon as the period is complete."""
        while not self._closing.wait(0.005):
            with self._lock:
                m = self.state.measurement
                if m is not None:
                    self._write_log(m)

    def _write_log(self, m: _Measurement) -> None:
        if self.logfile is None:
            return
        lines = [self._sample(m, k, m.mark) for k in range(m.logged + 1, self._ready(m) + 1)]
        m.logged += len(lines)
        if lines:
            with open(self.logfile, "a") as f:
                f.write("".join(line + "\n" for line in lines))

    def close(self) -> None:
        self._closing.set()
        for c in self._conns:
            _shut(c)
        self._srv.close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> PtdEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while not self._closing.is_set():
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    raw, _, buf = buf.partition(b"\n")
                    line = raw.decode("utf-8", "replace").strip()
                    if not line:
                        continue
                    reply = self.handle(line, conn)
                    try:
                        conn.sendall(reply.encode() + b"\r\n")
                    except OSError:
                        return

    # ---------------------------------------------------------------- commands
    def handle(self, line: str, conn: socket.socket | None = None) -> str:
        """One command line in, the reply text out (may span lines for RL)."""
        with self._lock:
            reply = self._handle(line, conn)
            m = self.state.measurement
            if reply.startswith("Error"):
                self._say(f"ERROR: {reply.removeprefix('Error').lstrip(': ')}")
            elif reply.startswith("Starting untimed measurement") and m is not None:
                self._say(f"Go with mark {m.mark!r}")
            elif reply == "Stopping untimed measurement":
                self._say("Completed test")
            return reply

    def _handle(self, line: str, conn: socket.socket | None) -> str:
        """The reply to one command line (handle logs it on the console)."""
        self.state.commands.append(line)
        for prefix, reply in self.errors.items():
            if line.startswith(prefix):
                return reply
        parts = line.split(",")
        cmd = parts[0]
        if cmd == "Hello":
            return "Hello, PTDaemon here!"
        if cmd == "Identify":
            return self.identity
        if cmd == "RR":
            return self._ranges()
        if cmd == "SR" and len(parts) == 3 and parts[1] in ("V", "A"):
            return self._set_range(parts[1], parts[2])
        if cmd == "Go":
            return self._go(parts, conn)
        if cmd == "Stop":
            m = self.state.measurement
            if m is None or m.stop_ns is not None:
                return "Error: no measurement to stop"
            m.stop_ns = host_ns()
            self._write_log(m)  # the last whole periods, before the reply
            return "Stopping untimed measurement"
        if cmd == "RL":
            return self._read_log()
        if cmd == "Watts":
            last = self.state.last
            return f"Watts,{last[0]:.6f}" if last else "Watts,-1"
        if cmd == "Uncertainty":
            return "Uncertainty,0.001000"
        return "Unknown command"

    def _ranges(self) -> str:
        s = self.state

        def one(r: str) -> str:
            return "1,-1.0" if r == "Auto" else f"0,{float(r):.6f}"

        return f"Ranges,{one(s.amps_range)},{one(s.volts_range)}"

    def _set_range(self, which: str, value: str) -> str:
        if value != "Auto":
            try:
                if float(value) <= 0:
                    raise ValueError
            except ValueError:
                return f"Error: invalid range '{value}' for {which}"
        if which == "V":
            self.state.volts_range = value
        else:
            self.state.amps_range = value
        return f"Range {which} changed"

    def _go(self, parts: list[str], conn: socket.socket | None) -> str:
        if len(parts) < 3:
            return "Error: Go needs <interval ms>,<samples>[,<mark>]"
        try:
            interval, count = int(parts[1]), int(parts[2])
        except ValueError:
            return "Error: invalid Go parameters"
        if interval < 10 or count != 0:
            return "Error: only untimed measurements (Go,<ms>,0,<mark>) with >= 10 ms periods"
        m = self.state.measurement
        if m is not None and m.stop_ns is None:
            return "Error: measurement already running"
        t0 = host_ns()
        self.profile.anchor(t0)
        self.state.measurement = _Measurement(t0, interval * 1_000_000,
                                              parts[3] if len(parts) > 3 else "")
        if self.drop_after_s is not None and conn is not None:
            threading.Timer(self.drop_after_s, self._drop, args=(conn,)).start()
        return (f"Starting untimed measurement, maximum {MAX_SAMPLES} samples at {interval}ms "
                "with 0 rampup samples")

    def _drop(self, conn: socket.socket) -> None:
        self.state.dropped_ns = host_ns()
        _shut(conn)

    @staticmethod
    def _ready(m: _Measurement) -> int:
        """How many whole periods the measurement has completed."""
        end = m.stop_ns if m.stop_ns is not None else host_ns()
        return min(MAX_SAMPLES, (end - m.t0_ns) // m.interval_ns)

    def _sample(self, m: _Measurement, k: int, mark: str | None) -> str:
        """Period k's line: the analyser's mean over it, stamped at its end."""
        t1 = m.t0_ns + k * m.interval_ns
        w = self.profile.mean_watts(t1 - m.interval_ns, t1)
        amps = w / (self.volts * self.pf) if self.volts > 0 and self.pf > 0 else 0.0
        self.state.last = (w, self.volts, amps, self.pf)
        return format_line(self.anchor.to_wall_ns(t1), w, self.volts, amps, self.pf, mark)

    def _read_log(self) -> str:
        m = self.state.measurement
        if m is None:
            return "Last 0 samples"
        ready = self._ready(m)
        lines = [self._sample(m, k, None) for k in range(m.read + 1, ready + 1)]
        m.read = max(m.read, ready)
        return "\r\n".join([f"Last {len(lines)} samples", *lines])


def _shut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def serve(port: int, profile: LoadProfile, host: str = "127.0.0.1", volts: float = 230.0,
          pf: float = 1.0, logfile: str | None = None, console: str | None = None) -> None:
    """``edgeperf emulate ptd``: serve until Ctrl-C."""
    emu = PtdEmulator(profile, host=host, port=port, volts=volts, pf=pf, logfile=logfile,
                      console=console)
    print(f"edgeperf: emulated PTDaemon listening on {emu.url} (Ctrl-C to stop)"
          + (f", logging samples to {logfile}" if logfile else ""), flush=True)
    emu._start_logger()
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
