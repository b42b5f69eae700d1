"""Accuracy-log sampling in a performance run (MLPerf's TEST01), decided as LoadGen decides it.

LoadGen gives every sample of every generated query, in sequence-id order, a value drawn
from ``uniform_real_distribution<double>(0, 1)`` on a ``std::mt19937`` that is default
constructed (seed 5489: ``SequenceGen::InitAccLogRng`` is never called), adds one offset
drawn the same way from ``mt19937(accuracy_log_rng_seed)``, wraps it below 1 and logs the
sample's response when the result is ``<= accuracy_log_probability``. With
``accuracy_log_sampling_target`` set, the probability is ``target / expected``, where
``expected`` is ``uint64(target_qps * min_duration_ms / 1000)`` samples (times samples per
query, but for Offline), at least the minimum (min_query_count x samples per query; for
Offline its min sample count). The doubles come from libstdc++'s ``generate_canonical``:
two 32-bit outputs, ``(a + b * 2**32) / 2**64``, held below 1.

This module must run on Python 3.9 with only numpy.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .lgseq import MT19937

DEFAULT_MT_SEED = 5489  # std::mt19937's default seed
_TWO32 = 4294967296.0
_TWO64 = 18446744073709551616.0
_ONE_BELOW = float(np.nextafter(1.0, 0.0))


def canonical(rng: MT19937, n: int) -> np.ndarray:
    """The next ``n`` ``generate_canonical<double, 53>`` values of ``rng``."""
    u = rng.raw(2 * int(n)).astype(np.float64)
    c = (u[0::2] + u[1::2] * _TWO32) / _TWO64
    c[c >= 1.0] = _ONE_BELOW
    return c


def sampling_probability(scenario: str, target: int, probability: float, target_qps: float,
                         min_duration_ms: int, min_query_count: int,
                         samples_per_query: int) -> float:
    """LoadGen's ``accuracy_log_prob`` for a performance run. ``target_qps`` is LoadGen's
    (SingleStream/MultiStream: 1e9 / the expected latency); ``min_query_count`` for Offline
    is its minimum sample count; ``samples_per_query`` is MultiStream's (else 1)."""
    if not target:
        return float(probability)
    expected = int(float(target_qps) * int(min_duration_ms) / 1000)
    if scenario == "Offline":
        minimum = int(min_query_count)
    else:
        expected *= int(samples_per_query)
        minimum = int(min_query_count) * int(samples_per_query)
    expected = max(expected, minimum)
    if expected <= 0:
        raise ValueError("accuracy_log_sampling_target %d with no expected samples" % target)
    return float(target) / expected


class AccLogSampler:
    """Which samples a performance run logs, in sequence-id order, chunk by chunk."""

    def __init__(self, rng_seed: int, probability: float) -> None:
        self.offset = float(canonical(MT19937(int(rng_seed)), 1)[0])
        self.probability = float(probability)
        self._rng = MT19937(DEFAULT_MT_SEED)
        self.drawn = 0  # samples decided so far

    def take(self, n: int) -> np.ndarray:
        """Sequence ids (int64) among the next ``n`` samples whose responses are logged."""
        v = canonical(self._rng, n) + self.offset
        v = np.where(v < 1.0, v, v - 1.0)
        hits = np.flatnonzero(v <= self.probability).astype(np.int64) + self.drawn
        self.drawn += int(n)
        return hits


class OutputLog:
    """The logged samples' outputs of one run: rows reserved before the queries that make
    them (when their samples are chosen), one array an output tensor, filled after each such
    query from the buffers its invoke wrote (one assignment a tensor, about 0.5 us), so that
    no allocation falls inside a timed query and no copy inside its own. The copy follows
    its query's completion and comes before the next invoke, as LoadGen copies a response in
    QuerySamplesComplete on the thread that answers: Offline's later samples and, in Server,
    a next query already due wait for it (the audit's cost TEST01's 10% bound allows for)."""

    def __init__(self, sampler: AccLogSampler, model_batched: bool) -> None:
        self.sampler = sampler
        self.row0 = 0 if model_batched else None  # a padded batch answers in row 0
        self.batched = model_batched
        self.sample_bytes = -1
        self.blocks: list = []  # [seq ids, positions, [one array an output], rows filled]
        self._cur = 0  # the block being filled

    def _shapes(self, buffers: list) -> list:
        return [(b.shape[1:] if self.batched else b.shape, b.dtype) for b in buffers]

    def plan(self, first_seq: int, positions: np.ndarray, buffers: list) -> np.ndarray:
        """Decide the samples ``first_seq ...`` (their loaded-set ``positions``) and reserve
        rows for those logged; returns their offsets from ``first_seq``."""
        shapes = self._shapes(buffers)
        if self.sample_bytes < 0:
            self.sample_bytes = sum(int(np.prod(sh)) * dt.itemsize for sh, dt in shapes)
        hits = self.sampler.take(len(positions)) - first_seq
        if len(hits):
            self.blocks.append([hits + first_seq, np.asarray(positions)[hits].astype(np.int64),
                                [np.empty((len(hits),) + tuple(sh), dt) for sh, dt in shapes],
                                0])
        return hits

    def put(self, buffers: list, row: Optional[int] = None) -> None:
        """Copy the next reserved sample's outputs (whole buffers, or ``row`` of each)."""
        blk = self.blocks[self._cur]
        i = blk[3]
        if row is None:
            row = self.row0
        for dst, b in zip(blk[2], buffers):
            dst[i] = b if row is None else b[row]
        blk[3] = i + 1
        if i + 1 == len(blk[0]):
            self._cur += 1

    def entries(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seq ids, positions, data rows as uint8) of the samples logged (filled only):
        a row is the sample's output tensors' bytes, joined in output order."""
        done = [b for b in self.blocks if b[3]]
        if not done:
            return (np.empty(0, np.int64), np.empty(0, np.int64),
                    np.empty((0, max(self.sample_bytes, 0)), np.uint8))

        def rows(b: list) -> np.ndarray:
            n = b[3]
            parts = [np.ascontiguousarray(a[:n]).reshape(n, -1).view(np.uint8) for a in b[2]]
            return np.concatenate(parts, axis=1) if parts else np.empty((n, 0), np.uint8)
        return (np.concatenate([b[0][:b[3]] for b in done]),
                np.concatenate([b[1][:b[3]] for b in done]),
                np.concatenate([rows(b) for b in done]))
