"""The scenario loops on the device: what is inside each scored interval, and nothing else.

Each test puts a deliberately slow or recording neighbour next to the loop (an emit that
takes 20 ms, set-up work that is timed, a recording batch call) and checks where its time
went: never inside a query's issue-to-completion interval (Server: scheduled arrival to
completion), never inside Offline's one query.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgeperf.models.builtin import builtin_model
from edgeperf_agent import querylog, scenarios
from edgeperf_agent.backends import SyntheticBackend, TfliteBackend
from edgeperf_agent.lgseq import offline_sample_count, server_schedule
from edgeperf_agent.scenarios import QueryLog, RunSettings, ScenarioRunner

N_SAMPLES = 64


def settings(scenario: str, **kw) -> RunSettings:
    d = dict(scenario=scenario, min_duration_ns=0, min_query_count=50, warmup_queries=2,
             sample_index_rng_seed=5, schedule_rng_seed=6)
    if scenario == "MultiStream":
        d["samples_per_query"] = 8
    d.update(kw)
    return RunSettings.from_dict(d)


class SlowEmit:
    """An emit that takes ``delay_s`` on the calling thread (a blocking write to a slow
    link) and records when each call ran, on the device clock."""

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[str, int, int, dict]] = []

    def __call__(self, event: str, header: dict, body: bytes) -> None:
        t0 = time.perf_counter_ns()
        time.sleep(self.delay_s)
        self.calls.append((event, t0, time.perf_counter_ns(), dict(header)))

    def intervals(self, event: str | None = None) -> list[tuple[int, int]]:
        return [(a, b) for e, a, b, _ in self.calls if event in (None, e)]


def scored_intervals(log: QueryLog) -> tuple[np.ndarray, np.ndarray]:
    issue, done, _ = log.slice(0, log.rows)
    return issue, done


def overlapping(issue: np.ndarray, done: np.ndarray, spans: list[tuple[int, int]]) -> list:
    """(query, span) pairs where a span lies (partly) inside a query's scored interval."""
    out = []
    for a, b in spans:
        hit = np.nonzero((issue < b) & (done > a))[0]
        out += [(int(j), (a, b)) for j in hit[:3]]
    return out


def tflite(name: str, tmp_path, n: int = N_SAMPLES) -> TfliteBackend:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(builtin_model(name))
    b = TfliteBackend(str(path), num_threads=1)
    rng = np.random.default_rng(1)
    b.bind([rng.uniform(-1, 1, (n, *b.inputs[0]["shape"][1:])).astype(np.float32)])
    return b


# ------------------------------------------------------------------ flushes (item 3)


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_a_slow_emit_lands_between_queries_never_inside_one(scenario) -> None:
    emit = SlowEmit(0.02)
    s = settings(scenario, min_duration_ns=400_000_000, flush_interval_ns=50_000_000)
    r = ScenarioRunner(s, SyntheticBackend("busy:200").invoker(), N_SAMPLES, emit)
    log = r.run()
    issue, done = scored_intervals(log)
    assert len(emit.intervals("querylog")) >= 3  # the run did flush while it ran
    assert overlapping(issue, done, emit.intervals()) == []
    # and every query was sent once, in order
    sent = [(h["first"], h["rows"]) for e, _, _, h in emit.calls if e == "querylog"]
    assert sent[0][0] == 0 and sum(n for _, n in sent) == log.rows
    assert all(a + n == b for (a, n), (b, _) in zip(sent, sent[1:], strict=False))


def test_a_slow_emit_delays_no_server_arrival() -> None:
    """Server at 10 QPS with a 20 ms emit: every flush waits for an idle gap that fits it,
    so no query's scheduled-arrival-to-completion interval contains one, and none was
    forced into a busy stretch. (How many gaps fit depends on how long the emit really
    took on a loaded machine; that some did does not: a third of the gaps exceed 110 ms.)"""
    emit = SlowEmit(0.02)
    s = settings("Server", target_qps=10.0, min_query_count=20, min_duration_ns=3_000_000_000,
                 flush_interval_ns=50_000_000)
    r = ScenarioRunner(s, SyntheticBackend("busy:200").invoker(), N_SAMPLES, emit)
    log = r.run()
    issue, done = scored_intervals(log)
    assert [a for a, _ in emit.intervals("querylog") if a < log.end_ns]  # sent mid-run
    assert overlapping(issue, done, emit.intervals()) == []
    assert r.busy_flushes == 0
    assert log.rows == len(server_schedule(10.0, 6, 3000, 20))


def test_offline_sends_nothing_inside_its_one_query() -> None:
    """The Offline query is one scored interval: its QueryLog goes out after it completes,
    announced before it starts with the quiet time the host must allow."""
    emit = SlowEmit(0.02)
    s = settings("Offline", offline_sample_count=3000, flush_interval_ns=10_000_000)
    r = ScenarioRunner(s, SyntheticBackend("busy:200").invoker(), N_SAMPLES, emit)
    log = r.run()
    assert log.rows == 3000
    first_query_emit = min(a for a, _ in emit.intervals("querylog"))
    assert first_query_emit >= log.end_ns
    (announce,) = [c for c in emit.calls if c[0] == "offline"]
    assert announce[2] <= log.start_ns
    assert announce[3]["samples"] == 3000 and announce[3]["quiet_ns"] > 0
    done = log.slice(0, log.rows)[1]
    assert int(done.max()) <= log.end_ns


# ------------------------------------------------------------------ set-up (item 2)


def test_server_builds_its_whole_schedule_and_sample_order_before_the_start(monkeypatch):
    """The stall the review found: schedule and sample chunks built after the start, charged
    to the first queries (and again every 65,536). With storage chunks of 256 rows, every
    piece of set-up must still happen before the run's start."""
    monkeypatch.setattr(querylog, "CHUNK", 256)
    calls: list[tuple[str, int]] = []
    real_chunk_for, real_fill = QueryLog.chunk_for, ScenarioRunner._fill_order

    def chunk_for(self, row):
        calls.append(("chunk_for", time.perf_counter_ns()))
        time.sleep(0.005)  # a slow allocation
        return real_chunk_for(self, row)

    def fill(self, buf, n, first=0):
        calls.append(("fill_order", time.perf_counter_ns()))
        time.sleep(0.005)
        return real_fill(self, buf, n, first)

    monkeypatch.setattr(QueryLog, "chunk_for", chunk_for)
    monkeypatch.setattr(ScenarioRunner, "_fill_order", fill)
    s = settings("Server", target_qps=20_000.0, min_query_count=2000, min_duration_ns=0)
    r = ScenarioRunner(s, SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
    log = r.run()
    assert log.rows == len(server_schedule(20_000.0, 6, 0, 2000)) >= 2000
    assert len(calls) >= 2 * (log.rows // 256)
    assert max(t for _, t in calls) < log.start_ns


# ------------------------------------------------------------------ stopping rules (item 6)


def test_single_stream_issues_one_query_past_the_max_duration() -> None:
    """LoadGen checks the max duration after an issue: the query issued past it goes out,
    and is the last."""
    s = settings("SingleStream", min_query_count=10**6, max_duration_ns=60_000_000)
    r = ScenarioRunner(s, SyntheticBackend("busy:1000").invoker(), N_SAMPLES, lambda *a: None)
    log = r.run()
    issue, _ = scored_intervals(log)
    assert r.stop_reason == "max duration reached"
    assert issue[-1] - log.start_ns > 60_000_000
    assert issue[-2] - log.start_ns <= 60_000_000


def test_server_stops_after_the_first_query_scheduled_past_the_max_duration() -> None:
    s = settings("Server", target_qps=1000.0, min_query_count=2000,
                 max_duration_ns=100_000_000)
    sched = server_schedule(1000.0, 6, 0, 2000)
    r = ScenarioRunner(s, SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
    log = r.run()
    expect = int(np.searchsorted(sched, 100_000_000, side="right")) + 1
    assert log.rows == expect and r.stop_reason == "max duration reached"
    issue, _ = scored_intervals(log)
    np.testing.assert_array_equal(issue - log.start_ns, sched[:expect])
    assert r.generated_query_count == len(sched)


def test_server_max_query_count_and_full_schedule() -> None:
    sched = server_schedule(5000.0, 6, 100, 50)
    r = ScenarioRunner(settings("Server", target_qps=5000.0, min_duration_ns=100_000_000),
                       SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
    assert r.run().rows == len(sched)
    r = ScenarioRunner(settings("Server", target_qps=5000.0, min_duration_ns=100_000_000,
                                max_query_count=77),
                       SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
    assert r.run().rows == 77 and r.stop_reason == "max query count reached"


def test_offline_sample_count_is_never_capped_by_max_query_count() -> None:
    s = settings("Offline", target_qps=2000.0, min_duration_ns=500_000_000,
                 min_query_count=10, max_query_count=10)
    r = ScenarioRunner(s, SyntheticBackend("null").invoker(), N_SAMPLES, lambda *a: None)
    log = r.run()
    assert log.rows == r.offline_sample_count == offline_sample_count(500, 2000.0, 10) == 1100


# ------------------------------------------------------------------ batches (items 1 and 7)


class RecordingGather:
    def __init__(self, gather) -> None:
        self.gather = gather
        self.calls: list[list[int]] = []

    def __call__(self, order, base, count):
        self.calls.append([int(x) for x in order[base:base + count]])
        return self.gather(order, base, count)


@pytest.mark.parametrize("n", [8 * 40, 8 * 40 + 3])
def test_offline_fills_each_batch_with_distinct_samples_and_counts_each_once(tmp_path, n,
                                                                            monkeypatch):
    """One invoke answers 8 distinct samples; a partial last batch is padded, and the
    padding is not counted. With storage chunks of 100 rows, batches straddle chunks."""
    monkeypatch.setattr(querylog, "CHUNK", 100)
    b = tflite("mlp-batch8", tmp_path)
    rec = RecordingGather(b.gather_invoker())
    r = ScenarioRunner(settings("Offline", offline_sample_count=n, warmup_queries=0),
                       b.invoker(), N_SAMPLES, lambda *a: None, rec, b.batch)
    log = r.run()
    assert log.rows == n
    _, done, sample = log.slice(0, log.rows)
    assert len(rec.calls) == -(-n // 8)  # no warm-up, no calibration: the query alone
    timed = rec.calls
    assert [len(c) for c in timed] == [8] * (n // 8) + ([n % 8] if n % 8 else [])
    assert sum(timed, []) == sample.tolist()  # each sample once, in the query's order
    assert all(len(set(c)) == len(c) for c in timed)
    # the samples of one invoke complete together
    for k in range(0, n, 8):
        assert len(set(done[k:k + 8].tolist())) == 1


def test_batched_outputs_are_those_of_the_distinct_samples(tmp_path) -> None:
    b8, b1 = tflite("mlp-batch8", tmp_path), tflite("mlp", tmp_path)
    gather = b8.gather_invoker()
    order = np.array([5, 9, 3, 60, 2, 7, 1, 0, 11, 12, 13], np.uint32)
    for base, count in ((0, 8), (8, 3)):
        gather(order, base, count)
        got = b8.interp.get_tensor(b8.outputs[0]["index"])[:count]
        want = np.concatenate([b1.outputs_fn()(int(s))[0] for s in order[base:base + count]])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_multistream_on_a_batched_model_is_one_invoke_of_distinct_samples(tmp_path) -> None:
    b = tflite("mlp-batch8", tmp_path)
    rec = RecordingGather(b.gather_invoker())
    r = ScenarioRunner(settings("MultiStream", min_query_count=30, warmup_queries=0),
                       b.invoker(), N_SAMPLES, lambda *a: None, rec, b.batch)
    log = r.run()
    _, _, sample = log.slice(0, log.rows)
    assert [len(c) for c in rec.calls] == [8] * log.rows
    assert sum(rec.calls, []) == sample.tolist()


def test_server_on_a_batched_model_batches_only_queries_already_due(tmp_path) -> None:
    b = tflite("mlp-batch8", tmp_path)
    rec = RecordingGather(b.gather_invoker())
    r = ScenarioRunner(settings("Server", target_qps=50_000.0, min_query_count=3000,
                                warmup_queries=0),
                       b.invoker(), N_SAMPLES, lambda *a: None, rec, b.batch)
    log = r.run()
    issue, done, sample = log.slice(0, log.rows)
    assert sum(len(c) for c in rec.calls) == log.rows
    assert sum(rec.calls, []) == sample.tolist()
    k = 0
    for c in rec.calls:  # every query of a batch was due before the batch completed
        assert (issue[k:k + len(c)] <= done[k]).all() and len(set(done[k:k + len(c)])) == 1
        k += len(c)


class Recorder:
    """A stand-in interpreter that forwards to the real one and counts what is called."""

    def __init__(self, interp) -> None:
        self._interp = interp
        self.calls: list[str] = []
        self.inputs: list[int] = []

    def __getattr__(self, name):
        real = getattr(self._interp, name)

        def call(*a, **k):
            self.calls.append(name)
            if name == "set_tensor":
                self.inputs.append(id(a[1]))
            return real(*a, **k)
        return call


@pytest.mark.parametrize("name", ["mlp", "mlp-batch8"])
def test_a_query_sets_inputs_invokes_and_reads_into_preallocated_memory(tmp_path, name):
    """Per query: set_tensor, invoke and a read of the output view, nothing that allocates
    an output copy (get_tensor) or builds index lists; a batched model's input buffer is
    the same preallocated array every time."""
    b = tflite(name, tmp_path)
    rec = Recorder(b.interp)
    b.interp = rec
    invoke = b.invoker()
    rec.calls.clear()
    for s in (3, 4, 5):
        invoke(s)
    assert "get_tensor" not in rec.calls
    assert rec.calls.count("invoke") == 3 and rec.calls.count("set_tensor") == 3
    if name == "mlp-batch8":
        assert len(set(rec.inputs[-3:])) == 1


def test_a_saturated_server_still_sends_within_the_force_interval_and_counts_it(monkeypatch):
    """No idle gap ever comes on a device 5x slower than its arrival rate: a stretch goes out
    anyway after FORCE_FLUSH_NS (so a dying agent still loses a bounded stretch), and each
    such send is counted for the run's warning."""
    monkeypatch.setattr(scenarios, "FORCE_FLUSH_NS", 30_000_000)
    emit = SlowEmit(0.0)
    s = settings("Server", target_qps=5000.0, min_query_count=400,
                 flush_interval_ns=10_000_000)
    r = ScenarioRunner(s, SyntheticBackend("busy:1000").invoker(), N_SAMPLES, emit)
    log = r.run()
    assert log.rows == len(server_schedule(5000.0, 6, 0, 400))
    sends = [h["first"] for e, _, _, h in emit.calls if e == "querylog"]
    assert r.busy_flushes >= 2 and len(sends) >= r.busy_flushes


def test_busy_flushes_make_a_warning() -> None:
    from edgeperf.run.device_state import warnings_for

    (w,) = warnings_for({"run": {"busy_flushes": 3}})
    assert "saturated: 3 QueryLog send(s)" in w and "--target-qps" in w
    assert warnings_for({"run": {"busy_flushes": 0}}) == []
