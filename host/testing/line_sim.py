"""A serial line you can rehearse on: two pseudo-terminals joined at a real line's speed.

A pseudo-terminal ignores the baud rate (it moves megabytes a second), so on its own it says
nothing about how a benchmark behaves over a 115200-baud UART. ``LineSim`` opens two pty
pairs, one for the host and one for the device, and relays bytes between them at the
configured rate (``bits_per_char`` line bits a byte: 10 for 8N1), with the faults real lines
have: bit flips and dropped bytes at a given rate, bursts of garbage, the cable pulled (bytes
go nowhere while the line keeps its pace), the port gone (the pty closed).

``edgeperf line-sim --baud 115200 --flip-rate 0.001`` prints both device paths and relays
until stopped; the tests and benchmarks run it in a thread or a process.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field

import numpy as np

TICK_S = 0.002  # the relay moves about this much line time per step


@dataclass
class Faults:
    flip_rate: float = 0.0  # per byte: the chance that one of its bits flips
    drop_rate: float = 0.0  # per byte: the chance that it is lost
    garbage_every: float = 0.0  # seconds between bursts of random bytes (0: none)
    garbage_bytes: int = 64

    def __post_init__(self) -> None:
        for name in ("flip_rate", "drop_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"line-sim: {name} must be in [0, 1), got {v}")
        if self.garbage_every < 0 or self.garbage_bytes < 1:
            raise ValueError("line-sim: garbage_every must be >= 0 s and garbage_bytes >= 1")


@dataclass
class DirectionStats:
    bytes_in: int = 0  # read from the sender
    bytes_out: int = 0  # written to the receiver
    flipped: int = 0
    dropped: int = 0
    garbage: int = 0
    lost_unplugged: int = 0  # sent while the cable was pulled
    overrun: int = 0  # the receiver did not read in time (a UART drops them too)


@dataclass
class _Direction:
    name: str
    src: int
    dst: int
    rng: np.random.Generator
    stats: DirectionStats = field(default_factory=DirectionStats)
    inject: bytearray = field(default_factory=bytearray)
    next_garbage: float = 0.0


def _open_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing: a byte pipe like a UART
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class LineSim:
    """Relays between ``host_path`` and ``device_path`` at ``baud`` with ``faults``."""

    def __init__(self, baud: int = 115200, faults: Faults | None = None,
                 bits_per_char: int = 10, seed: int = 0) -> None:
        if baud <= 0:
            raise ValueError(f"line-sim: baud must be positive, got {baud}")
        self.baud = baud
        self.rate = baud / bits_per_char  # bytes a second
        self.faults = faults or Faults()
        self.pulled = False
        self._stop = threading.Event()
        self._closed = False
        hm, hs, self.host_path = _open_pty()
        dm, ds, self.device_path = _open_pty()
        self._fds = [hm, hs, dm, ds]
        rngs = np.random.default_rng(seed).spawn(3)
        self._burst_rng = rngs[2]  # burst(): its own, the relay threads own theirs
        self.to_device = _Direction("to_device", hm, dm, rngs[0])
        self.to_host = _Direction("to_host", dm, hm, rngs[1])
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._relay, args=(d,), daemon=True,
                                          name=f"line-sim-{d.name}")
                         for d in (self.to_device, self.to_host)]

    # ------------------------------------------------------------------ control
    def start(self) -> LineSim:
        for t in self._threads:
            t.start()
        return self

    def pull(self) -> None:
        """The cable is pulled: whatever is sent from now on is lost."""
        self.pulled = True

    def plug(self) -> None:
        self.pulled = False

    def set_faults(self, *, flip_rate: float | None = None,
                   drop_rate: float | None = None) -> None:
        """Change the flip and drop rates while the line runs (None: leave as it is); the
        relay takes the new rates from the next stretch it carries (within a tick, about
        2 ms of line time). Validated as ``Faults`` is; both directions share them.
        ``set_faults(flip_rate=0, drop_rate=0)`` makes the line clean again."""
        f = self.faults
        self.faults = dataclasses.replace(
            f, flip_rate=f.flip_rate if flip_rate is None else float(flip_rate),
            drop_rate=f.drop_rate if drop_rate is None else float(drop_rate))

    def burst(self, direction: str, n: int) -> None:
        """A burst of ``n`` random bytes down the line ('to_host' or 'to_device'), as line
        noise or a stray boot message would be: queued like ``inject`` (the line's pace and
        faults apply) and counted in that direction's ``stats.garbage``."""
        if n < 1:
            raise ValueError(f"line-sim: a burst needs at least 1 byte, got {n}")
        d = {"to_host": self.to_host, "to_device": self.to_device}[direction]
        with self._lock:
            d.inject += self._burst_rng.bytes(int(n))
            d.stats.garbage += int(n)

    def inject(self, direction: str, data: bytes) -> None:
        """Send ``data`` down the line ('to_host' or 'to_device'), as a boot banner or a
        kernel message would be, at the line's pace and through its faults."""
        d = {"to_host": self.to_host, "to_device": self.to_device}[direction]
        with self._lock:
            d.inject += data

    def close(self) -> None:
        """The port goes away: both ptys are closed (readers get an error, as when a USB
        serial adapter is unplugged)."""
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=2.0)
        if not self._closed:
            self._closed = True
            for fd in self._fds:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> LineSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        f = self.faults
        return (f"{self.baud} baud, flip rate {f.flip_rate:g}, drop rate {f.drop_rate:g}"
                + (f", {f.garbage_bytes} B of garbage every {f.garbage_every:g} s"
                   if f.garbage_every else ""))

    # ------------------------------------------------------------------ the relay
    def _damage(self, d: _Direction, data: bytes) -> bytes:
        f, n = self.faults, len(data)
        if not n or not (f.flip_rate or f.drop_rate):
            return data
        arr = np.frombuffer(data, np.uint8).copy()
        if f.flip_rate:
            at = np.flatnonzero(d.rng.random(n) < f.flip_rate)
            if len(at):
                arr[at] ^= (1 << d.rng.integers(0, 8, len(at))).astype(np.uint8)
                d.stats.flipped += len(at)
        if f.drop_rate:
            keep = d.rng.random(n) >= f.drop_rate
            d.stats.dropped += int(n - keep.sum())
            arr = arr[keep]
        return arr.tobytes()

    def _relay(self, d: _Direction) -> None:
        line_t = time.monotonic()  # when the line has carried everything taken so far
        if self.faults.garbage_every:
            d.next_garbage = line_t + self.faults.garbage_every
        while not self._stop.is_set():
            now = time.monotonic()
            # a busy line keeps what sleeping past line_t cost it, so the pace stays exact
            # (at most a tick); bytes that arrive on an idle line start from their arrival
            line_t = max(line_t, now - TICK_S)
            with self._lock:
                injected = bytes(d.inject)
                d.inject.clear()
            if self.faults.garbage_every and now >= d.next_garbage:
                injected += d.rng.bytes(self.faults.garbage_bytes)
                d.stats.garbage += self.faults.garbage_bytes
                d.next_garbage = now + self.faults.garbage_every
            budget = max(1, int((now + TICK_S - line_t) * self.rate)) - len(injected)
            data = b""
            if budget > 0:
                wait = 0.0 if injected else 0.05
                try:
                    t_sel = time.monotonic()
                    ready, _, _ = select.select([d.src], [], [], wait)
                    if ready:
                        data = os.read(d.src, budget)
                        t_got = time.monotonic()
                        if t_got - t_sel > 0.0002:
                            # the bytes arrived while the line stood idle: a real line starts
                            # carrying them now, with no credit for the idle time
                            line_t = max(line_t, t_got)
                except (BlockingIOError, InterruptedError):
                    pass
                except (OSError, ValueError):
                    if self._stop.is_set():
                        return
                    time.sleep(0.01)  # no reader on that side yet
                    continue
            if not data and not injected:
                continue
            d.stats.bytes_in += len(data)
            out = injected + data
            line_t += len(out) / self.rate  # the line takes that long, whatever happens
            out = self._damage(d, out)
            pause = line_t - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # deliver when the last byte would have arrived
            if self.pulled:
                d.stats.lost_unplugged += len(out)
                continue
            self._deliver(d, out)

    def _deliver(self, d: _Direction, out: bytes) -> None:
        view = memoryview(out)
        while view:
            try:
                n = os.write(d.dst, view)
            except BlockingIOError:
                d.stats.overrun += len(view)  # the receiver's buffer is full: bytes lost
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF) or self._stop.is_set():
                    return
                raise
            d.stats.bytes_out += n
            view = view[n:]


def main(args) -> int:
    """``edgeperf line-sim``: print both paths, relay until interrupted."""
    import signal
    import sys

    try:
        faults = Faults(flip_rate=args.flip_rate, drop_rate=args.drop_rate,
                        garbage_every=args.garbage_every, garbage_bytes=args.garbage_bytes)
        sim = LineSim(args.baud, faults, bits_per_char=args.bits_per_char, seed=args.seed)
    except ValueError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with sim:
        print(f"host side:   {sim.host_path}")
        print(f"device side: {sim.device_path}")
        print(f"relaying at {sim.describe()}; Ctrl-C to stop", flush=True)
        print(f"  e.g. on the device side: python -m edgeperf_agent serve --serial "
              f"{sim.device_path} --baud {sim.baud}", file=sys.stderr)
        print(f"  and on the host side:    edgeperf run --board "
              f"'serial://{sim.host_path}?baud={sim.baud}' ...", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        for d in (sim.to_device, sim.to_host):
            print(f"{d.name}: {d.stats}", file=sys.stderr)
    return 0
