"""A power log collected some other way, imported as a meter: ``csv:FILE``.

The file has a time column and either watts, or volts and amps. Columns are found by their
header (time/timestamp/t, watts/power/w, volts/voltage/v, amps/current/a; units in the name
such as ``time_ns`` or ``power_w`` are fine) or named with ``?time=COL&watts=COL``. Times are
absolute: epoch seconds, ms, us or ns (told apart by magnitude, or by a ``_ns``/``_ms``/
``_us`` suffix), ISO 8601, or LoadGen's ``MM-DD-YYYY HH:MM:SS.mmm``; times without a zone
are UTC. ``?offset_s=X`` adds X seconds (logger clock behind the host's: positive).
``?interval_ms=P`` says each row is the mean over the P ms before it (an averaging logger);
otherwise rows are instantaneous readings. A power-dev spl.txt is read as is.

start() and stop() only note the measurement; the file is read by trace(), so it may be
written while the run goes on and copied in afterwards.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.power import spl
from edgeperf.power.clock import WallAnchor
from edgeperf.power.meter import Meter, MeterError, MeterURL
from edgeperf.power.trace import PowerTrace

_NAMES = {"time": ("time", "timestamp", "t", "date", "datetime", "ts"),
          "watts": ("watts", "watt", "power", "w", "p"),
          "volts": ("volts", "volt", "voltage", "v", "u"),
          "amps": ("amps", "amp", "current", "a", "i")}


def _base(name: str) -> str:
    n = name.strip().lower()
    for suffix in ("_ns", "_us", "_ms", "_s", "_w", "_v", "_a", "_mw", "_ma", "_mv", "(w)",
                   "(v)", "(a)", "(s)"):
        if n.endswith(suffix):
            return n[: -len(suffix)].strip(" _")
    return n


def _scale(name: str) -> float:
    n = name.strip().lower()
    return 1e-3 if n.endswith(("_mw", "_ma", "_mv")) else 1.0


def parse_time(text: str, column: str) -> int:
    """One time cell to wall-clock ns."""
    t = text.strip()
    col = column.strip().lower()
    try:
        x = Decimal(t)  # exact: epoch ns do not fit a double
    except InvalidOperation:
        x = None
    if x is not None and x.is_finite():
        units = {"_ns": 1, "_us": 10**3, "_ms": 10**6, "_s": 10**9}
        scale = next((v for k, v in units.items() if col.endswith(k)), None)
        if scale is None:  # by magnitude: s, ms, us or ns since the epoch
            mag = abs(x)
            scale = 10**9 if mag < 10**11 else 10**6 if mag < 10**14 else \
                10**3 if mag < 10**17 else 1
        return int((x * scale).to_integral_value())
    try:
        return spl.parse_time(t)
    except ValueError:
        pass
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}: use epoch seconds/ms/us/ns, ISO 8601 "
                         "or MM-DD-YYYY HH:MM:SS.mmm") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000


def _is_spl(line: str) -> bool:
    try:
        spl.parse_line(line)
        return True
    except ValueError:
        return False


class CsvMeter(Meter):
    def __init__(self, path: str, *, columns: dict[str, str] | None = None,
                 offset_s: float = 0.0, interval_ms: float = 0.0, url: str = "") -> None:
        self.path = Path(path)
        self.url = url or f"csv:{path}"
        self.columns = columns or {}
        self.offset_ns = int(round(offset_s * 1e9))
        self.interval_ns = int(round(interval_ms * 1e6))
        self._anchor = WallAnchor.now()
        self._mark = ""

    @classmethod
    def from_url(cls, u: MeterURL) -> CsvMeter:
        if not u.target:
            raise MeterError("csv needs a file: csv:power_log.csv")
        cols = {k: v for k in ("time", "watts", "volts", "amps") if (v := u.get(k))}
        try:
            return cls(u.target, columns=cols, offset_s=float(u.get("offset_s", "0") or 0),
                       interval_ms=float(u.get("interval_ms", "0") or 0), url=u.text)
        except ValueError as exc:
            raise MeterError(f"meter {u.text}: {exc}") from None

    def start(self, mark: str) -> None:
        self._mark = mark
        self._anchor = WallAnchor.now()

    def stop(self) -> None:
        if not self.path.is_file():
            raise MeterError(f"{self.url}: {self.path} does not exist; copy the meter's log there "
                             "before the run ends")

    def _find(self, header: list[str], what: str) -> int | None:
        want = self.columns.get(what)
        names = [h.strip() for h in header]
        if want is not None:
            if want in names:
                return names.index(want)
            if want.isdigit() and int(want) < len(names):
                return int(want)
            raise MeterError(f"{self.url}: no column {want!r} for {what}; the columns are "
                             f"{', '.join(names)}")
        for i, h in enumerate(names):
            if _base(h) in _NAMES[what] or h.lower() in _NAMES[what]:
                return i
        return None

    def trace(self) -> PowerTrace:
        if not self.path.is_file():
            raise MeterError(f"{self.url}: {self.path} does not exist")
        text = self.path.read_text()
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        offset = self._anchor.offset_ns - self.offset_ns  # logger wall -> host clock
        if _is_spl(first):
            tr = spl.read_spl(self.path, wall_offset_ns=offset, interval_ns=self.interval_ns)
            tr.meter, tr.mark, tr.wall_offset_ns = self.url, self._mark, self._anchor.offset_ns
            return tr
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
        if len(rows) < 2:
            raise MeterError(f"{self.url}: fewer than two rows")
        header, data = rows[0], rows[1:]
        ti = self._find(header, "time")
        wi, vi, ai = (self._find(header, w) for w in ("watts", "volts", "amps"))
        if ti is None:
            raise MeterError(f"{self.url}: no time column among {', '.join(header)}; name it "
                             "with ?time=COLUMN")
        if wi is None and (vi is None or ai is None):
            raise MeterError(f"{self.url}: need a watts column, or volts and amps; the columns "
                             f"are {', '.join(header)} (name them with ?watts= or ?volts=&amps=)")

        def col(i: int | None, scale: float = 1.0) -> np.ndarray:
            if i is None:
                return np.full(len(data), np.nan)
            try:
                return np.array([float(r[i]) for r in data]) * scale
            except (ValueError, IndexError) as exc:
                raise MeterError(f"{self.url}: column {header[i]!r}: {exc}") from None

        try:
            wall = np.array([parse_time(r[ti], header[ti]) for r in data], np.int64)
        except (ValueError, IndexError) as exc:
            raise MeterError(f"{self.url}: {exc}") from None
        volts = col(vi, _scale(header[vi]) if vi is not None else 1.0)
        amps = col(ai, _scale(header[ai]) if ai is not None else 1.0)
        watts = col(wi, _scale(header[wi])) if wi is not None else volts * amps
        order = np.argsort(wall, kind="stable")
        return PowerTrace(wall[order] - np.int64(offset), watts[order], volts[order],
                          amps[order], interval_ns=self.interval_ns, meter=self.url,
                          mark=self._mark, wall_offset_ns=self._anchor.offset_ns)

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "file": str(self.path), "offset_ns": self.offset_ns}
