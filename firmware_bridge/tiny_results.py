"""MLPerf Tiny's own result files, in the MLCommons runner's spelling, so Tiny's checker reads them.

The runner (``benchmark/runner/main.py``) writes, in a session directory:

* ``results.txt``: what ``summarize_result`` / ``print_energy_results`` print. Its summary
  lines carry a ``%m%d.%H%M%S `` stamp and ``ulp-mlperf: `` before the text, which is what the
  checker's ``.* Median throughput is\\s+([\\d\\.]+) inf\\./sec\\..*`` (re.match) needs: the
  leading ``.* `` must match something ending in a space.
* ``log.txt``: the whole session's console output (the runner redirects print to it).
* ``results.json``: ``json.dump`` of the list of per-loop results (y_labels.csv row, ``infer``
  with start_time, end_time, results, elapsed_time, total_inferences, iterations, warmups,
  throughput; ``power`` in energy mode; ``mode``).

A result that is INVALID gets the rule it breaks in place of its median line (the runner's
``ERROR 1``/``ERROR 2`` style), so the checker can never read a figure from it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from edgeperf_firmware.procedures import TINY_MIN_WINDOW_S, TINY_WINDOWS, ProcedureResult

RULE = "---------------------------------------------------------"


def _prefix(now: time.struct_time | None = None) -> str:
    return time.strftime("%m%d.%H%M%S ", now or time.localtime()) + "ulp-mlperf: "


def results_lines(r: ProcedureResult, now: time.struct_time | None = None) -> list[str]:
    p = _prefix(now)
    if r.mode == "performance":
        return _performance(r, p)
    if r.mode == "energy":
        return _energy(r)
    return _accuracy(r, p)


def _errors(r: ProcedureResult, p: str) -> list[str]:
    out = []
    if len(r.windows) != TINY_WINDOWS and r.mode == "performance":
        out.append(f"{p}ERROR 1 - loop_count was not exactly {TINY_WINDOWS}.")
    return out + [f"{p}ERROR - {why}" for why in r.reasons]


def _performance(r: ProcedureResult, p: str) -> list[str]:
    out = []
    for w in r.windows:
        out += [f"Performance results for window {w.index}",
                f"    # Inferences : {w.n}",
                f"    Runtime: {(w.t1_us - w.t0_us) / 1e6} sec.",
                f"    Throughput: {w.throughput} inf./sec."]
        if w.seconds > TINY_MIN_WINDOW_S:
            out.append("    Runtime requirements have been met.")
    if not r.valid or r.value is None:
        return out + _errors(r, p)
    return out + [f"{p}{RULE}", f"{p}Median throughput is {r.value:>10.3f} inf./sec.",
                  f"{p}{RULE}"]


def _energy(r: ProcedureResult) -> list[str]:
    out = ["Power Edition Output"]
    for i, w in enumerate(r.windows):
        warn = "" if w.seconds >= TINY_MIN_WINDOW_S else "  <<<< below minimum duration"
        total_j = (w.energy_uj or 0.0) / 1e6
        out += [f"Energy data for trial {i}",
                f"  Elapsed time  : {w.seconds}{warn}",
                f"  Inferences    : {w.n}",
                f"  Power         : {1e3 * total_j / w.seconds if w.seconds else 0.0:5.4f} mW.",
                f"  Total Energy  : {w.energy_uj:.3f} uJ",
                f"  Energy/Inf    : {w.energy_per_inf_uj:.3f} uJ/inf"]
    out.append(RULE)
    if r.valid and r.value is not None:
        out.append(f"Median energy cost is {r.value:5.4f} uJ/inf.")
    else:
        if any(w.seconds < TINY_MIN_WINDOW_S for w in r.windows):
            out.append("ERROR: Not valid for submission.  All inference times must be at least "
                       "10 seconds.")
        if len(r.windows) != TINY_WINDOWS:
            out.append(f"ERROR: Not valid for submission.  Energy mode must include exactly "
                       f"{TINY_WINDOWS} measurements.")
        out += [f"ERROR - {why}" for why in r.reasons]
    out.append(RULE)
    return out


def _accuracy(r: ProcedureResult, p: str) -> list[str]:
    if not r.valid or r.value is None:
        return _errors(r, p)
    out = []
    if r.metric == "top1":
        out.append(f"{p}Top 1% = {100 * r.value:2.1f}")
    if r.auc is not None:
        out.append(f"{p}AUC = {r.auc:.3f}")
    return out


def write(out_dir: str | Path, r: ProcedureResult, log_lines: list[str],
          now: time.struct_time | None = None) -> dict[str, Path]:
    """results.txt, log.txt and results.json in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("results.txt", "log.txt", "results.json")}
    lines = results_lines(r, now)
    paths["results.txt"].write_text("".join(line + "\n" for line in lines))
    session = [f"Logging initialized. Writing output to {paths['log.txt']}", *log_lines,
               "-" * 20, *lines, f"Session logged in file {paths['log.txt']}"]
    paths["log.txt"].write_text("".join(line + "\n" for line in session))
    with open(paths["results.json"], "w") as f:
        json.dump(r.records, f)
    return paths
