"""OUT/campaign.json: the plan it runs and each cell's status, written whole and atomically
(a temporary file renamed over it) after every change, so a campaign killed at any moment
is read back as it was; and what makes a cell done (its result.json and its store record).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edgeperf.campaigns.cells import Cell
from edgeperf.campaigns.plan import Plan, differing_keys
from edgeperf.errors import UsageError
from edgeperf.store import db
from edgeperf.store.record import record_run, run_key, set_campaign

STATE = "campaign.json"


class State:
    def __init__(self, plan: Plan, cells: list[Cell], force: bool = False) -> None:
        self.path = plan.out / STATE
        self.lock = threading.Lock()
        old = self._read()
        if old and old.get("plan_hash") != plan.digest and not force:
            keys = differing_keys(old.get("plan") or {}, plan.data) or ["(the plan)"]
            raise UsageError(f"{self.path} is a campaign with another plan (it differs in "
                             f"{', '.join(keys)}); resume it with its own plan, choose another "
                             "--out, or pass --force to run the new plan there")
        kept = (old or {}).get("cells", {})
        self.data: dict[str, Any] = {
            "campaign": plan.campaign_id, "plan_hash": plan.digest, "plan": plan.data,
            "started": (old or {}).get("started") or _now(), "boards": {},
            "cells": {c.id: {"status": "pending",
                             "attempts": (kept.get(c.id) or {}).get("attempts", 0),
                             "failed_attempts": (kept.get(c.id) or {}).get("failed_attempts",
                                                                          []),
                             "out_dir": str(c.out_dir)} for c in cells}}
        self.save()

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path} cannot be read ({exc}): remove it to start the "
                             "campaign again") from None

    def cell(self, cell: Cell, **changes: Any) -> dict[str, Any]:
        with self.lock:
            entry = self.data["cells"][cell.id]
            entry.update(changes)
            self._save()
            return dict(entry)

    def board(self, label: str, **changes: Any) -> None:
        with self.lock:
            self.data["boards"].setdefault(label, {}).update(changes)
            self._save()

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{STATE}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(_dumps(self.data))
        os.replace(tmp, self.path)


def _dumps(data: dict[str, Any]) -> str:
    """The state as JSON, a line a cell and a board: json's C encoder for each (``indent``
    would take its pure-Python one, and the whole file is written at each change)."""
    def one(v: Any) -> str:
        return json.dumps(v, sort_keys=True, default=str)

    def block(k: str, v: Any) -> str:
        if k not in ("cells", "boards") or not isinstance(v, dict) or not v:
            return one(v)
        return "{\n" + ",\n".join(f"  {one(c)}: {one(x)}" for c, x in sorted(v.items())) + "\n }"

    return "{\n" + ",\n".join(f" {one(k)}: {block(k, v)}" for k, v in sorted(data.items())) + \
        "\n}\n"


def is_done(cell: Cell, campaign: str) -> bool:
    """The cell's run is complete: its folder has a readable result.json without errors (a
    run cut short by a board that reset is not complete), and the store holds
    that run (recorded now if the campaign was killed between the two), in ``campaign``."""
    res = cell.out_dir / "result.json"
    try:
        rec = json.loads(res.read_text())
    except (OSError, ValueError):
        return False
    if rec.get("errors"):
        return False  # it ended in an error (an agent that died, a link that dropped)
    if db.store_url() is None:
        return True  # the store is off: the outputs are all there is
    try:
        with db.open_store() as st:
            key = run_key(rec, cell.out_dir.resolve())
            rows = st.query("SELECT campaign_id FROM runs WHERE run_key = ?", (key,))
            if not rows:
                record_run(cell.out_dir, st, campaign=campaign)
            elif rows[0]["campaign_id"] != campaign:
                set_campaign(cell.out_dir, campaign, st)
    except db.StoreError as exc:  # as a run's own record: a store that fails only warns
        print(f"edgeperf: warning: {cell.id} is not recorded: {exc}", file=sys.stderr,
              flush=True)
    return True


def keep_failed(cell: Cell, campaign: str, n: int, reason: str) -> Path | None:
    """Move a failed (or interrupted) attempt's folder aside as ``<dir>.failed-<n>``, marked
    by an attempts.json in it; its store record, if any, moves to campaign ``ID:failed``."""
    d = cell.out_dir
    if not d.exists():
        return None
    if (d / "result.json").is_file() and db.store_url() is not None:
        try:
            set_campaign(d, f"{campaign}:failed")
        except Exception:  # noqa: BLE001 - the record is a courtesy; the folder is kept
            pass
    target = d.with_name(f"{d.name}.failed-{n}")
    while target.exists():
        n += 1
        target = d.with_name(f"{d.name}.failed-{n}")
    d.rename(target)
    (target / "attempts.json").write_text(json.dumps(
        {"cell": cell.id, "attempt": n, "failed": True, "reason": reason, "at": _now()},
        indent=1))
    return target


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
