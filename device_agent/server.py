"""The agent's serving loop on a byte stream (stdin/stdout for the local board and SSH).

It reads frames, hands each to the agent (agent.py's operations, called through
dispatch.py) and writes the reply and the request's events back. Whatever way the link ends
(bye, end of input, a broken pipe, SIGTERM/SIGHUP), the agent restores the governors it
changed. The serial line has its own loop (serial_serve.py) around the same Agent.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from typing import Any, Dict, Optional

from . import wire
from .agent import MAX_CHUNK, PROTOCOL, Agent
from .dispatch import AgentError

STALE_AFTER_S = 2.0  # silence after which a partial frame is given up

# where the host and the tests have always found them
__all__ = ["MAX_CHUNK", "PROTOCOL", "STALE_AFTER_S", "Agent", "AgentError", "serve_fds",
           "serve_stdio"]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve_fds(rfd: int, wfd: int, agent: Optional[Agent] = None) -> int:
    """Serve requests read from ``rfd``, replies to ``wfd``, until bye or end of input; then,
    however the loop ended, restore what the agent tuned."""
    agent = agent or Agent()
    try:
        return _serve(rfd, wfd, agent)
    finally:
        agent.shutdown()


def _serve(rfd: int, wfd: int, agent: Agent) -> int:
    decoder = wire.FrameDecoder(max_frame=MAX_CHUNK + wire.MAX_HEADER)

    def emit(seq: int, event: str, header: Dict[str, Any], body: bytes) -> None:
        header = dict(header, event=event)
        _write_all(wfd, wire.encode(wire.EVENT, seq, header, body))

    while not agent.closing:
        try:
            ready, _, _ = select.select([rfd], [], [], STALE_AFTER_S)
            data = os.read(rfd, 1 << 16) if ready else None
        except InterruptedError:
            continue
        if data == b"":
            return 0
        # a partial frame with no byte for a while lost its tail: resynchronise
        frames = decoder.feed(data) if data is not None else decoder.expire()
        for frame in frames:
            type_, header, body = agent.handle(frame, emit)
            try:
                _write_all(wfd, wire.encode(type_, frame.seq, header, body))
            except wire.WireError as exc:
                _write_all(wfd, wire.encode(wire.ERROR, frame.seq,
                                            {"error": str(exc), "kind": "WireError"}))
            if agent.closing:
                break
    return 0


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def serve_stdio(cache_dir: Optional[str] = None) -> int:
    """Serve on stdin/stdout. Anything else that writes to fd 1 (a runtime's log line, a
    stray print) is sent to stderr, so only frames ever reach the host's end of the pipe."""
    wfd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _exit_on_signal)  # unwind through serve_fds' restore
    return serve_fds(0, wfd, Agent(cache_dir))
