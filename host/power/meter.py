"""The Meter contract: a power instrument driver that yields a PowerTrace on the host clock.

The host clock is ``time.monotonic_ns()`` (CLOCK_MONOTONIC on Linux): it never jumps when NTP
steps the wall clock during a run, and ClockSync maps the device's clock onto it. Wall-clock
times (power_begin/power_end, spl.txt) are derived once, through a ``WallAnchor`` read at the
start of a measurement, so a trace converts to wall time and back without rounding drift.

A driver is one file (``ptd.py``, ``lpm01a.py``, ...); ``open_meter(url)`` picks it by the
URL's scheme, the way pyserial maps ``loop://`` to ``protocol_loop``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

if TYPE_CHECKING:
    from edgeperf.power.clocksync import ClockMap
    from edgeperf.run.client import AgentClient


def host_ns() -> int:
    """The host clock every PowerTrace is stamped with."""
    return time.monotonic_ns()


class MeterError(Exception):
    """The meter failed or refused; the message names the meter, what it said and the fix."""


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


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


@dataclass
class PowerTrace:
    """Samples of one measurement, in time order.

    ``t_ns`` is host-clock time. With ``interval_ns > 0`` each sample is the mean power over
    (t - interval, t] (an analyser's averaging period, PTDaemon's 1 s); with 0 it is an
    instantaneous reading. Volts, amps and power factor are NaN where a meter does not report
    them. ``wall_offset_ns`` turns t_ns into wall time the same way the meter read it.
    """

    t_ns: np.ndarray
    watts: np.ndarray
    volts: np.ndarray | None = None
    amps: np.ndarray | None = None
    pf: np.ndarray | None = None
    interval_ns: int = 0
    meter: str = ""
    mark: str = ""
    wall_offset_ns: int = 0
    timing_uncertainty_ns: int = 0  # how well t_ns places a sample on the host clock
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.t_ns = np.asarray(self.t_ns, dtype=np.int64)
        n = len(self.t_ns)
        self.watts = np.asarray(self.watts, dtype=np.float64)
        self.volts = _nan(n) if self.volts is None else np.asarray(self.volts, np.float64)
        self.amps = _nan(n) if self.amps is None else np.asarray(self.amps, np.float64)
        self.pf = _nan(n) if self.pf is None else np.asarray(self.pf, np.float64)
        for name in ("watts", "volts", "amps", "pf"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PowerTrace: {name} has {len(getattr(self, name))} values "
                                 f"for {n} timestamps")

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def empty(cls, meter: str = "", interval_ns: int = 0) -> PowerTrace:
        return cls(np.zeros(0, np.int64), np.zeros(0), meter=meter, interval_ns=interval_ns)

    def span_ns(self) -> tuple[int, int] | None:
        """The host-clock span the samples describe (an interval meter's first sample
        reaches back one interval)."""
        if not len(self):
            return None
        return int(self.t_ns[0]) - self.interval_ns, int(self.t_ns[-1])

    def wall_ns(self) -> np.ndarray:
        return self.t_ns + np.int64(self.wall_offset_ns)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        p = prefix
        return {f"{p}t_ns": self.t_ns, f"{p}watts": self.watts, f"{p}volts": self.volts,
                f"{p}amps": self.amps, f"{p}pf": self.pf,
                f"{p}interval_ns": np.int64(self.interval_ns),
                f"{p}wall_offset_ns": np.int64(self.wall_offset_ns)}

    @classmethod
    def from_arrays(cls, z: Any, prefix: str = "", **kw: Any) -> PowerTrace:
        p = prefix
        return cls(z[f"{p}t_ns"], z[f"{p}watts"], z[f"{p}volts"], z[f"{p}amps"], z[f"{p}pf"],
                   interval_ns=int(z[f"{p}interval_ns"]),
                   wall_offset_ns=int(z[f"{p}wall_offset_ns"]), **kw)


class Meter(ABC):
    """start(mark) .. stop() brackets one measurement; trace() returns its samples.

    A meter that fails mid-measurement raises MeterError from stop() and still returns what
    it received from trace(). Meters that need ranging (PTDaemon) set ``needs_ranging`` and
    are told each phase through ``configure_phase`` before start().
    """

    url = ""
    needs_ranging = False
    lead_s = 0.0  # wait after start() before the workload, so samples precede the window
    settle_s = 0.0  # wait after the workload before stop(), so samples outlast the window

    @abstractmethod
    def start(self, mark: str) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def trace(self) -> PowerTrace: ...

    def configure_phase(self, phase: str, ranging: PowerTrace | None = None) -> None:
        """``phase`` is "idle", "ranging" or "testing"; ranging meters fix their ranges for
        testing from the ranging trace."""
        return None

    def bind_agent(self, client: AgentClient, clock: Callable[[], ClockMap]) -> None:
        """Meters sampled by the device agent (sysfs) talk through the run's AgentClient and
        map device time with the run's ClockSync (available once the run has ended)."""
        return None

    def info(self) -> dict[str, Any]:
        """What the instrument says about itself (identity, ranges, settings)."""
        return {"url": self.url}

    def close(self) -> None:
        """Release the instrument (sockets, serial ports); safe to call twice."""
        return None

    def describe(self) -> str:
        return self.url

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class MeterURL:
    scheme: str
    target: str  # host:port, a device path, a file, a sensor name
    params: dict[str, str]
    text: str

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.params.get(key, default)


def parse_meter_url(text: str) -> MeterURL:
    """``ptd://host:port``, ``lpm01a:///dev/ttyACM0``, ``joulescope``, ``sysfs``,
    ``csv:FILE``; options as a query string (``?interval_ms=100``)."""
    raw = text.strip()
    if not raw:
        raise MeterError("empty meter URL; pass ptd://HOST:PORT, lpm01a:///dev/ttyACM0, "
                         "joulescope, sysfs or csv:FILE")
    base, _, query = raw.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if ":" not in base:
        return MeterURL(base.lower(), "", params, raw)
    scheme, _, rest = base.partition(":")
    scheme = scheme.lower()
    if rest.startswith("//"):
        parts = urlsplit(f"{scheme}:{rest}")
        target = parts.netloc + parts.path if scheme == "ptd" else (parts.netloc or "") + parts.path
    else:
        target = rest
    return MeterURL(scheme, target, params, raw)


_DRIVERS = {"ptd": ("ptd", "PtdMeter"), "lpm01a": ("lpm01a", "Lpm01aMeter"),
            "joulescope": ("joulescope", "JoulescopeMeter"),
            "sysfs": ("sysfs", "SysfsMeter"), "csv": ("csv_file", "CsvMeter")}


def open_meter(url: str) -> Meter:
    """A Meter for ``url``; raises MeterError naming the accepted forms."""
    import importlib

    u = parse_meter_url(url)
    if u.scheme not in _DRIVERS:
        raise MeterError(f"unknown meter {url!r}; use ptd://HOST:PORT, lpm01a:///dev/ttyACM0, "
                         "joulescope, sysfs or csv:FILE")
    module, cls = _DRIVERS[u.scheme]
    mod = importlib.import_module(f"{__package__}.drivers.{module}")
    return getattr(mod, cls).from_url(u)
