"""What ``Device.run`` gives back for a microcontroller board (``link.type = "tiny"``).

An MCU board runs one of MLPerf Tiny's procedures (performance, accuracy, energy) through the
firmware bridge, not a LoadGen scenario, so its result is not a RunResult: it has no Summary,
and its figure is Tiny's (median inf./sec., the task's metric, median uJ/inf.).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf.run.spec import EXIT_VALID
from edgeperf.store.record import record_run_safely

TINY_MODES = ("performance", "accuracy", "energy")


@dataclass
class TinyResult:
    """One MLPerf Tiny procedure on an MCU board.

    ``value`` in ``unit``: the median throughput (inf./sec.), the accuracy metric (top1,
    auc) or the median energy (uJ/inf.); ``procedure_valid``: Tiny's rules held (5 windows of
    at least 10 s; every sample scored), with ``reasons`` when not; ``passed``: accuracy mode's
    target reached. ``exit_code`` is the command line's: 0 VALID (and the target met), 3
    INVALID or the target missed. ``procedure`` is the bridge's ProcedureResult (windows, raw
    results); ``result`` the run's result.json."""

    out_dir: Path
    mode: str
    task: str
    board: str
    value: float | None
    unit: str
    exit_code: int
    procedure_valid: bool
    reasons: list[str] = field(default_factory=list)
    passed: bool | None = None
    metric: str = ""
    target: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    procedure: Any = None

    def __post_init__(self) -> None:
        # made once a run, by the bridge, right after it wrote result.json: the run's end
        if self.result:
            record_run_safely(self.out_dir)  # the results store; a store that fails only warns

    @property
    def valid(self) -> bool:
        return self.exit_code == EXIT_VALID

    @property
    def windows(self) -> list[Any]:
        return list(getattr(self.procedure, "windows", []))
