"""edgeperf's pytest plugin (host/pytest_plugin.py), used from the outside: pytest runs the
test project tests/plugin_project in a subprocess, as a team's CI would, and its JUnit XML
says which tests passed, were skipped or failed, and why."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "plugin_project"
DEVICE_TESTS = ("test_busy_model_latency", "test_settings_given_by_the_test",
                "test_board_profile")
PLAIN_TEST = "test_needs_no_board"


def run_project(tmp_path: Path, *args: str, entry_point: bool = True
                ) -> tuple[int, dict[str, tuple[str, str]], str, ET.Element]:
    """pytest on the project; (exit code, {test name: (outcome, message)}, output, junit).
    ``entry_point=False``: plugins are not autoloaded, the plugin comes from ``-p``."""
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "EDGEPERF_STORE"))}  # not this session's xdist
    env["EDGEPERF_STORE"] = str(tmp_path / "store.sqlite")  # EDGEPERF_CACHE*: the suite's
    if not entry_point:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        args = ("-p", "edgeperf.pytest_plugin", *args)
    cmd = [sys.executable, "-m", "pytest", str(PROJECT), "-p", "no:cacheprovider", "-rA",
           f"--junitxml={junit}", f"--basetemp={tmp_path / 'base'}", *args]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert junit.exists(), out
    tree = ET.parse(junit).getroot()
    outcomes = {}
    for case in tree.iter("testcase"):
        kids = [k for k in case if k.tag in ("skipped", "failure", "error")]
        outcome, message = (kids[0].tag, kids[0].get("message", "")) if kids else ("passed", "")
        outcomes[case.get("name")] = (outcome, message)
    return r.returncode, outcomes, out, tree


def board_file(tmp_path: Path, name: str, link: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[board]\nname = "{name}"\n\n[link]\n{link}\n')
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mute_ssh(tmp_path):
    """An SSH board whose 'server' accepts and hangs up at once; (profile, connections)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    port = srv.getsockname()[1]
    yield board_file(tmp_path, "mute-ssh", f'type = "ssh"\nhost = "127.0.0.1"\nport = {port}\n'
                     "connect_timeout = 5"), accepted
    srv.close()


def test_boards_parametrize_the_device_and_unreachable_ones_skip(tmp_path, mute_ssh):
    gone = board_file(tmp_path, "gone-serial",
                      'type = "serial"\nport = "/dev/ttyEDGEPERF-missing"')
    mute, accepted = mute_ssh
    rc, outcomes, out, junit = run_project(
        tmp_path, "--edgeperf-board", "local", f"--edgeperf-board={gone}",
        f"--edgeperf-board={mute}", entry_point=False)
    assert rc == 0, out
    assert "edgeperf: boards local, " in out  # the report header
    expected = {f"{t}[local]": "passed" for t in DEVICE_TESTS}
    expected.update({f"{t}[{b}]": "skipped" for t in DEVICE_TESTS
                     for b in ("gone-serial", "mute-ssh")})
    expected[PLAIN_TEST] = "passed"
    assert {name: o for name, (o, _) in outcomes.items()} == expected, out
    for t in DEVICE_TESTS:
        gone_why = outcomes[f"{t}[gone-serial]"][1]
        assert f"edgeperf board {gone} cannot be reached: serial /dev/ttyEDGEPERF-missing" \
            in gone_why
        assert f"edgeperf board {mute} cannot be reached: SshLink" in outcomes[
            f"{t}[mute-ssh]"][1]
    assert len(accepted) == 1  # three tests, one connection: the error is kept
    # each edgeperf_run call in its test's tmp dir, named in the JUnit XML; both in the store
    dirs = [Path(p.get("value")) for p in junit.iter("property")
            if p.get("name") == "edgeperf_out_dir"]
    assert len(dirs) == 2 and all((d / "mlperf_log_summary.txt").exists() for d in dirs)
    assert all(str(tmp_path / "base") in str(d) for d in dirs)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = db.execute("SELECT board, model, scenario, result FROM runs ORDER BY id").fetchall()
    assert sorted(rows) == [("local", "synthetic:busy:100", "SingleStream", "VALID"),
                            ("local", "synthetic:null", "SingleStream", "VALID")]


def test_strict_fails_the_tests_of_an_unreachable_board_naming_it(tmp_path):
    closed = board_file(tmp_path, "closed-ssh",
                        f'type = "ssh"\nhost = "127.0.0.1"\nport = {closed_port()}')
    rc, outcomes, out, _ = run_project(tmp_path, f"--edgeperf-board={closed}",
                                       "--edgeperf-strict")  # found through the entry point
    assert rc == 1, out
    assert outcomes[PLAIN_TEST] == ("passed", "")
    for t in DEVICE_TESTS:
        outcome, message = outcomes[f"{t}[closed-ssh]"]
        assert outcome == "error"  # the fixture's setup fails: the test could not run
        assert f"edgeperf board {closed} cannot be reached: SshLink: 127.0.0.1:" in message
        assert "refused the connection" in message and "(--edgeperf-strict)" in message
    assert f"ERROR tests/plugin_project/check_model_perf.py::{DEVICE_TESTS[0]}[closed-ssh]" \
        in out  # -rA's summary line


def test_without_a_board_the_device_tests_skip_or_fail_under_strict(tmp_path):
    rc, outcomes, out, _ = run_project(tmp_path)  # the entry point only: no option given
    assert rc == 0, out
    assert "edgeperf: boards" not in out
    assert outcomes == {**{t: ("skipped", "no --edgeperf-board given") for t in DEVICE_TESTS},
                        PLAIN_TEST: ("passed", "")}
    rc, outcomes, out, _ = run_project(tmp_path, "--edgeperf-strict")
    assert rc == 1, out
    assert outcomes[PLAIN_TEST] == ("passed", "")
    for t in DEVICE_TESTS:
        assert outcomes[t][0] == "error"
        assert outcomes[t][1] == ('failed on setup with "Failed: no --edgeperf-board given '
                                  '(--edgeperf-strict)"')


def test_ini_boards_and_the_out_dir(tmp_path):
    out_dir = tmp_path / "runs"
    rc, outcomes, out, _ = run_project(
        tmp_path, "-o", "edgeperf_boards=local", f"--edgeperf-out={out_dir}",
        "-k", "settings_given or board_profile")
    assert rc == 0, out
    assert {n: o for n, (o, _) in outcomes.items()} == {
        "test_settings_given_by_the_test[local]": "passed",
        "test_board_profile[local]": "passed"}
    (summary,) = out_dir.glob("*/1-synthetic-null/mlperf_log_summary.txt")
    assert summary.parent.parent.name == \
        "check_model_perf.py_test_settings_given_by_the_test_local"
    assert "Result is : VALID" in summary.read_text()
