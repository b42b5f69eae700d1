"""Is run B's figure different from run A's, and is the difference real? numpy only.

The figure a scenario scores is compared on the raw per-query latencies the store keeps:

* SingleStream its p90 latency (the target percentile the run scored, if a conf changed
  it), MultiStream and Server their p99 (of queries; Server's from the scheduled arrival),
  by percentile LoadGen's way, sorted[floor(N * p)];
* Offline its throughput, samples / (last completion - issue): one number a run, so the
  samples' inter-completion intervals (sorted completion times, differenced, the first from
  the issue; their mean is 1 / throughput) stand for it.

Two tests, both named in the output:

* Mann-Whitney U, two-sided, on the latencies (Offline: the intervals): average ranks for
  ties, the tie-corrected variance, the normal approximation with continuity correction
  (scipy.stats.mannwhitneyu's method="asymptotic", use_continuity=True); U is A's. Exact
  p-values are not computed: with 20 or fewer of either, the output says the p is only the
  approximation's.
* A bootstrap confidence interval (percentile method, ``resamples`` resamples, a fixed
  seed) of B's figure minus A's. A percentile's resample is drawn without resampling N
  values: the k-th smallest of N draws with replacement from a sorted array is
  sorted[ceil(N * U) - 1] with U ~ Beta(k + 1, N - k) (the k-th smallest of N uniforms), the
  same distribution at a cost independent of N. Offline's mean interval is resampled
  plainly, with fewer resamples for a long run (MEAN_DRAWS draws at most; the output says B).

A change is flagged when the scored figure moved by more than ``threshold`` (relative) AND
Mann-Whitney's p < ``alpha`` AND the CI excludes 0. Stability, per run: the coefficient of
variation of its latencies (std / mean, population std; Offline: of its intervals) and
p99 / p50.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SMALL_N = 20
MEAN_DRAWS = 50_000_000  # draws an Offline bootstrap makes at most, all resamples together
TEST = "Mann-Whitney U"
_METRICS = {"early_stopping_latency_ns": "early-stopping est.",
            "completed_samples_per_sec": "completed samples/s",
            "samples_per_second": "samples/s"}


@dataclass(frozen=True)
class MannWhitney:
    u: float  # A's U statistic (scipy's)
    p: float  # two-sided
    z: float
    n_a: int
    n_b: int

    @property
    def small(self) -> bool:
        return min(self.n_a, self.n_b) <= SMALL_N


def mann_whitney_u(a: np.ndarray, b: np.ndarray) -> MannWhitney:
    """Two-sided Mann-Whitney U of ``a`` against ``b``: the normal approximation with
    continuity and tie corrections; ranks summed exactly (twice the average rank is whole)."""
    a, b = np.asarray(a), np.asarray(b)
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs values on both sides")
    x = np.concatenate([a, b])
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = n1 + n2
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    counts = np.diff(np.r_[starts, n])
    twice_rank = np.repeat(2 * starts + counts + 1, counts)  # 2 x average rank (1-based)
    r1 = int(twice_rank[order < n1].sum(dtype=np.int64)) / 2
    u1 = r1 - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    c = counts.astype(np.float64)
    tie = float((c ** 3 - c).sum())
    var = n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:  # every value the same: no evidence of a difference
        return MannWhitney(u1, 1.0, 0.0, n1, n2)
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(var)
    p = min(1.0, max(0.0, math.erfc(z / math.sqrt(2))))  # 2 x the normal's upper tail
    return MannWhitney(u1, p, z, n1, n2)


def percentile(sorted_values: np.ndarray, p: float) -> float:
    """LoadGen's percentile: sorted[floor(N * p)]."""
    return float(sorted_values[min(int(len(sorted_values) * p), len(sorted_values) - 1)])


def bootstrap_percentiles(sorted_values: np.ndarray, p: float, resamples: int,
                          rng: np.random.Generator) -> np.ndarray:
    """The p-th percentile (LoadGen's) of ``resamples`` bootstrap resamples of a sorted
    array, each drawn through the order statistic's Beta distribution (module doc)."""
    n = len(sorted_values)
    k = min(int(n * p), n - 1)
    u = rng.beta(k + 1, n - k, size=resamples)
    idx = np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)
    return sorted_values[idx].astype(np.float64)


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """Means of plain bootstrap resamples, a block of resamples at a time."""
    n = len(values)
    out = np.empty(resamples)
    block = max(1, (1 << 22) // n)
    for i in range(0, resamples, block):
        m = min(block, resamples - i)
        out[i:i + m] = values[rng.integers(0, n, size=(m, n))].mean(axis=1)
    return out


def bootstrap_ci(draws_a: np.ndarray, draws_b: np.ndarray, confidence: float
                 ) -> tuple[float, float]:
    """Percentile-method CI of B - A from paired-up independent resamples."""
    lo, hi = np.quantile(draws_b - draws_a, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Stability:
    cv: float  # std / mean
    p99_over_p50: float


def stability(values: np.ndarray) -> Stability:
    v = np.sort(np.asarray(values, np.float64))
    mean = float(v.mean())
    p50 = percentile(v, 0.5)
    return Stability(float(v.std()) / mean if mean else math.nan,
                     percentile(v, 0.99) / p50 if p50 else math.nan)


def offline_intervals(completion_ns: np.ndarray, count: int) -> np.ndarray:
    """Inter-completion intervals of an Offline run's samples (the first from the issue).
    A store that kept ``len < count`` evenly spaced ranks gives intervals scaled to stand
    for one sample each (their mean stays 1 / throughput)."""
    t = np.sort(np.asarray(completion_ns, np.float64))
    d = np.diff(t, prepend=0.0)
    return d * (len(t) / count) if count > len(t) else d


@dataclass
class Figure:
    name: str
    unit: str
    a: float | None
    b: float | None
    test: str = ""
    p: float | None = None
    ci: tuple[float, float] | None = None
    verdict: str = ""
    scored: bool = False

    @property
    def change(self) -> float | None:
        if self.a is None or self.b is None or not self.a:
            return None
        return (self.b - self.a) / self.a


@dataclass
class Comparison:
    a_id: int
    b_id: int
    scenario: str | None
    ci_label: str
    figures: list[Figure]
    flagged: bool
    notes: list[str] = field(default_factory=list)
    mann_whitney: MannWhitney | None = None
    stability_a: Stability | None = None
    stability_b: Stability | None = None
    resamples: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for f, fd in zip(self.figures, d["figures"], strict=True):
            fd["change"] = f.change
        if self.mann_whitney is not None:
            d["mann_whitney"]["small_n"] = self.mann_whitney.small
        return d


def scored_percentile(row: dict[str, Any]) -> float:
    """The percentile a LoadGen run scored: its summary's, else the scenario's default."""
    summ = row.get("summary") or {}
    p = summ.get("target_percentile") if isinstance(summ, dict) else None
    return float(p) if p else (0.9 if row.get("scenario") == "SingleStream" else 0.99)


def compare_runs(a: dict[str, Any], b: dict[str, Any],
                 lat_a: tuple[np.ndarray, int] | None, lat_b: tuple[np.ndarray, int] | None,
                 *, threshold: float = 0.05, alpha: float = 0.01, confidence: float = 0.95,
                 resamples: int = 2000, seed: int = 0) -> Comparison:
    """Run B against run A (store rows with JSON decoded, and their (latencies, count))."""
    scen = a.get("scenario")
    label = f"bootstrap {confidence * 100:g}% CI"
    cmp = Comparison(int(a["id"]), int(b["id"]), scen, label, [], False, resamples=resamples)
    rng = np.random.default_rng(seed)
    if lat_a is None or lat_b is None or not len(lat_a[0]) or not len(lat_b[0]):
        which = [str(r["id"]) for r, lat in ((a, lat_a), (b, lat_b)) if lat is None or
                 not len(lat[0])]
        cmp.notes.append(f"run {' and '.join(which)} has no per-query latencies in the store: "
                         "the figures are compared without a test, and nothing is flagged")
    elif scen == "Offline":
        _offline(cmp, a, b, lat_a, lat_b, rng, confidence, resamples)
    else:
        _latency(cmp, a, lat_a, lat_b, rng, confidence, resamples)
    _plain_figures(cmp, a, b)
    for f in cmp.figures:
        if f.scored and f.p is not None and f.ci is not None and f.change is not None:
            real = f.p < alpha and (f.ci[0] > 0 or f.ci[1] < 0)
            if abs(f.change) > threshold and real:
                worse = f.change > 0 if f.unit == "ns" else f.change < 0
                f.verdict = f"FLAGGED ({'slower' if worse else 'faster'})"
                cmp.flagged = True
            else:
                f.verdict = "ok" if real or abs(f.change) <= threshold else "ok (not significant)"
    if cmp.mann_whitney is not None and cmp.mann_whitney.small:
        cmp.notes.append(f"{SMALL_N} or fewer latencies on a side: {TEST}'s p is the normal "
                         "approximation's, not an exact p")
    return cmp


def _latency(cmp: Comparison, a: dict[str, Any], lat_a: tuple[np.ndarray, int],
             lat_b: tuple[np.ndarray, int], rng: np.random.Generator, confidence: float,
             resamples: int) -> None:
    sa, sb = np.sort(lat_a[0]), np.sort(lat_b[0])
    mw = mann_whitney_u(sa, sb)
    cmp.mann_whitney = mw
    cmp.stability_a, cmp.stability_b = stability(sa), stability(sb)
    scored = scored_percentile(a)
    for p in sorted({0.5, 0.9, 0.99, scored}):
        ci = bootstrap_ci(bootstrap_percentiles(sa, p, resamples, rng),
                          bootstrap_percentiles(sb, p, resamples, rng), confidence)
        on = p == scored  # the test is of the latencies: shown once, with the scored figure
        cmp.figures.append(Figure(f"p{p * 100:g} latency", "ns", percentile(sa, p),
                                  percentile(sb, p), TEST if on else "", mw.p if on else None,
                                  ci, scored=on))
    cmp.figures.sort(key=lambda f: not f.scored)
    for kept, n, run in ((len(sa), lat_a[1], cmp.a_id), (len(sb), lat_b[1], cmp.b_id)):
        if n > kept:
            cmp.notes.append(f"run {run}: the store kept {kept} of its {n} latencies (evenly "
                             "spaced ranks)")


def _offline(cmp: Comparison, a: dict[str, Any], b: dict[str, Any],
             lat_a: tuple[np.ndarray, int], lat_b: tuple[np.ndarray, int],
             rng: np.random.Generator, confidence: float, resamples: int) -> None:
    ia, ib = offline_intervals(*lat_a), offline_intervals(*lat_b)
    mw = mann_whitney_u(ia, ib)
    cmp.mann_whitney = mw
    cmp.stability_a, cmp.stability_b = stability(ia), stability(ib)
    reps = max(1, min(resamples, MEAN_DRAWS // max(len(ia), len(ib))))
    cmp.resamples = reps
    ta, tb = (1e9 / bootstrap_means(v, reps, rng) for v in (ia, ib))
    cmp.figures.append(Figure("throughput (samples/s)", "samples/s", 1e9 / float(ia.mean()),
                              1e9 / float(ib.mean()), f"{TEST} on inter-completion intervals",
                              mw.p, bootstrap_ci(ta, tb, confidence), scored=True))
    cmp.notes.append("Offline scores one number a run: its samples' inter-completion "
                     "intervals are what the test and the bootstrap resample"
                     + (f" (B = {reps}, fewer for a long run)" if reps < resamples else ""))


def _plain_figures(cmp: Comparison, a: dict[str, Any], b: dict[str, Any]) -> None:
    """The run's other figures as the store holds them: changes, without a test."""
    if a.get("metric_name") and a.get("metric_name") == b.get("metric_name") and \
            a.get("scenario") != "Offline":  # Offline's metric is the scored throughput
        name = _METRICS.get(a["metric_name"], a["metric_name"])
        cmp.figures.append(Figure(f"metric: {name}", a.get("metric_unit") or "",
                                  a.get("metric_value"), b.get("metric_value")))
    if a.get("qps") is not None and b.get("qps") is not None and a.get("scenario") != "Offline":
        cmp.figures.append(Figure("throughput (qps)", "qps", a["qps"], b["qps"]))
    for key, name in (("uj_per_inference", "energy (uJ/inference)"),
                      ("avg_watts", "average power (W)")):
        if a.get(key) is not None and b.get(key) is not None:
            cmp.figures.append(Figure(name, key, a[key], b[key]))
    if cmp.stability_a is not None and cmp.stability_b is not None:
        of = "intervals" if a.get("scenario") == "Offline" else "latencies"
        cmp.figures.append(Figure(f"stability: CV of {of}", "", cmp.stability_a.cv,
                                  cmp.stability_b.cv))
        cmp.figures.append(Figure("stability: p99/p50", "", cmp.stability_a.p99_over_p50,
                                  cmp.stability_b.p99_over_p50))
