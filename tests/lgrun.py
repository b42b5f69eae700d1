"""Runs of the real LoadGen 6.0.17 (the mlcommons-loadgen wheel), for tests that compare with it.

Each case is a dict: ``scenario``; ``settings`` (LoadGen TestSettings attributes to set; a
string value is passed through ``float()``, so "nan", "-nan" and "inf" reach LoadGen as
those doubles); ``builtin_conf`` (apply LoadGen's built-in mlperf.conf first, for a model it
has no line for); ``mode`` (a TestMode name); ``samples`` (the QSL's size, 1024 unless
given). The SUT answers every sample at once. All cases run in one subprocess (LoadGen keeps
process-wide state), without a trace; each writes its logs into its own folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_RUNNER = r"""
import json, os, sys
import mlperf_loadgen as lg
for case in json.loads(sys.argv[1]):
    os.makedirs(case["out"], exist_ok=True)
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, case["scenario"])
    if case.get("builtin_conf"):
        assert ts.FromConfig("", "edgeperf-model", case["scenario"], 0) == 0
    ts.mode = getattr(lg.TestMode, case.get("mode", "PerformanceOnly"))
    for key, value in case.get("settings", {}).items():
        setattr(ts, key, float(value) if isinstance(value, str) else value)
    sut = lg.ConstructSUT(lambda queries: lg.QuerySamplesComplete(
        [lg.QuerySampleResponse(q.id, 0, 0) for q in queries]), lambda: None)
    n = case.get("samples", 1024)
    qsl = lg.ConstructQSL(n, n, lambda s: None, lambda s: None)
    log = lg.LogSettings()
    log.log_output.outdir = case["out"]
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, ts, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
"""


def run_loadgen(cases: dict[str, dict], root: Path, timeout: float = 120) -> dict[str, Path]:
    """Run every case; returns each case's output folder (mlperf_log_*.txt inside)."""
    todo = [dict(case, out=str(root / name)) for name, case in cases.items()]
    subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(todo)], check=True,
                   capture_output=True, timeout=timeout)
    return {name: root / name for name in cases}


def detail_values(run: Path) -> dict[str, object]:
    """key -> value of a LoadGen detail log (the last of a repeated key); bare nan/inf, which
    LoadGen writes for such doubles, read as floats."""
    from edgeperf.outputs.mlperf_logs import parse_detail

    return {ev["key"]: ev["value"] for ev in parse_detail(run / "mlperf_log_detail.txt")}
