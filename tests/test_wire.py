"""The frame codec (device_agent.wire): round trips, resync after garbage and corruption,
bounded memory against hostile lengths, and the exact byte layout."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edgeperf_agent import wire
from edgeperf_agent.server import MAX_CHUNK, Agent
from edgeperf_agent.wire import (
    HEAD_SIZE,
    MAGIC,
    MAX_HEADER,
    TRAILER_SIZE,
    WIRE_VERSION,
    Frame,
    FrameDecoder,
    WireError,
    encode,
)

SETTINGS = settings(deadline=None, max_examples=150, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- helpers


def forge(header: bytes = b"{}", body: bytes = b"", *, version: int = WIRE_VERSION,
          type_: int = wire.REQUEST, seq: int = 1, hlen: int | None = None,
          blen: int | None = None, frame_crc: int | None = None) -> bytes:
    """A frame built by hand: any version, any (even lying) lengths, a valid head CRC."""
    head = struct.pack("<2sBBIII", MAGIC, version, type_, seq,
                       len(header) if hlen is None else hlen,
                       len(body) if blen is None else blen)
    crc = zlib.crc32(body, zlib.crc32(header)) if frame_crc is None else frame_crc
    return head + struct.pack("<I", zlib.crc32(head)) + header + body + struct.pack("<I", crc)


def feed_in_pieces(dec: FrameDecoder, data: bytes, cuts: list[int]) -> list[Frame]:
    out: list[Frame] = []
    prev = 0
    for c in sorted(set(cuts)) + [len(data)]:
        out += dec.feed(data[prev:c])
        prev = c
    return out


def expected(type_: int, seq: int, header: dict[str, Any], body: bytes) -> Frame:
    return Frame(type_, seq & 0xFFFFFFFF, header, bytes(body), WIRE_VERSION)


json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=16)
headers = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
# Bodies: hypothesis' own small ones (edge bytes, repeats) and seeded random ones up to 100 KB.
big_bodies = st.tuples(st.integers(0, 100 * 1024), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[1]).bytes(t[0]))
bodies = st.binary(max_size=600) | big_bodies
small_bodies = st.binary(max_size=300)
types = st.sampled_from(sorted(wire.MESSAGE_TYPES)) | st.integers(0, 255)
seqs = st.integers(0, 2**32 - 1)
frame_specs = st.tuples(types, seqs, headers, bodies)
small_frame_specs = st.tuples(types, seqs, headers, small_bodies)

# Garbage that keeps hitting the decoder's slow paths: magic bytes, lone first magic bytes,
# magic followed by a head with a wrong CRC, plus plain noise.
garbage_pieces = (st.binary(max_size=80)
                  | st.sampled_from([MAGIC, MAGIC[:1], MAGIC[1:], MAGIC * 3, b"\x00" * 20])
                  | st.binary(min_size=18, max_size=40).map(lambda b: MAGIC + b))
garbage = st.lists(garbage_pieces, max_size=6).map(b"".join)


def no_valid_frame_inside(blob: bytes) -> bool:
    """True when the bytes hold no frame a decoder would accept (so they are pure garbage)."""
    dec = FrameDecoder()
    return not dec.feed(blob) and dec.buffered < HEAD_SIZE


# ---------------------------------------------------------------- round trips


@SETTINGS
@given(spec=frame_specs, data=st.data())
def test_round_trip_in_arbitrary_pieces(spec, data) -> None:
    type_, seq, header, body = spec
    raw = encode(type_, seq, header, body)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    dec = FrameDecoder()
    assert feed_in_pieces(dec, raw, cuts) == [expected(type_, seq, header, body)]
    assert dec.stats.frames == 1
    assert dec.stats.garbage_bytes == 0
    assert dec.buffered == 0


@settings(deadline=None, max_examples=15, database=None)
@given(specs=st.lists(small_frame_specs, min_size=1, max_size=3))
def test_round_trip_one_byte_at_a_time(specs) -> None:
    raws = [encode(*s) for s in specs]
    raw = b"".join(raws)
    ends = list(np.cumsum([len(r) for r in raws]) - 1)
    dec = FrameDecoder()
    out: list[Frame] = []
    came_out_at: list[int] = []
    for i in range(len(raw)):
        got = dec.feed(raw[i:i + 1])
        out += got
        came_out_at += [i] * len(got)
    assert out == [expected(*s) for s in specs]
    assert came_out_at == ends  # each frame comes out exactly when its last byte arrives
    assert dec.buffered == 0


def test_round_trip_of_a_100_kb_body_one_byte_at_a_time() -> None:
    body = np.random.default_rng(7).bytes(100 * 1024)
    raw = encode(wire.RESPONSE, 9, {"op": "results"}, body)
    dec = FrameDecoder()
    got: list[Frame] = []
    for i in range(len(raw) - 1):
        got += dec.feed(raw[i:i + 1])
    assert got == [] and dec.buffered == len(raw) - 1
    assert dec.feed(raw[-1:]) == [expected(wire.RESPONSE, 9, {"op": "results"}, body)]


def test_seq_is_masked_to_32_bits() -> None:
    raw = encode(wire.REQUEST, 2**32 + 5, {"op": "hello"})
    assert FrameDecoder().feed(raw)[0].seq == 5


# ---------------------------------------------------------------- garbage and resync


@SETTINGS
@given(specs=st.lists(frame_specs, min_size=1, max_size=4),
       junk=st.lists(garbage, min_size=5, max_size=5), data=st.data())
def test_garbage_before_between_and_after_frames(specs, junk, data) -> None:
    # junk[0] before, junk[1..3] between (as many as needed), junk[-1] after
    frames = [encode(*s) for s in specs]
    gaps = [junk[0]] + junk[1:1 + len(frames) - 1] + [junk[-1]]
    for g in gaps:
        assume(no_valid_frame_inside(g))
    stream = gaps[0] + b"".join(f + g for f, g in zip(frames, gaps[1:], strict=True))
    total_garbage = sum(len(g) for g in gaps)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    dec = FrameDecoder()
    got = feed_in_pieces(dec, stream, cuts)
    assert got == [expected(*s) for s in specs]
    # trailing garbage may still be held (a magic with too few bytes after it to judge)
    assert dec.buffered < HEAD_SIZE
    assert dec.stats.garbage_bytes + dec.buffered == total_garbage
    sentinel = encode(wire.REQUEST, 77, {"op": "hello"})
    assert dec.feed(sentinel) == [expected(wire.REQUEST, 77, {"op": "hello"}, b"")]
    assert dec.stats.garbage_bytes == total_garbage
    assert dec.stats.frames == len(specs) + 1
    assert dec.buffered == 0


def test_trailing_first_magic_byte_is_kept_for_the_next_frame() -> None:
    dec = FrameDecoder()
    raw = encode(wire.EVENT, 3, {"event": "progress"})
    assert dec.feed(b"noise" + raw[:1]) == []
    assert dec.buffered == 1 and dec.stats.garbage_bytes == 5
    assert dec.feed(raw[1:]) == [expected(wire.EVENT, 3, {"event": "progress"}, b"")]


@SETTINGS
@given(specs=st.lists(frame_specs, min_size=2, max_size=4), data=st.data())
def test_a_bit_flip_drops_only_that_frame(specs, data) -> None:
    frames = [encode(*s) for s in specs]
    victim = data.draw(st.integers(0, len(frames) - 1), label="victim")
    bit = data.draw(st.integers(0, 8 * len(frames[victim]) - 1), label="bit")
    bad = bytearray(frames[victim])
    bad[bit // 8] ^= 1 << (bit % 8)
    frames[victim] = bytes(bad)
    stream = b"".join(frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    dec = FrameDecoder()
    got = feed_in_pieces(dec, stream, cuts)
    want = [expected(*s) for i, s in enumerate(specs) if i != victim]
    assert got == want
    # nothing is held back waiting: at most a stray magic with too few bytes after it
    assert dec.buffered < HEAD_SIZE
    if victim < len(frames) - 1:
        assert dec.buffered == 0
    assert dec.stats.frames == len(want)
    rejected = dec.stats.bad_head_crc + dec.stats.bad_frame_crc
    # a flip in the magic hides the frame entirely; anywhere else a CRC must catch it
    assert rejected >= (0 if bit < 16 else 1)


@SETTINGS
@given(victim=frame_specs, after=st.lists(small_frame_specs, min_size=1, max_size=3),
       data=st.data())
def test_truncated_frame_then_valid_frames(victim, after, data) -> None:
    """A cut-short frame (its head may be intact, so it claims bytes that never come) is
    followed by valid frames; as soon as the stream holds as many bytes as the cut frame
    claimed, it fails its CRC and every following frame comes out."""
    raw = encode(*victim)
    cut = data.draw(st.integers(1, len(raw) - 1), label="cut")
    followers = [encode(*s) for s in after]
    specs = list(after)
    filler = 0
    while sum(len(f) for f in followers) < len(raw) - cut:  # cover the claimed length
        filler += 1
        specs.append((wire.EVENT, filler, {"filler": filler}, b"\x00" * 4000))
        followers.append(encode(*specs[-1]))
    stream = raw[:cut] + b"".join(followers)
    # When the missing tail equals the next bytes (a last CRC byte that happens to be the
    # next frame's first magic byte), the stream simply holds the whole frame: not a case.
    assume(not stream.startswith(raw))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    dec = FrameDecoder()
    assert feed_in_pieces(dec, stream, cuts) == [expected(*s) for s in specs]
    assert dec.buffered == 0
    assert dec.stats.garbage_bytes == cut


@pytest.mark.parametrize("cut", [1, 2, 7, HEAD_SIZE - 1, HEAD_SIZE, HEAD_SIZE + 5])
def test_truncated_small_frame_then_one_valid_frame(cut) -> None:
    victim = encode(wire.REQUEST, 1, {"op": "hello"})
    good = encode(wire.REQUEST, 2, {"op": "clock", "pad": "x" * 40})
    dec = FrameDecoder()
    assert dec.feed(victim[:cut] + good) == [expected(wire.REQUEST, 2,
                                                      {"op": "clock", "pad": "x" * 40}, b"")]
    assert dec.stats.garbage_bytes == cut and dec.buffered == 0


# ---------------------------------------------------------------- absurd lengths, bounded memory


@pytest.mark.parametrize("hlen,blen", [
    (2, 0xFFFFFFFF),                 # a 4 GB body
    (0xFFFFFFFF, 0),                 # a 4 GB header
    (MAX_HEADER + 1, 0),             # one byte over the header limit
    (2, MAX_CHUNK + MAX_HEADER - 1),  # one byte over the agent's frame limit
])
def test_forged_absurd_length_is_refused_at_once(hlen, blen) -> None:
    dec = FrameDecoder(max_frame=MAX_CHUNK + MAX_HEADER)
    head = forge(b"{}", b"", hlen=hlen, blen=blen)[:HEAD_SIZE]
    assert dec.feed(head) == []
    assert dec.stats.oversized == 1
    assert dec.buffered < HEAD_SIZE  # it did not keep the head to wait for the body
    # the very next valid frame comes out at once: nothing waits for the claimed body
    good = encode(wire.REQUEST, 5, {"op": "hello"})
    assert dec.feed(good) == [expected(wire.REQUEST, 5, {"op": "hello"}, b"")]
    assert dec.buffered == 0


@SETTINGS
@given(hlen=st.integers(0, 2**32 - 1), blen=st.integers(0, 2**32 - 1),
       max_frame=st.integers(16, 1 << 20))
def test_any_length_over_the_limit_is_refused(hlen, blen, max_frame) -> None:
    dec = FrameDecoder(max_frame=max_frame)
    head = forge(hlen=hlen, blen=blen)[:HEAD_SIZE]
    dec.feed(head)
    if hlen > MAX_HEADER or hlen + blen > max_frame:
        assert dec.stats.oversized == 1 and dec.buffered < HEAD_SIZE
    else:
        assert dec.stats.oversized == 0 and dec.buffered == HEAD_SIZE  # waits for the rest


def test_frame_of_exactly_max_frame_is_accepted() -> None:
    max_frame = 1000
    header = {"op": "x"}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    body = b"\x01" * (max_frame - len(hjson))
    raw = encode(wire.REQUEST, 1, header, body, max_frame=max_frame)
    dec = FrameDecoder(max_frame=max_frame)
    assert dec.feed(raw) == [expected(wire.REQUEST, 1, header, body)]
    with pytest.raises(WireError, match="limit"):
        encode(wire.REQUEST, 1, header, body + b"\x01", max_frame=max_frame)
    dec2 = FrameDecoder(max_frame=max_frame - 1)
    assert dec2.feed(raw) == [] and dec2.stats.oversized == 1


def test_ten_megabytes_of_random_garbage_keep_the_buffer_bounded() -> None:
    rng = np.random.default_rng(2024)
    max_frame = MAX_CHUNK + MAX_HEADER
    dec = FrameDecoder(max_frame=max_frame)
    fed = 0
    high = 0
    while fed < 10 * 1024 * 1024:
        n = int(rng.integers(1, 1 << 16))
        dec.feed(rng.bytes(n))
        fed += n
        high = max(high, dec.buffered)
        assert dec.buffered <= max_frame + HEAD_SIZE + TRAILER_SIZE
    # random bytes never carry a valid head CRC: at most a magic and its first bytes remain
    assert high < HEAD_SIZE
    assert dec.stats.frames == 0
    assert dec.stats.garbage_bytes + dec.buffered == fed
    assert dec.stats.bad_head_crc > 0  # the garbage did contain magics; each was judged


def test_forged_heads_with_legal_lengths_keep_the_buffer_bounded() -> None:
    """A peer that sends valid heads with random bodies: the decoder waits for at most one
    frame (max_frame plus framing) at a time, then drops it and resyncs."""
    rng = np.random.default_rng(99)
    max_frame = 4096
    dec = FrameDecoder(max_frame=max_frame)
    pieces = []
    for _ in range(2000):
        blen = int(rng.integers(0, max_frame - 2 + 1))
        pieces.append(forge(b"{}", b"", blen=blen, frame_crc=0)[:HEAD_SIZE])
        pieces.append(rng.bytes(int(rng.integers(0, 3 * max_frame))))
    stream = b"".join(pieces)
    assert len(stream) > 10 * 1024 * 1024
    pos = 0
    while pos < len(stream):
        n = int(rng.integers(1, 1 << 16))
        dec.feed(stream[pos:pos + n])
        pos += n
        assert dec.buffered <= max_frame + HEAD_SIZE + TRAILER_SIZE
    assert dec.stats.frames == 0
    assert dec.stats.bad_frame_crc >= 1999  # every forged head was waited for, then judged


# ---------------------------------------------------------------- headers the decoder refuses


def test_header_that_is_not_an_object_or_not_utf8_is_dropped() -> None:
    dec = FrameDecoder()
    good = encode(wire.REQUEST, 9, {"op": "hello"})
    stream = forge(b"[1,2]") + forge(b"\xff\xfe{}") + forge(b"{not json") + good
    assert dec.feed(stream) == [expected(wire.REQUEST, 9, {"op": "hello"}, b"")]
    assert dec.stats.bad_header == 3


def test_deeply_nested_header_is_dropped_not_raised() -> None:
    """A frame with valid CRCs whose header JSON nests deeper than Python's recursion limit.
    The decoder must count it as a bad header and carry on; json.loads raises
    RecursionError (not a ValueError), which escapes feed() and, since the frame stays at
    the front of the buffer, every later feed() raises again: the reader is wedged."""
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert len(deep) <= MAX_HEADER
    good = encode(wire.REQUEST, 9, {"op": "hello"})
    dec = FrameDecoder()
    got = dec.feed(forge(deep) + good)
    assert got == [expected(wire.REQUEST, 9, {"op": "hello"}, b"")]
    assert dec.stats.bad_header == 1
    assert dec.feed(good) == [expected(wire.REQUEST, 9, {"op": "hello"}, b"")]


# ---------------------------------------------------------------- header caps (issue 15)


@pytest.fixture
def no_int_digit_limit():
    """The interpreter as Python 3.9/3.10 are: int() takes a digit string of any length (in
    time that grows with its square). 3.11+ refuse over 4300 digits on their own."""
    if not hasattr(sys, "set_int_max_str_digits"):
        yield  # 3.9/3.10: already so
        return
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    yield
    sys.set_int_max_str_digits(old)


def test_a_1_mb_header_is_refused_from_the_head_alone() -> None:
    """The head's length field is enough: nothing of the header is waited for or read."""
    dec = FrameDecoder()
    head = forge(hlen=1_000_000)[:HEAD_SIZE]
    assert dec.feed(head) == []
    assert dec.stats.oversized == 1 and dec.buffered == 0
    with pytest.raises(WireError, match="over the 524288 limit"):
        encode(wire.REQUEST, 1, {"a": "x" * 1_000_000})
    with pytest.raises(WireError, match="over the 524288 limit"):
        wire.parse_header(b'{"a":"' + b"x" * 1_000_000 + b'"}')


def test_a_50000_digit_integer_is_refused(no_int_digit_limit) -> None:
    huge = b'{"seq":' + b"9" * 50_000 + b"}"
    with pytest.raises(WireError, match="integer of 50000 digits; the limit is 64"):
        wire.parse_header(huge)
    with pytest.raises(WireError, match="integer of 50000 digits"):
        wire.parse_header(b'{"a":[1,-' + b"9" * 50_000 + b"]}")
    good = encode(wire.REQUEST, 9, {"op": "hello"})
    dec = FrameDecoder()
    assert dec.feed(forge(huge) + good) == [expected(wire.REQUEST, 9, {"op": "hello"}, b"")]
    assert dec.stats.bad_header == 1


def test_the_integer_limit_is_64_digits_either_sign() -> None:
    n = 10**63  # 64 digits
    assert wire.parse_header(b'{"a":%d,"b":%d}' % (n, -n)) == {"a": n, "b": -n}
    with pytest.raises(WireError, match="65 digits"):
        wire.parse_header(b'{"a":%d}' % (10 * n))
    with pytest.raises(WireError, match="65 digits"):
        wire.parse_header(b'{"a":%d}' % (-10 * n))
    assert wire.parse_header(b'{"a":"%s"}' % (b"9" * 100)) == {"a": "9" * 100}  # a string


def test_encode_refuses_an_integer_the_peer_would_refuse() -> None:
    with pytest.raises(WireError, match="65 digits"):
        encode(wire.REQUEST, 1, {"a": 10**64})
    assert FrameDecoder().feed(encode(wire.REQUEST, 1, {"a": 10**63, "s": "7" * 99}))[0] \
        .header == {"a": 10**63, "s": "7" * 99}


@pytest.mark.parametrize("text", [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":[-Infinity]}',
                                  b'{"a":1e999}', b'{"a":-1e400}'])
def test_nan_and_infinity_are_refused_as_encode_refuses_them(text) -> None:
    with pytest.raises(WireError):
        wire.parse_header(text)
    dec = FrameDecoder()
    assert dec.feed(forge(text)) == [] and dec.stats.bad_header == 1


@pytest.mark.parametrize("text", [b"[1]", b"1", b'"a"', b"null", b"\xff{}", b"{", b""])
def test_parse_header_raises_only_wire_errors(text) -> None:
    with pytest.raises(WireError):
        wire.parse_header(text)


# ---------------------------------------------------------------- encode limits


def test_encode_refuses_a_frame_over_max_frame() -> None:
    with pytest.raises(WireError, match="over the 100-byte limit"):
        encode(wire.REQUEST, 1, {}, b"x" * 99, max_frame=100)  # 2 + 99 > 100
    assert len(encode(wire.REQUEST, 1, {}, b"x" * 98, max_frame=100)) == \
        HEAD_SIZE + 100 + TRAILER_SIZE


def test_encode_refuses_a_header_over_max_header() -> None:
    fits = {"a": "x" * (MAX_HEADER - len('{"a":""}'))}
    raw = encode(wire.REQUEST, 1, fits)
    assert FrameDecoder().feed(raw)[0].header == fits
    with pytest.raises(WireError, match="header"):
        encode(wire.REQUEST, 1, {"a": "x" * (MAX_HEADER - len('{"a":""}') + 1)})


# ---------------------------------------------------------------- other wire versions


@pytest.mark.parametrize("version", [0, 2, 255])
def test_other_wire_version_is_delivered_and_answered_with_an_error(version, tmp_path) -> None:
    raw = forge(b'{"op":"hello"}', version=version, seq=41)
    frames = FrameDecoder().feed(raw)
    assert len(frames) == 1
    f = frames[0]
    assert (f.version, f.seq, f.header) == (version, 41, {"op": "hello"})
    agent = Agent(str(tmp_path))
    type_, header, body = agent.handle(f)
    assert type_ == wire.ERROR and body == b""
    assert header["kind"] == "WireVersion"
    assert f"wire version {version}" in header["error"]
    assert f"speaks {WIRE_VERSION}" in header["error"]
    # and the same agent still answers a frame of its own version
    type_, header, _ = agent.handle(FrameDecoder().feed(
        encode(wire.REQUEST, 42, {"op": "hello"}))[0])
    assert type_ == wire.RESPONSE and header["wire"] == WIRE_VERSION


# ---------------------------------------------------------------- the exact byte layout


def test_exact_byte_layout() -> None:
    raw = encode(wire.REQUEST, 0x01020304, {"op": "hello", "n": 1}, b"\x00\xff")
    hjson = b'{"op":"hello","n":1}'
    assert raw[0:2] == b"\xe7\x50"
    assert raw[2] == 1 and WIRE_VERSION == 1
    assert raw[3] == 1 == wire.REQUEST
    assert raw[4:8] == b"\x04\x03\x02\x01"
    assert raw[8:12] == len(hjson).to_bytes(4, "little") == b"\x14\x00\x00\x00"
    assert raw[12:16] == b"\x02\x00\x00\x00"
    assert raw[16:20] == zlib.crc32(raw[:16]).to_bytes(4, "little")
    assert raw[20:20 + len(hjson)] == hjson  # compact JSON, keys in the given order
    assert raw[40:42] == b"\x00\xff"
    assert raw[42:46] == zlib.crc32(hjson + b"\x00\xff").to_bytes(4, "little")
    assert len(raw) == 46
    # the whole frame, literally, so that no part of the format can drift silently
    assert raw.hex() == ("e750010104030201140000000200000"
                         "0c8616c617b226f70223a2268656c6c6f222c226e223a317d00ff520ab470")


def test_message_type_codes_and_sizes_are_fixed() -> None:
    assert (wire.REQUEST, wire.RESPONSE, wire.ERROR, wire.EVENT, wire.ACK) == (1, 2, 3, 4, 5)
    assert (HEAD_SIZE, TRAILER_SIZE, MAX_HEADER, wire.MAX_INT_DIGITS) == (20, 4, 512 * 1024, 64)
    assert wire.DEFAULT_MAX_FRAME == 64 * 1024 * 1024
    assert Frame(99, 0, {}).kind == "type99" and Frame(wire.EVENT, 0, {}).kind == "event"


def test_expire_gives_up_a_frame_whose_tail_was_lost():
    """A head that survived but whose body never comes must not deafen the reader: after a
    silence the reader calls expire() and the frames behind it come out."""
    lost = encode(wire.REQUEST, 1, {"op": "push_model"}, b"x" * 5000)[:300]
    good = [encode(wire.REQUEST, n, {"op": "hello", "n": n}) for n in (2, 3)]
    dec = FrameDecoder()
    assert dec.feed(lost + b"".join(good)) == []  # still waiting for 5000 bytes
    frames = dec.expire()
    assert [f.header["n"] for f in frames] == [2, 3]
    assert dec.buffered == 0 and dec.stats.frames == 2
    assert dec.expire() == []
