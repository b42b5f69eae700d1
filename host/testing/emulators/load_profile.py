"""Load profiles for the emulated instruments: power as a function of host-clock time.

A profile answers one question exactly: the mean power over an interval, so an emulated
analyser's averaged samples (and the true energy a test compares against) follow from the
profile analytically, with no sampling error of the emulator's own.

* ``ConstantProfile(w)``: w watts at all times.
* ``StepProfile``: piecewise constant, from (seconds, watts) steps; a file holds one
  ``SECONDS WATTS`` pair a line (``#`` comments), times relative to the measurement start.
* ``WindowProfile(idle, busy)``: ``busy`` watts inside a window, ``idle`` outside. The window
  can be set after the fact (``set_window``), so a profile can be driven by a run whose start
  and end are only known once it ended: the emulators evaluate the profile when a sample is
  read, not when it is taken.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from pathlib import Path

NS = 1_000_000_000


class LoadProfile:
    """Watts over host-clock nanoseconds."""

    def mean_watts(self, t0_ns: int, t1_ns: int) -> float:
        """Mean power over [t0, t1]; at t0 == t1 the power at that instant."""
        if t1_ns <= t0_ns:
            return self.energy_j(t0_ns, t0_ns + 1) * NS
        return self.energy_j(t0_ns, t1_ns) * NS / (t1_ns - t0_ns)

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        raise NotImplementedError

    def anchor(self, t0_ns: int) -> None:
        """Called when a measurement starts (profiles relative to the start use it)."""


class ConstantProfile(LoadProfile):
    def __init__(self, watts: float) -> None:
        self.watts = float(watts)

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        return self.watts * max(0, t1_ns - t0_ns) / NS


class StepProfile(LoadProfile):
    """Watts steps at given seconds after the anchor; before the first step, the first value;
    ``repeat`` makes it periodic."""

    def __init__(self, steps: list[tuple[float, float]], repeat: bool = False) -> None:
        if not steps:
            raise ValueError("a step profile needs at least one (seconds, watts) step")
        steps = sorted(steps)
        self.times_ns = [int(round(s * NS)) for s, _ in steps]
        self.watts = [float(w) for _, w in steps]
        if any(w < 0 for w in self.watts):
            raise ValueError("a load profile cannot draw negative watts")
        self.repeat = repeat
        self.period_ns = self.times_ns[-1] if repeat else 0
        if repeat and self.period_ns <= 0:
            raise ValueError("a repeating profile needs its last step after 0 s (the period)")
        self.t0_ns = 0

    @classmethod
    def from_file(cls, path: str | Path) -> StepProfile:
        steps = []
        repeat = False
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.lower() == "repeat":
                repeat = True
                continue
            parts = line.replace(",", " ").split()
            try:
                s, w = float(parts[0]), float(parts[1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{n}: expected 'SECONDS WATTS', got {line!r}") from None
            steps.append((s, w))
        return cls(steps, repeat=repeat)

    def anchor(self, t0_ns: int) -> None:
        self.t0_ns = int(t0_ns)

    def _energy_from_anchor(self, rel_ns: int) -> float:
        """Energy (J) from the anchor to anchor + rel_ns (rel_ns may be negative)."""
        if self.repeat:
            cycles, rem = divmod(rel_ns, self.period_ns)
            return cycles * self._flat(self.period_ns) + self._flat(rem)
        return self._flat(rel_ns)

    def _flat(self, rel_ns: int) -> float:
        if rel_ns <= 0:
            return self.watts[0] * rel_ns / NS
        total = 0.0
        prev_t, prev_w = 0, self.watts[0]
        i = bisect_right(self.times_ns, 0)
        # steps at or before 0 set the level at 0
        if i:
            prev_w = self.watts[i - 1]
        for t, w in zip(self.times_ns[i:], self.watts[i:], strict=True):
            if t >= rel_ns:
                break
            total += prev_w * (t - prev_t) / NS
            prev_t, prev_w = t, w
        return total + prev_w * (rel_ns - prev_t) / NS

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        return (self._energy_from_anchor(t1_ns - self.t0_ns)
                - self._energy_from_anchor(t0_ns - self.t0_ns))


class WindowProfile(LoadProfile):
    """``busy`` watts inside [start, end] (host ns), ``idle`` outside. Until a window is set,
    the profile draws ``idle``."""

    def __init__(self, idle: float, busy: float) -> None:
        self.idle, self.busy = float(idle), float(busy)
        self._lock = threading.Lock()
        self.windows: list[tuple[int, int, float]] = []

    def set_window(self, start_ns: int, end_ns: int, watts: float | None = None) -> None:
        """Draw ``watts`` (default: ``busy``) inside [start, end]; windows do not overlap."""
        with self._lock:
            self.windows.append((int(start_ns), int(end_ns),
                                 self.busy if watts is None else float(watts)))

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        with self._lock:
            windows = list(self.windows)
        total = max(0, t1_ns - t0_ns)
        joules_ns = self.idle * total
        for s, e, w in windows:
            inside = max(0, min(t1_ns, e) - max(t0_ns, s))
            joules_ns += (w - self.idle) * inside
        return joules_ns / NS


def load_profile(spec: str | float) -> LoadProfile:
    """``5.0`` (watts) or a profile file path."""
    if isinstance(spec, (int, float)):
        return ConstantProfile(spec)
    try:
        return ConstantProfile(float(spec))
    except ValueError:
        pass
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"load profile {spec!r} is neither a number of watts nor a file")
    return StepProfile.from_file(path)
