"""The MLPerf scenario loops, timed natively on the device with time.perf_counter_ns.

The timed region of a query is the work of answering it: set inputs, invoke, read outputs.
The inner loops below do nothing else but the two clock reads, that work, two stores into
preallocated int64 arrays and one comparison against the next check time. Everything else
(stopping rules, sending finished stretches of the QueryLog to the host, progress) happens
between calls of the inner loop, when the clock passes ``check_ns``.

The QueryLog has one row per query (per sample for Offline): issue and completion times in
device nanoseconds. For Server the issue time is the scheduled arrival, so queueing counts.
Sample indices are kept as uint32, so a query costs 20 bytes of agent memory.
"""

from __future__ import annotations

import time
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

CHUNK = 1 << 16  # rows per storage chunk
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTISTREAM_SAMPLES = 8
clock = time.perf_counter_ns


class RunError(Exception):
    """A run cannot start with these settings."""


@dataclass
class RunSettings:
    scenario: str
    min_duration_ns: int = 0
    max_duration_ns: int = 0  # 0: none
    min_query_count: int = 1
    max_query_count: int = 0  # 0: none
    samples_per_query: int = 1
    target_qps: float = 0.0  # Server arrival rate; Offline expected rate (0: from warm-up)
    sample_index_rng_seed: int = 0
    schedule_rng_seed: int = 0
    warmup_queries: int = 10
    flush_interval_ns: int = 500_000_000
    offline_sample_count: int = 0  # 0: derived from expected QPS and min duration

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> RunSettings:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        s = cls(**known)
        if s.scenario not in SCENARIOS:
            raise RunError("unknown scenario %r; choose one of %s"
                           % (s.scenario, ", ".join(SCENARIOS)))
        if s.max_query_count and s.min_query_count > s.max_query_count:
            raise RunError("min_query_count %d > max_query_count %d"
                           % (s.min_query_count, s.max_query_count))
        if s.max_duration_ns and s.min_duration_ns > s.max_duration_ns:
            raise RunError("min duration > max duration")
        if s.scenario == "Server" and not s.target_qps > 0:
            raise RunError("Server needs a target QPS > 0")
        if s.samples_per_query < 1:
            raise RunError("samples_per_query must be >= 1")
        return s


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
            issue = [memoryview(self.issue[c])[off:off + n] for c, off, n in pieces]
        else:
            issue = [memoryview(array("q", [issue_ns]) * (hi - lo))]
        done = [memoryview(self.done[c])[off:off + n] for c, off, n in pieces]
        sample = [memoryview(self.sample[c])[off * spr:(off + n) * spr] for c, off, n in pieces]
        return issue + done + sample

    def slice(self, lo: int, hi: int) -> tuple:
        """(issue, done, sample) numpy arrays for rows [lo, hi) (copies; not for hot paths)."""
        raw = b"".join(self.views(lo, hi))
        n = hi - lo
        return (np.frombuffer(raw, np.int64, n, 0), np.frombuffer(raw, np.int64, n, 8 * n),
                np.frombuffer(raw, np.uint32, n * self.samples_per_row, 16 * n))

    def checksum(self) -> int:
        """CRC32 over the rows' issue, then done, then sample bytes, without copying."""
        crc = 0
        for view in self.views(0, self.rows):
            crc = zlib.crc32(view, crc)
        return crc

    @property
    def nbytes(self) -> int:
        """Bytes the log holds: 16 + 4 * samples_per_row per preallocated row."""
        return len(self.issue) * CHUNK * (16 + 4 * self.samples_per_row)


# ---------------------------------------------------------------- inner loops (the hot path)


def _loop_single(invoke, order, issue, done, lo: int, hi: int, check_ns: int) -> int:
    pc = clock
    for j in range(lo, hi):
        s = order[j]
        t0 = pc()
        invoke(s)
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def _loop_multi(invoke, order, issue, done, lo: int, hi: int, check_ns: int, n: int) -> int:
    pc = clock
    for j in range(lo, hi):
        base = j * n
        t0 = pc()
        for k in range(base, base + n):
            invoke(order[k])
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def _loop_batched(invoke_batch, order, issue, done, lo: int, hi: int, check_ns: int,
                  n: int) -> int:
    pc = clock
    for j in range(lo, hi):
        t0 = pc()
        invoke_batch(order, j * n)
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def _loop_server(invoke, order, sched, issue, done, lo: int, hi: int, check_ns: int) -> int:
    pc = clock
    sleep = time.sleep
    for j in range(lo, hi):
        at = sched[j]
        now = pc()
        if now < at:
            if at - now > 2_000_000:
                sleep((at - now - 1_000_000) / 1e9)
            while pc() < at:
                pass
        invoke(order[j])
        t1 = pc()
        issue[j] = at
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


# ---------------------------------------------------------------- the controller


Emit = Callable[[str, Dict[str, Any], bytes], None]


class ScenarioRunner:
    """Runs one scenario on a backend; emits QueryLog stretches while it runs."""

    def __init__(self, settings: RunSettings, invoke: Callable[[int], Any],
                 n_samples: int, emit: Emit,
                 invoke_batch: Optional[Callable[[Any, int], Any]] = None) -> None:
        self.s = settings
        self.invoke = invoke
        self.invoke_batch = invoke_batch
        self.n_samples = max(1, n_samples)
        self.emit = emit
        self.rng = np.random.default_rng(settings.sample_index_rng_seed)
        self.sched_rng = np.random.default_rng(settings.schedule_rng_seed)
        spr = settings.samples_per_query if settings.scenario == "MultiStream" else 1
        self.log = QueryLog(samples_per_row=spr)
        self.sent = 0
        self.stop_reason = ""
        self.warmup_ns_per_sample = 0
        self._sched_next = 0.0  # seconds after start of the next Server arrival
        self._server_total: Optional[int] = None
        self.offline_sample_count = 0  # the size of the Offline query, once decided

    # -- helpers outside the timed region
    def _fill_order(self, buf: array, n: int) -> None:
        if self.s.scenario == "Offline":
            idx = np.concatenate([self.rng.permutation(self.n_samples)
                                  for _ in range(-(-n // self.n_samples))])[:n]
        else:
            idx = self.rng.integers(0, self.n_samples, size=n)
        np.frombuffer(buf, np.uint32, n)[:] = idx

    def _flush(self, upto: int) -> None:
        if upto <= self.sent:
            return
        log = self.log
        # Offline: one query, so every row shares its issue time
        issue = log.start_ns if self.s.scenario == "Offline" else None
        for c, off, n in log._pieces(self.sent, upto):  # one stretch per storage chunk
            first = c * CHUNK + off
            self.emit("querylog", {"first": first, "rows": n,
                                   "samples_per_row": log.samples_per_row},
                      b"".join(log.views(first, first + n, issue)))
        self.sent = upto

    def _progress(self, rows: int, now: int) -> None:
        self.emit("progress", {"queries": rows, "elapsed_ns": now - self.log.start_ns}, b"")

    def warmup(self) -> None:
        """Untimed warm-up queries; for an Offline run without an expected QPS, then a
        calibration of about half a second whose steady-state rate sizes the query."""
        n = self.s.warmup_queries
        spq = self.s.samples_per_query if self.s.scenario == "MultiStream" else 1
        for i in self.rng.integers(0, self.n_samples, size=max(0, n) * spq).tolist():
            self.invoke(i)
        if self.s.scenario != "Offline" or self.s.target_qps or self.s.offline_sample_count:
            return
        done, t0 = 0, clock()
        end = t0 + 500_000_000
        batch = 1
        while True:
            for i in self.rng.integers(0, self.n_samples, size=batch).tolist():
                self.invoke(i)
            done += batch
            now = clock()
            if now >= end:
                break
            batch = min(batch * 2, 4096)
        self.warmup_ns_per_sample = max(1, (now - t0) // done)

    # -- the run
    def run(self) -> QueryLog:
        self.warmup()
        if self.s.scenario == "Offline":
            return self._run_offline()
        return self._run_stream()

    def _run_stream(self) -> QueryLog:
        s, log = self.s, self.log
        scen = s.scenario
        spr = log.samples_per_row
        batch = self.invoke_batch if scen == "MultiStream" else None
        j = 0
        log.start_ns = start = clock()
        next_flush = start + s.flush_interval_ns
        min_end = start + s.min_duration_ns
        max_end = start + s.max_duration_ns if s.max_duration_ns else 1 << 62
        sched: Any = None
        while True:
            now = clock()
            if scen == "Server":
                # LoadGen generates arrivals until the schedule covers both minimums
                covered = self._server_total is not None and j >= self._server_total
            else:
                # LoadGen's rule: the min duration is met when the last query was *issued* at
                # or after it (not merely finished after it); else one more query goes out
                covered = j >= s.min_query_count and j > 0 and \
                    log.issue[(j - 1) // CHUNK][(j - 1) % CHUNK] >= min_end
            if covered:
                self.stop_reason = "min duration and min query count met"
                break
            if s.max_query_count and j >= s.max_query_count:
                self.stop_reason = "max query count reached"
                break
            if now >= max_end:
                self.stop_reason = "max duration reached"
                break
            issue, done, order, base = log.chunk_for(j)
            lo = j - base
            if lo == 0:
                self._fill_order(order, CHUNK * spr)
                if scen == "Server":
                    sched = self._schedule(start, base)
            limit = s.max_query_count or (1 << 62)
            if scen == "Server":
                if self._server_total is not None:
                    limit = min(limit, self._server_total)
            elif j < s.min_query_count:
                limit = min(limit, s.min_query_count)
            hi = min(CHUNK, limit - base)
            # SingleStream/MultiStream past min_end with enough queries: one more query
            one_more = scen != "Server" and now >= min_end and j >= s.min_query_count
            check = min(next_flush, max_end, min_end if now < min_end or one_more else max_end)
            if scen == "SingleStream":
                end = _loop_single(self.invoke, order, issue, done, lo, hi, check)
            elif scen == "MultiStream" and batch is not None:
                end = _loop_batched(batch, np.frombuffer(order, np.uint32), issue, done,
                                    lo, hi, check, spr)
            elif scen == "MultiStream":
                end = _loop_multi(self.invoke, order, issue, done, lo, hi, check, spr)
            else:
                end = _loop_server(self.invoke, order, sched, issue, done, lo, hi, check)
            j = base + end
            log.rows = j
            now = clock()
            if now >= next_flush:
                self._flush(j)
                self._progress(j, now)
                next_flush = now + s.flush_interval_ns
        log.end_ns = clock()
        self._flush(log.rows)
        return log

    def _schedule(self, start: int, base: int) -> List[int]:
        """Scheduled arrivals (absolute device ns) of one chunk of Server queries.

        Poisson arrivals: exponential gaps with mean 1/target_qps from the schedule seed;
        the first query arrives at the start. Also fixes the total query count once the
        schedule reaches the min duration (and the min query count).
        """
        s = self.s
        gaps = self.sched_rng.exponential(1.0 / s.target_qps, size=CHUNK)
        offsets_ns = np.round((self._sched_next + np.cumsum(gaps) - gaps) * 1e9).astype(np.int64)
        self._sched_next += float(np.sum(gaps))
        if self._server_total is None and offsets_ns[-1] >= s.min_duration_ns:
            k = int(np.searchsorted(offsets_ns, s.min_duration_ns, side="left"))
            self._server_total = max(base + k + 1, s.min_query_count)
        return (start + offsets_ns).tolist()

    def _run_offline(self) -> QueryLog:
        """One query of n samples. The whole loop is the timed region, so the sample order
        is drawn before it and the only other work inside is the bounded-interval flush."""
        s, log = self.s, self.log
        n = s.offline_sample_count
        if not n:
            per = self.warmup_ns_per_sample or 1_000_000
            qps = s.target_qps or 1e9 / per
            n = int(1.1 * qps * s.min_duration_ns / 1e9)  # LoadGen truncates too
            n = max(n, s.min_query_count, 1)
            if s.max_query_count:
                n = min(n, s.max_query_count)
        self.offline_sample_count = n
        chunks = []
        for base in range(0, n, CHUNK):
            issue, done, order, _ = log.chunk_for(base)
            self._fill_order(order, min(CHUNK, n - base))
            chunks.append((done, order, min(CHUNK, n - base), base))
        invoke, pc = self.invoke, clock
        log.start_ns = t_issue = pc()
        max_end = t_issue + s.max_duration_ns if s.max_duration_ns else 1 << 62
        check = min(t_issue + s.flush_interval_ns, max_end)
        rows = n
        for done, order, m, base in chunks:
            for k in range(m):
                invoke(order[k])
                t = done[k] = pc()
                if t >= check:
                    log.rows = base + k + 1
                    if t >= max_end:
                        break
                    self._flush(log.rows)
                    check = min(pc() + s.flush_interval_ns, max_end)
            else:
                continue
            rows = log.rows
            break
        log.rows = rows
        log.end_ns = clock()
        for base in range(0, rows, CHUNK):
            issue = log.issue[base // CHUNK]
            issue[:] = array("q", [t_issue]) * CHUNK
        if rows < n:
            self.stop_reason = "max duration reached after %d of %d samples" % (rows, n)
            self._flush(rows)
            return log
        self.stop_reason = "all %d samples answered" % n
        self._flush(n)
        return log
