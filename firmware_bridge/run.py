"""The bridge's entry: one MLPerf Tiny procedure on a board, its Tiny files in a run directory.

``run_procedure(board_port, baud, mode, task, out_dir, meter=None, report=None)`` opens the
board (behind the interface board in energy mode), identifies it, checks that its model is
the task's, runs the procedure, writes results.txt, log.txt and results.json (the runner's)
and bridge.json (edgeperf's record of the same, every raw value), and returns the
:class:`ProcedureResult` whose fields edgeperf's outputs log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf_firmware import procedures, protocol, tiny_results
from edgeperf_firmware.dut import Dut, DutError, InterfaceDut
from edgeperf_firmware.procedures import ProcedureResult, Sample

# edgeperf's built-in tasks and the MLPerf Tiny model ids whose firmware runs them
TASK_MODELS = {"ic-digits": "ic01", "ad-synthetic": "ad01"}
Reporter = Callable[[str, dict[str, Any]], None]


def task_inputs(task: Any) -> tuple[list[Sample], np.ndarray]:
    """The task's samples as the board takes them, and their real values. As Tiny's reference
    for the task's model id (protocol.TINY_IO): ic01 takes an int8 model's input quantized as
    TFLite's QUANTIZE does, sent as uint8 = int8 + 128; ad01 takes the real input values as
    float32 little-endian (the runner's AD .bin files: it sends ``bytes_to_send`` of them a
    sample) and quantizes them itself."""
    from edgeperf.models.tflite_reader import read_model
    from edgeperf.tasks.datasets import fit, real_values

    data = Path(task.model).read_bytes()
    details = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                "quantization": list(t.quantization)} for t in read_model(data).inputs]
    if len(details) != 1:
        raise DutError(f"task {task.full_name}: a Tiny board takes one input tensor, the model "
                       f"has {len(details)}")
    arrays = fit(task.dataset, details)[0]  # checks the shapes either way
    real = real_values(task.dataset, details)
    io = protocol.TINY_IO.get(TASK_MODELS.get(task.name, ""))
    if io is not None and io.input_kind == "float32":
        arrays = real.astype("<f4")  # the dataset's float32 values, exactly
    labels = np.asarray(task.dataset.labels).reshape(-1)
    classes = int(labels.max()) + 1 if labels.dtype.kind in "iu" else 0
    samples = [Sample(i, f"{task.name}_{i:05d}.bin", classes, int(labels[i]),
                      _board_bytes(arrays[i])) for i in range(len(labels))]
    return samples, real


def _board_bytes(x: np.ndarray) -> bytes:
    raw = np.ascontiguousarray(x).tobytes()
    return protocol.encode_int8(raw) if x.dtype == np.int8 else raw


def _tenths(say: Reporter, done: int, total: int) -> None:
    """An accuracy event every tenth of the samples (a log gets ten lines, not 360)."""
    if done == total or done % max(1, total // 10) == 0:
        say("accuracy", {"done": done, "total": total})


def open_dut(port: str, baud: int, mode: str, *, interface: bool | None = None,
             log: Callable[[str], None] | None = None, **kw: Any) -> Dut:
    cls = InterfaceDut if (mode == "energy" if interface is None else interface) else Dut
    return cls(port, baud, log=log, **kw)


def run_procedure(board_port: str, baud: int, mode: str, task: Any, out_dir: str | Path,
                  meter: Any = None, report: Reporter | None = None, *,
                  interface: bool | None = None, windows: int = procedures.TINY_WINDOWS,
                  window_s: float = procedures.TINY_MIN_WINDOW_S, warmups: int | None = None,
                  line_timeout: float = protocol.LINE_TIMEOUT_S,
                  infer_timeout: float = protocol.INFER_TIMEOUT_S,
                  boot_wait: float = 0.5) -> ProcedureResult:
    """Run ``mode`` (performance | accuracy | energy) of ``task`` (a Task or a task spec such
    as ``ic-digits``) on the board at ``board_port``. Raises DutError when nothing could be
    measured (no board, wrong baud, wrong model); a board that resets mid-procedure gives an
    INVALID result with the reason and the windows it completed."""
    if mode not in procedures.MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(procedures.MODES)}")
    if mode == "energy" and meter is None:
        raise ValueError("energy mode needs an energy monitor (meter=, e.g. an LPM01A with "
                         "output=energy and eventsrc d7 fal)")
    say = report or (lambda event, data: None)
    if isinstance(task, str):
        from edgeperf.tasks.registry import load_task

        task = load_task(task, lambda text: say("task", {"message": text}))
    samples, real = task_inputs(task)
    log_lines: list[str] = []

    def log(text: str) -> None:
        log_lines.append(text)
        say("log", {"text": text})

    with open_dut(board_port, baud, mode, interface=interface, log=log,
                  line_timeout=line_timeout, infer_timeout=infer_timeout) as dut:
        info = dut.identify(boot_wait)
        want = TASK_MODELS.get(task.name)
        if want and info.model != want:
            raise DutError(f"{board_port}: the board runs model {info.model} but task "
                           f"{task.name} needs {want}; flash the {want} firmware or pick the "
                           "task that fits it", "profile", f"m-model-[{info.model}]")
        say("phase", {"mode": mode, "board": info.name, "model": info.model,
                      "windows": windows, "window_s": window_s, "samples": len(samples)})

        def on_window(w: procedures.Window, total: int) -> None:
            say("window", {"mode": mode, "index": w.index, "total": total, "n": w.n,
                           "seconds": w.seconds, "throughput": w.throughput,
                           "energy_per_inf_uj": w.energy_per_inf_uj})

        if mode == "performance":
            result = procedures.performance(dut, samples, windows=windows, window_s=window_s,
                                            warmups=10 if warmups is None else warmups, log=log,
                                            on_window=on_window)
        elif mode == "accuracy":
            result = procedures.accuracy(dut, task, samples, log=log, real_inputs=real,
                                         progress=lambda d, t: _tenths(say, d, t))
        else:
            result = procedures.energy(dut, meter, samples, windows=windows, window_s=window_s,
                                       warmups=0 if warmups is None else warmups, log=log,
                                       on_window=on_window)
    out = Path(out_dir)
    tiny_results.write(out, result, log_lines)
    result.out_dir = str(out)
    record = {"schema": "edgeperf-firmware-bridge/1", "port": board_port, "baud": baud,
              "task": task.full_name, **result.to_dict()}
    (out / "bridge.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    say("done", {"out": str(out), "result": result.result, "value": result.value})
    return result
