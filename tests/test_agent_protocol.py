"""The device agent's protocol, end to end.

Two ways to reach a real agent: the real subprocess (host.link.LocalLink, running the same
zipapp that is shipped to devices) for end-to-end cases, and ``serve_fds`` in a thread on
os.pipe() pairs (``PipeLink``, a Link like any other) for fast edge cases. Both are driven
by the real host.client.AgentClient, or by raw frames where the client would refuse to
send what the test needs.
"""

from __future__ import annotations

import hashlib
import os
import platform
import select
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeperf.run.client as client_mod
import edgeperf_agent
from edgeperf.links.base import Link, LinkClosed
from edgeperf.links.local import LocalLink
from edgeperf.models.builtin import builtin_model
from edgeperf.run.client import AgentClient, AgentDied, AgentError
from edgeperf_agent import sampleset, wire
from edgeperf_agent.scenarios import SCENARIOS
from edgeperf_agent.server import PROTOCOL, Agent, serve_fds

OPS = ["bye", "clock", "hello", "load_model", "logged_outputs", "push_model", "push_samples",
       "results", "run", "telemetry"]
Event = tuple[dict[str, Any], bytes]


# ---------------------------------------------------------------- links to a real agent


class PipeLink(Link):
    """An in-process agent: ``serve_fds`` in a thread, spoken to over two os.pipe()s."""

    name = "pipe"

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        self.exit: list[Any] = []

        def serve() -> None:
            try:
                self.exit.append(serve_fds(req_r, rep_w, agent))
            except BaseException as exc:  # noqa: BLE001 - recorded for the test to see
                self.exit.append(exc)
            finally:
                os.close(req_r)
                os.close(rep_w)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._req_w, view):]
        except BrokenPipeError:
            raise LinkClosed(f"pipe: the agent ended: {self.exit}") from None

    def recv(self, n: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self._rep_r], [], [], max(0.0, timeout))
        if not ready:
            return b""
        data = os.read(self._rep_r, n)
        if not data:
            raise LinkClosed(f"pipe: the agent ended: {self.exit}")
        return data

    def close(self) -> None:
        if self._req_w >= 0:
            os.close(self._req_w)  # end of input: serve_fds returns
            self._req_w = -1
        self.thread.join(timeout=10)
        if self._rep_r >= 0:
            os.close(self._rep_r)
            self._rep_r = -1


@dataclass
class Agentside:
    link: Any
    client: AgentClient
    cache: Path


@pytest.fixture(scope="session")
def host_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("host-cache")


@pytest.fixture
def agent_cache(tmp_path, monkeypatch, host_cache_dir) -> Path:
    cache = tmp_path / "agent-cache"
    cache.mkdir()
    monkeypatch.setenv("EDGEPERF_AGENT_CACHE", str(cache))
    monkeypatch.setenv("EDGEPERF_CACHE", str(host_cache_dir))  # where the zipapp is written
    return cache


@pytest.fixture
def live(agent_cache):
    """The real agent subprocess, as the local board runs it."""
    link = LocalLink(cache_dir=str(agent_cache))
    client = AgentClient(link, timeout=30.0)
    yield Agentside(link, client, agent_cache)
    if link.proc.poll() is None:
        client.bye()
    link.close()


@pytest.fixture
def inproc(agent_cache):
    link = PipeLink(Agent(str(agent_cache)))
    yield Agentside(link, AgentClient(link, timeout=30.0), agent_cache)
    link.close()


# ---------------------------------------------------------------- helpers


def forge(header: bytes, body: bytes = b"", *, version: int = wire.WIRE_VERSION,
          type_: int = wire.REQUEST, seq: int = 1) -> bytes:
    """A frame with valid CRCs but any version and any header bytes."""
    head = struct.pack("<2sBBIII", wire.MAGIC, version, type_, seq, len(header), len(body))
    return (head + struct.pack("<I", zlib.crc32(head)) + header + body
            + struct.pack("<I", zlib.crc32(body, zlib.crc32(header))))


def exchange(link: Link, raw: bytes, n: int = 1, timeout: float = 10.0) -> list[wire.Frame]:
    """Send raw bytes, return the next n frames the agent sends back."""
    link.send(raw)
    dec = wire.FrameDecoder()
    frames: list[wire.Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"no reply in {timeout} s (got {frames})"
        frames += dec.feed(link.recv(1 << 16, min(left, 1.0)))
    return frames


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_files(cache: Path) -> list[str]:
    """Every file in the agent's cache, relative to it."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def split_log(body: bytes, rows: int, spr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert len(body) == rows * (16 + 4 * spr)
    issue = np.frombuffer(body, np.int64, rows, 0)
    done = np.frombuffer(body, np.int64, rows, 8 * rows)
    sample = np.frombuffer(body, np.uint32, rows * spr, 16 * rows)
    return issue, done, sample


def join_stretches(events: list[Event]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The querylog EVENT stretches, checked to be contiguous, joined into three arrays."""
    stretches = [(h, b) for h, b in events if h.get("event") == "querylog"]
    assert stretches, "no querylog event arrived"
    parts: tuple[list, list, list] = ([], [], [])
    first = 0
    spr = stretches[0][0]["samples_per_row"]
    for h, b in stretches:
        assert h["first"] == first and h["rows"] > 0 and h["samples_per_row"] == spr
        for part, arr in zip(parts, split_log(b, h["rows"], spr), strict=True):
            part.append(arr)
        first += h["rows"]
    issue, done, sample = (np.concatenate(p) for p in parts)
    return issue, done, sample, len(stretches)


# ---------------------------------------------------------------- hello


def test_hello_reports_versions_runtimes_and_clock(live) -> None:
    info = live.client.hello()
    assert info["agent_version"] == edgeperf_agent.__version__
    assert info["protocol"] == PROTOCOL == 1
    assert info["wire"] == wire.WIRE_VERSION
    assert info["python"] == platform.python_version()  # the same interpreter runs it
    assert info["numpy"] == np.__version__
    expected_runtimes: dict[str, Any] = {}
    for dist in ("ai_edge_litert", "tflite_runtime"):  # the agent runs this same interpreter
        try:
            expected_runtimes[dist] = str(__import__(dist).__version__)
        except ImportError:
            expected_runtimes[dist] = None
    assert info["runtimes"] == expected_runtimes
    assert any(expected_runtimes.values())  # the test environment has a runtime
    assert info["cpu_count"] == os.cpu_count()
    clock = info["clock"]
    assert isinstance(clock["resolution_ns"], int) and clock["resolution_ns"] > 0
    assert clock["monotonic"] is True
    assert clock["source"] == "time.perf_counter_ns"
    assert info["pid"] == live.link.proc.pid
    assert info["cache_dir"] == str(live.cache)
    assert live.client.info == info


# ---------------------------------------------------------------- requests the agent refuses


def test_unknown_op_lists_the_served_ops(inproc) -> None:
    with pytest.raises(AgentError) as ei:
        inproc.client.request("frobnicate")
    assert ei.value.kind == "UnknownOp"
    msg = str(ei.value)
    served = sorted(inproc.link.agent.ops)
    assert set(OPS) <= set(served)
    assert msg == "unknown operation 'frobnicate'; the agent serves: " + ", ".join(served)
    for header in (b"{}", b'{"op":5}', b'{"op":null}'):
        (f,) = exchange(inproc.link, forge(header, seq=71))
        assert (f.type, f.seq, f.header["kind"]) == (wire.ERROR, 71, "UnknownOp")
        assert "hello" in f.header["error"] and "push_model" in f.header["error"]
    assert inproc.client.hello()["protocol"] == PROTOCOL  # still serving


@pytest.mark.parametrize("type_,kind", [(wire.RESPONSE, "response"), (wire.ERROR, "error"),
                                        (wire.EVENT, "event"), (wire.ACK, "ack"),
                                        (0, "type0"), (99, "type99")])
def test_a_frame_that_is_not_a_request_gets_an_error(inproc, type_, kind) -> None:
    (f,) = exchange(inproc.link, wire.encode(type_, 1234, {"op": "bye"}))
    assert (f.type, f.seq) == (wire.ERROR, 1234)
    assert f.header["kind"] == "Protocol"
    assert f.header["error"] == f"expected a request, got a {kind} frame"
    assert not inproc.link.agent.closing  # the 'bye' inside it was not obeyed
    assert inproc.client.hello()["protocol"] == PROTOCOL


@pytest.mark.parametrize("version", [0, 2, 200])
def test_another_wire_version_gets_an_error_naming_both(inproc, version) -> None:
    (f,) = exchange(inproc.link, forge(b'{"op":"hello"}', version=version, seq=9))
    assert (f.type, f.seq, f.version) == (wire.ERROR, 9, wire.WIRE_VERSION)
    assert f.header["kind"] == "WireVersion"
    assert f"wire version {version} is not spoken here" in f.header["error"]
    assert f"this agent speaks {wire.WIRE_VERSION}" in f.header["error"]
    assert inproc.client.hello()["wire"] == wire.WIRE_VERSION


def test_live_agent_survives_garbage_and_corrupt_frames(live) -> None:
    c = live.client
    pid = c.hello()["pid"]
    rng = np.random.default_rng(5)
    live.link.send(rng.bytes(10 * 1024))
    # corrupt copies of 'bye': were any obeyed, the agent would exit
    bye = wire.encode(wire.REQUEST, 900, {"op": "bye"}, b"x" * 64)
    corrupt = []
    for at in (2, 9, 17, 25, 40, len(bye) - 1):  # version, length, head CRC, header, body, CRC
        b = bytearray(bye)
        b[at] ^= 0x04
        corrupt.append(bytes(b))
    live.link.send(b"".join(corrupt) + rng.bytes(3000) + bye[:11])
    info = c.hello()
    assert info["pid"] == pid == live.link.proc.pid
    assert live.link.proc.poll() is None
    assert c.decoder.stats.frames == 2  # it answered the two hellos and nothing else
    assert c.decoder.stats.garbage_bytes == 0


def test_live_agent_survives_a_frame_whose_header_nests_too_deep(live) -> None:
    """A frame with valid CRCs whose header JSON nests 100000 deep (1 MB limit allows it).
    The agent should drop it (or answer an error) and keep serving. The decoder lets
    json.loads' RecursionError escape, serve_fds does not catch it, and the agent dies."""
    c = live.client
    pid = c.hello()["pid"]
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    live.link.send(forge(deep, seq=3))
    info = c.hello()
    assert info["pid"] == pid
    assert live.link.proc.poll() is None


# ---------------------------------------------------------------- push_model


def test_push_model_in_chunks_is_verified_and_cached_once(live, monkeypatch) -> None:
    c = live.client
    model = builtin_model("mlp")
    sha = sha256(model)
    monkeypatch.setattr(client_mod, "CHUNK", 1024)  # many chunks from a 10 KB model
    progress: list[tuple[int, int]] = []
    assert c.push_model(model, progress=lambda d, t: progress.append((d, t))) == \
        (sha, len(model))
    n = -(-len(model) // 1024)
    assert n > 5
    assert progress == [(min((i + 1) * 1024, len(model)), len(model)) for i in range(n)]
    assert cached_files(live.cache) == [f"models/{sha}.tflite"]
    assert (live.cache / "models" / f"{sha}.tflite").read_bytes() == model
    # the second push only probes
    sent_before = c.bytes_sent
    assert c.push_model(model) == (sha, 0)
    assert c.bytes_sent - sent_before < 1024
    probe, _ = c.request("push_model", sha256=sha, size=len(model))
    assert (probe["present"], probe["received"]) == (True, len(model))


def test_interrupted_push_resumes_where_it_stopped(live) -> None:
    c = live.client
    model = builtin_model("mlp")
    sha = sha256(model)
    r, _ = c.request("push_model", model[:4096], sha256=sha, size=len(model), offset=0,
                     last=False)
    assert (r["present"], r["received"]) == (False, 4096)
    probe, _ = c.request("push_model", sha256=sha, size=len(model))
    assert (probe["present"], probe["received"]) == (False, 4096)
    assert c.push_model(model) == (sha, len(model) - 4096)
    assert (live.cache / "models" / f"{sha}.tflite").read_bytes() == model
    assert not (live.cache / "models" / f"{sha}.part").exists()


@pytest.mark.parametrize("how", ["wrong sha", "flipped byte", "wrong size"])
def test_push_that_does_not_verify_is_refused_and_leaves_nothing(live, how) -> None:
    c = live.client
    model = builtin_model("mlp")
    sha, size, data = sha256(model), len(model), bytearray(model)
    if how == "wrong sha":
        sha = sha256(b"another model")
    elif how == "flipped byte":
        data[6000] ^= 1
    else:
        size += 1
    half = 5000
    c.request("push_model", bytes(data[:half]), sha256=sha, size=size, offset=0, last=False)
    with pytest.raises(AgentError) as ei:
        c.request("push_model", bytes(data[half:]), sha256=sha, size=size, offset=half,
                  last=True)
    assert ei.value.kind == "StoreError"
    assert "SHA-256" in str(ei.value) and sha in str(ei.value)
    assert "push it again" in str(ei.value)
    assert cached_files(live.cache) == []  # no .tflite, no .part
    probe, _ = c.request("push_model", sha256=sha, size=size)
    assert (probe["present"], probe["received"]) == (False, 0)
    with pytest.raises(AgentError, match="push it first"):
        c.load_model("tflite", sha256=sha)


@pytest.mark.parametrize("bad", ["xyz", "A" * 64, "a" * 63, "a" * 65, "g" * 64,
                                 "../../" + "a" * 58, "a" * 64 + "\n", " " + "a" * 64,
                                 12345, None])
def test_push_with_a_sha_that_is_not_lowercase_hex_is_refused(inproc, bad) -> None:
    c = inproc.client
    with pytest.raises(AgentError) as ei:
        c.request("push_model", sha256=bad, size=3)  # a probe
    assert ei.value.kind == "StoreError" and "hex SHA-256" in str(ei.value)
    with pytest.raises(AgentError) as ei:
        c.request("push_model", b"abc", sha256=bad, size=3, offset=0, last=False)
    assert ei.value.kind == "StoreError" and "hex SHA-256" in str(ei.value)
    assert cached_files(inproc.cache) == []


def test_chunk_at_a_wrong_offset_is_refused(inproc) -> None:
    c = inproc.client
    data = bytes(range(256)) * 8
    sha = sha256(data)
    with pytest.raises(AgentError, match="chunk at offset 100 but the device holds 0 bytes"):
        c.request("push_model", data[100:200], sha256=sha, size=len(data), offset=100)
    r, _ = c.request("push_model", data[:1000], sha256=sha, size=len(data), offset=0)
    assert r["received"] == 1000
    for off in (500, 999, 1001, 2000, -1):
        with pytest.raises(AgentError) as ei:
            c.request("push_model", data[1000:1100], sha256=sha, size=len(data), offset=off)
        assert f"offset {off} but the device holds 1000 bytes" in str(ei.value)
        assert "restart the push" in str(ei.value)
    r, _ = c.request("push_model", data[1000:], sha256=sha, size=len(data), offset=1000,
                     last=True)
    assert r["present"] is True
    assert (inproc.cache / "models" / f"{sha}.tflite").read_bytes() == data


# ---------------------------------------------------------------- load_model


def test_load_of_a_file_that_is_not_tflite_names_the_format(live) -> None:
    c = live.client
    junk = np.random.default_rng(11).bytes(4096)
    assert junk[4:8] != b"TFL3"
    sha, sent = c.push_model(junk)
    assert sent == len(junk)
    with pytest.raises(AgentError) as ei:
        c.load_model("tflite", sha256=sha)
    assert ei.value.kind == "BackendError"
    assert "not a TFLite flatbuffer" in str(ei.value) and "TFL3" in str(ei.value)
    assert c.hello()["pid"] == live.link.proc.pid


def test_load_of_a_truncated_model_is_refused_and_the_agent_survives(live) -> None:
    c = live.client
    pid = c.hello()["pid"]
    model = builtin_model("mlp")
    sha, _ = c.push_model(model[: len(model) // 2])
    with pytest.raises(AgentError) as ei:
        c.load_model("tflite", sha256=sha)
    msg = str(ei.value)
    assert ei.value.kind == "BackendError"
    assert "the runtime refused the model" in msg
    assert "re-push" in msg or "re-export" in msg  # names a fix
    assert c.hello()["pid"] == pid and live.link.proc.poll() is None
    # and the agent still loads the real model
    full, _ = c.push_model(model)
    desc = c.load_model("tflite", sha256=full)
    assert desc["backend"] == "tflite" and desc["runtime"] == "ai_edge_litert"
    assert [(t["shape"], t["dtype"]) for t in desc["inputs"]] == [([1, 64], "float32")]
    assert [(t["shape"], t["dtype"]) for t in desc["outputs"]] == [([1, 10], "float32")]


def test_load_of_an_unknown_backend_or_a_model_never_pushed(inproc) -> None:
    c = inproc.client
    with pytest.raises(AgentError) as ei:
        c.load_model("caffe")
    assert str(ei.value) == "unknown backend 'caffe'; this agent knows tflite, onnx, " \
        "executorch, synthetic"
    with pytest.raises(AgentError, match="no model with that hash is on the device; push it"):
        c.load_model("onnx", sha256="1" * 64)
    with pytest.raises(AgentError, match="no model with that hash is on the device; push it"):
        c.load_model("tflite", sha256="0" * 64)
    with pytest.raises(AgentError, match="no model is loaded"):
        c.run({"scenario": "SingleStream"}, samples=None, sample_count=4, on_event=None)


@pytest.mark.parametrize("kind", ["busy:abc", "busy:0", "busy:-5", "busy:nan", "busy:",
                                  "frobnicate"])
def test_load_of_a_bad_synthetic_kind_is_refused(inproc, kind) -> None:
    with pytest.raises(AgentError) as ei:
        inproc.client.load_model("synthetic", kind=kind)
    assert ei.value.kind == "BackendError"
    assert repr(kind) in str(ei.value) and "synthetic:busy:" in str(ei.value)


def test_load_of_good_synthetic_kinds(inproc) -> None:
    d = inproc.client.load_model("synthetic", kind="busy:250")
    assert (d["backend"], d["kind"], d["busy_ns"]) == ("synthetic", "busy:250", 250_000)
    d = inproc.client.load_model("synthetic", kind="null")
    assert (d["kind"], d["busy_ns"]) == ("null", 0)


@pytest.mark.parametrize("kind", ["sleep:abc", "sleep:0", "sleep:-5", "sleep:nan", "sleep:",
                                  "sleep:60000001"])
def test_load_of_a_bad_sleep_duration_is_refused(inproc, kind) -> None:
    with pytest.raises(AgentError, match=r"e\.g\. synthetic:sleep:100$") as ei:
        inproc.client.load_model("synthetic", kind=kind)
    assert ei.value.kind == "BackendError" and str(ei.value) == (
        f"synthetic model {kind!r}: sleep needs a positive duration in microseconds (0.001 "
        "to 60e6), e.g. synthetic:sleep:100")


def test_load_of_a_sleep_kind(inproc) -> None:
    d = inproc.client.load_model("synthetic", kind="sleep:2500")
    assert (d["backend"], d["kind"], d["sleep_ns"], d["busy_ns"]) == \
        ("synthetic", "sleep:2500", 2_500_000, 0)


# ---------------------------------------------------------------- tflite runs and sample sets


def test_tflite_run_checks_the_sample_set_against_the_model(live) -> None:
    c = live.client
    sha, _ = c.push_model(builtin_model("mlp"))
    c.load_model("tflite", sha256=sha)
    rng = np.random.default_rng(3)
    good = rng.standard_normal((32, 64)).astype(np.float32)
    ssha, sent = c.push_samples([good])
    assert sent == len(sampleset.pack([good])) and ssha == sha256(sampleset.pack([good]))
    settings = {"scenario": "SingleStream", "min_query_count": 50, "min_duration_ns": 0}
    events: list[Event] = []
    reply = c.run(settings, samples=ssha, sample_count=32,
                  on_event=lambda h, b: events.append((h, b)))
    assert reply["rows"] == 50 and reply["n_samples"] == 32
    assert reply["samples_per_row"] == 1
    assert reply["stop_reason"] == "min duration and min query count met"
    hdr, body = c.results()
    issue, done, sample = split_log(body, 50, 1)
    assert (done > issue).all()  # a real inference takes time
    assert (issue[1:] >= done[:-1]).all()
    assert (sample < 32).all()
    assert hdr["checksum"] == reply["checksum"] == zlib.crc32(body)
    *_, n = join_stretches(events)
    assert n >= 1

    wrong_shape = rng.standard_normal((32, 63)).astype(np.float32)
    bsha, _ = c.push_samples([wrong_shape])
    with pytest.raises(AgentError) as ei:
        c.run(settings, samples=bsha, sample_count=32, on_event=None)
    assert ei.value.kind == "BackendError"
    assert "[63]" in str(ei.value) and "[64]" in str(ei.value)

    wrong_dtype = good.astype(np.float64)
    dsha, _ = c.push_samples([wrong_dtype])
    with pytest.raises(AgentError) as ei:
        c.run(settings, samples=dsha, sample_count=32, on_event=None)
    assert ei.value.kind == "BackendError"
    assert "float64" in str(ei.value) and "float32" in str(ei.value)

    # the good set still runs after the refusals
    assert c.run(settings, samples=ssha, sample_count=32, on_event=None)["rows"] == 50


def _eps(header: str, data: bytes = b"") -> bytes:
    """A sample-set file built by hand (sampleset.pack refuses to build bad ones)."""
    h = header.encode()
    pad = (-(8 + len(h))) % sampleset.ALIGN
    return sampleset.MAGIC + struct.pack("<I", len(h)) + h + b"\0" * pad + data


MALFORMED_SAMPLE_SETS = {
    "not a sample set": b"hello world" * 10,
    "truncated tensor": _eps('{"tensors":[{"dtype":"float32","shape":[4,4]}]}', b"\0" * 32),
    "bytes after the tensors": _eps('{"tensors":[{"dtype":"float32","shape":[2]}]}',
                                    b"\0" * 12),
    "tensor without a shape": _eps('{"tensors":[{"dtype":"float32"}]}', b"\0" * 8),
    "unknown dtype": _eps('{"tensors":[{"dtype":"float99","shape":[2]}]}', b"\0" * 8),
    "object dtype": _eps('{"tensors":[{"dtype":"object","shape":[1]}]}', b"\0" * 8),
    "tensors not a list": _eps('{"tensors":5}'),
    "no tensors": _eps('{"tensors":[]}'),
}


@pytest.mark.parametrize("name", list(MALFORMED_SAMPLE_SETS))
def test_malformed_sample_set_is_refused_and_not_kept(inproc, name) -> None:
    """The agent checks a pushed sample set when its last chunk arrives. Whatever is wrong
    with it, the answer should be the 'malformed' error and the file must not stay cached:
    a cached file is 'present', so the host would never push a good copy again."""
    c = inproc.client
    blob = MALFORMED_SAMPLE_SETS[name]
    sha = sha256(blob)
    with pytest.raises(AgentError) as ei:
        c.request("push_samples", blob, sha256=sha, size=len(blob), offset=0, last=True)
    assert ei.value.kind == "AgentError"
    assert str(ei.value).startswith("pushed sample set is malformed: ")
    assert cached_files(inproc.cache) == []
    probe, _ = c.request("push_samples", sha256=sha, size=len(blob))
    assert probe["present"] is False


# ---------------------------------------------------------------- the four scenarios


SCENARIO_RUNS = {
    "SingleStream": ({"scenario": "SingleStream", "min_query_count": 300,
                      "min_duration_ns": 30_000_000, "flush_interval_ns": 3_000_000}, 64),
    "MultiStream": ({"scenario": "MultiStream", "samples_per_query": 8,
                     "min_query_count": 200, "min_duration_ns": 30_000_000,
                     "flush_interval_ns": 3_000_000}, 50),
    "Server": ({"scenario": "Server", "target_qps": 2000, "min_query_count": 2000,
                "min_duration_ns": 0, "flush_interval_ns": 100_000_000,
                "schedule_rng_seed": 3}, 64),
    "Offline": ({"scenario": "Offline", "offline_sample_count": 100_000,
                 "flush_interval_ns": 1_000_000}, 100),
}


@pytest.mark.parametrize("scenario", list(SCENARIO_RUNS))
def test_synthetic_run_streams_its_querylog_and_results_match(live, scenario) -> None:
    c = live.client
    settings, n_samples = SCENARIO_RUNS[scenario]
    c.load_model("synthetic", kind="null")
    events: list[Event] = []
    reply = c.run(settings, samples=None, sample_count=n_samples,
                  on_event=lambda h, b: events.append((h, b)))
    rows, spr = reply["rows"], reply["samples_per_row"]

    # the stretches sent while running, joined, are the log the results op returns
    issue, done, sample, n_stretches = join_stretches(events)
    assert len(issue) == rows
    hdr, body = c.results()
    assert (hdr["first"], hdr["rows"], hdr["samples_per_row"]) == (0, rows, spr)
    assert issue.tobytes() + done.tobytes() + sample.tobytes() == body
    crc = zlib.crc32(sample.tobytes(), zlib.crc32(done.tobytes(), zlib.crc32(issue.tobytes())))
    assert reply["checksum"] == hdr["checksum"] == crc == zlib.crc32(body)
    assert reply["n_samples"] == n_samples and reply["batched"] is False

    assert (done >= issue).all()
    assert (sample < n_samples).all()
    assert issue[0] >= reply["start_ns"] and done[-1] <= reply["end_ns"]
    if scenario == "SingleStream":
        assert spr == 1 and rows >= 300 and n_stretches >= 2
        assert (issue[1:] >= done[:-1]).all()
        assert reply["end_ns"] - reply["start_ns"] >= 30_000_000
    elif scenario == "MultiStream":
        assert spr == 8 and rows >= 200 and n_stretches >= 2
        assert len(sample) == rows * 8
        assert (issue[1:] >= done[:-1]).all()
    elif scenario == "Server":
        assert spr == 1 and rows == 2000
        assert issue[0] == reply["start_ns"]  # the first query arrives at the start
        gaps = np.diff(issue)
        assert (gaps >= 0).all()
        mean_gap_s = float(gaps.mean()) / 1e9
        assert abs(mean_gap_s - 1 / 2000) <= 0.2 / 2000
    else:
        assert spr == 1 and rows == 100_000 and n_stretches >= 2
        assert (issue == reply["start_ns"]).all()  # one query: one issue time
        assert reply["stop_reason"] == "all 100000 samples answered"
        # Offline walks the sample set in permutations
        assert sorted(sample[:100].tolist()) == list(range(100))


def test_sample_order_is_determined_by_its_seed(inproc) -> None:
    c = inproc.client
    c.load_model("synthetic", kind="null")

    def order(seed: int) -> np.ndarray:
        reply = c.run({"scenario": "SingleStream", "min_query_count": 200,
                       "max_query_count": 200, "sample_index_rng_seed": seed},
                      samples=None, sample_count=1000, on_event=None)
        assert reply["rows"] == 200
        _, body = c.results()
        return split_log(body, 200, 1)[2].copy()

    a, b, other = order(7), order(7), order(8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, other)
    assert (a < 1000).all() and len(set(a.tolist())) > 150


def test_run_settings_that_cannot_work_are_refused(inproc) -> None:
    c = inproc.client
    c.load_model("synthetic", kind="null")
    with pytest.raises(AgentError) as ei:
        c.run({"scenario": "SingleStream", "min_query_count": 10, "max_query_count": 5},
              samples=None, sample_count=8, on_event=None)
    assert ei.value.kind == "RunError"
    assert str(ei.value) == "min_query_count 10 > max_query_count 5"
    with pytest.raises(AgentError) as ei:
        c.run({"scenario": "Batch"}, samples=None, sample_count=8, on_event=None)
    assert ei.value.kind == "RunError"
    assert str(ei.value) == "unknown scenario 'Batch'; choose one of " + ", ".join(SCENARIOS)
    assert SCENARIOS == ("SingleStream", "MultiStream", "Server", "Offline")
    with pytest.raises(AgentError, match="Server needs a target QPS"):
        c.run({"scenario": "Server"}, samples=None, sample_count=8, on_event=None)
    with pytest.raises(AgentError, match="no completed run"):
        c.results()


# ---------------------------------------------------------------- death and goodbye


def test_agent_killed_mid_run_raises_agent_died_and_keeps_what_arrived(live) -> None:
    c = live.client
    c.load_model("synthetic", kind="busy:1000")
    events: list[Event] = []

    def on_event(h: dict[str, Any], b: bytes) -> None:
        events.append((h, b))
        if h.get("event") == "querylog" and live.link.proc.poll() is None:
            live.link.proc.kill()

    t0 = time.monotonic()
    with pytest.raises(AgentDied) as ei:
        c.run({"scenario": "SingleStream", "min_duration_ns": 10_000_000_000,
               "min_query_count": 1, "flush_interval_ns": 50_000_000},
              samples=None, sample_count=16, on_event=on_event)
    assert time.monotonic() - t0 < 8  # the death is noticed at once, not after 10 s
    msg = str(ei.value)
    assert ei.value.kind == "Died" and msg.startswith("run: local: the agent exited")
    assert "code -9" in msg
    assert live.link.proc.returncode == -9
    issue, done, sample, _ = join_stretches(events)
    # how many queries fit in the first 50 ms stretch depends on the machine's load: the
    # promise is that what arrived before the death is there and consistent
    assert len(issue) >= 1
    assert ((done - issue) >= 1_000_000).all()  # busy:1000 spins 1 ms a query
    assert (issue[1:] >= done[:-1]).all()
    assert (sample < 16).all()


def test_bye_ends_the_agent_cleanly(live) -> None:
    c = live.client
    c.hello()
    reply, body = c.request("bye")
    assert reply == {"bye": True, "op": "bye"} and body == b""
    assert live.link.proc.wait(timeout=10) == 0


def test_serve_fds_returns_0_on_bye_and_on_end_of_input(agent_cache) -> None:
    link = PipeLink(Agent(str(agent_cache)))
    (f,) = exchange(link, wire.encode(wire.REQUEST, 5, {"op": "bye"}))
    assert (f.type, f.header["bye"]) == (wire.RESPONSE, True)
    link.thread.join(timeout=10)
    assert link.exit == [0]
    link.close()
    link = PipeLink(Agent(str(agent_cache)))
    link.close()
    assert link.exit == [0]
