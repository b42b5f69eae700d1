"""Shared helpers of the benchmark scripts: machine facts, result rows, the table, verdicts.

Every script measures the agent and its baselines in the same run and prints
ratio = agent / baseline, so a figure never leans on a number measured elsewhere.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmark the working tree, not an installed copy


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def command_line() -> str:
    return shlex.join([sys.executable] + sys.argv)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001 - absent means "not installed", not an error
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "device_agent", "host"],
                               capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = [line[3:] for line in dirty.splitlines() if line.strip()]  # "XY path"
    return head + (f" (modified in the working tree: {', '.join(changed)})" if changed else "")


def machine() -> dict[str, str]:
    import numpy
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": _cpu_model(),
        "cores": f"{os.cpu_count()} logical ({usable} usable by this process)",
        "governor": governor or "n/a (no cpufreq; likely a VM)",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({sys.executable})",
        "numpy": numpy.__version__,
        "mlcommons-loadgen": _version("mlcommons-loadgen"),
        "ai-edge-litert": _version("ai-edge-litert"),
        "git": _git(),
        "load average": f"{load} (1, 5, 15 min; other processes share the cores)",
    }


def print_header(title: str) -> None:
    print("=" * 100)
    print(title)
    print(f"command: {command_line()}")
    for k, v in machine().items():
        print(f"  {k + ':':<18} {v}")
    print("=" * 100, flush=True)


def print_rep(rep: int, runs: dict[str, list[dict[str, float]]]) -> None:
    """One line of the raw figures of a repeat, so the medians can be checked."""
    parts = []
    for who, results in runs.items():
        if results:
            figures = " ".join(f"{k}={v:.4g}" for k, v in results[-1].items())
            parts.append(f"{who} {figures}")
    print(f"rep {rep}: " + "  ".join(parts), flush=True)


def bare_loop(n: int, f: Callable[[int], object], issue, done) -> None:
    """The baseline: the agent's SingleStream loop body with nothing else around it."""
    pc = time.perf_counter_ns
    for j in range(n):
        t0 = pc()
        f(j)
        t1 = pc()
        issue[j] = t0
        done[j] = t1


def interleaved(repeats: int, measures: dict[str, Callable[[], dict[str, float]] | None]
                ) -> Callable[[str, str], float]:
    """Run each measure once per repeat, in turn, so drift on the machine hits all alike;
    a measure of None (e.g. LoadGen not installed) is skipped. Returns med(who, key)."""
    runs: dict[str, list[dict[str, float]]] = {who: [] for who in measures}
    for rep in range(repeats):
        for who, measure in measures.items():
            if measure is not None:
                runs[who].append(measure())
        print_rep(rep + 1, runs)

    def med(who: str, key: str) -> float:
        return median([r[key] for r in runs[who]])
    return med


# --------------------------------------------------------------------------- result rows


@dataclass
class Row:
    """One figure of the agent, its baselines (name, value) and its goal (<= limit)."""

    section: str
    figure: str
    value: float
    unit: str
    baselines: list[tuple[str, float]] = field(default_factory=list)
    goal: float | None = None  # the figure must be <= goal
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "-"
        return "PASS" if self.value <= self.goal else "MISS"


def fmt(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _cells(rows: list[Row]) -> list[tuple[str, ...]]:
    """Table cells; a figure's second and further baselines go on continuation lines."""
    out = []
    for r in rows:
        goal = f"<= {fmt(r.goal)} {r.unit}" if r.goal is not None else "-"
        for i, (name, b) in enumerate(r.baselines or [("-", float("nan"))]):
            known = b == b  # not NaN
            bval = f"{fmt(b)} {r.unit}" if known else "-"
            ratio = (f"x{r.value / b:.3g}" if b else "n/a") if known else "-"
            if i == 0:
                out.append((r.section, r.figure, f"{fmt(r.value)} {r.unit}", name, bval, ratio,
                            goal, r.verdict))
            else:
                out.append(("", "", "", name, bval, ratio, "", ""))
    return out


HEAD = ("section", "figure (agent)", "agent", "baseline", "baseline value", "ratio", "goal",
        "result")


def table(rows: list[Row]) -> str:
    cells = _cells(rows)
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(HEAD)]
    lines = [HEAD, tuple("-" * w for w in widths)] + cells
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
           for line in lines]
    out.append("ratio = agent / baseline (a time or size below 1: the agent is cheaper; "
               "a rate, unit .../s, above 1: the agent is faster).")
    return "\n".join(out)


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for c in _cells(rows):
        c = c[:-1] + ((f"**{c[-1]}**" if c[-1] in ("PASS", "MISS") else c[-1]),)
        out.append("| " + " | ".join(c) + " |")
    return "\n".join(out)


def print_notes(rows: list[Row]) -> None:
    for r in rows:
        if r.note:
            print(f"note ({r.section}, {r.figure}): {r.note}")


def finish(rows: list[Row], json_path: str | None) -> None:
    print()
    print(table(rows))
    print_notes(rows)
    if json_path:
        with open(json_path, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)


def rows_from_json(path: str) -> list[Row]:
    with open(path) as f:
        return [Row(**{**d, "baselines": [tuple(b) for b in d["baselines"]]})
                for d in json.load(f)]


# --------------------------------------------------------------------------- memory


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process in bytes (Linux)."""
    out: dict[str, int] = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed: the
    agent's own reset (edgeperf_agent.memory), which its model-cost figures use."""
    from edgeperf_agent.memory import reset_peak

    return reset_peak()
