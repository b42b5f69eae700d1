"""An accuracy run's verdict: the task's metric on every sample, against its target (the
metric functions are the task's, tasks/metrics.py; this is the record every layer reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AccuracyResult:
    metric: str
    value: float  # NaN when it could not be computed
    target: float
    target_text: str
    passed: bool
    count: int
    reasons: list[str] = field(default_factory=list)  # why it failed, besides the value

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def detail(self) -> str:
        value = "n/a" if np.isnan(self.value) else f"{self.value:.6f}"
        return f"{self.metric} = {value}, target {self.target_text}"

    def line(self) -> str:
        return f"{self.detail()}: {self.result}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": None if np.isnan(self.value) else self.value,
                "target": self.target, "target_text": self.target_text, "result": self.result,
                "passed": self.passed, "count": self.count, "reasons": list(self.reasons)}
