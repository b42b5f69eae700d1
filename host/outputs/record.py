"""A run's outputs, in one directory.

    mlperf_log_summary.txt   LoadGen's summary layout
    mlperf_log_detail.txt    LoadGen's :::MLLOG lines
    mlperf_log_trace.json    one trace event per query (valid JSON)
    mlperf_log_accuracy.json LoadGen's accuracy log ("[\\n]" in performance mode)
    result.json              versioned record: settings, board, device, telemetry, summary
    querylog.npz             raw per-query issue/done times (device ns) and sample indices
                             (positions in the pushed set; qsl_index maps them to LoadGen's
                             QSL indices), exact, about 4 bytes a query (querylog_file.py);
                             'edgeperf score' reads it
    spl.txt, ranging/spl.txt, power_trace.npz
                             with a meter: the power samples (power-dev's format, and raw)
    ranging/mlperf_log_*     PTDaemon: the ranging run's own LoadGen logs (write_logs)
    power/                   PTDaemon: power-dev's session files (power/powerdev.py)

``result.json`` is written last and atomically; the spill file the QueryLog was gathered
in is removed only once every file is in place. The other files are written into a hidden
staging directory and renamed into place together at the end, so a disk that fills (or any
write that fails) leaves the directory's files as they were: none truncated, none half
written (the staging directory is removed, giving its room back).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeperf.outputs.model_costs import format_block
from edgeperf.outputs import mlperf_logs
from edgeperf.outputs.mlperf_logs import DEFAULT_TRACE_LIMIT
from edgeperf.outputs.querylog_file import write_querylog
from edgeperf.run.querylog import QueryLogData
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings
from edgeperf_agent import __version__

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile
    from edgeperf.models.resolve import ModelRef
    from edgeperf.run.spec import RunSpec

SCHEMA = "edgeperf.result/1"


# the command line that makes the runs (edgeperf run sets it; a script's own runs have none)
COMMAND_LINE: contextvars.ContextVar[str | None] = contextvars.ContextVar("edgeperf_command",
                                                                         default=None)


def new_record(profile: BoardProfile, model: ModelRef, spec: RunSpec) -> dict[str, Any]:
    extra = {"command": COMMAND_LINE.get()} if COMMAND_LINE.get() else {}
    return {
        "schema": SCHEMA, **extra,
        "edgeperf_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "board": profile.to_dict(),
        "model": {"spec": model.spec, "name": model.name, "backend": model.backend,
                  "sha256": model.sha256, "size": len(model.data) if model.data else 0},
        "settings": {"requested": spec.settings.to_dict(), "conf_files": list(spec.conf_files)},
        "telemetry": {},
        "transfers": {},
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A staging directory in ``out``; its files replace ``out``'s when the block ends
    without an error, and are removed when it does not."""
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".edgeperf-writing-", dir=out))
    try:
        yield stage
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)  # a rename: no new room needed
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_run(out: Path, spec: RunSpec, eff: TestSettings, rec: dict[str, Any],
              q: QueryLogData, summary: Summary | None, errors: list[str],
              accuracy: Any = (), drop_spill: bool = True) -> dict[str, Any]:
    """Write every output file; returns the result record. ``accuracy``: the (seq id,
    qsl index, bytes) of the outputs a performance run logged (TEST01), if any. An OSError
    (a full disk) leaves ``out``'s files as they were, the spill among them."""
    files: dict[str, str] = {}
    wall = (rec.get("run") or {}).get("wall_anchor") or {}
    power = rec.get("power") or {}
    with _staged(out) as stage:
        if q.rows:
            write_querylog(stage / "querylog.npz", q, spec.settings.scenario)
            files["querylog"] = "querylog.npz"
        if summary is not None:
            args = dict(_power_log_args(power), accuracy=accuracy)
            appendix = (args.get("summary_appendix") or "") + format_block(rec.get("model_costs"))
            if appendix:
                args["summary_appendix"] = appendix
            _write_logs(stage, spec.settings, eff, rec, q, summary, errors,
                        rec.get("warnings", ()), wall, spec.trace_all, args)
            files.update(summary="mlperf_log_summary.txt", detail="mlperf_log_detail.txt",
                         trace="mlperf_log_trace.json", accuracy="mlperf_log_accuracy.json")
    files.update(power.get("files") or {})
    rec["summary"] = summary.to_dict() if summary else None
    rec["result"] = summary.result if summary else "INVALID"
    rec["valid"] = bool(summary and summary.valid)
    rec["invalid_reasons"] = summary.invalid_reasons if summary else list(errors)
    rec["errors"] = list(errors)
    rec["files"] = files
    _atomic_write(out / "result.json", json.dumps(rec, indent=1, default=_json_default) + "\n")
    if drop_spill and q.rows:  # querylog.npz holds its rows now
        (out / "querylog.spill").unlink(missing_ok=True)
    return rec


def write_logs(out: Path, requested: TestSettings, eff: TestSettings, rec: dict[str, Any],
               q: QueryLogData, summary: Summary, errors: list[str], warnings: Any,
               wall_anchor: dict[str, Any], trace_all: bool, power_args: dict[str, Any]) -> None:
    """LoadGen's four logs of one run (the testing run's in ``out``; a power ranging run's
    in ``out/ranging``, with ``power_args`` naming its own window), all or none."""
    with _staged(out) as stage:
        _write_logs(stage, requested, eff, rec, q, summary, errors, warnings, wall_anchor,
                    trace_all, power_args)


def _write_logs(out: Path, requested: TestSettings, eff: TestSettings, rec: dict[str, Any],
                q: QueryLogData, summary: Summary, errors: list[str], warnings: Any,
                wall_anchor: dict[str, Any], trace_all: bool,
                power_args: dict[str, Any]) -> None:
    sut = f"edgeperf:{rec['model']['name']}@{rec['board']['name']}"
    mlperf_logs.write_run_logs(out, summary=summary, requested=requested, effective=eff,
                               sut_name=sut, querylog=q, wall_anchor=wall_anchor, errors=errors,
                               warnings=warnings,
                               trace_limit=None if trace_all else DEFAULT_TRACE_LIMIT,
                               **power_args)


def write_record(out: Path, rec: dict[str, Any]) -> None:
    """Write a record as result.json, atomically (accuracy runs; write_run does it for
    performance runs)."""
    _atomic_write(Path(out) / "result.json",
                  json.dumps(rec, indent=1, default=_json_default) + "\n")


def _power_log_args(power: dict[str, Any]) -> dict[str, Any]:
    """power_begin/power_end from the ClockSync-mapped window, and the summary's Power block."""
    if not power:
        return {}
    from edgeperf.power.energy import format_power_block

    w = power.get("window") or {}
    keys = ("valid", "energy_j", "avg_watts", "duration_s", "clock_uncertainty_us")
    return {"power_window_wall_ns": (w["wall_start_ns"], w["wall_end_ns"]) if w else None,
            "summary_appendix": format_power_block(power),
            "extra": {f"edgeperf_power_{k}": power[k] for k in keys if k in power}}


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_result(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "result.json").read_text())
