"""What the tree records about a result's runs, for the rules that need it: the model's sha256
(closed requires the rules' model), the power meter (closed accepts only some) and the run
directories the result was copied from (an untruncated accuracy log may still be there).

They are read from the tree builder's record, ``{division}/{org}/src/edgeperf-submission.json``
(``results["SYS/BENCH/SCENARIO"]``: model_sha256, power_meter URL, runs), else from the
scenario's measurements.json (a key naming ``sha256``, ``meter``) or
its README.md, one ``what: value`` line each (``model sha256: HEX``, ``power meter: NAME``,
``accuracy run: DIR``, ``performance run: DIR``), as the tree builder writes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_SHA = re.compile(r"\b([0-9a-f]{64})\b")
_LINE = re.compile(r"^\W*(?P<what>[A-Za-z][\w ./-]*?)\W*:\s*`?(?P<value>[^`\s]+)`?\s*$")


def _lines(scen: Path) -> list[tuple[str, str]]:
    readme = scen / "README.md"
    if not readme.is_file():
        return []
    out = []
    for ln in readme.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LINE.match(ln.strip())
        if m:
            out.append((m["what"].lower(), m["value"]))
    return out


def _measurements(scen: Path) -> dict[str, str]:
    try:
        data = json.loads((scen / "measurements.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k).lower(): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _state(scen: Path) -> tuple[Path, dict]:
    """The tree builder's record of this result: (its file, its entry) or (README.md, {})."""
    from edgeperf.submission.tree import STATE_NAME

    bench, system, org = scen.parent, scen.parent.parent, scen.parents[3]
    path = org / "src" / STATE_NAME
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        entry = state["results"][f"{system.name}/{bench.name}/{scen.name}"]
    except (OSError, ValueError, KeyError, TypeError):
        return scen / "README.md", {}
    return path, entry if isinstance(entry, dict) else {}


def recorded_model(scen: Path) -> tuple[Path, str | None]:
    """(the file that records it, the model's sha256) or (the scenario's README, None)."""
    path, entry = _state(scen)
    if entry.get("model_sha256"):
        return path, str(entry["model_sha256"]).lower()
    for k, v in _measurements(scen).items():
        if "sha256" in k and _SHA.fullmatch(v.lower()):
            return scen / "measurements.json", v.lower()
    for what, value in _lines(scen):
        if "model" in what and _SHA.fullmatch(value.lower()):
            return scen / "README.md", value.lower()
    return scen / "README.md", None


def recorded_meter(scen: Path) -> str | None:
    """The meter's kind (a meter URL's scheme: ``ptd``, ``sysfs``...) or name."""
    _, entry = _state(scen)
    if entry.get("power_meter"):
        return str(entry["power_meter"]).split(":", 1)[0]
    for k, v in _measurements(scen).items():
        if "meter" in k and v:
            return v
    return next((value for what, value in _lines(scen) if "meter" in what), None)


def recorded_runs(scen: Path) -> dict[str, str]:
    """{"accuracy": DIR, "performance": DIR} as far as the README names them."""
    _, entry = _state(scen)
    runs = {k: str(v) for k, v in (entry.get("runs") or {}).items()}
    for what, value in _lines(scen):
        for kind in ("accuracy", "performance"):
            if kind in what and "run" in what:
                runs.setdefault(kind, value)
    return runs
