"""PowerTrace: the samples of one measurement, on the host clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
