"""Running a campaign: one thread a board, each board's cells strictly one after another.

A board is health-checked before it gets work (it connects, its agent answers, it has a
runtime when a .tflite model is planned, its telemetry shows no throttling); an unhealthy
board is reported and its cells are skipped with the reason. A run whose board resets (the
link drops, the agent dies) is kept as ``<dir>.failed-<n>`` and run again after a reconnect,
up to ``retries`` times. Cells already done (result.json and a store record) are not run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf.campaigns.cells import Cell, cells
from edgeperf.campaigns.plan import Board, Plan, load_plan
from edgeperf.campaigns.state import State, is_done, keep_failed
from edgeperf.errors import AgentError, EdgeperfError, LinkError, UsageError
from edgeperf.run import device_state
from edgeperf.run.spec import EXIT_ERROR, EXIT_INVALID, EXIT_VALID
from edgeperf.store import db
from edgeperf.store.record import set_campaign

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class CampaignResult:
    campaign: str
    out: Path
    cells: dict[str, dict[str, Any]]  # campaign.json's cells: status, result, attempts...
    boards: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0: every cell done and VALID; 3: some INVALID, failed or not run."""
        ok = all(c["status"] == "done" and c.get("result") == "VALID"
                 for c in self.cells.values())
        return EXIT_VALID if ok else EXIT_INVALID


def run_campaign(plan: str | Path | dict[str, Any], *, out: str | Path | None = None,
                 force: bool = False, progress: Progress | None = None) -> CampaignResult:
    """Run (or resume) the campaign a plan describes (a TOML path or its dict); see
    docs/notes/campaigns.md. ``progress(event, data)`` hears each board's events (data has
    board, i, n, cell, text) and, as event "device", each run's own progress."""
    p = load_plan(plan, out)
    all_cells = cells(p)
    state = State(p, all_cells, force=force)
    say = progress or (lambda event, data: None)
    threads = [threading.Thread(target=_BoardRunner(p, b, [c for c in all_cells
                                                           if c.board is b], state, say).run,
                                name=f"campaign-{b.label}", daemon=True)  # Ctrl-C ends it
               for b in p.boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return CampaignResult(p.campaign_id, p.out, state.data["cells"], state.data["boards"])


class _Unhealthy(Exception):
    pass


class _BoardRunner:
    def __init__(self, plan: Plan, board: Board, todo: list[Cell], state: State,
                 say: Progress) -> None:
        self.plan, self.board, self.todo, self.state, self.say = plan, board, todo, state, say
        self.dev: Any = None
        self.n = len(todo)

    def event(self, event: str, i: int, cell: Cell | None, text: str, **more: Any) -> None:
        self.say(event, {"board": self.board.label, "i": i, "n": self.n,
                         "cell": cell.id if cell else None, "text": text, **more})

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - one board's bug must not stop the others
            self.state.board(self.board.label, health="error", reason=f"{exc}")
            self.event("board-error", 0, None, f"stopped: {type(exc).__name__}: {exc}")
            self._skip_rest(0, f"the board's runner stopped: {exc}")
        finally:
            self._close()

    def _run(self) -> None:
        cid = self.plan.campaign_id
        ran = 0
        for i, cell in enumerate(self.todo, 1):
            if is_done(cell, cid):
                self.state.cell(cell, status="done", **_result_of(cell))
                self.event("cell-done", i, cell, "done already")
                continue
            if self.dev is None:
                try:
                    self._connect(i)
                except _Unhealthy as exc:
                    self._skip_rest(i - 1, f"board unhealthy: {exc}")
                    return
            if ran and self.plan.cool_down_s:
                self.event("cool-down", i, cell, f"cooling down {self.plan.cool_down_s:g} s")
                time.sleep(self.plan.cool_down_s)
            ran += 1
            if not self._cell(i, cell):
                why = self.state.data["boards"][self.board.label]["reason"]
                self._skip_rest(i, f"board unhealthy: {why}")
                return

    def _connect(self, i: int) -> None:
        from edgeperf.api import connect

        self.event("health", i, None, f"health check of {self.board.spec}")
        needs = any(m.endswith(".tflite") for m in self.plan.models)
        try:
            dev = connect(self.board.spec, needs_runtime=needs)
        except EdgeperfError as exc:
            self._unhealthy(i, f"cannot connect: {exc}")
        try:
            info = dev.info()
            th = device_state.throttling(info.get("telemetry") or {}, None)
        except EdgeperfError as exc:
            dev.close()
            self._unhealthy(i, f"the agent does not answer: {exc}")
        if th.get("throttled"):
            dev.close()
            self._unhealthy(i, "throttled: " + "; ".join(th.get("throttled_reasons") or []))
        self.dev = dev
        self.state.board(self.board.label, health="ok", link=dev.link, reason=None,
                         agent_pid=info.get("pid"))
        self.event("healthy", i, None, f"healthy ({dev.link})", agent_pid=info.get("pid"))

    def _unhealthy(self, i: int, why: str) -> None:
        self.state.board(self.board.label, health="unhealthy", reason=why)
        self.event("unhealthy", i, None, f"unhealthy, skipped: {why}")
        raise _Unhealthy(why)

    def _skip_rest(self, done_upto: int, why: str) -> None:
        for cell in self.todo[done_upto:]:
            if self.state.data["cells"][cell.id]["status"] in ("pending", "running"):
                self.state.cell(cell, status="skipped", reason=why)

    def _close(self) -> None:
        if self.dev is not None:
            try:
                self.dev.close()
            except Exception:  # noqa: BLE001 - a board gone already
                pass
            self.dev = None

    def _cell(self, i: int, cell: Cell) -> bool:
        """Run one cell to completion (retrying a reset board); False: the board is gone."""
        cid = self.plan.campaign_id
        entry = self.state.data["cells"][cell.id]
        failed = list(entry.get("failed_attempts") or [])
        if cell.out_dir.exists():  # a run killed with the campaign: kept, run again
            why = ("ended in an error: " + "; ".join(_errors(cell))) if _errors(cell) else \
                "interrupted (the campaign stopped during the run)"
            kept = keep_failed(cell, cid, len(failed) + 1, why)
            failed.append({"dir": str(kept), "reason": why})
            self.state.cell(cell, failed_attempts=failed)
        attempts, before = 0, int(entry.get("attempts") or 0)  # attempts: all, ever
        while True:
            attempts += 1
            self.state.cell(cell, status="running", attempts=before + attempts)
            self.event("run", i, cell, f"running (attempt {attempts})")
            why = self._attempt(cell)
            if why is None:
                r = _result_of(cell)
                if db.store_url() is not None:
                    try:
                        set_campaign(cell.out_dir, cid)
                        is_done(cell, cid)  # recorded now if the run's own record failed
                    except (OSError, ValueError, db.StoreError) as exc:
                        self.event("warning", i, cell, f"not in the store: {exc}")
                self.state.cell(cell, status="done", **r)
                self.event("cell-done", i, cell, f"{r.get('result')}")
                return True
            kept = keep_failed(cell, cid, len(failed) + 1, str(why))
            failed.append({"dir": str(kept) if kept else None, "reason": str(why)})
            last = isinstance(why, _Final) or attempts > self.plan.retries
            if last:
                self.state.cell(cell, status="failed", reason=str(why), failed_attempts=failed)
                self.event("cell-failed", i, cell, f"failed: {why}")
                if isinstance(why, _Final):
                    return True  # the board is fine: its next cell
            else:
                self.state.cell(cell, failed_attempts=failed)
                self.event("retry", i, cell, f"attempt {attempts} failed ({why}); reconnecting")
            self._close()
            if not isinstance(why, _Final):
                self._hard_reset(i, cell)
            try:
                self._connect(i)
            except _Unhealthy as exc:
                if not last:
                    self.state.cell(cell, status="failed", reason=f"board unhealthy: {exc}")
                return False
            if last:
                return True

    def _hard_reset(self, i: int, cell: Cell) -> None:
        """A labgrid place with a power switch is power-cycled before the reconnect."""
        if not self.board.spec.startswith("labgrid:"):
            return
        from edgeperf.links.labgrid import hard_reset

        try:
            done = hard_reset(self.board.spec)
        except EdgeperfError as exc:
            self.event("reset", i, cell, f"hard reset failed: {exc}")
        else:
            if done:
                self.event("reset", i, cell, f"hard reset: {done}")

    def _attempt(self, cell: Cell) -> str | None:
        """One run of the cell: None when it completed (VALID, INVALID or its own error),
        else why the board failed it (a _Final reason: not worth retrying)."""
        b, p = self.board, self.plan

        def device_progress(event: str, data: dict[str, Any]) -> None:
            self.say("device", {"board": b.label, "cell": cell.id, "event": event,
                                "data": data})

        kw: dict[str, Any] = dict(b.settings) if b.mcu else dict(p.overrides(b, cell.scenario))
        if b.threads is not None:
            kw["threads"] = b.threads
        try:
            if b.mcu:  # MLPerf Tiny's procedure; a TinyResult, its result.json as any run's
                r = self.dev.run(task=cell.task, mode=cell.mode, out_dir=cell.out_dir,
                                 progress=device_progress, **kw)
            else:
                r = self.dev.run(model=cell.model, task=cell.task, scenario=cell.scenario,
                                 mode=cell.mode, preset=b.preset or p.preset,
                                 out_dir=cell.out_dir, progress=device_progress, **kw)
        except (LinkError, AgentError) as exc:  # AgentDied, AgentTimeout: the board reset
            return f"{type(exc).__name__}: {exc}"
        except (UsageError, EdgeperfError) as exc:  # the run cannot be made on this board
            return _Final(f"{type(exc).__name__}: {exc}")
        if getattr(r, "exit_code", EXIT_VALID) == EXIT_ERROR:
            try:
                self.dev.info()  # did the board survive the run?
            except EdgeperfError as exc:
                return f"{r.error or 'the run failed'} ({type(exc).__name__})"
        if not (cell.out_dir / "result.json").is_file():
            return _Final(f"the run wrote no result.json: {getattr(r, 'error', None)}")
        if _errors(cell):  # the board is fine but the run is not complete
            return _Final("the run ended in an error: " + "; ".join(_errors(cell)))
        return None


class _Final(str):
    """A failure a retry would repeat (the model is not there, the settings are wrong)."""


def _errors(cell: Cell) -> list[str]:
    try:
        return list(json.loads((cell.out_dir / "result.json").read_text()).get("errors") or [])
    except (OSError, ValueError, AttributeError):
        return []


def _result_of(cell: Cell) -> dict[str, Any]:
    try:
        rec = json.loads((cell.out_dir / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    return {"result": rec.get("result"), "reason": None}
