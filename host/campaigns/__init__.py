"""Campaigns: a matrix of boards x models or tasks x scenarios x modes, with repetitions,
run in parallel over the boards and serially on each, resumable (docs/notes/campaigns.md).

    import edgeperf
    r = edgeperf.campaign("plan.toml")     # or the plan as a dict (edgeperf.campaigns.run_campaign)
    print(r.campaign, r.exit_code, r.cells)
"""

from __future__ import annotations

from edgeperf.campaigns.plan import Plan, load_plan
from edgeperf.campaigns.runner import CampaignResult, run_campaign

campaign = run_campaign  # edgeperf.campaign(...), the public name

__all__ = ["CampaignResult", "Plan", "campaign", "load_plan", "run_campaign"]
