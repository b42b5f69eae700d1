"""AgentClient: the host's side of the agent protocol, over any Link."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from device_agent import sampleset, wire
from device_agent.server import MAX_CHUNK, PROTOCOL, STALE_AFTER_S

from .link import Link, LinkClosed

EventHandler = Callable[[dict[str, Any], bytes], None]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)
CHUNK = 1024 * 1024


class AgentError(Exception):
    """The agent refused a request; ``kind`` is its error class, the message its words."""

    def __init__(self, message: str, kind: str = "", op: str = "") -> None:
        super().__init__(message)
        self.kind, self.op = kind, op


class AgentTimeout(AgentError):
    pass


class AgentDied(AgentError):
    """The link closed while a request was outstanding."""


class AgentClient:
    def __init__(self, link: Link, timeout: float = 30.0) -> None:
        self.link = link
        self.timeout = timeout
        self.decoder = wire.FrameDecoder(max_frame=64 * 1024 * 1024)
        self._seq = 0
        self._pending: list[wire.Frame] = []
        self.info: dict[str, Any] = {}
        self.bytes_sent = 0
        self.bytes_received = 0

    # ------------------------------------------------------------------ framing
    def _next_frame(self, deadline: float) -> wire.Frame:
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentTimeout(f"{self.link.describe()}: no answer from the agent in "
                                   f"{self._idle:.0f} s", "Timeout")
            data = self.link.recv(1 << 20, min(left, STALE_AFTER_S))
            if data:
                self.bytes_received += len(data)
                self._pending.extend(self.decoder.feed(data))
            elif self.decoder.buffered:  # a partial frame lost its tail: resynchronise
                self._pending.extend(self.decoder.expire())
        return self._pending.pop(0)

    def request(self, op: str, body: bytes = b"", *, timeout: float | None = None,
                on_event: EventHandler | None = None, **fields: Any) -> tuple[dict, bytes]:
        """Send one request; return the reply's (header, body).

        ``timeout`` is an idle timeout: any frame from the agent (a run's progress events)
        restarts it, so a long run is fine as long as the agent keeps talking.
        """
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        frame = wire.encode(wire.REQUEST, seq, dict(fields, op=op), body)
        self._idle = timeout or self.timeout
        try:
            self.link.send(frame)
            self.bytes_sent += len(frame)
            deadline = time.monotonic() + self._idle
            while True:
                f = self._next_frame(deadline)
                if f.seq != seq:
                    continue  # a stale reply to an abandoned request
                if f.type == wire.EVENT:
                    deadline = time.monotonic() + self._idle
                    if on_event:
                        on_event(f.header, f.body)
                    continue
                if f.type == wire.ERROR:
                    raise AgentError(str(f.header.get("error")), str(f.header.get("kind", "")), op)
                return f.header, f.body
        except LinkClosed as exc:
            raise AgentDied(f"{op}: {exc}", "Died", op) from None

    # ------------------------------------------------------------------ operations
    def hello(self) -> dict[str, Any]:
        info, _ = self.request("hello", client="edgeperf-host", wire_version=wire.WIRE_VERSION)
        if info.get("protocol") != PROTOCOL:
            raise AgentError(f"the agent speaks protocol {info.get('protocol')}, this host "
                             f"{PROTOCOL}: update edgeperf so both sides match", "Protocol")
        self.info = info
        return info

    def _push(self, op: str, data: bytes, extra: dict[str, Any],
              progress: Progress | None) -> tuple[str, int]:
        """Push by SHA-256, resuming a partial copy; returns (sha, bytes actually sent)."""
        sha = hashlib.sha256(data).hexdigest()
        size = len(data)
        probe, _ = self.request(op, sha256=sha, size=size)
        if probe.get("present"):
            if progress:
                progress(size, size)
            return sha, 0
        offset = int(probe.get("received", 0)) if probe.get("received", 0) < size else 0
        sent = 0
        step = min(CHUNK, MAX_CHUNK)
        while True:
            chunk = data[offset:offset + step]
            last = offset + len(chunk) >= size
            reply, _ = self.request(op, chunk, sha256=sha, size=size, offset=offset, last=last,
                                    **(extra if last else {}))
            offset += len(chunk)
            sent += len(chunk)
            if progress:
                progress(offset, size)
            if last:
                break
        if not reply.get("present"):
            raise AgentError(f"{op}: the agent did not keep {sha[:12]}", "Push", op)
        return sha, sent

    def push_model(self, data: bytes, progress: Progress | None = None) -> tuple[str, int]:
        return self._push("push_model", data, {}, progress)

    def push_samples(self, arrays: list[np.ndarray],
                     progress: Progress | None = None) -> tuple[str, int]:
        """Push a sample set (one array per model input, samples along axis 0)."""
        return self._push("push_samples", sampleset.pack(arrays), {}, progress)

    def load_model(self, backend: str, **fields: Any) -> dict[str, Any]:
        info, _ = self.request("load_model", backend=backend, timeout=120.0, **fields)
        return info

    def run(self, settings: dict[str, Any], *, samples: str | None, sample_count: int,
            on_event: EventHandler | None, idle_timeout: float = 120.0,
            batched: bool = True, cpu_affinity: list[int] | None = None) -> dict[str, Any]:
        reply, _ = self.request("run", settings=settings, samples=samples,
                                sample_count=sample_count, batched=batched,
                                cpu_affinity=cpu_affinity or None,
                                on_event=on_event, timeout=idle_timeout)
        return reply

    def infer(self, samples: str | None, *, indices: list[int] | None = None, first: int = 0,
              count: int | None = None, sample_count: int = 0,
              timeout: float = 120.0) -> tuple[dict[str, Any], list[bytes]]:
        """Run samples once each (accuracy mode); returns the reply and each one's output bytes.

        ``indices`` names the samples, else ``first`` and ``count`` (default: to the end).
        """
        outputs: list[bytes] = []

        def on_event(header: dict[str, Any], body: bytes) -> None:
            if header.get("event") != "outputs":
                return
            n, size = int(header["count"]), int(header["sample_bytes"])
            if int(header["first"]) != len(outputs) or len(body) != n * size:
                raise AgentError(f"infer: an outputs frame for samples {header['first']}+{n} "
                                 f"of {size} bytes each does not follow the {len(outputs)} "
                                 f"received", "Protocol", "infer")
            outputs.extend(body[i * size:(i + 1) * size] for i in range(n))

        fields: dict[str, Any] = {"samples": samples, "sample_count": sample_count}
        if indices is not None:
            fields["indices"] = [int(i) for i in indices]
        else:
            fields["first"] = first
            if count is not None:
                fields["count"] = count
        reply, _ = self.request("infer", on_event=on_event, timeout=timeout, **fields)
        if len(outputs) != int(reply["count"]):
            raise AgentError(f"infer: {len(outputs)} outputs arrived for {reply['count']} "
                             "samples", "Protocol", "infer")
        return reply, outputs

    def results(self, first: int = 0) -> tuple[dict[str, Any], bytes]:
        return self.request("results", first=first, timeout=120.0)

    def telemetry(self) -> dict[str, Any]:
        return self.request("telemetry")[0]

    def clock(self) -> dict[str, Any]:
        return self.request("clock")[0]

    def bye(self) -> None:
        try:
            self.request("bye", timeout=5.0)
        except AgentError:
            pass
