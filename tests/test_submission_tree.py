"""edgeperf submission init|add on real runs of the local board: the exact layout, the system
and measurement files, user.conf, the accuracy log's truncation byte for byte against
MLCommons' own tools/submission/truncate_accuracy_log.py, the manifest, and the refusals."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeperf.cli.main import main
from edgeperf.errors import UsageError
from edgeperf.settings.conf import apply_conf
from edgeperf.settings.requested import TestSettings
from edgeperf.submission.manifest import verify_manifest, write_manifest
from edgeperf.submission.rules import load_rules
from edgeperf.submission.tree import add_runs, init_tree, load_state

SYSTEM_TOML = """[system]
status = "available"
host_memory_capacity = "2 GB"
host_memory_configuration = "1 x 2 GB"
host_storage_capacity = "16 GB"
host_storage_type = "virtual disk"
cooling = "passive"
"""
SHORT = ["--preset", "smoke", "--quiet", "--min-duration", "0.2"]
# Offline's accuracy phase is given a target QPS: without one it stops at "target QPS 0.0
# needs > 0" (edgeperf run's Offline accuracy mode, outside the tree builder)


def _run(out: Path, scenario: str, *extra: str) -> Path:
    code = main(["run", "--task", "ic-digits", "--mode", "submission", "--scenario", scenario,
                 *SHORT, *extra, "--out", str(out)])
    assert code in (0, 3)  # 3: INVALID (too short on a fast machine); laid out all the same
    assert (out / "performance/result.json").is_file() and (out / "accuracy/accuracy.txt").is_file()
    return out


def _with_sysfs(root: Path, fn, *args):
    """``fn(*args)`` with the local board's agent reading ``root`` as its sysfs tree (it
    inherits this process's environment, as a device is configured with it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPERF_SYSFS_ROOT", str(root))
        return fn(*args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    hw = base / "sysfs" / "class" / "hwmon" / "hwmon1"
    hw.mkdir(parents=True)
    for name, text in (("name", "ina219"), ("power1_input", "3250000"),
                       ("curr1_input", "650"), ("in1_input", "5000")):
        (hw / name).write_text(text + "\n")
    (base / "system.toml").write_text(SYSTEM_TOML)
    return {"ss": _run(base / "ss", "SingleStream"),
            "off": _run(base / "off", "Offline", "--target-qps", "2000"),
            "pw": _with_sysfs(base / "sysfs", _run, base / "pw", "SingleStream", "--meter",
                              "sysfs:ina219?interval_ms=10"),
            "toml": base / "system.toml"}


def _tree(tmp_path: Path, runs, division: str = "open") -> Path:
    root = tmp_path / "tree"
    init_tree(root, "EdgeOrg", division, system_toml=runs["toml"])
    return root


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_system_measurements_user_conf(tmp_path, runs):
    root = _tree(tmp_path, runs)
    assert add_runs(root, [runs["ss"], runs["off"]], system_name="vm",
                    benchmark="ic-digits") == ["vm/ic-digits/Offline", "vm/ic-digits/SingleStream"]
    org = "open/EdgeOrg"
    scen = [f"{org}/results/vm/ic-digits/{s}/{f}" for s in ("Offline", "SingleStream") for f in (
        "README.md", "accuracy/accuracy.txt", "accuracy/mlperf_log_accuracy.json",
        "accuracy/mlperf_log_detail.txt", "accuracy/mlperf_log_summary.txt",
        "measurements.json", "performance/run_1/mlperf_log_accuracy.json",
        "performance/run_1/mlperf_log_detail.txt", "performance/run_1/mlperf_log_summary.txt",
        "performance/run_1/mlperf_log_trace.json", "user.conf",
        # the compliance audits, as MLCommons' run_verification.py lays them out
        "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
        "TEST01/accuracy/mlperf_log_accuracy.json",
        "TEST01/performance/run_1/mlperf_log_detail.txt",
        "TEST01/performance/run_1/mlperf_log_summary.txt",
        "TEST04/verify_performance.txt", "TEST04/performance/run_1/mlperf_log_detail.txt",
        "TEST04/performance/run_1/mlperf_log_summary.txt")]
    assert _files(root) == sorted(["README.md", f"{org}/documentation/README.md",
                                   f"{org}/documentation/calibration.md",
                                   f"{org}/src/MANIFEST.sha256", f"{org}/src/README.md",
                                   f"{org}/src/edgeperf-submission.json",
                                   f"{org}/systems/vm.json", *scen])
    assert not [p for p in root.rglob("*") if p.name.startswith(".") or " " in p.name]

    rules = load_rules()
    sysj = json.loads((root / org / "systems/vm.json").read_text())
    rec = json.loads((runs["ss"] / "performance/result.json").read_text())
    assert list(sysj) == list(rules.system_required_fields) and "is_network" not in sysj
    assert all(sysj[f] for f in rules.system_meaningful_fields)
    assert {k: sysj[k] for k in ("division", "submitter", "status", "system_type",
                                 "number_of_nodes", "accelerators_per_node",
                                 "accelerator_model_name", "host_memory_capacity")} == {
        "division": "open", "submitter": "EdgeOrg", "status": "available",
        "system_type": "edge", "number_of_nodes": "1", "accelerators_per_node": "0",
        "accelerator_model_name": "N/A", "host_memory_capacity": "2 GB"}
    dev = rec["device"]
    assert sysj["host_processor_model_name"] == dev["cpu_model"]
    assert sysj["host_processor_core_count"] == str(dev["cpu_count"])
    assert sysj["framework"] == f"ai_edge_litert {dev['runtimes']['ai_edge_litert']}"

    ss = root / org / "results/vm/ic-digits/SingleStream"
    assert json.loads((ss / "measurements.json").read_text()) == {
        "input_data_types": "int8", "retraining": "no",
        "starting_weights_filename": "ic-digits-int8.tflite", "weight_data_types": "int8",
        "weight_transformations": "quantization"}
    req = rec["settings"]["requested"]
    assert (ss / "user.conf").read_text().splitlines()[1:] == [
        "*.SingleStream.min_duration = 200", f"*.SingleStream.max_duration = "
        f"{req['max_duration_ms']}", f"*.SingleStream.min_query_count = {req['min_query_count']}",
        "*.SingleStream.max_query_count = 0", "*.SingleStream.target_latency_percentile = 90",
        "*.SingleStream.qsl_rng_seed = 2085463073848966840",
        "*.SingleStream.sample_index_rng_seed = 2747215439041700203",
        "*.SingleStream.schedule_rng_seed = 16159082839903944936",
        f"*.SingleStream.warmup_queries = {req['warmup_queries']}"]
    off = root / org / "results/vm/ic-digits/Offline"
    back = apply_conf(TestSettings(scenario="Offline"), [off / "user.conf"], "*")
    oreq = json.loads((runs["off"] / "performance/result.json").read_text())["settings"]
    assert TestSettings(**oreq["requested"]) == back
    readme = (ss / "README.md").read_text()
    assert f"- model sha256: `{rec['model']['sha256']}`" in readme
    assert "edgeperf run --board local --task ic-digits:int8 --mode submission --scenario " \
           "SingleStream --user-conf user.conf" in readme
    assert ("the run itself was made with `edgeperf run --task ic-digits --mode submission "
            f"--scenario SingleStream {' '.join(SHORT)} --out {runs['ss']}`") in readme
    state = load_state(root)
    assert state["results"]["vm/ic-digits/SingleStream"]["runs"]["performance"] == \
        str((runs["ss"] / "performance").resolve())


def _export_truncate_tool(dst: Path, mlcommons: tuple[str, str]) -> Path:
    git_dir, commit = mlcommons
    text = subprocess.run(["git", "-C", git_dir, "show",
                           f"{commit}:tools/submission/truncate_accuracy_log.py"],
                          capture_output=True, text=True, check=True).stdout
    tool = dst / "truncate_accuracy_log.py"
    tool.write_text(text)
    return tool


def test_truncation_equals_mlcommons_tool_byte_for_byte(tmp_path, runs, mlcommons_inference):
    root = _tree(tmp_path, runs)
    add_runs(root, [runs["ss"]], system_name="vm", benchmark="ic-digits")
    ours = root / "open/EdgeOrg/results/vm/ic-digits/SingleStream/accuracy"
    orig_json = (runs["ss"] / "accuracy/mlperf_log_accuracy.json").read_bytes()
    orig_txt = (runs["ss"] / "accuracy/accuracy.txt").read_text()
    assert len(orig_json) > 10240 and len((ours / "mlperf_log_accuracy.json").read_bytes()) == 8199
    first = "accuracy=97.222%, good=350, total=360\n"
    assert (ours / "accuracy.txt").read_text() == \
        first + orig_txt + f"\nhash={hashlib.sha256(orig_json).hexdigest()}\n"
    assert re.match(load_rules().benchmark("resnet50").accuracy_pattern, first).group(1) == \
        "97.222"

    # MLCommons' tool on the same inputs, and on logs under 4096 and under 10240 bytes
    from edgeperf.submission.truncate import truncate_accuracy_log

    official = tmp_path / "official"
    cases = {"big": orig_json, "mid": orig_json[:5000], "tiny": b"[\n]\n"}
    mine = tmp_path / "mine"
    for name, data in cases.items():
        for base in (official / "open/Org/results/sys" / name / "SingleStream", mine / name):
            (base / "accuracy").mkdir(parents=True)
            (base / "accuracy/mlperf_log_accuracy.json").write_bytes(data)
            (base / "accuracy/accuracy.txt").write_text(first + orig_txt)
        truncate_accuracy_log(mine / name / "accuracy/mlperf_log_accuracy.json",
                              mine / name / "accuracy/accuracy.txt", load_rules())
    tool = _export_truncate_tool(tmp_path, mlcommons_inference)
    subprocess.run([sys.executable, str(tool), "--input", str(official), "--submitter", "Org",
                    "--backup", str(tmp_path / "backup")], check=True, capture_output=True)
    for name in cases:
        theirs = official / "open/Org/results/sys" / name / "SingleStream/accuracy"
        for f in ("mlperf_log_accuracy.json", "accuracy.txt"):
            assert (mine / name / "accuracy" / f).read_bytes() == (theirs / f).read_bytes(), \
                (name, f)
    big = official / "open/Org/results/sys/big/SingleStream/accuracy"
    assert (big / "mlperf_log_accuracy.json").read_bytes() == \
        (ours / "mlperf_log_accuracy.json").read_bytes()
    assert (big / "accuracy.txt").read_bytes() == (ours / "accuracy.txt").read_bytes()
    # a second pass changes nothing (the hash is there and the log is small)
    before = (mine / "big/accuracy/accuracy.txt").read_bytes()
    truncate_accuracy_log(mine / "big/accuracy/mlperf_log_accuracy.json",
                          mine / "big/accuracy/accuracy.txt", load_rules())
    assert (mine / "big/accuracy/accuracy.txt").read_bytes() == before


def test_manifest_verifies_and_finds_an_edit(tmp_path, runs):
    root = _tree(tmp_path, runs)
    add_runs(root, [runs["ss"]], system_name="vm", benchmark="ic-digits")
    manifest = root / "open/EdgeOrg/src/MANIFEST.sha256"
    assert verify_manifest(root) == []
    listed = [ln.split("  ", 1)[1] for ln in manifest.read_text().splitlines()]
    assert listed == sorted(set(_files(root)) - {"open/EdgeOrg/src/MANIFEST.sha256"})
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", str(manifest)], cwd=root, check=True)
    conf = root / "open/EdgeOrg/results/vm/ic-digits/SingleStream/user.conf"
    conf.write_text(conf.read_text() + "*.*.min_duration = 600000\n")
    (root / "open/EdgeOrg/documentation/extra.md").write_text("x\n")
    assert verify_manifest(root) == [
        "open/EdgeOrg/results/vm/ic-digits/SingleStream/user.conf: changed since the manifest "
        "was written (sha256 differs)", "open/EdgeOrg/documentation/extra.md: not in the manifest"]
    write_manifest(root)
    assert verify_manifest(root) == []


def test_refusals(tmp_path, runs, capsys):
    closed = tmp_path / "closed"
    init_tree(closed, "EdgeOrg", "closed", system_toml=runs["toml"])
    with pytest.raises(UsageError, match=r"measured with meter 'sysfs:ina219.*MLPerf does not "
                                         r"accept.*closed division refuses it"):
        add_runs(closed, [runs["pw"]], system_name="vm", benchmark="ic-digits")
    assert not (closed / "closed/EdgeOrg/results/vm").exists()

    root = _tree(tmp_path, runs)
    add_runs(root, [runs["pw"]], system_name="vm", benchmark="ic-digits")
    scen = root / "open/EdgeOrg/results/vm/ic-digits/SingleStream"
    assert (scen / "performance/run_1/spl.txt").is_file()
    assert "a meter MLPerf does not accept" in (scen / "README.md").read_text()
    assert not (scen / "performance/power").exists()

    # the same command twice: refused (exit 2) unless --force, the first result kept
    argv = ["submission", "add", str(root), str(runs["ss"]), "--system", "vm",
            "--benchmark", "ic-digits"]
    assert main(argv) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert (scen / "performance/run_1/spl.txt").is_file()
    assert main([*argv, "--force"]) == 0
    assert not (scen / "performance/run_1/spl.txt").exists()
    assert not list((root / "open/EdgeOrg/src").glob("add-tmp-*"))

    other = tmp_path / "other"
    shutil.copytree(runs["off"], other)
    for half in ("performance", "accuracy"):
        rec = json.loads((other / half / "result.json").read_text())
        rec["device"]["cpu_model"] = "ARM Cortex-A72"
        (other / half / "result.json").write_text(json.dumps(rec))
    with pytest.raises(UsageError, match=r"was not made on system 'vm''s device \(cpu_model: "
                                         r"'.*' vs 'ARM Cortex-A72'\)"):
        add_runs(root, [other], system_name="vm", benchmark="ic-digits")

    bare = tmp_path / "bare"
    init_tree(bare, "EdgeOrg", "open")
    with pytest.raises(UsageError, match=r"systems/vm.json: status, host_memory_capacity, "
                                         r"host_memory_configuration, host_storage_capacity, "
                                         r"host_storage_type, cooling must not be empty.*"
                                         r"--system-toml"):
        add_runs(bare, [runs["ss"]], system_name="vm", benchmark="ic-digits")
    assert not (bare / "open/EdgeOrg/results/vm").exists()
    with pytest.raises(UsageError, match=r"no benchmark 'resnet'; known: 3d-unet-99"):
        add_runs(bare, [runs["ss"]], system_name="vm", benchmark="resnet")
    with pytest.raises(UsageError, match=r"a run of task 'ic-digits', but benchmark "
                                         r"ad-synthetic is task 'ad-synthetic'"):
        add_runs(bare, [runs["ss"]], system_name="vm", benchmark="ad-synthetic")
