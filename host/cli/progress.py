"""Progress of a run on stderr, drawn from the runner's events (``report(event, data)``).

On a terminal, rich draws live bars with the rate and the time left: one for each push
(model, samples, agent), for the run (towards its minimum query count and duration, both
needed) and for an accuracy run's windows; other news (connected, cool-down, the phases of a
power run) is printed above them. Written to a file or a pipe (a CI log), the same news comes
as plain lines, flushed one by one, with a progress line every few seconds at most.
``quiet`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_S = 5.0  # a plain progress line at most this often
QUIET_FOR_S = 1.0  # pushes and runs shorter than this show no progress
# runs wait this long before their first progress line (a smoke run is over by then)
RUN_QUIET_FOR_S = 2.0


def _bar(frac: float, width: int = 24) -> str:
    frac = min(max(frac, 0.0), 1.0)
    full = int(frac * width)
    return "[" + "#" * full + "-" * (width - full) + "]"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class ProgressPrinter:
    """Turns runner events into progress; use it as a context manager so that a live display
    is closed whatever happens to the run."""

    def __init__(self, min_duration_s: float = 0.0, min_queries: int = 1,
                 stream: TextIO | None = None, quiet: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 targets: dict[str, tuple[float, int]] | None = None) -> None:
        """``min_duration_s`` and ``min_queries``: what a run must reach (its bar's end);
        ``targets``: the same by scenario, for a printer that follows several runs."""
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self.clock = clock
        self.min_duration_s = min_duration_s
        self.min_queries = max(1, min_queries)
        self.targets = dict(targets or {})
        self._console = Console(file=self.stream, highlight=False) if self.live else None
        self._progress: Progress | None = None
        self._bars: dict[str, TaskID] = {}
        self._started: dict[str, tuple[float, float]] = {}  # key -> (time, done) at first report
        self._last_plain = -PLAIN_EVERY_S
        self._ranging = False  # a power run with a ranging phase
        self._run_label = "run"

    # ------------------------------------------------------------- output
    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._bars.clear()

    def _live(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"), BarColumn(bar_width=24),
                TaskProgressColumn(), TextColumn("{task.fields[detail]}"),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=self._console, get_time=self.clock,
                speed_estimate_period=10.0, redirect_stdout=False, redirect_stderr=False)
            self._progress.start()
        return self._progress

    def note(self, text: str) -> None:
        """A line of news: above the live bars, or a plain line."""
        if self.quiet:
            return
        if self._console is not None:  # above the live bars, if any are drawn
            self._console.print(text, markup=False, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _bar_update(self, key: str, description: str, done: float, total: float,
                    detail: str, plain: str) -> None:
        """Draw (or refresh) the bar ``key``; in a log, ``plain`` every few seconds and at the
        end (only for work that took longer than QUIET_FOR_S)."""
        now = self.clock()
        t0, _ = self._started.setdefault(key, (now, done))
        finished = done >= total
        if self.quiet or (now - t0 < QUIET_FOR_S and not (finished and key in self._bars)):
            if finished:
                self._started.pop(key, None)
            return
        if self.live:
            p = self._live()
            if key not in self._bars:
                # from 0, so that the first update is the first sample of the rate
                self._bars[key] = p.add_task(description, total=total, visible=False,
                                             detail=detail)
            p.update(self._bars[key], completed=done, total=total, detail=detail,
                     description=description, visible=True, refresh=finished)
            if finished:
                p.stop_task(self._bars.pop(key))
        elif finished or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            self.note(plain)
        if finished:
            self._started.pop(key, None)

    def _rate(self, key: str, done: float) -> float:
        """Done a second since the first report (which comes after the first chunk)."""
        t0, done0 = self._started.get(key, (self.clock(), done))
        took = self.clock() - t0
        return (done - done0) / took if took > 0 else 0.0

    # ------------------------------------------------------------- events
    def __call__(self, event: str, data: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + event, None)
        if handler is not None:
            handler(data)

    def _on_compliance(self, data: dict[str, Any]) -> None:
        what = {"TEST01": "logs a sample of outputs to compare with the accuracy run",
                "TEST04": "issues one sample over and over: caching would show"}
        self.note(f"edgeperf: compliance {data['test']} for {data['scenario']} "
                  f"({what.get(data['test'], 'audit')}) -> {data['out']}")

    def _on_connect(self, data: dict[str, Any]) -> None:
        self.note(f"edgeperf: connected to {data['board']} ({data['link']})")

    def _on_push(self, data: dict[str, Any]) -> None:
        what, done, total = data["what"], data["done"], max(data["total"], 1)
        key = "push " + what
        self._started.setdefault(key, (self.clock(), done))
        rate = self._rate(key, done)
        left = (total - done) / rate if rate > 0 else 0.0
        size = f"{human_bytes(done)}/{human_bytes(total)}"
        self._bar_update(key, key, done, total, f"{size}, {human_bytes(rate)}/s",
                         f"  push {what}: {size} {_bar(done / total)} "
                         f"{human_bytes(rate)}/s, {left:.0f} s left")

    def _on_cool_down(self, data: dict[str, Any]) -> None:
        temp, limit = data["temp_c"], data["threshold_c"]
        shown = f"{temp:.1f} C" if temp is not None else "no reading"
        if data.get("done"):
            if data["waited_s"] >= 1.0:
                self.close_bar("cool-down")
                cool = temp is not None and temp < limit
                self.note(f"  cool-down: {shown} after {data['waited_s']:.0f} s (threshold "
                          f"{limit:g} C{'' if cool else ', NOT reached'})")
            return
        waited, most = data["waited_s"], max(data["max_wait_s"], 1e-9)
        self._bar_update("cool-down", "cooling down", waited, most,
                         f"{shown}, waiting for < {limit:g} C",
                         f"  cooling down: {shown}, waiting for < {limit:g} C, "
                         f"{waited:.0f}/{most:.0f} s {_bar(waited / most)}")

    def close_bar(self, key: str) -> None:
        if self._progress is not None and key in self._bars:
            self._progress.remove_task(self._bars.pop(key))
        self._started.pop(key, None)

    def _on_task(self, data: dict[str, Any]) -> None:
        self.note(f"edgeperf: {data['message']}")  # e.g. a reference model being trained

    def _on_power(self, data: dict[str, Any]) -> None:
        if data.get("error"):
            self.note(f"edgeperf: power meter, {data['phase']} phase ({data.get('during')}): "
                      f"{data['error']}")
        elif data.get("phase") == "idle" and "seconds" in data:
            self.note(f"  power: measuring the idle device for {data['seconds']:g} s")

    def _on_op_profile(self, data: dict[str, Any]) -> None:
        self.note(f"profiling operators over {data['runs']} inferences (after the timed run)")

    def _on_run(self, data: dict[str, Any]) -> None:
        scenario, phase = data["scenario"], data.get("phase", "testing")
        if scenario in self.targets:
            self.min_duration_s, queries = self.targets[scenario]
            self.min_queries = max(1, queries)
        if phase == "ranging":
            self._ranging = True
            what = f"{scenario}, power ranging phase (the meter finds its ranges; not scored)"
        elif self._ranging:
            what = f"{scenario}, power testing phase (ranges fixed from the ranging run; scored)"
        else:
            what = scenario
        self.close_bar("run")
        self._run_label = f"{scenario} {phase}" if self._ranging else scenario
        self._started["run"] = (self.clock(), 0)
        self.note(f"  running {what} ...")

    def _on_progress(self, data: dict[str, Any]) -> None:
        t0, _ = self._started.setdefault("run", (self.clock(), 0))
        if self.clock() - t0 < RUN_QUIET_FOR_S:
            return
        elapsed, q = data["elapsed_ns"] / 1e9, int(data["queries"])
        frac = min(q / self.min_queries,
                   elapsed / self.min_duration_s if self.min_duration_s else 1.0)
        rate = q / elapsed if elapsed > 0 else 0.0
        times = f"{elapsed:.1f}/{self.min_duration_s:g} s"
        left = max(self.min_duration_s - elapsed,
                   (self.min_queries - q) / rate if rate > 0 else 0.0)
        plain_left = f", about {left:.0f} s left" if frac < 1 and rate > 0 else ""
        # the bar's end is the run's minimum: it may go on past it (a max count, a last query)
        self._bar_update("run", self._run_label, min(frac, 0.999), 1.0,
                         f"{q} queries, {rate:,.0f} q/s, {times}",
                         f"  {q} queries, {times} {_bar(frac)} {rate:,.0f} q/s{plain_left}")

    def _on_accuracy(self, data: dict[str, Any]) -> None:
        done, total = data["done"], max(data["total"], 1)
        self._started.setdefault("accuracy", (self.clock(), 0))
        rate = self._rate("accuracy", done)
        if not self.live:  # every window is news in a log (a few a run)
            if not self.quiet:
                self.note(f"  accuracy: {done}/{total} samples")
            if done >= total:
                self._started.pop("accuracy", None)
            return
        self._bar_update("accuracy", "accuracy", done, total,
                         f"{done}/{total} samples, {rate:,.0f}/s", "")

    def _on_phase(self, data: dict[str, Any]) -> None:
        """An MCU board's MLPerf Tiny procedure begins (the firmware bridge's events)."""
        what = (f"{data['samples']} samples once" if data["mode"] == "accuracy" else
                f"{data['windows']} windows of at least {data['window_s']:g} s of inference")
        self.note(f"  running MLPerf Tiny's {data['mode']} procedure on {data['board']} "
                  f"({data['model']}): {what} ...")

    def _on_window(self, data: dict[str, Any]) -> None:
        figure = (f"{data['energy_per_inf_uj']:.3f} uJ/inf." if data["mode"] == "energy" else
                  f"{data['throughput']:.3f} inf./sec.")
        self.note(f"  window {data['index']}/{data['total']}: {data['n']} inferences in "
                  f"{data['seconds']:.3f} s, {figure}")

    def _on_querylog(self, data: dict[str, Any]) -> None:
        self.note(f"QueryLog: {data['used']}, chosen by the device ({data['reason']})")

    def _on_done(self, data: dict[str, Any]) -> None:
        """The bars stay on the terminal as they ended; the run's at its end."""
        if self._progress is not None and "run" in self._bars:
            self._progress.update(self._bars["run"], completed=1.0)
        self.close()
