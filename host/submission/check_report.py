"""What ``edgeperf submission check`` found: one row a result, the errors (each naming its
file, the rule and the fix) and the warnings, as text and as JSON (edgeperf.submission-check/1).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCHEMA = "edgeperf.submission-check/1"


@dataclass(frozen=True)
class Finding:
    file: str  # relative to the tree's root ("." for the root itself)
    rule: str
    message: str


@dataclass
class ResultRow:
    division: str
    system: str
    benchmark: str
    scenario: str
    metric: float | None = None
    unit: str = ""
    validity: str = "INVALID"  # VALID only when the result has no error of its own
    accuracy: str = ""
    power: str = ""


class Report:
    """The findings of one check of the tree at ``root``; files are named relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results: list[ResultRow] = []
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def rel(self, path: str | os.PathLike[str]) -> str:
        p = Path(path)
        try:
            r = p.relative_to(self.root)
        except ValueError:
            return str(p)
        return str(r) if str(r) != "" else "."

    def error(self, path: str | os.PathLike[str], rule: str, message: str) -> None:
        self.errors.append(Finding(self.rel(path), rule, message))

    def warn(self, path: str | os.PathLike[str], rule: str, message: str) -> None:
        self.warnings.append(Finding(self.rel(path), rule, message))

    def errors_under(self, path: str | os.PathLike[str], since: int = 0) -> int:
        """How many errors from ``since`` on name a file under ``path``."""
        prefix = self.rel(path)
        return sum(1 for f in self.errors[since:]
                   if f.file == prefix or f.file.startswith(prefix + "/"))

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "root": str(self.root), "ok": self.ok,
                "results": [asdict(r) for r in self.results],
                "errors": [asdict(f) for f in self.errors],
                "warnings": [asdict(f) for f in self.warnings]}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.as_json(), indent=1) + "\n", encoding="utf-8")

    def format(self) -> str:
        head = ("division", "system", "benchmark", "scenario", "metric", "unit", "result",
                "accuracy")
        rows = [head] + [(r.division, r.system, r.benchmark, r.scenario,
                          "-" if r.metric is None else f"{r.metric:.6g}", r.unit, r.validity,
                          r.accuracy + (f"  power {r.power}" if r.power else ""))
                         for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True))
                 + "  " + row[-1] for row in rows]
        lines = [ln.rstrip() for ln in lines]
        lines += [f"ERROR {f.file}: {f.rule}: {f.message}" for f in self.errors]
        lines += [f"WARNING {f.file}: {f.rule}: {f.message}" for f in self.warnings]
        n = len(self.results)
        lines.append(f"{n} result{'s' if n != 1 else ''}, {len(self.errors)} error"
                     f"{'s' if len(self.errors) != 1 else ''}, {len(self.warnings)} warning"
                     f"{'s' if len(self.warnings) != 1 else ''}: "
                     + ("submission looks OK" if self.ok else "submission has errors"))
        return "\n".join(lines) + "\n"
