"""The device side of the compliance audits: TEST01's accuracy-log sampling and TEST04's
performance_issue_same, against the official LoadGen (mlperf_loadgen 6.0.17) run in-process.

TEST01: a performance run logs the outputs of the samples LoadGen's accuracy-log sampling
picks. The seq ids edgeperf picks must be LoadGen's, exactly, and so must the QSL index of
each; the bytes logged must be the outputs the timed query itself produced (no extra
invoke), and no reservation or copy may land inside a scored interval. TEST04: every query
issues one loaded-set position (MultiStream: a run of them from it).

Run lengths never depend on timing: min duration 0 and fixed query counts, so LoadGen and
edgeperf issue the same queries however busy the machine is.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import time

import numpy as np
import pytest

import mlperf_loadgen as lg  # the dev extra installs it: a missing one fails
from edgeperf.models.builtin import builtin_model
from edgeperf_agent import querylog, scenarios
from edgeperf_agent.acclog import AccLogSampler, OutputLog
from edgeperf_agent.backends import SyntheticBackend, TfliteBackend
from edgeperf_agent.lgseq import loaded_sample_set
from edgeperf_agent.scenarios import QueryLog, RunError, RunSettings, ScenarioRunner

N_SAMPLES = 64  # the loaded set (LoadGen's performance sample count)
QSL_TOTAL = 128  # the QSL's size: the loaded set is a shuffled subset of it
SEEDS = dict(qsl_rng_seed=11, sample_index_rng_seed=5, schedule_rng_seed=6)
TEST01 = dict(accuracy_log_rng_seed=720381539243781796, accuracy_log_sampling_target=4096)
RESPONSE = array.array("f", [1.5, 2.5])  # LoadGen's null SUT answers every sample with it
_runs = itertools.count()


def settings(scenario: str, **kw) -> RunSettings:
    d = dict(scenario=scenario, min_duration_ns=0, min_query_count=50, warmup_queries=0,
             sample_index_rng_seed=SEEDS["sample_index_rng_seed"],
             schedule_rng_seed=SEEDS["schedule_rng_seed"], expected_latency_ns=1_000_000)
    if scenario == "MultiStream":
        d["samples_per_query"] = 8
    if scenario == "Server":
        d["target_qps"] = 100_000.0
    d.update(kw)
    if scenario != "Offline" and "max_query_count" not in kw:
        d["max_query_count"] = d["min_query_count"]  # fixed length, whatever the timing
    return RunSettings.from_dict(d)


def loaded_set(s: RunSettings) -> list[int]:
    """QSL index of each loaded-set position (MultiStream: with its padding)."""
    return loaded_sample_set(QSL_TOTAL, N_SAMPLES, SEEDS["qsl_rng_seed"], s.scenario,
                             s.samples_per_query)


def run_loadgen(s: RunSettings, outdir) -> list[dict]:
    """The official LoadGen, in this process, with the TestSettings ``s`` stands for (null
    SUT answering every sample with RESPONSE); its accuracy log's entries by seq id."""
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, s.scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = s.min_duration_ns // 1_000_000
    ts.min_query_count = s.min_query_count
    ts.max_query_count = s.max_query_count
    ts.qsl_rng_seed = SEEDS["qsl_rng_seed"]
    ts.sample_index_rng_seed = s.sample_index_rng_seed
    ts.schedule_rng_seed = s.schedule_rng_seed
    ts.accuracy_log_rng_seed = s.accuracy_log_rng_seed
    ts.accuracy_log_probability = s.accuracy_log_probability
    ts.accuracy_log_sampling_target = s.accuracy_log_sampling_target
    ts.performance_issue_same = s.performance_issue_same
    ts.performance_issue_same_index = s.performance_issue_same_index
    if s.scenario == "SingleStream":
        ts.single_stream_expected_latency_ns = s.expected_latency_ns
    elif s.scenario == "MultiStream":
        ts.multi_stream_expected_latency_ns = s.expected_latency_ns
        ts.multi_stream_samples_per_query = s.samples_per_query
    elif s.scenario == "Server":
        ts.server_target_qps = s.target_qps
    else:
        ts.offline_expected_qps = s.target_qps or 1.0
        if s.offline_sample_count:  # LoadGen's query size is its min sample count
            ts.min_query_count = s.offline_sample_count
        ts.max_query_count = 0
    addr, n = RESPONSE.buffer_info()
    size = n * RESPONSE.itemsize

    def issue(queries):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, addr, size) for q in queries])

    out = outdir / ("loadgen-%d" % next(_runs))
    out.mkdir()
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(QSL_TOTAL, N_SAMPLES, lambda idx: None, lambda idx: None)
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert {e["data"] for e in entries} <= {RESPONSE.tobytes().hex().upper()}
    return sorted(entries, key=lambda e: e["seq_id"])


def run_null(s: RunSettings) -> tuple[ScenarioRunner, QueryLog]:
    b = SyntheticBackend("null")
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, backend=b)
    return r, r.run()


def samples_of(log: QueryLog) -> np.ndarray:
    """The QueryLog's sample positions in seq-id order (one per sample)."""
    return np.asarray(log.slice(0, log.rows)[2]).astype(np.int64)


def tflite(name: str, tmp_path, n: int = N_SAMPLES) -> TfliteBackend:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(builtin_model(name))
    b = TfliteBackend(str(path), num_threads=1)
    rng = np.random.default_rng(1)
    b.bind([rng.uniform(-1, 1, (n, *b.inputs[0]["shape"][1:])).astype(np.float32)])
    return b


def overlapping(issue: np.ndarray, done: np.ndarray, spans: list[tuple[int, int]]) -> list:
    """(query, span) pairs where a span lies (partly) inside a query's scored interval."""
    out = []
    for a, b in spans:
        hit = np.nonzero((issue < b) & (done > a))[0]
        out += [(int(j), (a, b)) for j in hit[:3]]
    return out


# ------------------------------------------------------- 1. the seq ids are LoadGen's

SAMPLING = {
    # TEST01's resnet50 audit.config: 4096 of 16384 expected samples
    "test01-target": dict(TEST01, min_query_count=16384),
    # a fixed probability, another seed
    "probability": dict(accuracy_log_rng_seed=987654321012345, accuracy_log_probability=0.03,
                        min_query_count=3000),
}
SCENARIO_KW = {
    "SingleStream": {},
    "MultiStream": dict(samples_per_query=8),  # min_query_count / 8 queries
    "Server": dict(target_qps=100_000.0),
    "Offline": {},
}


def _case(scenario: str, sampling: str) -> RunSettings:
    kw = dict(SAMPLING[sampling], **SCENARIO_KW[scenario])
    n = kw.pop("min_query_count")
    if scenario == "Offline":
        return settings(scenario, offline_sample_count=n, **kw)
    if scenario == "MultiStream":
        n //= kw["samples_per_query"]
    return settings(scenario, min_query_count=n, **kw)


@pytest.mark.parametrize("sampling", sorted(SAMPLING))
@pytest.mark.parametrize("scenario", sorted(SCENARIO_KW))
def test_logged_seq_ids_and_qsl_indices_are_loadgens(scenario, sampling, tmp_path,
                                                     monkeypatch) -> None:
    """Same settings, same samples logged: edgeperf's seq ids equal the ids in LoadGen's
    mlperf_log_accuracy.json, and the loaded-set position of each is LoadGen's qsl_idx.
    Storage chunks of 1000 rows make the sampler continue across chunk boundaries."""
    monkeypatch.chdir(tmp_path)  # whatever LoadGen might write to the cwd stays here
    monkeypatch.setattr(querylog, "CHUNK", 1000)
    s = _case(scenario, sampling)
    r, log = run_null(s)
    seq, pos, data = r.outlog.entries()
    official = run_loadgen(s, tmp_path)

    spq = s.samples_per_query if scenario == "MultiStream" else 1
    issued = (s.offline_sample_count if scenario == "Offline" else s.min_query_count) * spq
    assert log.rows * log.samples_per_row == issued
    assert seq.tolist() == [e["seq_id"] for e in official]
    qsl = loaded_set(s)
    assert [qsl[p] for p in pos.tolist()] == [e["qsl_idx"] for e in official]
    assert np.array_equal(samples_of(log)[seq], pos)  # the samples those queries issued
    # LoadGen's probability, target / expected samples (min duration 0: the minimum)
    if s.accuracy_log_sampling_target:
        assert r.accuracy_log_probability == 4096 / 16384
    else:
        assert r.accuracy_log_probability == 0.03
    assert 0 < len(seq) < issued
    assert data.shape == (len(seq), 0)  # the null backend has no outputs


def test_offline_probability_follows_loadgens_query_size(tmp_path, monkeypatch) -> None:
    """Offline sized by expected QPS and min duration (no sample count given): LoadGen's
    query is 1.1 x 0.1 s x 20000 = 2200 samples and its probability target / 2200."""
    monkeypatch.chdir(tmp_path)
    s = settings("Offline", target_qps=20_000.0, min_duration_ns=100_000_000, min_query_count=1,
                 accuracy_log_rng_seed=42, accuracy_log_sampling_target=500)
    r, log = run_null(s)
    official = run_loadgen(s, tmp_path)
    seq, pos, _ = r.outlog.entries()
    assert log.rows == r.offline_sample_count == 2200
    assert r.accuracy_log_probability == 500 / 2200
    assert seq.tolist() == [e["seq_id"] for e in official]
    qsl = loaded_set(s)
    assert [qsl[p] for p in pos.tolist()] == [e["qsl_idx"] for e in official]


DURATION_CASES = {
    # (settings, LoadGen's probability): expected samples = target QPS x min duration
    # (x samples per query), above the minimum; the max query count ends the run long
    # before the min duration could (null SUT: a few ms for 300 queries)
    "SingleStream": (dict(expected_latency_ns=1_000_000, target=200), 200 / 2000),
    "MultiStream": (dict(expected_latency_ns=1_000_000, target=1000), 1000 / 16000),
    "Server": (dict(target_qps=20_000.0, target=1000), 1000 / 40000),
}


@pytest.mark.parametrize("scenario", sorted(DURATION_CASES))
def test_expected_samples_from_the_min_duration_are_loadgens(scenario, tmp_path,
                                                             monkeypatch) -> None:
    """The case of a real TEST01 run (min duration 600 s): LoadGen's expected sample count
    comes from the target QPS and the min duration, not from the min query count. Both runs
    stop at the max query count (Server: on its schedule, whatever the timing)."""
    monkeypatch.chdir(tmp_path)
    kw, probability = DURATION_CASES[scenario]
    kw = dict(kw)
    target = kw.pop("target")
    s = settings(scenario, min_duration_ns=2_000_000_000, min_query_count=1,
                 max_query_count=300, accuracy_log_rng_seed=77,
                 accuracy_log_sampling_target=target, **kw)
    r, log = run_null(s)
    official = run_loadgen(s, tmp_path)
    seq, pos, _ = r.outlog.entries()
    assert log.rows == 300 and r.stop_reason == "max query count reached"
    assert r.accuracy_log_probability == probability
    assert seq.tolist() == [e["seq_id"] for e in official]
    qsl = loaded_set(s)
    assert [qsl[p] for p in pos.tolist()] == [e["qsl_idx"] for e in official]
    assert 0 < len(seq) < 300 * log.samples_per_row


# ------------------------------------------- 2. the bytes are the timed queries' outputs

MODEL_CASES = [
    ("SingleStream", dict(min_query_count=600)),
    ("MultiStream", dict(samples_per_query=8, min_query_count=150)),
    ("MultiStream", dict(samples_per_query=20, min_query_count=60)),  # 3 invokes a query
    ("Server", dict(target_qps=5_000.0, min_query_count=600)),
    # all 600 arrivals within microseconds of the start: a batched model answers full
    # batches, so logged queries sit in rows other than 0
    ("Server", dict(target_qps=1e8, min_query_count=600)),
    ("Offline", dict(offline_sample_count=1003)),  # not a multiple of 8, > CHUNK
]


@pytest.mark.parametrize("model", ["mlp", "mlp-batch8"])
@pytest.mark.parametrize("scenario,kw", MODEL_CASES,
                         ids=["ss", "ms8", "ms20", "server", "server-queued", "offline"])
def test_logged_outputs_are_the_timed_queries_outputs(model, scenario, kw, tmp_path,
                                                      monkeypatch) -> None:
    """Each logged row is the bytes accuracy mode's outputs_fn gives for the same position,
    its position is the QueryLog's sample at its seq id, every sample the sampler picks
    among those issued has its row (none skipped, none shifted), and the run invoked the
    model exactly as often as its queries need: the outputs were copied from the query's
    own invoke, not recomputed. Storage chunks of 100 rows (not a multiple of 8): Offline's
    batches straddle chunk boundaries, and every scenario crosses several."""
    monkeypatch.setattr(querylog, "CHUNK", 100)
    b = tflite(model, tmp_path)
    invokes = [0]
    real_invoke = b.interp.invoke

    def counting_invoke():
        invokes[0] += 1
        real_invoke()

    b.interp.invoke = counting_invoke  # the invokers bind interp.invoke when built
    s = settings(scenario, accuracy_log_rng_seed=2024, accuracy_log_probability=0.1, **kw)
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, b.gather_invoker(),
                       b.batch, backend=b)
    log = r.run()
    ran = invokes[0]
    seq, pos, data = r.outlog.entries()

    spr = log.samples_per_row
    total = log.rows * spr
    assert total == (1003 if scenario == "Offline" else s.min_query_count * spr)
    want_seq = AccLogSampler(2024, 0.1).take(total)
    assert seq.tolist() == want_seq.tolist()
    assert np.array_equal(samples_of(log)[seq], pos)

    of = b.outputs_fn()
    want = np.stack([np.frombuffer(b"".join(a.tobytes() for a in of(int(p))), np.uint8)
                     for p in pos.tolist()])
    assert r.outlog.sample_bytes == want.shape[1] > 0
    assert data.shape == want.shape
    assert np.array_equal(data, want)
    assert len({row.tobytes() for row in data}) > 1  # distinct samples, distinct outputs

    batch = b.batch
    if scenario == "SingleStream" or batch == 1:
        expected = total
    elif scenario == "MultiStream":
        expected = log.rows * math.ceil(spr / batch)
    elif scenario == "Offline":
        expected = math.ceil(total / batch)
    else:  # batched Server: one invoke per batch, its queries completing together
        done = log.slice(0, log.rows)[1]
        expected = len(np.unique(done))
        if s.target_qps > 1e6:  # queued: the logged queries' rows in their batches vary
            assert any(q > 0 and done[q - 1] == done[q] for q in seq.tolist())
    assert ran == expected


# --------------------------------------------- 3. nothing of it inside a scored interval


class SlowNeighbour:
    """Wraps OutputLog.plan and .put with a 2 ms sleep (a slow copy) and records, on the
    device clock, when each call ran."""

    def __init__(self, monkeypatch, delay_s: float = 0.002) -> None:
        self.spans: dict[str, list[tuple[int, int]]] = {"plan": [], "put": []}
        for name in ("plan", "put"):
            real = getattr(OutputLog, name)
            monkeypatch.setattr(OutputLog, name, self._wrap(name, real, delay_s))

    def _wrap(self, name, real, delay_s):
        spans = self.spans[name]

        def slow(log_self, *a, **k):
            t0 = time.perf_counter_ns()
            time.sleep(delay_s)
            out = real(log_self, *a, **k)
            spans.append((t0, time.perf_counter_ns()))
            return out
        return slow

    def all(self) -> list[tuple[int, int]]:
        return self.spans["plan"] + self.spans["put"]


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_stream_logging_lands_between_queries(scenario, monkeypatch) -> None:
    """Reservations (at each storage chunk of 32 queries) and copies (after each logged
    query) happen between queries: none inside any query's issue-to-completion interval."""
    monkeypatch.setattr(querylog, "CHUNK", 32)
    slow = SlowNeighbour(monkeypatch)
    s = settings(scenario, min_query_count=100, accuracy_log_rng_seed=3,
                 accuracy_log_probability=0.3 if scenario == "SingleStream" else 0.05)
    b = SyntheticBackend("busy:200")
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, backend=b)
    log = r.run()
    issue, done, _ = log.slice(0, log.rows)
    assert len(slow.spans["plan"]) == 4  # ceil(100 / 32) chunks
    assert len(slow.spans["put"]) == len(r.outlog.entries()[0]) > 5
    assert slow.spans["plan"][0][1] <= log.start_ns
    assert overlapping(issue, done, slow.all()) == []


TIGHT_AFTER_LOGGED = [2, 74, 79]


def _server_run(monkeypatch, qps: float):
    monkeypatch.setattr(querylog, "CHUNK", 32)
    slow = SlowNeighbour(monkeypatch)
    s = settings("Server", target_qps=qps, min_query_count=100, accuracy_log_rng_seed=3,
                 accuracy_log_probability=0.3)
    b = SyntheticBackend("busy:200")
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, backend=b)
    log = r.run()
    sched, done, _ = log.slice(0, log.rows)
    seq = r.outlog.entries()[0]
    return slow, log, sched, done, seq


def test_server_logging_is_set_up_before_the_start_and_copies_between_invokes(monkeypatch):
    """Server: every reservation happens before the run's start; each copy starts after its
    own query completed and ends before the next invoke began (the next query's completion
    minus the 200 us it takes at least)."""
    slow, log, sched, done, seq = _server_run(monkeypatch, 50.0)
    assert log.rows == 100
    assert len(slow.spans["plan"]) == 4
    # the schedule (seed 6) that the next test relies on: logged queries followed by an
    # arrival less than 2.2 ms (200 us query + 2 ms copy) after theirs
    tight = [q for q in seq.tolist() if q + 1 < log.rows and sched[q + 1] - sched[q] < 2_200_000]
    assert tight == TIGHT_AFTER_LOGGED
    assert max(b for _, b in slow.spans["plan"]) <= log.start_ns
    assert len(slow.spans["put"]) == len(seq) > 5
    for (a, b), q in zip(slow.spans["put"], seq.tolist(), strict=True):
        assert a >= done[q]
        if q + 1 < log.rows:
            assert b <= done[q + 1] - 200_000
    # so never inside the logged query's own interval, nor any earlier one
    for (a, b), q in zip(slow.spans["put"], seq.tolist(), strict=True):
        assert overlapping(sched[: q + 1], done[: q + 1], [(a, b)]) == []


def test_server_copy_delays_a_query_already_due_as_loadgens_does(monkeypatch) -> None:
    """The documented cost of TEST01 in Server (acclog.OutputLog): a logged query's copy
    runs before the next invoke, so a query arriving during it waits, as LoadGen's copy in
    QuerySamplesComplete delays the SUT's next answer. With a 2 ms copy, the queries after
    TIGHT_AFTER_LOGGED (gaps under 2.2 ms) certainly arrive during one."""
    slow, log, sched, done, seq = _server_run(monkeypatch, 50.0)
    spans = dict(zip(seq.tolist(), slow.spans["put"], strict=True))
    for q in TIGHT_AFTER_LOGGED:
        a, b = spans[q]
        assert sched[q + 1] < b and a < done[q + 1]  # inside the next query's interval
        assert b <= done[q + 1] - 200_000  # and before its invoke


@pytest.mark.parametrize("model", ["mlp", "mlp-batch8"])
def test_offline_copies_follow_their_samples_completion(model, tmp_path, monkeypatch) -> None:
    """Offline is one scored query: its reservation happens before the start and each copy
    starts after its own sample's completion time (LoadGen copies a response in
    QuerySamplesComplete too); a batched model's copy follows its batch, also one that
    straddles two storage chunks of 100 rows."""
    monkeypatch.setattr(querylog, "CHUNK", 100)
    slow = SlowNeighbour(monkeypatch)
    b = tflite(model, tmp_path)
    s = settings("Offline", offline_sample_count=403, accuracy_log_rng_seed=9,
                 accuracy_log_probability=0.05)
    r = ScenarioRunner(s, b.invoker(), N_SAMPLES, lambda *a: None, b.gather_invoker(),
                       b.batch, backend=b)
    log = r.run()
    done = log.slice(0, log.rows)[1]
    seq = r.outlog.entries()[0]
    assert log.rows == 403
    assert len(slow.spans["plan"]) == 1
    assert slow.spans["plan"][0][1] <= log.start_ns
    assert len(slow.spans["put"]) == len(seq) > 5
    for (a, _), g in zip(slow.spans["put"], seq.tolist(), strict=True):
        assert a >= done[g]


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_a_run_without_accuracy_log_settings_never_touches_output_logging(scenario,
                                                                         monkeypatch):
    calls: list[str] = []
    for name in ("__init__", "plan", "put", "entries"):
        real = getattr(OutputLog, name)

        def record(*a, _name=name, _real=real, **k):
            calls.append(_name)
            return _real(*a, **k)
        monkeypatch.setattr(OutputLog, name, record)
    monkeypatch.setattr(scenarios, "AccLogSampler", None)  # any use would fail
    extra = dict(offline_sample_count=500) if scenario == "Offline" else {}
    r, log = run_null(settings(scenario, min_query_count=200, target_qps=50_000.0, **extra))
    assert log.rows > 0
    assert r.outlog is None and r.accuracy_log_probability == 0.0
    assert calls == []


# ------------------------------------------------------------- 4. performance_issue_same


@pytest.mark.parametrize("scenario,index", [("SingleStream", 3), ("MultiStream", 3),
                                            ("MultiStream", 60), ("Server", 3),
                                            ("Offline", 3)])
def test_performance_issue_same_issues_one_position_as_loadgen_does(scenario, index,
                                                                    tmp_path, monkeypatch):
    """TEST04: every query issues position ``index`` (MultiStream: index .. index+7, wrapping
    into the set's padding); LoadGen with the same settings and accuracy_log_probability 1
    logs every sample, each with the QSL index of that position, as edgeperf logs them."""
    monkeypatch.chdir(tmp_path)
    n = dict(SingleStream=100, MultiStream=20, Server=100, Offline=300)[scenario]
    extra = dict(offline_sample_count=n) if scenario == "Offline" else dict(min_query_count=n)
    s = settings(scenario, performance_issue_same=True, performance_issue_same_index=index,
                 accuracy_log_probability=1.0, accuracy_log_rng_seed=5, **extra)
    r, log = run_null(s)
    spr = log.samples_per_row
    assert log.rows == n
    want = (np.arange(index, index + spr) % N_SAMPLES) if spr > 1 else np.array([index])
    assert np.array_equal(samples_of(log), np.tile(want, n))

    official = run_loadgen(s, tmp_path)
    qsl = loaded_set(s)
    assert [e["seq_id"] for e in official] == list(range(n * spr))
    assert [e["qsl_idx"] for e in official] == [qsl[index + k] for k in range(spr)] * n
    seq, pos, _ = r.outlog.entries()
    assert seq.tolist() == list(range(n * spr))
    assert [qsl[p] for p in pos.tolist()] == [e["qsl_idx"] for e in official]


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_performance_issue_same_index_outside_the_loaded_set_is_refused(scenario) -> None:
    b = SyntheticBackend("null")
    ok = settings(scenario, performance_issue_same=True,
                  performance_issue_same_index=N_SAMPLES - 1)
    ScenarioRunner(ok, b.invoker(), N_SAMPLES, lambda *a: None)
    bad = settings(scenario, performance_issue_same=True,
                   performance_issue_same_index=N_SAMPLES)
    with pytest.raises(RunError, match="performance_issue_same_index 64 is outside"):
        ScenarioRunner(bad, b.invoker(), N_SAMPLES, lambda *a: None)
    with pytest.raises(RunError, match="performance_issue_same_index"):
        settings(scenario, performance_issue_same=True, performance_issue_same_index=-1)


# ----------------------------------------------------------------------- 5. refusals


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, math.inf])
def test_accuracy_log_probability_outside_0_to_1_is_refused(p) -> None:
    with pytest.raises(RunError, match="accuracy_log_probability"):
        settings("SingleStream", accuracy_log_probability=p)


def test_accuracy_log_probability_bounds_are_accepted() -> None:
    assert not settings("SingleStream", accuracy_log_probability=0.0).logs_outputs
    assert settings("SingleStream", accuracy_log_probability=1.0).logs_outputs


def test_negative_sampling_target_is_refused() -> None:
    with pytest.raises(RunError, match="accuracy_log_sampling_target"):
        settings("SingleStream", accuracy_log_sampling_target=-1)


@pytest.mark.parametrize("acc", [dict(accuracy_log_probability=0.5),
                                 dict(accuracy_log_sampling_target=10)])
def test_logging_outputs_without_a_backend_is_refused(acc) -> None:
    s = settings("SingleStream", **acc)
    with pytest.raises(RunError, match=r"accuracy_log_\*"):
        ScenarioRunner(s, SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
