"""Compact QueryLog stretches for slow links: exact, a few bytes a query instead of 20.

A stretch (``first``, ``rows``, ``samples_per_row``; issue and done times in int64 ns, sample
indices in uint32) is rewritten as small numbers that a general compressor packs tightly:

* issue times: the gap since the previous query completed (``issue[i] - done[i-1]``; the
  first issue time travels in the header), or nothing at all when every row shares one
  issue time (Offline);
* latencies ``done[i] - issue[i]``;
* sample indices as they are, in the narrowest unsigned width that holds them.

Numbers are zigzag-coded (a Server query can be issued before the previous one is done),
stored in the narrowest of 1/2/4/8 bytes that holds the stretch's largest, split into byte
planes (all low bytes, then all second bytes, ...: the high planes are nearly all zero), and
the whole is compressed with zlib (lzma packs 8% tighter but costs ten times the time, and
on the device that time falls between a Server run's queries). Decoding gives back
the exact bytes, so QueryLog.checksum verifies on the host as it does for a raw stretch.

``sorted_latencies`` packs a run's latencies, sorted, as their differences (mostly 0 and 1):
exact for LoadGen's scoring, which reads only the sorted latencies and a few timestamps.
This module must run on Python 3.9.
"""

from __future__ import annotations

import zlib
from typing import Any, Dict, List, Tuple

import numpy as np

ENCODINGS = ("delta1",)


class CodecError(ValueError):
    """A compact stretch that does not decode (corrupt, or of an unknown encoding)."""


def _int(h: Dict[str, Any], key: str, lo: int = -(1 << 63), hi: int = (1 << 63) - 1) -> int:
    """An integer header field in [lo, hi]: a header from the line may hold anything."""
    v = h.get(key)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
        raise CodecError("compact QueryLog header field %r is %.40r, not an integer in "
                         "[%d, %d]" % (key, v, lo, hi))
    return int(v)


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.uint64)
    return ((u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64))


def _width(u: np.ndarray) -> int:
    top = int(u.max()) if len(u) else 0
    for w in (1, 2, 4):
        if top < 1 << (8 * w):
            return w
    return 8


def _planes(u: np.ndarray, w: int) -> bytes:
    """``u`` as ``w``-byte little-endian numbers, one plane of bytes after another."""
    raw = u.astype("<u%d" % w if w > 1 else np.uint8).view(np.uint8).reshape(-1, w)
    return raw.T.tobytes()


def _unplanes(data: bytes, n: int, w: int) -> np.ndarray:
    if len(data) != n * w:
        raise CodecError("a stream holds %d bytes, expected %d" % (len(data), n * w))
    raw = np.frombuffer(data, np.uint8).reshape(w, n).T.copy()
    return raw.view("<u%d" % w if w > 1 else np.uint8).reshape(-1).astype(np.uint64)


def _compress(data: bytes) -> Tuple[str, bytes]:
    return "zlib", zlib.compress(data, 6)


def _decompress(how: str, data: bytes, limit: int) -> bytes:
    if how != "zlib":
        raise CodecError("unknown compression %r" % how)
    try:
        dec = zlib.decompressobj()
        out = dec.decompress(data, limit + 1)
    except zlib.error as exc:
        raise CodecError("compact QueryLog stretch does not decompress: %s" % exc) from None
    if len(out) > limit:
        raise CodecError("compact QueryLog stretch is larger than its header says")
    return out


def _pack(streams: List[np.ndarray]) -> Tuple[Dict[str, Any], bytes]:
    widths = [_width(u) for u in streams]
    how, packed = _compress(b"".join(_planes(u, w) for u, w in zip(streams, widths)))
    return {"widths": widths, "compression": how}, packed


def _unpack(h: Dict[str, Any], body: bytes, counts: List[int]) -> List[np.ndarray]:
    widths = h.get("widths")
    if not (isinstance(widths, list) and len(widths) == len(counts)
            and all(w in (1, 2, 4, 8) for w in widths)):
        raise CodecError("compact QueryLog stretch has bad stream widths %r" % (widths,))
    sizes = [n * w for n, w in zip(counts, widths)]
    raw = _decompress(str(h.get("compression")), body, sum(sizes))
    if len(raw) != sum(sizes):
        raise CodecError("compact QueryLog stretch holds %d bytes, expected %d"
                         % (len(raw), sum(sizes)))
    out, at = [], 0
    for n, w, size in zip(counts, widths, sizes):
        out.append(_unplanes(raw[at:at + size], n, w))
        at += size
    return out


def encode_stretch(header: Dict[str, Any], body: bytes) -> Tuple[Dict[str, Any], bytes]:
    """A raw querylog stretch (header + issue|done|sample bytes) in the compact form."""
    rows, spr = int(header["rows"]), int(header["samples_per_row"])
    # the wire layout is little-endian on every device (querylog.py), whatever numpy's native
    issue = np.frombuffer(body, "<i8", rows, 0)
    done = np.frombuffer(body, "<i8", rows, 8 * rows)
    sample = np.frombuffer(body, "<u4", rows * spr, 16 * rows)
    h = dict(header, encoding="delta1")
    if rows == 0:
        h.update(t0=0, issue="gap", widths=[1, 1, 1], compression="zlib")
        return h, zlib.compress(b"")
    h["t0"] = int(issue[0])
    if (issue == issue[0]).all():
        h["issue"] = "const"
        gaps = np.zeros(0, np.int64)
    else:
        h["issue"] = "gap"
        gaps = issue[1:] - done[:-1]
    extra, packed = _pack([_zigzag(gaps), _zigzag(done - issue), sample.astype(np.uint64)])
    h.update(extra)
    return h, packed


def decode_stretch(header: Dict[str, Any], body: bytes) -> bytes:
    """The raw issue|done|sample bytes of a compact stretch (exact)."""
    if header.get("encoding") != "delta1":
        raise CodecError("unknown QueryLog encoding %r" % header.get("encoding"))
    rows, spr = _int(header, "rows", 0), _int(header, "samples_per_row", 1)
    if rows * (16 + 4 * spr) > 1 << 31:
        raise CodecError("compact QueryLog stretch of %d rows is out of bounds" % rows)
    if rows == 0:
        return b""
    const = header.get("issue") == "const"
    gaps, lat, sample = _unpack(header, body, [0 if const else rows - 1, rows, rows * spr])
    gaps, lat = _unzigzag(gaps), _unzigzag(lat)
    issue = np.empty(rows, np.int64)
    done = np.empty(rows, np.int64)
    t0 = _int(header, "t0")
    if const:
        issue[:] = t0
        done[:] = issue + lat
    else:
        # issue[i] = done[i-1] + gap[i-1] and done[i] = issue[i] + lat[i], so done is a
        # running sum of latencies and gaps from t0
        steps = lat.copy()
        steps[1:] += gaps
        done[:] = t0 + np.cumsum(steps)
        issue[:] = done - lat
    if (sample > 0xFFFFFFFF).any():
        raise CodecError("compact QueryLog stretch has a sample index over 32 bits")
    return (issue.astype("<i8").tobytes() + done.astype("<i8").tobytes()
            + sample.astype("<u4").tobytes())


def head_of(header: Dict[str, Any], body: bytes, keep: int) -> Tuple[Dict[str, Any], bytes]:
    """The first ``keep`` rows of a raw stretch."""
    rows, spr = int(header["rows"]), int(header["samples_per_row"])
    keep = max(0, min(keep, rows))
    parts = (body[:8 * keep], body[8 * rows:8 * rows + 8 * keep],
             body[16 * rows:16 * rows + 4 * spr * keep])
    return dict(header, rows=keep), b"".join(parts)


def encode_sorted_latencies(lat: np.ndarray) -> Tuple[Dict[str, Any], bytes]:
    """Latencies (any order) as their sorted differences, compressed."""
    s = np.sort(np.asarray(lat, np.int64))
    if not len(s):
        return {"count": 0, "first": 0, "widths": [1], "compression": "zlib"}, zlib.compress(b"")
    h, packed = _pack([_zigzag(np.diff(s))])
    h.update(count=len(s), first=int(s[0]))
    return h, packed


def decode_sorted_latencies(h: Dict[str, Any], body: bytes) -> np.ndarray:
    n = _int(h, "count", 0, 1 << 31)
    if n == 0:
        return np.zeros(0, np.int64)
    first = _int(h, "first")
    (d,) = _unpack(h, body, [n - 1])
    out = np.empty(n, np.int64)
    out[0] = first
    out[1:] = first + np.cumsum(_unzigzag(d))
    return out
