"""An emulated LPM01A PowerShield on a pseudo-terminal.

The driver opens the pty's path with pyserial exactly as it opens /dev/ttyACM0. The shield
answers the command set ``host/power/lpm01a.py`` uses, validates arguments the way the
firmware's help text describes (frequencies, the 10 kHz ascii_dec limit, host control
first), and streams samples in real time on its own clock: current (A) or energy per
period (J) from its load profile at the ``volt`` setting, in ascii_dec or bin_hexa, with a
timestamp record every second. ``gpio_falling_edge()`` plays the DUT pulling D7 low
(reported when ``eventsrc d7 fal`` is set), now or at a given host time (``at_ns``: a bench
that knows when the edge happened on the device's clock, energy_bench.py, places it there;
``sample_boundary_ns`` names the next sample's start); ``disconnect()`` plays a pulled cable.
``lag_s`` holds each sample back that long before it is sent (a shield's buffer), so an edge
played a little late still lands where it happened; ``stop`` sends everything up to now.

In ascii_dec an event is the line ``event NN ris`` (NN counting from 00), the spelling the
MLCommons Tiny runner matches (``event (\\d+) ris``, power_manager_lpm.py) and its JS220
adapter imitates; whether a real shield prints ``ris`` with ``eventsrc d7 fal`` is the
runner's assumption, not checked against hardware here.

The binary metadata records 0xF1 error, 0xF2 info, 0xF3 timestamp (4-byte ms, buffer load),
0xF4 end and 0xF5 overcurrent follow the codes that drivers written against real shields
decode; the GPIO event record (0xF6 with its sample index) and the ascii event and
overcurrent lines are this emulator's rendering and should be checked against a real shield.
``overcurrent()`` plays the DUT drawing more than the shield measures.
"""

from __future__ import annotations

import math
import os
import select
import threading

from edgeperf.power.clock import host_ns
from edgeperf.power.drivers.lpm01a_stream import (
    FREQS,
    MD_END,
    MD_EVENT,
    MD_OVERCURRENT,
    MD_START,
    MD_TIMESTAMP,
    PROMPT,
    encode_bin_sample,
    format_ascii_value,
)
from edgeperf.testing.emulators.load_profile import ConstantProfile, LoadProfile
from edgeperf.testing.pty_device import PtyDevice

VERSION = "1.0.2-edgeperf-emulated"


class Lpm01aEmulator(PtyDevice):
    thread_name = "lpm01a-emulator"

    def __init__(self, profile: LoadProfile | float = 0.01, lag_s: float = 0.0) -> None:
        super().__init__()
        self.lag_ns = int(lag_s * 1e9)
        self.profile = profile if isinstance(profile, LoadProfile) else ConstantProfile(profile)
        os.set_blocking(self.master, False)
        self.htc = False
        self.settings = {"freq": "100", "acqtime": "10", "output": "current",
                         "format": "ascii_dec", "trigsrc": "sw", "eventsrc": "", "volt": 3300,
                         "pwr": "auto", "trigdelay": "1m"}
        self.commands: list[str] = []
        self.acquiring = False
        self._t0 = 0
        self._k = 0  # samples sent
        self._events: list[int] = []
        self._n_events = 0  # event records sent this acquisition (ascii's NN)
        self.late_edges = 0  # edges placed after their sample had already been sent
        self._out = bytearray()
        self._lock = threading.Lock()
        self.edges: list[int] = []  # every falling edge recorded while acquiring (host ns)
        self.disconnected = False
        self._overcurrent = False

    def gpio_falling_edge(self, at_ns: int | None = None) -> None:
        """D7 pulled low now, or at host time ``at_ns`` (monotonic ns; one not yet streamed
        lands in the sample it falls in, one already streamed in the next sample sent)."""
        with self._lock:
            if self.acquiring and self.settings["eventsrc"] == "d7 fal":
                at = host_ns() if at_ns is None else int(at_ns)
                if self._k and at <= self._t0 + int((self._k - 1) * self._period()):
                    self.late_edges += 1  # its sample (the first starting at or after it) is sent
                self._events.append(at)
                self.edges.append(at)

    def _period(self) -> float:
        return 1_000_000_000 / FREQS[self.settings["freq"]]

    def sample_boundary_ns(self, at_ns: int | None = None) -> int | None:
        """The host time the first sample starting at or after ``at_ns`` (now) starts; None
        when not acquiring."""
        with self._lock:
            if not self.acquiring:
                return None
            at, period = host_ns() if at_ns is None else int(at_ns), self._period()
            k = max(0, math.ceil((at - self._t0) / period))
            while self._t0 + int(k * period) < at:  # sample k starts at t0 + int(k x period)
                k += 1
            while k and self._t0 + int((k - 1) * period) >= at:
                k -= 1
            return self._t0 + int(k * period)

    def overcurrent(self) -> None:
        """The DUT draws more than the shield measures: an overcurrent record in the stream."""
        with self._lock:
            if self.acquiring:
                self._overcurrent = True

    def disconnect(self) -> None:
        """The cable is pulled: nothing more is sent or read."""
        with self._lock:
            self.disconnected = True
            self.acquiring = False

    # ---------------------------------------------------------------- the loop
    def _loop(self) -> None:
        while not self._closing.is_set():
            wait = 0.002 if (self.acquiring or self._out) else 0.05
            try:
                r, _, _ = select.select([self.master], [], [], wait)
            except (OSError, ValueError):
                return
            if r:
                try:
                    data = os.read(self.master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    return
                if not self.disconnected:
                    self._inbuf += data
                    while b"\n" in self._inbuf:
                        raw, _, self._inbuf = self._inbuf.partition(b"\n")
                        self._command(raw.decode("ascii", "replace").strip())
            with self._lock:
                if self.acquiring:
                    self._stream()
                if self.disconnected:
                    self._out.clear()
                if self._out:
                    try:
                        n = os.write(self.master, bytes(self._out[:65536]))
                        del self._out[:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        return

    def _say(self, text: str) -> None:
        self._out += f"\r\n{PROMPT}{text}\r\n\r\n".encode()

    def _error(self, cmd: str, detail: str) -> None:
        self._out += f"\r\n{PROMPT}error {cmd}\r\n{PROMPT}Error detail: {detail}\r\n\r\n".encode()

    # ---------------------------------------------------------------- commands
    def _command(self, line: str) -> None:
        if not line:
            return
        with self._lock:
            self.commands.append(line)
            words = line.split()
            cmd, args = words[0], words[1:]
            s = self.settings
            if cmd == "htc":
                self.htc = True
                return self._say("ack htc")
            if cmd in ("echo", "powershield", "version", "status", "help"):
                reply = {"echo": " ".join(args), "powershield": "PowerShield present emulated",
                         "version": VERSION, "status": "ok", "help": "see UM2269"}[cmd]
                return self._say(f"ack {cmd} {reply}")
            if not self.htc:
                return self._error(line, "host control required: send 'htc' first")
            if cmd == "hrc":
                self.htc = False
                return self._say("ack hrc")
            if self.acquiring and cmd not in ("stop", "pwr", "targrst"):
                return self._error(line, "acquisition in progress: send 'stop' first")
            if cmd == "freq":
                if not args or args[0] not in FREQS:
                    return self._error(line, "value not in list {" + ", ".join(FREQS) + "}")
                s["freq"] = args[0]
            elif cmd == "acqtime":
                if not args:
                    return self._error(line, "missing value")
                s["acqtime"] = args[0]
            elif cmd == "output":
                if args[:1] not in (["current"], ["energy"]):
                    return self._error(line, "value not in list {current, energy}")
                s["output"] = args[0]
            elif cmd == "format":
                if args[:1] not in (["ascii_dec"], ["bin_hexa"]):
                    return self._error(line, "value not in list {ascii_dec, bin_hexa}")
                s["format"] = args[0]
            elif cmd == "trigsrc":
                if args[:1] not in (["sw"], ["d7"]):
                    return self._error(line, "value not in list {sw, d7}")
                s["trigsrc"] = args[0]
            elif cmd == "trigdelay":
                s["trigdelay"] = args[0] if args else "0"
            elif cmd == "eventsrc":
                if args not in (["d7", "fal"], ["d7", "ris"], ["none"]):
                    return self._error(line, "expected 'eventsrc d7 fal|ris' or 'none'")
                s["eventsrc"] = " ".join(args) if args != ["none"] else ""
            elif cmd == "volt":
                if args[:1] == ["get"]:
                    return self._say(f"ack volt get {s['volt']}m")
                try:
                    mv = int(args[0].rstrip("m"))
                except (IndexError, ValueError):
                    return self._error(line, "expected a value like 3300m")
                if not 1800 <= mv <= 3300:
                    return self._error(line, "value out of range [1800m; 3300m]")
                s["volt"] = mv
            elif cmd == "pwr":
                if args[:1] not in (["on"], ["off"], ["auto"], ["get"]):
                    return self._error(line, "value not in list {auto, on, off}")
                if args[0] == "get":
                    return self._say(f"ack pwr get {s['pwr']}")
                s["pwr"] = args[0]
            elif cmd == "start":
                if s["format"] == "ascii_dec" and FREQS[s["freq"]] > 10_000:
                    return self._error(line, "format ascii_dec is limited to 10kHz")
                self._say("ack start")
                self.acquiring = True
                self._t0 = host_ns()
                self._k = 0
                self._events = []
                self._n_events = 0
                self.profile.anchor(self._t0)
                return
            elif cmd == "stop":
                if not self.acquiring:
                    return self._error(line, "no acquisition in progress")
                self._stream(final=True)
                self.acquiring = False
                if s["format"] == "bin_hexa":
                    self._out += bytes([MD_START, MD_END, 0xFF, 0xFF])
                self._out += f"\r\n{PROMPT}Acquisition completed\r\n\r\n".encode()
                return
            else:
                return self._error(line, f"unknown command '{cmd}'")
            self._say(f"ack {line}")

    # ---------------------------------------------------------------- the stream
    def _stream(self, final: bool = False) -> None:
        s = self.settings
        f = FREQS[s["freq"]]
        period = 1_000_000_000 / f
        now = host_ns() - (0 if final else self.lag_ns)
        due = int((now - self._t0) // period)
        binary = s["format"] == "bin_hexa"
        volts = s["volt"] / 1000.0
        powered = s["pwr"] in ("on", "auto")
        events = sorted(self._events)
        while self._k < due:
            k = self._k
            a = self._t0 + int(k * period)
            b = self._t0 + int((k + 1) * period)
            if k % f == 0:  # a timestamp record every second of acquisition
                ms = k * 1000 // f
                if binary:
                    self._out += bytes([MD_START, MD_TIMESTAMP]) + ms.to_bytes(4, "big") + \
                        bytes([0, 0xFF, 0xFF])
                else:
                    self._out += f"TimeStamp: {ms // 1000:03d}s {ms % 1000:03d}ms, buff 00%\r\n" \
                        .encode()
            if self._overcurrent:
                self._overcurrent = False
                self._out += (bytes([MD_START, MD_OVERCURRENT, 0xFF, 0xFF]) if binary
                              else b"Overcurrent detected\r\n")
            while events and events[0] <= a:
                events.pop(0)
                self._events.pop(0)
                if binary:
                    self._out += bytes([MD_START, MD_EVENT]) + k.to_bytes(4, "big") + \
                        bytes([0x07, 0xFF, 0xFF])
                else:
                    self._out += f"event {self._n_events:02d} ris\r\n".encode()
                self._n_events += 1
            if not powered:
                value = 0.0
            elif s["output"] == "energy":
                value = self.profile.energy_j(a, b)
            else:
                value = self.profile.mean_watts(a, b) / volts
            if binary:
                self._out += encode_bin_sample(value)
            else:
                self._out += (format_ascii_value(value) + "\r\n").encode()
            self._k += 1


def serve(profile: LoadProfile) -> None:
    """``edgeperf emulate lpm01a``: print the pty path, serve until Ctrl-C."""
    emu = Lpm01aEmulator(profile).start()
    print(f"edgeperf: emulated LPM01A PowerShield on {emu.path} (use lpm01a://{emu.path}; "
          "Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
