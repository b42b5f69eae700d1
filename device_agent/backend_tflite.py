"""The ``tflite`` backend: a .tflite model through LiteRT (ai_edge_litert) or tflite_runtime.

Load options, what TFLite's benchmark_model exposes: ``runtime`` (ai_edge_litert or
tflite_runtime; default the first importable), ``num_threads``, ``xnnpack`` (False: the
builtin kernels without the default XNNPACK delegate), ``delegate`` ({"path": library,
"options": {key: value}}: an external delegate, e.g. libedgetpu.so.1 for a Coral USB stick,
loaded with load_delegate), ``input_shapes`` (dynamic dimensions). This module must run on
Python 3.9.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backends import Backend, BackendError, ProfileUnsupported, check_samples, find_input
from .check import RUNTIME_MODULES


def _load_interpreter_module(prefer: Optional[str] = None):
    order = [m for m in RUNTIME_MODULES if prefer in (None, m[0])]
    errors = []
    for dist, modname in order:
        try:
            mod = __import__(modname, fromlist=["Interpreter"])
            return dist, mod
        except Exception as exc:  # noqa: BLE001
            errors.append("%s: %s" % (dist, exc))
    raise BackendError(
        "no TFLite runtime is importable on this device (%s); install one: "
        "'pip install ai-edge-litert' (numpy 2) or 'pip install tflite-runtime numpy<2' "
        "(Raspberry Pi OS)" % "; ".join(errors))


def _tensor_info(d: Dict[str, Any]) -> Dict[str, Any]:
    q = d.get("quantization", (0.0, 0))
    return {"name": d["name"], "index": int(d["index"]),
            "shape": [int(x) for x in d["shape"]],
            "shape_signature": [int(x) for x in d.get("shape_signature", d["shape"])],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": [float(q[0]), int(q[1])]}


def check_tflite_bytes(data: bytes) -> None:
    if len(data) < 8:
        raise BackendError("model is %d bytes: too short to be a TFLite flatbuffer" % len(data))
    if data[4:8] != b"TFL3":
        raise BackendError("model is not a TFLite flatbuffer (file identifier %r, expected "
                           "b'TFL3'); pass a .tflite file" % bytes(data[4:8]))


class TfliteBackend(Backend):
    name = "tflite"

    def __init__(self, path: str, num_threads: Optional[int] = None, xnnpack: bool = True,
                 runtime: Optional[str] = None,
                 input_shapes: Optional[Dict[str, List[int]]] = None,
                 delegate: Optional[Dict[str, Any]] = None) -> None:
        with open(path, "rb") as f:
            check_tflite_bytes(f.read(8))
        self.runtime, mod = _load_interpreter_module(runtime)
        kwargs: Dict[str, Any] = {"model_path": path}
        self.delegate = None
        if delegate:
            self.delegate = {"path": str(delegate["path"]),
                             "options": {str(k): str(v) for k, v in
                                         (delegate.get("options") or {}).items()}}
            kwargs["experimental_delegates"] = [self._load_delegate(mod)]
        if num_threads:
            kwargs["num_threads"] = int(num_threads)
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = \
                mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.xnnpack = bool(xnnpack)
        try:
            self.interp = mod.Interpreter(**kwargs)
            if input_shapes:
                self._resize(input_shapes)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendError("the runtime refused the model: %s. Check that the file is a "
                               "complete .tflite of builtin ops (re-push it, or re-export "
                               "it)" % str(exc).strip()) from None
        self.num_threads = num_threads
        self.inputs = [_tensor_info(d) for d in self.interp.get_input_details()]
        for info in self.inputs:  # a sample is one row of the batch
            info["sample_shape"] = list(info["shape"][1:])
        self.outputs = [_tensor_info(d) for d in self.interp.get_output_details()]
        self._per_sample: List[List[np.ndarray]] = []
        self._arrays: List[np.ndarray] = []

    def _load_delegate(self, mod: Any) -> Any:
        assert self.delegate is not None
        lib, opts = self.delegate["path"], self.delegate["options"]
        try:
            return mod.load_delegate(lib, opts or None)
        except (ValueError, OSError, RuntimeError) as exc:
            raise BackendError("the delegate library %s does not load (%s): install it on the "
                               "device (a Coral stick needs libedgetpu1-std), give its full "
                               "path, or check its options %s"
                               % (lib, " ".join(str(exc).split()), opts)) from None

    def _resize(self, shapes: Dict[str, List[int]]) -> None:
        """Set input shapes (dynamic dimensions) by input name, or "" for a single input."""
        details = self.interp.get_input_details()
        for name, shape in shapes.items():
            d = find_input(name, details, details)
            dims = [int(x) for x in shape]
            signature = [int(x) for x in d.get("shape_signature", d["shape"])]
            if len(dims) != len(signature) or min(dims) < 1:
                raise BackendError("input %r has shape %s; an input_shape for it needs %d "
                                   "positive sizes, got %s"
                                   % (d["name"], signature, len(signature), dims))
            self.interp.resize_tensor_input(d["index"], dims)

    @property
    def batch(self) -> int:
        shape = self.inputs[0]["shape"] if self.inputs else [1]
        return int(shape[0]) if shape else 1

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        mod = __import__(self.runtime)
        d.update(runtime=self.runtime,
                 runtime_version=str(getattr(mod, "__version__", "unknown")),
                 xnnpack=self.xnnpack, num_threads=self.num_threads, batch=self.batch,
                 delegate=self.delegate)
        return d

    def bind(self, samples: Optional[Sequence[np.ndarray]]) -> None:
        """Check the sample set against the model and pre-slice one view per sample."""
        self._arrays = check_samples("tflite", samples, self.inputs)
        per_input = []
        for arr, info in zip(self._arrays, self.inputs):
            want = info["shape"]
            per_sample = [1] + list(want[1:]) if want else []
            if want and want[0] != 1:
                per_input.append(None)  # batched model: samples are gathered per query
            else:
                per_input.append([arr[i:i + 1].reshape(per_sample) for i in range(len(arr))])
        self._per_sample = per_input  # type: ignore[assignment]

    def _output_readers(self) -> List[Tuple[Callable[[], np.ndarray], np.ndarray]]:
        """(view getter, preallocated array) per output: a query's outputs are read into
        memory allocated once, before the timed loop (the view is dropped before the next
        invoke, as the runtime requires)."""
        readers = [(self.interp.tensor(o["index"]), np.empty(o["shape"], dtype=o["dtype"]))
                   for o in self.outputs]
        self.output_buffers = [out for _, out in readers]
        return readers

    def _batch_buffers(self) -> List[Tuple[int, np.ndarray, np.ndarray]]:
        """(input index, sample array, batch buffer) per input; the buffer starts filled
        with real samples, so the padding rows of a partial batch are real data too."""
        n = self.batch
        plan = []
        for info, arr in zip(self.inputs, self._arrays):
            rows = np.arange(n) % len(arr)
            plan.append((info["index"], arr, np.ascontiguousarray(arr[rows])))
        return plan

    def invoker(self) -> Callable[[int], Any]:
        """One sample: set inputs, invoke, read outputs. A batched model gets the sample in
        row 0; the other rows are padding (never counted, never scored)."""
        interp = self.interp
        set_tensor, invoke, copyto = interp.set_tensor, interp.invoke, np.copyto
        readers = self._output_readers()
        if self.batch != 1:
            plan = self._batch_buffers()

            def run_padded(s: int) -> None:
                for tidx, arr, buf in plan:
                    buf[0] = arr[s]
                    set_tensor(tidx, buf)
                invoke()
                for view, out in readers:
                    copyto(out, view())
            return run_padded
        if len(self.inputs) == 1 and len(readers) == 1:
            views, i0 = self._per_sample[0], self.inputs[0]["index"]
            (view0, out0), = readers

            def run1(s: int) -> None:
                set_tensor(i0, views[s])
                invoke()
                copyto(out0, view0())
            return run1
        pairs = list(zip([i["index"] for i in self.inputs], self._per_sample))

        def run(s: int) -> None:
            for idx, views in pairs:
                set_tensor(idx, views[s])
            invoke()
            for view, out in readers:
                copyto(out, view())
        return run

    def gather_invoker(self) -> Optional[Callable[[Any, int, int], Any]]:
        """For a batched model: ``f(order, base, count)`` answers the ``count`` (<= batch)
        distinct samples ``order[base:base + count]`` in one invoke; a partial batch keeps
        padding rows, which are neither counted nor scored. None for a batch of 1."""
        n = self.batch
        if n == 1:
            return None
        interp = self.interp
        set_tensor, invoke, copyto, take = interp.set_tensor, interp.invoke, np.copyto, np.take
        readers = self._output_readers()
        plan = [(tidx, arr, buf, [buf[:k] for k in range(n + 1)])
                for tidx, arr, buf in self._batch_buffers()]

        def run_batch(order: Any, base: int, count: int) -> None:
            idx = order[base:base + count]
            for tidx, arr, buf, heads in plan:
                take(arr, idx, axis=0, out=heads[count])
                set_tensor(tidx, buf)
            invoke()
            for view, out in readers:
                copyto(out, view())
        return run_batch

    def outputs_fn(self) -> Callable[[int], List[np.ndarray]]:
        """One sample's outputs, copied; a batched model answers the sample in row 0 (the
        other rows are padding), so row 0 is returned."""
        invoke, get_tensor = self.invoker(), self.interp.get_tensor
        outs = [o["index"] for o in self.outputs]
        rows = self.batch != 1

        def outputs(sample: int) -> List[np.ndarray]:
            invoke(sample)
            got = [get_tensor(o) for o in outs]
            return [np.ascontiguousarray(a[:1] if rows else a) for a in got]
        return outputs

    def release(self) -> None:
        self._per_sample, self._arrays = [], []

    def profile_ops(self, samples: Sequence[int]) -> Dict[str, Any]:
        mod = __import__(self.runtime)
        raise ProfileUnsupported(
            "%s %s's Python Interpreter exposes no per-operator profiler (no op timings "
            "reach Python); TFLite's benchmark_model --graph=MODEL --enable_op_profiling=true "
            "prints one on the device" % (self.runtime, getattr(mod, "__version__", "")))


