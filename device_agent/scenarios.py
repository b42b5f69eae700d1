"""The MLPerf scenarios on the device, timed natively with time.perf_counter_ns.

The timed region of a query is the work of answering it: set inputs, invoke, read outputs.
The inner loops (loops.py) do nothing else but the two clock reads, that work, the stores
into preallocated arrays and one comparison against the next check time. Everything else
(stopping rules, sending finished stretches of the QueryLog to the host, progress) happens
here, between calls of the inner loops, when the clock passes ``check_ns``.

The QueryLog (querylog.py) has one row per query (per sample for Offline): issue and
completion times in device nanoseconds. For Server the issue time is the scheduled arrival,
so queueing counts.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

import numpy as np

from . import loops
from . import querylog as ql
from .acclog import AccLogSampler, OutputLog, sampling_probability
from .lgseq import (
    SCENARIOS,
    SampleOrder,
    generated_queries,
    offline_positions,
    offline_sample_count,
    server_schedule,
)
from .querylog import QueryLog

clock = time.perf_counter_ns  # the controller's reads (the loops have their own)


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
    expected_latency_ns: int = 0  # SingleStream/MultiStream: LoadGen's target QPS is 1e9 / it
    # TEST04: every query issues the sample at this loaded-set position (MultiStream: from it)
    performance_issue_same: bool = False
    performance_issue_same_index: int = 0
    # TEST01: log the outputs of the samples LoadGen's accuracy-log sampling picks
    accuracy_log_rng_seed: int = 0
    accuracy_log_probability: float = 0.0
    accuracy_log_sampling_target: int = 0

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
        if not 0.0 <= s.accuracy_log_probability <= 1.0:
            raise RunError("accuracy_log_probability %r: needs 0 to 1"
                           % s.accuracy_log_probability)
        if s.accuracy_log_sampling_target < 0 or s.performance_issue_same_index < 0:
            raise RunError("accuracy_log_sampling_target and performance_issue_same_index "
                           "must be >= 0")
        return s

    @property
    def logs_outputs(self) -> bool:
        return bool(self.accuracy_log_sampling_target or self.accuracy_log_probability > 0)


# ---------------------------------------------------------------- the controller


Emit = Callable[[str, Dict[str, Any], bytes], None]
FORCE_FLUSH_NS = 10_000_000_000  # a Server run with no idle gap this long flushes anyway
# rows of a QueryLog stretch at most: what a line queues beyond its bound is one stretch
# (8192 rows: 160 KiB raw, ~25-40 KiB compact), however far a flush has to catch up
STRETCH_ROWS = 8192
BIG = 1 << 62


class ScenarioRunner:
    """Runs one scenario on a backend; emits QueryLog stretches while it runs, never inside
    a scored interval: SingleStream and MultiStream between queries, Server in an idle gap
    longer than a flush has taken, Offline after its one query (announced before it with
    the time it is expected to take, so that the host does not take the quiet for a dead
    link)."""

    def __init__(self, settings: RunSettings, invoke: Callable[[int], Any],
                 n_samples: int, emit: Emit,
                 gather: Optional[Callable[[Any, int, int], Any]] = None,
                 batch: int = 1, backend: Any = None,
                 wait_line: Optional[Callable[[], None]] = None) -> None:
        self.s = settings
        # a line that declines stretches while it is behind (emit returns False): the
        # run's end waits on it for room (after the timed loop) until every row has gone
        self.wait_line = wait_line
        self.backend = backend  # for a run that logs outputs: its invokers' output buffers
        self.invoke = invoke
        self.gather = gather if batch > 1 else None
        self.batch = batch if self.gather is not None else 1
        self.n_samples = max(1, n_samples)
        self.emit = emit
        self.rng = np.random.default_rng(settings.sample_index_rng_seed)  # warm-up only
        spr = settings.samples_per_query if settings.scenario == "MultiStream" else 1
        self.log = QueryLog(samples_per_row=spr)
        self.sent = 0
        self.stop_reason = ""
        self.warmup_ns_per_sample = 0
        self.warmup_stats: Dict[str, Any] = {"queries": 0}
        self.offline_sample_count = 0  # the size of the Offline query, once decided
        self.generated_query_count = 0  # Server: the queries LoadGen's schedule holds
        self.flush_costs: Deque[int] = deque(maxlen=8)
        self.busy_flushes = 0  # Server flushes that found no idle gap (saturated device)
        self._order: Optional[SampleOrder] = None
        self.outlog: Optional[OutputLog] = None  # TEST01: the logged samples' outputs
        self._hits: Dict[int, Dict[int, List[int]]] = {}  # chunk -> query -> logged samples
        self.accuracy_log_probability = 0.0  # LoadGen's accuracy_log_prob, once decided
        if settings.performance_issue_same and (
                settings.performance_issue_same_index >= self.n_samples):
            raise RunError("performance_issue_same_index %d is outside the loaded set of %d "
                           "samples" % (settings.performance_issue_same_index, self.n_samples))
        if settings.logs_outputs and backend is None:
            raise RunError("logging outputs (accuracy_log_*) needs the backend's invokers")

    # -- helpers outside the timed region
    def _fill_order(self, buf: array, n_queries: int, first_query: int = 0) -> None:
        """The next ``n_queries`` queries' samples, LoadGen's sequence (positions in the
        loaded set; a MultiStream query's contiguous samples wrap into its padding); in a
        run that logs outputs, also which of them are logged (rows reserved for them)."""
        if self._order is None:
            s = self.s
            self._order = SampleOrder(s.scenario, self.n_samples, self.log.samples_per_row,
                                      s.min_query_count, s.sample_index_rng_seed,
                                      same_index=s.performance_issue_same_index
                                      if s.performance_issue_same else None)
        pos = self._order.next(n_queries)
        n = len(pos)
        if self.log.samples_per_row > 1:
            pos = np.remainder(pos, self.n_samples)
        np.frombuffer(buf, np.uint32, n)[:] = pos
        if self.outlog is not None:
            spr = self.log.samples_per_row
            hits: Dict[int, List[int]] = {}
            for h in self.outlog.plan(first_query * spr, pos, self._bufs0).tolist():
                hits.setdefault(h // spr, []).append(h % spr)
            self._hits[first_query // ql.CHUNK] = hits

    def _start_logging(self, qps: float, offline_samples: int = 0) -> None:
        """Before the timed run (after warm-up: Offline's rate may come from it): LoadGen's
        sampling probability, and invokers of our own whose output buffers are known.
        Offline's minimum is its query's size (LoadGen's min_sample_count)."""
        s = self.s
        if not s.logs_outputs:
            return
        spq = self.s.samples_per_query if s.scenario == "MultiStream" else 1
        minimum = offline_samples if s.scenario == "Offline" else s.min_query_count
        self.accuracy_log_probability = sampling_probability(
            s.scenario, s.accuracy_log_sampling_target, s.accuracy_log_probability, qps,
            s.min_duration_ns // 1_000_000, minimum, spq)
        b = self.backend
        self.outlog = OutputLog(AccLogSampler(s.accuracy_log_rng_seed,
                                              self.accuracy_log_probability), b.batch != 1)
        if self.gather is not None and s.scenario != "SingleStream":  # the loops' gather
            n = len(self._calls(spq)) if s.scenario == "MultiStream" else 1
            self._gathers, self._bufs = [], []
            for _ in range(n):
                self._gathers.append(b.gather_invoker())
                self._bufs.append(b.output_buffers)
        else:
            self._invokers, self._bufs = [], []
            for _ in range(spq):
                self._invokers.append(b.invoker())
                self._bufs.append(b.output_buffers)
        self._bufs0 = self._bufs[0]

    def _lg_qps(self) -> float:
        """LoadGen's target QPS for the run (SingleStream/MultiStream: 1e9 / expected)."""
        s = self.s
        if s.scenario in ("SingleStream", "MultiStream"):
            return 1e9 / s.expected_latency_ns if s.expected_latency_ns else s.target_qps
        return s.target_qps

    def _put_query(self, q: int, ks: List[int]) -> None:
        """After query ``q`` (global index) completed: copy its logged samples' outputs."""
        out = self.outlog
        assert out is not None
        if self.gather is not None and self.s.scenario == "MultiStream":
            b = self.batch
            for k in ks:
                out.put(self._bufs[k // b], k % b)
        elif self.s.scenario == "MultiStream":
            for k in ks:
                out.put(self._bufs[k])
        else:
            out.put(self._bufs[0])

    def _flush(self, upto: int, final: bool = False) -> None:
        """Offer the rows [sent, upto) in stretches of at most STRETCH_ROWS, until the
        line declines one (the rest stay in the log for the next flush); ``final`` (after
        the timed loop): wait for the line until all have gone."""
        log = self.log
        # Offline: one query, so every row shares its issue time
        issue = log.start_ns if self.s.scenario == "Offline" else None
        while self.sent < upto:
            first = self.sent
            n = min(upto - first, STRETCH_ROWS, ql.CHUNK - first % ql.CHUNK)
            if self.emit("querylog", {"first": first, "rows": n,
                                      "samples_per_row": log.samples_per_row},
                         b"".join(log.views(first, first + n, issue))) is False:
                if not final:
                    return
                if self.wait_line is None:
                    raise RunError("the link declined the QueryLog and cannot wait for room")
                self.wait_line()
                continue
            self.sent = first + n

    def _send(self, upto: int, now: int) -> None:
        """A flush and a progress event; what they took sizes the idle gap Server waits
        for."""
        t0 = clock()
        self._flush(upto)
        self._progress(upto, now)
        self.flush_costs.append(clock() - t0)

    def _progress(self, rows: int, now: int) -> None:
        self.emit("progress", {"queries": rows, "elapsed_ns": now - self.log.start_ns}, b"")

    def _calls(self, n: int) -> List[tuple]:
        """(offset, count) of the invokes that answer n samples in batches."""
        b = self.batch
        return [(off, min(b, n - off)) for off in range(0, n, b)]

    def _answer(self, idx: np.ndarray) -> None:
        """Untimed: answer these samples as the timed loop will (batches when it batches)."""
        if self.gather is None:
            for i in idx.tolist():
                self.invoke(i)
            return
        for off, cnt in self._calls(len(idx)):
            self.gather(idx, off, cnt)

    def warmup(self) -> None:
        """Untimed warm-up queries; for an Offline run without an expected QPS, then a
        calibration of about half a second whose steady-state rate sizes the query."""
        n = max(0, self.s.warmup_queries)
        scen = self.s.scenario
        spq = self.s.samples_per_query if scen == "MultiStream" else 1
        per = spq if scen == "MultiStream" else (self.batch if scen == "Offline" else 1)
        took = []
        for _ in range(n):
            idx = self.rng.integers(0, self.n_samples, size=per).astype(np.uint32)
            t = clock()
            if per == 1 and scen != "Offline":
                self.invoke(int(idx[0]))
            else:
                self._answer(idx)
            took.append(clock() - t)
        if took:  # benchmark_model's "Warmup (avg)", with its max: what the runs skip
            self.warmup_stats = {"queries": n, "samples_per_query": per,
                                 "mean_ns": sum(took) // n, "max_ns": max(took),
                                 "min_ns": min(took), "first_ns": took[0]}
        if scen != "Offline" or self.s.target_qps or self.s.offline_sample_count:
            return
        done, t0 = 0, clock()
        end = t0 + 500_000_000
        size = self.batch
        while True:
            self._answer(self.rng.integers(0, self.n_samples, size=size).astype(np.uint32))
            done += size
            now = clock()
            if now >= end:
                break
            size = min(size * 2, 4096)
        self.warmup_ns_per_sample = max(1, (now - t0) // done)

    # -- the run
    def run(self) -> QueryLog:
        self.warmup()
        if self.s.scenario == "Offline":
            return self._run_offline()
        self._start_logging(self._lg_qps())
        if self.s.scenario == "Server":
            return self._run_server()
        return self._run_stream()

    def _run_stream(self) -> QueryLog:
        """SingleStream and MultiStream, stopped as LoadGen stops them: after a query is
        issued, the run ends when the min query count is reached and that query was issued
        at or past the min duration, at the max query count, or when it was issued past the
        max duration. Each chunk's samples are drawn between queries (the first before the
        start)."""
        s, log = self.s, self.log
        spr = log.samples_per_row
        gather = self.gather if s.scenario == "MultiStream" else None
        logging = self.outlog is not None
        gathers = self._gathers if logging and gather is not None else None
        parts = [(gathers[p] if gathers else gather, off, cnt)
                 for p, (off, cnt) in enumerate(self._calls(spr))]
        invokers = self._invokers if logging and gather is None else [self.invoke] * spr
        calls = [(invokers[k] if spr > 1 else invokers[0], k) for k in range(spr)]
        single = invokers[0]
        issue, done, order, _ = log.chunk_for(0)
        self._fill_order(order, ql.CHUNK)
        order_np = np.frombuffer(order, np.uint32)
        hits = self._hits.get(0, {})
        # LoadGen issues only the queries it generated before the start (twice the min
        # duration at the expected latency, at least min_query_count): a system faster than
        # expected runs out of them and misses the min duration, as under LoadGen
        generated = BIG
        if s.expected_latency_ns:
            generated = generated_queries(s.scenario, s.min_duration_ns // 1_000_000,
                                          s.min_query_count,
                                          expected_latency_ns=s.expected_latency_ns,
                                          samples_per_query=spr)[0]
        self.generated_query_count = generated if generated < BIG else 0
        j = 0
        log.start_ns = start = clock()
        next_flush = start + s.flush_interval_ns
        min_end = start + s.min_duration_ns
        max_end = start + s.max_duration_ns if s.max_duration_ns else BIG
        while True:
            if j and j % ql.CHUNK == 0:
                issue, done, order, _ = log.chunk_for(j)
                self._fill_order(order, ql.CHUNK, j)
                order_np = np.frombuffer(order, np.uint32)
                hits = self._hits.pop(j // ql.CHUNK, {})
            base = j - j % ql.CHUNK
            limit = min(s.max_query_count or BIG, generated)
            if j < s.min_query_count:
                limit = min(limit, s.min_query_count)
            lo, hi = j - base, min(ql.CHUNK, limit - base)
            # the next query whose outputs are logged (keys ascend, each popped when its
            # query is done): the loop returns right after it
            hit = next(iter(hits)) if hits else -1
            if 0 <= hit < hi:
                hi = hit + 1
            check = min(next_flush, max_end, min_end if j >= s.min_query_count else BIG)
            if gather is not None:
                end = loops.loop_batched(order_np, issue, done, lo, hi, check, spr, parts)
            elif spr > 1:
                end = loops.loop_multi(calls, order, issue, done, lo, hi, check, spr)
            else:
                end = loops.loop_single(single, order, issue, done, lo, hi, check)
            if 0 <= hit < end:
                self._put_query(base + hit, hits.pop(hit))
            j = base + end
            log.rows = j
            issued = issue[end - 1] - start  # the last query's issue time
            if j >= s.min_query_count and issued >= s.min_duration_ns:
                self.stop_reason = "min duration and min query count met"
                break
            if s.max_query_count and j >= s.max_query_count:
                self.stop_reason = "max query count reached"
                break
            if s.max_duration_ns and issued > s.max_duration_ns:
                self.stop_reason = "max duration reached"
                break
            if j >= generated:
                self.stop_reason = ("all %d generated queries issued (the expected latency "
                                    "is longer than the queries take)" % generated)
                break
            now = clock()
            if now >= next_flush:
                self._send(j, now)
                next_flush = clock() + s.flush_interval_ns
        log.end_ns = clock()
        self._flush(log.rows, final=True)
        return log

    def _run_server(self) -> QueryLog:
        """Every query LoadGen's schedule holds, built with its sample before the start, up
        to the max query count and, as LoadGen checks after an issue, up to and including
        the first query scheduled past the max duration. Stretches go out only in idle
        gaps."""
        s, log = self.s, self.log
        offsets = server_schedule(s.target_qps, s.schedule_rng_seed,
                                  s.min_duration_ns // 1_000_000, s.min_query_count)
        self.generated_query_count = total = len(offsets)
        reason = "all %d scheduled queries issued" % total
        if s.max_duration_ns:
            cut = int(np.searchsorted(offsets, s.max_duration_ns, side="right")) + 1
            if cut < total:
                total, reason = cut, "max duration reached"
        if s.max_query_count and s.max_query_count < total:
            total, reason = s.max_query_count, "max query count reached"
        for base in range(0, total, ql.CHUNK):
            issue, _, order, _ = log.chunk_for(base)
            m = min(ql.CHUNK, total - base)
            np.frombuffer(issue, np.int64, m)[:] = offsets[base:base + m]
            self._fill_order(order, m, base)
        del offsets
        gather, batch, invoke = self.gather, self.batch, self.invoke
        if self.outlog is not None:
            gather = self._gathers[0] if gather is not None else None
            invoke = self._invokers[0] if gather is None else invoke
        self._send(0, 0)  # times a send (progress 0): the first idle gap must fit one
        j = 0
        log.start_ns = start = clock()
        next_flush = start + s.flush_interval_ns
        force = next_flush + FORCE_FLUSH_NS
        while j < total:
            c = j // ql.CHUNK
            sched, done, order = log.issue[c], log.done[c], log.sample[c]
            base = c * ql.CHUNK
            lo, hi = j - base, min(ql.CHUNK, total - base)
            gap = 2 * max(self.flush_costs) + 100_000
            hits = self._hits.get(c)
            hit = next(iter(hits)) if hits else BIG  # the next query whose outputs are logged
            if gather is not None:
                end = loops.loop_server_batched(gather, np.frombuffer(order, np.uint32), sched,
                                                done, lo, hi, start, next_flush, gap, force,
                                                batch, hit + 1)
            else:
                end = loops.loop_server(invoke, order, sched, done, lo, min(hi, hit + 1),
                                        start, next_flush, gap, force)
            while hits and next(iter(hits)) < end:  # the last batch holds them
                q = next(iter(hits))
                first = q  # the batch's first query: its members completed together
                while gather is not None and first > lo and done[first - 1] == done[q]:
                    first -= 1
                self.outlog.put(self._bufs[0], q - first if gather is not None else None)
                del hits[q]
            j = base + end
            log.rows = j
            now = clock()
            if j < total and now >= next_flush:
                idle = start + log.issue[j // ql.CHUNK][j % ql.CHUNK] - now >= gap
                if idle or now >= force:
                    self.busy_flushes += not idle
                    self._send(j, now)
                    next_flush = clock() + s.flush_interval_ns
                    force = next_flush + FORCE_FLUSH_NS
        self.stop_reason = reason
        log.end_ns = clock()
        self._flush(log.rows, final=True)
        return log

    def _run_offline(self) -> QueryLog:
        """One query of n samples (LoadGen's loaded set in order, repeated). The whole query
        is the timed region: the samples are laid out before it, and nothing is sent until
        it has been answered."""
        s, log = self.s, self.log
        n = s.offline_sample_count
        per = self.warmup_ns_per_sample or 1_000_000
        qps = s.target_qps or 1e9 / per
        if not n:
            n = offline_sample_count(s.min_duration_ns // 1_000_000, qps, s.min_query_count)
        n = max(n, 1)
        self.offline_sample_count = n
        positions = offline_positions(n, self.n_samples)
        if s.performance_issue_same:
            positions[:] = s.performance_issue_same_index
        self._start_logging(qps, n)
        self._off_hits: List[int] = []
        if self.outlog is not None:
            self._off_hits = self.outlog.plan(0, positions, self._bufs0).tolist()[::-1]
        chunks = []
        for base in range(0, n, ql.CHUNK):
            _, done, order, _ = log.chunk_for(base)
            m = min(ql.CHUNK, n - base)
            np.frombuffer(order, np.uint32, m)[:] = positions[base:base + m]
            chunks.append((done, order, m))
        del positions
        expected = n * (1e9 / s.target_qps if s.target_qps else per)
        self.emit("offline", {"samples": n, "quiet_ns": int(3 * expected)}, b"")
        max_end = BIG
        log.start_ns = t_issue = clock()
        if s.max_duration_ns:
            max_end = t_issue + s.max_duration_ns
        rows = self._offline_loop(chunks, max_end)
        log.rows = rows
        log.end_ns = clock()
        for c in range(len(log.issue)):
            log.issue[c][:] = array("q", [t_issue]) * ql.CHUNK
        if rows < n:
            self.stop_reason = "max duration reached after %d of %d samples" % (rows, n)
        else:
            self.stop_reason = "all %d samples answered" % n
        self._flush(rows, final=True)
        self._progress(rows, log.end_ns)
        return log

    def _put_range(self, lo: int, hi: int) -> None:
        """Copy the outputs of the logged samples in [lo, hi) (global indices), one batch
        whose first sample is ``lo`` (a model taking one sample: one sample)."""
        hits = self._off_hits  # descending: the next one last
        while hits and hits[-1] < hi:
            g = hits.pop()
            self.outlog.put(self._bufs0, g - lo if self.gather is not None else None)

    def _next_hit(self, base: int, m: int) -> int:
        """The next logged sample's offset in the chunk starting at ``base``, or ``m``."""
        hits = self._off_hits
        return hits[-1] - base if hits and hits[-1] < base + m else m

    def _offline_loop(self, chunks: List[tuple], stop_ns: int) -> int:
        """Answer the chunks' samples in order; returns how many were answered (all of them
        unless the max duration cut the query short). A run that logs outputs returns from
        the inner loop after each logged sample (or its batch) to copy its outputs."""
        gather, batch = self.gather, self.batch
        logging = self.outlog is not None
        if gather is None:
            invoke = self._invokers[0] if logging else self.invoke
            for c, (done, order, m) in enumerate(chunks):
                base, k = c * ql.CHUNK, 0
                while True:
                    h = self._next_hit(base, m)
                    hi = min(m, h + 1)
                    k = loops.loop_offline(invoke, order, done, k, hi, stop_ns)
                    if h < k:
                        self._put_range(base + h, base + h + 1)
                    if k < hi or done[hi - 1] >= stop_ns:
                        return base + k
                    if hi == m:
                        break
            return (len(chunks) - 1) * ql.CHUNK + chunks[-1][2]
        if logging:
            gather = self._gathers[0]
        pc = clock
        first = 0  # where this chunk's whole batches start
        for c, (done, order, m) in enumerate(chunks):
            base = c * ql.CHUNK
            order_np = np.frombuffer(order, np.uint32, m)
            k = first
            while True:  # whole batches, up to the end of the next logged sample's batch
                h = self._next_hit(base, m)
                mm = min(m, k + ((h - k) // batch + 1) * batch) if h < m else m
                r = loops.loop_offline_batched(gather, order_np, done, mm, stop_ns, batch, k)
                if abs(r) - batch <= h < abs(r):
                    self._put_range(base + abs(r) - batch, base + abs(r))
                if r < 0:
                    return base - r
                k = r
                if mm == m:
                    break
            rest = m - k
            if not rest:
                first = 0
                continue
            # a batch across the chunk boundary (or the padded last batch), one invoke
            if c + 1 < len(chunks):
                nxt_done, nxt_order, nxt_m = chunks[c + 1]
                take = min(batch - rest, nxt_m)
                idx = np.concatenate((order_np[k:], np.frombuffer(nxt_order, np.uint32, take)))
            else:
                nxt_done, take = None, 0
                idx = order_np[k:]
            gather(idx, 0, len(idx))
            t = pc()
            for r in range(k, m):
                done[r] = t
            for r in range(take):
                nxt_done[r] = t  # type: ignore[index]
            if logging:
                self._put_range(base + k, base + m + take)
            first = take
            if t >= stop_ns:
                return c * ql.CHUNK + m + take
        return (len(chunks) - 1) * ql.CHUNK + chunks[-1][2]
