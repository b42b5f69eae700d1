"""Accuracy mode (LoadGen's AccuracyOnly): every sample of a task's dataset once on the device.

The device only runs the model and returns the raw output bytes; the host decodes them,
computes the task's metric and checks its target, as MLPerf's accuracy scripts do from
mlperf_log_accuracy.json.

Slow links and small devices: the dataset goes to the device in windows of at most
``window_bytes`` of input (4 MiB by default, at least one sample), each a sample set cached
on the device by its SHA-256, so a second run sends nothing. The agent holds one window at
a time (loading the next drops the previous) and sends outputs back in frames of at most
1 MiB, so the device never holds more than one window of inputs, the model, and one frame
of outputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.boards.profile import BoardProfile, load_board
from edgeperf.errors import AgentDied, AgentError, AgentTimeout, LinkError, RunError
from edgeperf.models.resolve import ModelRef, resolve_model
from edgeperf.models.tflite_reader import TfliteReadError, read_model
from edgeperf.outputs import mlperf_logs
from edgeperf.outputs import record
from edgeperf.run.samples import check_dynamic_inputs
from edgeperf.run.session import Session
from edgeperf.run.spec import EXIT_INVALID, EXIT_VALID
from edgeperf.scoring.accuracy import AccuracyResult
from edgeperf.settings import TestSettings, effective_settings
from edgeperf.store.record import record_run_safely
from edgeperf.tasks.datasets import DatasetError, fit, real_values
from edgeperf.tasks.metrics import MetricError, meets, reconstruction_error
from edgeperf.tasks.registry import Task

WINDOW_BYTES = 4 * 1024 * 1024
__all__ = ["AccuracyOutcome", "AccuracyResult", "AccuracySpec", "run_accuracy", "run_accuracy_on"]
Reporter = Callable[[str, dict[str, Any]], None]


@dataclass
class AccuracySpec:
    task: Task
    board: str | BoardProfile = "local"
    out_dir: Path = Path("results")
    threads: int | None = None
    input_shapes: dict[str, list[int]] | None = None
    window_bytes: int = WINDOW_BYTES
    scenario: str = "SingleStream"  # recorded in the logs, as LoadGen's accuracy mode does
    # The run's requested settings (a submission run's, or what --scenario, --target-qps ...
    # asked for), logged with mode AccuracyOnly as LoadGen logs an accuracy run's; their
    # scenario wins over ``scenario``. None: LoadGen's TestSettings defaults for ``scenario``.
    settings: TestSettings | None = None
    loadgen: str = "edgeperf"  # "official": LoadGen's AccuracyOnly on the device logs the outputs
    load_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the runtime's


def accuracy_settings(spec: AccuracySpec) -> TestSettings:
    """The settings an accuracy run logs (validated: a Server run needs its arrival rate and
    latency bound in the logs as in a timed run)."""
    if spec.settings is not None:
        return dataclasses.replace(spec.settings, mode="AccuracyOnly").validate()
    # LoadGen's TestSettings defaults (test_settings.h): 10 s, 100 queries, seeds 0, Server at
    # 1 QPS with a 100 ms bound, Offline expecting 1 QPS
    rates = {"Server": (1.0, 100_000_000), "Offline": (1.0, None)}
    qps, latency = rates.get(spec.scenario, (0.0, None))
    return TestSettings(spec.scenario, mode="AccuracyOnly", target_qps=qps,
                        target_latency_ns=latency).validate()


@dataclass
class AccuracyOutcome:
    out_dir: Path
    result: AccuracyResult
    exit_code: int
    outputs: list[bytes]  # raw output bytes by dataset index (qsl_idx)
    record: dict[str, Any]


def model_inputs(data: bytes, input_shapes: dict[str, list[int]] | None) -> list[dict]:
    """The model's input details from the file (no device needed), resized as asked."""
    try:
        info = read_model(data)
    except TfliteReadError as exc:
        raise RunError(f"cannot read the model: {exc}") from None
    out = []
    for t in info.inputs:
        shape = list(t.shape)
        if input_shapes:
            key = t.name if t.name in input_shapes else ("" if len(info.inputs) == 1 else None)
            if key is not None and key in input_shapes:
                shape = list(input_shapes[key])
        out.append({"name": t.name, "shape": shape, "shape_signature": list(t.shape_signature),
                    "dtype": t.dtype, "quantization": list(t.quantization)})
    check_dynamic_inputs(out, input_shapes)
    return out


def decode_outputs(outputs: list[bytes], details: list[dict[str, Any]]) -> list[np.ndarray]:
    """Raw per-sample bytes -> one float64 array [N, ...] per model output, dequantized."""
    shapes, dtypes = [], []
    for d in details:
        shape = list(d["shape"])
        shapes.append([1, *shape[1:]] if shape and shape[0] > 1 else shape)
        dtypes.append(np.dtype(d["dtype"]))
    sizes = [int(np.prod(s)) * dt.itemsize for s, dt in zip(shapes, dtypes, strict=True)]
    if outputs and len(outputs[0]) != sum(sizes):
        raise RunError(f"each sample returned {len(outputs[0])} output bytes but the model's "
                       f"outputs hold {sum(sizes)}")
    raw = np.frombuffer(b"".join(outputs), np.uint8).reshape(len(outputs), sum(sizes))
    arrays, off = [], 0
    for shape, dt, size, d in zip(shapes, dtypes, sizes, details, strict=True):
        a = raw[:, off:off + size].copy().view(dt).reshape(len(outputs), *shape[1:])
        scale, zero_point = (float(d["quantization"][0]), int(d["quantization"][1])) \
            if d.get("quantization") else (0.0, 0)
        a = a.astype(np.float64)
        if scale > 0:
            a = scale * (a - zero_point)
        arrays.append(a)
        off += size
    return arrays


def check_labels(task: Task, output_details: list[dict[str, Any]]) -> None:
    """Labels that the metric cannot read are a task error, said before the device runs."""
    labels = task.dataset.labels
    if task.output_index >= len(output_details):
        raise RunError(f"task {task.name} reads model output {task.output_index}, but the model "
                       f"has {len(output_details)} outputs")
    if task.metric.name == "top1":
        classes = int(np.prod(output_details[task.output_index]["shape"][1:]))
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= classes:
            raise RunError(f"task {task.name}: top1 labels must be class indices in "
                           f"[0, {classes}) (the model has {classes} outputs a sample); got "
                           f"{labels.dtype} values {labels.min()}..{labels.max()}")
    if task.metric.name == "auc" and not np.isin(labels, (0, 1)).all():
        raise RunError(f"task {task.name}: auc labels must be 0 (normal) or 1 (positive)")
    if task.metric.name == "mse":
        per_sample = int(np.prod(output_details[task.output_index]["shape"][1:]))
        if labels.reshape(len(labels), -1).shape[1] != per_sample:
            raise RunError(f"task {task.name}: mse labels need {per_sample} values a sample "
                           f"(the model output's), got shape {list(labels.shape[1:])}")


def score_outputs(task: Task, outputs: list[np.ndarray], input_details: list[dict]) -> float:
    out = outputs[task.output_index]
    labels = task.dataset.labels
    if task.score == "reconstruction_error":
        return task.metric.fn(reconstruction_error(out, real_values(task.dataset,
                                                                    input_details)), labels)
    if task.metric.name == "auc":
        return task.metric.fn(out.reshape(len(out), -1)[:, -1], labels)
    return task.metric.fn(out, labels)


def run_accuracy(spec: AccuracySpec, report: Reporter | None = None) -> AccuracyOutcome:
    """Run the accuracy set on the device (on a link of its own), score it, write the logs.
    Raises RunError when nothing could be measured (bad model, bad dataset, no device)."""
    accuracy_settings(spec)  # refused before a link is opened
    profile = spec.board if isinstance(spec.board, BoardProfile) else load_board(spec.board)
    prepared = _accuracy_model(spec)
    try:
        session = Session.open(profile, report)
    except LinkError as exc:
        raise RunError(str(exc)) from None
    with session:
        return run_accuracy_on(session, spec, report, prepared=prepared)


def _accuracy_model(spec: AccuracySpec) -> tuple[ModelRef, list[np.ndarray] | None]:
    """The task's model and its dataset fitted to the model's inputs (no device needed); a
    model not in TFLite's format is fitted to the inputs its runtime reports, at load."""
    model = resolve_model(spec.task.model)
    if model.data is None:
        raise RunError(f"accuracy mode needs a model file (.tflite, .onnx, .pte), not "
                       f"{spec.task.model}")
    if model.backend != "tflite":
        return model, None
    try:
        return model, fit(spec.task.dataset, model_inputs(model.data, spec.input_shapes))
    except DatasetError as exc:
        raise RunError(str(exc)) from None


def fit_to_device(task: Task, inputs: list[dict[str, Any]]) -> list[np.ndarray]:
    """The dataset fitted to the inputs a loaded model's runtime reports."""
    try:
        return fit(task.dataset, inputs)
    except DatasetError as exc:
        raise RunError(str(exc)) from None


def run_accuracy_on(session: Session, spec: AccuracySpec, report: Reporter | None = None, *,
                    prepared: tuple[ModelRef, list[np.ndarray] | None] | None = None
                    ) -> AccuracyOutcome:
    """The same on an open session (its agent stays up for the next run); ``prepared``: the
    model and fitted dataset, when the caller has them."""
    say = report or (lambda ev, data: None)
    task = spec.task
    session.check_usable()
    settings = accuracy_settings(spec)  # before the device runs: the logs must be writable
    profile = session.profile
    model, arrays = prepared or _accuracy_model(spec)
    assert model.data is not None
    n = len(task.dataset)
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = {
        "schema": record.SCHEMA, "mode": "AccuracyOnly",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "board": profile.to_dict(),
        "model": {"spec": model.spec, "name": model.name, "backend": model.backend,
                  "sha256": model.sha256, "size": len(model.data)},
        "task": task.describe(), "telemetry": {},
        "transfers": {"model_bytes_sent": 0, "samples_bytes_sent": 0, "windows": 0,
                      "window_limit_bytes": spec.window_bytes}}
    client = session.client
    outputs: list[bytes] = []
    nonfinite: list[int] = []
    n_nonfinite = 0
    start = datetime.now(timezone.utc)
    try:
        rec["device"] = dict(session.info)
        rec["telemetry"]["before"] = client.telemetry()
        sha, sent = client.push_model(model.data, lambda d, t: say("push", {
            "what": "model", "done": d, "total": t}), fmt=model.backend)
        rec["transfers"]["model_bytes_sent"] = sent
        opts: dict[str, Any] = {"num_threads": spec.threads} if spec.threads else {}
        opts.update(spec.load_options)
        if spec.input_shapes:
            opts["input_shapes"] = spec.input_shapes
        details = client.load_model(model.backend, sha256=sha, options=opts)
        rec["model"]["details"] = details
        if arrays is None:  # an .onnx or .pte: fitted to what its runtime reports
            arrays = fit_to_device(task, details["inputs"])
        per_sample = sum(a[0].nbytes for a in arrays)
        window = max(1, min(n, spec.window_bytes // max(per_sample, 1)))
        rec["transfers"].update(window_samples=window, window_bytes=window * per_sample)
        check_labels(task, details["outputs"])
        if spec.loadgen == "official":
            outputs = _official_outputs(client, arrays, settings, out, rec, say)
        for lo in range(0 if spec.loadgen != "official" else n, n, window):
            hi = min(n, lo + window)
            w_sha, sent = client.push_samples([a[lo:hi] for a in arrays])
            rec["transfers"]["samples_bytes_sent"] += sent
            rec["transfers"]["windows"] += 1
            reply, outs = client.infer(w_sha)
            outputs.extend(outs)
            n_nonfinite += int(reply.get("nonfinite_count", 0))
            nonfinite.extend(lo + int(i) for i in reply.get("nonfinite", []))
            say("accuracy", {"done": hi, "total": n})
        rec["telemetry"]["after"] = client.telemetry()
    except AgentError as exc:
        if isinstance(exc, (AgentDied, AgentTimeout)):
            session.mark_dead(str(exc))
        raise RunError(f"{profile.name}: {exc}") from None
    except KeyboardInterrupt:
        session.mark_dead("an accuracy run on it was interrupted")
        raise
    end = datetime.now(timezone.utc)
    if spec.loadgen != "official":
        entries = [(i, i, data) for i, data in enumerate(outputs)]
        mlperf_logs.write_accuracy_json(out / "mlperf_log_accuracy.json", entries)
    result = _score(task, outputs, details, n_nonfinite, nonfinite)
    _write_logs(out, spec, settings, rec, result, start, end)
    say("done", {"out": str(out), "accuracy": result.result})
    return AccuracyOutcome(out, result, EXIT_VALID if result.passed else EXIT_INVALID,
                           outputs, rec)


def _official_outputs(client: Any, arrays: list[np.ndarray], settings: TestSettings, out: Path,
                      rec: dict[str, Any], say: Reporter) -> list[bytes]:
    """LoadGen's AccuracyOnly on the device over the whole dataset, pushed in the order
    LoadGen loads it; the outputs by dataset index, read from its mlperf_log_accuracy.json."""
    from edgeperf.run import official
    from edgeperf_agent.lgseq import accuracy_sample_sets

    n = len(arrays[0])
    order = accuracy_sample_sets(n, n, settings.qsl_rng_seed, settings.scenario)[0][0][:n]
    sha, sent = client.push_samples([a[order] for a in arrays])
    rec["transfers"]["samples_bytes_sent"] += sent
    lgs = dict(official.loadgen_settings(settings, effective_settings(
        settings, total_sample_count=n)), performance_sample_count=n)
    reply, files = official.run(client, lgs, samples=sha, sample_count=n, qsl_indices=order,
                                qsl_total=n, warmup_queries=settings.warmup_queries,
                                idle_timeout=120.0)
    detail = official.write_files(out, files)
    rec["driver"], rec["loadgen_version"] = official.DRIVERS["official"], str(
        detail.get("loadgen_version", "")).split(" @")[0] or None
    rec["scoring"] = {"by": "the task's metric on LoadGen's mlperf_log_accuracy.json",
                      "edgeperf": official.NOT_SCORED}
    by_idx: dict[int, bytes] = {}
    for e in mlperf_logs.parse_accuracy_json(out / "mlperf_log_accuracy.json"):
        by_idx.setdefault(e.qsl_idx, e.data)
    missing = [i for i in range(n) if i not in by_idx]
    if missing:
        raise RunError(f"LoadGen's accuracy log has no output for {len(missing)} of {n} "
                       f"samples (qsl_idx {missing[:10]})")
    say("accuracy", {"done": n, "total": n})
    return [by_idx[i] for i in range(n)]


def _score(task: Task, outputs: list[bytes], details: dict[str, Any], n_nonfinite: int,
           nonfinite: list[int]) -> AccuracyResult:
    res = AccuracyResult(task.metric.name, float("nan"), task.target, task.target_text,
                         False, len(outputs))
    if n_nonfinite:
        shown = ", ".join(map(str, nonfinite[:10])) + (", ..." if n_nonfinite > 10 else "")
        res.reasons.append(f"the model produced NaN or infinite outputs for {n_nonfinite} of "
                           f"{len(outputs)} samples (qsl_idx {shown})")
        return res
    try:
        res.value = float(score_outputs(task, decode_outputs(outputs, details["outputs"]),
                                        details["inputs"]))
    except MetricError as exc:
        res.reasons.append(f"the metric could not be computed: {exc}")
        return res
    res.passed = meets(task.metric, res.value, task.target)
    if not res.passed:
        res.reasons.append(f"{task.metric.name} {res.value:.6f} misses the target "
                           f"{task.target_text}")
    return res


def format_accuracy_txt(task: Task, r: AccuracyResult) -> str:
    value = "n/a" if np.isnan(r.value) else f"{r.value:.6f}"
    lines = [f"task     : {task.full_name} ({task.source})",
             f"model    : {task.model}",
             f"dataset  : {task.dataset.name}, {r.count} samples, sha256 "
             f"{task.dataset.sha256[:16]}",
             f"metric   : {r.metric} ({task.metric.description})",
             f"{r.metric:<9}: {value}",
             f"target   : {r.target_text}",
             f"result   : {r.result}"]
    lines += [f"reason   : {why}" for why in r.reasons]
    return "\n".join(lines) + "\n"


def _write_logs(out: Path, spec: AccuracySpec, settings: TestSettings, rec: dict[str, Any],
                r: AccuracyResult, start: datetime, end: datetime) -> None:
    task = spec.task
    n = r.count
    sut = f"edgeperf:{rec['model']['name']}@{rec['board']['name']}"
    (out / "accuracy.txt").write_text(format_accuracy_txt(task, r))
    rec.setdefault("driver", "edgeperf")
    if rec["driver"] == "edgeperf":  # else LoadGen's own files are there already
        _write_edgeperf_logs(out, settings, r, start, end, sut, task)
    eff = effective_settings(settings, total_sample_count=n)
    rec["settings"] = {"requested": settings.to_dict(), "effective": eff.to_dict()}
    rec["accuracy"] = r.to_dict()
    rec["result"], rec["valid"] = r.result, r.passed
    rec["files"] = {"summary": "mlperf_log_summary.txt", "detail": "mlperf_log_detail.txt",
                    "accuracy": "mlperf_log_accuracy.json", "accuracy_txt": "accuracy.txt"}
    record.write_record(out, rec)
    record_run_safely(out)  # the results store: the task's metric and the verdict


def _write_edgeperf_logs(out: Path, settings: TestSettings, r: AccuracyResult, start: datetime,
                         end: datetime, sut: str, task: Task) -> None:
    n = r.count
    mlperf_logs.write_summary(out / "mlperf_log_summary.txt", None, settings, sut)
    eff = effective_settings(settings, total_sample_count=n)
    gen_count, gen_spq, gen_duration = mlperf_logs.generated_queries(settings, eff)
    info = mlperf_logs.RunInfo(
        sut, start, end, generated_query_count=gen_count, generated_samples_per_query=gen_spq,
        generated_query_duration=gen_duration,
        total_sample_count=n, qsl_name=f"edgeperf:{task.full_name}",
        messages=[f"accuracy {r.line()}"],
        extra={"edgeperf_task": task.full_name, "edgeperf_accuracy_metric": r.metric,
               "edgeperf_accuracy_value": None if np.isnan(r.value) else r.value,
               "edgeperf_accuracy_target": r.target, "edgeperf_accuracy_result": r.result})
    mlperf_logs.write_detail(out / "mlperf_log_detail.txt", settings, None, info)
