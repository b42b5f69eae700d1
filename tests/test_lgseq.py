"""device_agent.lgseq against the real mlperf_loadgen: loaded sets, issue orders, Server
schedules, generated query counts and Offline sample counts must be LoadGen's, exactly.

LoadGen runs in child processes (each run mostly sleeps ~30 ms inside LoadGen, so several
children overlap); a SUT answers every query at once and records the sample indices in
issue order, a QSL records what LoadGen loads, and mlperf_log_detail.txt gives the rest.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgeperf_agent import lgseq as L

import mlperf_loadgen as lg  # noqa: E402,F401  (the dev extra installs it: a missing one fails)

ROOT = Path(__file__).resolve().parent.parent
M32 = 0xFFFFFFFF
OFFICIAL = (2085463073848966840, 2747215439041700203, 16159082839903944936)
SEEDS = [(1, 2, 3), OFFICIAL, (2**40 + 5, 2**33 + 7, 2**63 + 11)]  # (qsl, sample, schedule)

# -- LoadGen driver (run by sys.executable in a child; prints nothing of its own)
DRIVER = r'''
import json, os, re, sys, tempfile
import mlperf_loadgen as lg

def run(cfg):
    cfg = dict(cfg)
    loaded, issued = [], []
    def issue(qs):
        issued.append([q.index for q in qs])
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in qs])
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, cfg.pop("scenario"))
    s.mode = getattr(lg.TestMode, cfg.pop("mode", "PerformanceOnly"))
    total, perf = cfg.pop("total"), cfg.pop("perf")
    for k, v in cfg.items():
        setattr(s, k, v)
    out = tempfile.mkdtemp()
    ls = lg.LogSettings()
    ls.log_output.outdir = out
    ls.enable_trace = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(total, perf, lambda idx: loaded.append(list(idx)), lambda idx: None)
    lg.StartTestWithLogSettings(sut, qsl, s, ls)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    log = {}
    with open(os.path.join(out, "mlperf_log_detail.txt")) as f:
        for line in f:
            m = re.match(r':::MLLOG \{"key": "(.*?)", "value": (.*?), "time_ms"', line)
            if m and m.group(1).startswith(("generated_", "effective_", "result_")):
                try:
                    value = json.loads(m.group(2))
                except ValueError:  # -nan (0 / 0) is not JSON
                    value = None
                log.setdefault(m.group(1), []).append([value, m.group(2)])
    return {"loaded": loaded, "issued": issued, "log": log}

cfgs = json.load(open(sys.argv[1]))
json.dump([run(c) for c in cfgs], open(sys.argv[2], "w"))
'''


def loadgen(configs: list, procs: int = 6) -> list:
    """Run each config (TestSettings fields plus scenario, mode, total, perf) through the
    real LoadGen; results in order: loaded sets, issued indices per query, logged values
    as [parsed, raw text] lists."""
    with tempfile.TemporaryDirectory() as d:
        driver = Path(d, "driver.py")
        driver.write_text(DRIVER)
        chunks = [configs[i::procs] for i in range(procs) if configs[i::procs]]
        runs = []
        for k, chunk in enumerate(chunks):
            cin, cout = Path(d, "in%d.json" % k), Path(d, "out%d.json" % k)
            cin.write_text(json.dumps(chunk))
            p = subprocess.Popen([sys.executable, str(driver), str(cin), str(cout)], cwd=d,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            runs.append((p, cout))
        parts = []
        for p, cout in runs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode(errors="replace")[-2000:]
            parts.append(json.loads(cout.read_text()))
    results = [None] * len(configs)
    for k, part in enumerate(parts):
        for j, res in enumerate(part):
            results[k + j * len(chunks)] = res
    return results


def logged(res: dict, key: str, raw: bool = False):
    vals = [v[1] if raw else v[0] for v in res["log"][key]]
    return vals[0] if len(vals) == 1 else vals


def samples(res: dict) -> list:
    return [i for q in res["issued"] for i in q]


# -- independent transliterations of libstdc++ (scalar, obviously right, slow)
def ref_uniform(it, count: int) -> int:
    """uniform_int_distribution::_S_nd<uint64> on a 32-bit URNG."""
    p = next(it) * count
    if (p & M32) < count:
        thr = (2**32 - count) % count
        while (p & M32) < thr:
            p = next(it) * count
    return p >> 32


def ref_shuffle(it, a: list) -> None:
    """std::shuffle, stl_algo.h."""
    n = len(a)
    if n == 0:
        return
    if (2**32 - 1) // n >= n:
        i = 1
        if n % 2 == 0:
            j = ref_uniform(it, 2)
            a[1], a[j] = a[j], a[1]
            i = 2
        while i != n:
            r = i + 1
            x = ref_uniform(it, r * (r + 1))
            a[i], a[x // (r + 1)] = a[x // (r + 1)], a[i]
            a[i + 1], a[x % (r + 1)] = a[x % (r + 1)], a[i + 1]
            i += 2
    else:
        for i in range(1, n):
            j = ref_uniform(it, i + 1)
            a[i], a[j] = a[j], a[i]


def stream(seed: int, n: int = 400_000):
    return iter(L.MT19937(seed).raw(n).tolist())


# -- the generator and the distributions, without LoadGen
def test_mt19937_is_the_standard_engine_seeded_mod_2_32():
    # [rand.predef]: the 10000th output of a default-constructed mt19937 (seed 5489)
    assert int(L.MT19937(5489).raw(10000)[-1]) == 4123659995
    assert np.array_equal(L.MT19937(5489 + 2**32 * 77).raw(50), L.MT19937(5489).raw(50))
    for seed in OFFICIAL + (0, 1, M32):
        ours = L.MT19937(seed)._bg.state["state"]["key"]
        assert np.array_equal(ours, np.random.RandomState(seed & M32).get_state()[1])
    rng = L.MT19937(7)
    whole = L.MT19937(7).raw(1000)
    got = np.concatenate([rng.raw(3), rng.raw(0), rng.raw(500), rng.raw(497)])
    assert np.array_equal(got, whole) and whole.max() <= M32


@pytest.mark.parametrize("count", [1, 2, 3, 7, 256, 1000, 2**16 + 1, 2**31 + 1, 3 * 2**30 + 5])
def test_uniform_ints_is_lemire_with_exact_draw_consumption(count):
    # 2**31 + 1 rejects about half the outputs: the redraws must line the stream up
    it = stream(11)
    ref = [ref_uniform(it, count) for _ in range(3000)]
    rng = L.MT19937(11)
    ours = np.concatenate([L.uniform_ints(rng, 1000, count), L.uniform_ints(rng, 2000, count)])
    assert ours.dtype == np.uint32 and ours.tolist() == ref
    assert int(rng.raw(1)[0]) == next(it)  # the same outputs consumed


@pytest.mark.parametrize("n", list(range(0, 24)) + [255, 256, 1001, 46341, 50000, 65535, 65536,
                                                     70001])
def test_shuffle_is_libstdcxx_shuffle(n):
    # 46341..65535: paired draws over ranges near 2**31, heavy rejection; >= 65536: unpaired
    it = stream(n + 3, 3 * n + 10)
    ref = list(range(n))
    ref_shuffle(it, ref)
    rng = L.MT19937(n + 3)
    ours = list(range(n))
    L.shuffle(rng, ours)
    assert ours == ref
    assert n == 0 or int(rng.raw(1)[0]) == next(it)


def test_canonical_keeps_below_one_and_gaps_truncate():
    class Top:  # the one pair of outputs whose canonical sum rounds up to 2**64
        def raw(self, n):
            return np.full(n, M32, dtype=np.uint64)

    gap = L.exponential_gaps_ns(Top(), 1, 1000.0)
    assert gap.tolist() == [int(-math.log(2.0**-53) / 1000.0 * 1e9)]  # 36736800 ns
    rng = L.MT19937(5)
    u = L.MT19937(5).raw(4000)
    gaps = L.exponential_gaps_ns(rng, 2000, 250.0)
    for k in range(2000):
        c = (float(u[2 * k]) + float(u[2 * k + 1]) * 2.0**32) / 2.0**64
        assert gaps[k] == int(-math.log(1.0 - c) / 250.0 * 1e9)


def ref_generate(gaps, gen_ns: int, min_queries: int):
    """GenerateQueries' loop, literally: (query count, final timestamp)."""
    timestamp = prev = count = 0
    while prev < gen_ns or count < min_queries:
        count += 1
        prev = timestamp
        timestamp += gaps[count - 1]
    return count, timestamp


def test_query_count_is_the_generate_loop_ties_included():
    rnd = random.Random(3)
    for _ in range(3000):
        gaps = [rnd.choice([0, 1, 2, 5]) for _ in range(60)]
        gen, mq = rnd.choice([0, 1, 5, 10, 20]), rnd.randint(0, 12)
        t = np.concatenate([[0], np.cumsum(gaps)])
        n = L._query_count(t, gen, mq)
        assert (n, int(t[n])) == ref_generate(gaps, gen, mq)
    for ms, mq, lat in [(5, 1, 1e6), (4, 3, 2e6), (3, 40, 333333.3), (1, 0, 7e5), (0, 9, 1e6)]:
        period = int((1.0 / (1e9 / lat)) * 1e9)
        want = ref_generate([period] * 100, 2 * ms * 10**6, mq)
        assert L.generated_queries("SingleStream", ms, mq, expected_latency_ns=lat) == \
            (want[0], 1, want[1])


def test_offline_positions_and_sample_order_shapes():
    assert L.offline_positions(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    so = L.SampleOrder("MultiStream", 10, 4, 5, 1)
    first = L.SampleOrder("MultiStream", 10, 4, 5, 1).next(6).reshape(6, 4)
    got = np.concatenate([so.next(2), so.next(4)]).reshape(6, 4)
    assert np.array_equal(got, first) and np.all(np.diff(got, axis=1) == 1)
    assert first[:, 0].max() < 10 and first.max() <= 12
    acc = L.SampleOrder("SingleStream", 9, 1, 0, 4, mode="AccuracyOnly")
    assert sorted(acc.next(9).tolist()) == list(range(9))
    with pytest.raises(IndexError):
        acc.next(1)
    with pytest.raises(ValueError):
        L.SampleOrder("Single Stream", 9, 1, 0, 4)


# -- performance runs against LoadGen
SS_SIZES = [(1000, 7), (1000, 256), (2000, 1000), (70000, 50000), (70000, 66000)]
SS_QUERIES = 300


@pytest.fixture(scope="module")
def single_stream():
    cfgs = [dict(scenario="SingleStream", total=t, perf=p, min_duration_ms=0,
                 min_query_count=SS_QUERIES, qsl_rng_seed=q, sample_index_rng_seed=s,
                 schedule_rng_seed=c) for q, s, c in SEEDS for t, p in SS_SIZES]
    cfgs += [dict(scenario="SingleStream", total=100, perf=64, min_duration_ms=d,
                  min_query_count=m, single_stream_expected_latency_ns=lat, qsl_rng_seed=1,
                  sample_index_rng_seed=2) for d, m, lat in
             [(5, 1, 1e6), (3, 40, 333333.3), (2, 10, 77777.77), (1, 5000, 1234567.0)]]
    return cfgs, loadgen(cfgs)


@pytest.mark.parametrize("case", range(len(SEEDS) * len(SS_SIZES)))
def test_single_stream_loaded_set_and_order(single_stream, case):
    cfgs, results = single_stream
    cfg, res = cfgs[case], results[case]
    loaded = L.loaded_sample_set(cfg["total"], cfg["perf"], cfg["qsl_rng_seed"], "SingleStream")
    assert res["loaded"] == [loaded]
    pos = L.SampleOrder("SingleStream", cfg["perf"], 1, SS_QUERIES,
                        cfg["sample_index_rng_seed"]).next(SS_QUERIES)
    assert samples(res) == [loaded[p] for p in pos.tolist()]
    assert [len(q) for q in res["issued"]] == [1] * SS_QUERIES
    assert (logged(res, "generated_query_count"), logged(res, "generated_samples_per_query"),
            logged(res, "generated_query_duration")) == \
        L.generated_queries("SingleStream", 0, SS_QUERIES, expected_latency_ns=1e6)


def test_single_stream_generated_queries_with_a_duration(single_stream):
    cfgs, results = single_stream
    first = len(SEEDS) * len(SS_SIZES)
    for cfg, res in zip(cfgs[first:], results[first:], strict=True):
        lat = cfg["single_stream_expected_latency_ns"]
        assert logged(res, "effective_target_qps") == pytest.approx(1e9 / lat, rel=1e-5)
        got = (logged(res, "generated_query_count"), logged(res, "generated_samples_per_query"),
               logged(res, "generated_query_duration"))
        assert got == L.generated_queries("SingleStream", cfg["min_duration_ms"],
                                          cfg["min_query_count"], expected_latency_ns=lat), cfg
        loaded = L.loaded_sample_set(100, 64, 1, "SingleStream")
        pos = L.SampleOrder("SingleStream", 64, 1, cfg["min_query_count"], 2).next(got[0])
        issued = samples(res)
        assert 0 < len(issued) <= got[0]
        assert issued == [loaded[p] for p in pos.tolist()[:len(issued)]]


MS_CASES = [(8, 2000, 256), (3, 1000, 7), (5, 2000, 1000), (8, 70000, 66000)]
MS_QUERIES = 200


@pytest.fixture(scope="module")
def multi_stream():
    cfgs = [dict(scenario="MultiStream", total=t, perf=p, min_duration_ms=0,
                 min_query_count=MS_QUERIES, multi_stream_samples_per_query=spq,
                 multi_stream_expected_latency_ns=lat, qsl_rng_seed=q, sample_index_rng_seed=s)
            for (q, s, _), lat in zip(SEEDS, (8e6, 2.5e6, 1234567.0), strict=True)
            for spq, t, p in MS_CASES]
    cfgs.append(dict(scenario="MultiStream", total=100, perf=50, min_duration_ms=3,
                     min_query_count=10, multi_stream_samples_per_query=6,
                     multi_stream_expected_latency_ns=444444.4, qsl_rng_seed=9,
                     sample_index_rng_seed=10))
    return cfgs, loadgen(cfgs)


@pytest.mark.parametrize("case", range(len(SEEDS) * len(MS_CASES) + 1))
def test_multi_stream_padded_set_contiguous_queries_and_counts(multi_stream, case):
    cfg, res = multi_stream[0][case], multi_stream[1][case]
    spq, perf, n = cfg["multi_stream_samples_per_query"], cfg["perf"], cfg["min_query_count"]
    loaded = L.loaded_sample_set(cfg["total"], perf, cfg["qsl_rng_seed"], "MultiStream", spq)
    assert len(loaded) == perf + spq - 1 and loaded[perf:] == loaded[:spq - 1]
    assert res["loaded"] == [loaded]
    gen = L.generated_queries("MultiStream", cfg["min_duration_ms"], n,
                              expected_latency_ns=cfg["multi_stream_expected_latency_ns"],
                              samples_per_query=spq)
    assert (logged(res, "generated_query_count"), logged(res, "generated_samples_per_query"),
            logged(res, "generated_query_duration")) == gen
    pos = L.SampleOrder("MultiStream", perf, spq, n, cfg["sample_index_rng_seed"]).next(gen[0])
    want = [[loaded[p] for p in row] for row in pos.reshape(-1, spq).tolist()]
    got = res["issued"]
    assert 0 < len(got) <= gen[0] and got == want[:len(got)]
    if not cfg["min_duration_ms"]:
        assert len(got) == n


SERVER_CASES = [(20000.0, 50, 100), (100000.0, 0, 3000), (5000.0, 100, 10)]  # qps, ms, queries


@pytest.fixture(scope="module")
def server():
    cfgs = [dict(scenario="Server", total=1000, perf=256, min_duration_ms=d, min_query_count=m,
                 server_target_qps=qps, server_target_latency_ns=10**9, qsl_rng_seed=q,
                 sample_index_rng_seed=s, schedule_rng_seed=c)
            for q, s, c in SEEDS for qps, d, m in SERVER_CASES]
    # the first gaps one by one: the final timestamp after k queries is t_k
    cfgs += [dict(scenario="Server", total=10, perf=10, min_duration_ms=0, min_query_count=k,
                  server_target_qps=qps, schedule_rng_seed=c)
             for (_, _, c), qps in zip(SEEDS, (1000.0, 33.3, 1e6), strict=True)
             for k in (1, 2, 3, 4, 5)]
    return cfgs, loadgen(cfgs)


@pytest.mark.parametrize("case", range(len(SEEDS) * len(SERVER_CASES)))
def test_server_schedule_order_and_scheduled_rate(server, case):
    cfg, res = server[0][case], server[1][case]
    qps, ms, mq = cfg["server_target_qps"], cfg["min_duration_ms"], cfg["min_query_count"]
    offsets = L.server_schedule(qps, cfg["schedule_rng_seed"], ms, mq)
    assert offsets.dtype == np.int64 and offsets[0] == 0 and np.all(np.diff(offsets) >= 0)
    n = len(offsets)  # the first query scheduled at or past the duration is the last one
    assert n >= mq and (n == mq or offsets[-1] >= ms * 10**6 > offsets[-2])
    gen = L.generated_queries("Server", ms, mq, target_qps=qps,
                              schedule_rng_seed=cfg["schedule_rng_seed"])
    assert gen[0] == len(offsets)
    assert (logged(res, "generated_query_count"), logged(res, "generated_samples_per_query"),
            logged(res, "generated_query_duration")) == gen
    loaded = L.loaded_sample_set(1000, 256, cfg["qsl_rng_seed"], "Server")
    assert res["loaded"] == [loaded]
    pos = L.SampleOrder("Server", 256, 1, mq, cfg["sample_index_rng_seed"]).next(len(offsets))
    assert samples(res) == [loaded[p] for p in pos.tolist()]
    # results.cc: (samples - 1) / final scheduled time, printed with 6 significant digits
    rate = L.scheduled_samples_per_sec(offsets)
    assert logged(res, "result_scheduled_samples_per_sec", raw=True) == "%g" % rate


def test_server_first_gaps_one_by_one(server):
    cfgs, results = server
    first = len(SEEDS) * len(SERVER_CASES)
    for cfg, res in zip(cfgs[first:], results[first:], strict=True):
        k, qps, seed = cfg["min_query_count"], cfg["server_target_qps"], cfg["schedule_rng_seed"]
        assert logged(res, "generated_query_count") == k
        end = L.generated_queries("Server", 0, k, target_qps=qps, schedule_rng_seed=seed)[2]
        assert logged(res, "generated_query_duration") == end
        gaps = L.exponential_gaps_ns(L.MT19937(seed), k, qps)
        assert end == int(gaps.sum())
        assert L.server_schedule(qps, seed, 0, k).tolist() == [0] + np.cumsum(gaps)[:-1].tolist()


OFFLINE_CASES = [(1000.0, 100, 1), (123.4, 10, 500), (7.5, 1000, 1), (3333.3, 3, 9)]


@pytest.fixture(scope="module")
def offline():
    cfgs = [dict(scenario="Offline", total=1000, perf=256, min_duration_ms=d, min_query_count=m,
                 offline_expected_qps=qps, qsl_rng_seed=q, sample_index_rng_seed=s)
            for q, s, _ in SEEDS for qps, d, m in OFFLINE_CASES]
    return cfgs, loadgen(cfgs)


@pytest.mark.parametrize("case", range(len(SEEDS) * len(OFFLINE_CASES)))
def test_offline_query_and_counts(offline, case):
    cfg, res = offline[0][case], offline[1][case]
    qps, ms, mq = cfg["offline_expected_qps"], cfg["min_duration_ms"], cfg["min_query_count"]
    n = L.offline_sample_count(ms, qps, mq)
    assert logged(res, "effective_samples_per_query") == n
    assert (logged(res, "generated_query_count"), logged(res, "generated_samples_per_query"),
            logged(res, "generated_query_duration")) == \
        L.generated_queries("Offline", ms, mq, target_qps=qps)
    loaded = L.loaded_sample_set(1000, 256, cfg["qsl_rng_seed"], "Offline")
    assert res["loaded"] == [loaded]
    assert len(res["issued"]) == 1
    assert res["issued"][0] == [loaded[p] for p in L.offline_positions(n, 256).tolist()]


# -- accuracy runs: every loadable set of the whole QSL, each issued completely
ACC_CASES = [("SingleStream", 1, 50, 16), ("Offline", 1, 50, 16), ("MultiStream", 8, 50, 16),
             ("MultiStream", 3, 40, 7), ("Server", 1, 30, 7), ("SingleStream", 1, 300, 300)]


@pytest.fixture(scope="module")
def accuracy():
    cfgs = [dict(scenario=sc, mode="AccuracyOnly", total=t, perf=p, min_duration_ms=0,
                 min_query_count=1, multi_stream_samples_per_query=spq, server_target_qps=1e5,
                 offline_expected_qps=1e4, qsl_rng_seed=q, sample_index_rng_seed=s,
                 schedule_rng_seed=c) for q, s, c in SEEDS[:2] for sc, spq, t, p in ACC_CASES]
    return cfgs, loadgen(cfgs)


@pytest.mark.parametrize("case", range(2 * len(ACC_CASES)))
def test_accuracy_sets_orders_and_counts(accuracy, case):
    cfg, res = accuracy[0][case], accuracy[1][case]
    sc, spq = cfg["scenario"], cfg["multi_stream_samples_per_query"]
    sets = L.accuracy_sample_sets(cfg["total"], cfg["perf"], cfg["qsl_rng_seed"], sc, spq)
    assert res["loaded"] == [s for s, _ in sets]
    want, gen = [], []
    for s, size in sets:
        order = L.SampleOrder(sc, size, spq, 1, cfg["sample_index_rng_seed"], "AccuracyOnly")
        if sc == "Offline":
            want.append([s[p] for p in order.next(1).tolist()])
        else:
            k = len(s) // (spq if sc == "MultiStream" else 1)
            want += [[s[p] for p in row] for row in order.next(k).reshape(k, -1).tolist()]
        lat = {"SingleStream": 1e6, "MultiStream": 8e6}.get(sc, 0.0)
        gen.append(L.generated_queries(sc, 0, 1, target_qps=1e5 if sc == "Server" else 1e4,
                                       expected_latency_ns=lat, samples_per_query=spq,
                                       schedule_rng_seed=cfg["schedule_rng_seed"],
                                       mode="AccuracyOnly", set_size=size))
    assert res["issued"] == want
    if sc != "MultiStream":  # every sample of the QSL exactly once
        assert sorted(i for q in want for i in q) == list(range(cfg["total"]))
    logs = [logged(res, k) for k in ("generated_query_count", "generated_samples_per_query",
                                     "generated_query_duration")]
    logs = [v if isinstance(v, list) else [v] for v in logs]
    assert list(zip(*logs, strict=True)) == gen


# -- the Offline sample count: the one place the project computes it
# LoadGen's order of the double products truncates these one below the exact 1.1 * s * qps
OFFLINE_EDGES = [(141, 10000.0), (282, 5000.0), (475, 3600.0), (564, 2500.0), (565, 2000.0),
                 (575, 400.0), (575, 1200.0), (575, 2800.0), (950, 1800.0), (1128, 1250.0),
                 (1130, 1000.0), (1150, 200.0), (1150, 1400.0), (1150, 2600.0), (1900, 900.0),
                 (1900, 1700.0), (2256, 625.0), (2260, 500.0), (2300, 100.0), (2300, 300.0),
                 (2300, 700.0), (2300, 1300.0)]


def _offline_settings() -> list:
    rnd = random.Random(20240611)
    out = [(ms, qps, 1) for ms, qps in OFFLINE_EDGES]
    out += [(ms, qps, 11 * ms * int(qps) // 10000) for ms, qps in OFFLINE_EDGES[:6]]  # mq wins
    while len(out) < 300:
        ms = rnd.choice([0, rnd.randint(1, 2500), rnd.randrange(100, 2501, 25)])
        top = min(5000.0, 3.0e6 / max(ms, 1))
        qps = rnd.choice([rnd.uniform(0.01, top), float(rnd.randint(1, int(top))),
                          round(rnd.uniform(0.1, top), 1)])
        out.append((ms, qps, rnd.choice([1, rnd.randint(1, 3000)])))
    return out


def test_offline_sample_count_is_loadgens():
    settings = _offline_settings()
    cfgs = [dict(scenario="Offline", total=8, perf=8, min_duration_ms=ms, min_query_count=mq,
                 offline_expected_qps=qps, max_query_count=1) for ms, qps, mq in settings]
    results = loadgen(cfgs, procs=12)
    for ms, qps in OFFLINE_EDGES:  # each edge really tells the orders apart
        assert L.offline_sample_count(ms, qps, 1) == 11 * ms * int(qps) // 10000 - 1
        assert int(ms * qps * 1.1 / 1000) != L.offline_sample_count(ms, qps, 1)
    for (ms, qps, mq), res in zip(settings, results, strict=True):
        want = logged(res, "effective_samples_per_query")
        assert L.offline_sample_count(ms, qps, mq) == want, (ms, qps, mq)
        assert logged(res, "generated_samples_per_query") == want
        assert len(samples(res)) == want


# -- numpy < 2 on the device
NUMPY1_PROBE = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from device_agent import lgseq as L
off = L.server_schedule(20000.0, 16159082839903944936, 50, 100)
out = {
    "numpy": np.__version__,
    "raw": L.MT19937(2**63 + 11).raw(5).tolist(),
    "uniform": L.uniform_ints(L.MT19937(3), 50, 2**31 + 1).tolist(),
    "loaded": L.loaded_sample_set(70000, 50000, 2085463073848966840, "SingleStream")[-20:],
    "loaded_ms": L.loaded_sample_set(1000, 7, 1, "MultiStream", 8),
    "order": L.SampleOrder("SingleStream", 1000, 1, 270336, 2747215439041700203).next(40).tolist(),
    "order_ms": L.SampleOrder("MultiStream", 256, 8, 662, 5).next(5).tolist(),
    "acc": L.SampleOrder("SingleStream", 100, 1, 1, 7, "AccuracyOnly").next(100).tolist(),
    "server": [len(off), int(off[-1]), off[:30].tolist()],
    "gen": [list(L.generated_queries(s, 25, 9, target_qps=500.0, expected_latency_ns=3e5,
                                     schedule_rng_seed=4)) for s in L.SCENARIOS],
    "offline": L.offline_sample_count(600000, 123.4, 24576),
}
print(json.dumps(out))
'''


def _probe(python: str) -> dict:
    res = subprocess.run([python, "-c", NUMPY1_PROBE, str(ROOT)], check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout)


def test_same_values_under_numpy_1(tflite_python):
    old, here = _probe(tflite_python), _probe(sys.executable)
    assert old.pop("numpy").startswith("1.") and here.pop("numpy").startswith("2.")
    assert old == here


def test_speed_of_a_million():
    import time

    t = time.perf_counter()
    off = L.server_schedule(10000.0, OFFICIAL[2], 0, 1_000_000)
    server_s = time.perf_counter() - t
    t = time.perf_counter()
    pos = L.SampleOrder("SingleStream", 1024, 1, 270336, OFFICIAL[1]).next(1_000_000)
    ss_s = time.perf_counter() - t
    assert len(off) == len(pos) == 1_000_000
    assert server_s < 2.0 and ss_s < 2.0, (server_s, ss_s)
