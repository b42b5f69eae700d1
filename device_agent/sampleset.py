"""The sample-set file: self-describing, so its SHA-256 covers the tensors' layout too.

    b"EPSS" | uint32 header length | header JSON {"tensors": [{"dtype", "shape"}]} |
    zero padding to a 64-byte boundary | each tensor's C-order bytes, in order

Two sets with the same bytes in different shapes are different files with different hashes.
Shared by host (which packs) and agent (which unpacks); it must run on Python 3.9.
"""

from __future__ import annotations

import json
import re
import struct
from typing import List, Sequence, Tuple

import numpy as np

MAGIC = b"EPSS"
_HEAD = struct.Struct("<4sI")
ALIGN = 64
MAX_HEADER = 1 << 20
MAX_DIMS = 32  # numpy 1.x's limit
# a dimension is an int64 (19 digits): a longer integer is not one pack() wrote, and
# refusing it keeps json.loads linear on 3.9/3.10, whose int() is quadratic in the digits
MAX_INT_DIGITS = 20
# numpy refuses an array whose item count (zeros counted as ones) times its item size is
# over the largest intp (2**31-1 on a 32-bit Raspberry Pi OS), even an empty one; the
# header is refused before numpy sees it
MAX_EXTENT = int(np.iinfo(np.intp).max)
_DTYPE_NAME = re.compile(r"[<>=|]?[A-Za-z][A-Za-z0-9]{0,15}")


class SampleSetError(ValueError):
    pass


def pack(arrays: Sequence[np.ndarray]) -> bytes:
    if not arrays:
        raise SampleSetError("a sample set needs at least one tensor")
    _same_counts([(np.dtype(a.dtype), list(a.shape)) for a in arrays])
    header = json.dumps({"tensors": [{"dtype": np.dtype(a.dtype).name, "shape": list(a.shape)}
                                     for a in arrays]}, separators=(",", ":")).encode()
    start = _HEAD.size + len(header)
    pad = (-start) % ALIGN
    parts = [_HEAD.pack(MAGIC, len(header)), header, b"\0" * pad]
    parts += [np.ascontiguousarray(a).tobytes() for a in arrays]
    return b"".join(parts)


def _dtype(name: object) -> np.dtype:
    # a type name or a short code ("float32", "<f4"), never a string np.dtype would parse
    # as a structure (",int32", "(2,)i4": some raise SyntaxError)
    if not isinstance(name, str) or not _DTYPE_NAME.fullmatch(name):
        raise ValueError("dtype %.60r is not a numeric tensor type" % (name,))
    try:
        dt = np.dtype(name)
    except TypeError as exc:
        raise ValueError("dtype %r is not a numpy type (%s)" % (name, exc)) from None
    if dt.kind not in "biuf":
        raise ValueError("dtype %s is not a numeric tensor type" % dt.name)
    return dt


def _same_counts(layout: Sequence[Tuple[np.dtype, List[int]]]) -> None:
    """Every tensor holds the same samples along its first axis, or none is used."""
    if any(not shape for _, shape in layout):
        raise SampleSetError("every tensor of a sample set needs a sample axis; got shapes %s"
                             % [shape for _, shape in layout])
    counts = [shape[0] for _, shape in layout]
    if len(set(counts)) > 1:
        raise SampleSetError(
            "every tensor of a sample set needs the same sample count: %s; give each model "
            "input one row per sample" % ", ".join(
                "tensor %d (%s %s) has %d samples" % (i, dt.name, shape, shape[0])
                for i, (dt, shape) in enumerate(layout)))


def _shape(raw: object, itemsize: int) -> List[int]:
    """A shape from the header: a list of at most MAX_DIMS non-negative ints (not floats,
    not bools: a header that needs rounding is not one pack() wrote)."""
    if not isinstance(raw, list) or len(raw) > MAX_DIMS or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in raw):
        raise SampleSetError("tensor shape %.200r is not a list of at most %d non-negative "
                             "integers" % (raw, MAX_DIMS))
    extent = itemsize
    for x in raw:
        extent *= max(x, 1)
    if extent > MAX_EXTENT:
        raise SampleSetError("tensor shape %.200r is over numpy's largest array" % (raw,))
    return list(raw)


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise ValueError("an integer of %d digits; the limit is %d"
                         % (len(text) - text.startswith("-"), MAX_INT_DIGITS))
    return int(text)


def _parse_constant(name: str) -> object:
    raise ValueError("%s is not plain JSON" % name)


def unpack(raw: np.ndarray) -> List[np.ndarray]:
    """Tensors viewing ``raw`` (a uint8 array, e.g. from np.fromfile): no copy. Sizes are
    computed in Python integers, so a shape that would overflow ``np.prod`` is named."""
    buf = raw[:_HEAD.size + MAX_HEADER].tobytes()
    if len(buf) < _HEAD.size:
        raise SampleSetError("sample set is %d bytes: too short" % len(raw))
    magic, hlen = _HEAD.unpack_from(buf, 0)
    if magic != MAGIC or hlen > MAX_HEADER:
        raise SampleSetError("not an edgeperf sample set (bad magic or header)")
    try:
        tensors = json.loads(buf[_HEAD.size:_HEAD.size + hlen].decode(), parse_int=_parse_int,
                             parse_constant=_parse_constant)["tensors"]
        layout = [(_dtype(t["dtype"]), t["shape"]) for t in tensors]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SampleSetError("sample set header is not JSON with 'tensors': "
                             "[{dtype, shape}, ...] (%s)" % exc) from None
    if not layout:
        raise SampleSetError("a sample set needs at least one tensor")
    layout = [(dt, _shape(shape, dt.itemsize)) for dt, shape in layout]
    _same_counts(layout)
    off = _HEAD.size + hlen
    off += (-off) % ALIGN
    sizes = [dt.itemsize * _prod(shape) for dt, shape in layout]
    if off + sum(sizes) != len(raw):
        raise SampleSetError(
            "sample set's header describes %d bytes of tensors (%s) but the file holds %d after "
            "its header: the shapes do not match the payload; pack it again"
            % (sum(sizes), ", ".join("%s %s" % (dt.name, shape) for dt, shape in layout),
               len(raw) - off))
    arrays = []
    for (dt, shape), size in zip(layout, sizes):
        arrays.append(raw[off:off + size].view(dt).reshape(shape))
        off += size
    return arrays


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for x in shape:
        n *= x
    return n
