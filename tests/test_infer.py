"""The agent's ``infer`` operation (accuracy mode), driven on an in-process Agent."""

from __future__ import annotations

import gc
import hashlib
import weakref
from typing import Any

import numpy as np
import pytest

from edgeperf.models.builtin import builtin_model, reference_forward
from edgeperf.models.network import Dense, Network, to_tflite
from edgeperf_agent import infer, sampleset
from edgeperf_agent.backends import BackendError
from edgeperf_agent.dispatch import Call
from edgeperf_agent.server import Agent, AgentError


class Device:
    def __init__(self, tmp_path) -> None:
        self.agent = Agent(str(tmp_path / "agent"))
        self.events: list[tuple[str, dict[str, Any], bytes]] = []

    def call(self, op: str, req: dict[str, Any], body: bytes = b"") -> tuple[dict, bytes]:
        """The operation called as the agent's dispatch calls it, its events collected."""
        sink = lambda seq, ev, h, b: self.events.append((ev, h, b))  # noqa: E731
        return getattr(self.agent, op)(Call(1, op, req, body, sink))

    def push(self, op: str, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.call(op, {"sha256": sha, "size": len(data), "offset": 0, "last": True}, data)
        return sha

    def load(self, blob: bytes) -> dict:
        sha = self.push("push_model", blob)
        return self.call("load_model", {"backend": "tflite", "sha256": sha})[0]

    def infer(self, **req: Any) -> tuple[dict, list[bytes]]:
        self.events.clear()
        reply, _ = self.call("infer", req)
        outs = []
        for ev, h, body in self.events:
            assert ev == "outputs" and h["first"] == len(outs)
            outs += [body[i * h["sample_bytes"]:(i + 1) * h["sample_bytes"]]
                     for i in range(h["count"])]
        return reply, outs


def test_infer_streams_every_output_in_bounded_frames(tmp_path) -> None:
    dev = Device(tmp_path)
    dev.load(builtin_model("mlp"))
    x = np.random.RandomState(0).uniform(0, 1, (25, 64)).astype(np.float32)
    sha = dev.push("push_samples", sampleset.pack([x]))
    reply, outs = dev.infer(samples=sha, max_event_bytes=100)
    assert reply["count"] == 25 and reply["sample_bytes"] == 40  # 10 float32 a sample
    assert reply["nonfinite_count"] == 0 and reply["nonfinite"] == []
    assert max(len(b) for _, _, b in dev.events) <= 100  # 2 samples a frame
    assert reply["events"] == len(dev.events) == 13
    for i, data in enumerate(outs):
        got = np.frombuffer(data, np.float32)
        np.testing.assert_allclose(got, reference_forward("mlp", x[i:i + 1])[0], rtol=1e-5,
                                   atol=1e-6)
    # a chosen list, in the order asked, and a range
    _, picked = dev.infer(samples=sha, indices=[7, 3, 7])
    assert picked == [outs[7], outs[3], outs[7]]
    _, tail = dev.infer(samples=sha, first=20)
    assert tail == outs[20:]


def test_infer_refuses_what_it_cannot_serve(tmp_path) -> None:
    dev = Device(tmp_path)
    with pytest.raises(AgentError, match="no model is loaded"):
        dev.infer(samples=None)
    dev.load(builtin_model("mlp"))
    sha = dev.push("push_samples", sampleset.pack([np.zeros((4, 64), np.float32)]))
    with pytest.raises(BackendError, match=r"indices \[4, -1\] are outside the sample set of 4"):
        dev.infer(samples=sha, indices=[0, 4, -1])
    with pytest.raises(BackendError, match="does not fit input"):
        bad = dev.push("push_samples", sampleset.pack([np.zeros((4, 8), np.float32)]))
        dev.infer(samples=bad)


def test_nan_outputs_are_flagged_by_sample(tmp_path) -> None:
    w = np.ones((3, 4), np.float32)
    w[1, 2] = np.nan  # output 1 is NaN whatever the input
    net = Network((1, 4), (Dense(w, np.zeros(3, np.float32)),))
    dev = Device(tmp_path)
    dev.load(to_tflite(net))
    sha = dev.push("push_samples", sampleset.pack([np.ones((5, 4), np.float32)]))
    reply, outs = dev.infer(samples=sha, indices=[4, 0, 2])
    assert reply["nonfinite_count"] == 3 and reply["nonfinite"] == [4, 0, 2]
    assert np.isnan(np.frombuffer(outs[0], np.float32)[1])


def test_the_agent_holds_one_sample_set_at_a_time(tmp_path) -> None:
    """An accuracy set streamed in windows: loading a window frees the previous one."""
    dev = Device(tmp_path)
    dev.load(builtin_model("mlp"))
    first = dev.push("push_samples", sampleset.pack([np.zeros((50, 64), np.float32)]))
    dev.infer(samples=first)
    held = weakref.ref(dev.agent.samples[0].base)  # the buffer the first window views
    second = dev.push("push_samples", sampleset.pack([np.ones((50, 64), np.float32)]))
    gc.collect()
    assert held() is None  # nothing keeps the first window alive: not the agent, not the backend
    assert dev.agent.samples_sha == second
    reply, outs = dev.infer(samples=second)
    assert reply["count"] == 50
    reply, outs = dev.infer(samples=first)  # back to a cached window: loaded from disk again
    assert reply["count"] == 50 and dev.agent.samples_sha == first


def test_a_slow_model_still_reports_every_half_second(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(infer, "MAX_EVENT_INTERVAL_NS", 0)  # as if each sample took 0.5 s
    dev = Device(tmp_path)
    dev.load(builtin_model("mlp"))
    sha = dev.push("push_samples", sampleset.pack([np.zeros((6, 64), np.float32)]))
    reply, outs = dev.infer(samples=sha)
    assert len(dev.events) == reply["events"] == 6 and len(outs) == 6
