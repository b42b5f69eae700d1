"""The device agent as one zipapp, named by its SHA-256.

The same bytes run on every board: the local board runs it from the host's cache, the SSH
link copies it to the device once. The archive is reproducible (sorted names, fixed
timestamps), so its hash changes only when the agent's code does.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import edgeperf_agent

_MAIN = b"import sys\nfrom edgeperf_agent.__main__ import main\nsys.exit(main())\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _host_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("EDGEPERF_CACHE", os.path.join(base, "edgeperf")))


@lru_cache(maxsize=1)
def agent_zipapp() -> tuple[bytes, str]:
    """(bytes, sha256 hex) of the agent zipapp."""
    src = Path(edgeperf_agent.__file__).parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
        add("__main__.py", _MAIN)
        for path in sorted(src.glob("*.py")):
            add(f"edgeperf_agent/{path.name}", path.read_bytes())
    data = b"#!/usr/bin/env python3\n" + buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def local_agent_path() -> Path:
    """The zipapp written into the host's cache (once per agent version)."""
    data, sha = agent_zipapp()
    d = _host_cache() / "agent"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{sha}.pyz"
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path
