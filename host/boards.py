"""Board profiles: ``boards/NAME.toml`` parsed and checked into a BoardProfile.

A profile is data: which device, how to reach it, how to tune it. Errors name the file, the
key and what is allowed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LINK_TYPES = ("local",)
_SECTIONS = {"board": {"name", "description"},
             "link": {"type", "python", "cache_dir"},
             "device": {"cpu_affinity"},
             "meter": {"url"}}


class BoardError(ValueError):
    pass


@dataclass
class BoardProfile:
    name: str
    link_type: str
    description: str = ""
    python: str | None = None
    cache_dir: str | None = None
    cpu_affinity: list[int] = field(default_factory=list)
    source: str = ""
    meter_url: str | None = None  # [meter] url: the board's power meter (edgeperf run --meter)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "link": self.link_type, "description": self.description,
                "python": self.python, "cpu_affinity": self.cpu_affinity, "source": self.source,
                "meter": self.meter_url}


def board_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: $EDGEPERF_BOARDS (os.pathsep list),
    ~/.config/edgeperf/boards, then the profiles shipped with edgeperf."""
    dirs = [Path(p) for p in os.environ.get("EDGEPERF_BOARDS", "").split(os.pathsep) if p]
    dirs.append(Path.home() / ".config" / "edgeperf" / "boards")
    here = Path(__file__).resolve().parent
    dirs += [here / "_boards", here.parent / "boards"]
    return dirs


def list_boards() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(board_dirs()):
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                found[p.stem] = p
    return dict(sorted(found.items()))


def parse_board(text: str, source: str = "<text>") -> BoardProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{source}: not valid TOML: {exc}") from None
    for section, value in data.items():
        if section not in _SECTIONS:
            raise BoardError(f"{source}: unknown section [{section}]; allowed: "
                             + ", ".join(f"[{s}]" for s in _SECTIONS))
        allowed = _SECTIONS[section]
        if allowed is not None and isinstance(value, dict):
            for key in value:
                if key not in allowed:
                    raise BoardError(f"{source}: unknown key '{section}.{key}'; allowed in "
                                     f"[{section}]: {', '.join(sorted(allowed))}")
    board, link, device = data.get("board", {}), data.get("link", {}), data.get("device", {})
    name = board.get("name") or Path(source).stem
    ltype = link.get("type")
    if ltype not in LINK_TYPES:
        raise BoardError(f"{source}: link.type is {ltype!r}; allowed: {', '.join(LINK_TYPES)}")
    aff = device.get("cpu_affinity", [])
    if not (isinstance(aff, list) and all(isinstance(c, int) and c >= 0 for c in aff)):
        raise BoardError(f"{source}: device.cpu_affinity must be a list of core numbers, "
                         f"got {aff!r}")
    py = link.get("python")
    if py is not None and not isinstance(py, str):
        raise BoardError(f"{source}: link.python must be a path string, got {py!r}")
    meter_section = data.get("meter", {})
    if not isinstance(meter_section, dict):
        raise BoardError(f"{source}: [meter] must be a section with url = \"...\"")
    meter = meter_section.get("url")
    if meter is not None and not (isinstance(meter, str) and meter.strip()):
        raise BoardError(f"{source}: meter.url must be a meter URL string (ptd://HOST:PORT, "
                         f"lpm01a:///dev/ttyACM0, joulescope, sysfs, csv:FILE), got {meter!r}")
    return BoardProfile(name=name, link_type=ltype, description=board.get("description", ""),
                        python=py, cache_dir=link.get("cache_dir"), cpu_affinity=aff,
                        source=source, meter_url=meter)


def load_board(name_or_path: str) -> BoardProfile:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return parse_board(p.read_text(), str(p))
    boards = list_boards()
    if name_or_path not in boards:
        known = ", ".join(boards) or "(none found)"
        raise BoardError(f"no board profile named {name_or_path!r}; known boards: {known}. "
                         "Add boards/NAME.toml or pass a path to a .toml file")
    path = boards[name_or_path]
    return parse_board(path.read_text(), str(path))


def open_link(profile: BoardProfile):
    from .link import LocalLink

    if profile.link_type == "local":
        return LocalLink(python=profile.python, cache_dir=profile.cache_dir)
    raise BoardError(f"board {profile.name}: link type {profile.link_type!r} is not supported")
