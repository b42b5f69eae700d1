"""``edgeperf campaign PLAN.toml``: a matrix of boards x models or tasks x scenarios x modes,
boards in parallel, each board's runs one at a time, resumable (docs/notes/campaigns.md)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from edgeperf.cli.common import add_store_arg, formatter, use_store

CAMPAIGN_EXIT_HELP = """exit codes:
  0  every cell done and VALID
  3  some cell INVALID, failed, or not run (an unhealthy board)
  1  an error (the store, the disk)
  2  a usage error (the plan is wrong, or is not the plan of the campaign in --out)"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaign", help="run a plan's matrix of boards x models x scenarios, "
                                        "resumable", formatter_class=formatter,
                       description="Run every cell of a campaign plan (a TOML file: "
                                   "docs/notes/campaigns.md). Boards run in parallel, each "
                                   "board's runs one after another; a board is health-checked "
                                   "first and skipped when unhealthy. Run it again after a "
                                   "kill: only the missing cells run.",
                       epilog=CAMPAIGN_EXIT_HELP)
    p.add_argument("plan", metavar="PLAN.toml", type=Path, help="the campaign plan")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the campaign's folder (default: the plan's campaign.out)")
    p.add_argument("--force", action="store_true",
                   help="run this plan in a folder that holds a campaign of another plan")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    add_store_arg(p)
    p.set_defaults(fn=cmd_campaign)


def cmd_campaign(args: argparse.Namespace) -> int:
    from edgeperf.campaigns import run_campaign

    use_store(args)
    lock = threading.Lock()

    def show(event: str, data: dict[str, Any]) -> None:
        if event == "device" or args.quiet:
            return
        where = f" {data['i']}/{data['n']}" if data.get("i") else ""
        cell = f" {data['cell']}" if data.get("cell") else ""
        with lock:
            print(f"[{data['board']}]{where}{cell}: {data['text']}", flush=True)

    r = run_campaign(args.plan, out=args.out, force=args.force, progress=show)
    counts: dict[str, int] = {}
    for c in r.cells.values():
        what = c.get("result") if c["status"] == "done" else c["status"]
        counts[str(what)] = counts.get(str(what), 0) + 1
    print(f"campaign {r.campaign}: {len(r.cells)} cells: "
          + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f" ({r.out})")
    for label, b in sorted(r.boards.items()):
        if b.get("health") != "ok":
            print(f"board {label}: {b.get('health')}: {b.get('reason')}", file=sys.stderr)
    print(f"the store: edgeperf results list --campaign {r.campaign}")
    return r.exit_code
