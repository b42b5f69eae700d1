"""The ``executorch`` backend: .pte programs through ExecuTorch's Python runtime
(``executorch.runtime``: the C++ runtime with the portable kernels and the delegates its
wheel was built with, XNNPACK among them).

A program's method (``forward``) names no tensors: its inputs are ``input_0``, ``input_1``...
and its outputs ``output_0``..., each with the sizes and dtype of its MethodMeta. Shapes are
the program's own (memory-planned when exported); ``input_shapes`` may set others where the
program was exported with dynamic dimensions, and the first inference says so when it was
not. An input of shape [1, ...] takes samples of shape [...], any other its whole shape (no
batch is assumed: a [4, 64] input is one sample). ``state`` ({"output_1": "input_1"}) feeds
an output into an input of the next invoke, zeros first. ``num_threads`` sets the size of
the XNNPACK delegate's thread pool.

Inputs are torch tensors made from the sample set's arrays before the timed loop (views:
no copy), one argument list a sample; outputs are copied into arrays allocated with the
invoker. ``profile_ops`` loads the program a second time with ETDump on, after the timed
run, and reads it with ExecuTorch's Inspector (executorch.devtools). Python 3.9.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backends import (Backend, BackendError, ProfileUnsupported, check_samples, find_input,
                       op_table)

INSTALL = ("pip install torch executorch (torch's CPU build: --index-url "
           "https://download.pytorch.org/whl/cpu)")
# c10::ScalarType codes as MethodMeta reports them
DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
          6: "float32", 7: "float64", 11: "bool"}
PROFILE_WARMUP = 10
CONTAINERS = ("Method::execute", "DELEGATE_CALL")  # their time holds the other rows'


def load_runtime():
    try:
        import executorch.runtime as et
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is named
        raise BackendError("ExecuTorch's runtime is not importable on this device (%s: %s); "
                           "install it there: %s" % (type(exc).__name__,
                                                     str(exc).strip().splitlines()[0]
                                                     if str(exc).strip() else "", INSTALL)) \
            from None
    return et, torch


def check_pte_bytes(head: bytes) -> None:
    if len(head) < 8 or head[4:6] != b"ET" or not head[6:8].isdigit():
        raise BackendError("model is not an ExecuTorch program (file identifier %r, expected "
                           "ET and a version); export it with executorch's to_executorch()"
                           % bytes(head[4:8]))


def _version() -> str:
    try:
        from importlib import metadata
        return metadata.version("executorch")
    except Exception:  # noqa: BLE001
        return "unknown"


class ExecutorchBackend(Backend):
    name = "executorch"

    def __init__(self, path: str, input_shapes: Optional[Dict[str, List[int]]] = None,
                 state: Optional[Dict[str, str]] = None, num_threads: Optional[int] = None,
                 method: str = "forward") -> None:
        with open(path, "rb") as f:
            check_pte_bytes(f.read(8))
        et, torch = load_runtime()
        self.torch, self.path, self.method_name = torch, path, method
        self.runtime, self.runtime_version = "executorch", _version()
        self.num_threads = int(num_threads) if num_threads else None
        if self.num_threads:
            from executorch.extension.pybindings import portable_lib
            portable_lib._unsafe_reset_threadpool(self.num_threads)
        try:
            self.program = et.Runtime.get().load_program(
                path, verification=et.Verification.InternalConsistency)
            names = sorted(self.program.method_names)
            if method not in names:
                raise BackendError("the program has no method %r (it has: %s)"
                                   % (method, ", ".join(names)))
            self.method = self.program.load_method(method)
        except RuntimeError as exc:
            missing, have = self._missing_delegates(et)
            if missing:
                raise BackendError(
                    "ExecuTorch %s cannot load the program: it was lowered to %s, which this "
                    "runtime does not have (it has: %s); export it for one of those (e.g. "
                    "XNNPACK's partitioner), or install an ExecuTorch built with %s"
                    % (self.runtime_version, ", ".join(missing), ", ".join(have) or "none",
                       " and ".join(missing))) from None
            raise BackendError("ExecuTorch %s cannot load the program: %s. A truncated or "
                               "corrupt .pte, or one that needs an operator this runtime was "
                               "built without: re-push it, or export it again for this "
                               "runtime" % (self.runtime_version, " ".join(str(exc).split()))) \
                from None
        meta = self.method.metadata
        self._all_inputs = [self._info(meta.input_tensor_meta(k), "input_%d" % k, k)
                            for k in range(meta.num_inputs())]
        self.outputs = [self._info(meta.output_tensor_meta(k), "output_%d" % k, k)
                        for k in range(meta.num_outputs())]
        self._state_spec = {str(k): str(v) for k, v in (state or {}).items()}
        self._set_shapes(input_shapes or {})
        ins = {i["name"]: i for i in self._all_inputs}
        outs = {o["name"]: o for o in self.outputs}
        for o, i in self._state_spec.items():
            if o not in outs or i not in ins:
                raise BackendError("state %s=%s: the program's outputs are %s and its inputs "
                                   "%s" % (o, i, ", ".join(outs), ", ".join(ins)))
            if outs[o]["dtype"] != ins[i]["dtype"] or outs[o]["shape"] != ins[i]["shape"]:
                raise BackendError("state %s=%s: output %s %s does not fit input %s %s"
                                   % (o, i, outs[o]["dtype"], outs[o]["shape"],
                                      ins[i]["dtype"], ins[i]["shape"]))
        stated = set(self._state_spec.values())
        self.state = [dict(i, fed_by=o) for o, n in self._state_spec.items() for i in
                      self._all_inputs if i["name"] == n]
        self.inputs = [i for i in self._all_inputs if i["name"] not in stated]
        for info in self.inputs:
            info["sample_shape"] = self.sample_shape(info)
        self._args: List[List[Any]] = []
        self._arrays: List[np.ndarray] = []

    def _missing_delegates(self, et: Any) -> Tuple[List[str], List[str]]:
        """The delegates (backend ids, "...Backend") the program names that this runtime
        has not registered, and those it has. The ids are strings in the program's
        flatbuffer; only a failed load asks, to name what is missing."""
        try:
            have = sorted(et.Runtime.get().backend_registry.registered_backend_names)
            with open(self.path, "rb") as f:
                data = f.read()
        except (AttributeError, OSError, RuntimeError):
            return [], []
        named = sorted({m.decode("ascii") for m in re.findall(rb"[A-Z][A-Za-z0-9_]{1,62}Backend",
                                                                data)})
        return [n for n in named if n not in have], have

    @staticmethod
    def _info(t: Any, name: str, index: int) -> Dict[str, Any]:
        code = int(t.dtype())
        if code not in DTYPES:
            raise BackendError("%s has ExecuTorch dtype code %d, which edgeperf does not feed"
                               % (name, code))
        shape = [int(d) for d in t.sizes()]
        return {"name": name, "index": index, "dtype": DTYPES[code], "shape": shape,
                "shape_signature": list(shape), "quantization": [0.0, 0]}

    def _set_shapes(self, shapes: Dict[str, List[int]]) -> None:
        fed = [i for i in self._all_inputs if i["name"] not in set(self._state_spec.values())]
        for name, dims in shapes.items():
            info = find_input(name, self._all_inputs, fed)
            dims = [int(d) for d in dims]
            if len(dims) != len(info["shape"]) or min(dims or [1]) < 1:
                raise BackendError("input %r has shape %s; an input_shape for it needs %d "
                                   "positive sizes, got %s" % (info["name"], info["shape"],
                                                               len(info["shape"]), dims))
            info["shape"] = dims

    def sample_shape(self, info: Dict[str, Any]) -> List[int]:
        shape = info["shape"]
        return list(shape[1:]) if shape and shape[0] == 1 else list(shape)

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d.update(runtime=self.runtime, runtime_version=self.runtime_version,
                 method=self.method_name, num_threads=self.num_threads, batch=1,
                 state=self.state)
        return d

    def bind(self, samples: Optional[Sequence[np.ndarray]]) -> None:
        arrays = check_samples("executorch", samples, self.inputs)
        per_input = []
        for arr, info in zip(arrays, self.inputs):
            tensor = self.torch.from_numpy(np.ascontiguousarray(arr))
            per_input.append([tensor[i].reshape(info["shape"]) for i in range(len(arr))])
        self._arrays = arrays
        order = {i["name"]: k for k, i in enumerate(self._all_inputs)}
        zeros = {s["name"]: self.torch.zeros(s["shape"], dtype=getattr(self.torch, s["dtype"]))
                 for s in self.state}
        slots = [i["name"] for i in self._all_inputs]
        fed = {i["name"]: views for i, views in zip(self.inputs, per_input)}
        n = len(samples[0]) if samples else 0
        self._args = [[fed[name][s] if name in fed else zeros[name] for name in slots]
                      for s in range(n)]
        self._state_slots = [(order[i], int(o.split("_")[1]))
                             for o, i in self._state_spec.items()]

    def _execute(self, args: List[Any]) -> List[Any]:
        try:
            return self.method.execute(args)
        except RuntimeError as exc:
            raise BackendError("ExecuTorch failed to run the program: %s (input shapes other "
                               "than the exported ones need a program exported with dynamic "
                               "dimensions)" % " ".join(str(exc).split())) from None

    def first_inference(self, sample: int) -> int:
        """The program's first execute, timed; it also sizes the output buffers."""
        t0 = time.perf_counter_ns()
        outs = self._execute(list(self._args[sample]))
        ns = time.perf_counter_ns() - t0
        self._first_outs = outs
        return ns

    def invoker(self) -> Callable[[int], Any]:
        outs0 = getattr(self, "_first_outs", None)
        if outs0 is None:
            outs0 = self._execute(list(self._args[0]))  # untimed: sizes the output buffers
        self._first_outs = None
        self.output_buffers = [np.empty(tuple(o.shape), o.numpy().dtype) for o in outs0]
        bufs = list(enumerate(self.output_buffers))
        execute, args_of, copyto = self.method.execute, self._args, np.copyto
        if not self._state_slots:
            def run(s: int) -> None:
                outs = execute(args_of[s])
                for k, out in bufs:
                    copyto(out, outs[k].numpy())
            return run
        slots = self._state_slots
        carried: Dict[int, Any] = {}

        def run_state(s: int) -> None:
            args = list(args_of[s])
            for slot, value in carried.items():
                args[slot] = value
            outs = execute(args)
            for k, out in bufs:
                copyto(out, outs[k].numpy())
            for slot, k in slots:
                carried[slot] = outs[k].clone()
        return run_state

    def outputs_fn(self) -> Callable[[int], List[np.ndarray]]:
        invoke = self.invoker()
        bufs = self.output_buffers

        def outputs(sample: int) -> List[np.ndarray]:
            invoke(sample)
            return [b.copy() for b in bufs]
        return outputs

    def release(self) -> None:
        self._args, self._arrays = [], []

    def profile_ops(self, samples: Sequence[int]) -> Dict[str, Any]:
        """ETDump of a second load of the program (never the timed one), read by the
        Inspector: each operator or delegated kernel, its calls and time; its first runs
        (up to 10) are the profile's own warm-up and left out."""
        try:
            from executorch.devtools import Inspector
            from executorch.extension.pybindings import portable_lib
        except Exception as exc:  # noqa: BLE001
            raise ProfileUnsupported(
                "ExecuTorch's Inspector (executorch.devtools) does not import here (%s: %s); "
                "it needs pandas and tabulate on the device: pip install pandas tabulate"
                % (type(exc).__name__, exc)) from None
        warm = min(PROFILE_WARMUP, len(samples))
        tmp = tempfile.mkdtemp(prefix="edgeperf-etdump-")
        try:
            module = portable_lib._load_for_executorch(self.path, enable_etdump=True,
                                                       debug_buffer_size=0)
            carried: Dict[int, Any] = {}
            for s in list(samples[:warm]) + list(samples):
                args = list(self._args[s])
                for slot, value in carried.items():
                    args[slot] = value
                outs = module.run_method(self.method_name, tuple(args))
                for slot, k in self._state_slots:
                    carried[slot] = outs[k].clone()
            dump = os.path.join(tmp, "run.etdp")
            module.write_etdump_result_to_file(dump)
            inspector = Inspector(etdump_path=dump)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows = []
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue  # Method::init and load_method: the init time, reported apart
            for ev in block.events:
                raw = list(ev.perf_data.raw) if ev.perf_data is not None else []
                kept = raw[warm:] if len(raw) > warm else raw
                if not kept:
                    continue
                where = ev.delegate_backend_name or ("delegate" if ev.is_delegated_op
                                                     else "portable")
                op = ev.name.split(" #")[0]
                rows.append((ev.name, op, where, len(kept),
                             int(round(sum(kept) * 1e6))))  # ms -> ns
        return op_table("ExecuTorch %s ETDump (Inspector)" % self.runtime_version,
                        len(samples), rows, containers=CONTAINERS)
