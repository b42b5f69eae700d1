"""The one Backend contract, the ``synthetic`` backend, and the choice among the others.

A backend turns a sample index into the work of answering it (set inputs, invoke, read
outputs) as one plain callable, built before the timed loop starts so that the loop itself
does nothing but call it. Each runtime has its own module behind this contract, imported
only when a model asks for it: backend_tflite (LiteRT / tflite_runtime), backend_onnx (ONNX
Runtime), backend_executorch (ExecuTorch). None of them changes the scenario loops.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .check import available_runtimes  # noqa: F401 - re-exported


class BackendError(Exception):
    """The model or its inputs cannot be used; the message names the problem and the fix."""


class Backend:
    name = "base"
    inputs: List[Dict[str, Any]] = []
    outputs: List[Dict[str, Any]] = []

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.name, "inputs": self.inputs, "outputs": self.outputs}

    def bind(self, samples: Optional[Sequence[np.ndarray]]) -> None:
        """Prepare the per-sample inputs (outside any timed region)."""

    def invoker(self) -> Callable[[int], Any]:
        raise NotImplementedError

    batch = 1  # samples the model takes in one invoke
    # the arrays the invoker built last copies a query's outputs into (allocated with it,
    # before any timed region); official LoadGen's responses point into them
    output_buffers: List[np.ndarray] = []

    def gather_invoker(self) -> Optional[Callable[[Any, int, int], Any]]:
        """``f(order, base, count)`` answering ``count`` <= batch distinct samples in one
        call, or None when the model takes one sample at a time."""
        return None

    def output_of(self, sample: int) -> bytes:
        """The raw output bytes for one sample (accuracy mode; never timed)."""
        return b"".join(a.tobytes() for a in self.outputs_fn()(sample))

    def outputs_fn(self) -> Callable[[int], List[np.ndarray]]:
        """A callable giving one sample's output tensors, copied (accuracy mode; untimed)."""
        return lambda sample: []

    def release(self) -> None:
        """Drop references to the bound sample set, so that its memory can be freed."""

    def first_inference(self, sample: int) -> int:
        """Time one invoke of ``sample``, the first after the model is loaded (a runtime's
        lazy set-up lands here); never a scored latency."""
        invoke = self.invoker()
        t0 = time.perf_counter_ns()
        invoke(sample)
        return time.perf_counter_ns() - t0

    def profile_ops(self, samples: Sequence[int]) -> Dict[str, Any]:
        """Per-operator times over ``samples`` (after the timed run, never during it):
        ``op_table(...)``; ProfileUnsupported where the runtime offers no profiler."""
        raise ProfileUnsupported("the %s backend has no operators to profile" % self.name)


def find_input(name: str, inputs: Sequence[Dict[str, Any]],
               fed: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The input an input_shape names: by name, or "" for the model's only fed input."""
    if name == "" and len(fed) == 1:
        return fed[0]
    for info in inputs:
        if info["name"] == name:
            return info
    raise BackendError("input_shape names input %r, but the model's inputs are: %s"
                       % (name, ", ".join(repr(i["name"]) for i in inputs)))


def check_samples(backend: str, samples: Optional[Sequence[np.ndarray]],
                  inputs: Sequence[Dict[str, Any]]) -> List[np.ndarray]:
    """The sample set, checked against the inputs it feeds: one array per input, samples
    along axis 0, each of the input's dtype and ``sample_shape``."""
    if samples is None:
        raise BackendError("the %s backend needs a sample set; push one first" % backend)
    if len(samples) != len(inputs):
        raise BackendError("sample set has %d tensors but the model takes %d fed inputs (%s)"
                           % (len(samples), len(inputs), ", ".join(i["name"] for i in inputs)))
    for arr, info in zip(samples, inputs):
        want = list(info["sample_shape"])
        if list(arr.shape[1:]) != want or np.dtype(info["dtype"]) != arr.dtype:
            raise BackendError(
                "sample set does not fit input %r: samples are %s %s, the model wants %s %s "
                "per sample; regenerate the sample set for this model"
                % (info["name"], arr.dtype.name, list(arr.shape[1:]), info["dtype"], want))
    return list(samples)


class ProfileUnsupported(BackendError):
    """The runtime exposes no per-operator profile; the message says what does."""


OP_COLUMNS = ("node", "op_type", "provider", "calls", "total_ns")
MAX_OP_ROWS = 4000


def op_table(source: str, runs: int, rows: Sequence[Tuple[str, str, str, int, int]],
             containers: Sequence[str] = ()) -> Dict[str, Any]:
    """A per-operator profile as the agent replies it: rows by total time, largest first.
    ``containers``: operator types whose time holds other rows' (control flow), left out
    of the total."""
    ordered = sorted(([str(n), str(t), str(p), int(c), int(ns)] for n, t, p, c, ns in rows),
                     key=lambda r: (-r[4], r[0]))
    return {"source": source, "runs": int(runs), "columns": list(OP_COLUMNS),
            "containers": list(containers),
            "total_ns": sum(r[4] for r in ordered if r[1] not in containers),
            "node_count": len(ordered),
            "rows": ordered[:MAX_OP_ROWS], "truncated": len(ordered) > MAX_OP_ROWS}


class SyntheticBackend(Backend):
    """``null`` does no work; ``busy:<us>`` spins for a known duration (calibration);
    ``sleep:<us>`` sleeps for it, leaving the core free (many emulated boards on one host)."""

    name = "synthetic"

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.busy_ns = self.sleep_ns = 0
        if kind == "null":
            pass
        elif kind.startswith(("busy:", "sleep:")):
            what, _, value = kind.partition(":")
            try:
                us = float(value)
            except ValueError:
                us = -1.0
            if not 0.001 <= us <= 60e6:
                raise BackendError("synthetic model %r: %s needs a positive duration in "
                                   "microseconds (0.001 to 60e6), e.g. synthetic:%s:100"
                                   % (kind, what, what))
            if what == "busy":
                self.busy_ns = int(round(us * 1000))
            else:
                self.sleep_ns = int(round(us * 1000))
        else:
            raise BackendError("unknown synthetic model %r; use synthetic:null, "
                               "synthetic:busy:<microseconds> or "
                               "synthetic:sleep:<microseconds>" % kind)

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d.update(kind=self.kind, busy_ns=self.busy_ns, sleep_ns=self.sleep_ns,
                 runtime="synthetic", batch=1)
        return d

    def invoker(self) -> Callable[[int], Any]:
        if self.sleep_ns:
            seconds = self.sleep_ns / 1e9
            pause = time.sleep

            def sleep(sample: int) -> None:
                pause(seconds)  # at least this long: the OS may wake the thread later
            return sleep
        if not self.busy_ns:
            def null(sample: int) -> None:
                return None
            return null
        busy_ns = self.busy_ns
        clock = time.perf_counter_ns

        def busy(sample: int) -> None:
            end = clock() + busy_ns
            while clock() < end:
                pass
        return busy


BACKENDS = ("tflite", "onnx", "executorch", "synthetic")
SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx", "executorch": ".pte"}


def import_runtime(spec: Dict[str, Any]) -> None:
    """Import the runtime a load_model names (once per process), so that the model's init
    time is its load and allocation only, as benchmark_model's Init is; BackendError names
    the install when it is missing."""
    kind, opts = spec.get("backend"), spec.get("options") or {}
    if kind == "tflite":
        from .backend_tflite import _load_interpreter_module

        _load_interpreter_module(opts.get("runtime"))
    elif kind == "onnx":
        from .backend_onnx import load_ort

        load_ort()
    elif kind == "executorch":
        from .backend_executorch import load_runtime

        load_runtime()


def make_backend(spec: Dict[str, Any], model_path: Optional[str]) -> Backend:
    kind = spec.get("backend")
    if kind == "synthetic":
        return SyntheticBackend(str(spec.get("kind", "null")))
    if kind not in SUFFIXES:
        raise BackendError("unknown backend %r; this agent knows %s" % (kind, ", ".join(BACKENDS)))
    if not model_path:
        raise BackendError("load_model: no model with that hash is on the device; push it first")
    opts = spec.get("options") or {}
    if kind == "tflite":
        from .backend_tflite import TfliteBackend

        return TfliteBackend(model_path, num_threads=opts.get("num_threads"),
                             xnnpack=opts.get("xnnpack", True), runtime=opts.get("runtime"),
                             input_shapes=opts.get("input_shapes"),
                             delegate=opts.get("delegate"))
    if kind == "onnx":
        from .backend_onnx import OnnxBackend

        return OnnxBackend(model_path, num_threads=opts.get("num_threads"),
                           providers=opts.get("providers"),
                           graph_optimization=opts.get("graph_optimization"),
                           input_shapes=opts.get("input_shapes"), state=opts.get("state"))
    from .backend_executorch import ExecutorchBackend

    return ExecutorchBackend(model_path, input_shapes=opts.get("input_shapes"),
                             state=opts.get("state"), num_threads=opts.get("num_threads"))


def __getattr__(name: str) -> Any:
    """``TfliteBackend`` and ``check_tflite_bytes`` where they always were (imported lazily:
    a device without numpy's TFLite runtime still loads this module)."""
    if name in ("TfliteBackend", "check_tflite_bytes"):
        from . import backend_tflite

        return getattr(backend_tflite, name)
    raise AttributeError(name)
