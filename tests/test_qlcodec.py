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


# ----------------------------------------------------------------- byte order (issue 15)
class BigEndianNumpy:
    """numpy as a big-endian device runs it: a dtype given without a byte order (np.int64,
    np.uint32, "i8") reads and writes bytes most significant first there. Only frombuffer
    is changed: that is where the bytes of a body are read."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def frombuffer(buf, dtype=float, count=-1, offset=0):
        explicit = isinstance(dtype, str) and dtype[:1] in "<>|"
        dt = np.dtype(dtype)
        if not explicit and dt.itemsize > 1:
            dt = dt.newbyteorder(">")
        return np.frombuffer(buf, dt, count, offset)


KNOWN = ([1, 2**40, -3], [5, 2**40 + 7, 0], [0, 1, 2**32 - 1])  # issue, done, sample


def test_a_big_endian_device_reads_a_stretch_body_as_little_endian(monkeypatch):
    monkeypatch.setattr(qlcodec, "np", BigEndianNumpy())
    h, body = stretch(*KNOWN)  # the wire layout: explicit '<i8', '<i8', '<u4'
    ch, cb = qlcodec.encode_stretch(h, body)
    assert ch["t0"] == 1
    assert qlcodec.decode_stretch(ch, cb) == body


def test_decoded_stretch_bytes_are_the_little_endian_reference():
    issue, done, sample = KNOWN
    ref = (b"".join(v.to_bytes(8, "little", signed=True) for v in issue + done)
           + b"".join(v.to_bytes(4, "little") for v in sample))
    h, body = stretch(issue, done, sample)
    assert body == ref
    assert qlcodec.decode_stretch(*qlcodec.encode_stretch(h, body)) == ref


def _querylog(values, swap: bool):
    from edgeperf_agent import querylog as ql
    log = ql.QueryLog(samples_per_row=1)
    issue, done, sample, _ = log.chunk_for(0)
    for i, (a, b, c) in enumerate(zip(*values, strict=True)):
        issue[i], done[i], sample[i] = a, b, c
    log.rows = len(values[0])
    if swap:  # the arrays' memory as a big-endian device holds these values
        for arrays in (log.issue, log.done, log.sample):
            for a in arrays:
                a.byteswap()
    return log


def test_querylog_views_are_little_endian_on_a_big_endian_device(monkeypatch):
    from edgeperf_agent import querylog as ql
    monkeypatch.setattr(ql, "BYTEORDER", "big", raising=False)
    log = _querylog(KNOWN, swap=True)
    ref = stretch(*KNOWN)[1]
    assert b"".join(log.views(0, 3)) == ref
    assert log.checksum() == zlib.crc32(ref)
    issue, done, sample = log.slice(0, 3)
    assert (issue.tolist(), done.tolist(), sample.tolist()) == tuple(KNOWN)


def test_querylog_views_on_this_device_are_the_little_endian_reference():
    log = _querylog(KNOWN, swap=False)
    assert b"".join(log.views(0, 3)) == stretch(*KNOWN)[1]
    assert b"".join(log.views(0, 3, issue_ns=9))[:24] == np.full(3, 9, "<i8").tobytes()


def test_byteswapped_latencies_encode_to_the_same_little_endian_bytes():
    lat = np.array([7, 2**40, 3, 3, 2**33 + 1], np.int64)
    h, b = qlcodec.encode_sorted_latencies(lat)
    hs, bs = qlcodec.encode_sorted_latencies(lat.astype(">i8"))
    assert (h, b) == (hs, bs)
    assert qlcodec.decode_sorted_latencies(hs, bs).tolist() == sorted(lat.tolist())
    wide = np.array([1, 2**40, 2**63], np.uint64)
    assert qlcodec._planes(wide.astype(">u8"), 8) == qlcodec._planes(wide, 8) == (
        wide.astype("<u8").view(np.uint8).reshape(-1, 8).T.tobytes())


@pytest.mark.parametrize("field, value", [
    ("rows", "3"), ("rows", None), ("rows", 1.0), ("samples_per_row", True), ("t0", 10**30),
    ("t0", "0"), ("t0", None), ("rows", -1), ("samples_per_row", 0)])
def test_hostile_stretch_header_fields_raise_codec_errors(field, value):
    ch, cb = qlcodec.encode_stretch(*stretch(*KNOWN))
    with pytest.raises(qlcodec.CodecError):
        qlcodec.decode_stretch(dict(ch, **{field: value}), cb)


@pytest.mark.parametrize("field, value", [
    ("count", "5"), ("count", 2.0), ("count", None), ("first", 2**70), ("first", None),
    ("first", "1")])
def test_hostile_sorted_latency_header_fields_raise_codec_errors(field, value):
    h, b = qlcodec.encode_sorted_latencies(np.array([3, 1, 2], np.int64))
    with pytest.raises(qlcodec.CodecError):
        qlcodec.decode_sorted_latencies(dict(h, **{field: value}), b)
