"""Progress on stderr: a live line on a terminal, a line every few seconds in a log."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _bar(frac: float, width: int = 24) -> str:
    frac = min(max(frac, 0.0), 1.0)
    full = int(frac * width)
    return "[" + "#" * full + "-" * (width - full) + "]"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class ProgressPrinter:
    """Turns runner events into progress lines; quiet for runs shorter than a few seconds."""

    def __init__(self, min_duration_s: float, min_queries: int, stream: TextIO | None = None,
                 quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.min_duration_s = min_duration_s
        self.min_queries = max(1, min_queries)
        self.quiet = quiet
        self._t0 = time.monotonic()
        self._last = 0.0
        self._push_t0: dict[str, tuple[float, int]] = {}  # first report: (time, bytes)
        self._live = False

    def _emit(self, text: str, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
            self.stream.flush()
            self._live = not final
        elif final or now - self._last >= 5.0:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "connect":
            self._emit(f"edgeperf: connected to {data['board']} ({data['link']})", final=True)
        elif event == "push":
            what, done, total = data["what"], data["done"], data["total"]
            t0, done0 = self._push_t0.setdefault(what, (time.monotonic(), done))
            took = time.monotonic() - t0
            if took < 1.0 and done < total:
                return  # only transfers longer than a second get a progress line
            # the first report comes after the first chunk: the rate counts from there
            rate = (done - done0) / took if took > 0 else 0.0
            left = (total - done) / rate if rate > 0 else 0.0
            text = (f"  push {what}: {_human(done)}/{_human(total)} {_bar(done / max(total, 1))} "
                    f"{_human(rate)}/s, {left:.0f} s left")
            if done >= total:
                if took >= 1.0:
                    self._emit(text, final=True)
                self._push_t0.pop(what, None)
            else:
                self._emit(text)
        elif event == "cool_down":
            temp, limit = data["temp_c"], data["threshold_c"]
            shown = f"{temp:.1f} C" if temp is not None else "no reading"
            if data.get("done"):
                if data["waited_s"] >= 1.0:
                    cool = temp is not None and temp < limit
                    self._emit(f"  cool-down: {shown} after {data['waited_s']:.0f} s (threshold "
                               f"{limit:g} C{'' if cool else ', NOT reached'})", final=True)
            else:
                self._emit(f"  cooling down: {shown}, waiting for < {limit:g} C, "
                           f"{data['waited_s']:.0f}/{data['max_wait_s']:.0f} s "
                           f"{_bar(data['waited_s'] / max(data['max_wait_s'], 1e-9))}")
        elif event == "run":
            self._t0 = time.monotonic()
            self._emit(f"  running {data['scenario']} ...", final=not self.tty)
        elif event == "progress":
            elapsed = data["elapsed_ns"] / 1e9
            if time.monotonic() - self._t0 < 2.0:
                return
            q = data["queries"]
            frac = min(q / self.min_queries,
                       elapsed / self.min_duration_s if self.min_duration_s else 1.0)
            self._emit(f"  {q} queries, {elapsed:.1f}/{self.min_duration_s:.0f} s {_bar(frac)}")
        elif event == "done":
            if self._live:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._live = False
