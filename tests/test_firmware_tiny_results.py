"""MLPerf Tiny's files as the runner writes them, read with exactly the Tiny checker's regexes."""

from __future__ import annotations

import json
import re
import time

import pytest

from edgeperf_firmware import tiny_results
from edgeperf_firmware.procedures import ProcedureResult, Window

# tools/submission/submission_checker.py (mlcommons/tiny)
PERF = r".* Median throughput is\s+([\d\.]+) inf\./sec\..*"  # re.match
ENERGY = r"Median energy cost is ([\d\.]+) uJ/inf"  # re.search
TOP1 = r".* Top[- ]1%?\s?[:=] ([\d\.]+).*"  # re.match
AUC = r".* AUC\s?[:=] ([\d\.]+).*"  # re.match
NOW = time.strptime("2025-06-12 15:30:45", "%Y-%m-%d %H:%M:%S")


def checker(path, pattern, search=False):
    """What the checker does: the last matching line's group 1."""
    found = None
    for line in path.read_text().splitlines(keepends=True):
        m = (re.search if search else re.match)(pattern, line)
        if m:
            found = m.group(1)
    return found


def perf_result(throughputs, valid=True, reasons=()):
    windows = []
    for i, x in enumerate(throughputs):
        n = 10_000
        us = round(n / x * 1e6)
        windows.append(Window(i + 1, i, f"s_{i:05d}.bin", n, 10, us / 1e6, 1000, 1000 + us,
                              n / (us / 1e6), [0.1, 0.9]))
    median = sorted(w.throughput for w in windows)[len(windows) // 2]
    return ProcedureResult("performance", valid, median, "inf./sec.", list(reasons), windows)


def test_results_txt_performance_is_read_by_the_checker(tmp_path):
    r = perf_result([812.5, 790.0, 805.25, 799.0, 830.0])
    tiny_results.write(tmp_path, r, ["a log line"], now=NOW)
    text = (tmp_path / "results.txt").read_text()
    assert "0612.153045 ulp-mlperf: Median throughput is    805.250 inf./sec.\n" in text
    assert float(checker(tmp_path / "results.txt", PERF)) == pytest.approx(805.25)
    assert text.startswith("Performance results for window 1\n    # Inferences : 10000\n")
    assert "    Runtime requirements have been met.\n" in text
    log = (tmp_path / "log.txt").read_text().splitlines()
    assert log[0] == f"Logging initialized. Writing output to {tmp_path / 'log.txt'}"
    assert log[1] == "a log line" and log[-1] == f"Session logged in file {tmp_path / 'log.txt'}"
    assert "0612.153045 ulp-mlperf: Median throughput is    805.250 inf./sec." in log


def test_an_invalid_run_gives_the_checker_no_figure(tmp_path):
    r = perf_result([812.5, 790.0, 805.25], valid=False,
                    reasons=["3 window(s) measured, MLPerf Tiny needs exactly 5"])
    tiny_results.write(tmp_path, r, [], now=NOW)
    assert checker(tmp_path / "results.txt", PERF) is None
    text = (tmp_path / "results.txt").read_text()
    assert "0612.153045 ulp-mlperf: ERROR 1 - loop_count was not exactly 5.\n" in text
    assert "ulp-mlperf: ERROR - 3 window(s) measured, MLPerf Tiny needs exactly 5\n" in text


def test_results_txt_accuracy_top1_and_auc(tmp_path):
    r = ProcedureResult("accuracy", True, 350 / 360, "top1", metric="top1", target=0.9653,
                        passed=True, count=360, auc=0.99812)
    tiny_results.write(tmp_path, r, [], now=NOW)
    assert (tmp_path / "results.txt").read_text() == (
        "0612.153045 ulp-mlperf: Top 1% = 97.2\n0612.153045 ulp-mlperf: AUC = 0.998\n")
    assert checker(tmp_path / "results.txt", TOP1) == "97.2"
    assert checker(tmp_path / "results.txt", AUC) == "0.998"
    ad = ProcedureResult("accuracy", True, 0.91234, "auc", metric="auc", auc=0.91234)
    tiny_results.write(tmp_path / "ad", ad, [], now=NOW)
    assert checker(tmp_path / "ad" / "results.txt", AUC) == "0.912"
    assert checker(tmp_path / "ad" / "results.txt", TOP1) is None


def test_results_txt_energy_is_read_by_the_checker(tmp_path):
    windows = [Window(i + 1, i, f"s_{i}.bin", 5000, 0, 11.0 + i / 100,
                      energy_uj=e * 5000, energy_per_inf_uj=e)
               for i, e in enumerate([40.5, 39.6, 41.25, 39.9, 40.0])]
    r = ProcedureResult("energy", True, 40.0, "uJ/inf.", windows=windows)
    tiny_results.write(tmp_path, r, [], now=NOW)
    text = (tmp_path / "results.txt").read_text()
    assert text.startswith("Power Edition Output\nEnergy data for trial 0\n"
                           "  Elapsed time  : 11.0\n  Inferences    : 5000\n")
    assert "  Energy/Inf    : 41.250 uJ/inf\n" in text
    assert "Median energy cost is 40.0000 uJ/inf.\n" in text
    assert float(checker(tmp_path / "results.txt", ENERGY, search=True)) == 40.0


def test_results_json_is_the_runners_list_of_loop_results(tmp_path):
    r = perf_result([800.0])
    r.records = [{"file": "s_00000.bin", "classes": "10", "class": "3", "bytes_to_send": None,
                  "stride": None, "total_length": None,
                  "infer": {"start_time": 1000, "end_time": 12501000, "results": [0.1, 0.9],
                            "elapsed_time": 12500000, "total_inferences": 1,
                            "iterations": 10000, "warmups": 10, "throughput": 800.0},
                  "mode": "p"}]
    tiny_results.write(tmp_path, r, [])
    assert json.loads((tmp_path / "results.json").read_text()) == r.records
