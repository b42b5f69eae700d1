"""What each runtime's Python binding costs on a model that does almost nothing.

    .venv/bin/python benchmarks/bench_bindings.py [--n 20000] [--repeats 5] [--json FILE]

The model: y = x @ I + 0 on a [1, 4] float32 input (one fully connected layer, 4x4),
written from the same Network as .tflite (tflite_writer), .onnx (onnx_writer) and .pte
(scripts/export_executorch.py, XNNPACK), so that nearly all of an inference is the binding.
Each runtime is measured in a Python of its own, as a device would have it:

* ``bare``: the harness loop alone, a Python call of a no-op function (the baseline);
* ``api``: the runtime's Python call alone, inputs set once (interp.invoke();
  session.run(None, feeds); method.execute(args));
* ``query``: one query as edgeperf's agent answers it in the timed loop: the backend's
  invoker (set this sample's inputs, invoke, copy the outputs out), from device_agent;
* ``runtime``: the runtime's own account of an inference where it gives one: ONNX
  Runtime's profiler (its "model_run" events) and ExecuTorch's ETDump (Method::execute),
  both in a second session with profiling on; TFLite's Python runtime gives none.

Per-call medians over ``--repeats`` runs of ``--n`` calls; the figures: each in us, and the
binding's share = (query - runtime) / query where the runtime reports its own time and it
is below the query's (ONNX Runtime's profiler times every node, so on a model this small its
profiled run is longer than an unprofiled query, and bounds nothing).
The ai-edge-litert and onnxruntime figures run in this Python; tflite-runtime in
$EDGEPERF_TFLITE_PYTHON or .venv-tflite; ExecuTorch in $EDGEPERF_EXECUTORCH_PYTHON or
.venv-executorch (scripts/test.sh builds both). A runtime that is missing is reported so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- in the runtime's Python

def _agent():
    """device_agent as edgeperf_agent, from the working tree (a device's Python may not
    have edgeperf installed)."""
    import importlib.util
    if "edgeperf_agent" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "edgeperf_agent", REPO / "device_agent" / "__init__.py",
            submodule_search_locations=[str(REPO / "device_agent")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["edgeperf_agent"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["edgeperf_agent"]


def _per_call(f, n: int) -> float:
    pc = time.perf_counter_ns
    t0 = pc()
    for j in range(n):
        f(j)
    return (pc() - t0) / n


def measure(runtime: str, model: str, n: int, repeats: int) -> dict:
    import numpy as np
    _agent()
    samples = [np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)]
    if runtime in ("ai_edge_litert", "tflite_runtime"):
        from edgeperf_agent.backend_tflite import TfliteBackend
        b = TfliteBackend(model, runtime=runtime)
        interp = b.interp
        interp.set_tensor(b.inputs[0]["index"], samples[0][:1])
        api = lambda j: interp.invoke()  # noqa: E731
        version = b.describe()["runtime_version"]
    elif runtime == "onnxruntime":
        from edgeperf_agent.backend_onnx import OnnxBackend
        b = OnnxBackend(model)
        sess, names, feeds = b.session, b.output_names, {"input": samples[0][:1]}
        api = lambda j: sess.run(names, feeds)  # noqa: E731
        version = b.runtime_version
    else:
        from edgeperf_agent.backend_executorch import ExecutorchBackend
        import torch
        b = ExecutorchBackend(model)
        args = [torch.from_numpy(samples[0][:1].copy())]
        execute = b.method.execute
        api = lambda j: execute(args)  # noqa: E731
        version = b.runtime_version
    b.bind(samples)
    invoke = b.invoker()
    n_s = len(samples[0])
    query = lambda j: invoke(j % n_s)  # noqa: E731 - the timed loop's call

    def bare(j):
        return None
    out = {"bare": [], "api": [], "query": []}
    for f in (bare, api, query):
        _per_call(f, min(n, 2000))  # warm
    for _ in range(repeats):  # interleaved: drift on the machine hits all alike
        out["bare"].append(_per_call(bare, n))
        out["api"].append(_per_call(api, n))
        out["query"].append(_per_call(query, n))
    res = {k: statistics.median(v) for k, v in out.items()}
    res["version"] = version
    res["runtime"] = None
    if runtime in ("onnxruntime", "executorch"):
        table = b.profile_ops(list(range(n_s)) * max(1, min(n, 5000) // n_s))
        res["runtime"] = _own_time(runtime, b, table)
    return res


def _own_time(runtime: str, b, table: dict) -> float | None:
    """The runtime's own time an inference (ns) from a profiled session."""
    if runtime == "executorch":
        rows = [r for r in table["rows"] if r[1] == "Method::execute"]
        return rows[0][4] / rows[0][3] if rows else None
    # ONNX Runtime: its model_run events, re-read from a dedicated profiled session
    import shutil
    tmp = tempfile.mkdtemp()
    try:
        sess = b._session(profile_dir=tmp)
        feeds = {"input": b._arrays[0][:1]}
        for _ in range(2000):
            sess.run(b.output_names, feeds)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    runs = [e["dur"] for e in events if e.get("name") == "model_run"][100:]
    return statistics.median(runs) * 1000 if runs else None


# ---------------------------------------------------------------- the driver

def _python(env: str, venv: str) -> str | None:
    p = os.environ.get(env) or str(REPO / venv / "bin" / "python")
    return p if Path(p).exists() else None


def build_models(tmp: Path, et_python: str | None) -> dict[str, Path]:
    import numpy as np

    from edgeperf.models.network import Dense, Network
    from edgeperf.models.network import to_tflite
    from edgeperf.models.onnx_writer import to_onnx
    net = Network((1, 4), (Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)),))
    paths = {"tflite": tmp / "null.tflite", "onnx": tmp / "null.onnx", "pte": tmp / "null.pte"}
    paths["tflite"].write_bytes(to_tflite(net, "edgeperf binding benchmark"))
    paths["onnx"].write_bytes(to_onnx(net, "edgeperf binding benchmark"))
    if et_python:
        scripts, out = str(REPO / "scripts"), str(paths["pte"])
        code = (f"import sys, numpy as np; sys.path.insert(0, {scripts!r}); "
                "import export_executorch as e; "
                "from edgeperf.models.network import Dense, Network; "
                "net = Network((1, 4), (Dense(np.eye(4, dtype=np.float32), "
                "np.zeros(4, np.float32)),)); "
                f"open({out!r}, 'wb').write(e.export(net, np.random.default_rng(0)"
                ".uniform(-1, 1, (32, 4)).astype(np.float32), False))")
        subprocess.run([et_python, "-c", code], check=True, capture_output=True)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--_measure", nargs=2, metavar=("RUNTIME", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._measure:
        print(json.dumps(measure(args._measure[0], args._measure[1], args.n, args.repeats)))
        return 0
    sys.path.insert(0, str(REPO / "benchmarks"))
    import _common
    _common.print_header("binding cost: a 4x4 fully connected model, per call")
    tfl_py = _python("EDGEPERF_TFLITE_PYTHON", ".venv-tflite")
    et_py = _python("EDGEPERF_EXECUTORCH_PYTHON", ".venv-executorch")
    results = {}
    with tempfile.TemporaryDirectory() as d:
        models = build_models(Path(d), et_py)
        plan = [("ai_edge_litert", sys.executable, models["tflite"]),
                ("tflite_runtime", tfl_py, models["tflite"]),
                ("onnxruntime", sys.executable, models["onnx"]),
                ("executorch", et_py, models["pte"])]
        for runtime, py, model in plan:
            if py is None or not model.exists():
                results[runtime] = {"error": "no Python with it here"}
                continue
            r = subprocess.run([py, __file__, "--_measure", runtime, str(model), "--n",
                                str(args.n), "--repeats", str(args.repeats)],
                               capture_output=True, text=True)
            lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            results[runtime] = json.loads(lines[-1]) if r.returncode == 0 and lines else {
                "error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    print(f"\n{'runtime':<28}{'bare us':>9}{'api us':>9}{'query us':>10}{'runtime us':>12}"
          f"{'api/bare':>10}{'binding share':>15}")
    for runtime, r in results.items():
        if "error" in r:
            print(f"{runtime:<28}{r['error']}")
            continue
        own = r["runtime"]
        # a profiled run can take longer than an unprofiled query (ONNX Runtime's profiler
        # times every node): then its own figure bounds nothing and no share is given
        share = f"{100 * (r['query'] - own) / r['query']:.0f}%" if own and own < r["query"] \
            else "n/a"
        print(f"{runtime + ' ' + r['version']:<28}{r['bare'] / 1e3:>9.3f}{r['api'] / 1e3:>9.2f}"
              f"{r['query'] / 1e3:>10.2f}{(own / 1e3 if own else float('nan')):>12.2f}"
              f"{r['api'] / r['bare']:>10.1f}{share:>15}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
