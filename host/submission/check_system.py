"""The descriptions around the results: ``systems/<system>.json`` (every required field, the
meaningful ones non-empty, the allowed values, division and submitter equal to the directory
names), each scenario's measurements.json, user.conf and README.md, and the submitter's src/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperf.submission.check_report import Report
from edgeperf.submission.system import STATUSES

SYSTEM_TYPES = ("edge", "datacenter,edge", "edge,datacenter")
INTEGER_FIELDS = ("number_of_nodes", "accelerators_per_node")


def load_json(rep: Report, path: Path, rule: str) -> dict[str, Any] | None:
    if not path.is_file():
        rep.error(path, rule, "missing; edgeperf submission add writes it")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        rep.error(path, rule, f"not JSON ({exc}); fix its syntax")
        return None
    if not isinstance(data, dict):
        rep.error(path, rule, "not a JSON object of fields")
        return None
    return data


def check_system(rep: Report, path: Path, rules: Any, division: str, submitter: str,
                 has_power: bool) -> dict[str, Any]:
    """The system description's fields; its content ({} when unreadable)."""
    data = load_json(rep, path, "system-json")
    if data is None:
        return {}
    for name in rules.system_required_fields:
        if name not in data:
            rep.error(path, "system-field", f"field {name!r} is missing; add it (empty is "
                                            f"allowed only where MLCommons allows it)")
    for name in rules.system_meaningful_fields:
        if name in data and (data[name] is None or str(data[name]).strip() == ""):
            rep.error(path, "system-field", f"field {name!r} is empty; MLCommons requires a "
                                            f"meaningful value")
    if has_power:
        missing = [n for n in rules.system_power_fields if n not in data]
        if missing:
            rep.warn(path, "system-power-fields", f"a power system should describe "
                                                  f"{', '.join(missing)} (MLCommons' old "
                                                  f"checker requires them)")
    status = str(data.get("status", "")).lower()
    if "status" in data and status not in STATUSES:
        rep.error(path, "system-status", f"status {data['status']!r} is not one of "
                                         f"{', '.join(STATUSES)}")
    stype = data.get("system_type")
    if "system_type" in data and stype not in SYSTEM_TYPES:
        rep.error(path, "system-type", f"system_type {stype!r} is not one of "
                                       f"{', '.join(SYSTEM_TYPES)} (edgeperf submits edge)")
    check_names(rep, path, data, division, submitter)
    for name in INTEGER_FIELDS:
        v = data.get(name)
        if name in data and not (isinstance(v, str) and v.strip().isdigit()):
            rep.error(path, "system-integer", f"{name} is {v!r}; MLCommons multiplies it: "
                                              f"write an integer string such as \"1\"")
    v = data.get("is_network")
    if v not in ("", None):
        rep.error(path, "is-network", f"is_network is {v!r}: MLCommons reads any "
                                          f"non-empty value (the string \"false\" too) as a "
                                          f"network system; remove the field")
    return data


def check_names(rep: Report, path: Path, data: dict[str, Any], division: str,
                submitter: str) -> None:
    """division and submitter equal the directories the system sits in (any case)."""
    for name, want in (("division", division), ("submitter", submitter)):
        if name in data and str(data[name]).lower() != want.lower():
            rep.error(path, f"system-{name}", f"{name} is {data[name]!r}, the tree puts it "
                                              f"under {want!r}; make them equal")


def check_scenario_files(rep: Report, scen: Path, rules: Any) -> None:
    data = load_json(rep, scen / "measurements.json", "measurements-json")
    if data is not None:
        for name in rules.measurements_required_fields:
            if name not in data:
                rep.error(scen / "measurements.json", "measurements-field",
                          f"field {name!r} is missing; add it")
            elif data[name] is None or str(data[name]).strip() == "":
                rep.error(scen / "measurements.json", "measurements-field",
                          f"field {name!r} is empty; describe it")
    for name in ("user.conf", "README.md"):
        f = scen / name
        if not f.is_file():
            rep.error(f, "required-file", f"missing; {name} goes in every scenario directory")
        elif f.stat().st_size == 0:
            rep.error(f, "empty-file", f"{name} is empty; MLCommons requires it non-empty")


def check_src(rep: Report, org: Path) -> None:
    src = org / "src"
    if not src.is_dir():
        rep.error(src, "src", "missing; the submitter's code (or a README naming it) goes in "
                              "src/ (v6.x's name for code/)")
