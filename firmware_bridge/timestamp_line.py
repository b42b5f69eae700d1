"""The reference firmware's timestamp line (MLPerf Tiny's D7 GPIO) as host-side edge events.

In energy mode the firmware pulls its timestamp line low around the timed window (falling
edge, 1 ms low, rising edge; an LPM01A with ``eventsrc d7 fal`` records the falling ones).
qemu 7.2 does not model the mps2-an385's GPIO (its AHB GPIO block is an unimplemented-device
region), so the firmware also reports each edge on its second UART, one line per edge: the
edge's letter, ``F`` falling or ``R`` rising, then the device clock when it happened: the
lap timer's count in 25 MHz ticks (40 ns), the clock ``m-lap-us`` reads in performance mode,
started at boot and restarted at each ``infer``. Under icount the ticks between two edges
of one ``infer`` are exactly reproducible (a free-running clock would not be to the tick:
its phase against the instruction clock would depend on how long the board sat idle)::

    F1234567\\n
    R1259570\\n

``TimestampLine`` reads that UART (the qemu board's ``line_fd``) in a thread and turns each
line into an ``Edge`` with the device time and the host time it arrived; ``on_edge`` is
called for each, e.g. ``falling_to(emulator)`` plays the line into the emulated LPM01A's D7
input (``Lpm01aEmulator.gpio_falling_edge``), so its event records land in its stream as a
real shield's would.

``paced=True`` calls ``on_edge`` on the device's clock rather than on arrival: the first
edge of a timeline (boot, or an ``infer``: the ticks start again) when it arrives, each
later one when as much host time has passed since as device time did (at once if that is
already past). On a board that runs ahead of real time (qemu without ``align``: about 100x
here) every edge arrives early, so a meter fed so sees exactly the window the device timed,
to the host's sleep precision; the reply comes before the last edge is played, so stop the
meter after ``wait_played``. qemu's own pacing (``-icount align=on``) lags the device clock
by about 2 % under load, and a late edge can only be played late.

``falling_to(shield, device_clock=True)`` goes one step further for an emulated shield that
takes an edge's time (``Lpm01aEmulator.gpio_falling_edge(at_ns)``): the first edge of a
timeline is placed at the start of the shield's next sample, each later one exactly as much
later as the device clock says, so the samples between two edges are the device's window
rounded up to whole samples, the same on every run. ``settle()`` lets a relay that carries
the protocol UART (energy_bench.py) hold the board's output until every edge the firmware
wrote before it has been played: the reply then comes when a real board's would.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TICK_HZ = 25_000_000
TICK_NS = 1_000_000_000 // TICK_HZ  # 40


@dataclass(frozen=True)
class Edge:
    falling: bool
    ticks: int  # device clock: 25 MHz ticks since boot or the current infer began
    host_ns: int  # time.monotonic_ns() when the host read it

    @property
    def device_ns(self) -> int:
        return self.ticks * TICK_NS


def parse_edge(line: bytes, host_ns: int = 0) -> Edge:
    """One record (without its newline); ValueError for anything else."""
    text = line.decode("ascii", "replace").strip()
    if len(text) < 2 or text[0] not in "FR" or not text[1:].isdigit():
        raise ValueError(f"not a timestamp-line record: {text!r} (expected F<ticks> or "
                         "R<ticks>)")
    return Edge(text[0] == "F", int(text[1:]), host_ns)


def falling_to(emulator: object, device_clock: bool = False) -> Callable[[Edge], None]:
    """An ``on_edge`` that plays falling edges into an emulated LPM01A's D7 input: when it is
    called, or (``device_clock``) at the host time the device clock gives it (module doc)."""
    anchor: list[tuple[int, int] | None] = [None]  # (ticks, host ns) of the timeline's start
    last = [-1]

    def on_edge(edge: Edge) -> None:
        if device_clock:
            if anchor[0] is None or edge.ticks <= last[0]:  # boot or infer: a new timeline
                at = emulator.sample_boundary_ns()
                anchor[0] = (edge.ticks, time.monotonic_ns() if at is None else at)
            last[0] = edge.ticks
            ticks0, host0 = anchor[0]
            if edge.falling:
                emulator.gpio_falling_edge(at_ns=host0 + (edge.ticks - ticks0) * TICK_NS)
        elif edge.falling:
            emulator.gpio_falling_edge()

    return on_edge


class TimestampLine:
    """Edges read from ``fd`` (a raw, non-blocking tty) until ``close()``."""

    def __init__(self, fd: int, on_edge: Callable[[Edge], None] | None = None, *,
                 paced: bool = False) -> None:
        self.fd = fd
        self.on_edge = on_edge
        self.paced = paced
        self.malformed: list[bytes] = []
        self._edges: list[Edge] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._due: queue.Queue[Edge | None] = queue.Queue()
        self._anchor: tuple[int, int] | None = None  # (ticks, host ns) of the timeline's start
        self._last_ticks = -1
        self._played = 0
        self._buf = b""
        self._read_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="timestamp-line", daemon=True)
        self._player = threading.Thread(target=self._play, name="timestamp-line-player",
                                        daemon=True)
        self._thread.start()
        self._player.start()

    def _play(self) -> None:
        while True:
            edge = self._due.get()
            if edge is None:
                return
            if edge.ticks <= self._last_ticks or self._anchor is None or not self.paced:
                self._anchor = None  # the lap timer restarted: a new timeline, played now
            else:
                ticks0, host0 = self._anchor
                wait = (host0 + (edge.ticks - ticks0) * TICK_NS - time.monotonic_ns()) / 1e9
                if wait > 0 and self._stop.wait(wait):
                    return
            self._last_ticks = edge.ticks
            if self._anchor is None:  # from when the first edge was played, not read
                self._anchor = (edge.ticks, time.monotonic_ns())
            if self.on_edge is not None:
                self.on_edge(edge)
            with self._cond:
                self._played += 1
                self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                select.select([self.fd], [], [], 0.05)
                self._read_now()
            except (OSError, ValueError):
                return

    def _read_now(self) -> int:
        """Read and parse what the line holds now; the number of edges read so far."""
        with self._read_lock:
            data = b""
            while True:
                try:
                    chunk = os.read(self.fd, 4096)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                data += chunk
            now = time.monotonic_ns()
            self._buf += data
            while b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                try:
                    edge = parse_edge(line, now)
                except ValueError:
                    self.malformed.append(line)
                    continue
                self._due.put(edge)
                with self._cond:
                    self._edges.append(edge)
                    self._cond.notify_all()
            with self._cond:
                return len(self._edges)

    def settle(self, timeout: float = 60.0) -> None:
        """Read what the line holds now, then wait until every edge read has been played."""
        try:
            count = self._read_now()
        except (OSError, ValueError):  # the board is gone: nothing more will come
            return
        self._wait(lambda: self._played, count, timeout, "played")

    @property
    def edges(self) -> list[Edge]:
        with self._cond:
            return list(self._edges)

    def clear(self) -> None:
        """Forget the edges read so far (``edges``, and the count ``wait_played`` waits for)."""
        with self._cond:
            self._played -= len(self._edges)
            self._edges.clear()

    def _wait(self, done: Callable[[], int], count: int, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while done() < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timestamp line: {done()} edge(s) {what} within "
                                       f"{timeout:g} s, {count} expected; is the firmware "
                                       "built in energy mode?")
                self._cond.wait(left)

    def wait(self, count: int, timeout: float = 5.0) -> list[Edge]:
        """The edges once there are at least ``count``; TimeoutError naming what came."""
        self._wait(lambda: len(self._edges), count, timeout, "read")
        return self.edges

    def wait_played(self, count: int, timeout: float = 30.0) -> list[Edge]:
        """As ``wait``, once ``on_edge`` has been called for ``count`` edges."""
        self._wait(lambda: self._played, count, timeout, "played")
        return self.edges

    def close(self) -> None:
        self._stop.set()
        self._due.put(None)
        self._thread.join(timeout=2)
        self._player.join(timeout=2)

    def __enter__(self) -> TimestampLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
