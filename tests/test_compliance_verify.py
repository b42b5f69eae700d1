"""The compliance verdicts (TEST01, TEST04) edgeperf writes, against MLCommons' own scripts.

One real submission run (ic-digits, SingleStream and Offline, with its TEST01 and TEST04
runs) is made once per session: its verify_*.txt must be what edgeperf.submission.compliance
returns for its logs, and MLCommons' compliance/TEST0x scripts (unmodified, from the pinned
mlcommons/inference commit, run as subprocesses) must print the same verdicts and numbers on
the same logs; their run_verification.py must leave the files 'submission add' lays out.
Then constructed logs (real logs from that run with their score records edited) pin each
threshold and each refusal, every one judged by both edgeperf and MLCommons' script.

The one place they differ on purpose: edgeperf's verify_accuracy compares whole outputs,
MLCommons' the first byte of each (compliance.DETERMINISTIC_NOTE).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edgeperf.cli.main import main
from edgeperf.submission.compliance import (
    DETERMINISTIC_NOTE,
    verify_accuracy,
    verify_performance_test01,
    verify_performance_test04,
)
from edgeperf.submission.layout import LOGS, VERIFY, build_scenario
from edgeperf.submission.rules import load_rules
from edgeperf.submission.runs import read_run

SCENARIOS = ("SingleStream", "Offline")
ACC_SCRIPT = "compliance/TEST01/verify_accuracy.py"
PERF_SCRIPT = {"TEST01": "compliance/TEST01/verify_performance.py",
               "TEST04": "compliance/TEST04/verify_performance.py"}
EDGEPERF_PERF = {"TEST01": verify_performance_test01, "TEST04": verify_performance_test04}
REF_LOG = {"TEST01": "mlperf_log_detail.txt", "TEST04": "mlperf_log_summary.txt"}
# what MLCommons' log_parser.py logs on stderr (merged into verify_performance.txt by
# run_verification.py); not part of what the script decides
_PARSER_LOG = re.compile(r"^\[[\d\- :,]+ log_parser\.py:\d+ (INFO|WARNING)\] ")
MLLOG = ":::MLLOG "
INVALID_VERDICTS = ("TEST FAIL: Invalid results in ",  # TEST01's, then TEST04's
                    "TEST FAIL: Reference results are invalid",
                    "TEST FAIL: Test results are invalid")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def mlc(tmp_path_factory, mlcommons_inference: tuple[str, str]) -> Path:
    """compliance/ and tools/submission/log_parser.py at the pinned commit, in their layout
    (TEST01/verify_performance.py imports ../../tools/submission/log_parser.py). Only these:
    the mirror lacks blobs of tools/submission's samples, so 'archive tools/submission'
    fails."""
    git_dir, commit = mlcommons_inference
    tar = subprocess.run(["git", "-C", git_dir, "archive", commit, "compliance",
                          "tools/submission/log_parser.py"],
                         capture_output=True, check=True).stdout
    dst = tmp_path_factory.mktemp("mlcommons")
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(dst, filter="data")
    for s in (ACC_SCRIPT, *PERF_SCRIPT.values(), "compliance/TEST01/run_verification.py",
              "compliance/TEST04/run_verification.py", "tools/submission/log_parser.py"):
        assert (dst / s).is_file(), s
    return dst


@pytest.fixture(scope="module")
def run(tmp_path_factory, host_cache_root: Path) -> Path:
    """OUT of one 'edgeperf run --mode submission' for SingleStream and Offline, made once
    for the session: the xdist workers share it (a file lock; the first makes it). Tests only
    read it. Its exit code (0, or 3 when a timing verdict fails on a loaded machine) is not
    asserted: the tests check what its files say."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "compliance-verify-run"
    done = shared / "compliance-verify-run.exit"
    with open(shared / "compliance-verify-run.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(out, ignore_errors=True)
            with pytest.MonkeyPatch.context() as mp:  # module scope: before the autouse one
                mp.setenv("EDGEPERF_CACHE", str(host_cache_root))
                mp.setenv("EDGEPERF_AGENT_CACHE", str(tmp_path_factory.mktemp("agent")))
                code = main(["run", "--task", "ic-digits", "--mode", "submission",
                             "--scenario", "SingleStream", "--scenario", "Offline",
                             "--preset", "smoke", "--min-duration", "0.5",
                             "--target-latency-ms", "0.01", "--out", str(out), "--quiet"])
            done.write_text(f"{code}\n")
    assert int(done.read_text()) in (0, 3)
    return out


# ----------------------------------------------------------------------------- helpers

def dirs(run: Path, scenario: str) -> tuple[Path, Path, Path, Path]:
    """(performance, accuracy, TEST01, TEST04) directories of a scenario of the run: the
    accuracy run is the one its performance run's record names (the one the audits read)."""
    perf = run / "performance" / scenario
    acc = Path(json.loads((perf / "result.json").read_text())["accuracy"]["run_dir"])
    assert acc.is_relative_to(run / "accuracy"), acc
    return perf, acc, run / "TEST01" / scenario, run / "TEST04" / scenario


def mlc_run(mlc: Path, script: str, *args, cwd: Path | None = None) -> str:
    """What the script says: its stdout, then its stderr (sys.exit's messages) without
    log_parser's logging lines."""
    p = subprocess.run([sys.executable, str(mlc / script), *map(str, args)],
                       capture_output=True, text=True, cwd=cwd, timeout=120)
    return p.stdout + no_parser_log(p.stderr)


def no_parser_log(text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if not _PARSER_LOG.match(ln))


def passes(text: str) -> bool:
    """The verdict as MLCommons' run_verification.py reads a verify_*.txt."""
    return "TEST PASS" in text


def counters(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^(num_\w+) = (\d+)$", text, re.M)}


def without_note(text: str) -> str:
    lines = text.splitlines(keepends=True)
    notes = [ln for ln in lines if ln.startswith("#")]
    assert notes == [f"# {DETERMINISTIC_NOTE}\n"], notes
    return "".join(ln for ln in lines if not ln.startswith("#"))


def perf_agree(mlc: Path, test: str, ref: Path, tst: Path) -> tuple[str, bool]:
    """edgeperf's verify_performance.txt for (ref, tst), asserted to be word for word what
    MLCommons' script says on the same files, and to carry the same verdict."""
    text, ok = EDGEPERF_PERF[test](ref, tst)
    theirs = mlc_run(mlc, PERF_SCRIPT[test], "-r", ref, "-t", tst)
    assert text == theirs
    assert ok is passes(theirs)
    return text, ok


def set_record(path: Path, key: str, value) -> None:
    """Give the first record of ``key`` in a detail log ``value`` (the one both read); one
    is appended, shaped as result_validity's, when the log has none."""
    lines = path.read_text().splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if f'"key": "{key}"' in ln:
            ev = json.loads(ln[len(MLLOG):])
            ev["value"] = value
            lines[i] = MLLOG + json.dumps(ev) + "\n"
            break
    else:
        tmpl = next(ln for ln in lines if '"key": "result_validity"' in ln)
        ev = json.loads(tmpl[len(MLLOG):])
        ev.update(key=key, value=value)
        lines.append(MLLOG + json.dumps(ev) + "\n")
    path.write_text("".join(lines))


def set_line(path: Path, prefix: str, line: str) -> None:
    """Replace the one line of a summary log that starts with ``prefix``."""
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, ln in enumerate(lines) if ln.startswith(prefix)]
    assert len(hits) == 1, (prefix, hits)
    lines[hits[0]] = line + "\n"
    path.write_text("".join(lines))


# ----------------------------------------------------------------- 1. the real run

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_verify_files_are_what_compliance_returns_for_the_runs_logs(
        run: Path, scenario: str) -> None:
    perf, acc, t01, t04 = dirs(run, scenario)
    a_text, a_ok = verify_accuracy(acc / "mlperf_log_accuracy.json",
                                   t01 / "mlperf_log_accuracy.json")
    p1_text, p1_ok = verify_performance_test01(perf / "mlperf_log_detail.txt",
                                               t01 / "mlperf_log_detail.txt")
    p4_text, p4_ok = verify_performance_test04(perf / "mlperf_log_summary.txt",
                                               t04 / "mlperf_log_summary.txt")
    assert (t01 / "verify_accuracy.txt").read_text() == a_text
    assert (t01 / "verify_performance.txt").read_text() == p1_text
    assert (t04 / "verify_performance.txt").read_text() == p4_text
    assert sorted(p.name for p in t01.glob("verify_*.txt")) == sorted(VERIFY["TEST01"])
    assert sorted(p.name for p in t04.glob("verify_*.txt")) == sorted(VERIFY["TEST04"])
    # the verdicts the run recorded are these files' verdicts
    audits = json.loads((perf / "result.json").read_text())["compliance_audits"]
    assert audits["TEST01"]["accuracy_pass"] is a_ok
    assert audits["TEST01"]["performance_pass"] is p1_ok
    assert audits["TEST01"]["verify_performance"] == p1_text.splitlines()[-1]
    assert audits["TEST01"]["passed"] is (a_ok and p1_ok)
    assert audits["TEST04"]["performance_pass"] is p4_ok
    assert audits["TEST04"]["verify_performance"] == p4_text.splitlines()[-1]
    assert audits["TEST04"]["passed"] is p4_ok
    assert audits["TEST01"]["dir"] == str(t01) and audits["TEST04"]["dir"] == str(t04)
    for test, d in (("TEST01", t01), ("TEST04", t04)):
        rec = json.loads((d / "result.json").read_text())
        assert rec["compliance"] == test.lower()
        # the verdict itself (not run_exit_code: the audit run's own record is written
        # before that key joins the performance run's, see the report)
        verdict = ("dir", "passed", "performance_pass", "verify_performance", "accuracy_pass")
        assert {k: rec["compliance_verdict"].get(k) for k in verdict} == \
            {k: audits[test].get(k) for k in verdict}
    # what LoadGen sampled for TEST01 is in its accuracy log; the accuracy run has all 360
    sampled = json.loads((t01 / "mlperf_log_accuracy.json").read_text())
    assert len(json.loads((acc / "mlperf_log_accuracy.json").read_text())) == 360
    assert len(sampled) > 0
    assert counters(a_text) == {
        "num_acc_log_entries": 360, "num_acc_log_duplicate_keys": 0,
        "num_acc_log_data_mismatch": 0, "num_perf_log_entries": len(sampled),
        "num_perf_log_qsl_idx_match": len(sampled), "num_perf_log_data_mismatch": 0,
        "num_missing_qsl_idxs": 0}
    assert a_ok is True  # the same model on the same inputs: every output the same


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mlcommons_scripts_print_the_same_verdicts_and_numbers_on_the_run(
        run: Path, mlc: Path, scenario: str) -> None:
    perf, acc, t01, t04 = dirs(run, scenario)
    ours = (t01 / "verify_accuracy.txt").read_text()
    theirs = mlc_run(mlc, ACC_SCRIPT, "-r", acc / "mlperf_log_accuracy.json",
                     "-t", t01 / "mlperf_log_accuracy.json")
    assert counters(theirs) == counters(ours) and len(counters(ours)) == 7
    assert passes(theirs) is passes(ours) is True
    assert theirs == without_note(ours)  # the rest word for word
    for test, d in (("TEST01", t01), ("TEST04", t04)):
        ours = (d / "verify_performance.txt").read_text()
        theirs = mlc_run(mlc, PERF_SCRIPT[test], "-r", perf / REF_LOG[test],
                         "-t", d / REF_LOG[test])
        assert passes(theirs) is passes(ours)
        score = r"(Reference|reference) score = |(Test|test) score = "
        assert [ln for ln in theirs.splitlines() if re.match(score, ln)] == \
            [ln for ln in ours.splitlines() if re.match(score, ln)]
        # the numbers, unless a loaded machine made a run INVALID (then neither prints any)
        assert len([ln for ln in ours.splitlines() if re.match(score, ln)]) == 2 or \
            ours.splitlines()[-1].startswith(INVALID_VERDICTS), ours
        assert theirs == ours


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mlcommons_run_verification_leaves_the_files_submission_add_lays_out(
        run: Path, mlc: Path, tmp_path: Path, scenario: str) -> None:
    perf, acc, _, _ = dirs(run, scenario)
    # results_dir as MLCommons' scripts read it: accuracy/ and performance/run_1/
    results = tmp_path / "results" / scenario
    (results / "accuracy").mkdir(parents=True)
    shutil.copy2(acc / "mlperf_log_accuracy.json", results / "accuracy")
    (results / "performance" / "run_1").mkdir(parents=True)
    for f in LOGS:
        shutil.copy2(perf / f, results / "performance" / "run_1")
    out = tmp_path / "mlcommons-out" / scenario
    said = {}
    for test in VERIFY:
        cwd = tmp_path / f"cwd-{test}"  # run_verification.py writes verify_*.txt in cwd
        cwd.mkdir()
        said[test] = mlc_run(mlc, f"compliance/{test}/run_verification.py", "-r", results,
                             "-c", run / test / scenario, "-o", out, cwd=cwd)
        assert f"{test} verification complete" in said[test], said[test]
    # the scenario directory 'submission add' builds from the same runs
    rules = load_rules()
    tests = {t: read_run(run / t / scenario) for t in VERIFY}
    assert {t: r.kind for t, r in tests.items()} == {"TEST01": "TEST01", "TEST04": "TEST04"}
    ep = tmp_path / "edgeperf" / scenario
    build_scenario(ep, rules, rules.benchmark("ic-digits"), read_run(perf), read_run(acc),
                   tests, {}, "")
    expected = {"TEST01": ["accuracy/mlperf_log_accuracy.json", *sorted(
                    f"performance/run_1/{f}" for f in LOGS), *sorted(VERIFY["TEST01"])],
                "TEST04": [*sorted(f"performance/run_1/{f}" for f in LOGS),
                           *sorted(VERIFY["TEST04"])]}
    for test in VERIFY:
        assert _files(out / test) == _files(ep / test) == sorted(expected[test])
        for f in _files(ep / test):  # the runs' logs, copied as they are
            if not f.startswith("verify_"):
                assert (out / test / f).read_bytes() == (ep / test / f).read_bytes(), f
    # MLCommons' verify files carry edgeperf's verdicts and numbers
    ours = {t: {f: (ep / t / f).read_text() for f in VERIFY[t]} for t in VERIFY}
    # (a message naming the reference log names it where each script was given it)
    theirs = {t: {f: no_parser_log((out / t / f).read_text()).replace(
                      f"{results}/performance/run_1/", f"{perf}/") for f in VERIFY[t]}
              for t in VERIFY}
    for t in VERIFY:
        for f in VERIFY[t]:
            assert passes(theirs[t][f]) is passes(ours[t][f]), (t, f)
            assert (theirs[t][f] == ours[t][f]) if f == "verify_performance.txt" else \
                (theirs[t][f] == without_note(ours[t][f])), (t, f, theirs[t][f])
    audits = json.loads((perf / "result.json").read_text())["compliance_audits"]
    assert f"Accuracy check pass: {audits['TEST01']['accuracy_pass']}" in said["TEST01"]
    assert f"Performance check pass: {audits['TEST01']['performance_pass']}" \
        in said["TEST01"]
    assert f"Performance check pass: {audits['TEST04']['performance_pass']}" \
        in said["TEST04"]


# ----------------------------------------------------- 2. thresholds, constructed logs

def _copies(run: Path, tmp_path: Path, scenario: str, test: str, log: str
            ) -> tuple[Path, Path]:
    """Copies of the real performance run's ``log`` and its ``test`` run's, to be edited as
    ``scenario`` (MultiStream from SingleStream's logs, Server from Offline's)."""
    src = {"SingleStream": "SingleStream", "MultiStream": "SingleStream",
           "Offline": "Offline", "Server": "Offline"}[scenario]
    tmp_path.mkdir(exist_ok=True)
    ref, tst = tmp_path / f"ref_{log}", tmp_path / f"test_{log}"
    shutil.copy(run / "performance" / src / log, ref)
    shutil.copy(run / test / src / log, tst)
    return ref, tst


def _detail_pair(run: Path, tmp_path: Path, scenario: str) -> tuple[Path, Path]:
    """Copies of a real performance run's detail log and its TEST01 run's, as ``scenario``:
    MultiStream from SingleStream's logs (they hold early_stopping_latency_ms), Server from
    Offline's."""
    ref, tst = _copies(run, tmp_path, scenario, "TEST01", "mlperf_log_detail.txt")
    for p in (ref, tst):  # a loaded machine may have made the real run INVALID
        set_record(p, "result_validity", "VALID")
        if scenario in ("MultiStream", "Server"):  # edited from the other one's logs
            set_record(p, "effective_scenario", scenario)
    return ref, tst


_FIELD01 = {"SingleStream": "early_stopping_latency_ss",
            "MultiStream": "early_stopping_latency_ms",
            "Offline": "result_samples_per_second",
            "Server": "result_completed_samples_per_sec"}

# (scenario, reference score, test score, passes): two-sided, 20% for SingleStream at most
# 200000 ns and MultiStream at most 1600000 ns, 10% otherwise; the bounds are inclusive
TEST01_CASES = [
    ("SingleStream", 200000, 240000, True),   # 20%: ref <= 200000
    ("SingleStream", 200000, 240001, False),
    ("SingleStream", 200000, 160000, True),
    ("SingleStream", 200000, 159999, False),
    ("SingleStream", 200001, 220001, True),   # 10%: ref > 200000 (220001.1)
    ("SingleStream", 200001, 220002, False),
    ("SingleStream", 200001, 240000, False),  # what 20% would let through
    ("SingleStream", 200001, 180001, True),   # 180000.9
    ("SingleStream", 200001, 180000, False),
    ("MultiStream", 1600000, 1920000, True),  # 20%: ref <= 1600000
    ("MultiStream", 1600000, 1920001, False),
    ("MultiStream", 1600000, 1280000, True),
    ("MultiStream", 1600000, 1279999, False),
    ("MultiStream", 1600001, 1760001, True),  # 10%: 1760001.1
    ("MultiStream", 1600001, 1760002, False),
    ("MultiStream", 1600001, 1440001, True),  # 1440000.9
    ("MultiStream", 1600001, 1440000, False),
    ("Offline", 100.0, 110.0, True),          # 10% however small (110.00000000000001)
    ("Offline", 100.0, 115.0, False),
    ("Offline", 100.0, 90.0, True),
    ("Offline", 100.0, 89.99, False),
    ("Server", 1000.0, 1100.0, True),         # 1000 * 1.1 == 1100.0
    ("Server", 1000.0, 1100.01, False),
    ("Server", 1000.0, 899.99, False),
]


@pytest.mark.parametrize("scenario,ref_score,test_score,ok", TEST01_CASES)
def test_test01_thresholds(run: Path, mlc: Path, tmp_path: Path, scenario: str,
                           ref_score: float, test_score: float, ok: bool) -> None:
    ref, tst = _detail_pair(run, tmp_path, scenario)
    set_record(ref, _FIELD01[scenario], ref_score)
    set_record(tst, _FIELD01[scenario], test_score)
    if scenario == "Server":
        for p in (ref, tst):
            set_record(p, "effective_target_latency_ns", 100000000)
    text, passed = perf_agree(mlc, "TEST01", ref, tst)
    assert passed is ok
    assert text == (f"Verifying performance.\nReference score = {float(ref_score)}\n"
                    f"Test score = {float(test_score)}\n"
                    f"{'TEST PASS' if ok else 'TEST FAIL: Test score invalid'}\n")


@pytest.mark.parametrize("which", ["reference", "test"])
def test_test01_invalid_run_fails(run: Path, mlc: Path, tmp_path: Path, which: str) -> None:
    ref, tst = _detail_pair(run, tmp_path, "SingleStream")
    for p in (ref, tst):
        set_record(p, "early_stopping_latency_ss", 100000)
    bad = ref if which == "reference" else tst
    set_record(bad, "result_validity", "INVALID")
    text, passed = perf_agree(mlc, "TEST01", ref, tst)
    assert passed is False
    assert text == f"Verifying performance.\nTEST FAIL: Invalid results in {bad}\n"


def test_test01_server_target_latency_mismatch_fails(run: Path, mlc: Path,
                                                     tmp_path: Path) -> None:
    ref, tst = _detail_pair(run, tmp_path, "Server")
    for p in (ref, tst):
        set_record(p, "result_completed_samples_per_sec", 1000.0)  # the same score
    set_record(ref, "effective_target_latency_ns", 100000000)
    set_record(tst, "effective_target_latency_ns", 50000000)
    text, passed = perf_agree(mlc, "TEST01", ref, tst)
    assert passed is False
    assert text == "Verifying performance.\nTEST FAIL: Server target latency mismatch\n"


def test_test01_scenario_mismatch_fails(run: Path, mlc: Path, tmp_path: Path) -> None:
    ref, _ = _detail_pair(run, tmp_path, "SingleStream")
    _, tst = _detail_pair(run, tmp_path / "off", "Offline")
    text, passed = perf_agree(mlc, "TEST01", ref, tst)
    assert passed is False
    assert text == ("Verifying performance.\n"
                    "TEST FAIL: Test and reference scenarios do not match!\n")


def _summary_pair(run: Path, tmp_path: Path, scenario: str) -> tuple[Path, Path]:
    ref, tst = _copies(run, tmp_path, scenario, "TEST04", "mlperf_log_summary.txt")
    for p in (ref, tst):
        set_line(p, "Result is : ", "Result is : VALID")
        if scenario in ("MultiStream", "Server"):  # edited from the other one's logs
            set_line(p, "Scenario : ", f"Scenario : {scenario}")
        if scenario == "Server":  # LoadGen's Server line for its score
            set_line(p, "Samples per second: ", "Completed samples per second    : 0")
    return ref, tst


def _set_summary_score(p: Path, scenario: str, value: str) -> None:
    prefix, line = {
        "SingleStream": (" * Early stopping 90.0th percentile estimate: ",
                         " * Early stopping 90.0th percentile estimate: {}"),
        "MultiStream": (" * Early stopping 99.0th percentile estimate: ",
                        " * Early stopping 99.0th percentile estimate: {}"),
        "Offline": ("Samples per second: ", "Samples per second: {}"),
        "Server": ("Completed samples per second", "Completed samples per second    : {}"),
    }[scenario]
    set_line(p, prefix, line.format(value))


# (scenario, reference's line, test's line, passes): one-sided (the test may not be faster
# by the threshold; slower always passes); SingleStream/MultiStream latencies become rates
# 1e9/latency and the 20% threshold applies when that rate is at most 200000 (SingleStream,
# latency >= 5000 ns) or 1600000 (MultiStream, latency >= 625 ns)
TEST04_CASES = [
    ("SingleStream", "5000", "4167", True),    # rate 200000.0: 20%, bound 240000.0
    ("SingleStream", "5000", "4166", False),   # 240038.4
    ("SingleStream", "5000", "1000000", True),  # much slower: one-sided
    ("SingleStream", "4999", "4545", True),    # rate 200040.008: 10%, bound 220044.0088
    ("SingleStream", "4999", "4544", False),   # 220070.4
    ("SingleStream", "4999", "4167", False),   # what 20% would let through
    ("MultiStream", "625", "521", True),       # rate 1600000.0: 20%, bound 1920000.0
    ("MultiStream", "625", "520", False),      # 1923076.9
    ("MultiStream", "624", "568", True),       # rate 1602564.1: 10%, bound 1762820.5
    ("MultiStream", "624", "567", False),      # 1763668.4
    ("Offline", "1000", "1099.99", True),      # rates as written; bound 1100.0, exclusive
    ("Offline", "1000", "1100", False),
    ("Offline", "100", "115", False),          # 10% however small
    ("Offline", "1000", "10", True),
    ("Server", "1000", "1099", True),
    ("Server", "1000", "1100.5", False),
]


@pytest.mark.parametrize("scenario,ref_line,test_line,ok", TEST04_CASES)
def test_test04_thresholds(run: Path, mlc: Path, tmp_path: Path, scenario: str,
                           ref_line: str, test_line: str, ok: bool) -> None:
    ref, tst = _summary_pair(run, tmp_path, scenario)
    _set_summary_score(ref, scenario, ref_line)
    _set_summary_score(tst, scenario, test_line)
    text, passed = perf_agree(mlc, "TEST04", ref, tst)
    assert passed is ok
    rate = (lambda v: 1e9 / float(v)) if scenario in ("SingleStream", "MultiStream") else str
    assert text == (f"Verifying performance.\nreference score = {rate(ref_line)}\n"
                    f"test score = {rate(test_line)}\n"
                    f"{'TEST PASS' if ok else 'TEST FAIL: Test score invalid'}\n")


def test_test04_rate_conversion_is_printed_as_a_rate(run: Path, mlc: Path,
                                                     tmp_path: Path) -> None:
    ref, tst = _summary_pair(run, tmp_path, "SingleStream")
    _set_summary_score(ref, "SingleStream", "5000")
    _set_summary_score(tst, "SingleStream", "8000")
    text, _ = perf_agree(mlc, "TEST04", ref, tst)
    assert text.splitlines()[1:] == ["reference score = 200000.0", "test score = 125000.0",
                                     "TEST PASS"]


@pytest.mark.parametrize("which", ["reference", "test"])
def test_test04_invalid_run_fails(run: Path, mlc: Path, tmp_path: Path, which: str) -> None:
    ref, tst = _summary_pair(run, tmp_path, "Offline")
    _set_summary_score(ref, "Offline", "1000")
    _set_summary_score(tst, "Offline", "1000")
    set_line(ref if which == "reference" else tst, "Result is : ", "Result is : INVALID")
    text, passed = perf_agree(mlc, "TEST04", ref, tst)
    assert passed is False
    name = "Reference" if which == "reference" else "Test"
    assert text == f"Verifying performance.\nTEST FAIL: {name} results are invalid\n"


def test_test04_scenario_mismatch_fails(run: Path, mlc: Path, tmp_path: Path) -> None:
    ref, _ = _summary_pair(run, tmp_path, "SingleStream")
    _, tst = _summary_pair(run, tmp_path / "off", "Offline")
    text, passed = perf_agree(mlc, "TEST04", ref, tst)
    assert passed is False
    assert text == "Verifying performance.\nTest and reference scenarios do not match!\n"


# ------------------------------------------------- 3. verify_accuracy, constructed logs

A, B, C, D, E = ("80808080807F80808080", "807F8080808080808080", "8080808080807F808080",
                 "808080807F8080808080", "7F808080808080808080")
FIRST_BYTE = "7F" + C[2:]        # C with its first byte changed
AFTER_FIRST = C[:2] + "81" + C[4:]  # C with only its second byte changed


def _write_acc(path: Path, entries: list[tuple[int, str]]) -> Path:
    """An mlperf_log_accuracy.json as LoadGen writes it."""
    body = ",\n".join('{ "seq_id" : %d, "qsl_idx" : %d, "data" : "%s" }' % (i, q, d)
                      for i, (q, d) in enumerate(entries))
    path.write_text("[\n" + body + ("\n" if entries else "") + "]\n")
    return path


def _counts(acc, dup, acc_mis, perf, match, mis, missing) -> dict[str, int]:
    return {"num_acc_log_entries": acc, "num_acc_log_duplicate_keys": dup,
            "num_acc_log_data_mismatch": acc_mis, "num_perf_log_entries": perf,
            "num_perf_log_qsl_idx_match": match, "num_perf_log_data_mismatch": mis,
            "num_missing_qsl_idxs": missing}


ACC4 = [(0, A), (1, B), (2, C), (3, D)]
# name: (accuracy log, performance log, edgeperf's counts, edgeperf passes)
ACCURACY_CASES = {
    "all-equal": (ACC4, [(1, B), (3, D), (1, B)], _counts(4, 0, 0, 3, 3, 0, 0), True),
    "lowercase-hex": (ACC4, [(2, C.lower())], _counts(4, 0, 0, 1, 1, 0, 0), True),
    "one-differs": (ACC4, [(0, A), (2, FIRST_BYTE), (3, D)], _counts(4, 0, 0, 3, 3, 1, 0),
                    False),
    "duplicates": ([(0, A), (1, B), (1, B), (2, C), (2, FIRST_BYTE)],
                   [(1, B), (1, B), (2, C), (0, A)], _counts(5, 2, 1, 4, 4, 0, 0), True),
    # a later duplicate is compared with the earlier performance-log output
    "perf-duplicate-differs": (ACC4, [(1, B), (1, E)], _counts(4, 0, 0, 2, 2, 1, 0), False),
    # a qsl_idx the accuracy log lacks: counted, then its output is what a repeat compares to
    "missing-qsl-idx": ([(0, A), (1, B)], [(0, A), (5, E), (5, E)],
                        _counts(2, 0, 0, 3, 2, 0, 1), True),
    "only-missing": ([(0, A), (1, B)], [(5, E)], _counts(2, 0, 0, 1, 0, 0, 1), False),
    "empty-performance-log": (ACC4, [], _counts(4, 0, 0, 0, 0, 0, 0), False),
}


@pytest.mark.parametrize("name", list(ACCURACY_CASES))
def test_verify_accuracy_agrees_with_mlcommons(mlc: Path, tmp_path: Path, name: str) -> None:
    acc_entries, perf_entries, expected, ok = ACCURACY_CASES[name]
    acc = _write_acc(tmp_path / "acc.json", acc_entries)
    perf = _write_acc(tmp_path / "perf.json", perf_entries)
    text, passed = verify_accuracy(acc, perf)
    theirs = mlc_run(mlc, ACC_SCRIPT, "-r", acc, "-t", perf)
    assert counters(text) == expected
    assert passed is ok
    assert text.rstrip().splitlines()[-1] == ("TEST PASS" if ok else "TEST FAIL")
    assert counters(theirs) == expected
    assert passes(theirs) is ok
    assert theirs == without_note(text)


def test_difference_after_the_first_byte_fails_edgeperf_only(mlc: Path,
                                                              tmp_path: Path) -> None:
    """The documented stricter check: MLCommons' script compares the first byte (dtype
    byte) and passes; edgeperf compares the whole output and fails."""
    acc = _write_acc(tmp_path / "acc.json", ACC4)
    perf = _write_acc(tmp_path / "perf.json", [(0, A), (2, AFTER_FIRST), (3, D)])
    text, passed = verify_accuracy(acc, perf)
    theirs = mlc_run(mlc, ACC_SCRIPT, "-r", acc, "-t", perf)
    assert passed is False and text.rstrip().splitlines()[-1] == "TEST FAIL"
    assert counters(text) == _counts(4, 0, 0, 3, 3, 1, 0)
    assert passes(theirs) is True
    assert counters(theirs) == _counts(4, 0, 0, 3, 3, 0, 0)
    # and nothing else differs
    assert theirs == without_note(text).replace("num_perf_log_data_mismatch = 1",
                                                "num_perf_log_data_mismatch = 0") \
        .replace("TEST FAIL", "TEST PASS")
