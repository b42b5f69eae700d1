"""power-dev's session files from a real PTDaemon run (the emulator, on TCP), laid out by
'edgeperf submission add', read by MLCommons' own power_checker (tools/submission/power at
the pinned commit) and by edgeperf's check_power.

edgeperf, not power-dev, drives PTDaemon, and the files say so: their ``sources`` are
edgeperf's code and their ``messages`` edgeperf's commands to PTDaemon. So power_checker
refuses exactly its two source-checksum checks and its client/server-message check (which
want power-dev's own hashes and its "mlcommons/power client vN" handshake), and passes every
other check: PTD commands and replies, UUID, session name, time windows, result checksums,
PTDaemon's log and configuration, debug mode. Each file broken on purpose is refused by
both checkers, by name.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from edgeperf.boards.profile import BoardProfile
from edgeperf.cli.main import main
from edgeperf.outputs.mlperf_logs import parse_detail, parse_summary
from edgeperf.power import powerdev
from edgeperf.power.spl import format_time, parse_time
from edgeperf.run import finish as finish_mod
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.run.querylog import QueryLogData
from edgeperf.settings import preset
from edgeperf.submission.check import check_tree
from edgeperf.submission.manifest import write_manifest
from edgeperf.submission.rules import load_rules
from edgeperf.testing.emulators.ptd import PtdEmulator

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_MONOTONIC identity")

# the emulated analyser answers Identify as a WT310 behind PTDaemon 1.11.1 would (model and
# version fields), and says in its middle field that it is emulated
IDENTITY = "YokogawaWT310,edgeperf test: an emulated analyser,version=1.11.1-emulated"
SYSTEM_TOML = """[system]
status = "available"
host_memory_capacity = "2 GB"
host_memory_configuration = "1 x 2 GB"
host_storage_capacity = "16 GB"
host_storage_type = "virtual disk"
cooling = "passive"
"""
SHORT = ["--task", "ic-digits", "--scenario", "SingleStream", "--preset", "smoke", "--quiet",
         "--min-duration", "0.2"]
SCEN = "open/Org/results/vm/ic-digits/SingleStream"
LOCAL = BoardProfile(name="local", link_type="local")
# the checks only power-dev itself passes: its source hashes and its client/server handshake
NOT_POWER_DEV = {"Check client sources checksum": "do not exist in 'sources_checksums.json'",
                 "Check server sources checksum": "do not exist in 'sources_checksums.json'",
                 "Check client server messages": "Server version is not defined in:'Hello'"}
ALL_CHECKS = {*NOT_POWER_DEV, "Check PTD commands and replies", "Check UUID",
              "Check session name", "Check time difference", "Check results checksum",
              "Check errors and warnings from PTD logs", "Check PTD configuration",
              "Check debug is disabled on server-side"}


@pytest.fixture(scope="module")
def power_checker(tmp_path_factory, mlcommons_inference):
    """MLCommons' power_checker.py, unmodified, from the pinned commit (only its directory:
    the mirror's tools/submission has samples whose blobs it does not hold)."""
    git_dir, commit = mlcommons_inference
    tar = subprocess.run(["git", "-C", git_dir, "archive", commit,
                          "tools/submission/power"], capture_output=True, check=True).stdout
    dst = tmp_path_factory.mktemp("mlcommons")
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(dst, filter="data")
    path = dst / "tools/submission/power/power_checker.py"
    spec = importlib.util.spec_from_file_location("mlcommons_power_checker", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A PTDaemon-measured performance run and an accuracy run, laid out in a tree."""
    base = tmp_path_factory.mktemp("ptd")
    console = base / "ptd_console.txt"
    with PtdEmulator(2.5, identity=IDENTITY, console=console) as emu:
        url = f"{emu.url}?interval_ms=20&poll_s=0&console={console}&device_type=49"
        # an expected latency below the model's: LoadGen generates queries for the whole
        # min duration
        code = main(["run", *SHORT, "--mode", "performance", "--target-latency-ms", "0.01",
                     "--meter", url, "--out", str(base / "perf")])
        commands = list(emu.state.commands)
    assert code == EXIT_VALID
    assert main(["run", *SHORT, "--mode", "accuracy", "--out", str(base / "acc")]) == 0
    (base / "system.toml").write_text(SYSTEM_TOML)
    root = base / "tree"
    assert main(["submission", "init", str(root), "--org", "Org", "--division", "open",
                 "--system-toml", str(base / "system.toml")]) == 0
    assert main(["submission", "add", str(root), str(base / "perf"), str(base / "acc"),
                 "--system", "vm", "--benchmark", "ic-digits"]) == 0
    return {"root": root, "perf": base / "perf", "commands": commands, "console": console}


def run_checker(checker, perf: Path, caplog) -> tuple[int, dict[str, str]]:
    """power_checker.check's exit code and, for each check, "" (passed) or its message."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="main"):
        code = checker.check(str(perf))
    found: dict[str, str] = {}
    last = None
    for r in caplog.records:
        msg = r.getMessage()
        if msg.startswith("[x] ") or msg.startswith("[ ] "):
            last = msg[4:]
            found[last] = "" if msg.startswith("[x]") else "failed"
        elif last and found.get(last) == "failed":
            found[last] = msg.strip()
    return code, found


def power_findings(root: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """What 'edgeperf submission check' finds under the power rules (the short runs' duration
    errors are not power's)."""
    rep = check_tree(root, load_rules())
    pick = [(f.file, f.rule, f.message) for f in rep.errors if f.rule.startswith("power")]
    return pick, [(f.file, f.rule, f.message) for f in rep.warnings
                  if f.rule.startswith("power")]


def test_mlcommons_power_checker_refuses_only_what_needs_power_dev_itself(
        session, power_checker, caplog):
    perf = session["root"] / SCEN / "performance"
    assert sorted(p.relative_to(perf).as_posix() for p in perf.rglob("*") if p.is_file()) == [
        "power/client.json", "power/client.log", "power/ptd_logs.txt", "power/server.json",
        "power/server.log", "ranging/mlperf_log_detail.txt", "ranging/mlperf_log_summary.txt",
        "ranging/spl.txt", "run_1/mlperf_log_accuracy.json", "run_1/mlperf_log_detail.txt",
        "run_1/mlperf_log_summary.txt", "run_1/mlperf_log_trace.json", "run_1/spl.txt"]
    code, found = run_checker(power_checker, perf, caplog)
    assert code == 1 and set(found) == ALL_CHECKS
    failed = {name: msg for name, msg in found.items() if msg}
    assert set(failed) == set(NOT_POWER_DEV), failed
    for name, text in NOT_POWER_DEV.items():
        assert text in failed[name], (name, failed[name])
    errs, warns = power_findings(session["root"])
    assert errs == []
    assert {(f, r) for f, r, _ in warns} == {(f"{SCEN}/performance/power", "power-dev")}


def test_the_files_record_what_happened_in_the_session(session):
    run, perf = session["perf"], session["root"] / SCEN / "performance"
    client = json.loads((perf / "power/client.json").read_text())
    server = json.loads((perf / "power/server.json").read_text())
    rec = json.loads((run / "result.json").read_text())
    # every command PTDaemon received, in order, each with its reply and host times
    msgs = server["messages"]
    assert [m["cmd"] for m in msgs] == session["commands"] == [m["cmd"] for m in
                                                                client["messages"]]
    assert server["ptd_messages"] == [{"cmd": m["cmd"], "reply": m["reply"]} for m in msgs]
    assert all(m["cmd_time"] <= m["reply_time"] for m in msgs)
    assert [m["cmd_time"] for m in msgs] == sorted(m["cmd_time"] for m in msgs)
    name = rec["power"]["phases"]["ranging"]["mark"].removesuffix("_ranging")
    assert client["session_name"] == server["session_name"] == name
    assert client["uuid"] == server["uuid"] and uuid.UUID(client["uuid"]["client"])
    assert msgs[1]["reply"] == IDENTITY and msgs[2]["cmd"] == "RR"
    # the phases: ranges set, Go answered, Stop sent, Stop answered; LoadGen's windows inside
    for phase, d in (("ranging", "ranging"), ("testing", "run_1")):
        steps = client["phases"][phase]
        assert len(steps) == 4 and [s[0] for s in steps] == sorted(s[0] for s in steps)
        detail = {e["key"]: e["value"] for e in parse_detail(perf / d / "mlperf_log_detail.txt")}
        begin, end = (parse_time(detail[k], "mdy") / 1e9 for k in ("power_begin", "power_end"))
        assert steps[1][0] < begin < end < steps[2][0]
    assert client["phases"]["ranging"][3][0] < client["phases"]["testing"][0][0]
    # the ranges: testing's from the ranging maxima, then put back as found
    sr = [m["cmd"] for m in msgs if m["cmd"].startswith("SR,")]
    assert sr == ["SR,V,Auto", "SR,A,Auto", "SR,A,Auto",
                  f"SR,V,{rec['power']['instrument']['ranges']['testing']['volts']}",
                  f"SR,A,{rec['power']['instrument']['ranges']['testing']['amps']}",
                  "SR,V,Auto", "SR,A,Auto"]
    # the hashes (sha1 as power-dev's, sha256 as edgeperf's) are of the files in the tree
    for doc, names in ((client, powerdev.CLIENT_RESULTS), (server, powerdev.SERVER_RESULTS)):
        assert sorted(doc["results"]) == sorted(names)
        for n in names:
            assert (doc["results"][n], doc["edgeperf"]["results_sha256"][n]) == \
                powerdev.file_hashes(perf / n)
    # PTDaemon's console output, whole, and the values edgeperf does not have say so
    assert (perf / "power/ptd_logs.txt").read_text().endswith(session["console"].read_text())
    cfg = server["ptd_config"][0]
    assert cfg["device_type"] == 49 and cfg["command"].startswith("not recorded: ")
    assert set(client["edgeperf"]["not_power_dev"]) == {"sources", "modules", "messages"}
    assert set(client["sources"]) >= {"power/drivers/ptd.py", "power/powerdev.py"}
    client_log = (perf / "power/client.log").read_text().splitlines()
    assert client_log[0].startswith("edgeperf-client ") and name in client_log[0]
    assert any('"phase": "ranging"' in line for line in client_log)
    assert "sending to PTDaemon: 'Go,20,0," + name + "_ranging'" in \
        (perf / "power/server.log").read_text()
    # the ranging run's LoadGen logs, scored as the testing run's
    summary = parse_summary((perf / "ranging/mlperf_log_summary.txt").read_text())
    assert summary["Result is"] == "VALID" and rec["power"]["ranging"]["result"] == "VALID"
    assert rec["files"]["ranging_detail"] == "ranging/mlperf_log_detail.txt"
    assert rec["files"]["power_dev_server_json"] == "power/server.json"


def _edit_summary(t: Path) -> None:
    p = t / SCEN / "performance/run_1/mlperf_log_summary.txt"
    p.write_text(p.read_text() + "edited after the session\n")


def _other_uuid(t: Path) -> None:
    p = t / SCEN / "performance/power/client.json"
    doc = json.loads(p.read_text())
    doc["uuid"]["client"] = str(uuid.uuid4())
    p.write_text(json.dumps(doc, indent=4) + "\n")


def _rm(*names: str):
    def brk(t: Path) -> None:
        for n in names:
            (t / SCEN / "performance" / n).unlink()
    return brk


def _ptd_error(t: Path) -> None:
    """An ERROR from PTDaemon inside the testing window; server.json's hash follows the
    edit, so only the log's content is wrong."""
    perf = t / SCEN / "performance"
    detail = {e["key"]: e["value"] for e in parse_detail(perf / "run_1/mlperf_log_detail.txt")}
    at = format_time(parse_time(detail["power_begin"], "mdy") + 50_000_000)
    log = perf / "power/ptd_logs.txt"
    log.write_text(log.read_text() + f"{at}: ERROR: Current appears to be too high\n")
    doc = json.loads((perf / "power/server.json").read_text())
    n = "power/ptd_logs.txt"
    doc["results"][n], doc["edgeperf"]["results_sha256"][n] = powerdev.file_hashes(log)
    (perf / "power/server.json").write_text(json.dumps(doc, indent=4) + "\n")


P = f"{SCEN}/performance"
BREAKS = {  # what is broken: (power_checker's check and its message, edgeperf's findings)
    "edited": (_edit_summary, {"Check results checksum": "for run_1/mlperf_log_summary.txt"},
               [(f"{P}/run_1/mlperf_log_summary.txt", "power-hash",
                 "changed after the session")]),
    "uuid": (_other_uuid, {"Check UUID": "'client uuid' is not equal."},
             [(f"{P}/power/client.json", "power-session", "uuid.client")]),
    "missing": (_rm("power/server.log"),
                {"Check results checksum": "Missing 'power/server.log'"},
                [(f"{P}/power", "power-files", "missing ['server.log']")]),
    "no-ranging-logs": (_rm("ranging/mlperf_log_detail.txt", "ranging/mlperf_log_summary.txt"),
                        {"Check results checksum": "Missing 'ranging/mlperf_log_detail.txt, "
                                                   "ranging/mlperf_log_summary.txt'",
                         "Check time difference": "Unhandled exeception:"},
                        [(f"{P}/ranging", "power-files", "missing ['mlperf_log_detail.txt', "
                                                         "'mlperf_log_summary.txt']")]),
    "ptd-error": (_ptd_error, {"Check errors and warnings from PTD logs":
                               "ERROR: Current appears to be too high' in ptd_log.txt"},
                  [(f"{P}/power/ptd_logs.txt", "power-ptd-log",
                    "an error during the testing run's window")]),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_broken_session_is_refused_by_both_checkers(session, power_checker, caplog,
                                                       tmp_path, name):
    brk, theirs, ours = BREAKS[name]
    t = tmp_path / "tree"
    shutil.copytree(session["root"], t)
    brk(t)
    write_manifest(t)  # edgeperf's own tree manifest is not what refuses it
    code, found = run_checker(power_checker, t / SCEN / "performance", caplog)
    failed = {n: msg for n, msg in found.items() if msg}
    assert code == 1 and set(failed) == set(NOT_POWER_DEV) | set(theirs), failed
    for check, text in theirs.items():
        assert text in failed[check], (check, failed[check])
    errs, _ = power_findings(t)
    for file, rule, text in ours:
        assert any(f == file and r == rule and text in m for f, r, m in errs), errs
    assert all(f.startswith(P) for f, _, _ in errs), errs


def test_rehash_after_edgeperfs_own_summary_line(session, tmp_path):
    """Submission mode adds "Accuracy result : ..." to the summary once the session has
    ended: rehash records the file as it is then, and client.log says why."""
    run = tmp_path / "run"
    shutil.copytree(session["perf"], run)
    (run / "mlperf_log_summary.txt").write_text((run / "mlperf_log_summary.txt").read_text()
                                                + "Accuracy result : PASS\n")
    assert powerdev.rehash(run, "edgeperf added the accuracy result to the summary")
    client = json.loads((run / "power/client.json").read_text())
    for n in powerdev.CLIENT_RESULTS:
        assert client["results"][n] == powerdev.file_hashes(powerdev.run_path(run, n))[0]
    assert (run / "power/client.log").read_text().splitlines()[-1].endswith(
        "hashing the result files again: edgeperf added the accuracy result to the summary")
    assert not powerdev.rehash(tmp_path, "no session here")


def test_ranging_validity_is_its_own_and_unrecorded_values_say_so(tmp_path, monkeypatch):
    """A ranging run whose QueryLog is cut to 10 rows is INVALID in its own logs; the
    testing result stays VALID. Without console= and device_type=, the files say what
    edgeperf was not given."""
    real = finish_mod._ranging_querylog

    def cut(m):
        q = real(m)
        return QueryLogData(q.issue_ns[:10], q.done_ns[:10], q.sample_idx[:10],
                            q.samples_per_row, q.start_ns, q.qsl_index)

    monkeypatch.setattr(finish_mod, "_ranging_querylog", cut)
    s = dataclasses.replace(preset("smoke", "SingleStream"), min_query_count=300,
                            max_query_count=300, min_duration_ms=0, warmup_queries=2)
    with PtdEmulator(2.5) as emu:
        o = execute(RunSpec(model="synthetic:busy:500", settings=s, board=LOCAL,
                            out_dir=tmp_path, meter=f"{emu.url}?interval_ms=20&poll_s=0"))
    assert o.exit_code == EXIT_VALID and o.summary.valid and o.result["power"]["valid"]
    text = (tmp_path / "ranging/mlperf_log_summary.txt").read_text()
    assert parse_summary(text)["Result is"] == "INVALID"
    assert o.result["power"]["ranging"]["result"] == "INVALID"
    detail = {e["key"]: e["value"]
              for e in parse_detail(tmp_path / "ranging/mlperf_log_detail.txt")}
    assert detail["edgeperf_power_phase"] == "ranging"
    w = o.result["power"]["ranging"]["window"]
    assert detail["power_begin"] == w["power_begin"] and detail["power_end"] == w["power_end"]
    assert w["device_end_ns"] < o.result["power"]["window"]["device_start_ns"]
    assert (tmp_path / "power/ptd_logs.txt").read_text() == powerdev.NO_CONSOLE
    server = json.loads((tmp_path / "power/server.json").read_text())
    assert server["ptd_config"][0]["device_type"] == powerdev.NOT_STARTED
