"""SerialLink: the agent over a UART or a USB serial line, through pyserial.

A Link like any other (send, recv, close): underneath, the reliable layer
(device_agent.reliable) makes a noisy byte line deliver exactly what was sent, so
AgentClient runs over it unchanged. A thread owns the port: it writes what the reliable
layer has for the line, reads what arrives and feeds it in, and keeps the session alive.

An agent started with a key file (``--key-file``) answers only a host that holds the same
key: the link loads the host's copy (``key_file``) and AgentClient's hello does the
handshake (links/serial_key.py), again in each new session.

What a serial line adds to a Link's errors:
* the port goes away (a USB adapter unplugged, the pty closed): recv and send raise
  LinkClosed naming the port, after everything that arrived before has been read;
* the agent restarts (the board reset): its new session is noticed at its first frame (the
  link sends a keepalive every second, which a fresh agent answers), the link raises
  LinkClosed once with the reason, then carries on in the new session, so the next request
  works without a manual step.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from edgeperf.links.base import Link, LinkClosed, LinkError
from edgeperf.links.serial_key import load_host_key
from edgeperf_agent import reliable, wire
from edgeperf_agent.serial_serve import FLOW_CONTROLS, PARITIES, bits_per_char

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile

SEND_BUFFER = 256 * 1024  # stream bytes queued ahead of the line before send() waits
URL_POLL_S = 0.002  # how often a URL port (no fd: rfc2217://) is asked for what arrived
# a URL port's read timeout: pyserial's RFC 2217 read() with timeout 0 returns one byte a
# call; with a timeout it takes every byte already queued (and waits this long for none)
URL_READ_TIMEOUT_S = 0.001


def preferred_chunk(rate: float) -> int:
    """A push chunk of at most a second of line time (a power of two, 4 KiB to 1 MiB): long
    enough that each request's header and round trip cost little, short enough for a
    progress line that moves (8 KiB at 115200 baud, 64 KiB at 921600)."""
    chunk = 4096
    while chunk * 2 <= rate and chunk < (1 << 20):
        chunk *= 2
    return chunk


class SerialLink(Link):
    name = "serial"
    slow = True  # the client asks the agent for compact QueryLog stretches
    lossless = True  # delivers exactly what was sent: a partial frame is late, never broken

    def __init__(self, port: str, baud: int = 115200, parity: str = "N", stopbits: int = 1,
                 flow_control: str = "none", connect_timeout: float = 10.0,
                 segment: int = reliable.DEFAULT_SEGMENT,
                 window: int = reliable.DEFAULT_WINDOW, key_file: str | None = None) -> None:
        import serial  # pyserial

        if parity not in PARITIES or stopbits not in (1, 2) or flow_control not in FLOW_CONTROLS:
            raise LinkError(f"serial {port}: parity must be N, E or O, stopbits 1 or 2, "
                            f"flow_control one of {', '.join(FLOW_CONTROLS)}")
        self.port, self.baud = port, baud
        # the agent's shared key, when it has one: AgentClient.hello does the handshake
        self.key_file = key_file
        self.auth_key = load_host_key(key_file, f"serial {port}") if key_file else None
        # a URL (rfc2217:// from a labgrid place): pyserial's handler, which has no fd to
        # select on, so the port's thread polls it (_pump); exclusive and write_timeout
        # apply to devices only
        self._url = "://" in port
        opts = dict(parity=parity, stopbits=stopbits, rtscts=flow_control == "rtscts",
                    xonxoff=flow_control == "xonxoff",
                    timeout=URL_READ_TIMEOUT_S if self._url else 0)
        try:
            self.ser = serial.serial_for_url(port, baud, **opts) if self._url else \
                serial.Serial(port, baud, write_timeout=0, exclusive=True, **opts)
        except (serial.SerialException, ValueError) as exc:
            raise LinkError(f"serial {port}: cannot open it at {baud} baud: {exc}; check the "
                            "port name (ls /dev/ttyUSB* /dev/ttyACM*) and that your user may "
                            "use it (group dialout)") from None
        self._serial_error = serial.SerialException
        self.rate = baud / bits_per_char(parity, stopbits)  # bytes a second
        self.preferred_chunk = preferred_chunk(self.rate)
        # ack_delay: the ACK of a reply waits up to 2 ms for our next request and follows it,
        # so it never sits on the line ahead of that request (ClockSync's round trips)
        self.ep = reliable.Endpoint(initiator=True, rate=self.rate, keepalive=1.0,
                                    ack_delay=0.002, segment=segment, window=window)
        self._cv = threading.Condition()
        self._notices: deque[str] = deque()  # session resets, each raised once
        self._error: str | None = None  # the port is gone
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._pump, name=f"serial-{port}", daemon=True)
        self._thread.start()
        with self._cv:
            self._cv.wait_for(lambda: self.ep.established or self._error, connect_timeout)
            up, error = self.ep.established, self._error
            self._notices.clear()
        if not up:
            self.close()
            raise LinkError(error or (
                f"serial {port}: no edgeperf agent answered at {baud} baud in "
                f"{connect_timeout:.0f} s; start 'python3 agent.pyz serve --serial DEV --baud "
                f"{baud}' on the device (the same baud on both ends) and check the wiring"))

    @property
    def bytes_per_s(self) -> float:
        """The line's byte rate: ClockSync subtracts a frame's wire time from each exchange."""
        return self.rate

    @property
    def frame_overhead_bytes(self) -> int:
        """Fewest bytes the reliable layer adds around a message sent as one DATA frame (its
        wire head, CRC and this session's connection header, without a piggybacked ACK): a
        lower bound, so ClockSync's wire-time subtraction stays conservative."""
        return len(wire.encode(wire.DATA, 0, {"c": self.ep.sid ^ self.ep.peer}))

    @property
    def connection_id(self) -> int:
        """This reliable session's id (sid ^ peer): what the key handshake is bound to."""
        with self._cv:
            return self.ep.sid ^ self.ep.peer

    def describe(self) -> str:
        return f"serial {self.port} @ {self.baud}"

    # ------------------------------------------------------------------ the Link contract
    def _raise_pending(self) -> None:
        if self._notices:
            raise LinkClosed(f"serial {self.port}: {self._notices.popleft()}")
        if self._error:
            raise LinkClosed(self._error)

    def send(self, data: bytes) -> None:
        with self._cv:
            self._raise_pending()
            while self.ep.pending > SEND_BUFFER:  # the line is slower than the caller
                self._cv.wait(0.5)
                self._raise_pending()
            self.ep.send(data)
        self._wake()

    def recv(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cv:
            while True:
                if self.ep.readable:
                    return self.ep.read(n)
                self._raise_pending()
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cv.wait(left)

    def close(self) -> None:
        self._closing = True
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        try:
            self.ser.close()
        except (OSError, self._serial_error):
            pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    @property
    def stats(self) -> reliable.LinkStats:
        return self.ep.stats

    # ------------------------------------------------------------------ the port's thread
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _pump(self) -> None:
        fd = -1 if self._url else self.ser.fileno()  # -1: polled every URL_POLL_S
        out = bytearray()
        try:
            while not self._closing:
                with self._cv:
                    now = time.monotonic()
                    if not out:  # what the port has not taken yet is not yet on the line:
                        out += self.ep.poll(now)  # no retransmission piles up behind it
                    # bytes the port has not taken: select wakes when it can take more
                    wait = 0.5 if out else min(0.5, self.ep.next_deadline(now) - now)
                    self._cv.notify_all()  # send() may be waiting for the window to move
                if fd < 0:
                    ready_r, _, _ = select.select([self._wake_r], [], [],
                                                  max(0.0, min(wait, URL_POLL_S)))
                    ready_r, ready_w = [*ready_r, fd], [fd]  # read() raises once it is gone
                else:
                    ready_r, ready_w, _ = select.select([fd, self._wake_r], [fd] if out else [],
                                                        [], max(0.0, wait))
                if self._wake_r in ready_r:
                    os.read(self._wake_r, 4096)
                if fd in ready_w and out:
                    n = self.ser.write(bytes(out[:65536]))
                    del out[:n or 0]
                if fd in ready_r:
                    # a URL port: what its reader thread queued (read() raises once it is gone)
                    data = self.ser.read(max(1, min(self.ser.in_waiting, 1 << 16))) \
                        if fd < 0 else self.ser.read(1 << 16)
                    if data:
                        with self._cv:
                            self.ep.feed(data, time.monotonic())
                            for ev in self.ep.take_events():
                                if ev.startswith("reset: "):
                                    self._notices.append(ev[len("reset: "):])
                            self._cv.notify_all()
        except (OSError, self._serial_error) as exc:
            with self._cv:
                self._error = (f"serial {self.port}: the port went away ({exc}); is the "
                               "adapter still plugged in and the device powered?")
                self._cv.notify_all()


def open_profile(profile: BoardProfile, report: Any = None,
                 needs_runtime: bool = False) -> SerialLink:
    """The ``serial`` scheme's opener (links/registry.py)."""
    sp = profile.serial
    if sp is None:
        raise LinkError(f"board {profile.name}: a serial link needs its port ([link] port)")
    return SerialLink(sp.port, sp.baud, sp.parity, sp.stopbits, sp.flow_control,
                      key_file=sp.key_file)
