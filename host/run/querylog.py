"""The host's copy of a run's QueryLog, built from the stretches the agent sends.

Each stretch is appended to a spill file in the run directory the moment it arrives, so a
crash of the agent, the link or the host itself loses nothing already received.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SPILL_HEAD = struct.Struct("<4sQQI")  # magic, first row, rows, samples per row
_SPILL_MAGIC = b"EPQL"


@dataclass
class QueryLogData:
    """issue/done in device ns, one row per query (per sample for Offline)."""

    issue_ns: np.ndarray
    done_ns: np.ndarray
    sample_idx: np.ndarray  # rows * samples_per_row
    samples_per_row: int
    start_ns: int = 0
    qsl_index: np.ndarray | None = None  # position in the pushed set -> QSL index
    # the run's last completion when the rows are only the first stretch (--querylog summary:
    # the device kept the rest and sent its latencies); 0: the rows' own last completion
    last_done_ns: int = 0

    def last_done(self) -> int:
        """The run's last completion, device ns (the power window's and power_end's end)."""
        own = int(self.done_ns.max()) if len(self.done_ns) else 0
        return max(own, int(self.last_done_ns))

    def qsl_samples(self) -> np.ndarray:
        """The QSL index of every sample queried, in issue order (LoadGen's numbering)."""
        pos = self.sample_idx.astype(np.int64)
        return pos if self.qsl_index is None else self.qsl_index[pos % len(self.qsl_index)]

    @property
    def rows(self) -> int:
        return len(self.done_ns)

    def checksum(self) -> int:
        crc = zlib.crc32(self.issue_ns.astype("<i8").tobytes())
        crc = zlib.crc32(self.done_ns.astype("<i8").tobytes(), crc)
        return zlib.crc32(self.sample_idx.astype("<u4").tobytes(), crc)


def split_stretch(body: bytes, rows: int, spr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    want = rows * (16 + 4 * spr)
    if len(body) != want:
        raise ValueError(f"QueryLog stretch of {rows} rows is {len(body)} bytes, expected {want}")
    issue = np.frombuffer(body, "<i8", rows, 0)
    done = np.frombuffer(body, "<i8", rows, rows * 8)
    sample = np.frombuffer(body, "<u4", rows * spr, rows * 16)
    return issue, done, sample


class QueryLogCollector:
    def __init__(self, spill_path: Path | None = None) -> None:
        self.parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.samples_per_row = 1
        self.spill_path = spill_path
        self._spill = None  # opened with the first stretch: no file for a run that never ran

    def add(self, first: int, rows: int, spr: int, body: bytes) -> None:
        """Take one stretch; stretches must continue where the last one ended."""
        if first != self.rows:
            if first < self.rows:  # a repeat (e.g. a re-fetch): keep what we have
                return
            raise ValueError(f"QueryLog gap: have {self.rows} rows, next stretch starts at {first}")
        issue, done, sample = split_stretch(body, rows, spr)
        if self.spill_path is not None and self._spill is None:
            self._spill = open(self.spill_path, "ab")
        if self._spill:
            self._spill.write(_SPILL_HEAD.pack(_SPILL_MAGIC, first, rows, spr) + body)
            self._spill.flush()
        self.parts.append((first, issue, done, sample))
        self.rows = first + rows
        self.samples_per_row = spr

    def data(self, start_ns: int = 0) -> QueryLogData:
        if not self.parts:
            e = np.zeros(0, np.int64)
            return QueryLogData(e, e.copy(), np.zeros(0, np.uint32), self.samples_per_row, start_ns)
        return QueryLogData(np.concatenate([p[1] for p in self.parts]).astype(np.int64),
                            np.concatenate([p[2] for p in self.parts]).astype(np.int64),
                            np.concatenate([p[3] for p in self.parts]).astype(np.uint32),
                            self.samples_per_row, start_ns)

    def close(self) -> None:
        if self._spill:
            self._spill.close()
        self._spill = None
        self.spill_path = None  # a closed collector never reopens its spill


def read_spill(path: Path) -> QueryLogData:
    """Rebuild a QueryLog from a spill file (what survived a crash)."""
    col = QueryLogCollector()
    raw = Path(path).read_bytes()
    off = 0
    while off + _SPILL_HEAD.size <= len(raw):
        magic, first, rows, spr = _SPILL_HEAD.unpack_from(raw, off)
        if magic != _SPILL_MAGIC:
            break
        size = rows * (16 + 4 * spr)
        body = raw[off + _SPILL_HEAD.size: off + _SPILL_HEAD.size + size]
        if len(body) != size:
            break  # a torn last write
        col.add(first, rows, spr, body)
        off += _SPILL_HEAD.size + size
    return col.data()
