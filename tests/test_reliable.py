"""The reliable layer (device_agent/reliable.py) without a line: two endpoints joined by a
simulated channel in virtual time, through any pattern of drops, corruptions, duplicates,
garbage and bounded reordering (hypothesis draws the pattern)."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeperf_agent import reliable, wire
from edgeperf_agent.reliable import Endpoint

DT = 0.005  # virtual seconds a step


@dataclass
class Channel:
    """One direction of the line: applies the next fault to each chunk written to it."""

    faults: list
    rng: random.Random
    queue: list = field(default_factory=list)  # (deliver at step, bytes)
    used: int = 0

    def write(self, data: bytes, step: int) -> None:
        if not data:
            return
        fault = self.faults[self.used] if self.used < len(self.faults) else ("ok",)
        self.used += 1
        kind = fault[0]
        if kind == "drop":
            return
        if kind == "flip":
            b = bytearray(data)
            b[fault[1] % len(b)] ^= 1 << fault[2]
            data = bytes(b)
        elif kind == "cut":  # the tail of the chunk is lost
            data = data[: fault[1] % len(data)]
        elif kind == "garbage":
            data = fault[1] + data
        elif kind == "dup":
            self.queue.append((step + 1, data))
        delay = fault[1] if kind == "delay" else 1
        self.queue.append((step + delay, data))

    def arrivals(self, step: int) -> list[bytes]:
        out = [d for s, d in self.queue if s <= step]
        self.queue = [(s, d) for s, d in self.queue if s > step]
        return out


def run_pair(a: Endpoint, b: Endpoint, ab: Channel, ba: Channel, msgs_a: list[bytes],
             msgs_b: list[bytes], max_steps: int = 60_000, read_chunk: int = -1):
    """Both ends send their messages (as wire frames) and read the other's; returns what
    each side decoded, in order, and the steps it took."""
    for i, m in enumerate(msgs_a):
        a.send(wire.encode(wire.EVENT, i, {"m": i}, m))
    for i, m in enumerate(msgs_b):
        b.send(wire.encode(wire.EVENT, i, {"m": i}, m))
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    dec = {"a": wire.FrameDecoder(), "b": wire.FrameDecoder()}
    for step in range(max_steps):
        now = step * DT
        ab.write(a.poll(now), step)
        ba.write(b.poll(now), step)
        for d in ab.arrivals(step):
            b.feed(d, now)
        for d in ba.arrivals(step):
            a.feed(d, now)
        for name, ep in (("a", a), ("b", b)):
            for f in dec[name].feed(ep.read(read_chunk)):
                got[name].append(f.body)
        if len(got["b"]) >= len(msgs_a) and len(got["a"]) >= len(msgs_b) \
                and not a.pending and not b.pending:
            return got["b"], got["a"], step
    return got["b"], got["a"], max_steps


def pair(seed: int = 1, **kw) -> tuple[Endpoint, Endpoint]:
    rng = random.Random(seed)
    a = Endpoint(initiator=True, sid=reliable.new_session_id(rng), keepalive=0.5, **kw)
    b = Endpoint(initiator=False, sid=reliable.new_session_id(rng), **kw)
    return a, b


fault = st.one_of(
    st.just(("ok",)),
    st.just(("drop",)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(0, 10_000)),
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=300)),
    st.just(("dup",)),
    st.tuples(st.just("delay"), st.integers(1, 8)),  # reordering, under a bound
)
messages = st.lists(st.binary(min_size=0, max_size=5000), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs_a=messages, msgs_b=messages, faults_ab=st.lists(fault, max_size=60),
       faults_ba=st.lists(fault, max_size=60), segment=st.sampled_from([128, 512, 2048]),
       window=st.integers(1, 8))
def test_any_bounded_fault_pattern_delivers_the_same_messages_in_order(
        msgs_a, msgs_b, faults_ab, faults_ba, segment, window):
    a, b = pair(segment=segment, window=window, rto=0.05, max_rto=0.5)
    rng = random.Random(0)
    got_b, got_a, steps = run_pair(a, b, Channel(faults_ab, rng), Channel(faults_ba, rng),
                                   msgs_a, msgs_b)
    assert got_b == msgs_a
    assert got_a == msgs_b
    assert steps < 60_000
    assert a.established and b.established
    assert a.stats.resets == b.stats.resets == 0
    assert a.stats.payload_delivered == sum(len(wire.encode(wire.EVENT, i, {"m": i}, m))
                                            for i, m in enumerate(msgs_b))


def test_clean_line_sends_each_segment_once_and_fills_the_window():
    a, b = pair()
    data = [bytes([i % 251]) * 3000 for i in range(20)]
    got_b, got_a, steps = run_pair(a, b, Channel([], random.Random()),
                                   Channel([], random.Random()), data, [b"ok"])
    assert got_b == data and got_a == [b"ok"]
    assert a.stats.retransmits == a.stats.fast_retransmits == 0
    assert b.stats.duplicates == 0
    framed = sum(len(wire.encode(wire.EVENT, i, {"m": i}, m)) for i, m in enumerate(data))
    assert a.stats.payload_sent == framed
    assert a.stats.segments_sent == -(-framed // reliable.DEFAULT_SEGMENT)
    assert steps < 20  # a window of segments a step: no stop-and-wait


def test_random_faults_at_a_high_rate_still_deliver_exactly():
    """1% of chunks dropped, 5% corrupted, some duplicated, long run."""
    rng = random.Random(7)
    faults = []
    for _ in range(3000):
        r = rng.random()
        if r < 0.01:
            faults.append(("drop",))
        elif r < 0.06:
            faults.append(("flip", rng.randrange(10_000), rng.randrange(8)))
        elif r < 0.08:
            faults.append(("dup",))
        else:
            faults.append(("ok",))
    a, b = pair(seed=3, rto=0.05, max_rto=0.5)
    data = [rng.randbytes(rng.randrange(1, 20_000)) for _ in range(40)]
    got_b, _, steps = run_pair(a, b, Channel(faults, rng), Channel(list(faults), rng), data,
                               [b"x"])
    assert got_b == data and steps < 60_000
    assert a.stats.retransmits + a.stats.fast_retransmits > 0
    assert b.stats.duplicates > 0


def test_fast_retransmit_after_a_hole_without_waiting_for_the_timer():
    a, b = pair(rto=10.0, max_rto=10.0)  # the timer alone would take 10 s
    # chunk 0 is the SYN, chunk 1 the first window: corrupt its second segment
    faults = [("ok",), ("ok",), ("flip", 3000, 2)]  # two SYNs, then the first window
    data = [bytes(2000) for _ in range(30)]
    got_b, _, steps = run_pair(a, b, Channel(faults, random.Random()),
                               Channel([], random.Random()), data, [b"y"])
    assert got_b == data
    assert a.stats.fast_retransmits == 1 and a.stats.retransmits == 0
    assert b.stats.out_of_order >= 1
    assert steps * DT < 1.0


def test_segments_shrink_on_a_noisy_line_and_grow_back_on_a_clean_one():
    a, b = pair(rto=0.05)
    rng = random.Random(2)
    sizes: list[int] = []

    class Recording(Channel):  # faults hit chunks that carry DATA only
        def write(self, data: bytes, step: int) -> None:
            data_sizes = [len(f.body) for f in wire.FrameDecoder().feed(data)
                          if f.type == wire.DATA]
            sizes.extend(data_sizes)
            if data_sizes:
                super().write(data, step)
            elif data:
                self.queue.append((step + 1, data))

    flips = [("flip", rng.randrange(10_000), 3) for _ in range(12)]
    ab = Recording(flips, rng)
    run_pair(a, b, ab, Channel([], rng), [bytes(100_000)], [b"z"])
    assert min(sizes) < 1024 and a.stats.retransmits + a.stats.fast_retransmits >= 6
    sizes.clear()
    run_pair(a, b, ab, Channel([], rng), [bytes(200_000)], [])
    assert sizes[-2] == reliable.DEFAULT_SEGMENT  # the last one is the message tail
    assert a._seg == reliable.DEFAULT_SEGMENT


def test_rto_waits_for_the_line_to_carry_the_window():
    """At 9600 baud (960 B/s) a window of 8 x 2 KiB takes 17 s to go out: no timer fires
    before the line could have carried a segment."""
    a, b = pair(rate=960.0, rto=0.2)
    a.established, a.peer = True, b.sid  # skip the handshake for the arithmetic
    a.send(bytes(8 * 2048))
    out = a.poll(0.0)
    assert len(out) > 8 * 2048
    dues = sorted(s.due for s in a._unacked)
    for k, due in enumerate(dues):
        assert due > (k + 1) * 2048 / 960 + 0.2
    later = wire.FrameDecoder().feed(a.poll(dues[0] - 0.01))
    assert not [f for f in later if f.type == wire.DATA]
    assert a.stats.retransmits == 0
    a.poll(dues[0])
    assert a.stats.retransmits == 1


# ---------------------------------------------------------------- sessions


def handshake(a: Endpoint, b: Endpoint, t: float = 0.0) -> float:
    for _ in range(10):
        b.feed(a.poll(t), t)
        a.feed(b.poll(t), t)
        t += 0.01
        if a.established and b.established:
            return t
    raise AssertionError("no handshake")


def test_listener_announces_itself_and_answers_the_initiator():
    a, b = pair()
    banner = b.poll(0.0)
    (f,) = wire.FrameDecoder().feed(banner)
    assert (f.type, f.header["sid"], f.header["peer"]) == (wire.SYN, b.sid, 0)
    a.feed(banner, 0.0)
    assert not a.established
    handshake(a, b)
    assert a.peer == b.sid and b.peer == a.sid
    assert a.take_events() == ["established"] and b.take_events() == ["established"]


def frames_of(data: bytes) -> list[wire.Frame]:
    return wire.FrameDecoder().feed(data)


def test_a_request_and_its_reply_cross_the_line_with_no_ack_frame():
    """The reply carries the request's ACK and the next request the reply's, so a round trip
    is two DATA frames and nothing else (what ClockSync's round trips are made of)."""
    a, b = pair(ack_delay=0.002)  # the host's setting: its ACK waits for its next request
    t = handshake(a, b)
    for i in range(3):
        a.send(b"request %d" % i)
        out = a.poll(t)
        kinds = [f.type for f in frames_of(out)]
        assert kinds == [wire.DATA], kinds
        b.feed(out, t)
        assert b.read() == b"request %d" % i
        b.send(b"reply %d" % i)
        out = b.poll(t)
        (f,) = frames_of(out)  # no ACK frame behind the reply
        assert f.type == wire.DATA and f.header["a"] == b._expected
        a.feed(out, t)
        assert a.read() == b"reply %d" % i and a.pending == 0  # the request is acknowledged
    assert a.stats.acks_piggybacked == 2 and b.stats.acks_piggybacked == 3
    # nothing more to send: the host's ACK of the last reply goes alone, after its delay
    assert a.poll(t) == b"" and a.next_deadline(t) == pytest.approx(t + 0.002)
    (f,) = frames_of(a.poll(t + 0.002))
    assert f.type == wire.ACK and f.seq == a._expected
    b.feed(wire.encode(wire.ACK, a._expected, {"c": a.sid ^ a.peer, "sack": []}), t)
    assert b.pending == 0


def test_an_ack_with_bytes_out_of_order_still_goes_as_its_own_frame_with_sack():
    a, b = pair(segment=128)
    t = handshake(a, b)
    a.send(bytes(300))  # three segments: 128, 128, 44
    first, second, third = frames_of(a.poll(t))
    b.feed(wire.encode(wire.DATA, first.seq, first.header, first.body)
           + wire.encode(wire.DATA, third.seq, third.header, third.body), t)  # second lost
    b.send(b"reply")
    kinds = [(f.type, f.header.get("a"), f.header.get("sack")) for f in frames_of(b.poll(t))]
    assert kinds == [(wire.DATA, 128, None), (wire.ACK, None, [[256, 300]])], kinds


def test_a_restarted_listener_is_noticed_and_a_new_session_starts():
    a, b = pair()
    t = handshake(a, b)
    a.take_events()
    b.send(b"the first stretch")
    a.feed(b.poll(t), t)
    b2 = Endpoint(initiator=False, sid=b.sid + 2)  # the agent restarted
    a.feed(b2.poll(t), t)  # its banner
    assert not a.established
    (ev,) = a.take_events()
    assert ev.startswith("reset: the agent restarted") and f"{b2.sid:08x}" in ev
    assert a.read() == b"the first stretch"  # what arrived before stays readable
    handshake(a, b2, t)
    a.send(b"again")
    b2.feed(a.poll(t + 1), t + 1)
    assert b2.read() == b"again"


def test_a_restarted_listener_whose_banner_was_lost_is_noticed_by_the_keepalive():
    a, b = pair()
    t = handshake(a, b)
    a.take_events()
    b2 = Endpoint(initiator=False, sid=b.sid + 2)
    b2.poll(t)  # the banner is lost on the line
    t += 0.6  # past the keepalive
    b2.feed(a.poll(t), t)  # a keepalive ACK of a session it does not know
    reply = b2.poll(t)
    assert reply and b2.stats.stray_frames == 1
    a.feed(reply, t)
    assert a.take_events()[0].startswith("reset: the agent restarted")


def test_a_new_initiator_replaces_the_session_and_the_old_one_is_dropped():
    a, b = pair()
    t = handshake(a, b)
    b.take_events()
    a.send(b"unfinished request")
    old = a.poll(t)
    a2 = Endpoint(initiator=True, sid=a.sid + 2)
    t = handshake(a2, b, t)
    assert b.take_events() == [f"reset: a new session from the host replaced {a.sid:08x}",
                               "established"]
    b.feed(old, t)  # a stale frame of the old session
    assert b.read() == b"" and b.stats.stray_frames == 1


def test_stray_frames_are_answered_at_most_once_per_interval():
    b = Endpoint(initiator=False, syn_interval=0.5)
    b.poll(0.0)
    junk = wire.encode(wire.ACK, 3, {"c": 12345, "sack": []})
    syns = 0
    for i in range(100):
        t = 1.0 + i * 0.01
        b.feed(junk, t)
        syns += len(wire.FrameDecoder().feed(b.poll(t)))
    assert b.stats.stray_frames == 100
    assert syns == 2  # at 1.0 and 1.5


# ---------------------------------------------------------------- memory bounds


def forged_head(hlen: int, blen: int, type_: int = wire.DATA) -> bytes:
    head = struct.pack("<2sBBIII", wire.MAGIC, wire.WIRE_VERSION, type_, 0, hlen, blen)
    return head + struct.pack("<I", zlib.crc32(head))


@pytest.mark.parametrize("initiator", [True, False])
def test_endless_garbage_and_huge_lengths_hold_bounded_memory(initiator):
    ep = Endpoint(initiator=initiator)
    rng = random.Random(5)
    bound = reliable.DEFAULT_SEGMENT + reliable.FRAME_SLACK + wire.HEAD_SIZE + 4 + 4096
    peak = 0
    for i in range(2000):
        piece = rng.randbytes(4096)
        if i % 3 == 0:
            piece = forged_head(10, 2**31) + piece[:4000]
        elif i % 3 == 1:
            piece = forged_head(100, reliable.DEFAULT_SEGMENT) + piece[:4000]
        ep.feed(piece, i * 0.01)
        ep.poll(i * 0.01)
        peak = max(peak, ep.buffered)
    assert peak <= bound
    assert ep.decoder.stats.oversized >= 600


def test_a_peer_that_floods_data_cannot_outgrow_the_reader_buffer():
    a, b = pair(rcv_buffer=64 * 1024)
    t = handshake(a, b)
    a.send(bytes(4 * 1024 * 1024))
    for _ in range(5000):  # b's reader never reads
        t += 0.01
        b.feed(a.poll(t), t)
        a.feed(b.poll(t), t)
    assert b.readable <= 64 * 1024 + reliable.DEFAULT_SEGMENT
    assert b.buffered <= 64 * 1024 + (reliable.DEFAULT_WINDOW + 2) * reliable.DEFAULT_SEGMENT
    assert b.stats.refused > 0
    got = b.read()
    for _ in range(20000):  # the reader catches up: everything arrives
        t += 0.01
        b.feed(a.poll(t), t)
        a.feed(b.poll(t), t)
        got += b.read()
        if len(got) == 4 * 1024 * 1024:
            break
    assert got == bytes(4 * 1024 * 1024)
