"""AgentClient: the host's side of the agent protocol, over any Link."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeperf.errors import AgentDied, AgentError, AgentTimeout
from edgeperf.links.base import Link, LinkClosed
from edgeperf.links.serial_key import authenticate
from edgeperf_agent import qlcodec, sampleset, wire
from edgeperf_agent.server import MAX_CHUNK, PROTOCOL, STALE_AFTER_S

EventHandler = Callable[[dict[str, Any], bytes], None]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)
Notice = Callable[[str], None]  # one line of news, without the "edgeperf: " prefix
CHUNK = 1024 * 1024


def _say(notice: Notice | None, text: str) -> None:
    if notice is not None:
        notice(text)
    else:
        print(f"edgeperf: {text}", file=sys.stderr, flush=True)


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
            elif self.decoder.buffered and not getattr(self.link, "lossless", False):
                # a partial frame lost its tail: resynchronise (a lossless link, such as
                # serial, loses nothing: its partial frame is only late)
                self._pending.extend(self.decoder.expire())
        return self._pending.pop(0)

    def request(self, op: str, body: bytes = b"", *, timeout: float | None = None,
                on_event: EventHandler | None = None, **fields: Any) -> tuple[dict, bytes]:
        """Send one request; return the reply's (header, body).

        ``timeout`` is an idle timeout: any frame from the agent (a run's progress events)
        restarts it, so a long run is fine as long as the agent keeps talking.
        """
        seq = self._send(op, body, fields)
        return self._reply(seq, op, timeout, on_event)

    def _send(self, op: str, body: bytes, fields: dict[str, Any]) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        frame = wire.encode(wire.REQUEST, self._seq, dict(fields, op=op), body)
        try:
            self.link.send(frame)
        except LinkClosed as exc:
            raise AgentDied(f"{op}: {exc}", "Died", op) from None
        self.bytes_sent += len(frame)
        return self._seq

    def _reply(self, seq: int, op: str, timeout: float | None,
               on_event: EventHandler | None) -> tuple[dict, bytes]:
        self._idle = timeout or self.timeout
        try:
            deadline = time.monotonic() + self._idle
            while True:
                f = self._next_frame(deadline)
                if f.seq != seq:
                    continue  # a stale reply to an abandoned request
                if f.type == wire.EVENT:
                    # an event may announce a quiet stretch (Offline's one timed query)
                    quiet = float(f.header.get("quiet_ns") or 0) / 1e9
                    deadline = time.monotonic() + self._idle + quiet
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
        """The agent's description. A serial agent that requires a key is authenticated
        here, in whichever session it is said hello in (links/serial_key.py)."""
        info, _ = self.request("hello", client="edgeperf-host", wire_version=wire.WIRE_VERSION)
        if info.get("protocol") != PROTOCOL:
            raise AgentError(f"the agent speaks protocol {info.get('protocol')}, this host "
                             f"{PROTOCOL}: update edgeperf so both sides match", "Protocol")
        key = getattr(self.link, "auth_key", None)
        if "auth" in info or key is not None:
            access = authenticate(self.request, self.link.describe(), info.get("auth"), key,
                                  getattr(self.link, "key_file", None),
                                  getattr(self.link, "connection_id", 0))
            if access["required"]:  # authenticated: now the agent tells all of it
                info, _ = self.request("hello", client="edgeperf-host",
                                       wire_version=wire.WIRE_VERSION)
            info["auth"] = access
        self.info = info
        return info

    def _push(self, op: str, data: bytes, extra: dict[str, Any], progress: Progress | None,
              what: str, notice: Notice | None) -> tuple[str, int]:
        """Push by SHA-256, resuming a partial copy; returns (sha, bytes actually sent).

        The announcement (sha and size, no chunk) lets the agent refuse a push that does not
        fit before anything is sent, and re-hash a copy it holds: a corrupt one is removed,
        and pushed again here with one line saying so. A resumed copy whose end was torn (a
        board that lost power mid-push) fails to verify and is pushed again from the start.
        """
        sha = hashlib.sha256(data).hexdigest()
        size = len(data)
        probe, _ = self.request(op, sha256=sha, size=size, **extra)
        if probe.get("present"):
            if progress:
                progress(size, size)
            return sha, 0
        if probe.get("corrupt"):
            got = str(probe["corrupt"].get("sha256", ""))
            _say(notice, f"{what} (sha256 {sha[:12]}…) in the device's cache was corrupt "
                         f"(hash {got[:12]}…): removed, pushed again")
        offset = int(probe.get("received", 0)) if probe.get("received", 0) < size else 0
        try:
            sent = self._chunks(op, data, sha, offset, extra, progress)
        except AgentError as exc:
            if not offset or exc.kind != "StoreError" or "does not verify" not in str(exc):
                raise
            _say(notice, f"{what} (sha256 {sha[:12]}…): the device's partial copy did not "
                         f"verify (a push cut short): pushed again from the start")
            sent = size - offset + self._chunks(op, data, sha, 0, extra, progress)
        return sha, sent

    def _chunks(self, op: str, data: bytes, sha: str, offset: int, extra: dict[str, Any],
                progress: Progress | None) -> int:
        """Send ``data[offset:]``; returns the bytes sent."""
        size = len(data)
        sent = 0
        # a slow link (serial) asks for chunks it carries in about a second
        step = min(CHUNK, MAX_CHUNK, getattr(self.link, "preferred_chunk", CHUNK))
        # two chunks in flight: the next one goes out while the agent stores this one, so a
        # slow line never idles for a round trip
        inflight: list[tuple[int, int]] = []  # (seq, offset after it)
        last = False
        while True:
            while not last and len(inflight) < 2:
                chunk = data[offset:offset + step]
                last = offset + len(chunk) >= size
                seq = self._send(op, chunk, dict(sha256=sha, size=size, offset=offset,
                                                 last=last, **(extra if last else {})))
                offset += len(chunk)
                sent += len(chunk)
                inflight.append((seq, offset))
            seq, done = inflight.pop(0)
            reply, _ = self._reply(seq, op, None, None)
            if progress:
                progress(done, size)
            if not inflight:
                break
        if not reply.get("present"):
            raise AgentError(f"{op}: the agent did not keep {sha[:12]}", "Push", op)
        return sent

    def push_model(self, data: bytes, progress: Progress | None = None, *, name: str = "",
                   notice: Notice | None = None, fmt: str = "tflite") -> tuple[str, int]:
        """``notice`` gets the one line a repaired cache entry is worth (default: stderr);
        ``fmt`` is the model's backend (tflite, onnx, executorch: its cache suffix)."""
        extra = {} if fmt == "tflite" else {"format": fmt}
        return self._push("push_model", data, extra, progress, f"model {name}".strip(), notice)

    def profile_ops(self, samples: str | None, runs: int, timeout: float = 600.0
                    ) -> dict[str, Any]:
        """The loaded model's per-operator profile over ``runs`` samples (after a run)."""
        info, _ = self.request("profile_ops", samples=samples, runs=int(runs), timeout=timeout)
        return info

    def push_samples(self, arrays: list[np.ndarray], progress: Progress | None = None, *,
                     name: str = "", notice: Notice | None = None) -> tuple[str, int]:
        """Push a sample set (one array per model input, samples along axis 0)."""
        return self._push("push_samples", sampleset.pack(arrays), {}, progress,
                          f"sample set {name}".strip(), notice)

    def load_model(self, backend: str, **fields: Any) -> dict[str, Any]:
        info, _ = self.request("load_model", backend=backend, timeout=120.0, **fields)
        return info

    @property
    def compact_querylog(self) -> bool:
        """A slow link and an agent that can: QueryLog stretches travel compressed."""
        return bool(getattr(self.link, "slow", False)) and \
            qlcodec.ENCODINGS[0] in self.info.get("querylog_encodings", [])

    def run(self, settings: dict[str, Any], *, samples: str | None, sample_count: int,
            on_event: EventHandler | None, idle_timeout: float = 120.0,
            batched: bool = True, cpu_affinity: list[int] | None = None,
            querylog: str = "auto", max_reply_bytes: int | None = None) -> dict[str, Any]:
        """Run a scenario. ``querylog="summary"``: only the first 10,000 rows travel, and
        the reply carries every latency, sorted ("latency_summary", decoded here into
        ``latencies_sorted_ns``), which is what scoring reads. "auto": the agent sends the
        whole log unless its line would not carry it while the run lasts (an agent that
        cannot choose sends it whole); the reply's ``querylog_mode`` says what it chose."""
        extra: dict[str, Any] = {}
        if self.compact_querylog:
            extra["querylog_encoding"] = qlcodec.ENCODINGS[0]
        if querylog == "summary" or (
                querylog == "auto" and "auto" in self.info.get("querylog_modes", [])):
            extra["querylog"] = querylog
        if max_reply_bytes:  # summary mode's latencies past this size are paged (tests: small)
            extra["max_reply_bytes"] = int(max_reply_bytes)

        def decode(header: dict[str, Any], body: bytes) -> None:
            if header.get("encoding"):
                body = qlcodec.decode_stretch(header, body)
            if on_event:
                on_event(header, body)

        reply, body = self.request("run", settings=settings, samples=samples,
                                   sample_count=sample_count, batched=batched,
                                   cpu_affinity=cpu_affinity or None,
                                   on_event=decode, timeout=idle_timeout, **extra)
        if "latency_summary" in reply:
            h = reply["latency_summary"]
            if h.get("paged"):  # too many for one frame: fetched in pages, then checked
                body = self._summary_bytes(int(h["body_bytes"]), str(h["sha256"]))
            reply["latencies_sorted_ns"] = qlcodec.decode_sorted_latencies(h, body)
        return reply

    def _summary_bytes(self, total: int, sha256: str) -> bytes:
        parts, got = [], 0
        while got < total:
            h, chunk = self.request("summary_bytes", offset=got, timeout=120.0)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        data = b"".join(parts)
        if len(data) != total or hashlib.sha256(data).hexdigest() != sha256:
            raise AgentError(f"summary_bytes: {len(data)} of {total} bytes arrived, or their "
                             f"sha256 differs", "Protocol", "summary_bytes")
        return data

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
        extra = {"encoding": qlcodec.ENCODINGS[0]} if self.compact_querylog else {}
        header, body = self.request("results", first=first, timeout=120.0, **extra)
        if header.get("encoding"):
            body = qlcodec.decode_stretch(header, body)
        return header, body

    def logged_outputs(self) -> list[tuple[int, int, bytes]]:
        """The outputs the last run logged (TEST01's accuracy-log sampling): (sequence id,
        loaded-set position, output bytes) each, fetched in pages."""
        out: list[tuple[int, int, bytes]] = []
        while True:
            h, body = self.request("logged_outputs", first=len(out), timeout=120.0)
            size, n = int(h["sample_bytes"]), int(h["count"])
            if len(body) != size * n or len(h["seq_ids"]) != n or len(h["positions"]) != n:
                raise AgentError(f"logged_outputs: {n} entries of {size} bytes announced, "
                                 f"{len(body)} bytes received")
            out += [(int(s), int(p), body[i * size:(i + 1) * size])
                    for i, (s, p) in enumerate(zip(h["seq_ids"], h["positions"], strict=True))]
            if not n or len(out) >= int(h["total"]):
                return out

    def telemetry(self) -> dict[str, Any]:
        return self.request("telemetry")[0]

    def clock(self) -> dict[str, Any]:
        return self.request("clock")[0]

    def bye(self) -> None:
        try:
            self.request("bye", timeout=5.0)
        except AgentError:
            pass
