"""Energy over the measurement window, and the figures MLPerf reports from it.

Integration follows what a sample means:

* instantaneous readings (sysfs sensors, LPM01A, Joulescope): the trapezoid rule over the
  samples, clipped to the window with linear interpolation at its edges;
* averaged readings (an analyser's 1 s periods through PTDaemon): each sample is the mean
  power of (t_prev, t], so whole periods inside the window are exact and a period cut by a
  window edge counts its mean for the part inside. The error at each edge is at most
  (max - min power) x period / 4.

A trace that does not cover the window is not extrapolated: the result is invalid with the
reason. Gaps longer than a few sample periods inside the window are bridged (linearly, or
by the next period's mean) and reported; a gap over a tenth of the window invalidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeperf.power.trace import PowerTrace

NS = 1e9
RANGING_TOLERANCE = 0.05  # MLPerf: testing power may not fall more than 5% below ranging
GAP_INVALID_FRACTION = 0.1  # a gap longer than this share of the window invalidates


@dataclass
class WindowEnergy:
    energy_j: float
    duration_s: float
    avg_watts: float
    samples: int  # samples inside the window
    covered: bool
    coverage_s: float  # how much of the window the samples describe
    max_gap_s: float
    problems: list[str] = field(default_factory=list)  # each one invalidates
    warnings: list[str] = field(default_factory=list)


def _interp(t: np.ndarray, w: np.ndarray, x: int) -> float:
    return float(np.interp(float(x - t[0]), (t - t[0]).astype(np.float64), w))


def integrate(trace: PowerTrace, t0_ns: int, t1_ns: int) -> WindowEnergy:
    """Energy of ``trace`` over the host-clock window [t0, t1]."""
    t0_ns, t1_ns = int(t0_ns), int(t1_ns)
    dur = max(0, t1_ns - t0_ns)
    ok = np.isfinite(trace.watts)
    t, w = trace.t_ns[ok], trace.watts[ok]
    if len(t) == 0 or dur == 0:
        why = "the meter recorded no samples" if len(t) == 0 else "the window is empty"
        return WindowEnergy(0.0, dur / NS, 0.0, 0, False, 0.0, 0.0, [why])
    problems: list[str] = []
    if trace.interval_ns > 0:
        starts = np.empty_like(t)
        starts[0] = t[0] - trace.interval_ns
        starts[1:] = t[:-1]
        lo = np.maximum(starts, t0_ns)
        hi = np.minimum(t, t1_ns)
        overlap = np.clip(hi - lo, 0, None).astype(np.float64)
        energy = float(np.sum(w * overlap)) / NS
        covered_ns = float(overlap.sum())
        inside = int(np.count_nonzero(overlap > 0))
        spans = (t - starts).astype(np.float64)
        gap = float(spans[overlap > 0].max()) / NS if inside else 0.0
        gap_limit = 3 * trace.interval_ns / NS
    else:
        a = np.searchsorted(t, t0_ns, side="right")
        b = np.searchsorted(t, t1_ns, side="left")
        inner_t = t[a:b]
        inner_w = w[a:b]
        covered = t[0] <= t0_ns and t[-1] >= t1_ns
        lo = max(t0_ns, int(t[0]))
        hi = min(t1_ns, int(t[-1]))
        if hi <= lo:
            return WindowEnergy(0.0, dur / NS, 0.0, 0, False, 0.0, 0.0,
                                [_coverage_text(trace, t0_ns, t1_ns)])
        xs = np.concatenate(([lo], inner_t, [hi])).astype(np.int64)
        ys = np.concatenate(([_interp(t, w, lo)], inner_w, [_interp(t, w, hi)]))
        dt = np.diff(xs).astype(np.float64)
        energy = float(np.sum((ys[1:] + ys[:-1]) * 0.5 * dt)) / NS
        covered_ns = float(hi - lo)
        inside = len(inner_t)
        gap = float(dt.max()) / NS if len(dt) else 0.0
        spacing = float(np.median(np.diff(t))) / NS if len(t) > 2 else gap
        gap_limit = max(3 * spacing, 1e-3)
        if not covered:
            problems.append(_coverage_text(trace, t0_ns, t1_ns))
    covered = covered_ns >= dur - 1  # a nanosecond of rounding
    if trace.interval_ns > 0 and not covered:
        problems.append(_coverage_text(trace, t0_ns, t1_ns))
    warnings: list[str] = []
    if gap > gap_limit and covered:
        text = (f"the meter's samples have a gap of {gap:.3f} s inside the window "
                f"(expected every {gap_limit / 3:.3f} s)")
        (problems if gap > GAP_INVALID_FRACTION * dur / NS else warnings).append(text)
    avg = energy / (covered_ns / NS) if covered_ns > 0 else 0.0
    return WindowEnergy(energy, dur / NS, avg, inside, covered, covered_ns / NS, gap,
                        problems, warnings)


def _coverage_text(trace: PowerTrace, t0_ns: int, t1_ns: int) -> str:
    span = trace.span_ns()
    if span is None:
        return "the meter recorded no samples"
    lo, hi = span
    cov = max(0, min(hi, t1_ns) - max(lo, t0_ns)) / NS
    return (f"the meter's samples cover {cov:.3f} s of the {(t1_ns - t0_ns) / NS:.3f} s "
            f"measurement window (samples from {(lo - t0_ns) / NS:+.3f} s to "
            f"{(hi - t0_ns) / NS:+.3f} s relative to its start)")


def mean_power(trace: PowerTrace) -> float:
    """Mean power over the whole trace (an idle baseline)."""
    span = trace.span_ns()
    if span is None or span[1] <= span[0]:
        return float(np.nanmean(trace.watts)) if len(trace) else float("nan")
    return integrate(trace, span[0], span[1]).avg_watts


def edge_power(trace: PowerTrace, t_ns: int) -> float:
    """Power near a window edge (to turn a timing uncertainty into an energy one)."""
    ok = np.isfinite(trace.watts)
    if not ok.any():
        return 0.0
    t, w = trace.t_ns[ok], trace.watts[ok]
    return float(np.interp(float(t_ns - t[0]), (t - t[0]).astype(np.float64), w))


def scenario_figures(scenario: str, energy_j: float, duration_s: float, queries: int,
                     samples: int, completed_qps: float | None = None,
                     prefix: str = "") -> dict[str, Any]:
    """MLPerf's power figures for a scenario, from the energy of its window.

    SingleStream/MultiStream: energy per query (mJ); Offline: samples per joule and watts;
    Server: queries per second per watt; all: microjoules per inference (MLPerf Tiny).
    """
    out: dict[str, Any] = {}
    watts = energy_j / duration_s if duration_s > 0 else float("nan")
    if energy_j <= 0:
        return out
    if scenario in ("SingleStream", "MultiStream") and queries:
        out[prefix + "energy_per_query_mj"] = energy_j / queries * 1e3
    if scenario == "Offline":
        out[prefix + "samples_per_joule"] = samples / energy_j
        out[prefix + "watts"] = watts
    if scenario == "Server" and completed_qps is not None and watts > 0:
        out[prefix + "queries_per_second_per_watt"] = completed_qps / watts
    if samples:
        out[prefix + "uj_per_inference"] = energy_j / samples * 1e6
    return out


def ranging_check(testing_watts: float, ranging_watts: float) -> str | None:
    """None when the testing phase's power is within 5% below the ranging phase's."""
    if not (ranging_watts > 0 and np.isfinite(testing_watts)):
        return None
    if testing_watts < ranging_watts * (1 - RANGING_TOLERANCE):
        drop = (1 - testing_watts / ranging_watts) * 100
        return (f"testing-phase average power {testing_watts:.4g} W is {drop:.1f}% below the "
                f"ranging phase's {ranging_watts:.4g} W (MLPerf allows at most 5%): the "
                "ranges were set for another load; rerun")
    return None


_LABELS = [("avg_watts", "Average power (W)", "{:.6g}"),
           ("energy_j", "Energy (J)", "{:.6g}"),
           ("energy_uncertainty_j", "Energy timing uncertainty (J)", "{:.3g}"),
           ("duration_s", "Measurement window (s)", "{:.6g}"),
           ("energy_per_query_mj", "Energy per query (mJ)", "{:.6g}"),
           ("samples_per_joule", "Samples per joule", "{:.6g}"),
           ("watts", "System power (W)", "{:.6g}"),
           ("queries_per_second_per_watt", "Queries per second per watt", "{:.6g}"),
           ("uj_per_inference", "Microjoules per inference", "{:.6g}"),
           ("idle_watts", "Idle power (W)", "{:.6g}"),
           ("net_energy_j", "Net energy above idle (J)", "{:.6g}"),
           ("net_energy_per_query_mj", "Net energy per query (mJ)", "{:.6g}"),
           ("net_samples_per_joule", "Net samples per joule", "{:.6g}"),
           ("net_uj_per_inference", "Net microjoules per inference", "{:.6g}"),
           ("ranging_avg_watts", "Ranging average power (W)", "{:.6g}"),
           ("clock_uncertainty_us", "Clock sync uncertainty (us)", "{:.3g}"),
           ("clock_drift_ppm", "Clock drift (ppm)", "{:.3g}")]


def format_power_block(rec: dict[str, Any]) -> str:
    """The "Power" block appended to mlperf_log_summary.txt (labels unlike LoadGen's)."""
    sep = "=" * 48
    lines = ["", sep, "Power", sep, f"Meter : {rec.get('meter', '')}",
             f"Power result is : {'VALID' if rec.get('valid') else 'INVALID'}"]
    for reason in rec.get("invalid_reasons", []):
        lines.append(f" * {reason}")
    for key, label, fmt in _LABELS:
        v = rec.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v):
            lines.append(f"{label} : {fmt.format(v)}")
    for w in rec.get("warnings", []):
        lines.append(f"Warning : {w}")
    return "\n".join(lines) + "\n"
