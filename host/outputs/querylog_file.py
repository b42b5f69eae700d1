"""querylog.npz: a run's raw QueryLog on disk, exact, in a few bytes a query instead of 20.

A standard numpy archive (``np.load`` reads it, no pickles) holding each query's times as
steps from the previous query's, which are small numbers that deflate packs tightly:

    format           "edgeperf.querylog/2"
    scenario         the run's scenario
    start_ns         the run's start, device clock (0: not known)
    samples_per_row  samples in a row: MultiStream's samples per query, else 1
    t0_ns            the first issue time: the steps count from it
    issue_step_ns    issue_ns[i] - issue_ns[i-1] (the first: issue_ns[0] - t0_ns, so 0)
    done_step_ns     done_ns[i] - done_ns[i-1] (the first: done_ns[0] - t0_ns)
    sample_idx       each row's positions in the pushed sample set (rows * samples_per_row)
    qsl_index        (when known) the QSL index of each position: LoadGen's numbering

each integer array in the narrowest dtype that holds it. The times, with numpy alone:

    z = np.load("querylog.npz")
    issue_ns = z["t0_ns"] + np.cumsum(z["issue_step_ns"], dtype=np.int64)
    done_ns = z["t0_ns"] + np.cumsum(z["done_step_ns"], dtype=np.int64)

or ``read_querylog(path)``, which also reads the plain int64 ``issue_ns``/``done_ns`` of
files written before (20 bytes a query, uncompressed). Measured on 10-second runs of
builtin:mlp and synthetic:null: 2.4-4.4 bytes a query for SingleStream, 4.0-5.7 for
MultiStream (a query of 8 samples), 6.3-6.8 for Server at 5000/s and 0.5-1.7 a sample for
Offline; never more than the plain arrays, but for the archive's fixed 1-2 KB. Deflate level
5 packs within 5% of level 6 in a fifth of its time on these arrays. The steps are computed
and written a chunk at a time, so a run of hundreds of millions of rows (synthetic:null
Offline: 239 million, 4.8 GB plain, 122 MB here) needs no second copy of its log in memory.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeperf.run.querylog import QueryLogData

FORMAT = "edgeperf.querylog/2"
LEVEL = 5  # deflate
_CHUNK = 1 << 20  # rows computed and written at a time
_INTS = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64)


class QueryLogFileError(ValueError):
    """A file np.load reads that is not a querylog.npz; the message names the file."""


class QueryLogArrays(dict):
    """The arrays of a querylog.npz as the plain layout names them (issue_ns, done_ns,
    sample_idx, start_ns, samples_per_row and, when present, qsl_index and scenario); used
    like the NpzFile of ``np.load`` (``files``, ``with``)."""

    @property
    def files(self) -> list[str]:
        return list(self)

    def __enter__(self) -> QueryLogArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _narrowest(lo: int, hi: int) -> np.dtype:
    for t in _INTS:
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return np.dtype(t)
    return np.dtype(np.uint64)  # sample positions only: steps always fit int64


def _steps(a: np.ndarray, t0: int) -> Callable[[], Iterator[np.ndarray]]:
    """``a[i] - a[i-1]`` (the first from ``t0``), a chunk at a time; callable again."""
    def chunks() -> Iterator[np.ndarray]:
        prev = np.int64(t0)
        for i in range(0, len(a), _CHUNK):
            c = np.asarray(a[i:i + _CHUNK], np.int64)
            yield np.diff(c, prepend=prev)
            prev = c[-1]
    return chunks


def _slices(a: np.ndarray) -> Callable[[], Iterator[np.ndarray]]:
    return lambda: (a[i:i + _CHUNK] for i in range(0, len(a), _CHUNK))


def _write_member(zf: zipfile.ZipFile, name: str, n: int,
                  chunks: Callable[[], Iterator[np.ndarray]]) -> None:
    """One 1-d integer array, in the narrowest dtype, written a chunk at a time."""
    lo = hi = 0
    for c in chunks():
        if len(c):
            lo, hi = min(lo, int(c.min())), max(hi, int(c.max()))
    dtype = _narrowest(lo, hi)
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
            "shape": (n,)})
        for c in chunks():
            f.write(c.astype(dtype).tobytes())


def _write_value(zf: zipfile.ZipFile, name: str, value: Any) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)


def write_querylog(path: str | os.PathLike[str], q: QueryLogData, scenario: str) -> None:
    """Write ``q`` as querylog.npz (the compact layout above); ``q`` must have rows."""
    t0 = int(q.issue_ns[0])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=LEVEL) as zf:
        _write_value(zf, "format", FORMAT)
        _write_value(zf, "scenario", scenario)
        _write_value(zf, "start_ns", np.int64(q.start_ns))
        _write_value(zf, "samples_per_row", np.int64(q.samples_per_row))
        _write_value(zf, "t0_ns", np.int64(t0))
        _write_member(zf, "issue_step_ns", q.rows, _steps(q.issue_ns, t0))
        _write_member(zf, "done_step_ns", q.rows, _steps(q.done_ns, t0))
        _write_member(zf, "sample_idx", len(q.sample_idx), _slices(q.sample_idx))
        if q.qsl_index is not None:
            qsl = np.asarray(q.qsl_index, np.int64)
            _write_member(zf, "qsl_index", len(qsl), _slices(qsl))


def _times(path: str | os.PathLike[str], z: Any, key: str) -> np.ndarray:
    steps = np.asarray(z[key]).reshape(-1)
    if steps.dtype.kind not in "iu":
        raise QueryLogFileError(f"{path}: {key} must be integers (ns), got {steps.dtype}")
    return int(z["t0_ns"]) + np.cumsum(steps, dtype=np.int64)


def read_querylog(path: str | os.PathLike[str]) -> QueryLogArrays:
    """The arrays of a querylog.npz, either layout, the times as int64 ns. Raises
    QueryLogFileError for an archive that is not one, and what np.load raises (OSError,
    ValueError) for a file it cannot read."""
    with np.load(path, allow_pickle=False) as z:
        out = QueryLogArrays()
        if "issue_step_ns" in z and "done_step_ns" in z and "t0_ns" in z:
            out["issue_ns"] = _times(path, z, "issue_step_ns")
            out["done_ns"] = _times(path, z, "done_step_ns")
        elif "issue_ns" in z and "done_ns" in z:  # the plain layout of earlier files
            out["issue_ns"], out["done_ns"] = z["issue_ns"], z["done_ns"]
        else:
            raise QueryLogFileError(f"{path} is not an edgeperf querylog.npz (no issue/done "
                                    "times)")
        for key in ("sample_idx", "start_ns", "samples_per_row", "qsl_index", "scenario"):
            if key in z:
                out[key] = z[key]
    return out
