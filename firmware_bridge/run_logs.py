"""An MCU run's directory in edgeperf's layout, beside Tiny's own files (tiny_results.py).

* ``result.json``: edgeperf's versioned record (board, task, mode, port, the procedure's
  values and windows, validity, reasons, exit code).
* ``mlperf_log_summary.txt``: LoadGen's summary layout, honestly mapped: the ``Scenario``
  line names the MLPerf Tiny procedure and says it is not a LoadGen scenario, the figure is
  Tiny's (median throughput of the windows, the accuracy metric, median energy), the
  conditions are Tiny's rules. No LoadGen field is written that LoadGen did not measure.
* ``mlperf_log_detail.txt``: ``:::MLLOG`` lines; LoadGen's keys only where they mean the same
  (``test_datetime``, ``sut_name``, ``result_validity``), every other key ``edgeperf_tiny_*``.
* ``accuracy.txt`` (accuracy mode): the same lines as a Linux board's accuracy run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.outputs.detail import _DetailWriter
from edgeperf.outputs.summary import SEPARATOR
from edgeperf.scoring.accuracy import AccuracyResult
from edgeperf_agent import __version__
from edgeperf_firmware.procedures import TINY_MIN_WINDOW_S, TINY_WINDOWS, ProcedureResult

SCHEMA = "edgeperf.tiny-result/1"
LOG_FORMAT = "MLPerf Tiny procedure (edgeperf keys; not a LoadGen run)"
_SCENARIO = {
    "performance": f"MLPerf Tiny performance (median throughput of {TINY_WINDOWS} windows of "
                   f">= {TINY_MIN_WINDOW_S:g} s; not a LoadGen scenario)",
    "accuracy": "MLPerf Tiny accuracy (every sample once, infer 1 0; not a LoadGen scenario)",
    "energy": f"MLPerf Tiny energy (median energy per inference of {TINY_WINDOWS} windows of "
              f">= {TINY_MIN_WINDOW_S:g} s; not a LoadGen scenario)",
}


def _yes(ok: bool) -> str:
    return "Yes" if ok else "NO"


def accuracy_result(task: Any, r: ProcedureResult) -> AccuracyResult:
    """The procedure's accuracy as edgeperf's record (the target missed is a reason)."""
    value = float("nan") if r.value is None else float(r.value)
    reasons = list(r.reasons)
    if r.passed is False:
        reasons.append(f"{r.metric} {value:.6f} misses the target {task.target_text}")
    return AccuracyResult(r.metric, value, float(task.target), task.target_text,
                          bool(r.passed) and r.valid, r.count, reasons)


def format_summary(r: ProcedureResult, task: Any, sut: str) -> str:
    out = [SEPARATOR, "MLPerf Results Summary", SEPARATOR, f"SUT name : {sut}",
           f"Scenario : {_SCENARIO[r.mode]}", f"Mode     : {r.mode}"]
    value = "n/a" if r.value is None else f"{r.value:.3f}" if r.mode != "accuracy" \
        else f"{r.value:.6f}"
    if r.mode == "accuracy":
        out += [f"{r.metric} : {value}", f"Target : {task.target_text}"]
    else:
        out.append(f"Median {'throughput' if r.mode == 'performance' else 'energy'} "
                   f"({r.unit}) : {value}")
    out.append(f"Result is : {r.result}")
    if r.mode == "accuracy":
        total = len(np.asarray(task.dataset.labels).reshape(-1))
        out += [f"  Every sample scored : {_yes(r.count == total)} ({r.count} of {total})",
                f"  Target met : {_yes(bool(r.passed))}"]
    else:
        long_enough = bool(r.windows) and all(w.seconds >= TINY_MIN_WINDOW_S for w in r.windows)
        out += [f"  Windows of at least {TINY_MIN_WINDOW_S:g} s : {_yes(long_enough)}",
                f"  Exactly {TINY_WINDOWS} windows : {_yes(len(r.windows) == TINY_WINDOWS)}"]
    if r.reasons:
        out.append("Recommendations:")
        out += [f" * {why}" for why in r.reasons]
    if r.windows:
        out += ["", SEPARATOR, "Additional Stats", SEPARATOR]
        for w in r.windows:
            if r.mode == "energy":
                out.append(f"Window {w.index} : {w.n} inferences in {w.seconds:.6f} s, "
                           f"{w.energy_per_inf_uj:.3f} uJ/inf. ({w.file})")
            else:
                out.append(f"Window {w.index} : {w.n} inferences in {w.seconds:.6f} s, "
                           f"{w.throughput:.3f} inf./sec. ({w.file})")
    out += ["", "No warnings encountered during test.", "",
            "No errors encountered during test."]
    return "\n".join(out) + "\n"


def format_detail(r: ProcedureResult, record: dict[str, Any], start: datetime,
                  end: datetime) -> str:
    w = _DetailWriter(start)
    w.event("edgeperf_version", __version__, "header")
    w.event("edgeperf_log_format", LOG_FORMAT, "header")
    w.event("test_datetime", start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "header")
    w.event("sut_name", record["sut_name"], "header")
    for key in ("mode", "task", "port", "baud"):
        w.event(f"edgeperf_tiny_{key}", record[key], "run")
    dut = record["procedure"].get("dut") or {}
    for key in ("name", "profile", "model"):
        w.event(f"edgeperf_tiny_dut_{key}", dut.get(key, ""), "run")
    for win in record["procedure"]["windows"]:
        keep = ("index", "sample", "file", "n", "warmups", "seconds", "t0_us", "t1_us",
                "throughput", "energy_uj", "energy_per_inf_uj")
        w.event("edgeperf_tiny_window", {k: win[k] for k in keep}, "run", end)
    w.event("result_validity", r.result, "result", end)
    if r.reasons:
        w.event("edgeperf_invalid_reasons", list(r.reasons), "result", end)
    w.event(f"edgeperf_tiny_{r.mode}_value", r.value, "result", end)
    w.event("edgeperf_tiny_unit", r.unit, "result", end)
    if r.mode == "accuracy":
        w.event("edgeperf_tiny_accuracy_passed", bool(r.passed), "result", end)
    return "\n".join(w.lines) + "\n"


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_run_dir(out: Path, r: ProcedureResult, *, board: dict[str, Any], task: Any,
                  port: str, baud: int, exit_code: int, start: datetime,
                  end: datetime) -> dict[str, Any]:
    """result.json, mlperf_log_summary.txt, mlperf_log_detail.txt (and accuracy.txt) in
    ``out``, beside the Tiny files run_procedure wrote; returns the record."""
    dut = r.dut
    sut = f"{dut.name} ({dut.model})" if dut else board["name"]
    proc = r.to_dict()
    proc.pop("outputs", None)  # every sample's vector: in Tiny's results.json already
    record: dict[str, Any] = {
        "schema": SCHEMA, "edgeperf_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "board": board,
        "task": task.full_name, "mode": r.mode, "port": port, "baud": baud, "sut_name": sut,
        "result": r.result, "valid": r.valid, "value": r.value, "unit": r.unit,
        "reasons": list(r.reasons), "exit_code": exit_code, "procedure": proc,
        "files": {"summary": "mlperf_log_summary.txt", "detail": "mlperf_log_detail.txt",
                  "tiny_results": "results.txt", "tiny_log": "log.txt",
                  "tiny_results_json": "results.json", "bridge": "bridge.json"}}
    if r.mode == "accuracy":
        from edgeperf.tasks.accuracy import format_accuracy_txt

        acc = accuracy_result(task, r)
        record["accuracy"] = acc.to_dict()
        record["files"]["accuracy_txt"] = "accuracy.txt"
        (out / "accuracy.txt").write_text(format_accuracy_txt(task, acc))
    (out / "mlperf_log_summary.txt").write_text(format_summary(r, task, sut))
    (out / "mlperf_log_detail.txt").write_text(format_detail(r, record, start, end))
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=_plain) + "\n")
    tmp.replace(out / "result.json")
    return record
