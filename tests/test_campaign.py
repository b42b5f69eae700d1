"""Campaigns: boards x models x scenarios, in parallel over the boards, resumable after a kill,
an unreachable board skipped, a reset board's run kept as .failed-N and run again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serial_agent import Agent

from edgeperf.campaigns import run_campaign
from edgeperf.cli.main import main
from edgeperf.store.db import open_store
from edgeperf.testing.line_sim import Faults, LineSim

MODELS = ["synthetic:busy:100", "synthetic:busy:200"]
SCENARIOS = ["SingleStream", "Offline"]
SETTINGS = {"min_duration_ms": 100, "SingleStream": {"target_latency_ns": 50_000},
            "Offline": {"target_qps": 20_000}}


def _toml(v: object) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def write_plan(path: Path, boards: list[str], *, name: str = "t", models=MODELS,
               scenarios=SCENARIOS, settings=SETTINGS, retries: int = 1) -> Path:
    lines = [f"models = {_toml(models)}", f"scenarios = {_toml(scenarios)}", "",
             "[campaign]", f"name = {_toml(name)}", 'out = "out"', f"retries = {retries}", ""]
    for b in boards:
        lines += ["[[boards]]", f"name = {_toml(b)}", ""]
    lines += ["[settings]"] + [f"{k} = {_toml(v)}" for k, v in settings.items()
                               if not isinstance(v, dict)]
    for scen, table in settings.items():
        if isinstance(table, dict):
            lines += [f"[settings.{scen}]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ssh_board(ssh_device, tmp_path) -> Path:
    p = tmp_path / "sshdev.toml"
    p.write_text(ssh_device.profile_toml())
    return p


@pytest.fixture
def serial_board(tmp_path):
    """A serial board: the agent on one end of two ptys joined at 921600 baud (LineSim), its
    profile on the other; the agent outlives a campaign killed mid-run, as a board does."""
    sim = LineSim(921600, Faults(), seed=1).start()
    agent = Agent(sim, tmp_path / "serial-agent-cache")
    p = tmp_path / "uart.toml"
    p.write_text(f'[board]\ndescription = "pty serial board"\n\n[link]\ntype = "serial"\n'
                 f'port = "{sim.host_path}"\nbaud = 921600\n')
    yield p
    agent.stop()
    sim.close()


def _records(campaign: str | None = None) -> list[dict]:
    with open_store() as st:
        if campaign is None:
            return st.query("SELECT run_dir, campaign_id, result FROM runs")
        return st.query("SELECT run_dir, campaign_id, result FROM runs WHERE campaign_id = ?",
                        (campaign,))


def _finished_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("result.json") if ".failed-" not in str(p))


def test_two_boards_two_models_two_scenarios(tmp_path, ssh_board, serial_board, capsys) -> None:
    plan = write_plan(tmp_path / "plan.toml", [str(serial_board), str(ssh_board)])
    events: list[tuple[str, dict]] = []
    r = run_campaign(plan, progress=lambda e, d: events.append((e, d)))
    assert r.exit_code == 0, r.cells
    assert len(r.cells) == 8
    assert all(c["status"] == "done" and c["result"] == "VALID" for c in r.cells.values())
    out = tmp_path / "out"
    assert len(_finished_dirs(out)) == 8
    assert (out / "sshdev" / "synthetic-busy-200" / "Offline" / "performance" / "rep1" /
            "result.json").is_file()
    recs = _records(r.campaign)
    assert len(recs) == 8 and len(_records()) == 8
    assert {Path(x["run_dir"]) for x in recs} == {d.resolve() for d in _finished_dirs(out)}
    # progress: per board, "i/n"
    boards = {d["board"] for e, d in events if e == "cell-done"}
    assert boards == {"uart", "sshdev"}
    assert r.boards["uart"]["link"].startswith("serial /dev/pts/"), r.boards
    assert r.boards["sshdev"]["link"].startswith("ssh "), r.boards
    assert any(e == "healthy" and d["board"] == "sshdev" for e, d in events)
    capsys.readouterr()
    assert main(["results", "list", "--campaign", r.campaign]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if str(out) in line]
    assert len(listed) == 8
    # run again: nothing is missing, nothing runs
    again = run_campaign(plan)
    assert again.campaign == r.campaign and again.exit_code == 0
    assert len(_records()) == 8


def test_killed_and_resumed_runs_each_cell_once(tmp_path, ssh_board, serial_board) -> None:
    plan = write_plan(tmp_path / "plan.toml", [str(serial_board), str(ssh_board)], name="resume")
    state = tmp_path / "out" / "campaign.json"
    cmd = [sys.executable, "-m", "edgeperf.cli", "campaign", str(plan)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    done_at_kill = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            cells = json.loads(state.read_text())["cells"]
        except (OSError, ValueError, KeyError):
            cells = {}
        done_at_kill = sum(c["status"] == "done" for c in cells.values())
        if done_at_kill >= 2:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the campaign, mid-way (the boards' agents live on)
    proc.wait(timeout=10)
    assert 2 <= done_at_kill < 8, proc.stderr.read() if proc.stderr else ""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done already" in r.stdout
    out = tmp_path / "out"
    finished = _finished_dirs(out)
    assert len(finished) == 8
    data = json.loads(state.read_text())
    assert all(c["status"] == "done" for c in data["cells"].values())
    recs = _records(data["campaign"])
    assert len(recs) == 8
    assert len({x["run_dir"] for x in recs}) == 8  # no cell recorded twice
    # a run the kill cut short was kept aside, not counted, and run again
    for kept in out.rglob("*.failed-*"):
        assert not (kept / "result.json").exists()
        assert json.loads((kept / "attempts.json").read_text())["reason"].startswith(
            "interrupted")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_board_is_reported_and_skipped(tmp_path, ssh_device, capsys) -> None:
    gone = tmp_path / "gone.toml"
    gone.write_text(ssh_device.profile_toml(host="127.0.0.1", port=_closed_port(),
                                            connect_timeout=3).replace('"sshdev"', '"gone"'))
    plan = write_plan(tmp_path / "plan.toml", ["local", str(gone)], name="unreach")
    t0 = time.monotonic()
    assert main(["campaign", str(plan)]) == 3
    assert time.monotonic() - t0 < 30  # not waited on forever
    printed = capsys.readouterr()
    assert "[gone]" in printed.out and "unhealthy" in printed.out
    data = json.loads((tmp_path / "out" / "campaign.json").read_text())
    assert data["boards"]["gone"]["health"] == "unhealthy"
    gone_cells = {k: c for k, c in data["cells"].items() if k.startswith("gone/")}
    assert len(gone_cells) == 4
    for c in gone_cells.values():
        assert c["status"] == "skipped" and "cannot connect" in c["reason"]
    local = [c for k, c in data["cells"].items() if k.startswith("local/")]
    assert len(local) == 4 and all(c["status"] == "done" for c in local)
    assert len(_records(data["campaign"])) == 4


def test_a_board_reset_mid_run_is_retried_and_the_attempt_kept(tmp_path, ssh_device,
                                                               ssh_board) -> None:
    plan = write_plan(tmp_path / "plan.toml", [str(ssh_board)], name="reset",
                      models=["synthetic:busy:200"], scenarios=["SingleStream"],
                      settings={"min_duration_ms": 1500, "target_latency_ns": 50_000},
                      retries=2)
    killed: list[str] = []

    def progress(event: str, data: dict) -> None:
        if event == "device" and data["event"] == "progress" and not killed:
            killed.append(data["cell"])
            ssh_device.kill_sessions()  # the agent dies mid-run; sshd still listens

    r = run_campaign(plan, progress=progress)
    assert killed
    cell_id = "sshdev/synthetic-busy-200/SingleStream/performance/rep1"
    cell = r.cells[cell_id]
    assert cell["status"] == "done" and cell["result"] == "VALID", cell
    assert cell["attempts"] == 2 and len(cell["failed_attempts"]) == 1
    d = tmp_path / "out" / cell_id
    failed = d.with_name("rep1.failed-1")
    assert failed.is_dir() and (d / "result.json").is_file()
    marker = json.loads((failed / "attempts.json").read_text())
    assert marker["failed"] is True and marker["attempt"] == 1 and marker["reason"]
    assert len(_records(r.campaign)) == 1  # the retry; the failed attempt is apart
    assert all(x["campaign_id"] == f"{r.campaign}:failed" for x in _records()
               if x["campaign_id"] != r.campaign)


def test_a_board_unreachable_mid_campaign_is_reported_and_the_rest_finish(
        tmp_path, ssh_device, ssh_board) -> None:
    plan = write_plan(tmp_path / "plan.toml", ["local", str(ssh_board)], name="midway")
    cut: list[str] = []

    def progress(event: str, data: dict) -> None:
        if event == "cell-done" and data["board"] == "sshdev" and not cut:
            cut.append(data["cell"])
            ssh_device.kill()  # sshd and its sessions: the board is gone from the network

    try:
        r = run_campaign(plan, progress=progress)
    finally:
        ssh_device.restart()
    assert cut and r.exit_code == 3
    assert r.boards["sshdev"]["health"] == "unhealthy"
    ssh = {k: c for k, c in r.cells.items() if k.startswith("sshdev/")}
    assert ssh[cut[0]]["status"] == "done"
    rest = [c for k, c in ssh.items() if k != cut[0]]
    assert rest[0]["status"] == "failed" and "unhealthy" in rest[0]["reason"]
    assert all(c["status"] == "skipped" and "unhealthy" in c["reason"] for c in rest[1:])
    local = [c for k, c in r.cells.items() if k.startswith("local/")]
    assert all(c["status"] == "done" and c["result"] == "VALID" for c in local)
    assert len(_records(r.campaign)) == 5


@pytest.mark.parametrize(("change", "message"), [
    ({"settings": {"min_duraton_ms": 1}}, "settings.min_duraton_ms is not a TestSettings"),
    ({"campaign": {"name": "x", "repeat": 2}}, "unknown key campaign.repeat"),
    ({"scenarios": ["Singlestream"]}, "scenarios: unknown 'Singlestream'"),
    ({"models": []}, "give models"),
    ({"boards": [{"name": "local", "models": ["a"]}]}, "before any [table]"),
])
def test_a_wrong_plan_names_the_key(tmp_path, change, message) -> None:
    from edgeperf.campaigns import load_plan
    from edgeperf.errors import UsageError

    plan = {"campaign": {"name": "x", "out": str(tmp_path / "o")}, "boards": [{"name": "local"}],
            "models": ["synthetic:null"], "scenarios": ["SingleStream"], **change}
    with pytest.raises(UsageError) as exc:
        load_plan(plan)
    assert message in str(exc.value)
    assert not (tmp_path / "o").exists()


def test_a_changed_plan_is_refused_unless_forced(tmp_path, capsys) -> None:
    plan = write_plan(tmp_path / "plan.toml", ["local"], name="changed",
                      models=["synthetic:busy:100"], scenarios=["SingleStream"])
    assert main(["campaign", str(plan), "--quiet"]) == 0
    plan.write_text(plan.read_text().replace("retries = 1", "retries = 3"))
    capsys.readouterr()
    assert main(["campaign", str(plan)]) == 2
    assert "campaign.retries" in capsys.readouterr().err
    assert main(["campaign", str(plan), "--force", "--quiet"]) == 0
    assert len(_records()) == 1


def test_a_throttled_board_is_unhealthy(tmp_path, monkeypatch) -> None:
    from edgeperf.run import device_state

    monkeypatch.setattr(device_state, "throttling", lambda telemetry, cpus: {
        "throttled": True, "throttled_reasons": ["cpu0 at 500 MHz of 1800 MHz"]})
    plan = write_plan(tmp_path / "plan.toml", ["local"], name="hot",
                      models=["synthetic:busy:100"], scenarios=["SingleStream"])
    r = run_campaign(plan)
    assert r.exit_code == 3
    assert r.boards["local"]["health"] == "unhealthy"
    assert "throttled: cpu0 at 500 MHz" in r.boards["local"]["reason"]
    assert [c["status"] for c in r.cells.values()] == ["skipped"]
    assert _records() == []


def test_repeats_cool_down_and_per_board_settings(tmp_path) -> None:
    plan = {"campaign": {"name": "reps", "out": str(tmp_path / "out"), "repeats": 2,
                         "cool_down_s": 0.2},
            "boards": [{"name": "local", "settings": {"min_duration_ms": 150,
                                                      "SingleStream": {"min_query_count": 50}}}],
            "models": ["synthetic:busy:100"], "scenarios": ["SingleStream"],
            "settings": {"min_duration_ms": 100, "target_latency_ns": 50_000}}
    events: list[tuple[str, dict]] = []
    r = run_campaign(plan, progress=lambda e, d: events.append((e, d)))
    assert r.exit_code == 0, r.cells
    assert list(r.cells) == [f"local/synthetic-busy-100/SingleStream/performance/rep{n}"
                             for n in (1, 2)]
    assert [e for e, _ in events].count("cool-down") == 1  # between the two runs only
    for n in (1, 2):
        rec = json.loads((tmp_path / "out" / "local" / "synthetic-busy-100" / "SingleStream" /
                          "performance" / f"rep{n}" / "result.json").read_text())
        req = rec["settings"]["requested"]
        assert req["min_duration_ms"] == 150 and req["min_query_count"] == 50
        assert req["target_latency_ns"] == 50_000


def test_an_mcu_board_runs_the_tasks_by_tinys_procedures_beside_an_agent_board(tmp_path):
    plan = {"campaign": {"name": "mixed", "out": str(tmp_path / "out")},
            "boards": [{"name": "local"},
                       {"name": "emulated-tiny", "settings": {"windows": 5, "window_s": 0.2}}],
            "models": ["synthetic:busy:100"], "tasks": ["ic-digits"],
            "scenarios": ["SingleStream"], "modes": ["performance", "energy"],
            "settings": {"min_duration_ms": 100, "target_latency_ns": 50_000}}
    r = run_campaign(plan)
    assert sorted(r.cells) == [  # energy: MCU boards only; no scenarios, no models on them
        "emulated-tiny/ic-digits/tiny/energy/rep1",
        "emulated-tiny/ic-digits/tiny/performance/rep1",
        "local/ic-digits/SingleStream/performance/rep1",
        "local/synthetic-busy-100/SingleStream/performance/rep1"]
    tiny = r.cells["emulated-tiny/ic-digits/tiny/performance/rep1"]
    # 0.2 s windows: Tiny's procedure ran to its end and says INVALID (it wants 10 s)
    assert tiny["status"] == "done" and tiny["result"] == "INVALID", tiny
    rec = json.loads((tmp_path / "out" / "emulated-tiny" / "ic-digits" / "tiny" / "performance"
                      / "rep1" / "result.json").read_text())
    assert rec["mode"] == "performance" and len(rec["procedure"]["windows"]) == 5
    assert all(w["seconds"] >= 0.2 for w in rec["procedure"]["windows"])
    assert r.cells["local/synthetic-busy-100/SingleStream/performance/rep1"]["result"] == "VALID"
    recs = {Path(x["run_dir"]).parts[-5] for x in _records(r.campaign)}
    assert "emulated-tiny" in recs and "local" in recs


@pytest.mark.parametrize("change,message", [
    ({"models": ["synthetic:null"], "tasks": []}, "board emulated-tiny is a microcontroller: "
                                                  "it runs tasks"),
    ({"board_settings": {"min_duration_ms": 5}}, "settings.min_duration_ms: the board is a "
                                                 "microcontroller; its settings are windows, "
                                                 "window_s"),
    ({"board_settings": {"windows": 0}}, "settings.windows must be a number > 0"),
    ({"modes": ["energy"], "boards": ["local"]}, "board local runs the agent: mode energy is "
                                                 "for microcontrollers"),
])
def test_an_mcu_boards_plan_errors(tmp_path, change, message) -> None:
    board = {"name": "emulated-tiny", "settings": change.get("board_settings", {})}
    plan = {"campaign": {"name": "m", "out": str(tmp_path / "out")},
            "boards": [{"name": n} for n in change["boards"]] if "boards" in change
            else [board], "tasks": change.get("tasks", ["ic-digits"]),
            "modes": change.get("modes", ["performance"])}
    if "models" in change:
        plan["models"] = change["models"]
    if "boards" in change:
        plan["scenarios"] = ["SingleStream"]
    from edgeperf.errors import UsageError

    with pytest.raises(UsageError, match=message):
        run_campaign(plan)
