"""What a model costs in memory on the device: the agent's resident set before the model is
loaded, after its runtime has initialised it, and its peak while a run lasts.

Linux gives VmRSS and VmHWM in /proc/self/status; writing "5" to /proc/self/clear_refs resets
the high-water mark (Linux 4.0+), so a peak can be scoped to the load or to one run. Where
that reset is refused, the peak is the process's since it started, and ``scope`` says so.
Elsewhere, getrusage's ru_maxrss (the process's peak) is all there is. Standard library
only; Python 3.9.
"""

from __future__ import annotations

import sys
from typing import Dict, Optional

_STATUS = "/proc/self/status"


def _status_kib(field: str) -> Optional[int]:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_kib() -> Optional[int]:
    """The resident set now, KiB (None where the system does not say)."""
    return _status_kib("VmRSS")


def peak_kib() -> Optional[int]:
    """The resident set's high-water mark since the last reset (or the process start)."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)  # bytes on macOS


def reset_peak() -> bool:
    """Start a new high-water mark from the resident set now; False where refused (the
    peak then stays the process's own since it started)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Window:
    """The resident set at the start of a stretch of work and its peak during it."""

    def __init__(self) -> None:
        self.scoped = reset_peak()
        self.start_kib = rss_kib()

    def close(self) -> Dict[str, Optional[object]]:
        return {"start_kib": self.start_kib, "end_kib": rss_kib(), "peak_kib": peak_kib(),
                "scope": "window" if self.scoped else "process"}
