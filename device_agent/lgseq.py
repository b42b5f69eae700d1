"""LoadGen's random sequences, reproduced draw for draw.

A run on the device must issue the same samples, in the same order and (for Server) at the
same scheduled offsets as MLCommons LoadGen 6.0.17 would with the same seeds, so that its logs
compare with LoadGen's and a checker sees the sequence it expects. LoadGen draws with
``std::mt19937`` through libstdc++'s distributions (the wheel is built with GCC); this module
replays those algorithms exactly, vectorised with numpy:

- ``uniform_int_distribution`` over a 32-bit generator: Lemire's nearly-divisionless
  downscaling (``_S_nd``): ``p = u * range`` in 64 bits, redraw while ``p mod 2**32`` is
  below ``(2**32 - range) % range``, result ``p >> 32``;
- ``std::shuffle``: forward Fisher-Yates; while ``(2**32 - 1) // n >= n`` two swap positions
  come from one draw over ``[0, s*(s+1) - 1]`` (one lone ``[0, 1]`` draw first when n is
  even), else one draw over ``[0, i]`` per element;
- ``exponential_distribution``: ``-log(1 - generate_canonical<double, 53>) / lambda``, the
  canonical value being ``(u1 + u2 * 2**32) / 2**64`` in doubles, kept below 1;
- gaps become nanoseconds by truncation (``duration_cast``), summed as int64.

Standard library and numpy (>= 1.22) only; Python 3.9.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

# The scenarios and their fixed rules, defined once for the agent and the host (which imports
# them from here): LoadGen 6.0.17's names and MultiStream's default samples per query
# (test_settings.h); default_percentile below.
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTISTREAM_SAMPLES_PER_QUERY = 8
MODES = ("PerformanceOnly", "AccuracyOnly")
_M32 = np.uint64(0xFFFFFFFF)
_TWO32 = 1 << 32
_CHUNK = 1 << 16  # steps scored at once while a rejection can still shift the stream
_ONE_BELOW = math.nextafter(1.0, 0.0)  # generate_canonical's clamp


def default_percentile(scenario: str) -> float:
    """LoadGen's default target latency percentile: p90 for SingleStream, p99 for the
    others (Offline logs it too)."""
    return 0.9 if scenario == "SingleStream" else 0.99


def _check(scenario: str, mode: str = "PerformanceOnly") -> None:
    if scenario not in SCENARIOS:
        raise ValueError("unknown scenario %r; choose one of %s" % (scenario, ", ".join(SCENARIOS)))
    if mode not in MODES:
        raise ValueError("unknown mode %r; choose one of %s" % (mode, ", ".join(MODES)))


class MT19937:
    """``std::mt19937`` seeded as LoadGen seeds it: the 64-bit seed taken mod 2**32.

    The state is built with the standard ``init_genrand`` recurrence and handed to numpy's
    MT19937 through its public ``state`` setter (no private seeding API, same on numpy 1.22
    and 2.x), so the raw outputs are numpy's fast ``random_raw``. Values read ahead by a
    vectorised pass and not used can be given back with ``unread``.
    """

    def __init__(self, seed: int) -> None:
        s = int(seed) & 0xFFFFFFFF
        key = [0] * 624
        for i in range(624):
            key[i] = s
            s = (1812433253 * (s ^ (s >> 30)) + i + 1) & 0xFFFFFFFF
        self._bg = np.random.MT19937(0)
        self._bg.state = {"bit_generator": "MT19937",
                          "state": {"key": np.array(key, dtype=np.uint32), "pos": 624}}
        self._back = np.empty(0, dtype=np.uint64)

    def raw(self, n: int) -> np.ndarray:
        """The next ``n`` 32-bit outputs, as uint64 (room for products with a range)."""
        n = int(n)
        if n <= 0:
            return np.empty(0, dtype=np.uint64)
        back = self._back
        if len(back) >= n:
            self._back = back[n:]
            return back[:n]
        fresh = self._bg.random_raw(n - len(back))
        self._back = back[:0]
        return np.concatenate((back, fresh)) if len(back) else fresh

    def unread(self, values: np.ndarray) -> None:
        """Give back outputs read but not consumed; they come out first, in order."""
        if len(values):
            self._back = np.concatenate((np.asarray(values, dtype=np.uint64), self._back))


def _thresholds(ranges: np.ndarray) -> np.ndarray:
    """``_S_nd``'s rejection threshold ``(2**32 - range) % range`` for each range."""
    return (np.uint64(_TWO32) - ranges) % ranges


def uniform_ints(rng: MT19937, n: int, count: int) -> np.ndarray:
    """``n`` draws of ``uniform_int_distribution`` over ``[0, count - 1]`` (uint32).

    The range is the same for every draw, so a rejected output is simply dropped and the
    next one serves: keeping the accepted outputs in order is exactly the redraw loop.
    """
    n, count = int(n), int(count)
    if not 1 <= count <= _TWO32:
        raise ValueError("count %d: needs 1 <= count <= 2**32" % count)
    if count == _TWO32:  # the generator's full range: no scaling at all
        return rng.raw(n).astype(np.uint32)
    r = np.uint64(count)
    thr = np.uint64((_TWO32 - count) % count)
    parts = []
    need = n
    while need > 0:
        p = rng.raw(need) * r
        if thr:
            p = p[(p & _M32) >= thr]
        parts.append(p >> np.uint64(32))
        need -= len(p)
    if not parts:
        return np.empty(0, dtype=np.uint32)
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out.astype(np.uint32)


def _draws(rng: MT19937, ranges: np.ndarray) -> np.ndarray:
    """One ``uniform_int_distribution`` draw over ``[0, ranges[k] - 1]`` for each step k,
    ranges varying: scored a chunk at a time; at a rejection the outputs after it go back
    to the generator and the rejected step redraws on its own."""
    m = len(ranges)
    out = np.empty(m, dtype=np.uint64)
    thr_all = _thresholds(ranges)
    i = 0
    while i < m:
        j = min(m, i + _CHUNK)
        r, thr = ranges[i:j], thr_all[i:j]
        u = rng.raw(j - i)
        p = u * r
        bad = (p & _M32) < thr
        if not bad.any():
            out[i:j] = p >> np.uint64(32)
            i = j
            continue
        k = int(np.argmax(bad))
        out[i:i + k] = p[:k] >> np.uint64(32)
        rng.unread(u[k + 1:])  # the outputs behind the rejected one serve the next steps
        rk, tk = r[k], thr[k]
        while True:
            q = rng.raw(1)[0] * rk
            if (q & _M32) >= tk:
                break
        out[i + k] = q >> np.uint64(32)
        i += k + 1
    return out


def _paired(n: int) -> bool:
    """libstdc++ draws two swap positions at once while n * n fits the generator's range."""
    return (_TWO32 - 1) // n >= n


def _shuffle_ranges(n: int) -> np.ndarray:
    """The range of each draw ``std::shuffle`` makes for ``n`` items, in order (uint64):
    paired, a lone [0, 1] when n is even, then s*(s+1) for s = 2 or 3, +2, ..., n-1;
    unpaired, i+1 for i = 1..n-1."""
    if n <= 1:
        return np.empty(0, dtype=np.uint64)
    if _paired(n):
        s = np.arange(2 + (n + 1) % 2, n, 2, dtype=np.uint64)  # each pair's swap_range
        r = s * (s + np.uint64(1))
        return np.concatenate((np.array([2], np.uint64), r)) if n % 2 == 0 else r
    return np.arange(2, n + 1, dtype=np.uint64)


def _swaps(rng: MT19937, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``std::shuffle``'s swaps for ``n`` items: element ``a[i]`` swaps with ``a[j]``, in
    order. Draws exactly what libstdc++'s shuffle draws."""
    x = _draws(rng, _shuffle_ranges(n))
    if n <= 1 or not _paired(n):
        return np.arange(1, max(n, 1), dtype=np.int64), x.astype(np.int64)
    lone = n % 2 == 0
    if lone:  # swap(a[1], a[d]) with d in [0, 1]
        d, x = x[:1], x[1:]
    s = np.arange(2 + lone, n, 2, dtype=np.int64)  # pair (s-1, s): x // (s+1), x % (s+1)
    b1 = (s + 1).astype(np.uint64)
    i = np.empty(2 * len(s), dtype=np.int64)
    j = np.empty(2 * len(s), dtype=np.int64)
    i[0::2], i[1::2] = s - 1, s
    j[0::2], j[1::2] = x // b1, x % b1
    if lone:
        i = np.concatenate((np.array([1], np.int64), i))
        j = np.concatenate((d.astype(np.int64), j))
    return i, j


def shuffle(rng: MT19937, items: list) -> None:
    """``std::shuffle(items.begin(), items.end(), rng)`` in place (libstdc++)."""
    i, j = _swaps(rng, len(items))
    for a, b in zip(i.tolist(), j.tolist()):
        items[a], items[b] = items[b], items[a]


def _skip_shuffles(rng: MT19937, n: int, times: int = 1) -> None:
    """Consume the draws of ``times`` shuffles of ``n`` items whose results LoadGen never
    uses: their draws depend on n only, so all go through one vectorised pass."""
    if times > 0:
        _draws(rng, np.tile(_shuffle_ranges(n), times))


def loadable_sets(sample_count: int, set_size: int, qsl_rng_seed: int, scenario: str,
                  samples_per_query: int = 1) -> List[Tuple[List[int], int]]:
    """GenerateLoadableSets: indices ``0..sample_count-1`` shuffled with
    mt19937(qsl_rng_seed), cut into sets of ``set_size``; each set as (indices with
    MultiStream's padding of its first spq-1 entries, size without padding)."""
    _check(scenario)
    if set_size < 1:
        raise ValueError("set size %d: needs at least 1" % set_size)
    samples = list(range(int(sample_count)))
    shuffle(MT19937(qsl_rng_seed), samples)
    pad = int(samples_per_query) - 1 if scenario == "MultiStream" else 0
    sets = []
    for start in range(0, len(samples), set_size):
        chunk = samples[start:start + set_size]
        size = len(chunk)
        for k in range(pad):  # set.push_back(set[k]): wraps round a set shorter than pad
            chunk.append(chunk[k])
        sets.append((chunk, size))
    return sets


def loaded_sample_set(total_count: int, performance_count: int, qsl_rng_seed: int,
                      scenario: str, samples_per_query: int = 1) -> List[int]:
    """The set a performance run loads (padding included): LoadGen 6.0.17 shuffles only
    ``0..min(performance_count, total_count)-1``, so the set is a permutation of those."""
    sets = loadable_sets(min(int(performance_count), int(total_count)), int(performance_count),
                         qsl_rng_seed, scenario, samples_per_query)
    if not sets:
        raise ValueError("no samples to load (total %d, performance %d)"
                         % (total_count, performance_count))
    return sets[0][0]


def accuracy_sample_sets(total_count: int, performance_count: int, qsl_rng_seed: int,
                         scenario: str, samples_per_query: int = 1,
                         accuracy_sample_count: int = 0) -> List[Tuple[List[int], int]]:
    """Every set an accuracy run loads, in order, as (set with padding, size): indices
    ``0..min(accuracy_sample_count or total_count, total_count)-1``."""
    n = min(int(accuracy_sample_count) or int(total_count), int(total_count))
    return loadable_sets(n, int(performance_count), qsl_rng_seed, scenario, samples_per_query)


class SampleOrder:
    """GenerateQueries' choice of samples, as a stream of positions into the loaded set.

    Built as LoadGen builds its distributions on ``sample_rng`` before the first query:
    the accuracy shuffle of the strided indices (used in AccuracyOnly), the same shuffle
    for ``performance_issue_unique`` (drawn, unused) and the equal-issue shuffles of the
    padded set, ``ceil(min_queries / padded size)`` of them (drawn, unused). In
    AccuracyOnly ``min_queries`` is LoadGen's own (padded size // samples per query).
    """

    def __init__(self, scenario: str, set_size: int, samples_per_query: int, min_queries: int,
                 sample_index_rng_seed: int, mode: str = "PerformanceOnly",
                 same_index: Optional[int] = None) -> None:
        _check(scenario, mode)
        if set_size < 1:
            raise ValueError("set size %d: needs at least 1" % set_size)
        self.scenario, self.mode, self.set_size = scenario, mode, int(set_size)
        multi = scenario == "MultiStream"
        # MultiStream: samples a query; Offline: the query's size; otherwise 1
        self.spq = int(samples_per_query) if multi or scenario == "Offline" else 1
        if self.spq < 1:
            raise ValueError("samples per query %d: needs at least 1" % self.spq)
        stride = self.spq if multi else 1
        padded = self.set_size + (self.spq - 1 if multi else 0)
        n_strided = len(range(0, self.set_size, stride))
        self._rng = MT19937(sample_index_rng_seed)
        self._acc: Optional[np.ndarray] = None
        self._done = 0
        # performance_issue_same: every query starts at this position, no draws at all
        self.same = None if same_index is None or mode == "AccuracyOnly" else int(same_index)
        if mode == "AccuracyOnly":
            min_queries = padded // (self.set_size if scenario == "Offline" else self.spq)
            acc = list(range(0, self.set_size, stride))
            shuffle(self._rng, acc)
            self._acc = np.array(acc, dtype=np.uint32)
        _skip_shuffles(self._rng, n_strided)  # sample_distribution_unique
        # sample_distribution_equal_issue: for (j = 0; j < min_queries; j += size) shuffle
        _skip_shuffles(self._rng, padded, -(-max(int(min_queries), 0) // padded))

    def next(self, n_queries: int) -> np.ndarray:
        """Positions of the next ``n_queries`` queries' samples (uint32), in issue order:
        n values, or n*spq for MultiStream (each query's run of contiguous positions) and
        Offline (the query's samples). Calls continue one stream."""
        n = int(n_queries)
        if self.scenario == "Offline":
            size = self.set_size if self.mode == "AccuracyOnly" else self.spq
            if self.same is not None:
                return np.full(size * n, self.same, dtype=np.uint32)
            return np.tile(offline_positions(size, self.set_size), n)
        if self.same is not None:
            starts = np.full(n, self.same, dtype=np.uint32)
        elif self._acc is not None:
            if self._done + n > len(self._acc):
                raise IndexError("accuracy mode issues %d queries; %d asked for"
                                 % (len(self._acc), self._done + n))
            starts = self._acc[self._done:self._done + n]
        else:
            starts = uniform_ints(self._rng, n, self.set_size)
        self._done += n
        if self.spq == 1:
            return starts
        return (starts[:, None] + np.arange(self.spq, dtype=np.uint32)).reshape(-1)


def offline_positions(n_samples: int, set_size: int) -> np.ndarray:
    """The Offline query's positions: the loaded set repeated in order, then a remainder
    (no draws at all)."""
    return (np.arange(int(n_samples), dtype=np.int64) % int(set_size)).astype(np.uint32)


def offline_sample_count(min_duration_ms: int, target_qps: float, min_query_count: int) -> int:
    """LoadGen's Offline samples per query: ``uint64(1.1 * (ms / 1000.0) * qps)`` (double
    products left to right, truncated), at least ``min_query_count``."""
    target = 1.1 * (int(min_duration_ms) / 1000.0) * float(target_qps)
    return max(int(min_query_count), int(target) if target > 0 else 0)


def _period_ns(target_qps: float) -> int:
    """``duration_cast<nanoseconds>(duration<double>(1.0 / qps))``: truncation."""
    return int((1.0 / float(target_qps)) * 1e9)


def exponential_gaps_ns(rng: MT19937, n: int, rate: float) -> np.ndarray:
    """``n`` Server gaps in ns: exponential_distribution(rate) through generate_canonical,
    truncated to int64. ``math.log`` is the C library's log, as in LoadGen; numpy's own
    SIMD log differs from glibc's in the last bit for ~0.3% of these arguments."""
    u = rng.raw(2 * int(n)).astype(np.float64)
    c = (u[0::2] + u[1::2] * 4294967296.0) / 18446744073709551616.0
    c[c >= 1.0] = _ONE_BELOW
    one_minus = (1.0 - c).tolist()
    logs = np.fromiter(map(math.log, one_minus), dtype=np.float64, count=len(one_minus))
    return ((-logs / float(rate)) * 1e9).astype(np.int64)


def _query_count(t: np.ndarray, gen_ns: int, min_queries: int) -> int:
    """Where GenerateQueries' ``while (prev_timestamp < gen_duration || count <
    min_queries)`` stops: after query k-1 prev_timestamp is t[k-1], so the count is the
    smallest k with t[k-1] >= gen_duration (any k when it is 0) and k >= min_queries;
    -1 when ``t`` does not reach the duration yet."""
    if gen_ns <= 0:
        return int(min_queries)
    j = int(np.searchsorted(t, gen_ns, side="left"))
    if j >= len(t):
        return -1
    return max(j + 1, int(min_queries))


def _server(target_qps: float, schedule_rng_seed: int, gen_ns: int,
            min_queries: int) -> Tuple[np.ndarray, int]:
    """Server offsets and the final ``timestamp`` (one gap past the last query)."""
    if not target_qps > 0:
        raise ValueError("Server target QPS %r: needs > 0" % target_qps)
    rng = MT19937(schedule_rng_seed)
    want = max(int(min_queries), int(gen_ns / 1e9 * target_qps * 1.02) + 1024)
    t = np.zeros(1, dtype=np.int64)  # t[k]: timestamp of query k, t[-1] the next one
    while True:
        g = exponential_gaps_ns(rng, want, target_qps)
        t = np.concatenate((t, t[-1] + np.cumsum(g)))
        n = _query_count(t, gen_ns, min_queries)
        if 0 <= n < len(t):  # t[n] is the final timestamp LoadGen logs
            return t[:n], int(t[n])
        want = max(1024, len(t) // 4)


def server_schedule(target_qps: float, schedule_rng_seed: int, min_duration_ms: int,
                    min_query_count: int) -> np.ndarray:
    """Server's scheduled offsets (int64 ns, the first 0): exactly the queries LoadGen
    generates for a performance run (queries until one is scheduled at or past the min
    duration, and at least min_query_count)."""
    return _server(target_qps, schedule_rng_seed, int(min_duration_ms) * 1_000_000,
                   int(min_query_count))[0]


def generated_queries(scenario: str, min_duration_ms: int, min_query_count: int,
                      target_qps: float = 0.0, expected_latency_ns: float = 0.0,
                      samples_per_query: int = MULTISTREAM_SAMPLES_PER_QUERY,
                      schedule_rng_seed: int = 0, mode: str = "PerformanceOnly",
                      set_size: int = 0) -> Tuple[int, int, int]:
    """(generated_query_count, generated_samples_per_query, generated_query_duration) as
    LoadGen logs them, from the REQUESTED settings. ``target_qps``: Server's target or
    Offline's expected QPS; ``expected_latency_ns``: SingleStream/MultiStream's expected
    latency (target QPS 1e9 / it). ``samples_per_query``: MultiStream's. ``set_size``: the
    loaded set's size without padding, needed for AccuracyOnly (per loadable set)."""
    _check(scenario, mode)
    if scenario in ("SingleStream", "MultiStream"):
        qps = 1e9 / float(expected_latency_ns) if expected_latency_ns else float(target_qps)
    else:
        qps = float(target_qps)
    if not qps > 0:
        raise ValueError("%s: target QPS %r needs > 0" % (scenario, qps))
    spq = int(samples_per_query) if scenario == "MultiStream" else 1
    duration_ms, min_queries = int(min_duration_ms), int(min_query_count)
    if scenario == "Offline":
        spq = offline_sample_count(duration_ms, qps, min_queries)
        duration_ms, min_queries = 0, 1
    multiplier = 1 if scenario == "Server" else 2
    gen_ns = multiplier * duration_ms * 1_000_000
    if mode == "AccuracyOnly":
        if set_size < 1:
            raise ValueError("AccuracyOnly needs the loaded set's size")
        if scenario == "Offline":
            spq = int(set_size)
        padded = int(set_size) + (spq - 1 if scenario == "MultiStream" else 0)
        gen_ns, min_queries = 0, padded // spq
    if scenario == "Server":
        offsets, end = _server(qps, schedule_rng_seed, gen_ns, min_queries)
        return len(offsets), spq, end
    period = _period_ns(qps)
    if gen_ns <= 0:
        n = min_queries
    elif period <= 0:
        raise ValueError("a 0 ns period never reaches the min duration (LoadGen would not stop)")
    else:
        n = max(min_queries, -(-gen_ns // period) + 1)
    return n, spq, n * period


def scheduled_samples_per_sec(offsets: Sequence[int]) -> float:
    """Server's result_scheduled_samples_per_sec when every query is issued:
    (samples - 1) / the last query's scheduled time in seconds."""
    return (len(offsets) - 1) / (int(offsets[-1]) / 1e9)
