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


# each optional backend: the module whose import proves it, and how to install it
BACKEND_MODULES = (
    ("tflite", "ai_edge_litert.interpreter", "ai-edge-litert",
     "pip install ai-edge-litert (numpy 2), or pip install tflite-runtime 'numpy<2' "
     "(Raspberry Pi OS)"),
    ("onnx", "onnxruntime", "onnxruntime", "pip install onnxruntime"),
    ("executorch", "executorch.runtime", "executorch",
     "pip install executorch (it brings torch; CPU wheels: --extra-index-url "
     "https://download.pytorch.org/whl/cpu)"),
)


def probe_backends(deep: bool = True) -> Dict[str, Dict[str, Any]]:
    """Which inference backends import here: {name: {available, version, error, install}};
    the TFLite one by either runtime, ONNX Runtime's with its execution providers. Not
    ``deep`` (the agent's hello): found on the path, nothing imported (importing torch for
    ExecuTorch would cost the agent seconds and its memory figures hundreds of MiB)."""
    found, errors = probe_runtimes(deep=deep)
    out: Dict[str, Dict[str, Any]] = {}
    for name, module, dist, install in BACKEND_MODULES:
        if name == "tflite":
            have = {k: v for k, v in found.items() if v}
            out[name] = {"available": bool(have), "runtimes": have,
                         "error": None if have else "; ".join(
                             "%s: %s" % kv for kv in sorted(errors.items())) or "not installed",
                         "install": install}
            continue
        if not deep:
            top = module.split(".")[0]
            try:
                import importlib.util
                present = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                present = False
            out[name] = {"available": present, "version": _dist_version(dist) if present
                         else None, "error": None if present else "No module named %r" % top,
                         "install": install, "runtime": dist, "checked": "found, not imported"}
            continue
        version, error = _import_version(module.split(".")[0])
        if version is not None and "." in module:
            error = _import_version(module)[1]
            version = None if error else version
        if version is not None and name == "executorch":
            version = _dist_version(dist) or version
        entry: Dict[str, Any] = {"available": version is not None, "version": version,
                                 "error": error, "install": install, "runtime": dist}
        if name == "onnx" and version is not None:
            try:
                import onnxruntime
                entry["providers"] = list(onnxruntime.get_available_providers())
            except Exception as exc:  # noqa: BLE001
                entry.update(available=False, error=str(exc))
        out[name] = entry
    return out


def _dist_version(dist: str) -> Optional[str]:
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:  # noqa: BLE001
        return None


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
        "backends": probe_backends(),
        "machine": platform.machine(), "system": platform.system(),
        "os_release": _os_release(), "board_model": _board_model(),
        "termux": "com.termux" in os.environ.get("PREFIX", "") or
                  "TERMUX_VERSION" in os.environ,
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
        "vcgencmd": shutil.which("vcgencmd") is not None,
    }
