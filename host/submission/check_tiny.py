"""One MLPerf Tiny result (``results/SYS/{ad,ic,kws,vww}/``), by the rules of MLCommons Tiny's
checker (mlcommons/tiny tools/submission/submission_checker.py): accuracy and performance
required, energy optional, each with exactly log.txt and results.txt (results.json allowed),
results.txt carrying the lines Tiny's checker matches, the accuracy target in closed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgeperf.submission.check_report import Report, ResultRow

REQUIRED = {"log.txt", "results.txt"}
OPTIONAL = {"results.json", "mlperf_log_trace.json", ".gitkeep"}
THROUGHPUT = re.compile(r".* Median throughput is\s+([\d\.]+) inf\./sec\..*")
ENERGY = re.compile(r"Median energy cost is ([\d\.]+) uJ/inf")


def _phase(rep: Report, d: Path) -> list[str] | None:
    if not d.is_dir():
        return None
    names = {p.name for p in d.iterdir()}
    missing, extra = REQUIRED - names, names - REQUIRED - OPTIONAL
    if missing or extra:
        rep.error(d, "tiny-files", f"file list differs from Tiny's {sorted(REQUIRED)} "
                                   f"(+ results.json): missing {sorted(missing)}, extra "
                                   f"{sorted(extra)}")
    txt = d / "results.txt"
    if not txt.is_file():
        return None
    return txt.read_text(encoding="utf-8", errors="replace").splitlines()


def _first(pattern: re.Pattern[str], lines: list[str], search: bool = False) -> float | None:
    for ln in lines:
        m = pattern.search(ln) if search else pattern.match(ln)
        if m:
            try:
                return float(m.group(1))
            except ValueError:
                return None
    return None


def check_tiny_result(rep: Report, bdir: Path, bench: Any, division: str,
                      system: str) -> ResultRow:
    row = ResultRow(division, system, bdir.name, "-", unit="inf./sec.")
    since = len(rep.errors)
    acc = _phase(rep, bdir / "accuracy")
    if acc is None:
        rep.error(bdir / "accuracy" / "results.txt", "required-file",
                  "missing; Tiny requires the accuracy run (edgeperf run --mode accuracy on "
                  "the DUT)")
    else:
        value = _first(re.compile(bench.accuracy_pattern), acc)
        if value is None:
            (rep.error if division == "closed" else rep.warn)(
                bdir / "accuracy" / "results.txt", "accuracy-metric",
                f"no line matches Tiny's {bench.metric} pattern {bench.accuracy_pattern!r}")
        else:
            row.accuracy = f"{bench.metric} {value:g}"
            if value < bench.target:
                msg = f"{bench.metric} {value:g} is below the target {bench.target:g}"
                if division == "closed":
                    rep.error(bdir / "accuracy" / "results.txt", "accuracy-target",
                              msg + "; closed needs it met: fix the model or submit to open")
                else:
                    rep.warn(bdir / "accuracy" / "results.txt", "accuracy-target", msg)
    perf = _phase(rep, bdir / "performance")
    if perf is None:
        rep.error(bdir / "performance" / "results.txt", "required-file",
                  "missing; Tiny requires the performance run")
    else:
        row.metric = _first(THROUGHPUT, perf)
        if row.metric is None:
            rep.error(bdir / "performance" / "results.txt", "tiny-throughput",
                      "no 'Median throughput is N inf./sec.' line (Tiny's checker needs it); "
                      "keep the runner's results.txt")
    if (bdir / "energy").exists():
        energy = _phase(rep, bdir / "energy")
        value = _first(ENERGY, energy or [], search=True)
        if value is None:
            rep.error(bdir / "energy" / "results.txt", "tiny-energy",
                      "no 'Median energy cost is N uJ/inf.' line; keep the runner's results.txt")
        else:
            row.power = f"{value:g} uJ/inf."
    row.validity = "VALID" if rep.errors_under(bdir, since) == 0 else "INVALID"
    return row
