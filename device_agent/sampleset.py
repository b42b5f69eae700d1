"""The sample-set file: self-describing, so its SHA-256 covers the tensors' layout too.

    b"EPSS" | uint32 header length | header JSON {"tensors": [{"dtype", "shape"}]} |
    zero padding to a 64-byte boundary | each tensor's C-order bytes, in order

Two sets with the same bytes in different shapes are different files with different hashes.
Shared by host (which packs) and agent (which unpacks); it must run on Python 3.9.
"""

from __future__ import annotations

import json
import struct
from typing import List, Sequence

import numpy as np

MAGIC = b"EPSS"
_HEAD = struct.Struct("<4sI")
ALIGN = 64
MAX_HEADER = 1 << 20


class SampleSetError(ValueError):
    pass


def pack(arrays: Sequence[np.ndarray]) -> bytes:
    if not arrays:
        raise SampleSetError("a sample set needs at least one tensor")
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise SampleSetError("every tensor of a sample set needs the same sample count")
    header = json.dumps({"tensors": [{"dtype": np.dtype(a.dtype).name, "shape": list(a.shape)}
                                     for a in arrays]}, separators=(",", ":")).encode()
    start = _HEAD.size + len(header)
    pad = (-start) % ALIGN
    parts = [_HEAD.pack(MAGIC, len(header)), header, b"\0" * pad]
    parts += [np.ascontiguousarray(a).tobytes() for a in arrays]
    return b"".join(parts)


def _dtype(name: object) -> np.dtype:
    dt = np.dtype(str(name))
    if dt.kind not in "biuf":
        raise ValueError("dtype %s is not a numeric tensor type" % dt.name)
    return dt


def unpack(raw: np.ndarray) -> List[np.ndarray]:
    """Tensors viewing ``raw`` (a uint8 array, e.g. from np.fromfile): no copy."""
    buf = raw.tobytes()[:_HEAD.size + MAX_HEADER] if len(raw) < _HEAD.size + MAX_HEADER \
        else raw[:_HEAD.size + MAX_HEADER].tobytes()
    if len(buf) < _HEAD.size:
        raise SampleSetError("sample set is %d bytes: too short" % len(raw))
    magic, hlen = _HEAD.unpack_from(buf, 0)
    if magic != MAGIC or hlen > MAX_HEADER:
        raise SampleSetError("not an edgeperf sample set (bad magic or header)")
    try:
        tensors = json.loads(buf[_HEAD.size:_HEAD.size + hlen].decode())["tensors"]
        layout = [(_dtype(t["dtype"]), [int(x) for x in t["shape"]]) for t in tensors]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SampleSetError("sample set header is not JSON with 'tensors': "
                             "[{dtype, shape}, ...] (%s)" % exc) from None
    if not layout:
        raise SampleSetError("a sample set needs at least one tensor")
    off = _HEAD.size + hlen
    off += (-off) % ALIGN
    arrays = []
    for dt, shape in layout:
        if not shape or min(shape) < 0:
            raise SampleSetError("tensor shape %s: needs a sample axis and no negative size"
                                 % shape)
        size = dt.itemsize * int(np.prod(shape))
        if off + size > len(raw):
            raise SampleSetError("sample set is truncated: tensor %s %s needs %d bytes at %d, "
                                 "file has %d" % (dt.name, shape, size, off, len(raw)))
        arrays.append(raw[off:off + size].view(dt).reshape(shape))
        off += size
    if off != len(raw):
        raise SampleSetError("sample set has %d bytes after its tensors" % (len(raw) - off))
    return arrays
