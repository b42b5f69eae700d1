"""The plan's matrix as cells: one run each, with a stable id and its own folder.

A cell's id is ``board/model-or-task/scenario/mode/repN`` (``:`` and ``/`` in a model's name
become ``-`` and ``_``), and its folder is ``OUT/<id>``: the same cell of a resumed campaign
finds its run where it left it. A microcontroller board's cells are its tasks in the modes
of MLPerf Tiny's procedures, with ``tiny`` in the scenario's place (no scenarios, no models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeperf.campaigns.plan import AGENT_MODES, MCU_MODES, Board, Plan

TINY = "tiny"  # an MCU cell's scenario


@dataclass(frozen=True)
class Cell:
    board: Board
    model: str | None
    task: str | None
    scenario: str
    mode: str
    rep: int
    out_dir: Path

    @property
    def id(self) -> str:
        return "/".join((self.board.label, label(self.task or self.model or ""), self.scenario,
                         self.mode, f"rep{self.rep}"))


def label(name: str) -> str:
    return name.replace(":", "-").replace("/", "_")


def cells(plan: Plan) -> list[Cell]:
    """Every cell, board by board, in the order a board runs them (repetitions last, so a
    board cycles through its matrix once before repeating it)."""
    out = []
    for board in plan.boards:
        whats = [("task", t) for t in plan.tasks] if board.mcu else \
            [("model", m) for m in plan.models] + [("task", t) for t in plan.tasks]
        scenarios = [TINY] if board.mcu else plan.scenarios
        modes = [m for m in plan.modes if m in (MCU_MODES if board.mcu else AGENT_MODES)]
        for rep in range(1, plan.repeats + 1):
            for what, name in whats:
                for scenario in scenarios:
                    for mode in modes:
                        c = Cell(board, name if what == "model" else None,
                                 name if what == "task" else None, scenario, mode, rep,
                                 Path())
                        out.append(Cell(board, c.model, c.task, scenario, mode, rep,
                                        plan.out / c.id))
    return out
