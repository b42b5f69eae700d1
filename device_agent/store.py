"""Content-addressed cache on the device: pushed models and sample sets, named by SHA-256.

A push arrives in chunks written to ``<sha>.part``; only a part whose size and SHA-256 match
what the host announced becomes ``<sha><suffix>``, so a cached file is always the exact
artifact the host hashed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from typing import Any, Optional

_SHA = re.compile(r"[0-9a-f]{64}")


class StoreError(Exception):
    pass


def default_cache_dir() -> str:
    env = os.environ.get("EDGEPERF_AGENT_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgeperf-agent")


class Store:
    def __init__(self, root: str) -> None:
        self.root = root

    def _dir(self, kind: str) -> str:
        d = os.path.join(self.root, kind)
        os.makedirs(d, exist_ok=True)
        return d

    @staticmethod
    def check_sha(sha: Any) -> str:
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise StoreError("%r is not a lowercase hex SHA-256" % (sha,))
        return sha

    def path(self, kind: str, sha: str, suffix: str) -> str:
        return os.path.join(self._dir(kind), self.check_sha(sha) + suffix)

    def present(self, kind: str, sha: str, suffix: str) -> Optional[str]:
        p = self.path(kind, sha, suffix)
        return p if os.path.exists(p) else None

    def partial_size(self, kind: str, sha: str) -> int:
        p = self.path(kind, sha, ".part")
        return os.path.getsize(p) if os.path.exists(p) else 0

    def write_chunk(self, kind: str, sha: str, offset: int, data: bytes) -> int:
        """Write one chunk; returns the bytes held so far. Chunks must arrive in order."""
        part = self.path(kind, sha, ".part")
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if offset != have:
            if offset == 0:
                have = 0
            else:
                raise StoreError("chunk at offset %d but the device holds %d bytes of %s; "
                                 "restart the push" % (offset, have, sha[:12]))
        try:
            with open(part, "r+b" if have else "wb") as f:
                f.seek(offset)
                f.write(data)
                f.truncate()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StoreError("the device's disk is full at %s: free some space (or point "
                                 "EDGEPERF_AGENT_CACHE elsewhere) and run again"
                                 % self.root) from None
            raise
        return offset + len(data)

    def commit(self, kind: str, sha: str, size: int, suffix: str) -> str:
        part = self.path(kind, sha, ".part")
        got_size = os.path.getsize(part) if os.path.exists(part) else 0
        h = hashlib.sha256()
        if got_size == size:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        if got_size != size or h.hexdigest() != sha:
            if os.path.exists(part):
                os.unlink(part)
            raise StoreError("pushed %s does not verify: %d bytes with SHA-256 %s, expected %d "
                             "bytes with %s; the transfer was corrupted, push it again"
                             % (kind, got_size, h.hexdigest() if got_size == size else "-",
                                size, sha))
        final = self.path(kind, sha, suffix)
        os.replace(part, final)
        return final
