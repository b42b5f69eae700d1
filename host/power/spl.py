"""spl.txt, the sample log MLPerf power submissions carry (power-dev's line format)::

    Time,12-23-2020 10:21:51.496,Watts,23.430000,Volts,228.370000,Amps,0.204280,PF,0.502300,Mark,t

One line a sample; the time is UTC wall clock (power-dev runs PTDaemon with TZ=UTC) in
LoadGen's ``MM-DD-YYYY HH:MM:SS.mmm`` format, as power-dev's example logs have it (a
day-first log, ``28-12-2020 15:21:14.682``, is read too: the file's order is taken from the
first date whose day is above 12); values with six decimals; fields a meter does
not report are written as ``-1`` (power-dev's checker reads only Volts, Amps and Mark).
PTDaemon's own RL replies are these lines without the Mark field.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeperf.power.trace import PowerTrace

_LINE = re.compile(r"^Time,(?P<time>[^,]*),Watts,(?P<w>[^,]*),Volts,(?P<v>[^,]*),"
                   r"Amps,(?P<a>[^,]*)(?:,PF,(?P<pf>[^,]*))?(?:,Mark,(?P<mark>.*))?$")
TIME_FORMAT = "%m-%d-%Y %H:%M:%S.%f"


def format_time(wall_ns: int) -> str:
    """UTC wall-clock ns as ``MM-DD-YYYY HH:MM:SS.mmm`` (milliseconds truncated, as LoadGen)."""
    secs, ns = divmod(int(wall_ns), 1_000_000_000)
    t = datetime.fromtimestamp(secs, tz=timezone.utc)
    return t.strftime("%m-%d-%Y %H:%M:%S") + f".{ns // 1_000_000:03d}"


DMY_FORMAT = "%d-%m-%Y %H:%M:%S.%f"


def date_order(text: str) -> str | None:
    """'dmy' when the time's first field cannot be a month (``28-12-2020 ...``), 'mdy' when
    its second cannot be a day of a month-first date, None when either reading fits."""
    head = text.strip().split("-", 2)
    if len(head) == 3 and head[0].isdigit() and head[1].isdigit():
        if int(head[0]) > 12:
            return "dmy"
        if int(head[1]) > 12:
            return "mdy"
    return None


def parse_time(text: str, order: str | None = None) -> int:
    """``MM-DD-YYYY HH:MM:SS.mmm`` (UTC; power-dev's logs) to wall-clock ns. Logs written
    day first (``DD-MM-YYYY``, as some PTDaemon set-ups and documents show them) are read
    with ``order='dmy'``, or recognised when the day is above 12."""
    fmt = DMY_FORMAT if (order or date_order(text)) == "dmy" else TIME_FORMAT
    t = datetime.strptime(text.strip(), fmt).replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _num(x: float) -> str:
    return "-1" if x is None or not math.isfinite(x) else f"{x:.6f}"


def format_line(wall_ns: int, watts: float, volts: float, amps: float, pf: float,
                mark: str | None) -> str:
    line = (f"Time,{format_time(wall_ns)},Watts,{_num(watts)},Volts,{_num(volts)},"
            f"Amps,{_num(amps)},PF,{_num(pf)}")
    return line if mark is None else f"{line},Mark,{mark}"


def format_spl(trace: PowerTrace, mark: str | None = None) -> str:
    mark = trace.mark if mark is None else mark
    wall = trace.wall_ns()
    return "".join(format_line(int(wall[i]), trace.watts[i], trace.volts[i], trace.amps[i],
                               trace.pf[i], mark) + "\n" for i in range(len(trace)))


def write_spl(path: str | Path, trace: PowerTrace, mark: str | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(format_spl(trace, mark))


def parse_line(line: str, order: str | None = None
               ) -> tuple[int, float, float, float, float, str | None]:
    """(wall ns, watts, volts, amps, pf, mark) of one spl/RL line; ValueError if it is not one.
    ``order``: the log's date order ('mdy' or 'dmy'; None: month first unless the line
    shows otherwise)."""
    m = _LINE.match(line.strip())
    if not m:
        raise ValueError(f"not a power-dev sample line: {line.strip()!r}")

    def f(x: str | None) -> float:
        if x is None:
            return float("nan")
        v = float(x)
        return float("nan") if v == -1 else v

    return (parse_time(m["time"], order), f(m["w"]), f(m["v"]), f(m["a"]), f(m["pf"]),
            m["mark"])


def log_date_order(lines: list[str], near_wall_ns: int | None = None) -> str | None:
    """The date order of a whole log: the first line that settles it; else, given the wall
    time the samples were taken near (a live meter's), the order that puts the first sample
    nearer to it; else None (month first)."""
    first = None
    for line in lines:
        m = _LINE.match(line.strip())
        if not m:
            continue
        if (order := date_order(m["time"])):
            return order
        first = first or m["time"]
    if first is None or near_wall_ns is None:
        return None
    try:
        return min(("mdy", "dmy"), key=lambda o: abs(parse_time(first, o) - near_wall_ns))
    except ValueError:
        return None


def read_spl(path: str | Path, mark: str | None = None, wall_offset_ns: int = 0,
             interval_ns: int = 0) -> PowerTrace:
    """A PowerTrace of the lines of ``path`` (those with ``mark`` if given). ``wall_offset_ns``
    is the host clock's wall - host offset, to place the samples on the host clock."""
    rows = []
    lines = Path(path).read_text().splitlines()
    order = log_date_order(lines)  # one order for the file: a day-first log with days <= 12
    for line in lines:
        if not line.strip():
            continue
        r = parse_line(line, order)
        if mark is None or r[5] == mark:
            rows.append(r)
    if not rows:
        return PowerTrace.empty(str(path), interval_ns)
    a = np.array([r[:5] for r in rows], dtype=object)
    wall = np.array([int(x) for x in a[:, 0]], np.int64)
    return PowerTrace(wall - np.int64(wall_offset_ns), a[:, 1].astype(float),
                      a[:, 2].astype(float), a[:, 3].astype(float), a[:, 4].astype(float),
                      interval_ns=interval_ns, meter=str(path), mark=rows[0][5] or "",
                      wall_offset_ns=wall_offset_ns)
