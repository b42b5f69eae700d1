"""A results directory on a full disk: which errors mean it, and how much room is left."""

from __future__ import annotations

import errno
import os
from pathlib import Path

# a full disk, a full quota, a file over the size limit: more room is the fix for all three
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def free_space(path: str | os.PathLike[str]) -> str:
    """'12.0 KiB free of 1.0 MiB' for the filesystem holding ``path`` (or its parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return "free space unknown"
    return f"{_size(st.f_bavail * st.f_frsize)} free of {_size(st.f_blocks * st.f_frsize)}"


def why(exc: OSError) -> str:
    """What the write hit, in a user's words."""
    what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large for the filesystem"}.get(exc.errno or 0,
                                                                  exc.strerror or str(exc))
    return f"{what}{f' ({Path(exc.filename).name})' if exc.filename else ''}"
