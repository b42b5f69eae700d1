"""LocalLink: the ``local`` board, an agent process on this machine speaking on its stdio.

ProcessLink is the pipe to any agent process; LocalLink starts the same zipapp that is
shipped to remote devices, so a local run exercises the whole path.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from edgeperf.links.base import Link, LinkClosed, LinkError

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile


class _StderrTail:
    """Keeps the last lines the agent wrote to stderr, to explain a death."""

    def __init__(self, stream, keep: int = 40) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self._t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._t.start()

    def _pump(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def text(self) -> str:
        self._t.join(timeout=0.5)
        return "\n".join(self.lines)


class ProcessLink(Link):
    """A link to an agent process speaking on its stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None,
                 name: str = "process") -> None:
        self.name = name
        self.argv = argv
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, bufsize=0)
        except OSError as exc:
            raise LinkError(f"{name}: cannot start the agent ({argv[0]}): {exc}; check the "
                            "board's 'python' setting") from None
        self._out = self.proc.stdout.fileno()
        self._err = _StderrTail(self.proc.stderr)

    def _closed(self) -> LinkClosed:
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
        tail = self._err.text().strip()
        how = f"exited with code {code}" if code is not None else "closed its output"
        msg = f"{self.name}: the agent {how}"
        if tail:
            msg += "; its last words:\n  " + "\n  ".join(tail.splitlines()[-8:])
        return LinkClosed(msg)

    def send(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            raise self._closed() from None

    def recv(self, n: int, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self._out], [], [], max(0.0, timeout))
        except ValueError:
            raise self._closed() from None
        if not ready:
            return b""
        data = os.read(self._out, n)
        if not data:
            raise self._closed()
        return data

    def close(self) -> None:
        p = self.proc
        for s in (p.stdin,):
            try:
                s.close()
            except OSError:
                pass
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for s in (p.stdout, p.stderr):
            try:
                s.close()
            except OSError:
                pass


class LocalLink(ProcessLink):
    """The ``local`` board: the agent runs as a subprocess on this machine, from the same
    zipapp that is shipped to remote devices."""

    def __init__(self, python: str | None = None, cache_dir: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        from edgeperf.links.bundle import local_agent_path

        python = python or sys.executable
        argv = [python, "-u", str(local_agent_path()), "serve", "--stdio"]
        if cache_dir:
            argv += ["--cache-dir", cache_dir]
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)  # the agent ships alone: nothing of the host's
        if env:
            full_env.update(env)
        super().__init__(argv, env=full_env, name="local")
        self.python = python


def open_profile(profile: BoardProfile, report: Any = None,
                 needs_runtime: bool = False) -> LocalLink:
    """The ``local`` scheme's opener (links/registry.py)."""
    return LocalLink(python=profile.python, cache_dir=profile.cache_dir)
