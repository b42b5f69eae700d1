"""``device_agent check``: what this device has, as one JSON object, before anything runs.

Standard library only: it must answer on a device that lacks numpy or a runtime, so the host
can say exactly what to install there. The host reads it right after shipping the agent.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
from typing import Any, Dict, Optional, Tuple

from . import __version__

MIN_PYTHON = (3, 9)
RUNTIME_MODULES = (("ai_edge_litert", "ai_edge_litert.interpreter"),
                   ("tflite_runtime", "tflite_runtime.interpreter"))


def _import_version(name: str) -> Tuple[Optional[str], Optional[str]]:
    """(version, None) when ``name`` imports, else (None, the error in one line)."""
    try:
        mod = __import__(name)
        return str(getattr(mod, "__version__", "unknown")), None
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        text = str(exc).strip().splitlines()
        return None, "%s: %s" % (type(exc).__name__, text[0] if text else "")


def probe_runtimes(deep: bool = False) -> Tuple[Dict[str, Optional[str]], Dict[str, str]]:
    """Versions of the TFLite runtimes (None when absent) and why absent ones failed.
    ``deep`` also imports each interpreter module, which is what fails when a runtime was
    built for another numpy."""
    found: Dict[str, Optional[str]] = {}
    errors: Dict[str, str] = {}
    for dist, interpreter in RUNTIME_MODULES:
        found[dist], err = _import_version(dist)
        if deep and found[dist] is not None:
            err = _import_version(interpreter)[1]
            if err:
                found[dist] = None
        if err:
            errors[dist] = err
    return found, errors


def available_runtimes() -> Dict[str, Optional[str]]:
    """Versions of the TFLite runtimes importable here (None when absent)."""
    return probe_runtimes()[0]


def _os_release() -> Dict[str, str]:
    out: Dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                for line in f:
                    key, sep, value = line.strip().partition("=")
                    if sep and key in ("ID", "ID_LIKE", "VERSION_ID", "VERSION_CODENAME",
                                       "PRETTY_NAME"):
                        out[key] = value.strip().strip('"')
            return out
        except OSError:
            continue
    return out


def _board_model() -> Optional[str]:
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            with open(path, "rb") as f:
                return f.read().rstrip(b"\x00\n").decode("utf-8", "replace")
        except OSError:
            continue
    return None


def report() -> Dict[str, Any]:
    numpy_version, numpy_error = _import_version("numpy")
    runtimes, runtime_errors = probe_runtimes(deep=True)
    managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib") or "",
                                          "EXTERNALLY-MANAGED"))
    return {
        "agent_version": __version__,
        "python": platform.python_version(),
        "python_ok": sys.version_info[:2] >= MIN_PYTHON,
        "executable": sys.executable,
        "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        "externally_managed": managed,
        "numpy": numpy_version, "numpy_error": numpy_error,
        "runtimes": runtimes, "runtime_errors": runtime_errors,
        "machine": platform.machine(), "system": platform.system(),
        "os_release": _os_release(), "board_model": _board_model(),
        "termux": "com.termux" in os.environ.get("PREFIX", "") or
                  "TERMUX_VERSION" in os.environ,
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
        "vcgencmd": shutil.which("vcgencmd") is not None,
    }
