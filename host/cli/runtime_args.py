"""``edgeperf run``'s runtime flags: what TFLite's benchmark_model and ONNX Runtime expose
(the runtime, XNNPACK, an external delegate, execution providers, graph optimisation, state
inputs, warm-up, the operator profile), turned into the agent's load options."""

from __future__ import annotations

import argparse
import re
from typing import Any

from edgeperf.cli.common import count


def add_runtime_args(r: argparse.ArgumentParser) -> None:
    """The runtime's options, as TFLite's benchmark_model and ONNX Runtime name them."""
    g = r.add_argument_group("runtime (the backend follows the model: .tflite, .onnx, .pte)")
    g.add_argument("--runtime", choices=tuple(RUNTIMES), metavar="litert|tflite-runtime",
                   help="tflite: which TFLite runtime runs the model (default: the first "
                        "importable, ai-edge-litert then tflite-runtime)")
    g.add_argument("--no-xnnpack", dest="xnnpack", action="store_false", default=None,
                   help="tflite: builtin kernels only, without the default XNNPACK delegate")
    g.add_argument("--delegate", metavar="PATH[:KEY=VALUE,...]",
                   help="tflite: an external delegate library loaded with load_delegate, e.g. "
                        "libedgetpu.so.1 (Coral) or libvx_delegate.so, with its options")
    g.add_argument("--ep", action="append", metavar="NAME[:KEY=VALUE,...]",
                   help="onnx: an execution provider the device's onnxruntime has (xnnpack, "
                        "cpu, or its full name), with its options; repeat in order of "
                        "preference (default: CPU)")
    g.add_argument("--graph-opt", choices=("disable", "basic", "extended", "all"),
                   help="onnx: ONNX Runtime's graph optimisation level (default: all)")
    g.add_argument("--state", action="append", metavar="OUTPUT=INPUT",
                   help="onnx, executorch: feed OUTPUT of each inference into INPUT of the "
                        "next (a streaming model's state; zeros first); such an input takes "
                        "no samples")
    g.add_argument("--warmup", type=count(0), metavar="N",
                   help="untimed warm-up queries before each run (default: the settings', "
                        "10); their mean and max are reported, never scored")
    g.add_argument("--profile-ops", type=count(1), nargs="?", const=100, default=0,
                   metavar="N",
                   help="after the timed run, a per-operator profile over N inferences "
                        "(default 100) in the runtime's own profiler: op_profile.csv and "
                        "the top operators")


RUNTIMES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}


def _options(text: str, flag: str) -> tuple[str, dict[str, str]]:
    """``NAME[:KEY=VALUE,...]`` -> (name, options): the options start at the first ':' that
    a KEY= follows (a path may hold ':' of its own, a value too: device=usb:0)."""
    at = next((m.start() for m in re.finditer(":", text)
               if re.match(r"[A-Za-z_][\w.-]*=", text[m.start() + 1:])), -1)
    if at < 0:
        return text, {}
    head, tail = text[:at], text[at + 1:]
    opts = {}
    for item in tail.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{flag} {text!r}: options are KEY=VALUE separated by commas, "
                             f"got {item!r}")
        opts[key.strip()] = value.strip()
    return head, opts


def runtime_options(args: argparse.Namespace) -> dict[str, Any]:
    """The runtime flags as the agent's load options (ValueError names a malformed one)."""
    opts: dict[str, Any] = {}
    if args.runtime:
        opts["runtime"] = RUNTIMES[args.runtime]
    if args.xnnpack is False:
        opts["xnnpack"] = False
    if args.delegate:
        path, dopts = _options(args.delegate, "--delegate")
        opts["delegate"] = {"path": path, "options": dopts}
    if args.ep:
        opts["providers"] = [list(_options(e, "--ep")) for e in args.ep]
    if args.graph_opt:
        opts["graph_optimization"] = args.graph_opt
    if args.state:
        state = {}
        for item in args.state:
            out, eq, inp = item.partition("=")
            if not eq or not out or not inp:
                raise ValueError(f"--state {item!r}: expected OUTPUT=INPUT, e.g. stateN=state")
            state[out] = inp
        opts["state"] = state
    return opts
