"""ST X-NUCLEO-LPM01A PowerShield (MLPerf Tiny's energy monitor), over its USB serial port.

Commands are ASCII lines; the shield answers ``PowerShield > ack <command>`` or ``PowerShield >
error ...`` followed by an ``Error detail:`` line. The driver takes host control (``htc``),
configures ``freq``, ``acqtime 0`` (until stopped), ``output current|energy``, ``format``,
``trigsrc sw``, ``eventsrc d7 fal`` (the DUT's GPIO marks), ``volt`` and ``pwr on``, then
``start``; ``stop`` ends the stream with ``Acquisition completed``; ``hrc`` releases it.

Two data formats:

* ``ascii_dec``: one sample a line, mantissa and power of ten: ``6409-07`` = 6409e-7 (A, or J
  in energy mode); metadata lines (``TimeStamp: 001s 000ms, buff 00%``, events, errors)
  between them. Up to 10 kHz.
* ``bin_hexa``: two bytes a sample, big-endian: the high nibble a negative power of 16, the
  other 12 bits the mantissa: ``52A0`` = 0x2A0 x 16^-5 = 640.9 uA. A byte 0xF0 where a sample
  would start opens a metadata record: a type byte, its payload, then ``FF FF``. Up to 100 kHz.

Timing: samples are evenly spaced on the shield's own clock, so sample k's host time is
t0 + k x period. t0 is fitted from when data arrives: a sample cannot reach the host before
it was taken, so the earliest arrivals (the lower envelope of arrival - k x period) bound it;
the rate is fitted the same way from the start and the end of the stream. The bound left is
the serial link's latency (well under a millisecond for USB CDC). GPIO events (``eventsrc``)
are kept with their sample index: on the shield's timeline they need no host clock at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeperf.power.meter import Meter, MeterError, MeterURL, PowerTrace, WallAnchor, host_ns

FREQS = {"100k": 100_000, "50k": 50_000, "20k": 20_000, "10k": 10_000, "5k": 5_000,
         "2k": 2_000, "1k": 1_000, "500": 500, "200": 200, "100": 100, "50": 50, "20": 20,
         "10": 10, "5": 5, "2": 2, "1": 1}
PROMPT = "PowerShield > "
MD_START = 0xF0
# metadata record types: F1-F5 as the STM32-LPM01-XN firmware sends them (the same codes that
# drivers written against real shields decode: error and info text, a 4-byte ms timestamp with
# a buffer-load byte, end of acquisition, overcurrent); F6, a GPIO event with its sample index,
# is the emulator's rendering of ``eventsrc`` and is not confirmed on a real shield
MD_ERROR, MD_INFO, MD_TIMESTAMP, MD_END, MD_OVERCURRENT = 0xF1, 0xF2, 0xF3, 0xF4, 0xF5
MD_EVENT = 0xF6
MD_SIZES = {MD_TIMESTAMP: 5, MD_END: 0, MD_EVENT: 5}  # fixed payloads; others end at FF FF


def parse_ascii_value(text: str) -> float:
    """``6409-07`` -> 6409e-7 (the decimal string parsed once, so exactly the nearest double)."""
    t = text.strip()
    if len(t) < 4 or t[-3] not in "+-" or not t[:-3].isdigit() or not t[-2:].isdigit():
        raise ValueError(f"not a PowerShield ascii_dec sample: {text!r}")
    return float(f"{t[:-3]}e{t[-3]}{t[-2:]}")


def format_ascii_value(value: float) -> str:
    """The inverse, as the shield prints it: a 4-digit mantissa and a 2-digit exponent."""
    if value <= 0:
        return "0000+00"
    e = int(np.floor(np.log10(value))) - 3
    m = int(round(value / 10.0 ** e))
    if m > 9999:
        m, e = int(round(m / 10)), e + 1
    return f"{m:04d}{'-' if e < 0 else '+'}{abs(e):02d}"


def decode_bin_sample(hi: int, lo: int) -> float:
    """Two bytes of bin_hexa: (mantissa 12 bits) x 16^-(high nibble), exact in a double."""
    return ((hi & 0x0F) << 8 | lo) * 16.0 ** -(hi >> 4)


def encode_bin_sample(value: float) -> bytes:
    """The largest power of 16 (0..14) that keeps the mantissa within 12 bits."""
    if value <= 0:
        return b"\x00\x00"
    p = 14
    while p > 0 and round(value * 16.0 ** p) > 0x0FFF:
        p -= 1
    m = min(0x0FFF, int(round(value * 16.0 ** p)))
    return bytes([(p << 4) | (m >> 8), m & 0xFF])


@dataclass
class Metadata:
    kind: int  # MD_* for binary records; 0 for an ascii line
    payload: bytes = b""
    text: str = ""
    sample_index: int = 0  # samples received before it

    @property
    def timestamp_ms(self) -> int | None:
        if self.kind == MD_TIMESTAMP and len(self.payload) >= 4:
            return int.from_bytes(self.payload[:4], "big")
        if self.text.startswith("TimeStamp:"):
            parts = self.text.replace(",", " ").split()
            try:
                return int(parts[1].rstrip("s")) * 1000 + int(parts[2].rstrip("ms"))
            except (IndexError, ValueError):
                return None
        return None


@dataclass
class StreamParser:
    """Incremental parser of the acquisition stream in either format."""

    binary: bool
    values: list[float] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)
    done: bool = False
    _buf: bytearray = field(default_factory=bytearray)
    _started: bool = False  # the blank line that ends the start ack precedes binary data

    def feed(self, data: bytes) -> None:
        self._buf += data
        if self.binary:
            self._feed_binary()
        else:
            self._feed_ascii()

    def _line(self, text: str) -> None:
        text = text.strip().replace(PROMPT.strip(), "").strip()
        if not text:
            return
        try:
            self.values.append(parse_ascii_value(text))
            return
        except ValueError:
            pass
        if "Acquisition completed" in text:
            self.done = True
        self.metadata.append(Metadata(0, text=text, sample_index=len(self.values)))

    def _feed_ascii(self) -> None:
        while b"\n" in self._buf:
            i = self._buf.index(b"\n")
            line = bytes(self._buf[:i]).decode("ascii", "replace")
            del self._buf[:i + 1]
            self._line(line)

    def _feed_binary(self) -> None:
        b = self._buf
        if not self._started:
            while b[:1] in (b"\r", b"\n"):  # 0x0D0A is no sample (3338 A)
                del b[:1]
            if not b:
                return
            self._started = True
        i = 0
        while True:
            if self.done:  # after the end record the shield speaks text again
                del b[:i]
                self.binary = False
                self._feed_ascii()
                return
            if len(b) - i < 2:
                break
            if b[i] == MD_START:
                kind = b[i + 1]
                size = MD_SIZES.get(kind)
                if size is not None:
                    if len(b) - i < 2 + size + 2:
                        break
                    payload = bytes(b[i + 2:i + 2 + size])
                    end = i + 2 + size + 2
                else:
                    j = b.find(b"\xff\xff", i + 2)
                    if j < 0:
                        break
                    payload, end = bytes(b[i + 2:j]), j + 2
                self.metadata.append(Metadata(kind, payload, sample_index=len(self.values)))
                if kind == MD_END:
                    self.done = True
                i = end
                continue
            self.values.append(decode_bin_sample(b[i], b[i + 1]))
            i += 2
        del b[:i]


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
        events = [m for m in p.metadata if m.kind == MD_EVENT or m.text.startswith("Event")]
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

    @property
    def events(self) -> list[Metadata]:
        p = self._parser
        return [m for m in (p.metadata if p else []) if m.kind == MD_EVENT
                or m.text.startswith("Event")]

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
