"""Compact QueryLog stretches (device_agent/qlcodec.py): exact, and a few bytes a query."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeperf_agent import qlcodec


def stretch(issue, done, sample, spr=1, first=0):
    h = {"first": first, "rows": len(done), "samples_per_row": spr}
    body = (np.asarray(issue, "<i8").tobytes() + np.asarray(done, "<i8").tobytes()
            + np.asarray(sample, "<u4").tobytes())
    return h, body


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_stretch_decodes_to_the_same_bytes(data):
    rows = data.draw(st.integers(0, 300))
    spr = data.draw(st.sampled_from([1, 8]))
    i64 = st.integers(-(2**62), 2**62)
    issue = data.draw(st.lists(i64, min_size=rows, max_size=rows))
    done = data.draw(st.lists(i64, min_size=rows, max_size=rows))
    sample = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=rows * spr,
                                max_size=rows * spr))
    h, body = stretch(issue, done, sample, spr, first=data.draw(st.integers(0, 10**9)))
    ch, cb = qlcodec.encode_stretch(h, body)
    assert qlcodec.decode_stretch(ch, cb) == body
    assert {k: ch[k] for k in h} == h


def realistic(rows: int, seed: int = 0, lat_ns: int = 400, jitter: int = 15):
    rng = np.random.default_rng(seed)
    lat = rng.normal(lat_ns, jitter, rows).astype(np.int64).clip(1)
    gap = rng.normal(250, 10, rows).astype(np.int64).clip(1)
    done = 10**12 + np.cumsum(lat + gap)
    return done - lat, done, rng.integers(0, 256, rows)


def test_single_stream_costs_under_three_bytes_a_query():
    issue, done, sample = realistic(10_000)
    h, body = stretch(issue, done, sample)
    ch, cb = qlcodec.encode_stretch(h, body)
    assert len(cb) / 10_000 < 3.0
    assert len(zlib.compress(body, 9)) / 10_000 > 5.0  # what plain compression manages
    assert qlcodec.decode_stretch(ch, cb) == body


def test_offline_shares_one_issue_time():
    done = 10**9 + np.cumsum(np.full(5000, 1000))
    h, body = stretch(np.full(5000, 10**9), done, np.arange(5000) % 1024)
    ch, cb = qlcodec.encode_stretch(h, body)
    assert ch["issue"] == "const" and qlcodec.decode_stretch(ch, cb) == body


def test_sorted_latencies_are_exact_and_tiny():
    _, done, _ = realistic(100_000)
    lat = np.random.default_rng(1).permutation(done - np.roll(done, 1))[1:]
    h, b = qlcodec.encode_sorted_latencies(lat)
    assert (qlcodec.decode_sorted_latencies(h, b) == np.sort(lat)).all()
    assert len(b) < 0.3 * len(lat)


@pytest.mark.parametrize("mangle", ["truncate", "flip", "grow"])
def test_corrupt_stretches_raise_codec_errors(mangle):
    issue, done, sample = realistic(2000)
    ch, cb = qlcodec.encode_stretch(*stretch(issue, done, sample))
    if mangle == "truncate":
        cb = cb[: len(cb) // 2]
    elif mangle == "flip":
        cb = cb[:10] + bytes([cb[10] ^ 0xFF]) + cb[11:]
    else:
        ch = dict(ch, rows=ch["rows"] - 1)
    with pytest.raises(qlcodec.CodecError):
        qlcodec.decode_stretch(ch, cb)
