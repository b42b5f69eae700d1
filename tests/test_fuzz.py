"""The short run of benchmarks/fuzz_inputs.py (issue 15): 20,000 inputs per target, seed 0,
no exception but the module's own, memory bounded; and the inputs of the bugs it and its
review found, kept as regressions. The 10,000,000-input run is in docs/PERFORMANCE.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeperf_agent import reliable, sampleset, wire

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_inputs.py"
_spec = importlib.util.spec_from_file_location("fuzz_inputs", _PATH)
fuzz_inputs = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_inputs"] = fuzz_inputs
_spec.loader.exec_module(fuzz_inputs)

QUICK = 20_000


def _check(rep) -> None:
    assert rep.inputs == QUICK
    assert rep.crashes == 0, "\n".join(str(c) for c in rep.first_crashes)
    assert rep.growth < fuzz_inputs.RSS_BOUND, fuzz_inputs.describe(rep)


def test_frame_decoder_takes_20000_hostile_inputs() -> None:
    rep = fuzz_inputs.fuzz("wire", QUICK, seed=0)
    _check(rep)
    # the inputs reached the header parser, and it refused them its own way, many ways
    assert sum(rep.allowed.values()) > 1000 and len(rep.allowed) > 20
    assert any("digits" in k for k in rep.allowed)


def test_reliable_receiver_takes_20000_hostile_inputs() -> None:
    rep = fuzz_inputs.fuzz("reliable", QUICK, seed=0)
    _check(rep)
    assert not rep.allowed  # Endpoint.feed raises nothing at all


@pytest.mark.filterwarnings("ignore:Data type alias:DeprecationWarning")  # numpy 2 on "a"
def test_sampleset_parser_takes_20000_hostile_inputs() -> None:
    rep = fuzz_inputs.fuzz("sampleset", QUICK, seed=0)
    _check(rep)
    assert len(rep.allowed) > 20


def test_a_crash_is_counted_and_kept_with_its_input(monkeypatch) -> None:
    """The harness itself: an exception of another type is a crash, with its replay data."""
    def boom(raw):
        raise KeyError("x")
    monkeypatch.setattr(sampleset, "unpack", boom)
    rep = fuzz_inputs.fuzz("sampleset", 10, seed=0)
    assert rep.crashes == 10 and not rep.allowed
    assert rep.first_crashes[0]["error"] == "KeyError: 'x'"
    assert rep.first_crashes[0]["chunk"] == 0 and "input_hex" in rep.first_crashes[0]


# ------------------------------------------------------------------ regressions


def _session():
    a = reliable.Endpoint(initiator=True, sid=11)
    b = reliable.Endpoint(initiator=False, sid=22)
    t = 0.0
    for _ in range(4):
        t += 0.01
        b.feed(a.poll(t), t)
        a.feed(b.poll(t), t)
    assert a.established and b.established
    return b, b.sid ^ b.peer


def test_one_byte_out_of_order_pieces_are_capped_in_number() -> None:
    """A peer of the session parked 16,000 one-byte pieces just above the next expected
    offset (within the byte limits), and one byte filling the gap then cost a scan of every
    piece per piece delivered: 5.6 s of the agent's serve loop, quadratic in the count."""
    b, c = _session()
    b.feed(b"".join(wire.encode(wire.DATA, i + 1, {"c": c}, b"x") for i in range(2000)), 1.0)
    assert len(b._ooo) == b.window * reliable.OOO_PER_WINDOW == 128
    assert b.stats.refused == 2000 - 128
    b.feed(wire.encode(wire.DATA, 0, {"c": c}, b"y"), 1.0)
    assert b.read() == b"y" + b"x" * 128 and not b._ooo and b._ooo_bytes == 0


def test_out_of_order_pieces_still_complete_the_stream_in_order() -> None:
    b, c = _session()
    pieces = [(5, b"fgh"), (3, b"de"), (12, b"mn"), (8, b"ijkl"), (1, b"bc"), (4, b"efg")]
    for seq, data in pieces:
        b.feed(wire.encode(wire.DATA, seq, {"c": c}, data), 1.0)
    b.feed(wire.encode(wire.DATA, 0, {"c": c}, b"a"), 1.0)
    assert b.read() == b"abcdefghijklmn" and not b._ooo


SAMPLESET_CRASHES = [  # found by the fuzzer (seed 0), against sampleset.py as of issue 15
    ("<f4", [0, 10**30]),  # ValueError: Maximum allowed dimension exceeded
    ("bool", [0, 2**40, 2**40]),  # ValueError: array is too big
    (",int32", [3, 1]),  # SyntaxError from np.dtype
    ("(2,)i4", [3, 1]),  # a sub-array dtype: not one pack() writes
    ("float32", [1, 2**62, 4]),  # item count times item size past the largest intp
]


@pytest.mark.parametrize("dtype, shape", SAMPLESET_CRASHES)
def test_sampleset_hostile_layouts_raise_sampleset_errors(dtype, shape) -> None:
    import json
    hj = json.dumps({"tensors": [{"dtype": dtype, "shape": shape}]}).encode()
    raw = sampleset._HEAD.pack(sampleset.MAGIC, len(hj)) + hj
    raw += b"\0" * ((-len(raw)) % sampleset.ALIGN)
    with pytest.raises(sampleset.SampleSetError):
        sampleset.unpack(np.frombuffer(raw, np.uint8))


def _raw(header: bytes) -> np.ndarray:
    raw = sampleset._HEAD.pack(sampleset.MAGIC, len(header)) + header
    return np.frombuffer(raw + b"\0" * ((-len(raw)) % sampleset.ALIGN), np.uint8)


@pytest.mark.parametrize("header, named", [
    (b'{"tensors":[{"dtype":"float32","shape":[' + b"9" * 5000 + b']}]}', "5000 digits"),
    (b'{"tensors":[{"dtype":"float32","shape":[NaN]}]}', "NaN is not plain JSON"),
    (b'{"tensors":[{"dtype":"float32","shape":[2, 1]}],"x":-' + b"1" * 21 + b'}', "21 digits"),
])
def test_sampleset_header_integers_are_bounded_before_int_parses_them(header, named) -> None:
    """Python 3.9/3.10's int() is quadratic in the digits: a 1 MiB header of one integer
    would hold the agent for seconds. Shapes are int64s; longer integers are refused."""
    with pytest.raises(sampleset.SampleSetError, match=named):
        sampleset.unpack(_raw(header))


def test_a_sampleset_pack_writes_is_still_read() -> None:
    arrays = [np.arange(12, dtype="<f4").reshape(3, 4), np.zeros((3, 0, 2**40), "int8")]
    got = sampleset.unpack(np.frombuffer(sampleset.pack(arrays), np.uint8))
    assert [a.dtype.name for a in got] == ["float32", "int8"]
    assert [a.shape for a in got] == [(3, 4), (3, 0, 2**40)]
    assert got[0].tolist() == arrays[0].tolist()
