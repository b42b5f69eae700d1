"""Measure the real .tflite models shipped in PyPI packages (docs/MODELS.md's table).

    .venv/bin/python scripts/real_models.py [--preset quick] [--board local] [--out DIR]

Each model runs SingleStream on generated inputs, as any user .tflite does; the table gives
the early-stopping p90 latency and the QPS without loadgen overhead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from edgeperf.boards.profile import load_board
from edgeperf.models.packaged import PACKAGES, packaged_models
from edgeperf.models.tflite_reader import read_model
from edgeperf.run.execute import RunSpec, execute
from edgeperf.settings import preset


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--board", default="local")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", default="results/real-models")
    args = ap.parse_args()
    board = load_board(args.board)
    print("| model | input | ops | size (KiB) | p90 (µs, early stopping) | QPS | result |")
    print("|---|---|---|---|---|---|---|")
    for package in PACKAGES:
        for name, path in packaged_models(package).items():
            blob = path.read_bytes()
            info = read_model(blob)
            inp = ", ".join(f"{t.dtype}{list(t.shape)}" for t in info.inputs)
            s = dataclasses.replace(preset(args.preset, "SingleStream"))
            o = execute(RunSpec(model=str(path), settings=s, board=board, threads=args.threads,
                                out_dir=Path(args.out) / name.replace("/", "-")))
            es = o.summary.early_stopping.estimate_ns or o.summary.target_percentile_latency_ns
            print(f"| {name} | {inp} | {sum(info.op_counts.values())} | {len(blob) / 1024:.0f} "
                  f"| {es / 1e3:,.1f} | {o.summary.qps_without_overhead:.0f} | "
                  f"{o.summary.result} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
