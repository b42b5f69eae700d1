"""MLPerf Tiny's three procedures on a DUT: performance, accuracy, energy.

* Performance: 5 windows, each on a different input (the dataset's first five, as the
  runner's ``loop 5: download, infer``), each at least 10 s of timed inference. N comes from
  a calibration run on the window's input (grown until it lasts 0.1 s, then N = 1.1 x 10 s /
  its time per inference). Throughput of a window = N / ((t1 - t0) / 1e6) from the board's
  own ``m-lap-us`` stamps; the result is the median of the windows.
* Accuracy: every sample once (``infer 1 0``); Top-1 or AUC with edgeperf's metrics against
  the task's target.
* Energy: the same windows with the energy monitor on; the DUT's timestamp edges are the
  monitor's GPIO events, and a window's energy is the monitor's samples between the last two
  events (the runner's rule: earlier edges are start-up activity), divided by N, in uJ.

A window under 10 s, fewer than 5 windows, or a board that reset mid-procedure makes the
result INVALID with the rule it breaks; windows measured before a reset are kept.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeperf_firmware.dut import Dut, DutInfo, DutReset, InferReply

TINY_WINDOWS = 5
TINY_MIN_WINDOW_S = 10.0
MARGIN = 1.1  # N aims 10 % past the minimum, so jitter cannot drop a window under it
CALIBRATION_S = 0.1
MODES = ("performance", "accuracy", "energy")
Log = Callable[[str], None]
OnWindow = Callable[["Window", int], None]  # (the window just measured, windows asked for)


@dataclass(frozen=True)
class Sample:
    """One input as the board receives it, with the runner's y_labels.csv fields."""

    index: int
    file: str
    classes: int
    label: int
    data: bytes


@dataclass
class Window:
    index: int  # 1-based
    sample: int
    file: str
    n: int
    warmups: int
    seconds: float
    t0_us: int | None = None
    t1_us: int | None = None
    throughput: float | None = None  # inf./sec.
    results: list[float] = field(default_factory=list)
    energy_uj: float | None = None  # the whole window
    energy_per_inf_uj: float | None = None
    events: list[int] = field(default_factory=list)  # meter sample index of each GPIO event
    samples_j: list[float] = field(default_factory=list)  # the meter's energy samples


@dataclass
class ProcedureResult:
    mode: str
    valid: bool
    value: float | None  # median inf./sec., the metric, or median uJ/inf.
    unit: str
    reasons: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    dut: DutInfo | None = None
    metric: str = ""
    target: float | None = None
    passed: bool | None = None  # accuracy: the target reached
    count: int = 0  # accuracy: samples scored
    auc: float | None = None  # accuracy on a classifier: one-vs-rest AUC, as the runner prints
    outputs: list[list[float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # the runner's results.json
    out_dir: str = ""

    @property
    def result(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("records")
        d["result"] = self.result
        for w in d["windows"]:
            w.pop("samples_j")
        return d


def _stamp() -> str:
    return time.strftime("%m%d.%H%M%S")


def _load(dut: Dut, s: Sample, log: Log) -> None:
    log(f"{_stamp()} ulp-mlperf: Loading file {s.file} segment 0")
    dut.load(s.data)
    log(f"{_stamp()} ulp-mlperf: Load complete.")


def _infer(dut: Dut, n: int, warmups: int, log: Log) -> InferReply:
    reply = dut.infer(n, warmups)
    log(f"Running inference with {warmups}/{n} (warmup/measured) iterations ...   done")
    return reply


def _next_n(n: int, elapsed_s: float, goal_s: float) -> int:
    if elapsed_s <= 0:
        return n * 10
    return max(n + 1, min(n * 100, math.ceil(n * goal_s * 1.2 / elapsed_s)))


def calibrate(measure: Callable[[int], float], target_s: float) -> int:
    """N for a window of ``target_s`` x MARGIN: ``measure(n)`` times n inferences (s)."""
    n, elapsed = 1, 0.0
    for _ in range(10):
        elapsed = measure(n)
        if elapsed >= CALIBRATION_S:
            break
        n = _next_n(n, elapsed, CALIBRATION_S)
    if elapsed <= 0:
        raise ValueError("calibration measured no time for the inferences; the board's "
                         "timestamps do not advance")
    # the fewest inferences reaching MARGIN x target (1e-9: 10 x 1.1 is 11.000000000000002)
    return max(1, math.ceil(target_s * MARGIN * n / elapsed - 1e-9))


def _record(s: Sample, reply: InferReply | None, mode: str, **infer: Any) -> dict[str, Any]:
    """One entry of the runner's results.json (its y_labels.csv row, then ``infer``)."""
    body: dict[str, Any] = {}
    if reply is not None:
        if reply.t0_us is not None:
            body["start_time"], body["end_time"] = reply.t0_us, reply.t1_us
        body["results"] = reply.results
        if reply.elapsed_us is not None:
            body["elapsed_time"] = reply.elapsed_us
        body["total_inferences"] = 1
        body["iterations"], body["warmups"] = reply.n, reply.warmups
    body.update(infer)
    return {"file": s.file, "classes": str(s.classes), "class": str(s.label),
            "bytes_to_send": None, "stride": None, "total_length": None, "infer": body,
            "mode": mode}


def _window_rules(windows: list[Window], reasons: list[str], expected: int) -> None:
    for w in windows:
        if w.seconds < TINY_MIN_WINDOW_S:
            reasons.append(f"window {w.index} ran {w.seconds:.3f} s of inference, under MLPerf "
                           f"Tiny's minimum of {TINY_MIN_WINDOW_S:g} s a window")
    if len(windows) != TINY_WINDOWS:
        reasons.append(f"{len(windows)} window(s) measured, MLPerf Tiny needs exactly "
                       f"{TINY_WINDOWS}" + (f" (of {expected} asked for)"
                                            if expected != TINY_WINDOWS else ""))


# ---------------------------------------------------------------- performance


def performance(dut: Dut, samples: list[Sample], *, windows: int = TINY_WINDOWS,
                window_s: float = TINY_MIN_WINDOW_S, warmups: int = 10,
                log: Log | None = None, on_window: OnWindow | None = None) -> ProcedureResult:
    log = log or (lambda text: None)
    res = ProcedureResult("performance", False, None, "inf./sec.", dut=dut.info)
    for k in range(windows):
        s = samples[k % len(samples)]
        try:
            _load(dut, s, log)
            n = calibrate(lambda m: (dut.infer(m, 0).elapsed_us or 0) / 1e6, window_s)
            reply = _infer(dut, n, warmups, log)
        except DutReset as exc:
            res.reasons.append(f"window {k + 1}: {exc}")
            break
        us = reply.elapsed_us or 0
        w = Window(k + 1, s.index, s.file, n, warmups, us / 1e6, reply.t0_us, reply.t1_us,
                   n / (us / 1e6) if us > 0 else 0.0, reply.results)
        res.windows.append(w)
        if on_window:
            on_window(w, windows)
        res.records.append(_record(s, reply, "p", throughput=w.throughput))
        t = _stamp()
        log(f"{t} ulp-mlperf: Performance results for window {w.index}:")
        log(f"{t} ulp-mlperf:   # Inferences : {n:>13}")
        log(f"{t} ulp-mlperf:   Runtime      : {w.seconds:>10.3f} sec.")
        log(f"{t} ulp-mlperf:   Throughput   : {w.throughput:>10.3f} inf./sec.")
        log(f"{t} ulp-mlperf:   m-results    : {reply.results}")
    _window_rules(res.windows, res.reasons, windows)
    if res.windows:
        res.value = float(statistics.median(w.throughput for w in res.windows))
    res.valid = not res.reasons
    return res


# ---------------------------------------------------------------- accuracy


def _ovr_auc(outputs: np.ndarray, labels: np.ndarray) -> float | None:
    """Macro one-vs-rest AUC of the row-normalised scores (what the runner prints with
    scikit-learn's roc_auc_score(multi_class='ovr')); None when a class has no sample."""
    from edgeperf.tasks.metrics import auc

    sums = outputs.sum(axis=1, keepdims=True)
    probs = outputs / np.where(sums == 0, 1, sums)
    classes = range(outputs.shape[1])
    if any(not (labels == c).any() or (labels == c).all() for c in classes):
        return None
    return float(np.mean([auc(probs[:, c], (labels == c).astype(np.int64)) for c in classes]))


def score(task: Any, outputs: list[list[float]], samples: list[Sample],
          real_inputs: np.ndarray | None = None) -> tuple[float, float | None]:
    """(the task's metric, the runner's AUC line) from the boards' m-results vectors."""
    from edgeperf.tasks.metrics import reconstruction_error

    labels = np.array([s.label for s in samples], np.int64)
    out = np.array(outputs, np.float64)
    if task.metric.name == "top1":
        return task.metric.fn(out, labels), _ovr_auc(out, labels)
    if task.metric.name == "auc":
        if out.shape[1] == 1:  # the board's anomaly score, as Tiny's ad01 firmware prints it
            scores = out[:, 0]
        elif task.score == "reconstruction_error" and real_inputs is not None:
            scores = reconstruction_error(out, real_inputs[:len(out)])
        else:
            scores = out[:, -1]
        value = task.metric.fn(scores, labels)
        return value, value
    return task.metric.fn(out, labels), None


def accuracy(dut: Dut, task: Any, samples: list[Sample], *, log: Log | None = None,
             real_inputs: np.ndarray | None = None,
             progress: Callable[[int, int], None] | None = None) -> ProcedureResult:
    from edgeperf.tasks.metrics import meets

    log = log or (lambda text: None)
    res = ProcedureResult("accuracy", False, None, task.metric.name, dut=dut.info,
                          metric=task.metric.name, target=task.target)
    for i, s in enumerate(samples):
        try:
            _load(dut, s, log)
            reply = _infer(dut, 1, 0, log)
        except DutReset as exc:
            res.reasons.append(f"sample {i} of {len(samples)} ({s.file}): {exc}; "
                               f"{len(res.outputs)} sample(s) were scored before it")
            break
        res.outputs.append(reply.results)
        res.records.append(_record(s, reply, "a"))
        if progress:
            progress(i + 1, len(samples))
    res.count = len(res.outputs)
    if res.outputs:
        res.value, res.auc = score(task, res.outputs, samples[:res.count], real_inputs)
        res.passed = meets(task.metric, res.value, task.target)
    if res.count != len(samples):
        res.reasons.append(f"{res.count} of {len(samples)} samples scored: an accuracy run "
                           "needs every sample of the task once")
    res.valid = not res.reasons
    return res


# ---------------------------------------------------------------- energy


def _metered(dut: Dut, meter: Any, n: int, warmups: int, mark: str
             ) -> tuple[InferReply, list[int], np.ndarray, float]:
    """One ``infer`` with the monitor acquiring: (reply, event sample indices, energy of each
    sample in J, sampling period in s)."""
    meter.start(mark)
    time.sleep(getattr(meter, "lead_s", 0.05))
    try:
        reply = dut.infer(n, warmups)
    finally:
        time.sleep(getattr(meter, "settle_s", 0.05))  # the last edge reaches the stream
        meter.stop()
    events = [int(e.sample_index) for e in meter.events]
    if hasattr(meter, "energy_samples") and getattr(meter, "output", "") == "energy":
        joules, period = meter.energy_samples()  # the shield's own samples and clock
        return reply, events, joules, period
    trace = meter.trace()
    period = trace.interval_ns / 1e9 if trace.interval_ns else 0.0
    if not period:
        raise ValueError(f"energy mode needs the monitor's output in energy per sample "
                         f"(LPM01A: output=energy); {meter.url} gives instantaneous values")
    joules = np.asarray(trace.watts, np.float64) * period
    return reply, events, joules, period


def energy(dut: Dut, meter: Any, samples: list[Sample], *, windows: int = TINY_WINDOWS,
           window_s: float = TINY_MIN_WINDOW_S, warmups: int = 0,
           log: Log | None = None, on_window: OnWindow | None = None) -> ProcedureResult:
    log = log or (lambda text: None)
    res = ProcedureResult("energy", False, None, "uJ/inf.", dut=dut.info)
    dut.mode = "energy"  # timestamps are edges, not lines
    for k in range(windows):
        s = samples[k % len(samples)]

        def measure(m: int, mark: str = f"calibration {k + 1}") -> float:
            _, ev, _, period = _metered(dut, meter, m, 0, mark)
            return (ev[-1] - ev[-2]) * period if len(ev) >= 2 else 0.0

        try:
            _load(dut, s, log)
            n = calibrate(measure, window_s)
            reply, events, joules, period = _metered(dut, meter, n, warmups, f"window {k + 1}")
            log(f"Running inference with {warmups}/{n} (warmup/measured) iterations ...   done")
        except DutReset as exc:
            res.reasons.append(f"window {k + 1}: {exc}")
            break
        log(f"  Captured samples:{len(joules)} timestamps:{len(events)}")
        if len(events) < 2:
            res.reasons.append(f"window {k + 1}: the energy monitor saw {len(events)} timestamp "
                               "event(s), 2 are needed (before and after the timed loop); "
                               "check the DUT's timestamp line to the monitor's D7 input")
            continue
        i0, i1 = events[-2], events[-1]
        total = float(joules[i0:i1].sum())
        w = Window(k + 1, s.index, s.file, n, warmups, (i1 - i0) * period,
                   results=reply.results, energy_uj=total * 1e6,
                   energy_per_inf_uj=total * 1e6 / n, events=events,
                   samples_j=[float(x) for x in joules])
        res.windows.append(w)
        if on_window:
            on_window(w, windows)
        rec = _record(s, reply, "e")
        rec["power"] = {"samples": w.samples_j,
                        "timestamps": [[str(j), e] for j, e in enumerate(events)],
                        "extracted_power": None, "voltage": getattr(meter, "volts", None)}
        res.records.append(rec)
    _window_rules(res.windows, res.reasons, windows)
    if res.windows:
        res.value = float(statistics.median(w.energy_per_inf_uj for w in res.windows))
    res.valid = not res.reasons
    return res
