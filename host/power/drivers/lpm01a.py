"""ST X-NUCLEO-LPM01A PowerShield (MLPerf Tiny's energy monitor), over its USB serial port.

Commands are ASCII lines; the shield answers ``PowerShield > ack <command>`` or ``PowerShield >
error ...`` followed by an ``Error detail:`` line. The driver takes host control (``htc``),
configures ``freq``, ``acqtime 0`` (until stopped), ``output current|energy``, ``format``,
``trigsrc sw``, ``eventsrc d7 fal`` (the DUT's GPIO marks), ``volt`` and ``pwr on``, then
``start``; ``stop`` ends the stream with ``Acquisition completed``; ``hrc`` releases it.

The stream's formats and their parser are in lpm01a_stream.py.

Timing: samples are evenly spaced on the shield's own clock, so sample k's host time is
t0 + k x period. t0 is fitted from when data arrives: a sample cannot reach the host before
it was taken, so the earliest arrivals (the lower envelope of arrival - k x period) bound it;
the rate is fitted the same way from the start and the end of the stream. The bound left is
the serial link's latency (well under a millisecond for USB CDC). GPIO events (``eventsrc``)
are kept with their sample index: on the shield's timeline they need no host clock at all.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import numpy as np

from edgeperf.power.clock import WallAnchor, host_ns
from edgeperf.power.drivers.lpm01a_stream import (
    FREQS,
    MD_ERROR,
    MD_EVENT,
    MD_OVERCURRENT,
    PROMPT,
    Metadata,
    StreamParser,
)
from edgeperf.power.meter import Meter, MeterError, MeterURL
from edgeperf.power.trace import PowerTrace

# A GPIO event in ascii_dec: ``event 00 ris`` as the MLCommons Tiny runner matches it
# (power_manager_lpm.py: ``event \d+ ris``); ``fal`` and ``Event ...`` are accepted too
EVENT_LINE = re.compile(r"^(event \d+ (ris|fal)\b|Event\b)", re.IGNORECASE)


class Lpm01aMeter(Meter):
    def __init__(self, port: str, *, freq: str = "1k", fmt: str = "ascii_dec",
                 output: str = "current", volt_mv: int = 3300, baud: int = 3686400,
                 timeout: float = 5.0, url: str = "", serial_port: Any = None) -> None:
        if freq not in FREQS:
            raise MeterError(f"LPM01A: freq {freq!r} is not one of {', '.join(FREQS)}")
        if fmt not in ("ascii_dec", "bin_hexa"):
            raise MeterError(f"LPM01A: format {fmt!r}; use ascii_dec or bin_hexa")
        if output not in ("current", "energy"):
            raise MeterError(f"LPM01A: output {output!r}; use current or energy")
        if fmt == "ascii_dec" and FREQS[freq] > 10_000:
            raise MeterError(f"LPM01A: ascii_dec carries at most 10 kHz; freq {freq} needs "
                             "format=bin_hexa")
        self.url = url or f"lpm01a://{port}"
        self.port_name, self.freq, self.fmt, self.output = port, freq, fmt, output
        self.volts = volt_mv / 1000.0
        self.timeout = timeout
        self.lead_s = self.settle_s = 2 / FREQS[freq] + 0.05
        if serial_port is None:
            try:
                import serial
            except ImportError:
                raise MeterError("LPM01A needs pyserial: pip install pyserial") from None
            try:
                serial_port = serial.Serial(port, baud, timeout=0.05, write_timeout=timeout)
            except (OSError, serial.SerialException) as exc:
                raise MeterError(f"LPM01A at {port}: cannot open the serial port ({exc}); "
                                 "check the cable and that no other program holds it") from None
        self.ser = serial_port
        self.version = ""
        self._parser: StreamParser | None = None
        self._arrivals: list[tuple[int, int]] = []  # (host ns, samples received so far)
        self._reader: threading.Thread | None = None
        self._running = False
        self._error: str | None = None
        self._pending = b""
        self._t_start = 0
        self._stop_deadline = 0.0
        self._anchor = WallAnchor.now()
        self._mark = ""
        self._configure(volt_mv)

    @classmethod
    def from_url(cls, u: MeterURL) -> Lpm01aMeter:
        if not u.target:
            raise MeterError("lpm01a needs a serial port: lpm01a:///dev/ttyACM0")
        try:
            return cls(u.target, freq=u.get("freq", "1k") or "1k",
                       fmt=u.get("format", "ascii_dec") or "ascii_dec",
                       output=u.get("output", "current") or "current",
                       volt_mv=int(str(u.get("volt", "3300")).rstrip("m") or 3300),
                       baud=int(u.get("baud", "3686400") or 3686400), url=u.text)
        except ValueError as exc:
            raise MeterError(f"meter {u.text}: {exc}") from None

    # ---------------------------------------------------------------- commands
    def _readline(self, deadline: float) -> str:
        while b"\n" not in self._pending:
            if time.monotonic() > deadline:
                raise MeterError(f"LPM01A at {self.port_name}: no answer in {self.timeout:.0f} s")
            try:
                self._pending += self.ser.read(max(1, self.ser.in_waiting))
            except OSError as exc:
                raise MeterError(f"LPM01A at {self.port_name}: {exc}") from None
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def command(self, cmd: str) -> list[str]:
        """Send one command; returns the lines between it and its ack. Raises on error."""
        try:
            self.ser.write(cmd.encode() + b"\n")
        except OSError as exc:
            raise MeterError(f"LPM01A at {self.port_name}: {exc}") from None
        deadline = time.monotonic() + self.timeout
        out: list[str] = []
        while True:
            line = self._readline(deadline).replace(PROMPT.strip(), "").strip()
            if not line:
                continue
            low = line.lower()
            if low.startswith("ack") and cmd.split()[0] in line:
                extra = line[3:].strip()[len(cmd):].strip()  # "ack version 1.0.2" -> 1.0.2
                return out + ([extra] if extra else [])
            if low.startswith("error"):
                detail = line
                try:
                    nxt = self._readline(deadline).replace(PROMPT.strip(), "").strip()
                    if nxt.lower().startswith("error detail"):
                        detail = nxt.split(":", 1)[1].strip()
                except MeterError:
                    pass
                raise MeterError(f"LPM01A at {self.port_name} refused {cmd!r}: {detail}")
            out.append(line)

    def _configure(self, volt_mv: int) -> None:
        self.command("htc")
        try:
            v = self.command("version")
            self.version = v[-1] if v else ""
        except MeterError:
            self.version = ""
        self.command(f"freq {self.freq}")
        self.command("acqtime 0")
        self.command(f"output {self.output}")
        self.command(f"format {self.fmt}")
        self.command("trigsrc sw")
        self.command("trigdelay 0")
        self.command("eventsrc d7 fal")
        self.command(f"volt {volt_mv}m")
        self.command("pwr on")

    # ---------------------------------------------------------------- acquisition
    def start(self, mark: str) -> None:
        self._mark = mark
        self._parser = StreamParser(binary=self.fmt == "bin_hexa")
        self._arrivals = []
        self._error = None
        self._anchor = WallAnchor.now()
        self._t_start = host_ns()
        self.command("start")
        if self._pending:  # stream bytes that came in with the ack
            self._parser.feed(self._pending)
            self._pending = b""
            self._arrivals.append((host_ns(), len(self._parser.values)))
        self._running = True
        self._reader = threading.Thread(target=self._read, name="lpm01a", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._parser is not None
        p = self._parser
        while not p.done:
            try:
                data = self.ser.read(max(1, self.ser.in_waiting))  # what is there, now
            except (OSError, ValueError) as exc:
                self._error = f"the serial port failed: {exc}"
                return
            if data:
                now = host_ns()
                p.feed(data)
                self._arrivals.append((now, len(p.values)))
            elif not self._running and time.monotonic() > self._stop_deadline:
                self._error = "no 'Acquisition completed' after stop"
                return

    def stop(self) -> None:
        if self._reader is None:
            return
        self._stop_deadline = time.monotonic() + self.timeout
        try:
            self.ser.write(b"stop\n")
        except OSError as exc:
            self._error = f"the serial port failed: {exc}"
        self._running = False
        self._reader.join(timeout=self.timeout + 1)
        self._reader = None
        if self._error:
            raise MeterError(f"LPM01A at {self.port_name}: {self._error}")
        for md in self._parser.metadata if self._parser else []:
            if md.kind == MD_ERROR or md.text.lower().startswith("error"):
                raise MeterError(f"LPM01A at {self.port_name} reported during the acquisition: "
                                 f"{md.text or md.payload.decode('ascii', 'replace')}")
            if md.kind == MD_OVERCURRENT or "overcurrent" in md.text.lower():
                raise MeterError(
                    f"LPM01A at {self.port_name} detected an overcurrent at sample "
                    f"{md.sample_index}: the board drew more than the shield measures (50 mA "
                    "in dynamic mode) and the energy figure is not valid; check the jumpers "
                    "and what the DUT powers from the shield")

    def _fit_t0(self, period_ns: float) -> tuple[float, float, int]:
        """(t0, period, bound): the lower envelope of arrival - k x period, with the rate
        fitted from the first and last thirds of the stream."""
        arr = [(t, k) for t, k in self._arrivals if k > 0]
        if not arr:
            return float(self._t_start), period_ns, 0
        t = np.array([a[0] for a in arr], np.float64)
        k = np.array([a[1] for a in arr], np.float64)
        third = max(1, len(arr) // 3)
        # the rate is fitted only over streams long enough for latency jitter to average out
        if len(arr) >= 6 and (t[-1] - t[0]) >= 10e9:
            r0 = t[:third] - k[:third] * period_ns
            r1 = t[-third:] - k[-third:] * period_ns
            i0, i1 = int(np.argmin(r0)), len(arr) - third + int(np.argmin(r1))
            if k[i1] > k[i0]:
                period_ns = (t[i1] - t[i0]) / (k[i1] - k[i0])
        resid = t - k * period_ns
        t0 = float(resid.min())
        bound = int(max(0.0, t0 - self._t_start))  # the data cannot predate 'start'
        return t0, period_ns, bound

    def trace(self) -> PowerTrace:
        p = self._parser
        if p is None or not p.values:
            return PowerTrace.empty(self.url)
        period = 1e9 / FREQS[self.freq]
        t0, period, bound = self._fit_t0(period)
        n = len(p.values)
        v = np.asarray(p.values, np.float64)
        ends = t0 + np.arange(1, n + 1) * period  # sample k was complete at t0 + (k+1) period
        if self.output == "energy":  # joules per period
            watts, t_ns, interval = v / (period / 1e9), ends, int(round(period))
            amps = watts / self.volts
        else:  # amps, instantaneous (mid-period)
            amps, t_ns, interval = v, ends - period / 2, 0
            watts = amps * self.volts
        tr = PowerTrace(np.round(t_ns).astype(np.int64), watts, np.full(n, self.volts), amps,
                        interval_ns=interval, meter=self.url, mark=self._mark,
                        wall_offset_ns=self._anchor.offset_ns,
                        timing_uncertainty_ns=bound + 100_000)
        stamps = [m for m in p.metadata if m.timestamp_ms is not None]
        events = self.events
        if events:
            tr.notes.append(f"GPIO events at samples {[m.sample_index for m in events][:20]}")
        if stamps:
            last = stamps[-1]
            expect = last.timestamp_ms * FREQS[self.freq] / 1000
            if abs(last.sample_index - expect) > max(2, 0.001 * expect):
                tr.notes.append(f"the shield's timestamp {last.timestamp_ms} ms came after "
                                f"{last.sample_index} samples, expected {expect:.0f}: "
                                "samples were lost")
        return tr

    def energy_samples(self) -> tuple[np.ndarray, float]:
        """(the shield's samples as it sent them, in J each with ``output=energy``; its own
        sample period in s): what MLPerf Tiny's energy figures count, on the shield's clock
        alone (the runner's ``samples / energy_sampling_freq``), with no host clock fit."""
        if self.output != "energy":
            raise MeterError(f"{self.url}: energy samples need output=energy (the shield "
                             f"sends {self.output})")
        values = self._parser.values if self._parser is not None else []
        return np.asarray(values, np.float64), 1.0 / FREQS[self.freq]

    @property
    def events(self) -> list[Metadata]:
        p = self._parser
        return [m for m in (p.metadata if p else []) if m.kind == MD_EVENT
                or EVENT_LINE.match(m.text)]

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "version": self.version, "freq": self.freq,
                "format": self.fmt, "output": self.output, "volts": self.volts}

    def close(self) -> None:
        if self._reader is not None:
            try:
                self.stop()
            except MeterError:
                pass
        try:
            self.command("pwr off")
            self.command("hrc")
        except MeterError:
            pass
        try:
            self.ser.close()
        except OSError:
            pass
