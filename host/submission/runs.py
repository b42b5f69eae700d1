"""edgeperf run directories as ``submission add`` reads them: a submission-mode run (its
accuracy/ and performance/ directories), a plain performance or accuracy run, a compliance
run (result.json mode test01/test04), or an MCU run (edgeperf.tiny-result/1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError

RESULT_SCHEMA = "edgeperf.result/1"
TINY_SCHEMA = "edgeperf.tiny-result/1"
COMPLIANCE_MODES = {"test01": "TEST01", "test04": "TEST04"}


@dataclass(frozen=True)
class Run:
    path: Path
    record: dict[str, Any]
    kind: str  # "performance" | "accuracy" | "TEST01" | "TEST04" | tiny: "accuracy" ...
    tiny: bool
    scenario: str  # LoadGen's scenario; "" for an MCU run

    @property
    def label(self) -> str:
        return f"{self.path} ({self.kind}{', ' + self.scenario if self.scenario else ''})"


def _kind(rec: dict[str, Any], path: Path) -> str:
    for key in ("mode", "compliance"):
        v = str(rec.get(key) or "").lower()
        if v in COMPLIANCE_MODES:
            return COMPLIANCE_MODES[v]
    settings = rec.get("settings") or {}
    mode = (rec.get("mode") or (settings.get("effective") or {}).get("mode")
            or (settings.get("requested") or {}).get("mode") or "")
    if mode == "AccuracyOnly":
        return "accuracy"
    if mode == "PerformanceOnly":
        return "performance"
    raise UsageError(f"{path}/result.json: mode {mode!r} is neither a performance nor an "
                     f"accuracy run; add the directories of 'edgeperf run --mode submission'")


def read_run(path: Path) -> Run:
    try:
        rec = json.loads((path / "result.json").read_text())
    except OSError as e:
        raise UsageError(f"{path}/result.json: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}/result.json is not JSON ({e}); is the run finished?") from None
    schema = rec.get("schema")
    if schema == TINY_SCHEMA:
        mode = str(rec.get("mode") or "")
        if mode not in ("accuracy", "performance", "energy"):
            raise UsageError(f"{path}/result.json: MCU run mode {mode!r} is not accuracy, "
                             f"performance or energy")
        return Run(path, rec, mode, True, "")
    if schema != RESULT_SCHEMA:
        raise UsageError(f"{path}/result.json: schema {schema!r} is not an edgeperf run's "
                         f"({RESULT_SCHEMA} or {TINY_SCHEMA})")
    settings = rec.get("settings") or {}
    scen = (settings.get("effective") or settings.get("requested") or {}).get("scenario")
    if not scen:
        raise UsageError(f"{path}/result.json records no scenario (settings.effective)")
    return Run(path, rec, _kind(rec, path), False, str(scen))


def collect_runs(paths: list[str | Path]) -> list[Run]:
    """Every run under the given directories: a submission run gives its accuracy,
    performance and audit runs, one level down (several scenarios: two levels)."""
    runs = []
    for p in map(Path, paths):
        if (p / "result.json").is_file():
            runs.append(read_run(p))
            continue
        subs = [d for d in sorted(p.iterdir()) if (d / "result.json").is_file()] \
            if p.is_dir() else []
        # a submission run of several scenarios: performance/SCENARIO, TEST01/SCENARIO, ...
        subs += [d for s in (sorted(p.iterdir()) if p.is_dir() else []) if s.is_dir()
                 and not (s / "result.json").is_file()
                 for d in sorted(s.iterdir()) if (d / "result.json").is_file()]
        if not subs:
            raise UsageError(f"{p}: no result.json here or in a sub-directory; pass the --out "
                             f"directory of 'edgeperf run'")
        runs += [read_run(d) for d in subs]
    return runs


__all__ = ["COMPLIANCE_MODES", "Run", "collect_runs", "read_run"]
