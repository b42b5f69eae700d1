"""Settings for short end-to-end runs, shared by the local, SSH and serial tests."""

from __future__ import annotations

import dataclasses

from edgeperf.settings import TestSettings, preset


def small(scenario: str, **kw) -> TestSettings:
    """The smoke preset cut to a few hundred queries, still able to pass early stopping."""
    s = preset("smoke", scenario)
    changes: dict = dict(min_query_count=80, min_duration_ms=0, warmup_queries=2)
    if scenario == "MultiStream":
        changes["min_query_count"] = 700  # early stopping at p99 needs 662
    if scenario == "Server":
        changes.update(target_qps=2000.0, target_latency_ns=50_000_000, min_query_count=800)
    if scenario == "Offline":
        changes.update(min_query_count=300)
    changes.update(kw)
    return dataclasses.replace(s, **changes)
