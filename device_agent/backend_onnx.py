"""The ``onnx`` backend: any .onnx model through ONNX Runtime's Python API.

Load options (the host's --threads, --ep, --ep-option, --graph-opt, --input-shape, --state):

* ``num_threads``: the session's intra-op threads (default: the runtime's own choice);
* ``providers``: [[name, {option: value}], ...] in order of preference; short names
  (``xnnpack``, ``cpu``) stand for ONNX Runtime's (XnnpackExecutionProvider, ...). One the
  device's build lacks is refused, naming what it has. ONNX Runtime runs what a provider
  cannot on its CPU provider; ``describe()`` lists the providers the session really holds;
* ``graph_optimization``: disable, basic, extended or all (ONNX Runtime's default);
* ``input_shapes``: {input name (or "" for the only input): dims} for dynamic dimensions. A
  dynamic first dimension left unset is the batch, 1 (as TFLite allocates it); a named
  dimension takes the value the same name has in another input (ONNX's symbolic dims), so
  ``--input-shape input:1,512`` also sizes a ``state`` input of shape [2, batch, 128];
* ``state``: {output name: input name}: the input is fed the output of the previous
  invoke (zeros before the first), as a streaming model (a VAD's hidden state) is run. Such
  inputs take no samples: the sample set holds the other inputs only.

Each sample is one query: an input of shape [1, ...] takes sample arrays of shape [...]
(the batch dimension is the sample set's own), any other input (a scalar, [2, 1, 128])
takes arrays of its whole shape. An input whose first dimension is set above 1 by
``input_shapes`` makes a batched model: samples are gathered per invoke as for TFLite.

The invoker feeds prepared views and copies outputs into arrays allocated before the timed
loop; the first inference (which also learns dynamic output shapes) is timed apart.
``profile_ops`` makes a second session with ONNX Runtime's profiler on, after the timed run.
This module must run on Python 3.9.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backends import Backend, BackendError, check_samples, find_input, op_table

INSTALL = "pip install onnxruntime"
DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
          "tensor(double)": "float64", "tensor(bool)": "bool",
          "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
          "tensor(uint16)": "uint16", "tensor(int32)": "int32", "tensor(uint32)": "uint32",
          "tensor(int64)": "int64", "tensor(uint64)": "uint64"}
PROFILE_WARMUP = 10
CONTAINERS = ("If", "Loop", "Scan")  # their kernel time holds their subgraphs' nodes
GRAPH_LEVELS = ("disable", "basic", "extended", "all")
SHORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "xnnpack": "XnnpackExecutionProvider",
                   "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
                   "openvino": "OpenVINOExecutionProvider", "nnapi": "NnapiExecutionProvider",
                   "coreml": "CoreMLExecutionProvider", "qnn": "QNNExecutionProvider",
                   "acl": "ACLExecutionProvider", "armnn": "ArmNNExecutionProvider",
                   "rknpu": "RknpuExecutionProvider", "dnnl": "DnnlExecutionProvider"}


def load_ort():
    try:
        import onnxruntime
    except Exception as exc:  # noqa: BLE001 - any broken install is named
        raise BackendError("onnxruntime is not importable on this device (%s: %s); install it "
                           "there: '%s'" % (type(exc).__name__, str(exc).strip(), INSTALL)) \
            from None
    return onnxruntime


def provider_name(name: str) -> str:
    return SHORT_PROVIDERS.get(name.lower(), name)


def _runtime_message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text.replace("[ONNXRuntimeError] : ", "")


class OnnxBackend(Backend):
    name = "onnx"

    def __init__(self, path: str, num_threads: Optional[int] = None,
                 providers: Optional[Sequence[Any]] = None,
                 graph_optimization: Optional[str] = None,
                 input_shapes: Optional[Dict[str, List[int]]] = None,
                 state: Optional[Dict[str, str]] = None) -> None:
        ort = load_ort()
        self.ort, self.path = ort, path
        self.runtime, self.runtime_version = "onnxruntime", str(ort.__version__)
        self.num_threads = int(num_threads) if num_threads else None
        level = (graph_optimization or "all").lower()
        if level not in GRAPH_LEVELS:
            raise BackendError("graph optimisation level %r is not one of %s"
                               % (graph_optimization, ", ".join(GRAPH_LEVELS)))
        self.graph_optimization = level
        self.requested = self._providers(providers or [])
        self.session = self._session(profile_dir=None)
        self.providers = list(self.session.get_providers())
        self._state_spec = {str(k): str(v) for k, v in (state or {}).items()}
        self._inputs_all = self._tensors(self.session.get_inputs(), "input")
        self._shape_inputs(input_shapes or {})
        outs = self._tensors(self.session.get_outputs(), "output")
        self._check_state(outs)
        self.state = [dict(i, fed_by=o) for o, n in self._state_spec.items()
                      for i in self._inputs_all if i["name"] == n]
        stated = set(self._state_spec.values())
        self.inputs = [i for i in self._inputs_all if i["name"] not in stated]
        self.outputs = outs
        self.output_names = [o["name"] for o in outs]
        self._views: List[Any] = []
        self._arrays: List[np.ndarray] = []
        self._out_shapes: Optional[List[Tuple[int, ...]]] = None
        self.first_inference_ns: Optional[int] = None

    # -- the session
    def _providers(self, given: Sequence[Any]) -> List[Tuple[str, Dict[str, str]]]:
        have = list(self.ort.get_available_providers())
        chosen = []
        for item in given:
            if isinstance(item, str):
                name, opts = item, {}
            else:
                name, opts = item[0], dict(item[1] if len(item) > 1 else {})
            full = provider_name(str(name))
            if full not in have:
                raise BackendError(
                    "execution provider %s is not in this device's onnxruntime %s (it has: %s); "
                    "install a build that has it (e.g. onnxruntime-gpu, onnxruntime-openvino, "
                    "or a build with --use_xnnpack), or leave --ep out for the CPU provider"
                    % (full, self.ort.__version__, ", ".join(have)))
            chosen.append((full, {str(k): str(v) for k, v in opts.items()}))
        if chosen and all(n != "CPUExecutionProvider" for n, _ in chosen):
            chosen.append(("CPUExecutionProvider", {}))  # what the others cannot run
        return chosen

    def _session(self, profile_dir: Optional[str]):
        ort = self.ort
        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only: a model's warnings are not the device's
        if self.num_threads:
            so.intra_op_num_threads = self.num_threads
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[self.graph_optimization]
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ops")
        kwargs: Dict[str, Any] = {"sess_options": so}
        if self.requested:
            kwargs["providers"] = [n for n, _ in self.requested]
            kwargs["provider_options"] = [o for _, o in self.requested]
        else:
            kwargs["providers"] = ["CPUExecutionProvider"]
        try:
            return ort.InferenceSession(self.path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes
            msg = _runtime_message(exc)
            if ("NOT_IMPLEMENTED" in msg or "Could not find an implementation" in msg
                    or "No Op registered" in msg or "is not a registered function/op" in msg):
                raise BackendError("onnxruntime %s cannot run this model: %s. The device's "
                                   "build lacks that operator (or that opset version): "
                                   "re-export the model for an older opset, or install a "
                                   "newer onnxruntime" % (ort.__version__, msg)) from None
            if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
                raise BackendError("the model is not a valid ONNX file (onnxruntime: %s); "
                                   "re-push it or re-export it" % msg) from None
            raise BackendError("onnxruntime %s refused the model: %s; check that the file is "
                               "a complete .onnx model" % (ort.__version__, msg)) from None

    @staticmethod
    def _tensors(args: Sequence[Any], what: str) -> List[Dict[str, Any]]:
        out = []
        for k, a in enumerate(args):
            if a.type not in DTYPES:
                raise BackendError("%s %r is a %s; edgeperf feeds and reads tensors only "
                                   "(%s)" % (what, a.name, a.type, ", ".join(sorted(DTYPES))))
            dims = list(a.shape or [])
            out.append({"name": a.name, "index": k, "dtype": DTYPES[a.type],
                        "shape": [d if isinstance(d, int) and d >= 0 else -1 for d in dims],
                        "shape_signature": [d if isinstance(d, int) and d >= 0 else -1
                                            for d in dims],
                        "dim_names": [d if isinstance(d, str) else None for d in dims],
                        "quantization": [0.0, 0]})
        return out

    def _shape_inputs(self, shapes: Dict[str, List[int]]) -> None:
        """Concrete shapes for every input: the user's, then named dims by their values
        elsewhere, then a dynamic first dimension as the batch of 1."""
        stated = set(self._state_spec.values())
        fed = [i for i in self._inputs_all if i["name"] not in stated]
        symbols: Dict[str, int] = {}
        for name, dims in shapes.items():
            info = find_input(name, self._inputs_all, fed)
            sig = info["shape_signature"]
            dims = [int(d) for d in dims]
            if len(dims) != len(sig) or min(dims or [1]) < 1:
                raise BackendError("input %r has shape %s; an input_shape for it needs %d "
                                   "positive sizes, got %s" % (info["name"], self._show(info),
                                                               len(sig), dims))
            fixed = [(k, s, d) for k, (s, d) in enumerate(zip(sig, dims)) if s >= 0 and s != d]
            if fixed:
                k, s, d = fixed[0]
                raise BackendError("input %r has a fixed size %d in dimension %d; the "
                                   "input_shape gives %d" % (info["name"], s, k, d))
            info["shape"] = dims
            for sym, d in zip(info["dim_names"], dims):
                if sym:
                    symbols.setdefault(sym, d)
        for info in self._inputs_all:
            if info["name"] in shapes or (len(fed) == 1 and "" in shapes and info is fed[0]):
                continue
            shape = list(info["shape_signature"])
            for k, (d, sym) in enumerate(zip(shape, info["dim_names"])):
                if d < 0 and sym in symbols:
                    shape[k] = symbols[sym]
            if shape and shape[0] < 0:
                shape[0] = 1
                if info["dim_names"][0]:
                    symbols.setdefault(info["dim_names"][0], 1)
            info["shape"] = shape
        for info in self._inputs_all:  # a later input may have named what an earlier lacks
            info["shape"] = [symbols.get(sym, d) if d < 0 and sym else d
                             for d, sym in zip(info["shape"], info["dim_names"])]
        for info in self._inputs_all:
            if info["name"] in stated and min(info["shape"] or [1]) < 0:
                raise BackendError("state input %r has dynamic dimensions (%s); set them with "
                                   "--input-shape %s:%s" % (info["name"], self._show(info),
                                                            info["name"], ",".join(
                                                                "N" if d < 0 else str(d)
                                                                for d in info["shape"])))

    @staticmethod
    def _show(info: Dict[str, Any]) -> str:
        return "[%s]" % ", ".join(str(d) if d >= 0 else (s or "?")
                                  for d, s in zip(info["shape_signature"], info["dim_names"]))

    def _check_state(self, outs: List[Dict[str, Any]]) -> None:
        names = {o["name"]: o for o in outs}
        ins = {i["name"]: i for i in self._inputs_all}
        for out, inp in self._state_spec.items():
            if out not in names:
                raise BackendError("state %s=%s: the model has no output %r (outputs: %s)"
                                   % (out, inp, out, ", ".join(names)))
            if inp not in ins:
                raise BackendError("state %s=%s: the model has no input %r (inputs: %s)"
                                   % (out, inp, inp, ", ".join(ins)))
            if names[out]["dtype"] != ins[inp]["dtype"]:
                raise BackendError("state %s=%s: output %r is %s, input %r is %s"
                                   % (out, inp, out, names[out]["dtype"], inp, ins[inp]["dtype"]))

    # -- the contract
    @property
    def batch(self) -> int:
        firsts = {i["shape"][0] for i in self.inputs if i["shape"]}
        sigs = [i["shape_signature"][0] for i in self.inputs if i["shape_signature"]]
        if len(firsts) == 1 and sigs and all(s < 0 for s in sigs):
            return max(1, int(firsts.pop()))  # a dynamic batch the user set above 1
        return 1

    def sample_shape(self, info: Dict[str, Any]) -> List[int]:
        shape = info["shape"]
        if self.batch != 1 or (shape and shape[0] == 1):
            return list(shape[1:])
        return list(shape)

    def describe(self) -> Dict[str, Any]:
        for info in self.inputs:
            info["sample_shape"] = self.sample_shape(info)
        d = super().describe()
        d.update(runtime=self.runtime, runtime_version=self.runtime_version,
                 providers=self.providers, requested_providers=[n for n, _ in self.requested],
                 graph_optimization=self.graph_optimization, num_threads=self.num_threads,
                 batch=self.batch, state=self.state)
        return d

    def bind(self, samples: Optional[Sequence[np.ndarray]]) -> None:
        for info in self.inputs:
            info["sample_shape"] = self.sample_shape(info)
        arrays = check_samples("onnx", samples, self.inputs)
        views = []
        for arr, info in zip(arrays, self.inputs):
            if self.batch != 1:
                views.append(None)
            else:
                shape = info["shape"]
                views.append([arr[i].reshape(shape) for i in range(len(arr))])
        self._arrays, self._views = arrays, views

    def _feeds(self) -> Dict[str, Any]:
        """The feed dict the invoker refills: state inputs start at zeros."""
        return {s["name"]: np.zeros(s["shape"], s["dtype"]) for s in self.state}

    def _batch_plan(self) -> List[Tuple[str, np.ndarray, np.ndarray]]:
        n = self.batch
        return [(info["name"], arr, np.ascontiguousarray(arr[np.arange(n) % len(arr)]))
                for info, arr in zip(self.inputs, self._arrays)]

    def _fill(self, feeds: Dict[str, Any], sample: int) -> None:
        if self.batch != 1:
            for name, arr, buf in self._batch_plan():
                buf[0] = arr[sample]
                feeds[name] = buf
            return
        for info, views in zip(self.inputs, self._views):
            feeds[info["name"]] = views[sample]

    def _learn_outputs(self, outs: Sequence[np.ndarray]) -> None:
        self._out_shapes = [tuple(np.shape(a)) for a in outs]
        for o, a in zip(self.outputs, outs):
            o["shape"] = [int(x) for x in np.shape(a)]
        ins = {s["name"]: s for s in self.state}
        for k, name in enumerate(self.output_names):
            if name in self._state_spec:
                inp = ins[self._state_spec[name]]
                if list(np.shape(outs[k])) != list(inp["shape"]):
                    raise BackendError("state %s=%s: output %r has shape %s, input %r %s; "
                                       "set the input's shape to match with --input-shape"
                                       % (name, inp["name"], name, list(np.shape(outs[k])),
                                          inp["name"], inp["shape"]))

    def first_inference(self, sample: int) -> int:
        """One untimed-for-scoring invoke of ``sample`` through the session, timed; it
        learns the output shapes the invoker's buffers need."""
        feeds = self._feeds()
        self._fill(feeds, sample)
        t0 = time.perf_counter_ns()
        try:
            outs = self.session.run(self.output_names, feeds)
        except Exception as exc:  # noqa: BLE001
            raise BackendError("onnxruntime failed on the first inference: %s"
                               % _runtime_message(exc)) from None
        ns = time.perf_counter_ns() - t0
        self._learn_outputs(outs)
        if self.first_inference_ns is None:
            self.first_inference_ns = ns
        return ns

    def invoker(self) -> Callable[[int], Any]:
        if self._out_shapes is None:
            self.first_inference(0)
        assert self._out_shapes is not None
        run, names, copyto = self.session.run, self.output_names, np.copyto
        self.output_buffers = [np.empty(s, o["dtype"]) for s, o in
                               zip(self._out_shapes, self.outputs)]
        bufs = list(enumerate(self.output_buffers))
        states = [(name_in, self.output_names.index(name_out))
                  for name_out, name_in in self._state_spec.items()]
        feeds = self._feeds()
        if self.batch != 1:
            plan = self._batch_plan()

            def run_padded(s: int) -> None:
                for name, arr, buf in plan:
                    buf[0] = arr[s]
                    feeds[name] = buf
                outs = run(names, feeds)
                for k, out in bufs:
                    copyto(out, outs[k])
            return run_padded
        pairs = [(info["name"], views) for info, views in zip(self.inputs, self._views)]
        if not states and len(pairs) == 1:
            (name0, views0), = pairs

            def run1(s: int) -> None:
                feeds[name0] = views0[s]
                outs = run(names, feeds)
                for k, out in bufs:
                    copyto(out, outs[k])
            return run1

        def run_many(s: int) -> None:
            for name, views in pairs:
                feeds[name] = views[s]
            outs = run(names, feeds)
            for k, out in bufs:
                copyto(out, outs[k])
            for name, k in states:
                feeds[name] = outs[k]
        return run_many

    def gather_invoker(self) -> Optional[Callable[[Any, int, int], Any]]:
        n = self.batch
        if n == 1:
            return None
        if self._out_shapes is None:
            self.first_inference(0)
        run, names, copyto, take = self.session.run, self.output_names, np.copyto, np.take
        self.output_buffers = [np.empty(s, o["dtype"]) for s, o in
                               zip(self._out_shapes or [], self.outputs)]
        bufs = list(enumerate(self.output_buffers))
        plan = [(name, arr, buf, [buf[:k] for k in range(n + 1)])
                for name, arr, buf in self._batch_plan()]
        feeds = self._feeds()
        for name, _, buf, _ in plan:
            feeds[name] = buf

        def run_batch(order: Any, base: int, count: int) -> None:
            idx = order[base:base + count]
            for _, arr, _, heads in plan:
                take(arr, idx, axis=0, out=heads[count])
            outs = run(names, feeds)
            for k, out in bufs:
                copyto(out, outs[k])
        return run_batch

    def outputs_fn(self) -> Callable[[int], List[np.ndarray]]:
        invoke = self.invoker()
        bufs = self.output_buffers
        rows = self.batch != 1

        def outputs(sample: int) -> List[np.ndarray]:
            invoke(sample)
            return [np.ascontiguousarray(b[:1] if rows else b).copy() for b in bufs]
        return outputs

    def release(self) -> None:
        self._views, self._arrays = [], []

    def profile_ops(self, samples: Sequence[int]) -> Dict[str, Any]:
        """Per-operator times from ONNX Runtime's own profiler, over ``samples`` run in a
        second session made with profiling on (the timed session is never profiled). The
        session's first inferences (up to 10, its own warm-up) run first and are left out;
        nodes inside an If, Loop or Scan are counted by themselves, their container apart."""
        warm = min(PROFILE_WARMUP, len(samples))
        tmp = tempfile.mkdtemp(prefix="edgeperf-ortprof-")
        try:
            session = self._session(profile_dir=tmp)
            feeds = self._feeds()
            for s in list(samples[:warm]) + list(samples):
                self._fill(feeds, s)
                outs = session.run(self.output_names, feeds)
                for name_out, name_in in self._state_spec.items():
                    feeds[name_in] = outs[self.output_names.index(name_out)]
            path = session.end_profiling()
            with open(path) as f:
                events = json.load(f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        events = events if isinstance(events, list) else []
        runs = sorted(int(ev.get("ts", 0)) for ev in events if ev.get("name") == "model_run")
        start = runs[warm] if len(runs) > warm else 0
        per: Dict[str, List[Any]] = {}
        for ev in events:
            if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
                continue
            if int(ev.get("ts", 0)) < start:
                continue
            node = ev["name"][:-len("_kernel_time")]
            args = ev.get("args") or {}
            row = per.setdefault(node, [node, args.get("op_name", "?"),
                                        args.get("provider", ""), 0, 0])
            row[3] += 1
            row[4] += int(round(float(ev.get("dur", 0)) * 1000))  # us -> ns
        return op_table("onnxruntime %s profiler (profiling on: times include its overhead)"
                        % self.runtime_version, len(samples),
                        [(n, t, p, c, ns) for n, t, p, c, ns in per.values()],
                        containers=CONTAINERS)
