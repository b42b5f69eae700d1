"""Content-addressed cache on the device: pushed models and sample sets, named by SHA-256.

A push arrives in chunks written to ``<sha>.part``; only a part whose size and SHA-256 match
what the host announced becomes ``<sha><suffix>``, so a cached file is always the exact
artifact the host hashed. The part is fsynced before it is renamed and the folder after, so
a board that loses power has either the whole file under its name or none. A cached file is
hashed again before it is used (``verified``); one that no longer matches its name is
removed. A push is admitted only when it fits under the cap and in the free space; every
refusal or failure of a push removes its part.

Device configuration (environment): ``EDGEPERF_AGENT_MAX_PUSH`` (bytes, suffix K/M/G
allowed; default 2 GiB) caps one artifact; ``EDGEPERF_AGENT_FREE_MARGIN`` (default 64 MiB)
is what a push must leave free on the cache's filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import time
from typing import Any, Callable, Dict, Optional, Tuple

_SHA = re.compile(r"[0-9a-f]{64}")
DEFAULT_MAX_PUSH = 2 << 30
DEFAULT_FREE_MARGIN = 64 << 20
STALE_PART_S = 600.0  # a part untouched this long belongs to a push nobody will resume
_BLOCK = 1 << 20


class StoreError(Exception):
    pass


class CacheCorrupt(StoreError):
    """A cached file no longer hashes to its name; it was removed: push it again."""

    def __init__(self, message: str, got: str = "", size: int = 0) -> None:
        super().__init__(message)
        self.got, self.size = got, size


class PushRefused(StoreError):
    """A push that does not fit (over the cap, or the free space); nothing was written."""


def default_cache_dir() -> str:
    env = os.environ.get("EDGEPERF_AGENT_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgeperf-agent")


def _env_bytes(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", raw.lower())
    if not m:
        raise StoreError("%s=%r is not a size in bytes (e.g. 2147483648 or 2G); fix it in the "
                         "agent's environment" % (name, raw))
    return int(m.group(1)) << (10 * " kmgt".index(m.group(2) or " "))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return "%d bytes (%.1f %s)" % (n, n / scale, unit)
    return "%d bytes" % n


_WHAT = {"models": "model", "samples": "sample set"}


def file_sha256(path: str, sync: bool = False) -> str:
    """The file's SHA-256; ``sync``: and its data on disk (fsync) once it is read."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable (POSIX; elsewhere the rename is all there is)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _identity(st: os.stat_result) -> Tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.max_push = _env_bytes("EDGEPERF_AGENT_MAX_PUSH", DEFAULT_MAX_PUSH)
        self.free_margin = _env_bytes("EDGEPERF_AGENT_FREE_MARGIN", DEFAULT_FREE_MARGIN)
        # files this process hashed (at their push or their last check), by path: a load
        # right after a probe does not hash the same unchanged file twice
        self._fresh: Dict[str, Tuple[int, ...]] = {}

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

    def verified(self, kind: str, sha: str, suffix: str) -> Optional[str]:
        """The cached file's path once its SHA-256 matches its name (None: not cached).
        A mismatch removes the file and raises CacheCorrupt naming both hashes."""
        p = self.present(kind, sha, suffix)
        if p is None:
            return None
        st = os.stat(p)
        if self._fresh.get(p) == _identity(st):
            return p
        got = file_sha256(p)
        if got != sha:
            self._fresh.pop(p, None)
            _unlink(p)
            raise CacheCorrupt("cached %s %s in %s was corrupt (its %d bytes hash to %s): "
                               "removed; push it again" % (kind, sha, self.root, st.st_size, got),
                               got, st.st_size)
        self._fresh[p] = _identity(st)
        return p

    def partial_size(self, kind: str, sha: str) -> int:
        p = self.path(kind, sha, ".part")
        return os.path.getsize(p) if os.path.exists(p) else 0

    def discard(self, kind: str, sha: str) -> None:
        """Remove the push's part, if any (every failed push ends here)."""
        _unlink(self.path(kind, sha, ".part"))

    def sweep(self, kind: str, keep: str) -> None:
        """Remove parts of pushes abandoned long ago (a link that closed mid-push, a board
        that lost power); a recent part may be another agent's push under way."""
        d = self._dir(kind)
        now = time.time()
        for name in os.listdir(d):
            if name.endswith(".part") and name != keep + ".part":
                p = os.path.join(d, name)
                try:
                    if now - os.stat(p).st_mtime > STALE_PART_S:
                        os.unlink(p)
                except OSError:
                    pass

    def admit(self, kind: str, sha: str, size: int) -> None:
        """Refuse, before anything is written, a push over the cap or the free space."""
        d = self._dir(kind)
        free = shutil.disk_usage(d).free
        need = size - self.partial_size(kind, sha)
        if size > self.max_push:
            raise PushRefused(
                "push of %s %s refused: it is %s, over this device's cap of %s (%s free at "
                "%s); raise the cap with EDGEPERF_AGENT_MAX_PUSH in the agent's environment "
                "if the device can hold it" % (_WHAT.get(kind, kind), sha[:12], _size(size),
                                              _size(self.max_push), _size(free), self.root))
        if need > free - self.free_margin:
            raise PushRefused(
                "push of %s %s refused: it is %s, and %s has %s free, less than that plus the "
                "margin of %s it must leave; free some space on the device (or point "
                "EDGEPERF_AGENT_CACHE at a bigger disk, or lower EDGEPERF_AGENT_FREE_MARGIN)"
                % (_WHAT.get(kind, kind), sha[:12], _size(size), self.root, _size(free),
                   _size(self.free_margin)))

    def write_chunk(self, kind: str, sha: str, offset: int, data: bytes, size: int) -> int:
        """Write one chunk of a ``size``-byte artifact; returns the bytes held so far. Chunks
        must arrive in order (one out of order is refused, the part kept for a resume); a
        chunk that cannot be written, or does not fit, removes the part."""
        part = self.path(kind, sha, ".part")
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if offset != have and offset != 0:  # the part is intact: the probe resumes from it
            raise StoreError("chunk at offset %d but the device holds %d bytes of %s; "
                             "restart the push" % (offset, have, sha[:12]))
        try:
            if offset + len(data) > size:
                raise StoreError("chunk of %d bytes at offset %d runs past the %d bytes "
                                 "announced for %s; restart the push"
                                 % (len(data), offset, size, sha[:12]))
            if offset == 0 or size > self.max_push:  # the host may have sent no probe
                self.admit(kind, sha, size)
            with open(part, "r+b" if offset else "wb") as f:
                f.seek(offset)
                f.write(data)
                f.truncate()
        except OSError as exc:
            _unlink(part)
            if exc.errno == errno.ENOSPC:
                raise StoreError("the device's disk is full at %s: free some space (or point "
                                 "EDGEPERF_AGENT_CACHE elsewhere) and run again"
                                 % self.root) from None
            raise
        except BaseException:
            _unlink(part)
            raise
        return offset + len(data)

    def commit(self, kind: str, sha: str, size: int, suffix: str,
               check: Optional[Callable[[str], None]] = None) -> str:
        """Verify the part (size, SHA-256, then ``check(path)`` if given), fsync it and
        rename it into place; a part that fails any of it is removed."""
        part = self.path(kind, sha, ".part")
        try:
            got_size = os.path.getsize(part) if os.path.exists(part) else 0
            got = file_sha256(part, sync=True) if got_size == size else "-"
            if got != sha:
                raise StoreError("pushed %s does not verify: %d bytes with SHA-256 %s, "
                                 "expected %d bytes with %s; the transfer was corrupted, push "
                                 "it again" % (kind, got_size, got, size, sha))
            if check is not None:
                check(part)
        except BaseException:
            _unlink(part)
            raise
        final = self.path(kind, sha, suffix)
        os.replace(part, final)
        _fsync_dir(os.path.dirname(final))
        self._fresh[final] = _identity(os.stat(final))
        return final
