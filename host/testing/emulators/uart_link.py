"""A Link slowed to a UART's byte rate, to rehearse ClockSync over serial without a serial line.

Each direction waits the wire time of the bytes it moves (8N1: baud / 10 bytes a second)
before passing them on, so request and reply frames arrive when a 115200-baud line would
deliver them. It models the wire's speed only: no line noise and no USB-serial buffering.
``bytes_per_s`` is what ClockSync reads to subtract the wire time.
"""

from __future__ import annotations

import time

from edgeperf.links.base import Link


class UartRateLink(Link):
    def __init__(self, inner: Link, baud: int = 115200) -> None:
        self.inner = inner
        self.baud = baud
        self.bytes_per_s = baud / 10
        self.name = f"{inner.describe()}@{baud}baud"

    def _wire(self, n: int) -> None:
        end = time.perf_counter() + n / self.bytes_per_s
        while time.perf_counter() < end:  # a sleep would overshoot by the scheduler's slack
            pass

    def send(self, data: bytes) -> None:
        self._wire(len(data))
        self.inner.send(data)

    def recv(self, n: int, timeout: float) -> bytes:
        data = self.inner.recv(n, timeout)
        self._wire(len(data))
        return data

    def close(self) -> None:
        self.inner.close()
