"""Scoring by LoadGen's rules: percentiles, early stopping, validity, each scenario's metric.

Everything here follows MLCommons LoadGen (results.cc, early_stopping.cc) so that a latency
array scored by edgeperf and by LoadGen gives the same numbers:

* percentile p of N latencies = sorted[floor(N * p)];
* means are integer divisions of the nanosecond sum;
* early stopping uses confidence 0.99 and tolerance 0, with
  odds(h, t, p) = BetaRegularized(p, h, 1 + t) evaluated the way LoadGen evaluates it
  (a terminating Gauss hypergeometric series, stopped at |term| <= 2**-33).

LoadGen finds the number of queries to discard with a linear scan over t; the predicate it
scans is monotone, so a bisection finds the same t in O(log N) evaluations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from edgeperf_agent.lgseq import SCENARIOS, default_percentile

CONFIDENCE = 0.99
TOLERANCE = 0.0
REPORTED_PERCENTILES = (0.5, 0.9, 0.95, 0.97, 0.99, 0.999)
_SERIES_TOLERANCE = 1.0 / (1 << 33)
NS_PER_S = 1_000_000_000


# --------------------------------------------------------------------------- statistics

# The NaN an x86-64 FPU makes of 0.0 / 0.0 has its sign bit set; LoadGen prints it "-nan".
_DEFAULT_NAN = -math.nan


def c_div(a: float, b: float) -> float:
    """``a / b`` as LoadGen's C++ divides doubles: x / 0 is +-inf and 0 / 0 is NaN (the
    x86-64 default NaN, as the LoadGen 6.0.17 wheel computes it), never ZeroDivisionError."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return _DEFAULT_NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b



def percentile(sorted_latencies: np.ndarray, p: float) -> int:
    """LoadGen's percentile: the element at floor(N * p) of the sorted array."""
    n = len(sorted_latencies)
    if n == 0:
        raise ValueError("percentile of an empty latency array")
    return int(sorted_latencies[int(n * p)])


def mean_ns(latencies: np.ndarray) -> int:
    """Integer mean, as LoadGen divides its int64 sum by the count: the sum wraps as an int64
    does (a long Offline run's, e.g. 105 M samples of ~600 s each, goes negative, as LoadGen's
    does) and C++'s division truncates toward zero."""
    total = int(np.sum(latencies, dtype=np.int64))
    q = abs(total) // len(latencies)
    return -q if total < 0 else q


def _hypergeometric_2f1_a1(b: int, c: int, x: float) -> float:
    """2F1(1, b; c; x) for integer b <= 0 (a terminating series), summed term by term."""
    n = -b + 1  # term i multiplies by (b + i); it becomes 0 at i = -b
    i = np.arange(n, dtype=np.int64)
    ratios = ((b + i) * x) / (c + i)
    terms = np.cumprod(ratios)
    small = np.flatnonzero(np.abs(terms) <= _SERIES_TOLERANCE)
    last = int(small[0]) if len(small) else n - 1
    return 1.0 + float(np.cumsum(terms[: last + 1])[-1])


def beta_regularized(x: float, a: int, b: int) -> float:
    """BetaRegularized[x, a, b] for integer a, b (DLMF 15.8.1 transformation, as LoadGen)."""
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * math.log(x) + (b - 1) * math.log(1 - x) - lbeta) / a
    return front * _hypergeometric_2f1_a1(1 - b, 1 + a, x / (x - 1))


def early_stopping_odds(h: int, t: int, p: float, d: float = TOLERANCE) -> float:
    """Probability of t or fewer over-latency queries among h + t if the true percentile is p."""
    return beta_regularized(p - d, h, 1 + t)


def _passes(h: int, t: int, p: float) -> bool:
    # Below the binomial mean the odds are > 1/2 and the series is numerically unusable;
    # LoadGen's search never looks there either.
    if h <= 0 or h < t * p / (1 - p):
        return False
    return early_stopping_odds(h, t, p) < 1 - CONFIDENCE


def min_passing_queries(t: int, p: float) -> int:
    """h(t): the fewest under-latency queries that, with t over-latency ones, pass at 99%."""
    lo = max(1, math.floor(t * p / (1 - p)))
    hi = max(lo + 1, math.ceil(math.log(1 - CONFIDENCE) / math.log(p)))
    while not _passes(hi, t, p):
        lo, hi = hi, hi * 2
    while lo < hi:  # smallest passing h in [lo, hi]
        mid = (lo + hi) // 2
        if _passes(mid, t, p):
            hi = mid
        else:
            lo = mid + 1
    return lo


def max_overlatency(n: int, p: float) -> int:
    """LoadGen's t: the largest i with n >= h(i) + i, or 0 when even i = 1 fails."""
    if not _passes(n - 1, 1, p):
        return 0
    lo, hi = 1, n  # i = lo passes; find the largest passing i
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _passes(n - mid, mid, p):
            lo = mid
        else:
            hi = mid - 1
    return lo


def early_stopping_min_queries(scenario: str, p: float) -> int:
    """The fewest queries with which LoadGen's early stopping can pass at percentile ``p``.

    SingleStream and MultiStream: h(1) + 1 (results.cc refuses to estimate below it: 64 at
    p90, 662 at p99). Server: h(0), since a run of N queries with t over the bound passes
    when N >= h(t) + t, and t = 0 needs the fewest (459 at p99). Offline has no early
    stopping: 1.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"the percentile is a fraction in (0, 1), got {p!r}")
    if scenario in ("SingleStream", "MultiStream"):
        return min_passing_queries(1, p) + 1
    if scenario == "Server":
        return min_passing_queries(0, p)
    if scenario == "Offline":
        return 1
    raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")


def _pct_label(p: float) -> str:
    """LoadGen prints '90.0th' in the summary text for p = 0.9."""
    return f"{p * 100:.1f}"


@dataclass
class EarlyStoppingResult:
    met: bool
    lines: list[str]  # LoadGen's recommendation lines, each starting with " * "
    min_queries: int | None = None  # h(1) + 1
    discarded: int | None = None  # t - 1
    estimate_ns: int | None = None  # at the scenario's target percentile
    estimate_p99_ns: int | None = None  # SingleStream also reports p99 (for MultiStream inference)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _percentile_estimate(sorted_lat: np.ndarray, p: float) -> tuple[int, int, int | None]:
    """(h(1) + 1, t, estimate) for SingleStream/MultiStream-style early stopping."""
    n = len(sorted_lat)
    need = early_stopping_min_queries("SingleStream", p)
    if n < need:
        return need, 0, None
    t = max_overlatency(n, p)
    return need, t, int(sorted_lat[n - t])


def early_stopping_stream(sorted_lat: np.ndarray, p: float, also_p99: bool) -> EarlyStoppingResult:
    """Early stopping for SingleStream (also_p99=True) and MultiStream (query latencies)."""
    n = len(sorted_lat)
    need, t, est = _percentile_estimate(sorted_lat, p)
    if est is None:
        return EarlyStoppingResult(
            met=False,
            lines=[f" * Only processed {n} queries.",
                   f" * Need to process at least {need} queries for early stopping."],
            min_queries=need,
        )
    res = EarlyStoppingResult(
        met=True,
        lines=[f" * Processed at least {need} queries ({n}).",
               f" * Would discard {t - 1} highest latency queries.",
               f" * Early stopping {_pct_label(p)}th percentile estimate: {est}"],
        min_queries=need, discarded=t - 1, estimate_ns=est,
    )
    if also_p99:
        need99, _, est99 = _percentile_estimate(sorted_lat, 0.99)
        if est99 is None:
            res.lines += [" * Not enough queries processed for 99.0th percentile",
                          " early stopping estimate (would need to process at",
                          f" least {need99} total queries)."]
        else:
            res.lines.append(f" * Early stopping 99.0th percentile estimate: {est99}")
            res.estimate_p99_ns = est99
    return res


def early_stopping_server(latencies: np.ndarray, target_latency_ns: int,
                          p: float) -> EarlyStoppingResult:
    n = len(latencies)
    t = int(np.count_nonzero(latencies > target_latency_ns))
    h = min_passing_queries(t, p)
    if n >= h + t:
        return EarlyStoppingResult(met=True, lines=[" * Run successful."], min_queries=h + t)
    return EarlyStoppingResult(
        met=False,
        lines=[" * Run unsuccessful.", f" * Processed {n} queries.",
               f" * Would need to run at least {h + t - n} more queries,",
               " with the run being successful if every additional",
               " query were under latency."],
        min_queries=h + t,
    )


# --------------------------------------------------------------------------- the run's numbers


@dataclass
class LatencyStats:
    count: int
    min_ns: int
    max_ns: int
    mean_ns: int
    percentiles: dict[str, int]  # "50.00" -> ns, LoadGen's labels

    @classmethod
    def of(cls, sorted_lat: np.ndarray) -> LatencyStats:
        return cls(
            count=len(sorted_lat), min_ns=int(sorted_lat[0]), max_ns=int(sorted_lat[-1]),
            mean_ns=mean_ns(sorted_lat),
            percentiles={f"{p * 100:.2f}": percentile(sorted_lat, p) for p in REPORTED_PERCENTILES},
        )


@dataclass
class ScoreInput:
    """What scoring needs from a run: latencies and the few timestamps LoadGen uses.

    All times are nanoseconds. ``sample_latencies_ns`` has one entry per sample (for
    MultiStream, each sample of a query carries the query's latency); ``query_latencies_ns``
    one per query. ``final_issue_ns`` (SingleStream/MultiStream), ``final_scheduled_ns``
    and ``final_done_ns`` (Server) are measured from the run's start.
    """

    scenario: str
    sample_latencies_ns: np.ndarray
    query_latencies_ns: np.ndarray
    final_issue_ns: int = 0
    final_scheduled_ns: int = 0
    final_done_ns: int = 0


@dataclass
class Summary:
    scenario: str
    mode: str
    valid: bool
    metric_name: str
    metric_value: float
    metric_unit: str
    query_count: int
    sample_count: int
    min_duration_met: bool
    min_queries_met: bool
    early_stopping: EarlyStoppingResult
    perf_constraints_met: bool | None  # Server only
    target_percentile: float
    target_percentile_latency_ns: int
    samples: LatencyStats
    queries: LatencyStats | None  # MultiStream only
    qps_with_overhead: float | None = None  # SingleStream
    qps_without_overhead: float | None = None  # SingleStream
    scheduled_samples_per_sec: float | None = None  # Server
    completed_samples_per_sec: float | None = None  # Server
    samples_per_second: float | None = None  # Offline
    overlatency_query_count: int | None = None  # Server
    recommendations: list[str] = field(default_factory=list)
    invalid_reasons: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "VALID" if self.valid else "INVALID"

    @property
    def metric(self) -> float:
        """The scenario's metric (``metric_name``, in ``metric_unit``): the early-stopping
        latency estimate in ns, or samples per second (Server: completed, Offline)."""
        return self.metric_value

    def to_dict(self) -> dict:
        d = asdict(self)
        d["result"] = self.result
        d["early_stopping"]["text"] = self.early_stopping.text
        return d


def score(inp: ScoreInput, *, min_duration_ns: int, min_query_count: int,
          min_sample_count: int = 0, target_latency_ns: int = 0,
          target_percentile: float | None = None, mode: str = "PerformanceOnly",
          extra_invalid_reasons: list[str] | None = None) -> Summary:
    """Score one performance run the way LoadGen's PerformanceSummary does."""
    scen = inp.scenario
    if scen not in SCENARIOS:
        raise ValueError(f"unknown scenario {scen!r}; choose one of {', '.join(SCENARIOS)}")
    if len(inp.sample_latencies_ns) == 0:
        raise ValueError("no completed queries to score")
    if target_percentile is None:
        target_percentile = default_percentile(scen)
    samples = np.sort(np.asarray(inp.sample_latencies_ns, dtype=np.int64))
    # one sample per query outside MultiStream: the same values, sorted once
    queries = (np.sort(np.asarray(inp.query_latencies_ns, dtype=np.int64))
               if scen == "MultiStream" or len(inp.query_latencies_ns) != len(samples)
               else samples)
    n_samples, n_queries = len(samples), len(queries)
    sample_stats = LatencyStats.of(samples)
    query_stats = LatencyStats.of(queries) if scen == "MultiStream" else None

    recs: list[str] = []
    perf_met: bool | None = None
    s = Summary(
        scenario=scen, mode=mode, valid=False, metric_name="", metric_value=0.0, metric_unit="",
        query_count=n_queries, sample_count=n_samples, min_duration_met=False,
        min_queries_met=n_queries >= min_query_count and n_samples >= min_sample_count,
        early_stopping=EarlyStoppingResult(met=True, lines=[]), perf_constraints_met=None,
        target_percentile=target_percentile,
        target_percentile_latency_ns=percentile(queries if scen == "MultiStream" else samples,
                                                target_percentile),
        samples=sample_stats, queries=query_stats,
    )
    if scen == "SingleStream":
        s.min_duration_met = inp.final_issue_ns >= min_duration_ns
        s.early_stopping = early_stopping_stream(samples, target_percentile, also_p99=True)
        # LoadGen's expressions, in seconds, so that a zero span or mean gives its nan/inf
        s.qps_with_overhead = c_div(n_samples - 1, inp.final_issue_ns / NS_PER_S)
        s.qps_without_overhead = c_div(1.0, sample_stats.mean_ns / NS_PER_S)
        s.metric_name, s.metric_unit = "early_stopping_latency_ns", "ns"
        s.metric_value = float(s.early_stopping.estimate_ns or s.target_percentile_latency_ns)
        if not s.min_duration_met:
            recs.append("Decrease the expected latency so the loadgen pre-generates more queries.")
    elif scen == "MultiStream":
        s.min_duration_met = inp.final_issue_ns >= min_duration_ns
        s.early_stopping = early_stopping_stream(queries, target_percentile, also_p99=False)
        s.metric_name, s.metric_unit = "early_stopping_latency_ns", "ns"
        s.metric_value = float(s.early_stopping.estimate_ns or s.target_percentile_latency_ns)
        if not s.min_duration_met:
            recs.append("Decrease the expected latency so the loadgen pre-generates more queries.")
    elif scen == "Server":
        if target_latency_ns <= 0:
            raise ValueError("Server scoring needs a target latency (the latency bound); "
                             "pass --target-latency-ms")
        s.min_duration_met = inp.final_scheduled_ns >= min_duration_ns
        s.overlatency_query_count = int(n_samples - np.searchsorted(samples, target_latency_ns + 1))
        perf_met = s.target_percentile_latency_ns <= target_latency_ns
        s.perf_constraints_met = perf_met
        s.early_stopping = early_stopping_server(samples, target_latency_ns, target_percentile)
        s.scheduled_samples_per_sec = c_div(n_samples - 1, inp.final_scheduled_ns / NS_PER_S)
        s.completed_samples_per_sec = c_div(n_samples - 1, inp.final_done_ns / NS_PER_S)
        s.metric_name, s.metric_unit = "completed_samples_per_sec", "samples/s"
        s.metric_value = s.completed_samples_per_sec
        if not perf_met:
            recs.append("Reduce target QPS to improve latency.")
        if not s.min_duration_met:
            recs.append("Increase the target QPS so the loadgen pre-generates more queries.")
    else:  # Offline
        s.min_duration_met = sample_stats.max_ns >= min_duration_ns
        s.samples_per_second = c_div(n_samples, sample_stats.max_ns / NS_PER_S)
        s.metric_name, s.metric_unit = "samples_per_second", "samples/s"
        s.metric_value = s.samples_per_second
        if not s.min_duration_met:
            recs.append("Increase expected QPS so the loadgen pre-generates a larger "
                        "(coalesced) query.")
    if not s.min_queries_met:
        recs.append("The test exited early, before enough queries were issued.\n"
                    "   See the detailed log for why this may have occurred.")
    s.recommendations = recs
    reasons = list(extra_invalid_reasons or [])
    if perf_met is False:
        reasons.append(f"{_pct_label(target_percentile)}th percentile latency "
                       f"{s.target_percentile_latency_ns} ns exceeds the bound "
                       f"{target_latency_ns} ns")
    if not s.min_duration_met:
        reasons.append("min duration not met")
    if not s.min_queries_met:
        if scen == "Offline":
            reasons.append(f"the Offline query is incomplete: {n_samples} of "
                           f"{min_sample_count} samples answered")
        else:
            reasons.append(f"min query count not met ({n_queries} < {min_query_count})")
    if not s.early_stopping.met:
        reasons.append("early stopping not satisfied")
    s.invalid_reasons = reasons
    s.valid = not reasons
    return s
