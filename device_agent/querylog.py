"""The QueryLog: per-query issue and completion times (device ns) and sample positions,
in preallocated chunks, so that the timed loops only store into arrays that exist.

Sample positions are kept as uint32, so a query costs 20 bytes of agent memory. ``views``
gives the wire layout (issue || done || sample of a stretch, little-endian int64, int64,
uint32) without copying on a little-endian device; a big-endian one copies and swaps.
"""

from __future__ import annotations

import sys
import zlib
from array import array
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

CHUNK = 1 << 16  # rows per storage chunk
BYTEORDER = sys.byteorder  # of the arrays' memory; the wire is little-endian everywhere


def _wire(a: array, lo: int, hi: int) -> memoryview:
    """Items [lo, hi) of a native array as little-endian bytes (no copy on little-endian)."""
    if BYTEORDER == "little":
        return memoryview(a)[lo:hi]
    piece = a[lo:hi]
    piece.byteswap()
    return memoryview(piece)


@dataclass
class QueryLog:
    """Preallocated, chunked storage of issue/done times and sample indices."""

    samples_per_row: int
    issue: List[array] = field(default_factory=list)
    done: List[array] = field(default_factory=list)
    sample: List[array] = field(default_factory=list)
    rows: int = 0
    start_ns: int = 0
    end_ns: int = 0

    def chunk_for(self, row: int):
        c = row // CHUNK
        while len(self.issue) <= c:  # exact sizes: array * n does not over-allocate
            self.issue.append(array("q", [0]) * CHUNK)
            self.done.append(array("q", [0]) * CHUNK)
            self.sample.append(array("I", [0]) * (CHUNK * self.samples_per_row))
        return self.issue[c], self.done[c], self.sample[c], c * CHUNK

    def _pieces(self, lo: int, hi: int) -> List[tuple]:
        """(chunk, offset, rows) pieces covering rows [lo, hi), one per storage chunk."""
        out = []
        row = lo
        while row < hi:
            c, off = divmod(row, CHUNK)
            n = min(hi - row, CHUNK - off)
            out.append((c, off, n))
            row += n
        return out

    def views(self, lo: int, hi: int, issue_ns: Optional[int] = None) -> List[memoryview]:
        """Memoryviews whose concatenation is issue || done || sample of rows [lo, hi)
        (the wire layout), so a payload is built with one copy. ``issue_ns`` replaces
        every issue time (Offline: one query, one issue time)."""
        spr = self.samples_per_row
        pieces = self._pieces(lo, hi)
        if issue_ns is None:
            issue = [_wire(self.issue[c], off, off + n) for c, off, n in pieces]
        else:
            issue = [_wire(array("q", [issue_ns]) * (hi - lo), 0, hi - lo)]
        done = [_wire(self.done[c], off, off + n) for c, off, n in pieces]
        sample = [_wire(self.sample[c], off * spr, (off + n) * spr) for c, off, n in pieces]
        return issue + done + sample

    def slice(self, lo: int, hi: int) -> tuple:
        """(issue, done, sample) numpy arrays for rows [lo, hi) (copies; not for hot paths)."""
        raw = b"".join(self.views(lo, hi))
        n = hi - lo
        return (np.frombuffer(raw, "<i8", n, 0), np.frombuffer(raw, "<i8", n, 8 * n),
                np.frombuffer(raw, "<u4", n * self.samples_per_row, 16 * n))

    def checksum(self) -> int:
        """CRC32 over the rows' issue, then done, then sample bytes as they go on the wire
        (little-endian), without copying on a little-endian device."""
        crc = 0
        for view in self.views(0, self.rows):
            crc = zlib.crc32(view, crc)
        return crc

    @property
    def nbytes(self) -> int:
        """Bytes the log holds: 16 + 4 * samples_per_row per preallocated row."""
        return len(self.issue) * CHUNK * (16 + 4 * self.samples_per_row)
