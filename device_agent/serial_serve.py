"""``serve --serial DEV --baud B``: the agent on a UART or a USB gadget serial port.

The tty is opened raw, with pyserial when the device has it and with termios otherwise (the
agent needs nothing beyond the standard library). The reliable layer (reliable.py) runs over
it, and the same Agent as on stdio serves the requests it delivers.

One thread does everything, so nothing competes with the scenario loop for the interpreter:
while a run goes on, the line is served each time the loop hands over a stretch of its
QueryLog (between stretches, never inside a timed region). Bytes the kernel cannot take yet
wait in ``out`` and go at the next stretch.

Every queue is bounded. ``out`` takes a new poll of the reliable layer only once the kernel
has taken the last one (retransmissions of a line that is not being read do not pile up),
and a run's QueryLog stretches and progress events are offers the line declines while more
than QUEUE_BOUND bytes wait for it: declined rows stay in the run's log, which holds them
anyway, and go when there is room (after the timed loop, at the line's pace). Nothing that
waits for the line ever waits inside the timed loop: only replies and events that must go
(an Offline query's announcement, accuracy outputs) wait for room, outside it.

A new session from the host (a host that came back) ends the run it interrupts; ``bye``
ends a session, not the service, which keeps serving the next host. The agent exits when
the port itself goes away (a USB cable pulled out of a gadget port), so a supervisor
(systemd, Restart=always) starts it again.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time
from typing import Any, Dict, Optional, Tuple

from . import auth, reliable, wire
from .agent import MAX_CHUNK, Agent

PARITIES = {"N": 0, "E": 1, "O": 1}
# line bytes queued, in flight or waiting for the kernel at which a run's QueryLog stretches
# and progress events are declined (the most queued is this plus one stretch, see
# scenarios.STRETCH_ROWS): 5.7 s of a 115200-baud line
QUEUE_BOUND = 64 * 1024
OFFERS = frozenset(("querylog", "progress"))
FLOW_CONTROLS = ("none", "rtscts", "xonxoff")


# operations that answer at once: their reply carries the ACK of the request (no ACK frame on
# the line ahead of it, which is what keeps ClockSync's round trip short); any other request
# is acknowledged before the agent starts on it, so the host does not send it again meanwhile
QUICK_OPS = frozenset(("clock", "hello", "telemetry", "results", "push_model", "push_samples",
                       "bye"))


class LineGone(Exception):
    """The serial port returned an error or end of file: the device node is gone."""


class SessionLost(Exception):
    """A new host session replaced the one a running request belonged to."""


def bits_per_char(parity: str = "N", stopbits: int = 1) -> int:
    return 1 + 8 + PARITIES[parity] + stopbits


def _check(parity: str, stopbits: int, flow: str) -> None:
    if parity not in PARITIES:
        raise ValueError("parity %r: choose N, E or O" % parity)
    if stopbits not in (1, 2):
        raise ValueError("stopbits %r: choose 1 or 2" % stopbits)
    if flow not in FLOW_CONTROLS:
        raise ValueError("flow control %r: choose %s" % (flow, ", ".join(FLOW_CONTROLS)))


def open_tty(path: str, baud: int, parity: str = "N", stopbits: int = 1,
             flow: str = "none") -> Tuple[int, Any]:
    """Open ``path`` raw, non-blocking; returns (fd, the object that keeps it open)."""
    _check(parity, stopbits, flow)
    try:
        import serial  # pyserial, when the device has it
    except ImportError:
        return _open_termios(path, baud, parity, stopbits, flow), None
    try:
        port = serial.Serial(path, baud, parity=parity, stopbits=stopbits,
                             rtscts=flow == "rtscts", xonxoff=flow == "xonxoff",
                             timeout=0, write_timeout=0)
    except (serial.SerialException, ValueError) as exc:
        raise OSError("cannot open %s at %d baud: %s" % (path, baud, exc)) from None
    return port.fileno(), port


def _open_termios(path: str, baud: int, parity: str, stopbits: int, flow: str) -> int:
    import termios

    speed = getattr(termios, "B%d" % baud, None)
    if speed is None:
        raise OSError("%d baud is not a standard rate here; pick a standard one or install "
                      "pyserial on the device" % baud)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
        iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                   | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON
                   | termios.IXOFF | termios.IXANY | termios.INPCK)
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG
                   | termios.IEXTEN)
        cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB
                   | getattr(termios, "CRTSCTS", 0))
        cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
        if parity != "N":
            cflag |= termios.PARENB | (termios.PARODD if parity == "O" else 0)
        if stopbits == 2:
            cflag |= termios.CSTOPB
        if flow == "rtscts":
            cflag |= termios.CRTSCTS
        elif flow == "xonxoff":
            iflag |= termios.IXON | termios.IXOFF
        cc[termios.VMIN] = 0
        cc[termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        termios.tcflush(fd, termios.TCIFLUSH)  # what piled up before we came is stale
    except BaseException:
        os.close(fd)
        raise
    return fd


class SerialServer:
    """The agent's loop over one serial port."""

    def __init__(self, fd: int, rate: float, agent: Agent, log=None,
                 key: Optional[bytes] = None) -> None:
        self.fd = fd
        self.agent = agent
        self.log = log or (lambda msg: print("edgeperf-agent: " + msg, file=sys.stderr,
                                             flush=True))
        self.gate = auth.Gate(key, self.log)  # with a key, only hello and auth until proved
        self.log("access: " + self.gate.describe())
        self.ep = reliable.Endpoint(initiator=False, rate=rate)
        self.out = bytearray()
        self.app = wire.FrameDecoder(max_frame=MAX_CHUNK + wire.MAX_HEADER)
        self.session = 0
        self.peak_queued = 0  # the most bytes that waited for the line (the memory bound)
        self.declined = 0  # offers declined because the line was behind
        agent.line_rate = rate  # the agent sizes its QueryLog choice by the line
        agent.line_stats = lambda: {"peak_bytes": self.peak_queued, "bound_bytes": QUEUE_BOUND,
                                    "declined_offers": self.declined}

    # ------------------------------------------------------------------ line I/O
    def _write(self) -> None:
        while self.out:
            try:
                n = os.write(self.fd, self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                raise LineGone("writing: %s" % exc) from None
            del self.out[:n]

    @property
    def queued(self) -> int:
        """Bytes waiting for the line: the reliable layer's and the kernel's backlog."""
        return self.ep.pending + len(self.out)

    def _poll(self) -> None:
        # the reliable layer times its segments from when it hands them over: only what
        # the kernel took is on its way, so nothing new is polled while ``out`` still holds
        # bytes (a port nobody reads would otherwise collect a window per retransmission)
        if not self.out:
            self.out += self.ep.poll(time.monotonic())
        self.peak_queued = max(self.peak_queued, self.queued)

    def _idle(self, cap: float) -> float:
        """How long a loop that has nothing else to do may wait in pump: until the port
        takes what waits for it (select wakes on that), else until the line is due."""
        if self.out:
            return cap
        now = time.monotonic()
        return min(cap, max(0.0, self.ep.next_deadline(now) - now))

    def pump(self, wait: float) -> None:
        """One round: write what is due, wait up to ``wait`` s for input, take it in."""
        self._poll()
        self._write()
        try:
            ready, _, _ = select.select([self.fd], [self.fd] if self.out else [], [],
                                        max(0.0, wait))
        except InterruptedError:
            return
        if self.fd in ready:
            try:
                data = os.read(self.fd, 1 << 16)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError as exc:
                raise LineGone("reading: %s" % exc) from None
            if data == b"":
                raise LineGone("end of file")
            if data:
                self.ep.feed(data, time.monotonic())
        if not self.ep.readable:
            # ACK at once; but when a message waits for the agent, the ACK waits for the
            # agent: it rides on a quick reply, or goes out before a slow operation begins
            self._poll()
            self._write()
        for ev in self.ep.take_events():
            if ev == "established":
                self.session += 1
                self.app = wire.FrameDecoder(max_frame=MAX_CHUNK + wire.MAX_HEADER)
                self.log("host session %08x started" % self.ep.peer)
            else:
                self.log("session ended: " + ev[len("reset: "):])

    def _emit(self, seq: int, event: str, header: Dict[str, Any], body: bytes) -> bool:
        """An event of a running request. A QueryLog stretch or a progress event is an
        offer: declined (False) while the line is QUEUE_BOUND behind, without waiting. Any
        other event waits for room. Serves the line without blocking either way."""
        session = self.session
        if event in OFFERS and self.queued >= QUEUE_BOUND:
            self.declined += 1
            self.pump(0.0)
            accepted = False
        else:
            self._send(wire.encode(wire.EVENT, seq, dict(header, event=event), body))
            self.pump(0.0)
            accepted = True
        if self.session != session:
            raise SessionLost("a new host session began; this run is abandoned")
        return accepted

    def wait_room(self) -> None:
        """Serve the line until it is under QUEUE_BOUND (outside any timed region)."""
        session = self.session
        while self.queued >= QUEUE_BOUND:
            self.pump(self._idle(0.05))
            if self.session != session:
                raise SessionLost("a new host session began; this run is abandoned")

    def _send(self, frame: bytes) -> None:
        """Queue ``frame`` for the line, first serving it until the reliable layer takes it;
        dropped when a new host session begins meanwhile (its host is gone)."""
        session = self.session
        while len(frame) > self.ep.room:
            self.pump(self._idle(0.05))
            if self.session != session:
                return
        self.ep.send(frame)

    # ------------------------------------------------------------------ the loop
    def serve(self) -> int:
        while True:
            self.pump(self._idle(1.0))
            data = self.ep.read()
            if not data:
                continue
            for frame in self.app.feed(data):
                session = self.session
                wait = self.gate.hold(frame)  # an auth soon after a failed one waits
                while wait > 0 and self.session == session:
                    self.pump(wait)
                    wait = self.gate.hold(frame)
                if self.session != session:
                    break  # its host is gone
                self.gate.enter(session, self.ep.sid ^ self.ep.peer)
                answer = self.gate.screen(frame)  # auth, or a refusal until authenticated
                if answer is None and frame.header.get("op") not in QUICK_OPS:
                    self.pump(0.0)  # the ACK goes now: this one may take a while
                type_, header, body = answer or self.agent.handle(
                    frame, self._emit, self.wait_room)  # never raises
                if self.session != session:
                    break  # the reply belongs to a host that is gone
                header = self.gate.annotate(frame, type_, header)
                try:
                    reply = wire.encode(type_, frame.seq, header, body)
                except wire.WireError as exc:
                    reply = wire.encode(wire.ERROR, frame.seq,
                                        {"error": str(exc), "kind": "WireError"})
                self._send(reply)
                self.pump(0.0)
                if self.agent.closing:  # bye: the session ends, the service goes on
                    self.agent.closing = False


def serve_serial(path: str, baud: int, cache_dir: Optional[str] = None, parity: str = "N",
                 stopbits: int = 1, flow: str = "none", key: Optional[bytes] = None) -> int:
    try:
        fd, keep = open_tty(path, baud, parity, stopbits, flow)
    except (OSError, ValueError) as exc:
        print("edgeperf-agent: cannot serve on %s: %s" % (path, exc), file=sys.stderr)
        return 1
    server = SerialServer(fd, baud / bits_per_char(parity, stopbits), Agent(cache_dir),
                          key=key)
    server.log("serving on %s at %d baud (%s), pid %d, link session %08x"
               % (path, baud, "pyserial" if keep is not None else "termios", os.getpid(),
                  server.ep.sid))
    try:
        return server.serve()
    except LineGone as exc:
        server.log("the serial port %s went away (%s); exiting" % (path, exc))
        return 1
    finally:
        try:
            if keep is not None:
                keep.close()
            else:
                os.close(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
