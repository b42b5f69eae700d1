"""The official MLPerf LoadGen (PyPI mlcommons-loadgen) driving the loaded backend.

``run_official`` runs one LoadGen test on the device instead of edgeperf's own loops
(scenarios.py): LoadGen times every query itself and writes its own files, which go back
to the host byte for byte. The only agent module that imports ``mlperf_loadgen``, and only
when such a run is asked for.

What runs inside LoadGen's timed interval (issue to QuerySamplesComplete) is what runs in
edgeperf's loops: look up each sample's position in the pushed set, set inputs, invoke, read
outputs into memory allocated before StartTest, then complete with responses allocated
before StartTest too (their ids set in place). The invokers, the responses, the
index-to-position table, the warm-up (and for Offline without a target QPS the calibration
that sizes the query) all happen before StartTest. Queries are answered in the issue
callback, one at a time, as LoadGen's own Python examples do (a worker thread adds a thread
hand-off to every query: docs/PERFORMANCE.md). This module must run on Python 3.9.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np

from .backends import Backend, BackendError
from .lgseq import SCENARIOS, loaded_sample_set
from .scenarios import RunSettings, ScenarioRunner

INSTALL = "pip install mlcommons-loadgen"
LOG_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json",
             "mlperf_log_trace.json")
FILE_CHUNK = 1 << 20  # a log file travels in events of at most this many bytes
OFFLINE_COMPLETE_EVERY = 64  # performance mode: Offline samples completed per call
MODES = ("PerformanceOnly", "AccuracyOnly")

Emit = Callable[[str, Dict[str, Any], bytes], None]


class LoadGenError(BackendError):
    """An official-LoadGen run that cannot be served; the message says why and the fix."""


def available() -> bool:
    """Whether ``mlperf_loadgen`` could be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("mlperf_loadgen") is not None
    except (ImportError, ValueError):  # ValueError: hidden (sys.modules entry None)
        return False


def load_loadgen() -> Any:
    try:
        import mlperf_loadgen  # noqa: PLC0415 - lazy: optional on the device
    except ImportError as exc:
        raise LoadGenError("--loadgen official needs MLCommons LoadGen on the device, and "
                           "mlperf_loadgen is not importable there (%s); install it on the "
                           "device: %s" % (exc, INSTALL)) from None
    return mlperf_loadgen


def test_settings(lg: Any, s: Dict[str, Any]) -> Any:
    """LoadGen's TestSettings from the run's effective settings (edgeperf's names)."""
    scen, mode = s["scenario"], s.get("mode", "PerformanceOnly")
    if scen not in SCENARIOS or mode not in MODES:
        raise LoadGenError("official LoadGen: scenario %r / mode %r: choose a scenario of "
                           "%s and a mode of %s" % (scen, mode, SCENARIOS, MODES))
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scen)
    ts.mode = getattr(lg.TestMode, mode)
    for key in ("min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count",
                "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        setattr(ts, key, int(s.get(key) or 0))
    ts.performance_sample_count_override = int(s.get("performance_sample_count") or 0)
    for key in ("accuracy_log_rng_seed", "accuracy_log_sampling_target",
                "performance_issue_same_index"):  # the compliance audits' keys
        setattr(ts, key, int(s.get(key) or 0))
    ts.accuracy_log_probability = float(s.get("accuracy_log_probability") or 0.0)
    ts.performance_issue_same = bool(s.get("performance_issue_same"))
    latency = s.get("target_latency_ns")
    pct = s.get("target_latency_percentile")
    if scen == "SingleStream":
        if latency:
            ts.single_stream_expected_latency_ns = int(latency)
        if pct:
            ts.single_stream_target_latency_percentile = float(pct)
    elif scen == "MultiStream":
        if latency:
            ts.multi_stream_expected_latency_ns = int(latency)
        if pct:
            ts.multi_stream_target_latency_percentile = float(pct)
        ts.multi_stream_samples_per_query = int(s.get("samples_per_query") or 8)
    elif scen == "Server":
        ts.server_target_qps = float(s["target_qps"])
        ts.server_target_latency_ns = int(latency)  # type: ignore[arg-type]
        if pct:
            ts.server_target_latency_percentile = float(pct)
    elif s.get("target_qps"):
        ts.offline_expected_qps = float(s["target_qps"])
    return ts


class _Answer:
    """The SUT's issue callback and everything it touches, built before StartTest."""

    def __init__(self, lg: Any, backend: Backend, positions: List[int], scenario: str,
                 accuracy: bool, batched: bool, most: int) -> None:
        self.invoke = backend.invoker()
        outs = list(backend.output_buffers)
        self.gather = backend.gather_invoker() if batched else None
        gouts = list(backend.output_buffers) if self.gather is not None else outs
        self.batch = backend.batch if self.gather is not None else 1
        if accuracy and len(outs) > 1:
            raise LoadGenError("official LoadGen's accuracy mode logs one response a sample; "
                               "this model has %d outputs (use --loadgen edgeperf)" % len(outs))
        self.complete, self.pos, self.accuracy = lg.QuerySamplesComplete, positions, accuracy
        self.every = 1 if accuracy else (OFFLINE_COMPLETE_EVERY if scenario == "Offline"
                                         else most)
        n = max(most if self.gather is None else self.batch, self.every, 1)
        self.row = _row_pointer(outs, backend.batch)
        grow = _row_pointer(gouts, backend.batch)
        # responses and the lists completed, allocated once: a query only sets their ids
        self.resp = [lg.QuerySampleResponse(0, *(grow(k) if self.gather is not None
                                                 else self.row(0))) for k in range(n)]
        self.heads = [self.resp[:k] for k in range(n + 1)]
        self.order = np.zeros(max(self.batch, 1), np.uint32)

    def issue(self) -> Callable[[List[Any]], None]:
        if self.gather is not None:
            return self._issue_batched
        invoke, pos, resp, heads, complete = self.invoke, self.pos, self.resp, self.heads, \
            self.complete
        every = self.every
        if every == 1:
            r0, one = resp[0], heads[1]

            def issue_one(qs: List[Any]) -> None:
                for q in qs:
                    invoke(pos[q.index])
                    r0.id = q.id
                    complete(one)
            return issue_one

        def issue_grouped(qs: List[Any]) -> None:
            k = 0
            for q in qs:
                invoke(pos[q.index])
                resp[k].id = q.id
                k += 1
                if k == every:
                    complete(heads[k])
                    k = 0
            if k:
                complete(heads[k])
        return issue_grouped

    def _issue_batched(self, qs: List[Any]) -> None:
        gather, pos, resp, heads, complete = self.gather, self.pos, self.resp, self.heads, \
            self.complete
        order, b = self.order, self.batch
        n = len(qs)
        for off in range(0, n, b):
            cnt = min(b, n - off)
            for k in range(cnt):
                q = qs[off + k]
                order[k] = pos[q.index]
                resp[k].id = q.id
            gather(order, 0, cnt)  # type: ignore[misc]
            complete(heads[cnt])


def _row_pointer(outs: List[np.ndarray], batch: int) -> Callable[[int], tuple]:
    """(address, size) of sample row k of a single-output model's output buffer; (0, 0)
    when there is none to point at (no outputs, or several: performance mode reads none)."""
    if len(outs) != 1:
        return lambda k: (0, 0)
    out = outs[0]
    size = out.nbytes // max(batch, 1)
    base = out.ctypes.data
    return lambda k: (base + k * size, size)


def run_official(backend: Backend, n_positions: int, req: Dict[str, Any], emit: Emit,
                 lg: Any = None) -> Dict[str, Any]:
    """One LoadGen test on ``backend`` (already bound to the pushed set of ``n_positions``
    samples). ``req``: ``loadgen`` (the effective settings: scenario, mode, durations,
    query counts, latency, percentile, target_qps, samples_per_query,
    performance_sample_count, the three seeds), ``qsl_total`` (the QSL's total count),
    ``qsl_indices`` (the QSL index of each pushed position: LoadGen's loaded-set order),
    ``warmup_queries``, ``batched``. The log files go back as "lgfile" events."""
    lg = lg or load_loadgen()
    s = dict(req.get("loadgen") or {})
    scen, accuracy = s.get("scenario"), s.get("mode") == "AccuracyOnly"
    qsl = [int(i) for i in req.get("qsl_indices") or range(n_positions)]
    total = int(req.get("qsl_total") or n_positions)
    if len(qsl) != n_positions:
        raise LoadGenError("qsl_indices names %d samples; the pushed set has %d"
                           % (len(qsl), n_positions))
    _check_loaded_set(qsl, total, s, accuracy)
    positions = [-1] * total
    for p, i in enumerate(qsl):
        positions[i] = p
    spq = int(s.get("samples_per_query") or 1) if scen == "MultiStream" else 1
    answer = _Answer(lg, backend, positions, str(scen), accuracy,
                     bool(req.get("batched", True)), spq)
    ts = test_settings(lg, s)
    warm = ScenarioRunner(RunSettings.from_dict({
        "scenario": scen, "samples_per_query": spq, "warmup_queries":
        int(req.get("warmup_queries", 10)), "target_qps": float(s.get("target_qps") or 0),
        "sample_index_rng_seed": int(s.get("sample_index_rng_seed") or 0)}),
        answer.invoke, n_positions, lambda e, h, b: None, answer.gather, answer.batch)
    warm.warmup()  # untimed, as the edgeperf driver's; Offline: sizes the query
    if scen == "Offline" and not s.get("target_qps") and warm.warmup_ns_per_sample:
        ts.offline_expected_qps = 1e9 / warm.warmup_ns_per_sample
    loaded: List[List[int]] = []
    issue = answer.issue()
    out = tempfile.mkdtemp(prefix="edgeperf-loadgen-")
    try:
        log = lg.LogSettings()
        log.log_output.outdir = out
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = bool(req.get("enable_trace", True))
        sut = lg.ConstructSUT(issue, lambda: None)
        qsl_h = lg.ConstructQSL(total, n_positions, lambda ids: loaded.append(list(ids)),
                                lambda ids: None)
        t0 = time.perf_counter_ns()
        lg.StartTestWithLogSettings(sut, qsl_h, ts, log)
        t1 = time.perf_counter_ns()
        lg.DestroyQSL(qsl_h)
        lg.DestroySUT(sut)
        files = _send_files(out, emit, int(req.get("max_event_bytes") or FILE_CHUNK))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"driver": "loadgen-official", "files": files, "start_ns": t0, "end_ns": t1,
            "warmup_ns_per_sample": warm.warmup_ns_per_sample,
            "offline_expected_qps": ts.offline_expected_qps if scen == "Offline" else None,
            "loaded_sets": len(loaded),
            "loaded_set_matches": bool(loaded) and all(
                set(ids) <= set(qsl) for ids in loaded),
            "n_samples": n_positions, "qsl_total": total,
            "batched": answer.gather is not None, "batch": answer.batch}


def _check_loaded_set(qsl: List[int], total: int, s: Dict[str, Any], accuracy: bool) -> None:
    """Refuse, before StartTest, a pushed set that is not the one LoadGen will load (its
    samples are answered from the set: none may be missing)."""
    if accuracy:
        if sorted(qsl) != list(range(total)):
            raise LoadGenError("official LoadGen's accuracy mode issues all %d QSL samples; "
                               "push them all (got %d)" % (total, len(qsl)))
        return
    want = loaded_sample_set(total, len(qsl), int(s.get("qsl_rng_seed") or 0),
                             str(s.get("scenario")), int(s.get("samples_per_query") or 1))
    if set(want) != set(qsl):
        raise LoadGenError("the pushed set is not LoadGen's loaded set for qsl_rng_seed %s "
                           "(%d of %d QSL samples)" % (s.get("qsl_rng_seed"), len(qsl), total))


def _send_files(out: str, emit: Emit, chunk: int) -> List[Dict[str, Any]]:
    """LoadGen's files, as written, in "lgfile" events of at most ``chunk`` bytes."""
    import hashlib

    files = []
    for name in LOG_FILES:
        path = os.path.join(out, name)
        if not os.path.exists(path):
            continue
        size = os.path.getsize(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            offset = 0
            while True:
                data = f.read(max(chunk, 1))
                digest.update(data)
                last = offset + len(data) >= size
                emit("lgfile", {"name": name, "offset": offset, "size": size, "last": last},
                     data)
                offset += len(data)
                if last:
                    break
        files.append({"name": name, "size": size, "sha256": digest.hexdigest()})
    return files


__all__ = ["INSTALL", "LOG_FILES", "LoadGenError", "available", "load_loadgen", "run_official",
           "test_settings"]
