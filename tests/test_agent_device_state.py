"""The agent's view of the device: the stdlib-only check, throttling flags, governors.

sysfs and vcgencmd are the hardware boundary: a fake tree ($EDGEPERF_SYSFS_ROOT) and a fake
vcgencmd on PATH stand in for them; everything else is the real agent code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edgeperf.links.bundle import agent_zipapp
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
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    g = Governors()
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
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TuningError, match="needs root on the device \\(the agent runs as uid "
                                          "1000\\): log in as root"):
        g.set("performance")
    assert [f.read_text() for f in files] == ["ondemand", "powersave"]
    monkeypatch.setenv("EDGEPERF_SYSFS_ROOT", str(tmp_path / "empty"))
    with pytest.raises(TuningError, match="exposes no cpufreq governor"):
        Governors().set("performance")
