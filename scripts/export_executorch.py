"""Export the reference tasks' float32 models to ExecuTorch programs (.pte), no download.

    python scripts/export_executorch.py                 # every task, into the task cache
    python scripts/export_executorch.py --task ic-digits --out DIR [--portable]

Run it with a Python that has torch, executorch (with its export dependencies: torchao for
the XNNPACK partitioner) and edgeperf (``pip install -e .``): scripts/test.sh makes one,
.venv-executorch. Each task's trained Network (edgeperf.tasks.training, the same weights
its .tflite files were written from) becomes a torch module with TFLite's semantics (NHWC
input, SAME padding with the odd pixel after, average pools that leave padding out), is
checked against the numpy reference forward pass, then exported with torch.export and
lowered with ExecuTorch's XNNPACK partitioner (``--portable``: the portable kernels only),
and run once in ExecuTorch's own runtime against the reference again. The .pte lands
beside the task's .tflite files (``ic-digits:executorch`` then runs it) or in ``--out``;
its SHA-256 is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgeperf.models.network import (Conv, Dense, Depthwise, Network, Pool, Reshape, Softmax,
                                     forward)
from edgeperf.models.reference_ops import output_size

TOLERANCE = 1e-4


class TfliteSemantics(torch.nn.Module):
    """A float32 Network as torch ops, layer for layer."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net
        self.params = torch.nn.ParameterList()
        self.plan: list[tuple] = []
        shape = tuple(net.input_shape)
        for layer in net.layers:
            if isinstance(layer, Dense):
                self.plan.append(("dense", self._p(layer.w), self._p(layer.b), layer.activation))
                shape = (shape[0], layer.w.shape[0])
            elif isinstance(layer, (Conv, Depthwise)):
                kh, kw = layer.w.shape[1], layer.w.shape[2]
                oh, top, bottom = output_size(shape[1], kh, layer.stride[0], layer.padding)
                ow, left, right = output_size(shape[2], kw, layer.stride[1], layer.padding)
                if isinstance(layer, Conv):
                    w, groups, cout = layer.w.transpose(0, 3, 1, 2), 1, layer.w.shape[0]
                else:
                    w, groups = layer.w[0].transpose(2, 0, 1)[:, None], shape[3]
                    cout = layer.w.shape[3]
                self.plan.append(("conv", self._p(w), self._p(layer.b), layer.stride,
                                  (left, right, top, bottom), groups, layer.activation))
                shape = (shape[0], oh, ow, cout)
            elif isinstance(layer, Pool):
                oh, top, bottom = output_size(shape[1], layer.size[0], layer.stride[0],
                                              layer.padding)
                ow, left, right = output_size(shape[2], layer.size[1], layer.stride[1],
                                              layer.padding)
                self.plan.append(("pool", layer.kind, layer.size, layer.stride,
                                  (left, right, top, bottom)))
                shape = (shape[0], oh, ow, shape[3])
            elif isinstance(layer, Reshape):
                self.plan.append(("reshape", tuple(layer.shape)))
                shape = tuple(layer.shape)
            elif isinstance(layer, Softmax):
                self.plan.append(("softmax", float(layer.beta)))
            else:
                raise ValueError(f"layer {type(layer).__name__} is not exported")

    def _p(self, a: np.ndarray) -> int:
        self.params.append(torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(
            a, np.float32)), requires_grad=False))
        return len(self.params) - 1

    @staticmethod
    def _act(x: torch.Tensor, activation: str) -> torch.Tensor:
        if activation == "RELU":
            return torch.relu(x)
        if activation == "RELU6":
            return torch.clamp(x, 0.0, 6.0)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.plan:
            kind = step[0]
            if kind == "dense":
                _, w, b, act = step
                x = self._act(F.linear(x, self.params[w], self.params[b]), act)
            elif kind == "conv":
                _, w, b, stride, pad, groups, act = step
                t = F.pad(x.permute(0, 3, 1, 2), pad)
                t = F.conv2d(t, self.params[w], self.params[b], stride=stride, groups=groups)
                x = self._act(t.permute(0, 2, 3, 1), act)
            elif kind == "pool":
                _, what, size, stride, pad = step
                t = x.permute(0, 3, 1, 2)
                if what == "MAX":
                    t = F.max_pool2d(F.pad(t, pad, value=float("-inf")), size, stride)
                elif any(pad):  # TFLite's average leaves the padding out of the count
                    total = F.avg_pool2d(F.pad(t, pad), size, stride)
                    ones = F.avg_pool2d(F.pad(torch.ones_like(t[:, :1]), pad), size, stride)
                    t = total / ones
                else:
                    t = F.avg_pool2d(t, size, stride)
                x = t.permute(0, 2, 3, 1)
            elif kind == "reshape":
                x = x.reshape(step[1])
            else:
                x = torch.softmax(x * step[1], dim=-1)
        return x


def export(net: Network, inputs: np.ndarray, portable: bool) -> bytes:
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    module = TfliteSemantics(net).eval()
    x = torch.from_numpy(np.ascontiguousarray(inputs[:1], np.float32))
    checks = [np.ascontiguousarray(s[None], np.float32) for s in inputs[:32]]
    with torch.no_grad():
        worst = max(float(np.abs(module(torch.from_numpy(c)).numpy() - forward(net, c)).max())
                    for c in checks)
    if worst > TOLERANCE:
        raise SystemExit(f"the torch module differs from the reference by {worst}")
    partitioners = []
    if not portable:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        partitioners = [XnnpackPartitioner()]
    program = to_edge_transform_and_lower(torch.export.export(module, (x,)),
                                          partitioner=partitioners).to_executorch()
    data = bytes(program.buffer)
    method = Runtime.get().load_program(data).load_method("forward")
    worst = max(float(np.abs(method.execute([torch.from_numpy(c)])[0].numpy()
                             - forward(net, c)).max()) for c in checks)
    if worst > TOLERANCE:
        raise SystemExit(f"the exported program differs from the reference by {worst}")
    return data


def main(argv: list[str] | None = None) -> int:
    from edgeperf.tasks.training import AD_SYNTHETIC, IC_DIGITS, build

    recipes = {r.name: r for r in (IC_DIGITS, AD_SYNTHETIC)}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", choices=sorted(recipes),
                    help="a task to export (default: all)")
    ap.add_argument("--out", type=Path, help="write here (default: the task's cache)")
    ap.add_argument("--portable", action="store_true",
                    help="portable kernels only (no XNNPACK delegate)")
    args = ap.parse_args(argv)
    for name in args.task or sorted(recipes):
        t = build(recipes[name], lambda m: print(m, file=sys.stderr))
        data = export(t.float_net, t.inputs, args.portable)
        target = (args.out or t.directory) / f"{name}-fp32.pte"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".pte.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        print(f"{target}  {len(data)} bytes  sha256 {hashlib.sha256(data).hexdigest()}"
              f"  ({'portable' if args.portable else 'XNNPACK'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
