"""What the device can tell about its own state: temperatures, frequencies, governors.

Everything is read from sysfs/procfs where readable; what a device does not expose is left
out rather than guessed.
"""

from __future__ import annotations

import glob
import os
import platform
import time
from typing import Any, Dict, List, Optional


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


def thermal_zones(root: str = "/sys/class/thermal") -> List[Dict[str, Any]]:
    zones = []
    for z in sorted(glob.glob(os.path.join(root, "thermal_zone*"))):
        t = _int(os.path.join(z, "temp"))
        if t is None:
            continue
        zones.append({"zone": os.path.basename(z), "type": _read(os.path.join(z, "type")),
                      "temp_c": t / 1000.0})
    return zones


def cpufreq(root: str = "/sys/devices/system/cpu") -> List[Dict[str, Any]]:
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
                     "governor": _read(os.path.join(f, "scaling_governor"))})
    return cpus


def snapshot() -> Dict[str, Any]:
    load = _read("/proc/loadavg")
    cpus = cpufreq()
    below_max = [c["cpu"] for c in cpus
                 if c["cur_khz"] and c["max_khz"] and c["cur_khz"] < c["max_khz"]]
    return {"time_ns": time.time_ns(), "monotonic_ns": time.perf_counter_ns(),
            "thermal": thermal_zones(), "cpus": cpus,
            "cpus_below_max_freq": below_max,
            "loadavg": [float(x) for x in load.split()[:3]] if load else None}
