"""One result of an MLPerf Inference tree (``results/SYS/BENCH/SCENARIO``): every rule that
applies to it, and its row in the table (VALID only when none of its own files has an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeperf.submission.check_accuracy import check_accuracy
from edgeperf.submission.check_compliance import check_compliance
from edgeperf.submission.check_perf import UNIT, check_performance, read_detail
from edgeperf.submission.check_power import check_power
from edgeperf.submission.check_report import Report, ResultRow
from edgeperf.submission.check_system import check_scenario_files
from edgeperf.submission.provenance import recorded_meter, recorded_model, recorded_runs


def originals_for(rep: Report, acc: Path, originals: Path | None,
                  runs: dict[str, str]) -> list[Path]:
    """Where an untruncated accuracy log of ``acc`` may be: under --originals (the tree's
    layout, as MLCommons' --backup), or in the run directory the tree builder recorded."""
    found = []
    if originals is not None:
        found.append(originals / rep.rel(acc) / "mlperf_log_accuracy.json")
    if runs.get("accuracy"):
        found.append(Path(runs["accuracy"]) / "mlperf_log_accuracy.json")
    return found


def check_result(rep: Report, scen: Path, bench: Any, rules: Any, division: str,
                 system: str, originals: Path | None) -> ResultRow:
    scenario = scen.name
    row = ResultRow(division, system, bench.name, scenario, unit=UNIT.get(scenario, ""))
    since = len(rep.errors)
    check_scenario_files(rep, scen, rules)
    run = scen / "performance" / "run_1"
    if not (run / "mlperf_log_summary.txt").is_file():
        rep.error(run / "mlperf_log_summary.txt", "required-file",
                  "missing; copy the run's mlperf_log_summary.txt here")
    log = read_detail(rep, run / "mlperf_log_detail.txt")
    if log is not None:
        row.metric = check_performance(rep, log, bench, rules, division, scenario)
    runs = recorded_runs(scen)
    acc = scen / "accuracy"
    if acc.is_dir():
        row.accuracy = check_accuracy(rep, acc, bench, rules, division,
                                      originals_for(rep, acc, originals, runs))
    else:
        rep.error(acc, "required-file", "missing; a result needs its accuracy run "
                                        "(edgeperf run --mode submission makes one)")
    if division == "closed":
        check_compliance(rep, scen, bench, rules, scenario)
        _model_hash(rep, scen, bench)
    if (scen / "performance" / "power").exists():
        row.power = check_power(rep, scen, rules, division, recorded_meter(scen))
    row.validity = "VALID" if rep.errors_under(scen, since) == 0 else "INVALID"
    return row


def _model_hash(rep: Report, scen: Path, bench: Any) -> None:
    if not bench.model_sha256:
        return
    where, got = recorded_model(scen)
    if got is None:
        rep.error(where, "model-hash", f"the tree records no model sha256; closed "
                                       f"{bench.name} needs the rules' model "
                                       f"{bench.model_sha256[:16]}… (edgeperf submission add "
                                       f"records it)")
    elif got != bench.model_sha256:
        rep.error(where, "model-hash", f"the model's sha256 {got} is not the rules' "
                                       f"{bench.model_sha256} for closed {bench.name}; run "
                                       f"the benchmark's model, or submit to open")
