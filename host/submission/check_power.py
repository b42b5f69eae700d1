"""A power result (``performance/power/`` present): MLCommons' exact file lists, both phases
(ranging and testing), LoadGen's power window inside the meter's samples and inside the run,
and, in closed, a meter the rules accept.

The session files (power-dev's client.json/server.json, as edgeperf writes them from its PTD
session or power-dev does): the same uuids and session name in both, every result file's
recorded hash equal to the file's, each LoadGen power window inside its phase's Go..Stop,
and no ERROR in PTDaemon's console output (ptd_logs.txt) within the testing window
(power_checker's rules, power/powerdev.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeperf.power import powerdev
from edgeperf.power.spl import log_date_order, parse_line, parse_time
from edgeperf.submission.check_perf import power_time, read_detail
from edgeperf.submission.check_report import Report

PHASE_FILES = {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "spl.txt"}
PHASE_OPTIONAL = {"mlperf_log_accuracy.json", "mlperf_log_trace.json", "results.json",
                  ".gitkeep"}
POWER_FILES = set(powerdev.POWER_FILES)
_CONSOLE_TIME = re.compile(r"^(\d\d-\d\d-\d\d\d\d \d\d:\d\d:\d\d\.\d\d\d)")


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
    if (perf / "power" / "client.json").is_file() and (perf / "power" / "server.json").is_file():
        _session(rep, perf, windows)
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


def _load(rep: Report, path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        rep.error(path, "power-session", f"not power-dev's session JSON ({exc}); copy the "
                                         f"run's power/ files unedited")
        return None
    missing = [k for k in powerdev.SUMMARY_KEYS if k not in doc] if isinstance(doc, dict) \
        else list(powerdev.SUMMARY_KEYS)
    if missing:
        rep.error(path, "power-session", f"lacks {missing}, which MLCommons' power_checker "
                                         f"requires; copy the run's power/ files unedited")
        return None
    return doc


def _session(rep: Report, perf: Path, windows: dict[str, Any]) -> None:
    client = _load(rep, perf / "power" / "client.json")
    server = _load(rep, perf / "power" / "server.json")
    if client is None or server is None:
        return
    cj = perf / "power" / "client.json"
    for key in ("client", "server"):
        c, s = (client.get("uuid") or {}).get(key), (server.get("uuid") or {}).get(key)
        if not c or c != s:
            rep.error(cj, "power-session", f"uuid.{key} {c!r} differs from server.json's "
                                           f"{s!r}: the two files are of different sessions")
    name = client.get("session_name")
    if name != server.get("session_name"):
        rep.error(cj, "power-session", f"session_name {name!r} differs from server.json's "
                                       f"{server.get('session_name')!r}")
    _hashes(rep, perf, client, server)
    for phase, run in (("ranging", "ranging"), ("testing", "run_1")):
        steps, win = (client.get("phases") or {}).get(phase) or [], windows.get(run)
        if win and (len(steps) < 3 or not steps[1][0] * 1e9 < win[0] <= win[1]
                    < steps[2][0] * 1e9):
            rep.error(perf / run / "mlperf_log_detail.txt", "power-window",
                      f"LoadGen's power window is not inside the {phase} phase's measurement "
                      f"(client.json phases.{phase}: Go answered .. Stop); copy the session's "
                      f"files together, unedited")
    _ptd_log(rep, perf, str(name), windows.get("run_1"))
    if "edgeperf" in client:
        rep.warn(perf / "power", "power-dev", "these session files are edgeperf's record of "
                 "its PTDaemon session, not power-dev's: MLCommons' power_checker refuses "
                 "their sources checksum and client/server messages (edgeperf is not power-dev)")


def _hashes(rep: Report, perf: Path, client: dict[str, Any], server: dict[str, Any]) -> None:
    recorded: dict[str, tuple[str, str]] = {}
    for doc in (client, server):
        sha256 = (doc.get("edgeperf") or {}).get("results_sha256") or {}
        for name, sha1 in (doc.get("results") or {}).items():
            if name in recorded and recorded[name][0] != sha1:
                rep.error(perf / name, "power-hash", f"client.json and server.json record "
                                                     f"different sha1s for {name}")
            recorded.setdefault(name, (sha1, sha256.get(name, "")))
    for name in (*powerdev.CLIENT_RESULTS, *powerdev.SERVER_RESULTS):
        path = perf / name
        if name not in recorded:
            rep.error(path, "power-hash", "not hashed in client.json or server.json; the "
                                          "session did not produce it: measure again")
        elif path.is_file():
            sha1, sha256 = powerdev.file_hashes(path)
            if sha1 != recorded[name][0] or recorded[name][1] not in ("", sha256):
                rep.error(path, "power-hash", f"sha1 {sha1} is not the {recorded[name][0]} "
                                              f"the session recorded: the file was changed "
                                              f"after the session; copy it unedited")


def _ptd_log(rep: Report, perf: Path, name: str, testing: tuple[int, int] | None) -> None:
    path = perf / "power" / "ptd_logs.txt"
    if not path.is_file():
        return  # power-files names it
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.startswith("not recorded"):
        rep.warn(path, "power-ptd-log", text.strip().split(". ")[0] + "; MLCommons' "
                 "power_checker needs PTDaemon's console output (meter URL console=FILE)")
        return
    if f": Go with mark {name + '_ranging'!r}" not in text:
        rep.error(path, "power-ptd-log", f"no \"Go with mark '{name}_ranging'\" line: not "
                                         f"PTDaemon's console output of session {name!r}")
    for line in text.splitlines():
        m = _CONSOLE_TIME.match(line)
        if m and "ERROR:" in line and testing and \
                testing[0] <= parse_time(m[1], "mdy") <= testing[1]:
            rep.error(path, "power-ptd-log", f"PTDaemon reported an error during the testing "
                                             f"run's window: {line.strip()!r}; measure again")
