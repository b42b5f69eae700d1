"""MLPerf Tiny's tree from MCU runs (mlcommons/tiny tools/submission/submission_checker.py,
v1.4): ``results/SYSTEM/{ad,ic,kws,vww}/{accuracy,performance,energy}/`` each holding exactly
the runner's log.txt, results.txt and results.json (its file-list check), and README.md
beside them at the benchmark's level, where its checker reads no file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError
from edgeperf.submission import readmes
from edgeperf.submission.rules import Benchmark
from edgeperf.submission.runs import Run

TINY_FILES = ("log.txt", "results.txt", "results.json")


def add_tiny(state: dict[str, Any], bench: Benchmark, system: str, runs: list[Run],
             force: bool, src: Path, place: Callable[..., None]) -> list[str]:
    model = bench.mlperf_model or bench.name
    base = Path(state["root"]) / state["division"] / state["org"] / "results" / system / model
    modes: dict[str, Run] = {}
    for r in runs:
        if r.kind in modes:
            raise UsageError(f"two {r.kind} runs: {modes[r.kind].path} and {r.path}")
        missing = [n for n in TINY_FILES if not (r.path / n).is_file()]
        if missing:
            raise UsageError(f"{r.path}: no {', '.join(missing)}; an MCU run directory has "
                             f"the Tiny runner's {', '.join(TINY_FILES)}")
        if (base / r.kind).exists() and not force:
            raise UsageError(f"{base / r.kind} already exists; pass --force to replace it")
        modes[r.kind] = r
    keys = []
    for mode, run in sorted(modes.items()):
        build = Path(tempfile.mkdtemp(prefix="add-tmp-", dir=src))
        try:
            (build / mode).mkdir()
            for n in TINY_FILES:
                shutil.copy2(run.path / n, build / mode / n)
            place(state, build / mode, base / mode, force)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        key = f"{system}/{model}/{mode}"
        state["results"][key] = {
            "system": system, "benchmark": bench.name, "scenario": mode,
            "task": str(run.record.get("task") or "").split(":")[0] or None,
            "model_sha256": None, "result": run.record.get("result"),
            "runs": {mode: str(run.path.resolve())},
            "readme": readmes.tiny_readme(bench, system, run)}
        keys.append(key)
    texts = [v["readme"] for k, v in sorted(state["results"].items())
             if k.startswith(f"{system}/{model}/")]
    (base / "README.md").write_text("\n".join(texts))
    return keys


__all__ = ["TINY_FILES", "add_tiny"]
