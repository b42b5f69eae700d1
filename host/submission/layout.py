"""One scenario directory of an MLPerf Inference tree, built from edgeperf runs (survey §2):

    SCENARIO/measurements.json, user.conf, README.md
    SCENARIO/performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt,
                                mlperf_log_accuracy.json, mlperf_log_trace.json, spl.txt}
    SCENARIO/performance/ranging/{mlperf_log_summary.txt, mlperf_log_detail.txt, spl.txt}
                                                          (a PTDaemon run's ranging run)
    SCENARIO/performance/power/{client.json, client.log, ptd_logs.txt, server.json,
                                server.log}               (its power-dev session files)
    SCENARIO/accuracy/{mlperf_log_summary.txt, mlperf_log_detail.txt,
                       mlperf_log_accuracy.json (hashed, truncated), accuracy.txt}
    SCENARIO/TEST01/{verify_*.txt, performance/run_1/..., accuracy/mlperf_log_accuracy.json}
    SCENARIO/TEST04/{verify_performance.txt, performance/run_1/...}

Only the files MLCommons' layout names are copied: never result.json (the power checks
compare exact file lists), never querylog.npz. What edgeperf needs to check the tree is in
README.md and src/edgeperf-submission.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgeperf.power.powerdev import POWER_FILES
from edgeperf.settings.conf import apply_conf
from edgeperf.settings.requested import TestSettings
from edgeperf.submission.rules import Benchmark, Rules
from edgeperf.submission.runs import Run
from edgeperf.submission.truncate import truncate_accuracy_log

LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
PERF_FILES = (*LOGS, "mlperf_log_accuracy.json", "mlperf_log_trace.json", "spl.txt")
ACC_FILES = (*LOGS, "mlperf_log_accuracy.json")
RANGING_FILES = (*LOGS, "spl.txt")  # MLCommons' list for a power phase: nothing optional
VERIFY = {"TEST01": ("verify_accuracy.txt", "verify_performance.txt"),
          "TEST04": ("verify_performance.txt",)}


def _copy(src: Path, dst: Path, names: tuple[str, ...], required: tuple[str, ...]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (src / n).is_file():
            shutil.copy2(src / n, dst / n)
        elif n in required:
            raise FileNotFoundError(f"{src / n}: missing; the run directory is incomplete")


def mlcommons_accuracy_line(acc: dict[str, Any]) -> str | None:
    """The line MLCommons' pattern for the metric reads (acc for Top-1: accuracy=...%)."""
    v, n = acc.get("value"), int(acc.get("count") or 0)
    if v is None:
        return None
    if acc.get("metric") == "top1":
        return f"accuracy={100 * v:.3f}%, good={round(v * n)}, total={n}"
    if acc.get("metric") == "auc":
        return f"AUC={v:.6f}"
    return None


# TestSettings field -> (conf key, scenarios it applies to (None: all), writer)
def _ms(ns: int) -> str:
    return repr(ns / 1e6).removesuffix(".0")


def _pct(f: float) -> str:
    return repr(round(f * 100, 9)).removesuffix(".0")


_CONF_WRITE: list[tuple[str, str, tuple[str, ...] | None, Any]] = [
    ("min_duration_ms", "min_duration", None, str),
    ("max_duration_ms", "max_duration", None, str),
    ("min_query_count", "min_query_count", None, str),
    ("max_query_count", "max_query_count", None, str),
    ("target_latency_ns", "target_latency", ("SingleStream", "MultiStream", "Server"), _ms),
    ("target_latency_percentile", "target_latency_percentile",
     ("SingleStream", "MultiStream", "Server"), _pct),
    ("target_qps", "target_qps", ("Server", "Offline"), repr),
    ("samples_per_query", "samples_per_query", ("MultiStream",), str),
    ("performance_sample_count", "performance_sample_count_override", None, str),
    ("qsl_rng_seed", "qsl_rng_seed", None, str),
    ("sample_index_rng_seed", "sample_index_rng_seed", None, str),
    ("schedule_rng_seed", "schedule_rng_seed", None, str),
    ("warmup_queries", "warmup_queries", None, str),
]


def write_user_conf(path: Path, requested: dict[str, Any]) -> list[str]:
    """user.conf in LoadGen's syntax for the settings the run requested; read back with
    edgeperf's conf reader (settings.conf) to prove it gives the run's settings again."""
    scen = requested["scenario"]
    lines, fields = [], []
    for field, key, scenarios, fmt in _CONF_WRITE:
        v = requested.get(field)
        if v is None or (scenarios is not None and scen not in scenarios) or \
                (field in ("target_qps", "performance_sample_count") and not v):
            continue
        lines.append(f"*.{scen}.{key} = {fmt(v)}")
        fields.append(field)
    path.write_text("# the settings the run requested (edgeperf run's result.json)\n"
                    + "\n".join(lines) + "\n")
    back = apply_conf(TestSettings(scenario=scen), [path], "*")
    wrong = [f for f in fields if getattr(back, f) != requested[f]]
    if wrong:
        raise RuntimeError(f"{path}: reads back {wrong} differently from the run's settings")
    return lines


def _acc_txt(run: Run, out: Path) -> None:
    text = (run.path / "accuracy.txt").read_text()
    line = mlcommons_accuracy_line(run.record.get("accuracy") or {})
    out.write_text((line + "\n" if line else "") + text)


def build_scenario(dst: Path, rules: Rules, bench: Benchmark, perf: Run, acc: Run,
                   tests: dict[str, Run], meas: dict[str, str], readme: str) -> dict[str, Any]:
    """Lay the scenario out in ``dst`` (a fresh directory); returns what it recorded."""
    run1 = dst / "performance" / "run_1"
    _copy(perf.path, run1, PERF_FILES, ("mlperf_log_detail.txt", "mlperf_log_summary.txt"))
    if (perf.path / "ranging" / "spl.txt").is_file():
        _copy(perf.path / "ranging", dst / "performance" / "ranging", RANGING_FILES, ())
    if (perf.path / "power").is_dir():  # byte for byte: client/server.json hash the others
        _copy(perf.path / "power", dst / "performance" / "power", POWER_FILES, POWER_FILES)
    accd = dst / "accuracy"
    _copy(acc.path, accd, (*ACC_FILES, "accuracy.txt"), (*ACC_FILES, "accuracy.txt"))
    _acc_txt(acc, accd / "accuracy.txt")
    digest = truncate_accuracy_log(accd / "mlperf_log_accuracy.json", accd / "accuracy.txt",
                                   rules)
    for test, run in tests.items():
        t = dst / test
        _copy(run.path, t / "performance" / "run_1", LOGS, LOGS)
        _copy(run.path, t, VERIFY[test], ())
        if test == "TEST01":
            _copy(run.path, t / "accuracy", ("mlperf_log_accuracy.json",),
                  ("mlperf_log_accuracy.json",))
    (dst / "measurements.json").write_text(json.dumps(meas, indent=2) + "\n")
    conf = write_user_conf(dst / "user.conf", (perf.record.get("settings") or {})["requested"])
    (dst / "README.md").write_text(readme)
    return {"accuracy_log_sha256": digest, "user_conf": conf}


__all__ = ["build_scenario", "mlcommons_accuracy_line", "write_user_conf"]
