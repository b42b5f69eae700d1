"""Shared fixtures: a second Python with tflite-runtime 2.14 and numpy<2, temp caches."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def host_cache_root(tmp_path_factory) -> Path:
    """One host cache for the session (the agent zipapp, the trained task models), shared by
    the xdist workers so that each reference model is trained once (training.py locks)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "edgeperf-cache"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch, host_cache_root):
    """Every test gets its own agent cache; the host's cache is shared by the session."""
    monkeypatch.setenv("EDGEPERF_AGENT_CACHE", str(tmp_path_factory.mktemp("agent-cache")))
    monkeypatch.setenv("EDGEPERF_CACHE", str(host_cache_root))
    # the results store: never the user's (tests that need one set their own)
    monkeypatch.setenv("EDGEPERF_STORE",
                       str(tmp_path_factory.mktemp("store") / "results.sqlite"))


def _pinned_tools(script_name: str, what: str) -> tuple[str, str]:
    """(git dir, commit) that scripts/SCRIPT prints (it gets them if missing); a failure
    names scripts/test.sh, which runs it."""
    script = ROOT / "scripts" / script_name
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{what} not here: {r.stderr.strip()} (run scripts/test.sh, which gets "
                    "it)", pytrace=False)
    commit = subprocess.run(["bash", str(script), "--commit"], capture_output=True,
                            text=True, check=True).stdout.strip()
    return r.stdout.strip(), commit


@pytest.fixture(scope="session")
def mlcommons_inference() -> tuple[str, str]:
    """(git dir, commit) of mlcommons/inference, whose tools/submission the submission tests
    run unmodified; scripts/test.sh gets it (scripts/mlcommons_tools.sh)."""
    return _pinned_tools("mlcommons_tools.sh", "MLCommons' submission tools are")


@pytest.fixture(scope="session")
def mlcommons_tiny() -> tuple[str, str]:
    """(git dir, commit) of mlcommons/tiny, whose tools/submission/submission_checker.py the
    Tiny submission tests run unmodified; scripts/test.sh gets it (scripts/tiny_tools.sh)."""
    return _pinned_tools("tiny_tools.sh", "MLCommons' Tiny submission checker is")


def _has_tflite_runtime(python: str) -> bool:
    probe = "import tflite_runtime.interpreter, numpy; assert numpy.__version__ < '2'"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def tflite_python() -> str:
    """A Python where tflite_runtime 2.14 (numpy<2) imports: $EDGEPERF_TFLITE_PYTHON, or
    .venv-tflite, built here on first use (what Raspberry Pi OS users have)."""
    env = os.environ.get("EDGEPERF_TFLITE_PYTHON")
    if env:
        assert _has_tflite_runtime(env), f"EDGEPERF_TFLITE_PYTHON={env} lacks tflite_runtime"
        return env
    venv = ROOT / ".venv-tflite"
    python = venv / "bin" / "python"
    if not (python.exists() and _has_tflite_runtime(str(python))):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "tflite-runtime==2.14.0",
                        "numpy<2"], check=True)
    assert _has_tflite_runtime(str(python))
    return str(python)


@pytest.fixture(scope="session")
def executorch_python() -> str:
    """A Python where ExecuTorch's runtime imports and the reference tasks can be exported:
    $EDGEPERF_EXECUTORCH_PYTHON, or .venv-executorch (scripts/test.sh builds it: torch, and
    an install of several minutes, so it is not built here)."""
    python = os.environ.get("EDGEPERF_EXECUTORCH_PYTHON") or str(
        ROOT / ".venv-executorch" / "bin" / "python")
    probe = subprocess.run([python, "-c", "import executorch.runtime, edgeperf"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, (f"{python} cannot import executorch.runtime and edgeperf "
                                   f"(run the tests with scripts/test.sh, which builds "
                                   f".venv-executorch): {probe.stderr[-500:]}")
    return python


@pytest.fixture(scope="session")
def executorch_tasks(executorch_python: str, host_cache_root: Path) -> dict[str, str]:
    """The reference tasks' .pte programs, exported once by scripts/export_executorch.py
    into the session's task cache (where ``TASK:executorch`` finds them); {task: path}."""
    from edgeperf.tasks.training import AD_SYNTHETIC, IC_DIGITS, build

    env = dict(os.environ, EDGEPERF_CACHE=str(host_cache_root))
    before = os.environ.get("EDGEPERF_CACHE")
    os.environ["EDGEPERF_CACHE"] = str(host_cache_root)  # the tests' cache, as they see it
    try:
        trained = {r.name: build(r) for r in (IC_DIGITS, AD_SYNTHETIC)}
        out = {name: t.directory / f"{name}-fp32.pte" for name, t in trained.items()}
        with _task_lock(trained["ic-digits"].directory):
            missing = [name for name, path in out.items() if not path.exists()]
            if missing:  # one export process: torch is imported once
                r = subprocess.run([executorch_python,
                                    str(ROOT / "scripts" / "export_executorch.py"),
                                    *[a for name in missing for a in ("--task", name)]],
                                   env=env, capture_output=True, text=True)
                assert r.returncode == 0, r.stderr[-3000:]
        for path in out.values():
            assert path.exists(), f"export_executorch.py wrote no {path}"
        return {name: str(path) for name, path in out.items()}
    finally:
        if before is None:
            os.environ.pop("EDGEPERF_CACHE", None)
        else:
            os.environ["EDGEPERF_CACHE"] = before


@contextlib.contextmanager
def _task_lock(directory: Path):
    import fcntl

    with open(directory.parent / f".{directory.name}.pte.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # the test workers export once between them
        yield


@pytest.fixture(scope="session")
def ssh_device(tmp_path_factory):
    """A real sshd in its own network namespace (loopback where none can be made); one per
    test worker, torn down with its namespace at the end."""
    import atexit

    from sshd import SshDevice

    dev = SshDevice(tmp_path_factory.mktemp("sshd"))
    atexit.register(dev.stop)  # also when the session dies before teardown
    try:
        dev.start()
        yield dev
    finally:
        dev.stop()


@pytest.fixture
def local_client():
    """An AgentClient on the local board's agent, said hello to; closed after the test."""
    from edgeperf.links.local import LocalLink
    from edgeperf.run.client import AgentClient

    link = LocalLink()
    client = AgentClient(link)
    client.hello()
    yield client
    client.bye()
    link.close()
