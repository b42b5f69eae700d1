"""ClockSync: where the device's clock stands against the host's, and how well we know it.

One exchange is: read the host clock (h0), ask the agent for its clock (``clock`` op: the
device's perf_counter_ns, the clock the QueryLog is stamped with), read the host clock
again (h1). The device read its clock somewhere between h0 and h1, so the offset
host - device lies in [h0 - d, h1 - d]: half the round trip is a hard bound, not a guess.

A burst keeps the ``keep`` exchanges with the shortest round trips (the ones least delayed
by scheduling) and intersects their intervals, allowing for drift across the burst. The
offset is the middle of the intersection and the uncertainty its half-width plus the two
clocks' resolutions; this is never more than half the shortest round trip.

On a byte-rate-limited link (a UART at 115200 baud moves 11.5 bytes a millisecond) the
request cannot reach the device before its last byte does, nor the reply leave it faster
than the wire allows: given the link's rate, each interval is narrowed by the frames' wire
time, which is what makes a 2 ms bound reachable over serial.

A sync before and one after the run give the drift; ``ClockMap`` maps device ns to host ns
in between, with an uncertainty interpolated between the two syncs' (and growing by an
assumed worst-case drift outside them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgeperf.power.clock import host_ns

if TYPE_CHECKING:
    from edgeperf.run.client import AgentClient

MAX_DRIFT_PPM = 200.0  # crystals are specified to +-50..100 ppm; allowance beyond measured


@dataclass
class Exchange:
    h0: int
    h1: int
    device: int
    req_bytes: int = 0
    reply_bytes: int = 0

    @property
    def rtt(self) -> int:
        return self.h1 - self.h0


@dataclass
class SyncPoint:
    """offset = host - device at device time ``device_ns``, known to +-``uncertainty_ns``."""

    device_ns: int
    offset_ns: int
    uncertainty_ns: int
    rtt_min_ns: int
    rtt_median_ns: int
    exchanges: int
    kept: int
    method: str  # "intersection" | "min-rtt"
    wire_ns: int = 0  # wire time subtracted per exchange (byte-rate-limited links)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ClockSync:
    """Bursts of ``clock`` exchanges with the agent.

    ``host_clock`` is the clock the device is mapped onto (default: the host clock of every
    PowerTrace); ``link_bytes_per_s`` the link's wire rate when it is a bottleneck (a UART:
    baud / 10), else None.
    """

    def __init__(self, client: AgentClient, *, exchanges: int = 32, keep: int = 8,
                 host_clock: Callable[[], int] = host_ns,
                 link_bytes_per_s: float | None = None,
                 host_resolution_ns: int | None = None,
                 device_resolution_ns: int | None = None) -> None:
        if keep < 1 or exchanges < keep:
            raise ValueError("ClockSync needs 1 <= keep <= exchanges")
        self.client = client
        self.exchanges = exchanges
        self.keep = keep
        self.host_clock = host_clock
        self.link_bytes_per_s = link_bytes_per_s
        if host_resolution_ns is None:
            host_resolution_ns = max(1, int(round(time.get_clock_info("monotonic").resolution
                                                  * 1e9)))
        self.host_resolution_ns = host_resolution_ns
        if device_resolution_ns is None:
            clk = (client.info or {}).get("clock") or {}
            device_resolution_ns = int(clk.get("resolution_ns") or 1)
        self.device_resolution_ns = device_resolution_ns

    def exchange(self) -> Exchange:
        c = self.client
        # a link that wraps each message (a serial line's reliable layer) says how many bytes
        # it adds at least; they cross the wire too
        extra = int(getattr(c.link, "frame_overhead_bytes", 0))
        sent, received = c.bytes_sent, c.bytes_received
        h0 = self.host_clock()
        reply = c.clock()
        h1 = self.host_clock()
        return Exchange(h0, h1, int(reply["monotonic_ns"]), c.bytes_sent - sent + extra,
                        c.bytes_received - received + extra)

    def sync(self) -> SyncPoint:
        """One burst; returns the offset at the middle of the burst, with its bound."""
        self.exchange()  # warm the path (page faults, first-use allocations)
        xs = [self.exchange() for _ in range(self.exchanges)]
        return estimate(xs, self.keep, self.link_bytes_per_s,
                        self.host_resolution_ns + self.device_resolution_ns)


def _wire_ns(nbytes: int, rate: float | None) -> int:
    return int(nbytes * 1e9 / rate) if rate else 0


def estimate(xs: list[Exchange], keep: int, link_bytes_per_s: float | None = None,
             resolution_ns: int = 2) -> SyncPoint:
    """The offset bound from exchanges (see the module docstring)."""
    if not xs:
        raise ValueError("no clock exchanges to estimate from")
    rtts = sorted(x.rtt for x in xs)
    best = sorted(xs, key=lambda x: x.rtt)[:keep]
    ref = sorted(x.device for x in best)[len(best) // 2]
    wire = 0
    lo, hi = -(1 << 62), 1 << 62
    for x in best:
        w_req = _wire_ns(x.req_bytes, link_bytes_per_s)
        w_rep = _wire_ns(x.reply_bytes, link_bytes_per_s)
        if w_req + w_rep >= x.rtt:  # the stated rate is faster than this link: do not narrow
            w_req = w_rep = 0
        wire = max(wire, w_req + w_rep)
        drift = int(abs(x.device - ref) * MAX_DRIFT_PPM * 1e-6)
        # offset at device time ``ref``: the interval of this exchange, widened for drift
        lo = max(lo, x.h0 + w_req - x.device - drift)
        hi = min(hi, x.h1 - w_rep - x.device + drift)
    if lo <= hi:
        offset = (lo + hi) // 2
        unc = (hi - lo + 1) // 2 + resolution_ns
        method = "intersection"
    else:  # inconsistent intervals (a clock stepped mid-burst): fall back to the best one
        x = best[0]
        offset = (x.h0 + x.h1) // 2 - x.device
        unc = x.rtt // 2 + resolution_ns
        ref = x.device
        method = "min-rtt"
    return SyncPoint(device_ns=ref, offset_ns=offset, uncertainty_ns=unc, rtt_min_ns=rtts[0],
                     rtt_median_ns=rtts[len(rtts) // 2], exchanges=len(xs), kept=len(best),
                     method=method, wire_ns=wire)


@dataclass
class ClockMap:
    """Device ns -> host ns from one or two SyncPoints."""

    before: SyncPoint
    after: SyncPoint | None = None

    @property
    def drift_ppm(self) -> float:
        a, b = self.before, self.after
        if b is None or b.device_ns == a.device_ns:
            return 0.0
        return (b.offset_ns - a.offset_ns) / (b.device_ns - a.device_ns) * 1e6

    def offset_at(self, device_ns: int) -> int:
        a = self.before
        return a.offset_ns + int(round((int(device_ns) - a.device_ns) * self.drift_ppm * 1e-6))

    def to_host(self, device_ns: int) -> int:
        return int(device_ns) + self.offset_at(device_ns)

    def uncertainty_ns(self, device_ns: int) -> int:
        """The bound at ``device_ns``: interpolated between two syncs (the line through two
        bounded points stays within the interpolated bound), growing at MAX_DRIFT_PPM
        beyond them, or from a single sync."""
        d = int(device_ns)
        a, b = self.before, self.after
        if b is None:
            return a.uncertainty_ns + math.ceil(abs(d - a.device_ns) * MAX_DRIFT_PPM * 1e-6)
        if a.device_ns <= d <= b.device_ns and b.device_ns > a.device_ns:
            f = (d - a.device_ns) / (b.device_ns - a.device_ns)
            return math.ceil(a.uncertainty_ns * (1 - f) + b.uncertainty_ns * f)
        near = a if abs(d - a.device_ns) <= abs(d - b.device_ns) else b
        span = max(1, b.device_ns - a.device_ns)
        slope_unc = (a.uncertainty_ns + b.uncertainty_ns) / span  # drift estimate's error
        return near.uncertainty_ns + math.ceil(abs(d - near.device_ns) * slope_unc)

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before.to_dict(),
                "after": self.after.to_dict() if self.after else None,
                "drift_ppm": self.drift_ppm}
