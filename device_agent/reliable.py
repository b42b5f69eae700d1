"""Reliable, in-order delivery of a byte stream over a line that loses and corrupts bytes.

A UART or a USB gadget serial port is a bare byte stream: bits flip, bytes drop, a boot
banner or a kernel message lands in the middle, the far end resets without a word. This
layer turns such a line into a byte pipe that delivers exactly what was sent, in order, once,
or reports that the session ended. It is pure logic, with no I/O and no clock of its own:
the caller feeds the bytes read from the line and the time in, and takes the bytes to write
and the delivered data out. Both ends use it (host/serial_link.py, device_agent/serial_serve.py),
and tests drive it through any pattern of faults without a line at all.

Every frame on the line is a frame of the one codec (device_agent.wire), whose CRCs reject
whatever is not a frame:

    SYN   seq 0    {"sid": own session id, "peer": the peer's (0: unknown), "win", "mss"}
    DATA  seq n    {"c": connection id, "a": m (optional)} + up to "mss" bytes of the
                   stream from offset n; "a", when present, acknowledges as an ACK seq m does
    ACK   seq n    {"c": connection id, "sack": [[start, end], ...] received above n}:
                   every byte below offset n arrived

An ACK that is due rides on the next DATA frame, if one goes out before the ACK would (a
reply to the request it acknowledges): a request and its reply then cross the line with no
ACK frame ahead of either, which is what a round trip (ClockSync's) is measured by. A
separate ACK is still sent when bytes arrived out of order (it carries the SACK ranges).

Offsets count stream bytes from 0 in each direction of a session (modulo 2**32 on the
wire), so a segment that is sent again can be cut smaller than it was the first time.

The connection id is ``sid ^ peer``: a frame of an earlier session (a restarted agent, a
host that came back) never passes for one of this session. The initiator (the host) sends
SYN until the listener (the agent) answers with a SYN naming it. A listener announces
itself with one SYN when it starts and answers any frame of a session it does not know with
its SYN, so an initiator learns of an agent that restarted at the first frame either way
(the initiator's keepalive makes sure there is one).

The sender keeps up to ``window`` full segments of bytes in flight. A segment is sent again
when its timer runs out, and at once when an ACK shows that a segment sent after it arrived
(the line is first in, first out, so the earlier one is lost). Timers start when the line
will have carried the segment (the line rate is known), so a full window at 9600 baud is not
taken for a loss. Segments shrink after a loss, a lost one is cut to the new size when it is
sent again, and they grow back while the line is clean: on a line that corrupts one byte in
a thousand, a 2 KiB segment almost never arrives whole, a 128-byte one mostly does. The
receiver keeps at most a window of bytes out of order, in at most ``OOO_PER_WINDOW`` pieces a
window segment, and stops accepting when the reader falls ``rcv_buffer`` bytes behind, so no
peer can make it hold more, or spend more than a sort of those pieces on a frame.
This module must run on Python 3.9.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from . import wire

DEFAULT_WINDOW = 8
DEFAULT_SEGMENT = 2048  # payload bytes of a DATA frame: 0.18 s at 115200 baud
MIN_SEGMENT = 128
FRAME_SLACK = 256  # header and framing room above the payload in a line frame
DEFAULT_RCV_BUFFER = 1 << 20
# Stream bytes a sender may hold queued or in flight: a reply of the largest chunk and its
# header fit, a run's QueryLog does not (it waits in the run's own log for room, see
# serial_serve.py). ``send`` past it raises Backlog rather than grow without limit.
DEFAULT_MAX_OUTBOX = 8 << 20
MAX_SACK_RANGES = 16
# Out-of-order pieces the receiver keeps, per segment of its window. A sender keeps fewer
# than 8 segments in flight per segment of its window (cut retransmissions add a few);
# without a count limit, one-byte pieces would fill the byte limit with 32,768 entries.
OOO_PER_WINDOW = 16
_MOD = 1 << 32


class Backlog(Exception):
    """``send`` would queue more than the endpoint's ``max_outbox`` bytes."""


def _unwrap(seq32: int, ref: int) -> int:
    """The stream offset nearest ``ref`` whose low 32 bits are ``seq32``."""
    d = (seq32 - ref) & (_MOD - 1)
    return ref + (d - _MOD if d >= _MOD // 2 else d)


@dataclass
class LinkStats:
    segments_sent: int = 0  # DATA frames, first transmissions
    retransmits: int = 0  # timer ran out
    fast_retransmits: int = 0  # a later segment arrived first
    duplicates: int = 0  # DATA frames received again
    out_of_order: int = 0
    refused: int = 0  # DATA dropped: outside the window or the reader is behind
    stray_frames: int = 0  # of another session
    acks_sent: int = 0
    acks_received: int = 0
    acks_piggybacked: int = 0  # acknowledgements carried by a DATA frame
    syns_sent: int = 0
    payload_sent: int = 0  # stream bytes handed to DATA frames (first transmission)
    payload_delivered: int = 0
    line_bytes_out: int = 0
    line_bytes_in: int = 0
    sessions: int = 0  # sessions established
    resets: int = 0  # sessions that ended because the peer restarted


class _Segment:
    __slots__ = ("start", "payload", "due", "tries", "order", "lost", "carried")

    def __init__(self, start: int, payload: bytes) -> None:
        self.start = start
        self.payload = payload
        self.due = 0.0
        self.tries = 0
        self.order = 0  # transmission order of its latest copy
        self.lost = False  # a later segment arrived first: resend at once
        self.carried = 0.0  # when the line will have carried its latest copy


def new_session_id(rng: Optional[random.Random] = None) -> int:
    return (rng or random.SystemRandom()).getrandbits(31) | 1


class Endpoint:
    """One end of a reliable session over a byte line. Not thread-safe: callers lock."""

    def __init__(self, *, initiator: bool, rate: float = 0.0, window: int = DEFAULT_WINDOW,
                 segment: int = DEFAULT_SEGMENT, rto: float = 0.25, max_rto: float = 4.0,
                 syn_interval: float = 0.5, keepalive: float = 0.0, stale: float = 0.5,
                 rcv_buffer: int = DEFAULT_RCV_BUFFER, sid: Optional[int] = None,
                 ack_delay: float = 0.0, max_outbox: int = DEFAULT_MAX_OUTBOX) -> None:
        if segment < MIN_SEGMENT or window < 1:
            raise ValueError("segment must be >= %d bytes and window >= 1" % MIN_SEGMENT)
        self.initiator = initiator
        self.rate = float(rate)  # line bytes per second (0: no pacing known)
        self.window = window
        self.mss = segment
        self.rto = rto
        self.max_rto = max_rto
        self.syn_interval = syn_interval
        self.keepalive = keepalive
        self.stale = stale
        # an ACK may wait this long for data of ours to go out first (then it follows it), so
        # that it never delays a message the application is about to send
        self.ack_delay = ack_delay
        self._ack_due_at = 0.0
        self.rcv_buffer = rcv_buffer
        self.max_outbox = max_outbox
        self.sid = sid or new_session_id()
        self.peer = 0
        self.established = False
        self.stats = LinkStats()
        self.decoder = wire.FrameDecoder(max_frame=segment + FRAME_SLACK)
        self.events: List[str] = []  # "established", "reset: why": for the caller to take
        self._out: List[bytes] = []  # line bytes produced since the last poll
        self._syn_due: Optional[float] = 0.0 if initiator else None
        self._announce = not initiator  # a listener says who it is once, when it starts
        self._last_rx = 0.0
        self._last_tx = -1e9
        self._syn_sent_at = -1e9
        self._line_free = 0.0
        self._order = 0
        self._srtt: Optional[float] = None
        self._rttvar = 0.0
        self._rto = rto  # the timer of a first transmission, from the round trips seen
        self._reset_stream()

    # ------------------------------------------------------------------ the caller's side
    def send(self, data: bytes) -> None:
        """Queue stream bytes; they go out as the window allows, once a session is up.
        Raises Backlog, queueing nothing, when they would take the bytes queued or in
        flight past ``max_outbox``: a caller with more to say checks ``room`` first."""
        if len(data) > self.room:
            raise Backlog("%d bytes would take the link's queue past its %d-byte limit "
                          "(%d queued or in flight)" % (len(data), self.max_outbox,
                                                        self.pending))
        self._outbox += data

    @property
    def room(self) -> int:
        """Stream bytes ``send`` takes now."""
        return max(0, self.max_outbox - self.pending)

    @property
    def pending(self) -> int:
        """Stream bytes queued or in flight (not yet acknowledged)."""
        return len(self._outbox) + self._in_flight

    def read(self, n: int = -1) -> bytes:
        """Delivered stream bytes, in order (at most n; all when n < 0)."""
        if n < 0 or n >= len(self._inbox):
            data = bytes(self._inbox)
            self._inbox.clear()
        else:
            data = bytes(self._inbox[:n])
            del self._inbox[:n]
        return data

    @property
    def readable(self) -> int:
        return len(self._inbox)

    def take_events(self) -> List[str]:
        ev, self.events = self.events, []
        return ev

    @property
    def buffered(self) -> int:
        """Bytes this endpoint holds for the line and the reader (the memory bound)."""
        return self.decoder.buffered + len(self._inbox) + self._ooo_bytes

    # ------------------------------------------------------------------ line input
    def feed(self, data: bytes, now: float) -> None:
        """Bytes read from the line."""
        if not data:
            return
        self.stats.line_bytes_in += len(data)
        self._last_rx = now
        for frame in self.decoder.feed(data):
            self._frame(frame, now)

    def _frame(self, f: wire.Frame, now: float) -> None:
        if f.version != wire.WIRE_VERSION:
            return
        h = f.header
        if f.type == wire.SYN:
            self._on_syn(h, now)
            return
        if f.type not in (wire.DATA, wire.ACK):
            self.stats.stray_frames += 1  # an application frame on a bare line: not ours
            return
        if not self.established or h.get("c") != self.sid ^ self.peer:
            self.stats.stray_frames += 1
            if not self.initiator:
                self._syn_soon(now)  # "I do not know that session": the initiator resyncs
            return
        if f.type == wire.DATA:
            a = h.get("a")
            if isinstance(a, int) and 0 <= a < _MOD:
                self._on_ack(a, None, now)
            if not self._ack_due:
                self._ack_due_at = now + self.ack_delay
            self._on_data(f.seq, f.body)
        else:
            self._on_ack(f.seq, h.get("sack"), now)

    def _on_syn(self, h: Dict[str, Any], now: float) -> None:
        sid, peer = h.get("sid"), h.get("peer")
        if not isinstance(sid, int) or not isinstance(peer, int) or sid <= 0:
            return
        win, mss = h.get("win"), h.get("mss")
        if self.initiator:
            if self.established:
                if sid == self.peer and peer in (self.sid, 0):
                    return  # a repeat of its answer, or its banner from before it knew us
                if sid != self.peer:
                    why = "the agent restarted (session %08x, now %08x)" % (self.peer, sid)
                else:
                    why = "the agent no longer knows this session"
                self._lost_session(now, why)
                return
            if peer == self.sid:
                self._establish(sid, win, mss)
            else:
                self._syn_due = now  # it does not know us yet: say who we are
            return
        # listener: any SYN from an initiator starts or confirms its session
        if sid != self.peer or not self.established:
            if self.established:
                self._lost_session(now, "a new session from the host replaced %08x"
                                   % self.peer)
            self._establish(sid, win, mss)
        self._syn_soon(now, force=True)

    def _establish(self, peer: int, win: Any, mss: Any) -> None:
        self.peer = peer
        self.established = True
        self._syn_due = None
        if isinstance(win, int) and win >= 1:
            self._peer_window = min(self.window, win)
        if isinstance(mss, int) and mss >= MIN_SEGMENT:
            self._peer_mss = min(self.mss, mss)
            self._seg = min(self._seg, self._peer_mss)
        self.stats.sessions += 1
        self.events.append("established")

    def _lost_session(self, now: float, why: str) -> None:
        """The peer restarted: what was in flight is gone; delivered bytes stay readable."""
        self.stats.resets += 1
        self.events.append("reset: " + why)
        self.established = False
        self.peer = 0
        inbox = self._inbox
        self._reset_stream()
        if self.initiator:
            # what the old agent said before it went stays readable; nothing of a new
            # session can arrive before the host, told of the reset, asks again
            self._inbox = inbox
            self._syn_due = now

    def _reset_stream(self) -> None:
        self._outbox = bytearray()
        self._unacked: List[_Segment] = []  # in stream order
        self._in_flight = 0  # their bytes
        self._snd_una = 0  # the first byte not yet acknowledged
        self._snd_nxt = 0  # the offset of the next new byte
        self._inbox = bytearray()
        self._expected = 0
        self._ooo: Dict[int, bytes] = {}  # start offset -> bytes that arrived early
        self._ooo_bytes = 0
        self._ack_due = False
        self._seg = self.mss
        self._peer_window = self.window
        self._peer_mss = self.mss
        self._rwin = self.window * self.mss  # bytes the receiver takes ahead of the reader

    def _syn_soon(self, now: float, force: bool = False) -> None:
        # a listener answers stray frames at most once per syn_interval: a flood of them
        # must not become a flood of answers
        if force or now - self._syn_sent_at >= self.syn_interval:
            self._syn_due = now
        elif self._syn_due is None:
            self._syn_due = self._syn_sent_at + self.syn_interval

    def _on_data(self, seq32: int, payload: bytes) -> None:
        self._ack_due = True
        start = _unwrap(seq32, self._expected)
        end = start + len(payload)
        if end <= self._expected or not payload:
            self.stats.duplicates += 1
            return
        if end > self._expected + self._rwin:
            self.stats.refused += 1  # beyond the window: a peer that does not keep to it
            return
        if start > self._expected:
            if len(self._ooo.get(start, b"")) >= len(payload):
                self.stats.duplicates += 1
                return
            if (self._ooo_bytes + len(payload) > 2 * self._rwin
                    or (start not in self._ooo and len(self._ooo) >= self.window * OOO_PER_WINDOW)):
                self.stats.refused += 1
                return
            self.stats.out_of_order += 1
            self._ooo_bytes += len(payload) - len(self._ooo.get(start, b""))
            self._ooo[start] = payload
            return
        if len(self._inbox) >= self.rcv_buffer:
            self.stats.refused += 1  # the reader is behind: the sender will try again
            return
        self._deliver(payload[self._expected - start:])
        # what arrived early may continue the stream now: one pass in offset order (a scan
        # of every entry per piece delivered was quadratic in what a peer can park here)
        for s in sorted(self._ooo) if self._ooo else ():
            if s > self._expected:
                break
            piece = self._ooo.pop(s)
            self._ooo_bytes -= len(piece)
            if s + len(piece) > self._expected:
                self._deliver(piece[self._expected - s:])

    def _deliver(self, payload: bytes) -> None:
        self._inbox += payload
        self._expected += len(payload)
        self.stats.payload_delivered += len(payload)

    def _sack(self) -> List[List[int]]:
        """Byte ranges received above the next expected offset, merged."""
        ranges: List[List[int]] = []
        for s in sorted(self._ooo):
            e = s + len(self._ooo[s])
            if ranges and s <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], e)
            else:
                ranges.append([s, e])
        return [[a % _MOD, b % _MOD] for a, b in ranges[:MAX_SACK_RANGES]]

    def _on_ack(self, cum32: int, sack: Any, now: float) -> None:
        self.stats.acks_received += 1
        cum = _unwrap(cum32, self._snd_una)
        if cum > self._snd_nxt:
            return  # acknowledges what was never sent: not of this session
        acked: List[Tuple[int, int]] = []
        if cum > self._snd_una:
            acked.append((self._snd_una, cum))
            self._snd_una = cum
        if isinstance(sack, list):
            for r in sack[:MAX_SACK_RANGES]:
                if isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r):
                    acked.append((_unwrap(r[0], cum), _unwrap(r[1], cum)))
        newest = -1  # transmission order of the latest copy the peer proved it received
        clean = 0  # segments acknowledged at their first transmission
        for seg in list(self._unacked):
            end = seg.start + len(seg.payload)
            if any(a <= seg.start and end <= b for a, b in acked):
                self._unacked.remove(seg)
                self._in_flight -= len(seg.payload)
                newest = max(newest, seg.order)
                if seg.tries == 1:  # Karn: only a segment sent once times the round trip
                    clean += 1
                    self._rtt_sample(now - seg.carried)
            elif seg.start < cum:  # partly acknowledged: keep the rest
                self._unacked[self._unacked.index(seg)] = rest = _Segment(
                    cum, seg.payload[cum - seg.start:])
                rest.due, rest.tries, rest.order = seg.due, seg.tries, seg.order
                self._in_flight -= cum - seg.start
        if clean and self._seg < self._peer_mss:  # a clean line: segments grow back
            self._seg = min(self._peer_mss, self._seg + clean * max(8, self._peer_mss // 32))
        for seg in self._unacked:
            if seg.order < newest:  # sent before one that arrived: lost on the way
                seg.due = now
                seg.lost = True

    # ------------------------------------------------------------------ line output
    def poll(self, now: float) -> bytes:
        """Bytes to write to the line now (SYN, retransmissions, new segments, an ACK)."""
        if self.decoder.buffered and now - self._last_rx >= self.stale:
            self._last_rx = now  # a partial frame lost its tail: look past it
            for frame in self.decoder.expire():
                self._frame(frame, now)
        if self._announce:
            self._announce = False
            self._emit_syn(now)
        if self._syn_due is not None and now >= self._syn_due:
            self._emit_syn(now)
            self._syn_due = now + self.syn_interval if self.initiator else None
        if self.established:
            sent = self.stats.line_bytes_out
            self._retransmit(now)
            self._transmit_new(now)
            ack_now = self._ack_due and (now >= self._ack_due_at
                                         or self.stats.line_bytes_out != sent)
            if ack_now or (self.keepalive and now - self._last_tx >= self.keepalive):
                self._emit_ack(now)
        out = b"".join(self._out)
        self._out = []
        return out

    def next_deadline(self, now: float) -> float:
        """The latest time the caller may wait, with no line input, before polling again."""
        t = now + 3600.0
        if self._announce or (self.established and self._outbox and self._window_open()):
            return now
        if self._ack_due:
            t = min(t, self._ack_due_at)
        if self._syn_due is not None:
            t = min(t, self._syn_due)
        for seg in self._unacked:
            t = min(t, seg.due)
        if self.keepalive and self.established:
            t = min(t, self._last_tx + self.keepalive)
        if self.decoder.buffered:
            t = min(t, self._last_rx + self.stale)
        return max(t, now)

    def _put(self, frame: bytes, now: float) -> float:
        """Queue a frame for the line; returns when the line will have carried it."""
        self._out.append(frame)
        self.stats.line_bytes_out += len(frame)
        self._last_tx = now
        self._line_free = max(self._line_free, now) + (len(frame) / self.rate
                                                      if self.rate else 0.0)
        return self._line_free

    def _emit_syn(self, now: float) -> None:
        self._syn_sent_at = now
        self.stats.syns_sent += 1
        self._put(wire.encode(wire.SYN, 0, {"sid": self.sid, "peer": self.peer,
                                            "win": self.window, "mss": self.mss}), now)

    def _emit_ack(self, now: float) -> None:
        self._ack_due = False
        self.stats.acks_sent += 1
        self._put(wire.encode(wire.ACK, self._expected % _MOD,
                              {"c": self.sid ^ self.peer, "sack": self._sack()}), now)

    def _send_segment(self, seg: _Segment, now: float) -> None:
        header: Dict[str, Any] = {"c": self.sid ^ self.peer}
        if self._ack_due:  # the ACK rides along; a separate one only to carry SACK ranges
            header["a"] = self._expected % _MOD
            self.stats.acks_piggybacked += 1
            self._ack_due = bool(self._ooo)
        self._order += 1
        seg.order = self._order
        seg.tries += 1
        backoff = min(self.max_rto, self._rto * (1 << min(seg.tries - 1, 8)))
        seg.carried = self._put(wire.encode(wire.DATA, seg.start % _MOD, header, seg.payload),
                                now)
        seg.due = seg.carried + backoff

    def _rtt_sample(self, rtt: float) -> None:
        """Jacobson's estimator, over the time from the line carrying a segment to its ACK
        (which includes the peer's own queue: its ACK waits behind the data it sends)."""
        rtt = max(0.0, rtt)
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar += 0.25 * (abs(self._srtt - rtt) - self._rttvar)
            self._srtt += 0.125 * (rtt - self._srtt)
        self._rto = min(self.max_rto, max(self.rto, self._srtt + 4 * self._rttvar))

    def _retransmit(self, now: float) -> None:
        if not any(s.due <= now for s in self._unacked):
            return
        # a loss: smaller segments get through a noisy line more often
        self._seg = max(MIN_SEGMENT, self._seg // 2)
        again: List[_Segment] = []
        for seg in self._unacked:
            if seg.due > now:
                again.append(seg)
                continue
            if seg.lost:
                self.stats.fast_retransmits += 1
            else:
                self.stats.retransmits += 1
            pieces = [seg]
            if len(seg.payload) > self._seg:  # cut it to the size that gets through now
                pieces = [_Segment(seg.start + i, seg.payload[i:i + self._seg])
                          for i in range(0, len(seg.payload), self._seg)]
                for p in pieces:
                    p.tries = seg.tries
            for p in pieces:
                self._send_segment(p, now)
            again += pieces
        self._unacked = again

    def _window_open(self) -> bool:
        """Room in the window for the next segment (whole: no slivers)."""
        n = min(self._seg, len(self._outbox))
        return (self._in_flight + n <= self._peer_window * self._peer_mss
                and len(self._unacked) < 8 * self._peer_window)

    def _transmit_new(self, now: float) -> None:
        while self._outbox and self._window_open():
            n = min(self._seg, len(self._outbox))
            payload = bytes(self._outbox[:n])
            del self._outbox[:n]
            seg = _Segment(self._snd_nxt, payload)
            self._snd_nxt += n
            self._in_flight += n
            self._unacked.append(seg)
            self.stats.segments_sent += 1
            self.stats.payload_sent += n
            self._send_segment(seg, now)
