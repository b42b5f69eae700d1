"""A power result (``performance/power/`` present): MLCommons' exact file lists, both phases
(ranging and testing), LoadGen's power window inside the meter's samples and inside the run,
and, in closed, a meter the rules accept.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeperf.power.spl import log_date_order, parse_line
from edgeperf.submission.check_perf import power_time, read_detail
from edgeperf.submission.check_report import Report

PHASE_FILES = {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "spl.txt"}
PHASE_OPTIONAL = {"mlperf_log_accuracy.json", "mlperf_log_trace.json", "results.json",
                  ".gitkeep"}
POWER_FILES = {"client.json", "client.log", "ptd_logs.txt", "server.json", "server.log"}


def _file_list(rep: Report, d: Path, want: set[str], optional: set[str]) -> bool:
    if not d.is_dir():
        rep.error(d, "power-files", f"missing; a power result needs {sorted(want)} here")
        return False
    names = {p.name for p in d.iterdir()}
    missing, extra = want - names, names - want - optional
    if missing or extra:
        rep.error(d, "power-files", f"file list differs from MLCommons' {sorted(want)}: "
                                    f"missing {sorted(missing)}, extra {sorted(extra)}")
    return not missing


def _samples(rep: Report, spl: Path) -> list[tuple[int, float]]:
    lines = [ln for ln in spl.read_text(encoding="utf-8", errors="replace").splitlines()
             if ln.startswith("Time")]
    order = log_date_order(lines)
    out = []
    for ln in lines:
        try:
            t, w, *_ = parse_line(ln, order)
        except ValueError as exc:
            rep.error(spl, "power-samples", f"{exc}; keep the meter's spl.txt unedited")
            return []
        out.append((t, w))
    if not out:
        rep.error(spl, "power-samples", "no 'Time,...' sample lines; the meter's log is empty")
    return out


def _iso_ns(text: Any) -> int | None:
    try:
        t = datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return int(t.timestamp()) * 1_000_000_000


def _window(rep: Report, phase: Path) -> tuple[int, int] | None:
    """The phase's LoadGen power window, checked against its spl.txt; None if unusable."""
    log = read_detail(rep, phase / "mlperf_log_detail.txt")
    if log is None:
        return None
    begin, end = power_time(log.get("power_begin")), power_time(log.get("power_end"))
    if begin is None or end is None or end <= begin:
        rep.error(log.path, "power-window", f"power_begin {log.get('power_begin')!r} / "
                                            f"power_end {log.get('power_end')!r} are not a "
                                            f"window; copy LoadGen's log unedited")
        return None
    start = _iso_ns(log.get("test_datetime"))
    if start is not None and begin < start - 1_000_000_000:
        rep.error(log.path, "power-window", f"power_begin {log.get('power_begin')} is before "
                                            f"the run started (test_datetime "
                                            f"{log.get('test_datetime')}); copy the log unedited")
    samples = _samples(rep, phase / "spl.txt") if (phase / "spl.txt").is_file() else []
    if samples:
        first, last = samples[0][0], samples[-1][0]
        if begin < first or end > last:
            rep.error(log.path, "power-window",
                      f"the power window {log.get('power_begin')} .. {log.get('power_end')} is "
                      f"not inside spl.txt's samples ({(begin - first) / 1e9:+.3f} s, "
                      f"{(last - end) / 1e9:+.3f} s); the meter must record the whole run")
        elif not any(begin < t < end and w > 0 for t, w in samples):
            rep.error(phase / "spl.txt", "power-window", "no sample with power > 0 inside the "
                                                         "power window; measure again")
    return begin, end


def check_power(rep: Report, scen: Path, rules: Any, division: str,
                meter: str | None) -> str:
    perf = scen / "performance"
    ok = _file_list(rep, perf / "power", POWER_FILES, {".gitkeep"})
    windows = {}
    for phase in ("ranging", "run_1"):
        if _file_list(rep, perf / phase, PHASE_FILES, PHASE_OPTIONAL):
            windows[phase] = _window(rep, perf / phase)
        else:
            ok = False
    ranging, testing = windows.get("ranging"), windows.get("run_1")
    if ranging and testing and ranging[1] > testing[0]:
        rep.error(perf / "run_1" / "mlperf_log_detail.txt", "power-window",
                  "the testing run's power window starts before the ranging run's ends; the "
                  "ranging run goes first")
    if division == "closed":
        accepted = tuple(rules.accepted_power_meters)
        if not meter:
            rep.error(perf / "power", "power-meter", "the tree records no power meter; say "
                                                     "which meter measured (edgeperf "
                                                     "submission add records it)")
        elif not any(meter.lower().startswith(a.lower()) for a in accepted):
            rep.error(perf / "power", "power-meter", f"meter {meter!r} is not one the rules "
                                                     f"accept in closed ({', '.join(accepted)});"
                                                     f" use one or submit to open")
    return "power" if ok else ""
