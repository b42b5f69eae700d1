"""The LPM01A PowerShield's acquisition stream: its two data formats and an incremental
parser (drivers/lpm01a.py speaks the commands around it; the emulator writes the same bytes).

Two data formats:

* ``ascii_dec``: one sample a line, mantissa and power of ten: ``6409-07`` = 6409e-7 (A, or J
  in energy mode); metadata lines (``TimeStamp: 001s 000ms, buff 00%``, events, errors)
  between them. Up to 10 kHz.
* ``bin_hexa``: two bytes a sample, big-endian: the high nibble a negative power of 16, the
  other 12 bits the mantissa: ``52A0`` = 0x2A0 x 16^-5 = 640.9 uA. A byte 0xF0 where a sample
  would start opens a metadata record: a type byte, its payload, then ``FF FF``. Up to 100 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
