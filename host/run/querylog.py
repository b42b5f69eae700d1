"""The host's copy of a run's QueryLog, built from the stretches the agent sends.

Each stretch is appended to a spill file in the run directory the moment it arrives, so a
crash of the agent, the link or the host itself loses nothing already received.

The spill is a sequence of records, each a 24-byte head (magic, first row, rows, samples per
row) and its body: ``EPQL`` a QueryLog stretch; ``EPQM`` (first) a slot of ``rows`` bytes that
the run's end fills with its settings as JSON (``edgeperf score`` rebuilds the outputs from
them; overwriting the slot takes no new room on a full disk). A disk that fills while the
spill is written stops the spill at its last complete record (the rows go on in memory); a
torn last record (a host that died mid-write) is ignored on read, with a note.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.outputs.disk import free_space, is_disk_full, why

_SPILL_HEAD = struct.Struct("<4sQQI")  # magic, first row, rows, samples per row
_SPILL_MAGIC = b"EPQL"
_META_MAGIC = b"EPQM"
META_SLOT = 8192  # bytes for the run's settings, reserved at the spill's start


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
        self.spilled_rows = 0  # rows the spill holds, complete records only
        self.spill_error: str | None = None  # why the spill stopped before the run's end
        self._good = 0  # the spill's length up to its last complete record

    def add(self, first: int, rows: int, spr: int, body: bytes) -> None:
        """Take one stretch; stretches must continue where the last one ended."""
        if first != self.rows:
            if first < self.rows:  # a repeat (e.g. a re-fetch): keep what we have
                return
            raise ValueError(f"QueryLog gap: have {self.rows} rows, next stretch starts at {first}")
        issue, done, sample = split_stretch(body, rows, spr)
        if self.spill_path is not None and self._spill is None and self.spill_error is None:
            self._spill = open(self.spill_path, "ab", buffering=0)
            self._good = self._spill.seek(0, os.SEEK_END)
            if self._good == 0:
                self._append(_SPILL_HEAD.pack(_META_MAGIC, 0, META_SLOT, 0) + b" " * META_SLOT)
        if self._spill:
            if self._append(_SPILL_HEAD.pack(_SPILL_MAGIC, first, rows, spr) + body):
                self.spilled_rows = first + rows
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

    def _append(self, record: bytes) -> bool:
        """Write one whole record, or none of it: a failed write (a full disk) is cut back
        to the last complete record, the spill stops there, and the rows go on in memory."""
        assert self._spill is not None
        view = memoryview(record)
        try:
            while view:
                view = view[self._spill.write(view):]
        except OSError as exc:
            self._stop_spill(exc)
            return False
        self._good += len(record)
        return True

    def _stop_spill(self, exc: OSError) -> None:
        assert self._spill is not None
        try:
            os.ftruncate(self._spill.fileno(), self._good)
        except OSError:
            pass  # the reader ignores a torn last record anyway
        self._spill.close()
        self._spill = None
        where = Path(self.spill_path or "").parent
        room = f" ({free_space(where)})" if is_disk_full(exc) else ""
        self.spill_error = (f"the spill {self.spill_path} stopped at {self.spilled_rows} "
                            f"queries: {why(exc) if is_disk_full(exc) else exc}{room}")

    def close(self) -> None:
        if self._spill:
            self._spill.close()
        self._spill = None
        self.spill_path = None  # a closed collector never reopens its spill


@dataclass
class Spill:
    """What a spill file holds: its QueryLog, the run's settings (None: the run never got
    to its end, or an older spill), and a note when its end was torn or unreadable."""

    q: QueryLogData
    meta: dict[str, Any] | None
    note: str | None = None


def read_spill_file(path: Path) -> Spill:
    col = QueryLogCollector()
    raw = Path(path).read_bytes()
    off, meta, note = 0, None, None
    while off < len(raw):
        if off + _SPILL_HEAD.size > len(raw):
            note = f"{path}: its last record is torn ({len(raw) - off} bytes of a head); ignored"
            break
        magic, first, rows, spr = _SPILL_HEAD.unpack_from(raw, off)
        size = rows if magic == _META_MAGIC else rows * (16 + 4 * spr)
        body = raw[off + _SPILL_HEAD.size: off + _SPILL_HEAD.size + size]
        if magic not in (_SPILL_MAGIC, _META_MAGIC):
            note = f"{path}: unreadable from byte {off} on (not a spill record); ignored"
            break
        if len(body) != size:
            note = (f"{path}: its last record is torn ({len(body)} of {size} bytes, rows "
                    f"{first} on); ignored, the {col.rows} rows before it are read")
            break
        if magic == _META_MAGIC:
            text = body.decode("utf-8", "replace").strip()
            meta = json.loads(text) if text else None
        else:
            col.add(first, rows, spr, body)
        off += _SPILL_HEAD.size + size
    q = col.data(start_ns=int((meta or {}).get("start_ns") or 0))
    if meta and meta.get("qsl") is not None:
        q.qsl_index = np.asarray(meta["qsl"], np.int64)
    return Spill(q, meta, note)


def read_spill(path: Path) -> QueryLogData:
    """Rebuild a QueryLog from a spill file (what survived a crash)."""
    return read_spill_file(path).q


def write_spill_meta(path: Path, meta: dict[str, Any]) -> bool:
    """Fill the spill's settings slot in place (no new room needed); False when the spill
    has no slot or the settings do not fit in it."""
    text = json.dumps(meta, separators=(",", ":")).encode()
    try:
        with open(path, "r+b") as f:
            head = f.read(_SPILL_HEAD.size)
            if len(head) < _SPILL_HEAD.size:
                return False
            magic, _, slot, _ = _SPILL_HEAD.unpack(head)
            if magic != _META_MAGIC or len(text) > slot:
                return False
            f.write(text + b" " * (slot - len(text)))
    except OSError:
        return False
    return True
