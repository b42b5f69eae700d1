"""What the tree builder recorded about a result's runs (placeholder until its layout lands)."""

from __future__ import annotations

from pathlib import Path


def recorded_runs(scen: Path) -> dict[str, str]:
    return {}


def recorded_model(scen: Path) -> tuple[Path, str | None]:
    return scen, None


def recorded_meter(scen: Path) -> str | None:
    return None
