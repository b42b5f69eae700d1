"""The public API on the local board: connect once, run many times on one agent, info, score,
preset, task runs, typed errors; and a lab script that uses only ``import edgeperf``."""

from __future__ import annotations

import ast
import csv
import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runs import small

import edgeperf
from edgeperf.run.client import AgentClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hellos(monkeypatch) -> list[int]:
    """Every hello the host says to an agent, by agent pid."""
    said: list[int] = []
    original = AgentClient.hello

    def counted(self):
        info = original(self)
        said.append(info["pid"])
        return info

    monkeypatch.setattr(AgentClient, "hello", counted)
    return said


def test_two_runs_and_info_on_one_agent(tmp_path, hellos) -> None:
    with edgeperf.connect("local") as dev:
        info = dev.info()
        assert info["protocol"] and info["telemetry"]["cpus"] is not None
        pid = info["pid"]
        link = dev._session.link
        a = dev.run(model="synthetic:null", settings=small("SingleStream"), out_dir=tmp_path / "a")
        b = dev.run(model="builtin:mlp", scenario="SingleStream", preset="smoke",
                    min_query_count=80, warmup_queries=2, out_dir=tmp_path / "b")
        assert dev._session.link is link and link.proc.poll() is None  # the same agent process
        assert dev.info()["pid"] == pid
    assert hellos == [pid]  # hello once, for the connection
    assert link.proc.poll() is not None  # closed with the device
    for r, model in ((a, "synthetic:null"), (b, "builtin:mlp")):
        assert isinstance(r, edgeperf.RunResult) and r.valid and r.exit_code == 0
        assert r.summary.valid and r.summary.metric == r.summary.metric_value > 0
        assert r.result["device"]["pid"] == pid and r.result["model"]["spec"] == model
        assert r.scenario == "SingleStream" and (r.out_dir / "mlperf_log_summary.txt").exists()
    assert b.summary.query_count >= 80
    assert b.result["settings"]["requested"]["min_query_count"] == 80


def test_a_list_of_scenarios_gives_a_list_in_default_dirs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with edgeperf.connect("local") as dev:
        rs = dev.run(model="synthetic:null", scenario=["SingleStream", "Offline"], preset="smoke",
                     min_query_count=100, warmup_queries=2, seed=7)
    assert [r.scenario for r in rs] == ["SingleStream", "Offline"]
    for r in rs:  # results/<timestamp>-<model>/<scenario>, as the command line
        assert r.out_dir.parts[0] == "results" and r.out_dir.name == r.scenario
        assert r.out_dir.parent.name.endswith("-synthetic-null")
        assert r.result["settings"]["requested"]["qsl_rng_seed"] == 7
        assert r.valid, r.invalid_reasons


def test_runs_score_as_the_cli_would(tmp_path) -> None:
    """The same settings through the API and through execute(): the same scoring."""
    s = small("SingleStream")
    with edgeperf.connect("local") as dev:
        r = dev.run(model="synthetic:busy:100", settings=s, out_dir=tmp_path / "r")
    again = edgeperf.score(r.out_dir / "querylog.npz", scenario="SingleStream",
                           min_query_count=s.min_query_count, min_duration_ms=0)
    assert again.to_dict()["early_stopping"] == r.summary.to_dict()["early_stopping"]
    assert again.samples == r.summary.samples


def test_score_and_preset(tmp_path) -> None:
    lat = tmp_path / "latencies.txt"
    lat.write_text("".join(f"{1_000_000 + 1000 * (i % 17)}\n" for i in range(200)))
    summary = edgeperf.score(lat, scenario="SingleStream")
    assert isinstance(summary, edgeperf.Summary) and summary.valid
    assert summary.metric == summary.early_stopping.estimate_ns == 1_016_000
    with pytest.raises(edgeperf.UsageError, match="Server"):
        edgeperf.score(lat, scenario="Server")  # bare latencies: no arrival times
    conf = tmp_path / "user.conf"
    conf.write_text("resnet50.Offline.target_qps = 250\n*.Offline.min_duration = 1000\n")
    s = edgeperf.preset("mlperf", scenario="Offline", user_conf=[conf], model="resnet50")
    assert isinstance(s, edgeperf.TestSettings)
    assert (s.scenario, s.target_qps, s.min_duration_ms) == ("Offline", 250.0, 1000)
    assert edgeperf.preset("quick", "MultiStream").min_query_count == 662
    assert edgeperf.preset("smoke", "Server", target_qps=20.0).target_qps == 20.0
    with pytest.raises(edgeperf.UsageError):
        edgeperf.preset("nosuch", "Offline")


def test_typed_errors_before_anything_runs(tmp_path) -> None:
    with pytest.raises(edgeperf.UsageError, match="no board profile named 'nosuchboard'"):
        edgeperf.connect("nosuchboard")
    with edgeperf.connect("local") as dev:
        with pytest.raises(edgeperf.UsageError, match="min_query_count"):
            dev.run(model="synthetic:null", scenario="SingleStream", min_query_count=-5)
        with pytest.raises(edgeperf.UsageError):
            dev.run(model="synthetic:null", scenario="SingleStream", no_such_setting=1)
        with pytest.raises(edgeperf.UsageError, match="unknown scenario"):
            dev.run(model="synthetic:null", scenario="Singlestream")
        with pytest.raises(edgeperf.UsageError, match="needs a scenario"):
            dev.run(model="synthetic:null")
        with pytest.raises(edgeperf.UsageError, match="task="):
            dev.run(model="synthetic:null", scenario="SingleStream", mode="accuracy")
        with pytest.raises(edgeperf.RunError, match="does not exist"):
            dev.run(model=str(tmp_path / "none.tflite"), scenario="SingleStream")
        with pytest.raises(edgeperf.TaskError):
            dev.run(task="no-such-task", mode="accuracy")
        # none of that touched the agent: it still runs
        ok = dev.run(model="synthetic:null", settings=small("SingleStream"),
                     out_dir=tmp_path / "ok")
        assert ok.valid
    with pytest.raises(edgeperf.UsageError, match="closed"):
        dev.run(model="synthetic:null", settings=small("SingleStream"), out_dir=tmp_path / "x")


def test_an_agent_dropped_mid_run_keeps_the_run_and_refuses_the_next(tmp_path) -> None:
    with edgeperf.connect("local") as dev:
        pid = dev.info()["pid"]
        killed = []

        def kill_on_progress(event: str, data: dict) -> None:
            if event == "progress" and not killed:
                killed.append(data)
                os.kill(pid, signal.SIGKILL)

        s = small("SingleStream", min_query_count=10**7, max_query_count=10**7,
                  max_duration_ms=120_000)
        r = dev.run(model="synthetic:busy:200", settings=s, out_dir=tmp_path / "cut",
                    progress=kill_on_progress)
        assert killed and r.exit_code == 1 and not r.valid
        assert "the agent died during the run" in r.error
        assert r.summary is not None and r.summary.query_count > 0  # what arrived is scored
        assert (tmp_path / "cut" / "result.json").exists()
        with pytest.raises(edgeperf.AgentDied, match="connect again"):
            dev.run(model="synthetic:null", settings=small("SingleStream"),
                    out_dir=tmp_path / "next")
        with pytest.raises(edgeperf.AgentError):
            dev.info()


def test_an_agent_gone_between_runs_is_a_typed_error(tmp_path) -> None:
    with edgeperf.connect("local") as dev:
        os.kill(dev.info()["pid"], signal.SIGKILL)
        with pytest.raises(edgeperf.AgentDied) as exc:
            dev.run(model="synthetic:null", settings=small("SingleStream"),
                    out_dir=tmp_path / "a")
        assert isinstance(exc.value, edgeperf.RunError)  # nothing was measured
        with pytest.raises(edgeperf.AgentDied, match="connect again"):
            dev.run(model="synthetic:null", settings=small("SingleStream"),
                    out_dir=tmp_path / "b")


def test_a_task_accuracy_run_on_the_same_agent(tmp_path, hellos) -> None:
    with edgeperf.connect("local") as dev:
        perf = dev.run(model="synthetic:null", settings=small("SingleStream"),
                       out_dir=tmp_path / "perf")
        acc = dev.run(task="ic-digits", mode="accuracy", out_dir=tmp_path / "acc")
        sub = dev.run(task="ic-digits", mode="submission", scenario="SingleStream",
                      compliance=False, settings=small("SingleStream"), out_dir=tmp_path / "sub")
    assert len(hellos) == 1
    assert perf.valid and acc.result["device"]["pid"] == perf.result["device"]["pid"]
    assert acc.mode == "accuracy" and acc.summary is None and acc.exit_code == 0
    assert isinstance(acc.accuracy, edgeperf.AccuracyResult) and acc.accuracy.passed
    assert acc.accuracy.metric == "top1" and acc.accuracy.count == 360
    assert (tmp_path / "acc" / "accuracy.txt").exists()
    assert sub.mode == "submission" and sub.accuracy.passed and sub.summary.valid
    assert sub.out_dir == tmp_path / "sub" / "performance"
    assert sub.result["submission_result"] == "VALID"
    assert sub.result["device"]["pid"] == perf.result["device"]["pid"]
    assert (tmp_path / "sub" / "accuracy" / "accuracy.txt").exists()


# ---------------------------------------------------------------- a lab script

LAB_SCRIPT = '''\
import csv
import sys

import edgeperf

QUERIES = {"SingleStream": 80, "Offline": 300}
with edgeperf.connect("local") as dev, open(sys.argv[1], "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["model", "scenario", "result", "metric", "unit", "agent_pid"])
    for model in ["synthetic:null", "builtin:mlp"]:
        for scenario, queries in QUERIES.items():
            try:
                r = dev.run(model=model, scenario=scenario, preset="smoke",
                            min_query_count=queries, warmup_queries=2,
                            out_dir=f"runs/{model.replace(':', '-')}/{scenario}")
            except edgeperf.EdgeperfError as exc:
                print(f"{model} {scenario}: {exc}", file=sys.stderr)
                continue
            out.writerow([model, scenario, r.summary.result, r.summary.metric,
                          r.summary.metric_unit, r.result["device"]["pid"]])
'''


def public_names_only(source: str) -> list[str]:
    """What in a script reaches past ``import edgeperf`` and its public attributes."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names if a.name.startswith("edgeperf")
                         and a.name != "edgeperf"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgeperf"):
            problems.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "edgeperf" and node.attr not in edgeperf.__all__:
            problems.append(f"edgeperf.{node.attr}")
    problems += re.findall(r"\bedgeperf(?:_agent)?\.[a-z_]+\.[a-z_]+", source)
    return problems


def test_public_names_only_sees_private_reaches() -> None:
    assert public_names_only(LAB_SCRIPT) == []
    assert public_names_only("import edgeperf.run.execute\n") == ["edgeperf.run.execute",
                                                                  "edgeperf.run.execute"]
    assert public_names_only("from edgeperf import connect\n") == ["from edgeperf import ..."]
    assert public_names_only("import edgeperf\nedgeperf.api.connect\n")[0] == "edgeperf.api"


def test_a_lab_script_with_only_public_names(tmp_path) -> None:
    script = tmp_path / "lab.py"
    script.write_text(LAB_SCRIPT)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, str(script), "metrics.csv"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["model"], r["scenario"]) for r in rows] == [
        ("synthetic:null", "SingleStream"), ("synthetic:null", "Offline"),
        ("builtin:mlp", "SingleStream"), ("builtin:mlp", "Offline")]
    assert all(r["result"] == "VALID" and float(r["metric"]) > 0 for r in rows), rows
    assert len({r["agent_pid"] for r in rows}) == 1  # one agent for the whole matrix
    assert {r["unit"] for r in rows} == {"ns", "samples/s"}
    assert (tmp_path / "runs" / "builtin-mlp" / "Offline" / "result.json").exists()


def test_the_readme_lab_script_uses_only_public_names() -> None:
    readme = (ROOT / "README.md").read_text()
    at = readme.index("### A lab script")
    block = re.search(r"```python\n(.*?)```", readme[at:], re.S)
    assert block, "README's lab script section has no python block"
    source = block.group(1)
    compile(source, "README.md", "exec")
    assert "edgeperf.connect(" in source and ".run(" in source and "csv" in source
    assert public_names_only(source) == []


def test_settings_object_and_overrides_together(tmp_path) -> None:
    base = small("Offline")
    with edgeperf.connect("local") as dev:
        r = dev.run(model="synthetic:null", settings=base, min_query_count=200,
                    out_dir=tmp_path / "o")
        with pytest.raises(edgeperf.UsageError, match="settings are for Offline"):
            dev.run(model="synthetic:null", settings=base, scenario="Server")
    assert r.result["settings"]["requested"] == dataclasses.replace(
        base, min_query_count=200).to_dict()
    assert r.valid and r.summary.sample_count >= 200


def test_an_ssh_board_ships_and_starts_its_agent_once_for_many_runs(ssh_device, tmp_path,
                                                                     hellos) -> None:
    """Over a real sshd: one SSH connection, one upload, one agent for a run, a second run
    and info; the second run's record says nothing was shipped for it."""
    from edgeperf.links.bundle import agent_zipapp

    profile = tmp_path / "dev.toml"
    profile.write_text(ssh_device.profile_toml(cache_dir=str(tmp_path / "device-cache")))
    data, _ = agent_zipapp()
    with edgeperf.connect(str(profile)) as dev:
        assert dev.link.startswith("ssh")
        a = dev.run(model="builtin:mlp", settings=small("SingleStream"), out_dir=tmp_path / "a")
        b = dev.run(model="builtin:mlp", settings=small("Offline"), out_dir=tmp_path / "b")
        info = dev.info()
    assert a.valid and b.valid, (a.invalid_reasons, b.invalid_reasons)
    assert hellos == [info["pid"]] == [a.result["device"]["pid"]] == [b.result["device"]["pid"]]
    assert info["deploy"]["uploaded_bytes"] == len(data)
    assert a.result["transfers"]["agent_bytes_sent"] == len(data)
    assert b.result["transfers"] == {"agent_bytes_sent": 0, "model_bytes_sent": 0,
                                     "samples_bytes_sent": 0}
