"""The device's caches are trusted only after their SHA-256 is checked, and pushes have limits.

Issue 15: a board that loses power mid-write must never run a corrupt model, sample set or
agent: cached files are fsynced before they are renamed into place, re-hashed when they are
used, and a corrupt one is removed and pushed again with one line saying so. A push is
refused before anything is written when it is over the device's cap or its free space; a
sample set whose header cannot describe its payload is refused and not kept; and every
failed push removes its ``.part``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from test_agent_protocol import PipeLink

import edgeperf_agent.store as store_mod
from edgeperf.boards.profile import load_board
from edgeperf.cli.main import main
from edgeperf.links.bundle import agent_zipapp
from edgeperf.models.builtin import builtin_model
from edgeperf.run.client import AgentClient, AgentError
from edgeperf.run.execute import EXIT_VALID, RunSpec, execute
from edgeperf_agent import sampleset
from edgeperf_agent.server import MAX_CHUNK, Agent

RUN = ["run", "--board", "local", "--model", "builtin:mlp", "--scenario", "SingleStream",
       "--preset", "smoke", "--min-queries", "80"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def flip(path: Path, at: int) -> None:
    """One bit changed in place: same size, same name (what a torn write leaves)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def eps(header: dict, payload: bytes = b"") -> bytes:
    """A sample-set file built by hand (sampleset.pack refuses to build bad ones)."""
    h = json.dumps(header).encode()
    pad = (-(8 + len(h))) % sampleset.ALIGN
    return sampleset.MAGIC + struct.pack("<I", len(h)) + h + b"\0" * pad + payload


class Side:
    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.link = PipeLink(Agent(str(cache)))
        self.client = AgentClient(self.link, timeout=30.0)

    def close(self) -> None:
        self.link.close()


@pytest.fixture
def agent(tmp_path):
    """An in-process agent on its own cache; ``agent(restart=True)`` starts another on it."""
    sides: list[Side] = []

    def start() -> Side:
        sides.append(Side(tmp_path / "agent-cache"))
        return sides[-1]

    yield start
    for s in sides:
        s.close()


# ------------------------------------------------------------------ corrupt cache entries
def _cli_run(out: Path, capsys) -> tuple[dict, list[str]]:
    code = main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_VALID, err
    return json.loads((out / "result.json").read_text()), err.splitlines()


@pytest.mark.parametrize("what", ["model", "samples"])
def test_a_corrupt_cache_entry_is_removed_pushed_again_and_said_once(tmp_path, capsys,
                                                                     monkeypatch, what):
    cache = tmp_path / "agent-cache"
    monkeypatch.setenv("EDGEPERF_AGENT_CACHE", str(cache))
    first, _ = _cli_run(tmp_path / "a", capsys)
    kind, suffix = ("models", ".tflite") if what == "model" else ("samples", ".eps")
    sha = first["model"]["sha256"] if what == "model" else first["samples"]["sha256"]
    entry = cache / kind / f"{sha}{suffix}"
    good = entry.read_bytes()
    flip(entry, len(good) - 7)  # a weight / a sample value: loads and runs if not checked
    bad = sha256(entry.read_bytes())

    again, lines = _cli_run(tmp_path / "b", capsys)
    said = [ln for ln in lines if "corrupt" in ln]
    name = "builtin:mlp" if what == "model" else "sample set"
    assert len(said) == 1, lines
    assert said[0].startswith("edgeperf: ") and name in said[0]
    assert sha[:12] in said[0] and bad[:12] in said[0]
    assert "removed, pushed again" in said[0]
    assert again["result"] == "VALID"
    assert again["transfers"][f"{what}_bytes_sent"] == len(good)
    assert entry.read_bytes() == good
    assert not list(cache.rglob("*.part"))

    third, lines = _cli_run(tmp_path / "c", capsys)  # good again: nothing said, nothing sent
    assert not [ln for ln in lines if "corrupt" in ln]
    assert third["transfers"][f"{what}_bytes_sent"] == 0


def test_loading_a_corrupt_model_is_refused_and_the_entry_removed(agent) -> None:
    """A load that no probe preceded (another host, an agent restarted) re-hashes too."""
    a = agent()
    model = builtin_model("mlp")
    sha, _ = a.client.push_model(model)
    a.close()
    entry = a.cache / "models" / f"{sha}.tflite"
    flip(entry, 4000)
    b = agent()
    with pytest.raises(AgentError) as ei:
        b.client.load_model("tflite", sha256=sha)
    assert ei.value.kind == "CacheCorrupt"
    assert sha[:12] in str(ei.value) and "push" in str(ei.value)
    assert not entry.exists()
    assert b.client.push_model(model) == (sha, len(model))  # pushed whole, then it loads
    assert b.client.load_model("tflite", sha256=sha)["inputs"]


def test_a_cached_file_and_its_folder_are_fsynced_around_the_rename(agent, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    monkeypatch.setattr(store_mod.os, "replace", replace)
    a = agent()
    model = builtin_model("mlp")
    sha, _ = a.client.push_model(model)
    final = str(a.cache / "models" / f"{sha}.tflite")
    part = final[:-len(".tflite")] + ".part"
    assert ("replace", final) in events
    i = events.index(("replace", final))
    assert ("fsync", part) in events[:i]  # the data is on disk before the name is
    assert ("fsync", str(a.cache / "models")) in events[i + 1:]  # and the name after


# ------------------------------------------------------------------ the agent zipapp
def test_a_corrupt_agent_zipapp_on_an_ssh_board_is_uploaded_again(ssh_device, tmp_path,
                                                                  monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    prof = tmp_path / "dev.toml"
    prof.write_text(ssh_device.profile_toml(cache_dir=str(tmp_path / "device-cache")))
    board = load_board(str(prof))
    data, sha = agent_zipapp()
    run = RunSpec(model="synthetic:null", settings=_small(), board=board, out_dir=tmp_path / "a")
    assert execute(run).exit_code == EXIT_VALID
    path = tmp_path / "device-cache" / "agent" / f"{sha}.pyz"
    flip(path, len(data) // 2)  # same size: a size check cannot see it
    assert path.stat().st_size == len(data)
    bad = sha256(path.read_bytes())

    said: list[str] = []
    o = execute(RunSpec(model="synthetic:null", settings=_small(), board=board,
                        out_dir=tmp_path / "b"),
                report=lambda ev, d: said.append(d["message"]) if ev == "task" else None)
    assert o.exit_code == EXIT_VALID, o.invalid_reasons
    assert o.result["transfers"]["agent_bytes_sent"] == len(data)
    assert sha256(path.read_bytes()) == sha
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    lines = [s for s in said if "corrupt" in s]
    assert len(lines) == 1 and sha[:12] in lines[0] and bad[:12] in lines[0], said
    assert "uploaded again" in lines[0]


def _small():
    from runs import small
    return small("SingleStream")


# ------------------------------------------------------------------ push limits
def test_a_push_over_the_devices_cap_is_refused_before_a_chunk_is_sent(agent, monkeypatch):
    monkeypatch.setenv("EDGEPERF_AGENT_MAX_PUSH", "4096")
    a = agent()
    model = builtin_model("mlp")
    assert len(model) > 4096
    sent = a.client.bytes_sent
    with pytest.raises(AgentError) as ei:
        a.client.push_model(model)
    msg = str(ei.value)
    assert ei.value.kind == "PushRefused"
    assert f"{len(model)} bytes" in msg and "4096 bytes" in msg and "free" in msg
    assert "EDGEPERF_AGENT_MAX_PUSH" in msg  # the fix
    assert a.client.bytes_sent - sent < 1024  # only the announcement went
    assert files(a.cache) == []
    # a host that skips the announcement is refused at its first chunk, nothing written
    with pytest.raises(AgentError) as ei:
        a.client.request("push_model", model[:1000], sha256=sha256(model), size=len(model),
                         offset=0, last=False)
    assert ei.value.kind == "PushRefused"
    assert files(a.cache) == []


def test_a_push_larger_than_the_free_space_is_refused_naming_it(agent, monkeypatch):
    monkeypatch.setenv("EDGEPERF_AGENT_FREE_MARGIN", str(1 << 60))  # no disk has that spare
    a = agent()
    model = builtin_model("mlp")
    with pytest.raises(AgentError) as ei:
        a.client.push_model(model)
    msg = str(ei.value)
    assert ei.value.kind == "PushRefused"
    assert f"{len(model)} bytes" in msg and "free" in msg and str(a.cache) in msg
    assert "EDGEPERF_AGENT_FREE_MARGIN" in msg or "free some space" in msg
    assert files(a.cache) == []


def test_chunks_past_the_announced_size_or_over_the_limit_remove_the_part(agent):
    a = agent()
    c = a.client
    blob = bytes(range(256)) * 8
    sha = sha256(blob)
    part = a.cache / "models" / f"{sha}.part"
    cases = {  # name: (announced size, second chunk, its offset)
        "past the size": (1500, blob[1000:2000], 1000),
        "over the chunk limit": (1000 + MAX_CHUNK + 1, b"\0" * (MAX_CHUNK + 1), 1000),
    }
    for name, (size, chunk, offset) in cases.items():
        c.request("push_model", blob[:1000], sha256=sha, size=size, offset=0, last=False)
        assert part.stat().st_size == 1000
        with pytest.raises(AgentError) as ei:
            c.request("push_model", chunk, sha256=sha, size=size, offset=offset, last=False)
        assert not part.exists(), (name, ei.value)
    assert files(a.cache) == []
    # a chunk out of order is refused, but the part is intact: a resume continues from it
    c.request("push_model", blob[:1000], sha256=sha, size=len(blob), offset=0, last=False)
    with pytest.raises(AgentError, match="restart the push"):
        c.request("push_model", blob[1500:1600], sha256=sha, size=len(blob), offset=1500)
    assert part.read_bytes() == blob[:1000]


# ------------------------------------------------------------------ malformed sample sets
OVERFLOWING = {
    "np.prod wraps to 0": ({"tensors": [{"dtype": "float32", "shape": [1 << 32, 1 << 32]}]},
                           b""),
    "np.prod wraps negative": ({"tensors": [{"dtype": "int8", "shape": [3, 1 << 62]}]}, b""),
    "over int64": ({"tensors": [{"dtype": "uint8", "shape": [1 << 70]}]}, b""),
    "absurd size, tiny payload": ({"tensors": [{"dtype": "float64",
                                                "shape": [1 << 40, 1 << 10]}]}, b"\0" * 64),
    "non-integer size": ({"tensors": [{"dtype": "uint8", "shape": [2.5, 2]}]}, b"\0" * 5),
    "too many axes": ({"tensors": [{"dtype": "uint8", "shape": [1] * 70}]}, b"\0"),
}


@pytest.mark.parametrize("name", list(OVERFLOWING))
def test_a_sample_set_whose_shape_overflows_is_refused_and_not_kept(agent, name):
    header, payload = OVERFLOWING[name]
    blob = eps(header, payload)
    a = agent()
    with pytest.raises(AgentError) as ei:
        a.client.request("push_samples", blob, sha256=sha256(blob), size=len(blob), offset=0,
                         last=True)
    assert ei.value.kind == "AgentError", ei.value
    assert str(ei.value).startswith("pushed sample set is malformed: ")
    assert "shape" in str(ei.value)
    assert files(a.cache) == []  # neither the .eps nor its .part


def test_tensors_with_different_sample_counts_are_refused_at_push_naming_them(agent):
    blob = eps({"tensors": [{"dtype": "float32", "shape": [4, 2]},
                            {"dtype": "int8", "shape": [3, 5]}]},
               b"\0" * (4 * 2 * 4 + 3 * 5))
    a = agent()
    with pytest.raises(AgentError) as ei:
        a.client.request("push_samples", blob, sha256=sha256(blob), size=len(blob), offset=0,
                         last=True)
    msg = str(ei.value)
    assert msg.startswith("pushed sample set is malformed: ")
    assert "tensor 0" in msg and "4 samples" in msg and "tensor 1" in msg and "3 samples" in msg
    assert files(a.cache) == []
    with pytest.raises(sampleset.SampleSetError) as ei:  # the host refuses to build one
        sampleset.pack([np.zeros((4, 2), np.float32), np.zeros((3, 5), np.int8)])
    assert "tensor 0" in str(ei.value) and "3 samples" in str(ei.value)


# ------------------------------------------------------------------ interrupted pushes
def test_a_part_left_by_an_interrupted_push_is_cleaned_by_a_later_push(agent):
    a = agent()
    model = builtin_model("mlp")
    r, _ = a.client.request("push_model", model[:4096], sha256=sha256(model), size=len(model),
                            offset=0, last=False)
    assert r["received"] == 4096
    a.close()  # the link closes mid-push
    stale = a.cache / "models" / f"{sha256(model)}.part"
    assert stale.exists()  # kept for a resume soon after
    old = time.time() - store_mod.STALE_PART_S - 60
    os.utime(stale, (old, old))
    fresh = a.cache / "models" / f"{'b' * 64}.part"  # another agent's push, under way
    fresh.write_bytes(b"x" * 10)

    b = agent()
    other = builtin_model("cnn")
    b.client.push_model(other)
    assert sorted(files(b.cache)) == [f"models/{'b' * 64}.part",
                                      f"models/{sha256(other)}.tflite"]


def test_a_resumed_part_that_does_not_verify_is_pushed_again_from_the_start(agent, capsys):
    """Power lost mid-push: the part's tail is garbage; the resume fails to verify and the
    host pushes the whole model again instead of failing the run."""
    a = agent()
    model = builtin_model("mlp")
    sha = sha256(model)
    torn = bytearray(model[:4096])
    torn[100] ^= 1
    a.client.request("push_model", bytes(torn), sha256=sha, size=len(model), offset=0,
                     last=False)
    # the resume's bytes, then the whole model
    assert a.client.push_model(model) == (sha, len(model) - 4096 + len(model))
    assert (a.cache / "models" / f"{sha}.tflite").read_bytes() == model
    assert files(a.cache) == [f"models/{sha}.tflite"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pushed again" in err
