"""mlperf_log_trace.json: one Chrome trace event per query, as valid JSON.

LoadGen's trace file is not valid JSON; ours is, so chrome://tracing, Perfetto and json.loads
all read it. Digits are built with numpy a chunk of rows at a time: a run can hold millions
of queries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from edgeperf_agent import __version__

__all__ = ["TraceEvents", "write_trace"]


@dataclass
class TraceEvents:
    """Per-query device timestamps (int64 ns, device clock) for the Chrome trace."""

    issue_ns: np.ndarray
    done_ns: np.ndarray
    sample_indices: np.ndarray | None = None  # N or N*k values (k samples per query)
    query_ids: np.ndarray | None = None  # default 0..N-1
    name: str = "Query"  # "Sample" when rows are the samples of one query (Offline)


_SPACE = ord(" ")
_CHUNK_ROWS = 1 << 16


def _ascii_ints(v: np.ndarray) -> np.ndarray:
    """(N, W) ASCII digits of non-negative ints, left-padded with spaces (removed later)."""
    v = np.asarray(v, dtype=np.uint64)
    width = len(str(int(v.max()))) if v.size else 1
    pows = np.array([10**i for i in range(width - 1, -1, -1)], dtype=np.uint64)
    out = ((v[:, None] // pows) % np.uint64(10) + np.uint64(48)).astype(np.uint8)
    pad = v[:, None] < pows
    pad[:, -1] = False
    out[pad] = _SPACE
    return out


def _ascii_us(ns: np.ndarray) -> list[np.ndarray]:
    """Columns printing nanoseconds as microseconds with three decimals, e.g. -12.345."""
    sign = np.where(ns < 0, ord("-"), _SPACE).astype(np.uint8)[:, None]
    a = np.abs(ns)
    frac = _ascii_ints(a % 1000 + 1000)[:, -3:]  # zero-padded to 3 digits
    dot = np.full((len(ns), 1), ord("."), np.uint8)
    return [sign, _ascii_ints(a // 1000), dot, frac]


def _const(text: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), np.uint8), (n, len(text)))


def _trace_rows(name: str, ts_ns: np.ndarray, dur_ns: np.ndarray, qid: np.ndarray,
                samples: np.ndarray | None) -> bytes:
    n = len(ts_ns)
    cols = [_const(f'{{"name":"{name}","ph":"X","pid":0,"tid":0,"ts":', n), *_ascii_us(ts_ns),
            _const(',"dur":', n), *_ascii_us(dur_ns), _const(',"args":{"query_id":', n),
            _ascii_ints(qid)]
    if samples is not None:
        cols.append(_const(',"sample_indices":[', n))
        for j in range(samples.shape[1]):
            if j:
                cols.append(_const(",", n))
            cols.append(_ascii_ints(samples[:, j]))
        cols.append(_const("]", n))
    cols.append(_const("}},\n", n))
    flat = np.concatenate(cols, axis=1).ravel()
    return flat[flat != _SPACE].tobytes()


def write_trace(path: str | os.PathLike[str], events: TraceEvents, start_ns: int = 0,
                total_rows: int | None = None) -> None:
    """Write mlperf_log_trace.json as valid Chrome trace-event JSON, one "X" event per query.

    ts/dur are microseconds (the format's unit) relative to ``start_ns``; digits are built
    with numpy, a chunk of rows at a time, because a run can hold millions of queries.
    """
    issue = np.asarray(events.issue_ns, dtype=np.int64)
    done = np.asarray(events.done_ns, dtype=np.int64)
    n = len(issue)
    if len(done) != n:
        raise ValueError(f"trace: {n} issue times but {len(done)} done times")
    dur = done - issue
    if n and dur.min() < 0:
        raise ValueError(f"trace: query {int(np.argmin(dur))} completes before it is issued")
    name = events.name
    if not name.replace("_", "").isalnum():
        raise ValueError(f"trace: event name {name!r} must be letters, digits or '_'")
    qid = (np.arange(n, dtype=np.int64) if events.query_ids is None
           else np.asarray(events.query_ids, dtype=np.int64))
    samples = None
    if events.sample_indices is not None:
        samples = np.asarray(events.sample_indices, dtype=np.int64)
        samples = samples.reshape(n, -1) if n else samples.reshape(0, 1)
    with open(path, "wb") as f:
        f.write(b'{"traceEvents":[\n')
        for lo in range(0, n, _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, n)
            rows = _trace_rows(name, issue[lo:hi] - start_ns, dur[lo:hi], qid[lo:hi],
                               None if samples is None else samples[lo:hi])
            f.write(rows[:-2] + b"\n" if hi == n else rows)
        total = n if total_rows is None else total_rows
        meta = json.dumps({"edgeperf_version": __version__, "clock": "device",
                           "events": n, "rows_in_run": total, "truncated": total > n})
        f.write(f'],"displayTimeUnit":"ns","otherData":{meta}}}\n'.encode())
