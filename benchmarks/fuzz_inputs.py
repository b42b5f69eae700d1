"""Fuzz the three parsers that take bytes from a peer: the frame decoder (device_agent.wire),
the reliable layer's receiver (device_agent.reliable.Endpoint.feed) and the sample-set
parser (device_agent.sampleset.unpack).

Each target takes random bytes and mutations of valid encodings (bit flips, byte edits,
truncations, cuts, splices, insertions, length-field edits, and structure-aware edits of
the JSON header re-sealed with correct CRCs or length so they reach the parser behind
them). A target passes when it raised nothing but its module's own error type (the
receiver: nothing at all), kept its memory bound after every input, and the process's RSS
grew by less than RSS_BOUND. Inputs are generated in chunks of CHUNK, each from its own
seed, so a failure is replayed with ``--target T --seed S --chunk C``.

    python benchmarks/fuzz_inputs.py [--quick N] [--target wire|reliable|sampleset]
                                     [--seed S] [--chunk C] [--inputs N]

Default: 10,000,000 inputs per target. Prints a line per target and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edgeperf_agent import reliable, sampleset, wire  # noqa: E402

DEFAULT_INPUTS = 10_000_000
CHUNK = 1000  # inputs a seed: the unit of replay (and of the receiver's fresh session)
RSS_BOUND = 64 << 20  # bytes the process may grow by while one target runs
MAX_INPUT = 16 << 10  # the longest generated input
_PAGE = resource.getpagesize()

U32_EDGES = (0, 1, 2, 3, 4, 7, 8, 16, 19, 20, 24, 255, 256, 4095, 4096, 65535, 65536,
             wire.MAX_HEADER - 1, wire.MAX_HEADER, wire.MAX_HEADER + 1, 1 << 24,
             (1 << 31) - 1, 1 << 31, (1 << 32) - 2, (1 << 32) - 1)
JSON_VALUES = ("0", "-1", "1", "true", "false", "null", '""', '"x"', "[]", "{}", "[[1,2]]",
               "[[0,4294967295]]", "1.5", "-0.0", "1e308", "1e309", "-1e309", "NaN",
               "Infinity", "-Infinity", "4294967295", "4294967296", "-4294967296",
               "9223372036854775808", "1" + "0" * 64, "1" + "0" * 65, '"\\ud800"',
               "[" * 50 + "]" * 50, '{"a":' * 30 + "1" + "}" * 30, '"' + "é" * 40 + '"')


def rss() -> int:
    """The process's resident set now, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------- mutations
def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to three random edits of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(9)
        n = len(buf)
        if op == 0 and n:  # bit flips
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(n)
                buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # a byte set to an edge value
            buf[rng.randrange(n)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x22, 0x5B, 0x7B))
        elif op == 2 and n:  # truncation
            del buf[rng.randrange(n):]
        elif op == 3 and n > 1:  # a cut from the middle
            i = rng.randrange(n)
            del buf[i:i + rng.randint(1, 32)]
        elif op == 4:  # a splice with another valid input
            other = rng.choice(corpus)
            buf = buf[:rng.randint(0, n)] + other[rng.randint(0, len(other)):]
        elif op == 5:  # random bytes inserted
            i = rng.randint(0, n)
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 6 and n:  # a range repeated
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            buf[i:i] = buf[i:j] * rng.randint(1, 4)
        elif op == 7 and n >= 4:  # a 32-bit field set to an edge value
            i = rng.randrange(n - 3)
            buf[i:i + 4] = rng.choice(U32_EDGES).to_bytes(4, "little")
        else:  # another whole valid input appended
            buf += rng.choice(corpus)
    return bytes(buf[:MAX_INPUT])


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice((0, 1, 2, 4, 8, 16, 20, 24, 32, 64, 128, 256, 1024, 4096))
    return rng.randbytes(rng.randint(0, n))


def header_edit(rng: random.Random, text: str) -> str:
    """The JSON header with one value, key or stretch replaced by a hostile one."""
    k = rng.randrange(4)
    if k == 0:  # a value: after a ':' or ',' or '[', up to the next delimiter
        starts = [i + 1 for i, c in enumerate(text) if c in ":,["]
        if starts:
            i = rng.choice(starts)
            j = i
            while j < len(text) and text[j] not in ",]}":
                j += 1
            return text[:i] + rng.choice(JSON_VALUES) + text[j:]
    if k == 1:  # a key removed or renamed
        if text.startswith("{") and len(text) > 2:
            return '{"' + rng.choice(("x", "", "sid", "c", "tensors")) + '":' + \
                rng.choice(JSON_VALUES) + "," + text[1:]
    if k == 2:  # the whole header replaced
        return rng.choice(JSON_VALUES)
    i = rng.randint(0, len(text))
    return text[:i] + rng.choice(JSON_VALUES + ("{", "}", "[", "]", ",", ":", '"')) + text[i:]


# ---------------------------------------------------------------------------- wire
def seal(type_: int, seq: int, hjson: bytes, body: bytes, version: int = wire.WIRE_VERSION,
         hlen: int | None = None, blen: int | None = None) -> bytes:
    """A frame with any header bytes (even invalid JSON) and correct CRCs, so it reaches
    the header parser; ``hlen``/``blen`` forge the length fields."""
    head = wire._HEAD.pack(wire.MAGIC, version, type_ & 0xFF, seq & 0xFFFFFFFF,
                           len(hjson) if hlen is None else hlen,
                           len(body) if blen is None else blen)
    crc = wire._CRC.pack(wire.zlib.crc32(body, wire.zlib.crc32(hjson)))
    return head + wire._CRC.pack(wire.zlib.crc32(head)) + hjson + body + crc


def wire_corpus() -> list[bytes]:
    rng = random.Random(15)
    out = [wire.encode(t, rng.getrandbits(32), h, rng.randbytes(rng.choice((0, 3, 40, 300))))
           for t in wire.MESSAGE_TYPES
           for h in ({}, {"op": "hello", "versions": [1]}, {"c": 5, "a": 7},
                     {"sid": 3, "peer": 0, "win": 8, "mss": 2048}, {"sack": [[1, 9]]},
                     {"s": "é" * 10, "f": 1.5, "n": None, "l": [1, [2, {}]]})]
    return out


class WireTarget:
    name = "wire"
    allowed = (wire.WireError,)
    what = "wire.FrameDecoder.feed/expire"

    def __init__(self) -> None:
        self.corpus = wire_corpus()
        self.frames = 0
        self.errors: dict[str, int] = {}  # parse_header's refusals (the decoder drops them)

    def generate(self, rng: random.Random) -> bytes:
        r = rng.random()
        if r < 0.15:
            return random_bytes(rng)
        base = rng.choice(self.corpus)
        if r < 0.55:
            return mutate(rng, base, self.corpus)
        # structure-aware: an edited header, re-sealed, so the JSON parser sees it
        hlen = int.from_bytes(base[8:12], "little")
        blen = int.from_bytes(base[12:16], "little")
        htext = base[20:20 + hlen].decode()
        hjson = header_edit(rng, htext).encode()
        body = base[20 + hlen:20 + hlen + blen]
        forged = {}
        if rng.random() < 0.2:  # a length field that lies, with a head CRC that agrees
            forged[rng.choice(("hlen", "blen"))] = rng.choice(U32_EDGES)
        frame = seal(base[3], int.from_bytes(base[4:8], "little"), hjson, body,
                     version=rng.choice((1, 1, 1, 1, 0, 2, 255)), **forged)
        if rng.random() < 0.3:
            frame = mutate(rng, frame, self.corpus)
        return frame

    def run(self, data: bytes, rng: random.Random) -> None:
        if rng.random() < 0.5:  # the header parser alone, on what a frame's header holds
            hlen = int.from_bytes(data[8:12], "little")
            try:
                wire.parse_header(data[20:20 + hlen])
            except wire.WireError as exc:
                self.errors[_shape(exc)] = self.errors.get(_shape(exc), 0) + 1
        max_frame = rng.choice((1024, wire.DEFAULT_MAX_FRAME))
        dec = wire.FrameDecoder(max_frame=max_frame)
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 2)))
        got: list[wire.Frame] = []
        at = 0
        for cut in cuts + [len(data)]:
            got += dec.feed(data[at:cut])
            at = cut
            assert dec.buffered <= max_frame + wire.HEAD_SIZE + wire.TRAILER_SIZE, \
                f"decoder holds {dec.buffered} bytes"
        if rng.random() < 0.3:
            got += dec.expire()
        for f in got:  # a delivered frame is one the encoder could have sent: round trip
            assert isinstance(f.header, dict) and isinstance(f.body, bytes)
            (again,) = wire.FrameDecoder().feed(wire.encode(f.type, f.seq, f.header, f.body))
            assert (again.type, again.seq, again.header, again.body) == \
                (f.type, f.seq, f.header, f.body)
        self.frames += len(got)


# ---------------------------------------------------------------------------- reliable
class ReliableTarget:
    """A listener (the agent's end) in an established session with data of its own in
    flight, fed hostile line bytes: frames of its session with any header and sequence,
    frames of other sessions, SYNs, and mutations of all of them. A fresh session every
    CHUNK inputs."""

    name = "reliable"
    allowed: tuple = ()  # Endpoint.feed has no error of its own: it must never raise
    what = "reliable.Endpoint.feed (+ poll)"
    MSS = 256
    RCV = 4 << 10

    def __init__(self) -> None:
        self.ep: reliable.Endpoint | None = None
        self.now = 0.0
        self.inputs = 0

    def start(self, rng: random.Random) -> None:
        ep = reliable.Endpoint(initiator=rng.random() < 0.5, segment=self.MSS, window=4,
                               rcv_buffer=self.RCV, sid=rng.getrandbits(31) | 1,
                               rto=0.05, syn_interval=0.1, keepalive=0.5, stale=0.2)
        peer = reliable.Endpoint(initiator=not ep.initiator, segment=self.MSS, window=4,
                                 sid=rng.getrandbits(31) | 1)
        self.now = 0.0
        for _ in range(6):  # the handshake, both ways
            self.now += 0.01
            ep.feed(peer.poll(self.now), self.now)
            peer.feed(ep.poll(self.now), self.now)
        ep.send(rng.randbytes(rng.choice((0, 100, 3000))))
        ep.poll(self.now)
        self.ep, self.peer = ep, peer
        self.c = ep.sid ^ ep.peer
        self.corpus = [wire.encode(wire.SYN, 0, {"sid": peer.sid, "peer": ep.sid, "win": 4,
                                                 "mss": self.MSS}),
                       wire.encode(wire.DATA, 0, {"c": self.c}, b"x" * 40),
                       wire.encode(wire.ACK, 256, {"c": self.c, "sack": [[512, 768]]})]

    def generate(self, rng: random.Random) -> bytes:
        r = rng.random()
        if r < 0.1:
            return random_bytes(rng)
        if r < 0.3:
            return mutate(rng, rng.choice(self.corpus), self.corpus)
        parts = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            parts.append(self._frame(rng))
        data = b"".join(parts)
        return mutate(rng, data, self.corpus) if rng.random() < 0.1 else data

    def _frame(self, rng: random.Random) -> bytes:
        ep = self.ep
        # mostly DATA and ACK of the session; now and then a SYN (half of them end it)
        t = rng.choice((wire.DATA,) * 30 + (wire.ACK,) * 16 + (wire.SYN, wire.REQUEST))
        own = ep.sid ^ ep.peer if ep.established else self.c  # the session, after a reset too
        c = own if rng.random() < 0.9 else rng.choice((0, ep.sid, own ^ 1, "x", None, 1.0))
        base = ep._expected if t == wire.DATA else ep._snd_una
        seq = rng.choice((base, base, base + rng.randint(-600, 1200), base + rng.randint(1, 1024),
                          base + rng.randint(0, max(0, ep._snd_nxt - ep._snd_una)),
                          base + rng.randint(1, 4) * self.MSS, rng.getrandbits(32),
                          base - (1 << 31), base + (1 << 31) - 1)) & 0xFFFFFFFF
        h: dict = {"c": c}
        body = b""
        if t == wire.DATA:
            if rng.random() < 0.5:
                h["a"] = rng.choice((ep._snd_una, ep._snd_nxt, ep._snd_nxt + 1, -1, 1 << 32,
                                     rng.getrandbits(32), True, 1.5, "1"))
            body = rng.randbytes(rng.choice((0, 1, 2, 17, 100, self.MSS)))
        elif t == wire.ACK:
            n = rng.choice((0, 1, 2, 16, 40))
            h["sack"] = [[rng.choice((ep._snd_una, ep._snd_nxt, rng.getrandbits(32)))
                          + rng.randint(-300, 300),
                          rng.choice((ep._snd_nxt, rng.getrandbits(32), ep._snd_una + 256))]
                         for _ in range(n)]
            if rng.random() < 0.1:
                h["sack"] = rng.choice(([1, 2], [[1]], [["a", "b"]], {"a": 1}, 5, [[1.5, 2]]))
        elif t == wire.SYN:
            h = {"sid": rng.choice((self.peer.sid,) * 4 + (self.peer.sid ^ 2, 0, -1, True,
                                                            1 << 40)),
                 "peer": rng.choice((ep.sid, 0, 7, None)),
                 "win": rng.choice((4, 0, 1, -5, 1 << 40, "w")),
                 "mss": rng.choice((self.MSS, 0, 127, 128, 1 << 40, 1.5))}
        if rng.random() < 0.15:
            hj = header_edit(rng, json.dumps(h, separators=(",", ":"))).encode()
            return seal(t, seq, hj, body)
        if rng.random() < 0.02:  # a peer of another wire version
            return seal(t, seq, json.dumps(h).encode(), body, version=rng.choice((0, 2)))
        return wire.encode(t, seq, h, body)

    def run(self, data: bytes, rng: random.Random) -> None:
        ep = self.ep
        self.now += rng.choice((0.0, 0.001, 0.01, 0.05, 0.3))
        ep.feed(data, self.now)
        self.inputs += 1
        if self.inputs % 4 == 0:
            ep.poll(self.now)
        if rng.random() < 0.01:  # a reader that falls behind, mostly: the rcv_buffer limit
            ep.read()
        if ep.pending < 1000:  # data of its own in flight, for the ACKs to act on
            ep.send(b"d" * 1000)
        rwin = ep.window * ep.mss
        assert ep.decoder.buffered <= ep.decoder.max_frame + wire.HEAD_SIZE + wire.TRAILER_SIZE
        assert ep._ooo_bytes <= 2 * rwin, f"out-of-order bytes {ep._ooo_bytes}"
        assert len(ep._inbox) <= ep.rcv_buffer + 3 * rwin, f"inbox {len(ep._inbox)}"
        assert 0 <= ep._in_flight and ep._snd_una <= ep._snd_nxt

    def check_state(self) -> None:
        """Invariants that cost a pass over the state: once a chunk."""
        ep = self.ep
        assert ep._ooo_bytes == sum(len(v) for v in ep._ooo.values())
        assert ep._in_flight == sum(len(s.payload) for s in ep._unacked)
        assert all(s > ep._expected for s in ep._ooo)


# ---------------------------------------------------------------------------- sampleset
DTYPES = ("u1", "i1", "<i2", ">u2", "<i4", "<f4", ">f8", "f2", "b1", "<i8", "u8", "f16",
          "c8", "O", "U4", "S3", "V8", "M8", "m8", "i4,i4", "(2,)i4", "10i4", "float128",
          "bool", "int0", "a", "e", "", "<", "i99", "f4" * 40, "[('a','<i4')]", "void",
          "object", "str", "float", "int", "uint8", "9" * 70)
SHAPES = ([], [0], [1], [2, 3], [-1], [0, -1], [2 ** 62, 4], [2 ** 63], [2 ** 64 + 1],
          [10 ** 30], [0, 10 ** 30], [0, 2 ** 40, 2 ** 40], [1] * 70, [0] * 40, [1.5], [True],
          ["3"], [[1]], [None], [3, 2 ** 61])


def sampleset_corpus() -> list[bytes]:
    rng = np.random.default_rng(15)
    out = []
    for dts, shapes in ((("u1",), [(4, 3)]), (("<f4", "<i8"), [(2, 5), (2,)]),
                        (("f2", "b1", ">i4"), [(3, 2, 2), (3,), (3, 1)]),
                        (("u1",), [(0, 3)]), (("<u2",), [(1,)])):
        arrays = [rng.integers(0, 200, shape).astype(dt)
                  for dt, shape in zip(dts, shapes, strict=True)]
        out.append(sampleset.pack(arrays))
    return out


class SampleSetTarget:
    name = "sampleset"
    allowed = (sampleset.SampleSetError,)
    what = "sampleset.unpack"

    def __init__(self) -> None:
        self.corpus = sampleset_corpus()
        self.accepted = 0

    def generate(self, rng: random.Random) -> bytes:
        r = rng.random()
        if r < 0.1:
            return random_bytes(rng)
        base = rng.choice(self.corpus)
        if r < 0.5:
            return mutate(rng, base, self.corpus)
        hlen = sampleset._HEAD.unpack_from(base, 0)[1]
        text = base[8:8 + hlen].decode()
        if r < 0.8:  # a hostile layout, and about as many data bytes as it says it needs
            tensors = [{"dtype": rng.choice(DTYPES), "shape": rng.choice(SHAPES)}
                       for _ in range(rng.choice((0, 1, 1, 2, 3)))]
            text = json.dumps({"tensors": tensors})
            if rng.random() < 0.2:
                text = header_edit(rng, text)
        else:
            text = header_edit(rng, text)
        hj = text.encode()
        if rng.random() < 0.2:
            hlen = rng.choice(U32_EDGES)
        else:
            hlen = len(hj)
        start = 8 + len(hj)
        data = rng.choice((0, 1, 3, 4, 8, 12, 24, 48, 64, 100))
        out = sampleset._HEAD.pack(sampleset.MAGIC, hlen) + hj + b"\0" * ((-start) % 64) \
            + rng.randbytes(data)
        return mutate(rng, out, self.corpus) if rng.random() < 0.1 else out

    def run(self, data: bytes, rng: random.Random) -> None:
        arrays = sampleset.unpack(np.frombuffer(data, np.uint8))
        for a in arrays:  # what it gives back views the input: it may not reach past it
            assert a.nbytes <= len(data) and a.dtype.kind in "biuf"
        self.accepted += 1


TARGETS: dict[str, Callable[[], object]] = {"wire": WireTarget, "reliable": ReliableTarget,
                                            "sampleset": SampleSetTarget}


# ---------------------------------------------------------------------------- driver
@dataclass
class Report:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    allowed: dict[str, int] = field(default_factory=dict)  # "Type: message shape" -> count
    crashes: int = 0
    first_crashes: list[dict] = field(default_factory=list)
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    slowest: float = 0.0  # seconds, the slowest single input
    slowest_at: tuple = ()

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_start


def _shape(exc: BaseException) -> str:
    msg = "".join("N" if ch.isdigit() else ch for ch in str(exc))
    while "NN" in msg:
        msg = msg.replace("NN", "N")
    return f"{type(exc).__name__}: {msg[:90]}"


def chunks(seed: int, name: str, inputs: int, only: int | None) -> Iterator[tuple[int, int]]:
    """(chunk number, inputs in it)."""
    if only is not None:
        yield only, CHUNK
        return
    for c in range((inputs + CHUNK - 1) // CHUNK):
        yield c, min(CHUNK, inputs - c * CHUNK)


def fuzz(name: str, inputs: int, seed: int = 0, only_chunk: int | None = None,
         progress: Callable[[Report], None] | None = None) -> Report:
    target = TARGETS[name]()
    rep = Report(name, rss_start=rss())
    rep.rss_peak = rep.rss_start
    clock = time.perf_counter
    t_start = clock()
    for c, n in chunks(seed, name, inputs, only_chunk):
        rng = random.Random(f"{seed}:{name}:{c}")
        if isinstance(target, ReliableTarget):
            target.start(rng)
        for i in range(n):
            data = target.generate(rng)
            t0 = clock()
            try:
                target.run(data, rng)
            except target.allowed as exc:
                key = _shape(exc)
                rep.allowed[key] = rep.allowed.get(key, 0) + 1
            except Exception as exc:  # noqa: BLE001 - the point: anything else is a crash
                rep.crashes += 1
                if len(rep.first_crashes) < 5:
                    rep.first_crashes.append({"chunk": c, "index": i, "error": _shape(exc),
                                              "message": str(exc)[:200],
                                              "input_hex": data.hex()[:4000]})
            dt = clock() - t0
            if dt > rep.slowest:
                rep.slowest, rep.slowest_at = dt, (c, i, len(data))
        if isinstance(target, ReliableTarget):
            try:
                target.check_state()
            except AssertionError as exc:
                rep.crashes += 1
                if len(rep.first_crashes) < 5:
                    rep.first_crashes.append({"chunk": c, "index": -1, "error": _shape(exc)})
        rep.inputs += n
        if c % 16 == 0:
            rep.rss_peak = max(rep.rss_peak, rss())
        if progress and c % 1000 == 999:
            rep.seconds = clock() - t_start
            progress(rep)
    rep.seconds = clock() - t_start
    for key, count in getattr(target, "errors", {}).items():
        rep.allowed[key] = rep.allowed.get(key, 0) + count
    rep.rss_end = rss()
    rep.rss_peak = max(rep.rss_peak, rep.rss_end)
    return rep


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def describe(rep: Report) -> str:
    lines = [f"{rep.target}: {rep.inputs} inputs in {rep.seconds:.0f} s ({rep.rate:.0f} "
             f"inputs/s); crashes {rep.crashes}; RSS start {_mib(rep.rss_start)}, peak "
             f"{_mib(rep.rss_peak)} (+{_mib(rep.growth)}, bound {_mib(RSS_BOUND)}), end "
             f"{_mib(rep.rss_end)}; slowest input {rep.slowest * 1e3:.1f} ms (chunk, index, "
             f"bytes: {rep.slowest_at})"]
    lines.append(f"  {len(rep.allowed)} distinct {rep.target} errors seen (all of the "
                 "module's own type):")
    for key, n in sorted(rep.allowed.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"    {n:9d}  {key}")
    for crash in rep.first_crashes:
        lines.append(f"  CRASH {json.dumps(crash)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", type=int, metavar="N", help="N inputs per target")
    ap.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="inputs per target")
    ap.add_argument("--target", choices=sorted(TARGETS), action="append")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, help="replay one chunk (CHUNK inputs) only")
    args = ap.parse_args(argv)
    inputs = args.quick or args.inputs
    print(f"# fuzz_inputs: {inputs} inputs per target, seed {args.seed}, "
          f"Python {sys.version.split()[0]}, numpy {np.__version__}", flush=True)
    reports = []
    for name in args.target or list(TARGETS):
        rep = fuzz(name, inputs, args.seed, args.chunk, progress=lambda r: print(
            f"  {r.target}: {r.inputs} inputs, {r.rate:.0f}/s, crashes {r.crashes}, "
            f"RSS {_mib(rss())}",
            file=sys.stderr, flush=True))
        reports.append(rep)
        print(describe(rep), flush=True)
    print("\n| target | inputs | inputs/s | distinct own errors | crashes | RSS start | "
          "RSS peak | growth |\n|---|---|---|---|---|---|---|---|")
    for r in reports:
        print(f"| {r.target} | {r.inputs} | {r.rate:.0f} | {len(r.allowed)} | {r.crashes} | "
              f"{_mib(r.rss_start)} | {_mib(r.rss_peak)} | +{_mib(r.growth)} |")
    bad = [r for r in reports if r.crashes or r.growth >= RSS_BOUND]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
