"""A campaign's plan (a TOML file or a dict): what runs where, checked before anything runs.

    models = ["synthetic:busy:100"]   # and/or tasks = ["ic-digits"]; these top-level
    scenarios = ["SingleStream", "Offline"]   # keys come first: TOML puts a key written
    modes = ["performance"]           # after a [table] into that table

    [campaign]
    name = "nightly"          # the campaign id is NAME-<hash of the plan>
    out = "campaigns/nightly" # relative to the plan file (a dict: to the working directory)
    repeats = 1               # each cell this many times (rep1, rep2...)
    cool_down_s = 0.0         # a board rests this long between two runs
    retries = 2               # a run whose board resets is run again this many times
    preset = "quick"          # the settings every run starts from

    [[boards]]
    name = "local"            # a profile name, a .toml path or labgrid://PLACE (label = "...")
    settings = { min_duration_ms = 200 }   # this board's own overrides (optional)

    [[boards]]                # a microcontroller (link.type "tiny"): the plan's tasks, by
    name = "nucleo-l4r5zi"    # MLPerf Tiny's procedures, in the modes performance, accuracy
    settings = { windows = 5, window_s = 10.0 }   # and energy (no scenarios, no models)

    [settings]                # TestSettings fields for every run
    min_duration_ms = 100
    [settings.SingleStream]   # ... and for one scenario's runs
    target_latency_ns = 50000
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError
from edgeperf.settings import PRESETS, SCENARIOS, TestSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MODES = ("performance", "accuracy", "submission", "energy")
AGENT_MODES = ("performance", "accuracy", "submission")  # a board that runs the agent
MCU_MODES = ("performance", "accuracy", "energy")  # an MCU board: MLPerf Tiny's procedures
MCU_SETTINGS = {"windows": int, "window_s": (int, float)}
_CAMPAIGN_KEYS = {"name", "out", "repeats", "cool_down_s", "retries", "preset"}
_TOP_KEYS = {"campaign", "boards", "models", "tasks", "scenarios", "modes", "settings"}
_BOARD_KEYS = {"name", "label", "settings", "preset", "threads"}
_FIELDS = {f.name for f in dataclasses.fields(TestSettings)} - {"scenario", "mode"}


@dataclass
class Board:
    label: str  # how the campaign names it (its folder, its progress lines)
    spec: str  # what edgeperf.connect is given
    settings: dict[str, Any] = field(default_factory=dict)  # flat, or {scenario: {...}}
    preset: str | None = None
    threads: int | None = None
    mcu: bool = False  # a microcontroller (link.type "tiny"): Tiny's procedures, tasks only


@dataclass
class Plan:
    name: str
    out: Path
    boards: list[Board]
    models: list[str]
    tasks: list[str]
    scenarios: list[str]
    modes: list[str]
    settings: dict[str, Any]
    repeats: int = 1
    cool_down_s: float = 0.0
    retries: int = 2
    preset: str = "quick"
    data: dict[str, Any] = field(default_factory=dict)  # the plan as given, normalised

    @property
    def digest(self) -> str:
        return plan_hash(self.data)

    @property
    def campaign_id(self) -> str:
        return f"{self.name}-{self.digest[:10]}"

    def overrides(self, board: Board, scenario: str) -> dict[str, Any]:
        """The TestSettings overrides of a run: the plan's, its scenario's, the board's,
        the board's for the scenario (later wins)."""
        out: dict[str, Any] = {}
        for table in (self.settings, board.settings):
            out.update({k: v for k, v in table.items() if not isinstance(v, dict)})
            out.update(table.get(scenario) or {})
        return out


def plan_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def load_plan(source: str | Path | dict[str, Any], out: str | Path | None = None) -> Plan:
    """A Plan from a TOML path or a dict; UsageError naming the key that is wrong."""
    if isinstance(source, dict):
        data, base = copy.deepcopy(source), Path.cwd()
    else:
        path = Path(source)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise UsageError(f"campaign plan {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"campaign plan {path} is not valid TOML: {exc}") from None
        base = path.resolve().parent
    return _check(data, base, out)


def _check(data: dict[str, Any], base: Path, out: str | Path | None) -> Plan:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise UsageError(f"plan: unknown key {sorted(unknown)[0]!r}; the keys are "
                         f"{', '.join(sorted(_TOP_KEYS))}")
    camp = _table(data, "campaign", required=True)
    bad = set(camp) - _CAMPAIGN_KEYS
    if bad:
        raise UsageError(f"plan: unknown key campaign.{sorted(bad)[0]}; [campaign] takes "
                         f"{', '.join(sorted(_CAMPAIGN_KEYS))}")
    name = camp.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise UsageError("plan: campaign.name must be a name (text without '/')")
    repeats = _int(camp, "repeats", 1, least=1)
    retries = _int(camp, "retries", 2, least=0)
    cool = camp.get("cool_down_s", 0.0)
    if isinstance(cool, bool) or not isinstance(cool, (int, float)) or cool < 0:
        raise UsageError("plan: campaign.cool_down_s must be seconds >= 0")
    preset = _preset(camp.get("preset", "quick"), "campaign.preset")
    where = out if out is not None else camp.get("out", f"campaigns/{name}")
    out_dir = Path(where) if Path(where).is_absolute() or out is not None else base / where
    models, tasks = _names(data, "models"), _names(data, "tasks")
    if not models and not tasks:
        raise UsageError("plan: give models = [...] and/or tasks = [...]")
    scenarios = _names(data, "scenarios")
    for s in scenarios:
        if s not in SCENARIOS:
            raise UsageError(f"plan: scenarios: unknown {s!r}; choose from {', '.join(SCENARIOS)}")
    modes = _names(data, "modes") or ["performance"]
    for m in modes:
        if m not in MODES:
            raise UsageError(f"plan: modes: unknown {m!r}; choose from {', '.join(MODES)}")
    settings = _settings(data.get("settings", {}), "settings")
    boards = _boards(data.get("boards"), base)
    if not scenarios and not all(b.mcu for b in boards):
        raise UsageError(f"plan: scenarios = [...] is needed ({', '.join(SCENARIOS)})")
    for b in boards:
        if b.mcu and not tasks:
            raise UsageError(f"plan: board {b.label} is a microcontroller: it runs tasks (tasks "
                             "= [\"ic-digits\"]), not models (its model is its firmware's)")
        if b.mcu and not set(modes) & set(MCU_MODES):
            raise UsageError(f"plan: board {b.label} is a microcontroller: give it a mode of "
                             f"{', '.join(MCU_MODES)}")
        if not b.mcu and not set(modes) & set(AGENT_MODES):
            raise UsageError(f"plan: board {b.label} runs the agent: mode energy is for "
                             "microcontrollers; give it a mode of " + ", ".join(AGENT_MODES))
    data.setdefault("modes", modes)
    return Plan(name=name, out=out_dir.resolve(), boards=boards, models=models, tasks=tasks,
                scenarios=scenarios, modes=modes, settings=settings, repeats=repeats,
                cool_down_s=float(cool), retries=retries, preset=preset,
                data={k: v for k, v in data.items()})


def _table(data: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    t = data.get(key)
    if t is None and not required:
        return {}
    if not isinstance(t, dict):
        raise UsageError(f"plan: [{key}] must be a table" + (" (it is needed)" if t is None
                                                            else ""))
    return t


def _int(t: dict[str, Any], key: str, default: int, least: int) -> int:
    v = t.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise UsageError(f"plan: campaign.{key} must be a whole number >= {least}")
    return v


def _preset(v: Any, key: str) -> str:
    if v not in PRESETS:
        raise UsageError(f"plan: {key} {v!r}: choose one of {', '.join(PRESETS)}")
    return v


def _names(data: dict[str, Any], key: str) -> list[str]:
    v = data.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise UsageError(f"plan: {key} must be a list of names")
    if len(set(v)) != len(v):
        raise UsageError(f"plan: {key} names one twice")
    return list(v)


def _settings(t: Any, key: str, nested: bool = True) -> dict[str, Any]:
    if not isinstance(t, dict):
        raise UsageError(f"plan: {key} must be a table of TestSettings fields")
    for k, v in t.items():
        if isinstance(v, dict) and nested:
            if k not in SCENARIOS:
                raise UsageError(f"plan: {key}.{k}: a table here must be named by a scenario "
                                 f"({', '.join(SCENARIOS)})")
            _settings(v, f"{key}.{k}", nested=False)
        elif k not in _FIELDS:
            raise UsageError(f"plan: {key}.{k} is not a TestSettings field (e.g. "
                             "min_duration_ms, min_query_count, target_latency_ns, target_qps)")
    return t


def _boards(t: Any, base: Path) -> list[Board]:
    if not isinstance(t, list) or not t:
        raise UsageError('plan: [[boards]] is needed: name = "local" (a profile name or a '
                         ".toml path)")
    boards: list[Board] = []
    for i, b in enumerate(t):
        where = f"boards[{i}]"
        if not isinstance(b, dict):
            raise UsageError(f"plan: {where} must be a table")
        bad = set(b) - _BOARD_KEYS
        if bad:
            first = sorted(bad)[0]
            hint = (f" ({first} belongs at the top of the plan, before any [table]: TOML "
                    "puts a key written after [[boards]] into the board)"
                    if first in _TOP_KEYS else "")
            raise UsageError(f"plan: unknown key {where}.{first}; a board takes "
                             f"{', '.join(sorted(_BOARD_KEYS))}{hint}")
        name = b.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"plan: {where}.name is needed (a profile name or a .toml path)")
        spec = name
        if name.endswith(".toml") and not Path(name).is_absolute():
            spec = str(base / name)
        label = b.get("label") or (Path(name).stem if name.endswith(".toml") else
                                   _place(name) if name.startswith("labgrid://") else name)
        if not isinstance(label, str) or "/" in label:
            raise UsageError(f"plan: {where}.label must be a name without '/'")
        if any(x.label == label for x in boards):
            raise UsageError(f"plan: two boards are named {label!r}: give one a label = ...")
        threads = b.get("threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise UsageError(f"plan: {where}.threads must be a whole number >= 1")
        preset = _preset(b["preset"], f"{where}.preset") if "preset" in b else None
        if _is_mcu(spec):
            boards.append(Board(label, spec, _mcu_settings(b, where), None, None, mcu=True))
            continue
        boards.append(Board(label, spec, _settings(b.get("settings", {}), f"{where}.settings"),
                            preset, threads))
    return boards


def _is_mcu(spec: str) -> bool:
    """A board whose profile (or tiny: URL) says link.type "tiny"; a board that cannot be
    loaded is not (its health check says why)."""
    from edgeperf.boards.profile import BoardError, load_board

    if spec.startswith(("ssh:", "serial:", "labgrid:")):
        return False
    try:
        return load_board(spec).link_type == "tiny"
    except (BoardError, UsageError, OSError):
        return False


def _mcu_settings(b: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("preset", "threads"):
        if key in b:
            raise UsageError(f"plan: {where}.{key}: the board is a microcontroller, which runs "
                             "MLPerf Tiny's procedures (its settings: windows, window_s)")
    t = b.get("settings", {})
    if not isinstance(t, dict):
        raise UsageError(f"plan: {where}.settings must be a table")
    for key, v in t.items():
        kind = MCU_SETTINGS.get(key)
        if kind is None:
            raise UsageError(f"plan: {where}.settings.{key}: the board is a microcontroller; "
                             f"its settings are {', '.join(MCU_SETTINGS)} (Tiny's windows)")
        if isinstance(v, bool) or not isinstance(v, kind) or v <= 0:
            raise UsageError(f"plan: {where}.settings.{key} must be a number > 0")
    return dict(t)


def _place(spec: str) -> str:
    """A labgrid board's label: its place's name (labgrid://PLACE?via=serial -> PLACE)."""
    return spec[len("labgrid://"):].partition("?")[0].strip("/") or spec


def differing_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two plans."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differing_keys(a, b, f"{prefix}{k}.")
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True,
                                                                       default=str):
            out.append(prefix + k)
    return out
