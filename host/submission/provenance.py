"""What the tree records about a result's runs, for the rules that need it: the model's sha256
(closed requires the rules' model), the power meter (closed accepts only some) and the run
directories the result was copied from (an untruncated accuracy log may still be there).

They are read from the scenario's measurements.json (a key naming ``sha256``, ``meter``) or
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


def recorded_model(scen: Path) -> tuple[Path, str | None]:
    """(the file that records it, the model's sha256) or (the scenario's README, None)."""
    for k, v in _measurements(scen).items():
        if "sha256" in k and _SHA.fullmatch(v.lower()):
            return scen / "measurements.json", v.lower()
    for what, value in _lines(scen):
        if "model" in what and _SHA.fullmatch(value.lower()):
            return scen / "README.md", value.lower()
    return scen / "README.md", None


def recorded_meter(scen: Path) -> str | None:
    for k, v in _measurements(scen).items():
        if "meter" in k and v:
            return v
    return next((value for what, value in _lines(scen) if "meter" in what), None)


def recorded_runs(scen: Path) -> dict[str, str]:
    """{"accuracy": DIR, "performance": DIR} as far as the README names them."""
    runs = {}
    for what, value in _lines(scen):
        for kind in ("accuracy", "performance"):
            if kind in what and "run" in what:
                runs.setdefault(kind, value)
    return runs
