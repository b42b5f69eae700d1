"""The output audit (MLPerf TEST01's idea): a performance run whose outputs are not the
accuracy run's is INVALID, with the samples named."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgeperf.cli.main import main
from edgeperf.models.network import Network, to_tflite
from edgeperf.outputs.mlperf_logs import parse_summary
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.tasks.audit import AuditError, check_reference, load_reference
from edgeperf.tasks.registry import load_task
from edgeperf.tasks.run import perf_subset
from edgeperf.tasks.training import IC_DIGITS, build

PERF = ["--scenario", "SingleStream", "--preset", "smoke", "--quiet"]


def perturbed(net: Network, delta: float) -> bytes:
    """The same network (same inputs, outputs, shapes) with the logits' biases moved."""
    layers = list(net.layers)
    dense = layers[-2]
    layers[-2] = replace(dense, b=dense.b + np.float32(delta))
    return to_tflite(replace(net, layers=tuple(layers)))


@pytest.fixture(scope="module")
def accuracy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "acc"
    assert main(["run", "--task", "ic-digits:fp32", "--mode", "accuracy", "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_audit_catches_a_model_that_is_not_the_accuracy_runs(tmp_path: Path, accuracy_run,
                                                              capsys) -> None:
    model = tmp_path / "other.tflite"
    model.write_bytes(perturbed(build(IC_DIGITS).float_net, 0.05))
    out = tmp_path / "perf"
    code = main(["run", "--task", "ic-digits:fp32", "--model", str(model), *PERF,
                 "--audit-outputs", "16", "--audit-against", str(accuracy_run),
                 "--out", str(out)])
    assert code == 3
    rec = json.loads((out / "result.json").read_text())
    audit = rec["audit"]
    assert audit["checked"] == 16 and audit["passed"] is False
    bad = [m["qsl_idx"] for m in audit["mismatches"]]
    assert len(bad) >= 8 and set(bad) <= set(audit["qsl_idx"])
    assert rec["result"] == "INVALID"
    assert any(r.startswith("output audit: ") and f"qsl_idx {bad[0]}, " in r
               for r in rec["invalid_reasons"])
    summ = parse_summary((out / "mlperf_log_summary.txt").read_text())
    assert summ["Result is"] == "INVALID"
    assert summ["Output audit"].startswith(f"FAIL (output audit: {len(bad)} of 16 samples "
                                           f"differ from the accuracy run in {accuracy_run}")
    assert "output audit: " in capsys.readouterr().err


def test_audit_passes_the_same_model_and_names_what_it_checked(tmp_path: Path,
                                                               accuracy_run) -> None:
    out = tmp_path / "perf"
    assert main(["run", "--task", "ic-digits:fp32", *PERF, "--audit-outputs", "20",
                 "--audit-against", str(accuracy_run), "--out", str(out)]) == 0
    rec = json.loads((out / "result.json").read_text())
    audit = rec["audit"]
    assert audit["passed"] is True and audit["checked"] == 20 and audit["mismatches"] == []
    # the audited samples are samples the timed run queried, named by their dataset index
    subset = perf_subset(360, rec["samples"]["count"], rec["settings"]["requested"][
        "qsl_rng_seed"])
    queried = set(subset[read_querylog(out / "querylog.npz")["sample_idx"]].tolist())
    assert set(audit["qsl_idx"]) <= queried and len(set(audit["qsl_idx"])) == 20
    assert parse_summary((out / "mlperf_log_summary.txt").read_text())["Output audit"] == (
        f"PASS (20 samples equal the accuracy run's in {accuracy_run})")


def test_a_task_tolerance_admits_tiny_differences(tmp_path: Path, accuracy_run) -> None:
    ic = build(IC_DIGITS)
    model = tmp_path / "near.tflite"
    model.write_bytes(perturbed(ic.float_net, 1e-4))
    np.savez(tmp_path / "d.npz", inputs=ic.inputs, labels=ic.labels)
    for tolerance, want in ((1e-3, 0), (0.0, 3)):
        toml = tmp_path / f"t{want}.toml"
        toml.write_text(f'model = "{model}"\ndataset = "d.npz"\nmetric = "top1"\n'
                        f"target = 0.9\ntolerance = {tolerance}\n")
        code = main(["run", "--task", str(toml), *PERF, "--audit-outputs", "16",
                     "--audit-against", str(accuracy_run), "--out", str(tmp_path / f"o{want}")])
        assert code == want


def test_audit_needs_a_matching_accuracy_run(tmp_path: Path, accuracy_run, capsys) -> None:
    assert main(["run", "--task", "ic-digits:fp32", *PERF, "--audit-outputs", "4"]) == 2
    assert "pass --audit-against RUN_DIR" in capsys.readouterr().err
    with pytest.raises(AuditError, match="holds no mlperf_log_accuracy.json"):
        load_reference(tmp_path)
    ref = load_reference(accuracy_run)
    assert len(ref.outputs) == 360 and ref.task["name"] == "ic-digits"
    with pytest.raises(AuditError, match="used dataset .* this run's task ad-synthetic:int8"):
        check_reference(ref, load_task("ad-synthetic"))
    (tmp_path / "mlperf_log_accuracy.json").write_text("[\n]\n")
    with pytest.raises(AuditError, match="holds no outputs"):
        load_reference(tmp_path)


def test_submission_run_audits_against_its_own_accuracy_phase(tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert main(["run", "--task", "ad-synthetic", "--mode", "submission", "--no-compliance", *PERF,
                 "--audit-outputs", "12", "--out", str(out)]) == 0
    rec = json.loads((out / "performance" / "result.json").read_text())
    assert rec["audit"]["passed"] and rec["audit"]["reference"] == str(out / "accuracy")
    assert rec["submission_result"] == "VALID" and rec["accuracy"]["result"] == "PASS"
