"""The one frame codec of edgeperf, used unchanged on every link (pipe, SSH, serial).

A frame is::

    offset size  field
    0      2     magic          b"\\xe7\\x50"
    2      1     wire version   WIRE_VERSION
    3      1     message type   REQUEST, RESPONSE, ERROR, EVENT, ...
    4      4     sequence       uint32, chosen by the sender of a request, echoed in replies
    8      4     header length  uint32, bytes of UTF-8 JSON
    12     4     body length    uint32, raw bytes (tensors, timestamps: never base64)
    16     4     head CRC32     of bytes 0..16
    20     H     header JSON
    20+H   B     body
    20+H+B 4     frame CRC32    of header and body

All integers are little-endian. The head CRC lets a reader reject a corrupt length at once,
so garbage can never make it wait for, or allocate, a frame that is not there; after a bad
frame the reader drops one byte and looks for the next magic. Frames larger than the
reader's limit are refused the same way, and so is a header length over ``MAX_HEADER``,
from the head alone, before a byte of the header is read.

The header is plain JSON and nothing more: no NaN or Infinity (the encoder refuses them
too), and no integer of more than ``MAX_INT_DIGITS`` digits. Python 3.9 and 3.10 have no
limit of their own on int() of a long digit string, and its cost grows with the square of
the length (2 s for 500,000 digits), so without the limit one frame from a hostile or broken
peer would stall the reader; with it, parsing a header costs time linear in its length on
every interpreter. This module must run on Python 3.9.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

MAGIC = b"\xe7\x50"
WIRE_VERSION = 1
_HEAD = struct.Struct("<2sBBIII")
_CRC = struct.Struct("<I")
HEAD_SIZE = _HEAD.size + _CRC.size  # 20
TRAILER_SIZE = _CRC.size
DEFAULT_MAX_FRAME = 64 * 1024 * 1024  # header + body
# The largest header a peer may send. The largest real one is a whole-dataset accuracy
# run's qsl_indices (ImageNet's 50,000 indices: 290 KB), so 512 KiB, not less.
MAX_HEADER = 512 * 1024
# Digits of the longest integer a header may hold: int64/uint64 need 20; anything longer
# is not ours, and refusing it keeps json.loads linear on 3.9/3.10 (see the docstring)
MAX_INT_DIGITS = 64
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))

REQUEST = 1
RESPONSE = 2
ERROR = 3
EVENT = 4
ACK = 5
# the reliable layer of slow, noisy links (device_agent/reliable.py): a piece of the byte
# stream, and the handshake that starts (or restarts) a session
DATA = 6
SYN = 7
MESSAGE_TYPES = {REQUEST: "request", RESPONSE: "response", ERROR: "error",
                 EVENT: "event", ACK: "ack", DATA: "data", SYN: "syn"}

Buffer = Union[bytes, bytearray, memoryview]


class WireError(Exception):
    """A frame could not be built or a peer spoke another wire version."""


@dataclass
class Frame:
    type: int
    seq: int
    header: Dict[str, Any]
    body: bytes = b""
    version: int = WIRE_VERSION

    @property
    def kind(self) -> str:
        return MESSAGE_TYPES.get(self.type, "type%d" % self.type)


def encode(type_: int, seq: int, header: Dict[str, Any], body: Buffer = b"",
           max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """One frame as bytes. Raises WireError when it would exceed ``max_frame``."""
    try:
        hjson = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise WireError("frame header is not plain JSON: %s" % exc) from None
    if len(hjson) > MAX_HEADER:
        raise WireError("frame header is %d bytes, over the %d limit" % (len(hjson), MAX_HEADER))
    if _LONG_DIGITS.search(hjson):  # rare: a long digit string, or an int the peer would refuse
        parse_header(hjson)
    blen = len(body)
    if len(hjson) + blen > max_frame:
        raise WireError("frame of %d bytes is over the %d-byte limit; send it in chunks"
                        % (len(hjson) + blen, max_frame))
    head = _HEAD.pack(MAGIC, WIRE_VERSION, type_, seq & 0xFFFFFFFF, len(hjson), blen)
    crc = zlib.crc32(body, zlib.crc32(hjson))
    return b"".join((head, _CRC.pack(zlib.crc32(head)), hjson, bytes(body), _CRC.pack(crc)))


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise WireError("frame header holds an integer of %d digits; the limit is %d"
                        % (len(text) - text.startswith("-"), MAX_INT_DIGITS))
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)  # linear in the length: CPython reads at most 40 significant digits
    if not math.isfinite(value):
        raise WireError("frame header holds %s, which overflows a float" % text[:40])
    return value


def _parse_constant(name: str) -> Any:
    raise WireError("frame header holds %s: not plain JSON" % name)


def parse_header(raw: Buffer) -> Dict[str, Any]:
    """A frame header's JSON object. Raises WireError for anything ``encode`` would not
    have produced: over MAX_HEADER bytes, not UTF-8, not a JSON object, NaN or Infinity,
    an integer of more than MAX_INT_DIGITS digits, nesting deeper than the interpreter's
    recursion limit."""
    if len(raw) > MAX_HEADER:
        raise WireError("frame header is %d bytes, over the %d limit" % (len(raw), MAX_HEADER))
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_int=_parse_int,
                            parse_float=_parse_float, parse_constant=_parse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WireError("frame header is not JSON: %s" % exc) from None
    if not isinstance(header, dict):
        raise WireError("frame header is JSON %s, not an object" % type(header).__name__)
    return header


@dataclass
class DecoderStats:
    frames: int = 0
    garbage_bytes: int = 0  # bytes skipped while looking for a frame
    bad_head_crc: int = 0
    bad_frame_crc: int = 0
    oversized: int = 0
    bad_header: int = 0


class FrameDecoder:
    """Incremental reader: feed it bytes in any pieces, take whole, checked frames out.

    It holds at most one frame's worth of bytes (``max_frame`` plus framing) beyond the
    piece being fed, whatever the peer sends.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self.stats = DecoderStats()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: Buffer) -> List[Frame]:
        self._buf += data
        return self._drain()

    def _drain(self) -> List[Frame]:
        """Every whole frame the buffer now holds."""
        frames: List[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def expire(self) -> List[Frame]:
        """Give up on a partial frame: call when no byte has arrived for a while.

        A frame whose head survived but whose tail was lost would otherwise hold the reader
        until as many bytes as its head claims have arrived. Dropping one byte and scanning
        again finds the frames that followed it."""
        if not self._buf:
            return []
        self._skip(1)
        return self._drain()

    def _skip(self, n: int) -> None:
        self.stats.garbage_bytes += n
        del self._buf[:n]

    def _next(self) -> Optional[Frame]:
        buf = self._buf
        while True:
            at = buf.find(MAGIC)
            if at < 0:
                # keep a trailing first magic byte: it may start the next frame
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self._skip(len(buf) - keep)
                return None
            if at:
                self._skip(at)
            if len(buf) < HEAD_SIZE:
                return None
            _, version, type_, seq, hlen, blen = _HEAD.unpack_from(buf, 0)
            (hcrc,) = _CRC.unpack_from(buf, _HEAD.size)
            if zlib.crc32(bytes(buf[:_HEAD.size])) != hcrc:
                self.stats.bad_head_crc += 1
                self._skip(1)
                continue
            if hlen > MAX_HEADER or hlen + blen > self.max_frame:
                self.stats.oversized += 1
                self._skip(1)
                continue
            total = HEAD_SIZE + hlen + blen + TRAILER_SIZE
            if len(buf) < total:
                return None
            payload = memoryview(buf)[HEAD_SIZE:HEAD_SIZE + hlen + blen]
            (crc,) = _CRC.unpack_from(buf, HEAD_SIZE + hlen + blen)
            ok = zlib.crc32(payload) == crc
            if not ok:
                payload.release()
                self.stats.bad_frame_crc += 1
                self._skip(1)
                continue
            try:
                header = parse_header(bytes(payload[:hlen]))
            except WireError:
                payload.release()
                self.stats.bad_header += 1
                self._skip(1)
                continue
            body = bytes(payload[hlen:])
            payload.release()
            del buf[:total]
            self.stats.frames += 1
            # A frame of another wire version is still delivered: the receiver answers it
            # with an error that names both versions instead of timing out.
            return Frame(type_, seq, header, body, version)
