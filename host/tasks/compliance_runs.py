"""A submission run's compliance audits: TEST01 and TEST04 as MLCommons runs them, after the
accuracy and performance runs, each its own full performance run with the audit's settings.

    DIR/TEST01[/SCENARIO]   a performance run with accuracy_log_rng_seed and
                            accuracy_log_sampling_target (compliance/TEST01/*/audit.config):
                            its mlperf_log_accuracy.json holds the outputs LoadGen's sampling
                            picks; verify_accuracy.txt compares them with the accuracy run's,
                            verify_performance.txt its score with the performance run's
    DIR/TEST04[/SCENARIO]   a performance run with performance_issue_same (one sample issued
                            over and over, compliance/TEST04/audit.config);
                            verify_performance.txt: not faster than the performance run

The audits' numbers (the seed, the sampling target, the repeated sample's index) come from
the rules file; the benchmark is the one whose task this is, else the rules' defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from collections.abc import Callable

from edgeperf.outputs import record
from edgeperf.settings import TestSettings
from edgeperf.store.record import record_run_safely
from edgeperf.submission.compliance import (
    verify_accuracy,
    verify_performance_test01,
    verify_performance_test04,
)

TESTS = ("TEST01", "TEST04")


def audit_plan(task_name: str | None, rules_version: str | None = None
               ) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(tests to run, their numbers) for a task: the rules benchmark run by this task."""
    from edgeperf.submission.rules import load_rules

    rules = load_rules(rules_version)
    bench = next((b for b in rules.benchmarks.values() if b.task == task_name and not b.tiny),
                 None)
    tests = tuple(t for t in (bench.compliance if bench else TESTS) if t in TESTS)
    return tests, {"rules": rules.version, "benchmark": bench.name if bench else None,
                   "accuracy_log_rng_seed": rules.test01_accuracy_log_rng_seed,
                   "accuracy_log_sampling_target": bench.test01_sampling_target if bench
                   else 4096,
                   "performance_issue_same_index": rules.test04_performance_issue_same_index}


def audit_settings(test: str, s: TestSettings, plan: dict[str, Any]) -> TestSettings:
    """The performance run's settings with the audit's keys, as its audit.config sets them."""
    if test == "TEST01":
        return dataclasses.replace(
            s, mode="PerformanceOnly", accuracy_log_rng_seed=plan["accuracy_log_rng_seed"],
            accuracy_log_sampling_target=plan["accuracy_log_sampling_target"])
    return dataclasses.replace(s, mode="PerformanceOnly", performance_issue_same=True,
                               performance_issue_same_index=plan["performance_issue_same_index"])


def verify(test: str, test_dir: Path, perf_dir: Path, acc_dir: Path) -> dict[str, Any]:
    """Write the test's verify_*.txt next to its run; returns its verdict record."""
    out: dict[str, Any] = {"dir": str(test_dir)}
    try:
        if test == "TEST01":
            text, ok = verify_accuracy(acc_dir / "mlperf_log_accuracy.json",
                                       test_dir / "mlperf_log_accuracy.json")
            (test_dir / "verify_accuracy.txt").write_text(text)
            out["accuracy_pass"] = ok
            text, ok = verify_performance_test01(perf_dir / "mlperf_log_detail.txt",
                                                 test_dir / "mlperf_log_detail.txt")
        else:
            text, ok = verify_performance_test04(perf_dir / "mlperf_log_summary.txt",
                                                 test_dir / "mlperf_log_summary.txt")
        (test_dir / "verify_performance.txt").write_text(text)
        out["performance_pass"] = ok
        out["verify_performance"] = text.strip().splitlines()[-1]
    except (OSError, ValueError, KeyError) as exc:  # a run that left no logs to compare
        out.update(performance_pass=False, error=f"{type(exc).__name__}: {exc}")
    out["passed"] = bool(out.get("performance_pass")) and out.get("accuracy_pass", True)
    return out


def run_audits(task_name: str | None, s: TestSettings, perf_dir: Path, acc_dir: Path,
               dirs: Callable[[str], Path], run_perf: Callable[[TestSettings, Path], Any],
               say: Callable[[str, dict[str, Any]], None]) -> tuple[dict[str, Any], list[Any]]:
    """Run each audit for one scenario; record the verdicts in the performance run's
    result.json ("compliance_audits") and each in its own run's ("compliance": test01 or
    test04, as 'submission add' reads it); returns them and the audits' RunResults."""
    tests, plan = audit_plan(task_name)
    verdicts: dict[str, Any] = {}
    results = []
    for test in tests:
        d = dirs(test)
        say("compliance", {"test": test, "scenario": s.scenario, "out": str(d)})
        r = run_perf(audit_settings(test, s, plan), d)
        results.append(r)
        verdicts[test] = verify(test, d, perf_dir, acc_dir)
        if r.exit_code != 0:
            verdicts[test]["run_exit_code"] = r.exit_code
        rec = record.load_result(d)  # 'submission add' knows the run by this
        rec.update(compliance=test.lower(), compliance_verdict=verdicts[test])
        record.write_record(d, rec)
        record_run_safely(d)
    rec = record.load_result(perf_dir)
    rec["compliance_audits"] = dict(verdicts, plan=plan)
    record.write_record(perf_dir, rec)
    record_run_safely(perf_dir)
    return verdicts, results
