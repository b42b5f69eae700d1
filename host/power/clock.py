"""The host clock every PowerTrace is stamped with, and its anchor to wall time.

The host clock is ``time.monotonic_ns()`` (CLOCK_MONOTONIC on Linux): it never jumps when NTP
steps the wall clock during a run, and ClockSync maps the device's clock onto it. Wall-clock
times (power_begin/power_end, spl.txt) are derived once, through a ``WallAnchor`` read at the
start of a measurement, so a trace converts to wall time and back without rounding drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


def host_ns() -> int:
    """The host clock every PowerTrace is stamped with."""
    return time.monotonic_ns()


@dataclass(frozen=True)
class WallAnchor:
    """wall_ns - host_ns, read with the two clock reads bracketed as tightly as possible."""

    offset_ns: int
    uncertainty_ns: int

    @classmethod
    def now(cls, tries: int = 8) -> WallAnchor:
        best: tuple[int, int] | None = None
        for _ in range(tries):
            a = host_ns()
            w = time.time_ns()
            b = host_ns()
            if best is None or b - a < best[1]:
                best = (w - (a + b) // 2, b - a)
        assert best is not None
        return cls(best[0], best[1] // 2 + 1)

    def to_wall_ns(self, host: int) -> int:
        return int(host) + self.offset_ns

    def to_host_ns(self, wall: int) -> int:
        return int(wall) - self.offset_ns
