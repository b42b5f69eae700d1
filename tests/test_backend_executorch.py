"""The executorch backend on the reference tasks' own programs (scripts/export_executorch.py
exports them from the same weights as their .tflite files), the same tasks' accuracy on
every backend, the output audit on .onnx and .pte models, ETDump's operator profile, and
the errors a corrupt program gives before anything is timed. The agent runs on
.venv-executorch's Python (torch and ExecuTorch's runtime), as a device with it would."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import textwrap

import pytest

from edgeperf.boards.profile import BoardProfile
from edgeperf.errors import RunError
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf.settings import preset

LOCAL = BoardProfile(name="local", link_type="local")


@pytest.fixture(scope="module")
def et_board(executorch_python: str, executorch_tasks) -> BoardProfile:
    return BoardProfile(name="et-device", link_type="local", python=executorch_python)


@pytest.fixture(scope="module")
def et_device(et_board):
    """One agent on the ExecuTorch Python for the module's runs (its torch import is paid
    once, as a device's agent pays it once)."""
    import edgeperf

    with edgeperf.connect(et_board) as dev:
        yield dev


@pytest.fixture(scope="module")
def local_device():
    import edgeperf

    with edgeperf.connect(LOCAL) as dev:
        yield dev


def settings(**kw):
    return dataclasses.replace(preset("smoke", "SingleStream"), **{
        "min_query_count": 100, "min_duration_ms": 0, "warmup_queries": 5, **kw})


def accuracy(task: str, dev, out) -> tuple[float, dict]:
    r = dev.run(task=task, mode="accuracy", out_dir=out)
    assert r.exit_code == EXIT_VALID, r.invalid_reasons
    return r.accuracy.value, r.result


@pytest.mark.parametrize("name", ["ic-digits", "ad-synthetic"])
def test_a_task_scores_the_same_on_every_backend(tmp_path, et_device, local_device,
                                                 name) -> None:
    tfl, _ = accuracy(f"{name}:fp32", local_device, tmp_path / "tflite")
    onx, rec_onnx = accuracy(f"{name}:onnx", local_device, tmp_path / "onnx")
    pte, rec_pte = accuracy(f"{name}:executorch", et_device, tmp_path / "pte")
    assert rec_onnx["model"]["backend"] == "onnx"
    assert rec_pte["model"]["details"]["backend"] == "executorch"
    tolerance = 1 / 360 if name == "ic-digits" else 0.005  # one image; a sliver of AUC
    assert abs(onx - tfl) <= tolerance and abs(pte - tfl) <= tolerance, (tfl, onx, pte)


@pytest.mark.parametrize("variant", ["onnx", "executorch"])
def test_output_audit_on_other_backends(tmp_path, et_device, local_device, variant) -> None:
    dev = et_device if variant == "executorch" else local_device
    acc = dev.run(task=f"ic-digits:{variant}", mode="accuracy", out_dir=tmp_path / "acc")
    assert acc.exit_code == EXIT_VALID
    r = dev.run(task=f"ic-digits:{variant}", scenario="SingleStream", preset="smoke",
                out_dir=tmp_path / "perf", audit_outputs=12, audit_against=tmp_path / "acc",
                min_query_count=100, min_duration_ms=0)
    assert r.exit_code == EXIT_VALID, r.invalid_reasons
    audit = r.result["audit"]
    assert audit["checked"] == 12 and audit["mismatches"] == [] and audit["passed"]


def test_program_runs_with_costs_and_etdump_profile(tmp_path, et_device, executorch_tasks):
    o = et_device.run(executorch_tasks["ic-digits"], scenario="SingleStream", preset="smoke",
                      out_dir=tmp_path, sample_count=16, profile_ops=30, min_query_count=100,
                      min_duration_ms=0, warmup_queries=5)
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    res = json.loads((tmp_path / "result.json").read_text())
    d = res["model"]["details"]
    assert d["backend"] == "executorch" and d["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert d["inputs"][0]["sample_shape"] == [8, 8, 1] and d["outputs"][0]["shape"] == [1, 10]
    costs = res["model_costs"]
    assert costs["init_ns"] > 0 and costs["first_inference_ns"] > 0
    assert costs["warmup"]["queries"] == 5
    prof = res["op_profile"]
    assert prof["available"] and prof["runs"] == 30
    assert prof["source"].startswith("ExecuTorch 1.5.1 ETDump")
    rows = (tmp_path / "op_profile.csv").read_text().splitlines()
    assert any("Convolution" in r for r in rows) and any("contains" in r for r in rows)
    assert all(t["calls"] % 30 == 0 for t in prof["top"])  # warm-up runs left out


def test_state_carried_and_a_delegate_the_runtime_lacks(tmp_path, executorch_python) -> None:
    """Programs exported here, in one process (torch imported once): y = x + s, s' = y,
    which fed its own output sums its inputs; and one lowered to Vulkan (the wheel has its
    partitioner, not its runtime), refused naming the delegate and those there are."""
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from executorch.exir import to_edge_transform_and_lower
        from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner
        from edgeperf_agent.backend_executorch import ExecutorchBackend
        from edgeperf_agent.backends import BackendError
        class Acc(torch.nn.Module):
            def forward(self, x, s):
                y = x + s
                return y, y.clone()
        ex = (torch.zeros(1, 4), torch.zeros(1, 4))
        prog = to_edge_transform_and_lower(torch.export.export(Acc(), ex)).to_executorch()
        open("{tmp_path}/acc.pte", "wb").write(prog.buffer)
        b = ExecutorchBackend("{tmp_path}/acc.pte", state={{"output_1": "input_1"}})
        d = b.describe()
        assert [i["name"] for i in d["inputs"]] == ["input_0"], d["inputs"]
        assert d["state"][0]["fed_by"] == "output_1"
        xs = np.arange(20, dtype=np.float32).reshape(5, 4)
        b.bind([xs])
        run = b.invoker()
        for k in range(5):
            run(k)
        assert np.array_equal(b.output_buffers[0], xs.sum(axis=0, keepdims=True)), \\
            b.output_buffers[0]
        class M(torch.nn.Module):
            def forward(self, x):
                return torch.relu(x + 1)
        ep = torch.export.export(M(), (torch.zeros(1, 8),))
        prog = to_edge_transform_and_lower(ep, partitioner=[VulkanPartitioner()]).to_executorch()
        open("{tmp_path}/vk.pte", "wb").write(prog.buffer)
        try:
            ExecutorchBackend("{tmp_path}/vk.pte")
        except BackendError as exc:
            print(exc)
        print("ok")
    """)
    r = subprocess.run([executorch_python, "-c", code], capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    assert "it was lowered to VulkanBackend, which this runtime does not have (it has: " \
        in r.stdout and "XnnpackBackend" in r.stdout, r.stdout


def test_corrupt_programs_are_named_before_anything_is_timed(tmp_path, et_device,
                                                             executorch_tasks) -> None:
    good = open(executorch_tasks["ic-digits"], "rb").read()
    torn = tmp_path / "torn.pte"
    torn.write_bytes(good[: len(good) // 2])
    with pytest.raises(RunError, match="cannot load the program.*truncated or corrupt"):
        et_device.run(str(torn), scenario="SingleStream", out_dir=tmp_path / "torn")
    assert not (tmp_path / "torn" / "querylog.spill").exists() or \
        (tmp_path / "torn" / "querylog.spill").stat().st_size == 0
    other = tmp_path / "other.pte"
    other.write_bytes(b"\x00" * 4 + b"XYZW" + bytes(64))
    with pytest.raises(RunError, match="not an ExecuTorch program"):
        et_device.run(str(other), scenario="SingleStream", out_dir=tmp_path / "other")


def test_a_device_without_executorch_is_told_the_install(tmp_path, executorch_tasks) -> None:
    with pytest.raises(RunError, match="executorch backend is not available on the device"
                                       ".*pip install executorch"):
        execute(RunSpec(model=executorch_tasks["ic-digits"], settings=settings(), board=LOCAL,
                        out_dir=tmp_path))
