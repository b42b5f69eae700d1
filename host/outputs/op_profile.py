"""``--profile-ops``: the per-operator profile a runtime gives, after the timed run.

The agent runs the profile in the runtime's own profiler (ONNX Runtime's session profiling,
ExecuTorch's ETDump), in a session or mode of its own after the scored run: the scored
latencies never carry a profiler. It is written as op_profile.csv, one row a node: its
operator type, the provider or delegate that ran it, calls, total and mean time, and share
of the profiled time ("contains" for an If, Loop or Scan, whose time is its subgraphs'
nodes'), and summarised as the top operator types by time share. A runtime that exposes no
profile (TFLite's Python interpreter) is said so in result.json and the output.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

FILE = "op_profile.csv"
TOP = 10


def write_csv(path: Path, table: dict[str, Any]) -> None:
    total = max(1, int(table.get("total_ns") or 0))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["node", "op_type", "provider", "calls", "total_us", "mean_us", "share_pct"])
        containers = set(table.get("containers") or ())
        for node, op, provider, calls, ns in table.get("rows", []):
            share = "contains" if op in containers else f"{100 * ns / total:.2f}"
            w.writerow([node, op, provider, calls, f"{ns / 1e3:.3f}",
                        f"{ns / 1e3 / max(1, calls):.3f}", share])


def by_type(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Operator types by their share of the profiled time, largest first (control-flow
    containers, whose time is their subgraphs' nodes', are left out)."""
    total = max(1, int(table.get("total_ns") or 0))
    containers = set(table.get("containers") or ())
    acc: dict[str, list[int]] = {}
    for _node, op, _provider, calls, ns in table.get("rows", []):
        if op in containers:
            continue
        a = acc.setdefault(op, [0, 0, 0])
        a[0] += int(ns)
        a[1] += int(calls)
        a[2] += 1
    rows = [{"op_type": op, "total_ns": ns, "calls": calls, "nodes": nodes,
             "share": ns / total} for op, (ns, calls, nodes) in acc.items()]
    return sorted(rows, key=lambda r: (-r["total_ns"], r["op_type"]))


def record(table: dict[str, Any]) -> dict[str, Any]:
    """result.json's ``op_profile``: where it came from, its totals and the top types."""
    runs = max(1, int(table.get("runs") or 1))
    return {"available": True, "source": table.get("source"), "runs": table.get("runs"),
            "nodes": table.get("node_count"), "truncated": bool(table.get("truncated")),
            "total_ns": table.get("total_ns"),
            "per_inference_ns": int(table.get("total_ns") or 0) // runs,
            "wall_ns": table.get("wall_ns"), "file": FILE, "top": by_type(table)[:TOP]}


def text(rec: dict[str, Any]) -> str:
    """The summary printed after a run."""
    if not rec.get("available"):
        return f"operator profile: not available: {rec.get('message')}"
    lines = [f"operator profile ({rec['source']}, {rec['runs']} inferences, {rec['nodes']} "
             f"nodes, {rec['per_inference_ns'] / 1e3:.1f} us of operator time an inference; "
             f"{rec['file']}):"]
    for r in rec["top"]:
        lines.append(f"  {r['op_type']:<24} {100 * r['share']:6.2f}%  "
                     f"{r['total_ns'] / 1e3 / max(1, rec['runs']):10.1f} us/inference  "
                     f"{r['nodes']} node(s)")
    return "\n".join(lines)
