"""One request frame in, one reply out: the operation it names, called with the request.

Every request is a ``Call``: its seq, its op, its header and body, and the sender of its
events, which stamps them with the request's own seq (nothing about a request is kept
between requests). The serving loops (server.py on stdio, serial_serve.py on a UART) own
the line; this module owns what a frame means, and never raises: the errors an operation may
refuse with become ERROR frames naming their kind, anything else an ``Internal`` one.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from . import wire
from .backends import BackendError
from .scenarios import RunError
from .store import StoreError
from .tuning import TuningError

Reply = Tuple[Dict[str, Any], bytes]
# (seq, event, header, body) -> False when the line declined an offer (a QueryLog stretch or
# a progress event, see serial_serve.py), else anything
Sink = Callable[[int, str, Dict[str, Any], bytes], Optional[bool]]
Waiter = Callable[[], None]  # serves the line until it has room again


class AgentError(Exception):
    """A request that cannot be served; its message goes back to the host."""


REFUSALS = (AgentError, BackendError, StoreError, RunError, TuningError)


def no_events(seq: int, event: str, header: Dict[str, Any], body: bytes) -> None:
    return None


class Call:
    """One request and the way back for its events."""

    __slots__ = ("seq", "op", "header", "body", "_sink", "wait_room")

    def __init__(self, seq: int, op: str, header: Dict[str, Any], body: bytes = b"",
                 sink: Sink = no_events, waiter: Optional[Waiter] = None) -> None:
        self.seq, self.op, self.header, self.body, self._sink = seq, op, header, body, sink
        # None: the line never declines (a pipe: its writes wait, as they always have)
        self.wait_room = waiter

    def emit(self, event: str, header: Dict[str, Any], body: bytes) -> bool:
        """An event of this request (QueryLog stretches, progress, outputs). False: the line
        is behind and declined this offer; offer it again later (see serial_serve.py)."""
        return self._sink(self.seq, event, header, body) is not False


Op = Callable[[Call], Reply]


def dispatch(ops: Mapping[str, Op], frame: wire.Frame, sink: Sink = no_events,
             waiter: Optional[Waiter] = None) -> Tuple[int, Dict[str, Any], bytes]:
    """(type, header, body) of the reply to ``frame``. Never raises."""
    if frame.version != wire.WIRE_VERSION:
        return wire.ERROR, {"error": "wire version %d is not spoken here; this agent speaks "
                                     "%d: update edgeperf on one side"
                                     % (frame.version, wire.WIRE_VERSION),
                            "kind": "WireVersion"}, b""
    if frame.type != wire.REQUEST:
        return wire.ERROR, {"error": "expected a request, got a %s frame" % frame.kind,
                            "kind": "Protocol"}, b""
    op = frame.header.get("op")
    fn = ops.get(op) if isinstance(op, str) else None
    if fn is None:
        return wire.ERROR, {"error": "unknown operation %r; the agent serves: %s"
                                     % (op, ", ".join(sorted(ops))),
                            "kind": "UnknownOp"}, b""
    try:
        header, body = fn(Call(frame.seq, op, frame.header, frame.body, sink, waiter))
        header.setdefault("op", op)
        return wire.RESPONSE, header, body
    except REFUSALS as exc:
        return wire.ERROR, {"error": str(exc), "kind": type(exc).__name__, "op": op}, b""
    except Exception as exc:  # noqa: BLE001 - the agent must answer, not die
        return wire.ERROR, {"error": "%s: %s" % (type(exc).__name__, exc), "kind": "Internal",
                            "op": op, "trace": traceback.format_exc(limit=5)}, b""
