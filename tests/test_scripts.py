"""scripts/demo.sh and scripts/test.sh as a newcomer runs them, with the installers stubbed:
a fake repo holds the real scripts, a .venv whose python and edgeperf only log their
arguments, and dpkg-query/apt-get stand-ins that know no package (apt-get install exits 100,
as the real one does for a name it cannot find)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
{tail}
"""


def _fake_repo(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    repo, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "calls.log"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    bin_dir.mkdir()
    stubs = {venv / "python": "exit 0", venv / "edgeperf": "exit 0",
             bin_dir / "dpkg-query": "exit 1", bin_dir / "apt-get": '[ "$1" = update ] || exit 100'}
    for path, tail in stubs.items():
        path.write_text(STUB.format(log=log, tail=tail))
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return repo, log, env


def test_demo_passes_its_arguments_to_edgeperf_not_to_apt(tmp_path):
    repo, log, env = _fake_repo(tmp_path)
    r = subprocess.run(["bash", str(repo / "scripts" / "demo.sh"), "--quiet"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    assert not [c for c in calls if c.startswith(("apt-get", "dpkg-query"))]
    assert calls[0] == "python -m pip install -q -e .[litert]"
    assert calls[-1] == ("edgeperf run --board local --model builtin:mlp --scenario "
                         "SingleStream,Offline --preset quick --target-latency-ms 0.001 "
                         "--out results/demo --quiet")


def test_test_script_asks_for_its_own_debian_packages_only(tmp_path):
    repo, log, env = _fake_repo(tmp_path)
    r = subprocess.run(["bash", str(repo / "scripts" / "test.sh"), "-k", "nothing"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 100  # the stand-in apt-get cannot install them
    calls = log.read_text().splitlines()
    assert calls[:2] == ["dpkg-query -W -f=${Status} openssh-server",
                         "dpkg-query -W -f=${Status} iproute2"]
    packages = ("openssh-server iproute2 gcc-arm-none-eabi libnewlib-arm-none-eabi "
                "qemu-system-arm postgresql chromium ser2net systemd gcc")
    assert calls[-1] == f"apt-get install -y -qq {packages}"
    assert f"installing Debian packages: {packages}" in r.stdout
