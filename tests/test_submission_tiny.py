"""MLPerf Tiny submissions end to end: real runs of the emulated Tiny board (ic01 on ic-digits)
laid out with 'edgeperf submission init' + 'add' as Tiny's tree, checked by 'edgeperf
submission check' and by MLCommons' own Tiny checker (mlcommons/tiny
tools/submission/submission_checker.py at the commit the rules file cites, run unmodified
from a 'git archive' export), then broken on purpose in copies.

The runs: accuracy (every sample, Top-1 350/360 = 97.2%) and performance (5 windows of 11000
inferences of 1000 virtual us: 1000.000 inf./sec.) meet Tiny's rules, so both an open and a
closed tree pass both checkers. Energy cannot be VALID quickly: the emulated bench plays its
windows to the emulated LPM01A in real time and Tiny needs 5 windows of >= 10 s (about a
minute), so the energy run here has windows of 0.2 s and is INVALID by Tiny's 10 s window
minimum; its refusal is tested. A below-target accuracy is a real run too: the same DUT
with its results replaced by class 0 (38 of the 360 digits are zeros: 10.6%).

Facts about Tiny's checker the tests pin (v1.4 at 1afd2c98):
- its process exits 0 whatever it finds (``sys.exit(main_result)`` is commented out): its
  verdict is the "SUMMARY:" log line and "function main() returned N" on stdout; a crash
  (missing ``Status``, an unknown benchmark directory in open, a ``system_type``) exits 1;
- it does not catch an edited figure in results.txt (it reads any number), nor, in open, a
  missing or below-target accuracy (open takes it); edgeperf catches the edit by its manifest.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import edgeperf
from edgeperf.cli.main import main
from edgeperf.submission.manifest import write_manifest
from edgeperf_firmware.emulated_dut import EmulatedDut

TINY_COMMIT = "1afd2c9820f795965a6134facd0b4dfae41ef23f"  # rules/v6.1.toml's "TC:"
ORG, SYSTEM = "EdgeOrg", "emu-tiny"
BOARD_NAME = "edgeperf-emulated-dut (ic01)"
HW_NOTES = "pure-Python emulated DUT on a pty, virtual clock"
STAMP = r"\d{4}\.\d{6} ulp-mlperf: "  # the runner's "%m%d.%H%M%S ulp-mlperf: " prefix
RULE = "-" * 57
ALWAYS_ZERO = "m-results-[" + ",".join(["1.000"] + ["0.000"] * 9) + "]"
MANIFEST_FIX = "; if the change is meant, write the manifest again (edgeperf submission add)"
TINY_TOOLS = "scripts/tiny_tools.sh"


# ---------------------------------------------------------------- MLCommons' Tiny checker
@pytest.fixture(scope="module")
def tiny_checker(tmp_path_factory, mlcommons_tiny) -> tuple[str, Path]:
    """(python, submission_checker.py): the checker exported unmodified from the git dir, and
    a Python that has pandas, which it imports ($MLCOMMONS_TINY_PYTHON, else this one)."""
    git_dir, commit = mlcommons_tiny
    dest = tmp_path_factory.mktemp("mlcommons-tiny")
    # git -C, not --git-dir: the git dir may be a bare mirror or a clone's work tree
    subprocess.run(["bash", "-c", 'set -o pipefail; git -C "$1" archive "$2" '
                    'tools/submission | tar -x -C "$3"', "_", git_dir, commit, str(dest)],
                   check=True, capture_output=True)
    script = dest / "tools" / "submission" / "submission_checker.py"
    blob = subprocess.run(["git", "-C", git_dir, "rev-parse",
                           f"{commit}:tools/submission/submission_checker.py"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert subprocess.run(["git", "hash-object", str(script)], capture_output=True, text=True,
                          check=True).stdout.strip() == blob  # unmodified
    python = os.environ.get("MLCOMMONS_TINY_PYTHON") or sys.executable
    if subprocess.run([python, "-c", "import pandas"], capture_output=True).returncode != 0:
        pytest.fail(f"{python} cannot import pandas, which MLCommons' Tiny checker needs: run "
                    f"{TINY_TOOLS} (it installs it), or set MLCOMMONS_TINY_PYTHON to a Python "
                    f"that has it", pytrace=False)
    return python, script


@dataclass
class TinyVerdict:
    rc: int
    returned: str | None  # "0" or "1" from its "function main() returned N"; None: it crashed
    log: list[str]  # its logging lines (LEVEL:main:...), in order
    rows: list[dict[str, str]]  # summary.csv
    stderr: str

    @property
    def crash(self) -> str:
        """The exception a crashed run ended with (the traceback's last line)."""
        return self.stderr.strip().splitlines()[-1]


def run_tiny(tiny_checker: tuple[str, Path], tree: Path, work: Path) -> TinyVerdict:
    python, script = tiny_checker
    work.mkdir()
    r = subprocess.run([python, str(script), "--input", str(tree.resolve())], cwd=work,
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"^function main\(\) returned (\d+)$", r.stdout, re.M)
    log = [ln for ln in r.stderr.splitlines()
           if re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):main:", ln)]
    summary = work / "summary.csv"
    text = summary.read_text() if summary.is_file() else ""
    rows = list(csv.DictReader(io.StringIO(text))) if text else []
    return TinyVerdict(r.returncode, m[1] if m else None, log, rows, r.stderr)


def tiny_ok_log(division: str, result: str = "1000.0") -> list[str]:
    return ["INFO:main:---", f"INFO:main:Results {division}/{ORG}/results/{SYSTEM}/ic {result}",
            "INFO:main:---", "INFO:main:---", "INFO:main:Results=1, NoResults=0",
            "INFO:main:SUMMARY: submission looks OK"]


def tiny_row(division: str, result: str = "1000.0", accuracy: str = "97.2") -> dict[str, str]:
    row = dict.fromkeys(
        ["HostProcessorModelName", "HostProcessorFrequency", "HostProcessorMemory",
         "AcceleratorModelName", "AcceleratorFrequency", "AcceleratorMemory",
         "InferenceFramework", "SoftwareLibraries", "FalsePositives", "FalseNegatives",
         "DutyCycle"], "")
    row.update({"Organization": ORG, "Availability": "available", "Division": division,
                "BoardName": BOARD_NAME, "SystemDesc": SYSTEM, "Model": "ic",
                "MlperfModel": "ic", "Result": result, "ResultUnit": "inf./sec.",
                "Accuracy": accuracy, "HasPower": "False", "Power": "0", "PowerUnit": "uJ/inf.",
                "HardwareNotes": HW_NOTES,
                "SoftwareNotes": f"edgeperf {edgeperf.__version__}, DUT edgeperf-emulated-dut "
                                 f"ic01"})
    return row


# ---------------------------------------------------------------- the runs
@dataclass
class Runs:
    dirs: dict[str, Path]
    codes: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, host_cache_root) -> Runs:
    """The emulated Tiny board's runs, through 'edgeperf run' (in this process)."""
    base = tmp_path_factory.mktemp("tiny-runs")
    out = Runs({k: base / k for k in ("accuracy", "performance", "energy", "low-accuracy")})
    board = ["run", "--board", "emulated-tiny", "--quiet"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPERF_CACHE", str(host_cache_root))
        out.codes["accuracy"] = main([*board, "--task", "ic-digits", "--mode", "accuracy",
                                      "--out", str(out.dirs["accuracy"])])
        out.codes["performance"] = main([*board, "--mode", "performance",
                                         "--out", str(out.dirs["performance"])])
        out.codes["energy"] = main([*board, "--mode", "energy", "--tiny-window-s", "0.2",
                                    "--out", str(out.dirs["energy"])])
        with EmulatedDut(infer_us=1000) as dut:  # the same DUT, every result class 0
            dut.malformed = {"m-results-": ALWAYS_ZERO}
            out.codes["low-accuracy"] = main([*board, "--port", dut.path, "--mode", "accuracy",
                                              "--out", str(out.dirs["low-accuracy"])])
    return out


def record(runs: Runs, name: str) -> dict:
    return json.loads((runs.dirs[name] / "result.json").read_text())


def stamp_of(text: str) -> str:
    m = re.match(STAMP, text)
    assert m, text[:80]
    return m[0]


def test_the_runs_and_the_tiny_files_they_write(runs: Runs) -> None:
    assert runs.codes == {"accuracy": 0, "performance": 0, "energy": 3, "low-accuracy": 3}
    for name in runs.dirs:
        assert {"result.json", "log.txt", "results.txt", "results.json"} <= {
            p.name for p in runs.dirs[name].iterdir()}
    acc, perf = record(runs, "accuracy"), record(runs, "performance")
    assert (acc["result"], acc["value"], acc["unit"], acc["sut_name"]) == (
        "VALID", 350 / 360, "top1", BOARD_NAME)
    assert (perf["result"], perf["value"], perf["unit"]) == ("VALID", 1000.0, "inf./sec.")
    assert [(w["n"], w["seconds"]) for w in perf["procedure"]["windows"]] == [(11000, 11.0)] * 5

    text = (runs.dirs["accuracy"] / "results.txt").read_text()
    p = stamp_of(text)
    assert text == f"{p}Top 1% = 97.2\n{p}AUC = 0.998\n"
    text = (runs.dirs["performance"] / "results.txt").read_text()
    windows = [f"Performance results for window {i}\n    # Inferences : 11000\n"
               "    Runtime: 11.0 sec.\n    Throughput: 1000.0 inf./sec.\n"
               "    Runtime requirements have been met.\n" for i in range(1, 6)]
    p = stamp_of(text.splitlines()[-1])
    assert text == "".join(windows) + (f"{p}{RULE}\n{p}Median throughput is   1000.000 "
                                       f"inf./sec.\n{p}{RULE}\n")

    low = record(runs, "low-accuracy")  # the procedure held; the target did not
    assert (low["result"], low["value"], low["exit_code"]) == ("VALID", 38 / 360, 3)
    assert low["board"]["name"] == "emulated-tiny" and low["sut_name"] == BOARD_NAME
    text = (runs.dirs["low-accuracy"] / "results.txt").read_text()
    p = stamp_of(text)
    assert text == f"{p}Top 1% = 10.6\n{p}AUC = 0.500\n"


def test_a_short_energy_run_is_invalid_by_the_10_s_window_rule(runs: Runs) -> None:
    """5 windows of 0.2 s into the emulated LPM01A (10 mW): measured, and refused by Tiny's
    rule that every window runs >= 10 s, in result.json and in the runner's results.txt."""
    rec = record(runs, "energy")
    assert (rec["result"], rec["exit_code"], rec["unit"]) == ("INVALID", 3, "uJ/inf.")
    windows = rec["procedure"]["windows"]
    assert len(windows) == 5
    # under 10 s (one digit before the point), however long a loaded machine made them
    why = r"window {} ran \d\.\d{{3}} s of inference, under MLPerf Tiny's minimum of 10 s a window"
    assert len(rec["reasons"]) == 5
    for i, reason in enumerate(rec["reasons"], 1):
        assert re.fullmatch(why.format(i), reason), reason
    for w in windows:  # 10 uJ a 1 ms sample, between the last two timestamp events
        samples = w["events"][-1] - w["events"][-2]
        assert w["seconds"] == pytest.approx(samples / 1000, rel=1e-12)  # samples x 1 ms, in floats
        assert w["energy_per_inf_uj"] == pytest.approx(10.0 * samples / w["n"], rel=1e-9)
    text = (runs.dirs["energy"] / "results.txt").read_text()
    trial = (r"Energy data for trial {}\n  Elapsed time  : \d\.\d+  <<<< below minimum duration\n"
             r"  Inferences    : \d+\n  Power         : \d+\.\d{{4}} mW\.\n"
             r"  Total Energy  : \d+\.\d{{3}} uJ\n  Energy/Inf    : \d+\.\d{{3}} uJ/inf\n")
    pattern = ("Power Edition Output\n" + "".join(trial.format(i) for i in range(5)) + RULE
               + "\nERROR: Not valid for submission.  All inference times must be at least 10 "
               "seconds.\n" + "".join(f"ERROR - {why.format(i)}\n" for i in range(1, 6))
               + RULE + "\n")
    assert re.fullmatch(pattern, text), text
    assert "Median energy cost" not in text


# ---------------------------------------------------------------- the trees
def quiet_main(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def make_tree(root: Path, division: str, run_dirs: list[Path]) -> str:
    toml = root.parent / f"{root.name}-system.toml"
    toml.write_text(f'[system]\nStatus = "available"\n"Hardware Notes" = "{HW_NOTES}"\n')
    code, out = quiet_main(["submission", "init", "--org", ORG, "--division", division,
                            "--system-toml", str(toml), str(root)])
    assert code == 0, out
    code, out = quiet_main(["submission", "add", str(root), *map(str, run_dirs),
                            "--system", SYSTEM, "--benchmark", "ic01"])
    assert code == 0, out
    return out


@pytest.fixture(scope="module")
def trees(tmp_path_factory, runs: Runs) -> dict[str, Path]:
    """An open and a closed tree of the accuracy and performance runs (never modified)."""
    base = tmp_path_factory.mktemp("tiny-trees")
    out = {}
    for division in ("open", "closed"):
        added = make_tree(base / division, division,
                          [runs.dirs["accuracy"], runs.dirs["performance"]])
        assert added == f"added {SYSTEM}/ic/accuracy\nadded {SYSTEM}/ic/performance\n"
        out[division] = base / division
    return out


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def tree_files(division: str, modes: tuple[str, ...] = ("accuracy", "performance")) -> list[str]:
    org = f"{division}/{ORG}"
    res = f"{org}/results/{SYSTEM}/ic"
    return sorted(["README.md", f"{org}/documentation/README.md",
                   f"{org}/documentation/calibration.md", f"{res}/README.md",
                   f"{org}/src/MANIFEST.sha256", f"{org}/src/README.md",
                   f"{org}/src/edgeperf-submission.json", f"{org}/systems/{SYSTEM}.json",
                   *(f"{res}/{m}/{n}" for m in modes
                     for n in ("log.txt", "results.json", "results.txt"))])


def system_fields(division: str) -> dict[str, str]:
    return {"submitter": ORG, "division": division, "system_name": SYSTEM,
            "Status": "available", "Board Name": BOARD_NAME, "Processor(s) Name": "",
            "Processor(s) Frequencies": "", "Processor memory type and capacity": "",
            "Accelerator": "", "Accelerator(s) Frequencies": "",
            "Accelerator memory type and capacity": "", "Hardware Notes": HW_NOTES,
            "Inference Framework": "", "Software Libraries": "",
            "Software Notes": f"edgeperf {edgeperf.__version__}, DUT edgeperf-emulated-dut ic01"}


@pytest.mark.parametrize("division", ["open", "closed"])
def test_the_tree_holds_the_runs_files_as_tiny_lays_them_out(trees, runs, division) -> None:
    root = trees[division]
    assert files(root) == tree_files(division)
    org = root / division / ORG
    assert json.loads((org / "systems" / f"{SYSTEM}.json").read_text()) == \
        system_fields(division)
    for mode in ("accuracy", "performance"):
        for name in ("log.txt", "results.json", "results.txt"):  # byte for byte
            assert (org / "results" / SYSTEM / "ic" / mode / name).read_bytes() == \
                (runs.dirs[mode] / name).read_bytes(), (mode, name)
    state = json.loads((org / "src" / "edgeperf-submission.json").read_text())
    assert (state["suite"], state["division"], state["org"]) == ("tiny", division, ORG)
    assert sorted(state["results"]) == [f"{SYSTEM}/ic/accuracy", f"{SYSTEM}/ic/performance"]
    acc_run, perf_run = (str(runs.dirs[k].resolve()) for k in ("accuracy", "performance"))
    assert {k: (v["benchmark"], v["result"], v["runs"]) for k, v in state["results"].items()} == {
        f"{SYSTEM}/ic/accuracy": ("ic01", "VALID", {"accuracy": acc_run}),
        f"{SYSTEM}/ic/performance": ("ic01", "VALID", {"performance": perf_run})}
    readme = (org / "results" / SYSTEM / "ic" / "README.md").read_text()
    assert readme.startswith(f"# ic01 accuracy on {SYSTEM}\n")
    assert "- result: VALID (0.9722222222222222 top1)" in readme
    assert "- result: VALID (1000.0 inf./sec.)" in readme


def ep_check(tree: Path, tmp_path: Path) -> tuple[int, str, dict]:
    out = tmp_path / "check.json"
    code, text = quiet_main(["submission", "check", str(tree), "--json", str(out)])
    return code, text, json.loads(out.read_text())


def ep_row(division: str, metric: float | None = 1000.0, validity: str = "VALID",
           accuracy: str = "top-1 97.2", power: str = "") -> dict:
    return {"division": division, "system": SYSTEM, "benchmark": "ic", "scenario": "-",
            "metric": metric, "unit": "inf./sec.", "validity": validity, "accuracy": accuracy,
            "power": power}


def found(data: dict, kind: str = "errors") -> list[tuple[str, str, str]]:
    return [(f["file"], f["rule"], f["message"]) for f in data[kind]]


@pytest.mark.parametrize("division", ["open", "closed"])
def test_edgeperf_check_passes_the_tree(trees, tmp_path, division) -> None:
    code, text, data = ep_check(trees[division], tmp_path)
    head = "division  system    benchmark  scenario  metric  unit       result  accuracy\n"
    row = "emu-tiny  ic         -         1000    inf./sec.  VALID   top-1 97.2\n"
    assert text == (head + division.ljust(10) + row
                    + "1 result, 0 errors, 0 warnings: submission looks OK\n")
    assert code == 0 and data["ok"] is True
    assert data["results"] == [ep_row(division)]
    assert data["errors"] == [] and data["warnings"] == []


@pytest.mark.parametrize("division", ["open", "closed"])
def test_mlcommons_tiny_checker_accepts_the_tree(tiny_checker, trees, tmp_path, division) -> None:
    v = run_tiny(tiny_checker, trees[division], tmp_path / "tiny")
    assert (v.rc, v.returned) == (0, "0"), v.stderr
    assert v.log == tiny_ok_log(division)
    assert v.rows == [tiny_row(division)]


def test_the_invalid_energy_run_is_refused_by_both_checkers(tiny_checker, runs, tmp_path) -> None:
    root = tmp_path / "tree"
    added = make_tree(root, "open", [runs.dirs[k] for k in ("accuracy", "performance",
                                                             "energy")])
    assert added == "".join(f"added {SYSTEM}/ic/{m}\n"
                            for m in ("accuracy", "energy", "performance"))
    assert files(root) == tree_files("open", ("accuracy", "energy", "performance"))
    assert (root / "open" / ORG / "results" / SYSTEM / "ic" / "energy" / "results.txt"
            ).read_bytes() == (runs.dirs["energy"] / "results.txt").read_bytes()
    code, _, data = ep_check(root, tmp_path)
    res = f"open/{ORG}/results/{SYSTEM}/ic"
    assert code == 3 and data["results"] == [ep_row("open", validity="INVALID")]
    assert found(data) == [(f"{res}/energy/results.txt", "tiny-energy",
                            "no 'Median energy cost is N uJ/inf.' line; keep the runner's "
                            "results.txt")]
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned, v.rows) == (0, "1", [])
    assert v.log == [  # Tiny names the performance directory for its energy check's crash
        f"INFO:main:Detected power logs for {res}",
        f"ERROR:main:{res}/performance/ caused exception in check_power_dir: float() argument "
        "must be a string or a real number, not 'NoneType'",
        f"ERROR:main:{res}/performance/ has issues",
        "INFO:main:---", "INFO:main:---", "INFO:main:---", "INFO:main:Results=0, NoResults=0",
        "ERROR:main:SUMMARY: submission has errors"]


# ---------------------------------------------------------------- broken on purpose
def broken(trees: dict[str, Path], division: str, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tree, and its result's directory (results/SYSTEM/ic)."""
    root = tmp_path / "tree"
    shutil.copytree(trees[division], root, symlinks=True)
    return root, root / division / ORG / "results" / SYSTEM / "ic"


def changed(rel: str) -> tuple[str, str, str]:
    return (rel, "manifest", "changed since the manifest was written (sha256 differs)"
            + MANIFEST_FIX)


def gone(rel: str) -> tuple[str, str, str]:
    return (rel, "manifest", "in the manifest but missing" + MANIFEST_FIX)


def unlisted(rel: str) -> tuple[str, str, str]:
    return (rel, "manifest", "not in the manifest" + MANIFEST_FIX)


@pytest.mark.parametrize("mode", ["accuracy", "performance"])
def test_a_missing_results_txt(tiny_checker, trees, tmp_path, mode) -> None:
    root, ic = broken(trees, "open", tmp_path)
    (ic / mode / "results.txt").unlink()
    code, _, data = ep_check(root, tmp_path)
    res = f"open/{ORG}/results/{SYSTEM}/ic"
    why = ("missing; Tiny requires the accuracy run (edgeperf run --mode accuracy on the DUT)"
           if mode == "accuracy" else "missing; Tiny requires the performance run")
    assert code == 3
    assert found(data) == [
        (f"{res}/{mode}", "tiny-files", "file list differs from Tiny's ['log.txt', "
                                        "'results.txt'] (+ results.json): missing "
                                        "['results.txt'], extra []"),
        (f"{res}/{mode}/results.txt", "required-file", why),
        gone(f"{res}/{mode}/results.txt")]
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned, v.rows) == (0, "1", [])
    if mode == "accuracy":
        assert data["results"] == [ep_row("open", validity="INVALID", accuracy="")]
        assert v.log == [f"ERROR:main:{res}/accuracy has no results.txt.",
                         f"ERROR:main:{res} is OK but accuracy has issues",
                         "INFO:main:---", "INFO:main:---", f"ERROR:main:NoResults {res}",
                         "INFO:main:---", "INFO:main:Results=0, NoResults=1",
                         "ERROR:main:SUMMARY: submission has errors"]
    else:
        assert data["results"] == [ep_row("open", metric=None, validity="INVALID")]
        assert v.log == [
            f"ERROR:main:{res}/performance/ has file list mismatch ({{'results.txt'}})",
            f"ERROR:main:{res}/performance/ caused exception in check_performance_dir: "
            f"[Errno 2] No such file or directory: '{res}/performance/results.txt'",
            f"ERROR:main:{res}/performance/ has issues",
            "INFO:main:---", "INFO:main:---", "INFO:main:---",
            "INFO:main:Results=0, NoResults=0", "ERROR:main:SUMMARY: submission has errors"]


def test_an_edited_figure_is_caught_by_the_manifest_only(tiny_checker, trees, tmp_path) -> None:
    """1000.000 -> 2000.000 inf./sec.: edgeperf's manifest refuses the file; Tiny's checker
    cannot tell and reports 2000.0 (a documented fact, not a bug of edgeperf)."""
    root, ic = broken(trees, "open", tmp_path)
    txt = ic / "performance" / "results.txt"
    text = txt.read_text()
    assert text.count("Median throughput is   1000.000 inf./sec.") == 1
    txt.write_text(text.replace("is   1000.000 inf./sec.", "is   2000.000 inf./sec."))
    code, _, data = ep_check(root, tmp_path)
    rel = f"open/{ORG}/results/{SYSTEM}/ic/performance/results.txt"
    assert code == 3 and found(data) == [changed(rel)]
    assert data["results"] == [ep_row("open", metric=2000.0)]  # the row reads the file
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned) == (0, "0")
    assert v.log == tiny_ok_log("open", "2000.0")
    assert v.rows == [tiny_row("open", result="2000.0")]


def test_a_missing_median_throughput_line(tiny_checker, trees, tmp_path) -> None:
    root, ic = broken(trees, "open", tmp_path)
    txt = ic / "performance" / "results.txt"
    lines = txt.read_text().splitlines(keepends=True)
    txt.write_text("".join(ln for ln in lines if "Median throughput is" not in ln))
    assert len(txt.read_text().splitlines()) == len(lines) - 1
    code, _, data = ep_check(root, tmp_path)
    res = f"open/{ORG}/results/{SYSTEM}/ic"
    assert code == 3 and data["results"] == [ep_row("open", metric=None, validity="INVALID")]
    assert found(data) == [
        (f"{res}/performance/results.txt", "tiny-throughput",
         "no 'Median throughput is N inf./sec.' line (Tiny's checker needs it); keep the "
         "runner's results.txt"),
        changed(f"{res}/performance/results.txt")]
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned, v.rows) == (0, "1", [])
    assert v.log == [
        f"ERROR:main:{res}/performance/ caused exception in check_performance_dir: float() "
        "argument must be a string or a real number, not 'NoneType'",
        f"ERROR:main:{res}/performance/ has issues",
        "INFO:main:---", "INFO:main:---", "INFO:main:---", "INFO:main:Results=0, NoResults=0",
        "ERROR:main:SUMMARY: submission has errors"]


@pytest.mark.parametrize("division", ["open", "closed"])
def test_a_missing_top1_line(tiny_checker, trees, tmp_path, division) -> None:
    """Closed: both refuse it. Open: Tiny's checker takes a result with no accuracy (it does
    not catch it) and edgeperf only warns of it (its manifest refuses the edit)."""
    root, ic = broken(trees, division, tmp_path)
    txt = ic / "accuracy" / "results.txt"
    txt.write_text("".join(ln for ln in txt.read_text().splitlines(keepends=True)
                           if "Top 1%" not in ln))
    code, _, data = ep_check(root, tmp_path)
    res = f"{division}/{ORG}/results/{SYSTEM}/ic"
    metric = (f"{res}/accuracy/results.txt", "accuracy-metric",
              r"no line matches Tiny's top-1 pattern '.* Top[- ]1%?\\s?[:=] ([\\d\\.]+).*'")
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert code == 3
    if division == "open":
        assert data["results"] == [ep_row("open", accuracy="")]
        assert found(data) == [changed(f"{res}/accuracy/results.txt")]
        assert found(data, "warnings") == [metric]
        assert (v.rc, v.returned) == (0, "0")
        assert v.log == tiny_ok_log("open")
        assert v.rows == [tiny_row("open", accuracy="")]
    else:
        assert data["results"] == [ep_row("closed", validity="INVALID", accuracy="")]
        assert found(data) == [metric, changed(f"{res}/accuracy/results.txt")]
        assert (v.rc, v.returned, v.rows) == (0, "1", [])
        assert v.log == [
            f"WARNING:main:{res}/accuracy accuracy not met: expected=85.000000, found=None",
            f"ERROR:main:{res}/accuracy, accuracy not valid",
            f"ERROR:main:{res} is OK but accuracy has issues",
            "INFO:main:---", "INFO:main:---", f"ERROR:main:NoResults {res}", "INFO:main:---",
            "INFO:main:Results=0, NoResults=1", "ERROR:main:SUMMARY: submission has errors"]


@pytest.mark.parametrize("division", ["open", "closed"])
def test_an_accuracy_below_tinys_target(tiny_checker, runs, tmp_path, division) -> None:
    """A real run of 10.6% Top-1 (target 85): closed refuses it in both checkers; open takes
    it in both (edgeperf warns), as Tiny's rules allow."""
    root = tmp_path / "tree"
    make_tree(root, division, [runs.dirs["low-accuracy"], runs.dirs["performance"]])
    code, _, data = ep_check(root, tmp_path)
    res = f"{division}/{ORG}/results/{SYSTEM}/ic"
    below = "top-1 10.6 is below the target 85"
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    if division == "closed":
        assert code == 3
        assert data["results"] == [ep_row("closed", validity="INVALID",
                                          accuracy="top-1 10.6")]
        assert found(data) == [(f"{res}/accuracy/results.txt", "accuracy-target",
                                below + "; closed needs it met: fix the model or submit to "
                                        "open")]
        assert (v.rc, v.returned, v.rows) == (0, "1", [])
        assert v.log == [
            f"WARNING:main:{res}/accuracy accuracy not met: expected=85.000000, found=10.6",
            f"ERROR:main:{res}/accuracy, accuracy not valid",
            f"ERROR:main:{res} is OK but accuracy has issues",
            "INFO:main:---", "INFO:main:---", f"ERROR:main:NoResults {res}", "INFO:main:---",
            "INFO:main:Results=0, NoResults=1", "ERROR:main:SUMMARY: submission has errors"]
    else:
        assert code == 0 and data["results"] == [ep_row("open", accuracy="top-1 10.6")]
        assert found(data) == []
        assert found(data, "warnings") == [(f"{res}/accuracy/results.txt", "accuracy-target",
                                            below)]
        assert (v.rc, v.returned) == (0, "0")
        assert v.log == tiny_ok_log("open")
        assert v.rows == [tiny_row("open", accuracy="10.6")]


def test_a_system_json_without_status(tiny_checker, trees, tmp_path) -> None:
    """Status is the one field Tiny's checker requires (it calls .lower() on it)."""
    root, _ = broken(trees, "open", tmp_path)
    path = root / "open" / ORG / "systems" / f"{SYSTEM}.json"
    fields = json.loads(path.read_text())
    del fields["Status"]
    path.write_text(json.dumps(fields, indent=2) + "\n")
    code, _, data = ep_check(root, tmp_path)
    rel = f"open/{ORG}/systems/{SYSTEM}.json"
    assert code == 3 and data["results"] == [ep_row("open")]
    assert found(data) == [
        (rel, "system-status", "no 'Status' field; Tiny's checker needs it: one of "
                               "available, preview, rdi"),
        changed(rel)]
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned) == (1, None)
    assert v.crash == "AttributeError: 'NoneType' object has no attribute 'lower'"
    assert 'available = system_json.get("Status").lower()' in v.stderr


@pytest.mark.parametrize("division", ["open", "closed"])
def test_an_unknown_benchmark_directory(tiny_checker, trees, tmp_path, division) -> None:
    """results/SYSTEM/foo beside ic: edgeperf names it; Tiny's checker crashes on it in open
    (KeyError in its required_tests) and refuses it as an invalid model in closed."""
    root, ic = broken(trees, division, tmp_path)
    shutil.copytree(ic, ic.parent / "foo")
    code, _, data = ep_check(root, tmp_path)
    res = f"{division}/{ORG}/results/{SYSTEM}"
    assert code == 3 and data["results"] == [ep_row(division)]
    assert found(data) == [
        (f"{res}/foo", "benchmark", "rules v6.1 know no benchmark 'foo' (3d-unet-99, "
                                    "ad-synthetic, ad01, bert-99, ic-digits, ic01, kws01, "
                                    "resnet50, vww01); name the directory after one or add "
                                    "it to a rules file"),
        *(unlisted(f"{res}/foo/{f}") for f in (
            "README.md", "accuracy/log.txt", "accuracy/results.json", "accuracy/results.txt",
            "performance/log.txt", "performance/results.json", "performance/results.txt"))]
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    if division == "open":
        assert (v.rc, v.returned) == (1, None)
        assert v.crash == "KeyError: 'foo'"
    else:
        assert (v.rc, v.returned) == (0, "1")
        assert v.log == [  # ic logs nothing of its own: the order is fixed
            f"ERROR:main:{res}/foo has an invalid model foo for closed/network division",
            "INFO:main:---", f"INFO:main:Results {res}/ic 1000.0", "INFO:main:---",
            f"ERROR:main:NoResults {res}/foo", "INFO:main:---",
            "INFO:main:Results=1, NoResults=1", "ERROR:main:SUMMARY: submission has errors"]
        assert v.rows == [tiny_row("closed")]


# ------------------------------------------- what Tiny's checker refuses and edgeperf does not
def _system_type(root: Path, division: str) -> None:
    path = root / division / ORG / "systems" / f"{SYSTEM}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "system_type": "edge"}))


def _lowercase_status(root: Path, division: str) -> None:
    path = root / division / ORG / "systems" / f"{SYSTEM}.json"
    fields = json.loads(path.read_text())
    fields["status"] = fields.pop("Status")
    path.write_text(json.dumps(fields))


def _ic01_directory(root: Path, division: str) -> None:
    res = root / division / ORG / "results" / SYSTEM
    (res / "ic").rename(res / "ic01")


GAPS = {"system_type": (_system_type, "ValueError: invalid system type"),
        "lowercase-status": (_lowercase_status,
                             "AttributeError: 'NoneType' object has no attribute 'lower'"),
        "ic01-directory": (_ic01_directory, "KeyError: 'ic01'")}
# what edgeperf's check names for each (it refuses all three: MLCommons' crashes)
REFUSED_BY_EDGEPERF = {"system_type": "system-type", "lowercase-status": "system-status",
                       "ic01-directory": "benchmark"}


@pytest.mark.parametrize("gap", sorted(GAPS))
def test_tiny_checker_crashes_on(tiny_checker, trees, tmp_path, gap) -> None:
    """Trees Tiny's checker refuses by crashing (open division; manifest written again: a
    submitter's own edit); edgeperf's check refuses each by name (the next test)."""
    mutate, crash = GAPS[gap]
    root, _ = broken(trees, "open", tmp_path)
    mutate(root, "open")
    write_manifest(root)
    v = run_tiny(tiny_checker, root, tmp_path / "tiny")
    assert (v.rc, v.returned, v.crash) == (1, None, crash)


@pytest.mark.parametrize("gap", sorted(GAPS))
def test_edgeperf_refuses_what_tiny_crashes_on(trees, tmp_path, gap) -> None:
    mutate, _ = GAPS[gap]
    root, _ = broken(trees, "open", tmp_path)
    mutate(root, "open")
    write_manifest(root)
    code, _, data = ep_check(root, tmp_path)
    assert code == 3, data
    rules = [e["rule"] for e in data["errors"]]
    # a renamed benchmark leaves the tree without a result edgeperf can read
    assert rules == [REFUSED_BY_EDGEPERF[gap]] + (["no-results"] if gap == "ic01-directory"
                                                   else []), data["errors"]
