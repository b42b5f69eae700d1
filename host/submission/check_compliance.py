"""Closed division's compliance tests (MLCommons' TEST01, TEST04): the verdicts present and
passing, and each test's own performance run meeting the same performance rules as the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeperf.submission.check_perf import check_performance, read_detail
from edgeperf.submission.check_report import Report

VERDICTS = {"TEST01": ("verify_accuracy.txt", "verify_performance.txt"),
            "TEST04": ("verify_performance.txt",)}
RUN_FILES = {"mlperf_log_detail.txt", "mlperf_log_summary.txt"}
TOLERATED = {"mlperf_log_accuracy.json", "mlperf_log_trace.json", "results.json", ".gitkeep"}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def check_compliance(rep: Report, scen: Path, bench: Any, rules: Any, scenario: str) -> None:
    for test in bench.compliance:
        d = scen / test
        rule = f"compliance-{test}"
        if not d.is_dir():
            rep.error(d, rule, f"missing; closed {bench.name} needs {test}: run MLCommons' "
                               f"compliance/{test}/run_verification.py -o <scenario dir>")
            continue
        for name in VERDICTS.get(test, ("verify_performance.txt",)):
            f = d / name
            if not f.is_file():
                rep.error(f, rule, f"missing; {test}'s run_verification.py writes it")
                continue
            lines = _lines(f)
            exact = name == "verify_accuracy.txt"
            passed = any(ln.strip() == "TEST PASS" if exact else "TEST PASS" in ln
                         for ln in lines)
            if not passed:
                why = next((ln.strip() for ln in lines if "TEST FAIL" in ln), "no TEST PASS line")
                rep.error(f, rule, f"{test} did not pass ({why}); fix the cause and run the "
                                   f"test again")
        run = d / "performance" / "run_1"
        if not run.is_dir():
            rep.error(run, rule, f"missing; {test}'s performance run goes here")
            continue
        names = {p.name for p in run.iterdir()}
        missing, extra = RUN_FILES - names, names - RUN_FILES - TOLERATED
        if missing or extra:
            rep.error(run, rule, f"file list differs from {sorted(RUN_FILES)}: missing "
                                 f"{sorted(missing)}, extra {sorted(extra)}")
        log = read_detail(rep, run / "mlperf_log_detail.txt")
        if log is not None:
            check_performance(rep, log, bench, rules, "closed", scenario)
