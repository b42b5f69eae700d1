"""What the device can tell about its own state: temperatures, frequencies, governors,
throttling.

Everything is read from sysfs/procfs where readable; what a device does not expose is left
out rather than guessed. Throttling comes from the device's own word: a Raspberry Pi's
``vcgencmd get_throttled`` where that tool exists, and everywhere a CPU whose frequency limit
(scaling_max_freq) sits below its maximum. sysfs is read under $EDGEPERF_SYSFS_ROOT (default
/sys), the one seam where the tests put a fake device.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
import time
from typing import Any, Dict, List, Optional

# vcgencmd get_throttled bits: (bit, meaning); bit + 16 is "has occurred since boot"
THROTTLE_BITS = ((0, "under-voltage"), (1, "arm frequency capped"), (2, "throttled"),
                 (3, "soft temperature limit"))


def sysfs(*parts: str) -> str:
    return os.path.join(os.environ.get("EDGEPERF_SYSFS_ROOT") or "/sys", *parts)


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(path: str) -> Optional[int]:
    v = _read(path)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def thermal_zones(root: Optional[str] = None) -> List[Dict[str, Any]]:
    root = root or sysfs("class", "thermal")
    zones = []
    for z in sorted(glob.glob(os.path.join(root, "thermal_zone*"))):
        t = _int(os.path.join(z, "temp"))
        if t is None:
            continue
        zones.append({"zone": os.path.basename(z), "type": _read(os.path.join(z, "type")),
                      "temp_c": t / 1000.0})
    return zones


def cpufreq(root: Optional[str] = None) -> List[Dict[str, Any]]:
    root = root or sysfs("devices", "system", "cpu")
    cpus = []
    for c in sorted(glob.glob(os.path.join(root, "cpu[0-9]*")),
                    key=lambda p: int(os.path.basename(p)[3:])):
        f = os.path.join(c, "cpufreq")
        if not os.path.isdir(f):
            continue
        cpus.append({"cpu": int(os.path.basename(c)[3:]),
                     "cur_khz": _int(os.path.join(f, "scaling_cur_freq")),
                     "min_khz": _int(os.path.join(f, "scaling_min_freq")),
                     "max_khz": _int(os.path.join(f, "cpuinfo_max_freq")),
                     "limit_khz": _int(os.path.join(f, "scaling_max_freq")),
                     "governor": _read(os.path.join(f, "scaling_governor"))})
    return cpus


def parse_throttled(text: str) -> Dict[str, Any]:
    """``throttled=0x50005`` -> the flags set now and those set at some point since boot."""
    value = int(text.strip().rpartition("=")[2], 16)
    return {"raw": hex(value),
            "now": [name for bit, name in THROTTLE_BITS if value >> bit & 1],
            "since_boot": [name for bit, name in THROTTLE_BITS if value >> (bit + 16) & 1]}


def throttling() -> Optional[Dict[str, Any]]:
    """The firmware's throttling flags (Raspberry Pi), or None where no tool reports them."""
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    out: Dict[str, Any] = {"source": "vcgencmd get_throttled"}
    try:
        r = subprocess.run([tool, "get_throttled"], capture_output=True, timeout=5, text=True)
        if r.returncode != 0:
            raise ValueError((r.stderr or r.stdout).strip() or "exit code %d" % r.returncode)
        out.update(parse_throttled(r.stdout))
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        out["error"] = "%s (is the user in the 'video' group?)" % exc
    return out


def snapshot() -> Dict[str, Any]:
    load = _read("/proc/loadavg")
    cpus = cpufreq()
    below_max = [c["cpu"] for c in cpus
                 if c["cur_khz"] and c["max_khz"] and c["cur_khz"] < c["max_khz"]]
    return {"time_ns": time.time_ns(), "monotonic_ns": time.perf_counter_ns(),
            "thermal": thermal_zones(), "cpus": cpus,
            "cpus_below_max_freq": below_max,
            "cpus_freq_limited": [c["cpu"] for c in cpus if c["limit_khz"] and c["max_khz"]
                                  and c["limit_khz"] < c["max_khz"]],
            "throttling": throttling(),
            "loadavg": [float(x) for x in load.split()[:3]] if load else None}
