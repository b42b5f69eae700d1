"""The agent's view of the device: the stdlib-only check, throttling flags, governors (as
root, and unprivileged through the shipped tmpfiles rule).

sysfs and vcgencmd are the hardware boundary: a fake tree ($EDGEPERF_SYSFS_ROOT) and a fake
vcgencmd on PATH stand in for them; everything else is the real agent code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edgeperf.links.bundle import agent_zipapp
from edgeperf.links.local import ProcessLink
from edgeperf.run.client import AgentClient, AgentError
from edgeperf_agent import telemetry
from edgeperf_agent.tuning import Governors, TuningError


def test_check_runs_without_numpy(tmp_path):
    """``check`` must answer on a device with nothing but the standard library."""
    data, sha = agent_zipapp()
    z = tmp_path / f"{sha}.pyz"
    z.write_bytes(data)
    bare = subprocess.run([sys.executable, "-I", "-S", str(z), "check"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert bare.returncode == 0, bare.stderr
    info = json.loads(bare.stdout)
    assert info["numpy"] is None and info["numpy_error"].startswith("ModuleNotFoundError")
    assert info["runtimes"] == {"ai_edge_litert": None, "tflite_runtime": None}
    assert info["python_ok"] is True and info["python"] == "%d.%d.%d" % sys.version_info[:3]
    full = json.loads(subprocess.run([sys.executable, str(z), "check"], capture_output=True,
                                     text=True, check=True).stdout)
    import numpy as np

    assert full["numpy"] == np.__version__ and full["runtimes"]["ai_edge_litert"]
    assert full["in_venv"] == (sys.prefix != sys.base_prefix)


def test_parse_throttled_and_vcgencmd(tmp_path, monkeypatch):
    assert telemetry.parse_throttled("throttled=0x50005") == {
        "raw": "0x50005", "now": ["under-voltage", "throttled"],
        "since_boot": ["under-voltage", "throttled"]}
    assert telemetry.parse_throttled("throttled=0x0")["now"] == []
    monkeypatch.setenv("PATH", str(tmp_path))
    assert telemetry.throttling() is None  # no vcgencmd: nothing claimed
    tool = tmp_path / "vcgencmd"
    tool.write_text("#!/bin/sh\necho throttled=0x80008\n")
    tool.chmod(0o755)
    assert telemetry.throttling() == {"source": "vcgencmd get_throttled", "raw": "0x80008",
                                      "now": ["soft temperature limit"],
                                      "since_boot": ["soft temperature limit"]}
    tool.write_text("#!/bin/sh\necho 'VCHI initialization failed' >&2\nexit 255\n")
    assert "VCHI initialization failed" in telemetry.throttling()["error"]


def _sysfs(root, govs=("ondemand", "ondemand")):
    for c, g in enumerate(govs):
        f = root / "devices" / "system" / "cpu" / f"cpu{c}" / "cpufreq"
        f.mkdir(parents=True)
        (f / "scaling_governor").write_text(g + "\n")
        (f / "scaling_available_governors").write_text("ondemand performance powersave\n")
        (f / "scaling_max_freq").write_text("1200000\n")
        (f / "cpuinfo_max_freq").write_text("1800000\n")
    return [root / "devices" / "system" / "cpu" / f"cpu{c}" / "cpufreq" / "scaling_governor"
            for c in range(len(govs))]


def test_governors_set_restore(tmp_path, monkeypatch):
    files = _sysfs(tmp_path, ("ondemand", "powersave"))
    monkeypatch.setenv("EDGEPERF_SYSFS_ROOT", str(tmp_path))
    g = Governors()  # as root (the tests run as root): the files are writable
    assert g.get()["governors"] == {"0": "ondemand", "1": "powersave"}
    g.set("performance")
    g.set("powersave", [0])  # the first change's state is what gets restored
    assert [f.read_text() for f in files] == ["powersave", "performance"]
    assert g.restore() == {"restored": {"0": "ondemand", "1": "powersave"}, "failed": {}}
    assert [f.read_text() for f in files] == ["ondemand", "powersave"]
    assert g.restore() == {"restored": {}, "failed": {}}
    with pytest.raises(TuningError, match="cpu0 cannot use governor 'turbo'; it offers: "
                                          "ondemand, performance, powersave"):
        g.set("turbo")
    with pytest.raises(TuningError, match=r"cpu7 has no cpufreq governor; the device has \[0, 1\]"):
        g.set("performance", [7])
    snap = telemetry.snapshot()
    assert snap["cpus_freq_limited"] == [0, 1]  # scaling_max_freq below cpuinfo_max_freq
    monkeypatch.setenv("EDGEPERF_SYSFS_ROOT", str(tmp_path / "empty"))
    with pytest.raises(TuningError, match="exposes no cpufreq governor"):
        Governors().set("performance")


BOARDS = Path(__file__).resolve().parent.parent / "boards"


@pytest.fixture
def device_root():
    """A fake device root the agent's user may enter (tmp_path sits under a 0700 directory),
    with the shipped sysusers file applied by the real systemd-sysusers: (root, uid, gid,
    supplementary gids) of user edgeperf."""
    root = Path(tempfile.mkdtemp(prefix="edgeperf-device-"))
    root.chmod(0o755)
    try:
        (root / "etc" / "sysusers.d").mkdir(parents=True)
        shutil.copy(BOARDS / "edgeperf-agent.sysusers.conf",
                    root / "etc" / "sysusers.d" / "edgeperf-agent.conf")
        subprocess.run(["systemd-sysusers", f"--root={root}"], check=True, capture_output=True)
        pw = {f[0]: f for f in (ln.split(":") for ln in (root / "etc/passwd").read_text()
                                .splitlines())}
        gr = [ln.split(":") for ln in (root / "etc/group").read_text().splitlines()]
        uid, gid = int(pw["edgeperf"][2]), int(pw["edgeperf"][3])
        groups = sorted({gid} | {int(g[2]) for g in gr if "edgeperf" in g[3].split(",")})
        yield root, uid, gid, groups
    finally:
        shutil.rmtree(root)


def _unprivileged_agent(root: Path, uid: int, gid: int, groups: list[int]) -> ProcessLink:
    """The real agent zipapp on stdio, as uid/gid/groups (setpriv drops root before exec)."""
    data, _ = agent_zipapp()
    pyz = root / "agent.pyz"
    pyz.write_bytes(data)
    pyz.chmod(0o644)
    cache = root / "cache"
    cache.mkdir()
    os.chown(cache, uid, gid)
    env = dict(os.environ, EDGEPERF_SYSFS_ROOT=str(root / "sys"), EDGEPERF_AGENT_CACHE=str(cache),
               HOME=str(cache))
    env.pop("PYTHONPATH", None)
    return ProcessLink(["setpriv", f"--reuid={uid}", f"--regid={gid}",
                        f"--groups={','.join(map(str, groups))}", sys.executable, str(pyz),
                        "serve", "--stdio"], env=env, name="unprivileged")


def test_governor_set_unprivileged_through_the_tmpfiles_rule_only(device_root):
    """The serial unit's user (made by the shipped sysusers file) changes the governor once
    the shipped tmpfiles rule (applied by the real systemd-tmpfiles) lets group edgeperf
    write scaling_governor, and only that; before it, the refusal names the rule."""
    root, uid, gid, groups = device_root
    files = _sysfs(root / "sys")
    cpufreq = [f.parent for f in files]
    for d in cpufreq:
        for f in d.iterdir():
            f.chmod(0o644)
    link = _unprivileged_agent(root, uid, gid, groups)
    client = AgentClient(link)
    try:
        pid = client.hello()["pid"]
        status = Path(f"/proc/{pid}/status").read_text()
        assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status  # the agent really is unprivileged
        with pytest.raises(AgentError) as ei:
            client.request("governor", action="set", governor="performance")
        assert ei.value.kind == "TuningError"
        msg = str(ei.value)
        assert msg.startswith(f"cannot write {files[0]} (Permission denied): the agent "
                              f"(uid {uid}) may not change the CPU governor")
        assert ("'install -m 644 boards/edgeperf-governor.tmpfiles.conf /etc/tmpfiles.d/"
                "edgeperf-governor.conf && systemd-tmpfiles --create") in msg
        assert "log in as root instead" in msg
        assert [f.read_text() for f in files] == ["ondemand\n", "ondemand\n"]

        (root / "etc" / "tmpfiles.d").mkdir()
        shutil.copy(BOARDS / "edgeperf-governor.tmpfiles.conf",
                    root / "etc" / "tmpfiles.d" / "edgeperf-governor.conf")
        subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create"], check=True,
                       capture_output=True)
        for d in cpufreq:  # the governor only: group edgeperf may write it, nothing else
            modes = {f.name: (f.stat().st_mode & 0o777, f.stat().st_uid, f.stat().st_gid)
                     for f in d.iterdir()}
            assert modes == {"scaling_governor": (0o664, 0, gid),
                             "scaling_available_governors": (0o644, 0, 0),
                             "scaling_max_freq": (0o644, 0, 0), "cpuinfo_max_freq": (0o644, 0, 0)}

        reply, _ = client.request("governor", action="set", governor="performance")
        assert reply["governors"] == {"0": "performance", "1": "performance"}
        assert reply["saved"] == {"0": "ondemand", "1": "ondemand"}
        assert [f.read_text() for f in files] == ["performance", "performance"]
        reply, _ = client.request("governor", action="restore")
        assert reply == {"restored": {"0": "ondemand", "1": "ondemand"}, "failed": {},
                         "op": "governor"}
        assert [f.read_text() for f in files] == ["ondemand", "ondemand"]

        files[1].chmod(0o644)  # cpu1 refuses: cpu0, already written, is put back
        with pytest.raises(AgentError, match=f"cannot write {files[1]} \\(Permission denied"):
            client.request("governor", action="set", governor="powersave")
        assert [f.read_text() for f in files] == ["ondemand", "ondemand"]
        assert client.request("governor", action="get")[0]["saved"] == {}
    finally:
        client.bye()
        link.close()
