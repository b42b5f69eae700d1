"""``edgeperf report RUN_DIR``: one PNG that shows what a run measured.

Top (runs with a meter): the power trace of the testing phase with the measurement window
shaded, the idle baseline if one was measured, and the window's average power. Bottom: the
latency histogram from querylog.npz with the scenario's percentile marked. Drawn with
matplotlib's Agg canvas (no display, no pyplot state): ``pip install 'edgeperf[report]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import errors
from edgeperf.outputs.querylog_file import read_querylog


class ReportError(errors.EdgeperfError):
    pass


def _load(run_dir: Path) -> tuple[dict[str, Any], np.ndarray | None, dict[str, np.ndarray]]:
    res_path = run_dir / "result.json"
    if not res_path.is_file():
        raise ReportError(f"{run_dir} has no result.json; pass a run's output directory")
    rec = json.loads(res_path.read_text())
    lat = None
    if (run_dir / "querylog.npz").is_file():
        z = read_querylog(run_dir / "querylog.npz")
        lat = (z["done_ns"] - z["issue_ns"]).astype(np.int64)
    trace: dict[str, np.ndarray] = {}
    if (run_dir / "power_trace.npz").is_file():
        with np.load(run_dir / "power_trace.npz") as z:
            trace = {k: z[k] for k in z.files}
    return rec, lat, trace


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Draw the report; returns the PNG's path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("edgeperf report needs matplotlib: pip install 'edgeperf[report]'") \
            from None
    run_dir = Path(run_dir)
    rec, lat, trace = _load(run_dir)
    power = rec.get("power") or {}
    has_power = "testing_t_ns" in trace and len(trace["testing_t_ns"]) > 0
    if lat is None and not has_power:
        raise ReportError(f"{run_dir} holds neither querylog.npz nor power_trace.npz: "
                          "nothing to draw")
    rows = int(has_power) + int(lat is not None)
    fig = Figure(figsize=(10, 3.6 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    scen = (rec.get("summary") or {}).get("scenario") or \
        rec.get("settings", {}).get("requested", {}).get("scenario", "")
    title = f"{rec.get('model', {}).get('name', '')} on {rec.get('board', {}).get('name', '')}"
    fig.suptitle(f"{title} - {scen} - {rec.get('result', '')}")
    i = 0
    if has_power:
        _draw_power(axes[i], trace, power)
        i += 1
    if lat is not None:
        _draw_latency(axes[i], lat, rec.get("summary") or {})
    path = out or run_dir / "report.png"
    fig.savefig(path)
    return path


def _draw_power(ax: Any, trace: dict[str, np.ndarray], power: dict[str, Any]) -> None:
    t = trace["testing_t_ns"].astype(np.int64)
    w = trace["testing_watts"]
    interval = int(trace.get("testing_interval_ns", 0))
    win = power.get("window") or {}
    t0 = int(win.get("host_start_ns", t[0]))
    x = (t - t0) / 1e9
    if interval > 0:  # averaged readings: each holds for the period before it
        ax.step(x, w, where="pre", color="C0", lw=1.2,
                label=f"meter (mean over {interval / 1e9:g} s)")
    else:
        ax.plot(x, w, color="C0", lw=0.8, label="meter")
    if win:
        end = (int(win["host_end_ns"]) - t0) / 1e9
        ax.axvspan(0.0, end, color="C2", alpha=0.15, label=f"measurement window ({end:.3g} s)")
        if power.get("avg_watts") is not None:
            ax.hlines(power["avg_watts"], 0.0, end, colors="C2", linestyles="--",
                      label=f"window average {power['avg_watts']:.4g} W")
    if power.get("idle_watts") is not None:
        ax.axhline(power["idle_watts"], color="0.5", ls=":",
                   label=f"idle baseline {power['idle_watts']:.4g} W")
    ax.set_xlabel("seconds from the window's start (host clock)")
    ax.set_ylabel("watts")
    verdict = "VALID" if power.get("valid") else "INVALID"
    e = power.get("energy_j")
    ax.set_title(f"power: {power.get('meter', '')} - {verdict}"
                 + (f" - {e:.4g} J" if e is not None else ""), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)


def _draw_latency(ax: Any, lat: np.ndarray, summary: dict[str, Any]) -> None:
    ms = lat / 1e6
    hi = np.percentile(ms, 99.9) if len(ms) > 10 else ms.max()
    bins = np.linspace(ms.min(), max(hi, ms.min() * 1.001 + 1e-6), 80)
    ax.hist(np.clip(ms, None, bins[-1]), bins=bins, color="C1", alpha=0.8)
    p = summary.get("target_percentile")
    v = summary.get("target_percentile_latency_ns")
    if p and v:
        ax.axvline(v / 1e6, color="k", ls="--", label=f"p{p * 100:g} = {v / 1e6:.4g} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("latency (ms), the slowest 0.1% folded into the last bin")
    ax.set_ylabel("queries")
    ax.set_title(f"{len(ms)} queries", fontsize=9)
    ax.grid(alpha=0.3)
