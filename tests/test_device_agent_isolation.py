"""The agent ships alone to devices with Python 3.9+: check both promises."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeperf.links.bundle import agent_zipapp, local_agent_path

AGENT = Path(__file__).resolve().parent.parent / "device_agent"
FILES = sorted(AGENT.glob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parses_as_python_39(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def test_vermin_says_python_39_is_enough():
    """vermin also checks the standard-library APIs used, not only the syntax."""
    vermin = Path(sys.executable).parent / "vermin"
    r = subprocess.run([str(vermin), "-t=3.9-", "--violations",
                        "--no-tips", "--eval-annotations", "--backport", "dataclasses",
                        *map(str, FILES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_imports_nothing_of_the_host(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            assert top not in ("edgeperf", "edgeperf_firmware", "host", "firmware_bridge"), \
                f"{path.name} imports {name}"


def test_zipapp_holds_only_the_agent_and_runs_isolated(tmp_path):
    data, sha = agent_zipapp()
    zpath = tmp_path / f"{sha}.pyz"
    zpath.write_bytes(data)
    names = zipfile.ZipFile(zpath).namelist()
    assert names[0] == "__main__.py"
    assert all(n == "__main__.py" or n.startswith("edgeperf_agent/") for n in names)
    # -I: isolated mode, no user site, no PYTHONPATH: the zipapp must stand alone
    r = subprocess.run([sys.executable, "-I", str(zpath), "version"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "0.1.0", r.stderr
    assert agent_zipapp() == (data, sha)  # reproducible: same bytes, same name
    assert local_agent_path().name == f"{sha}.pyz"


def test_ruff_clean_for_python_39():
    """The linter, told the agent's oldest Python, finds nothing (syntax included)."""
    ruff = Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "--target-version", "py39", str(AGENT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
