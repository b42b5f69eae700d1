"""Board profiles: ``boards/NAME.toml`` parsed and checked into a BoardProfile.

A profile is data: which device, how to reach it, how to tune it. Errors name the file, the
key and what is allowed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LINK_TYPES = ("local", "serial")
SERIAL_KEYS = {"port", "baud", "parity", "stopbits", "flow_control"}
_SECTIONS = {"board": {"name", "description"},
             "link": {"type", "python", "cache_dir"} | SERIAL_KEYS,
             "device": {"cpu_affinity"},
             "meter": None}


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
    serial: SerialParams | None = None  # link type "serial"

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "link": self.link_type, "description": self.description,
             "python": self.python, "cpu_affinity": self.cpu_affinity, "source": self.source}
        if self.serial is not None:
            d["serial"] = asdict(self.serial)
        return d


@dataclass
class SerialParams:
    """How to reach a board over a serial line (link type "serial")."""

    port: str
    baud: int = 115200
    parity: str = "N"  # N, E, O
    stopbits: int = 1
    flow_control: str = "none"  # none, rtscts, xonxoff


def _serial_params(link: dict[str, Any], source: str, where: str = "link.") -> SerialParams:
    port = link.get("port")
    if not isinstance(port, str) or not port:
        raise BoardError(f"{source}: a serial link needs {where}port, the device path "
                         "(e.g. /dev/ttyUSB0, /dev/ttyACM0)")
    baud = link.get("baud", 115200)
    if isinstance(baud, str) and baud.isdigit():
        baud = int(baud)
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise BoardError(f"{source}: {where}baud must be a positive whole number "
                         f"(e.g. 115200, 921600), got {baud!r}")
    parity = str(link.get("parity", "N")).upper()
    parity = {"NONE": "N", "EVEN": "E", "ODD": "O"}.get(parity, parity)
    if parity not in ("N", "E", "O"):
        raise BoardError(f"{source}: {where}parity is {link.get('parity')!r}; allowed: "
                         "N (none), E (even), O (odd)")
    stopbits = link.get("stopbits", 1)
    if isinstance(stopbits, str) and stopbits.isdigit():
        stopbits = int(stopbits)
    if stopbits not in (1, 2) or isinstance(stopbits, bool):
        raise BoardError(f"{source}: {where}stopbits is {stopbits!r}; allowed: 1, 2")
    flow = link.get("flow_control", "none")
    if flow not in ("none", "rtscts", "xonxoff"):
        raise BoardError(f"{source}: {where}flow_control is {flow!r}; allowed: none, rtscts, "
                         "xonxoff")
    return SerialParams(port, baud, parity, stopbits, flow)


def parse_board_url(url: str) -> BoardProfile:
    """``serial:///dev/ttyUSB0?baud=921600&parity=N&stopbits=1&flow_control=none``."""
    parts = urlsplit(url)
    if parts.scheme != "serial" or parts.netloc or not parts.path:
        raise BoardError(f"board URL {url!r}: write serial:///dev/ttyUSB0?baud=115200 "
                         "(three slashes: an empty host, then the device path)")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - (SERIAL_KEYS - {"port"})
    if unknown:
        raise BoardError(f"board URL {url!r}: unknown parameter {sorted(unknown)[0]!r}; "
                         f"allowed: {', '.join(sorted(SERIAL_KEYS - {'port'}))}")
    params = _serial_params(dict(query, port=parts.path), f"board URL {url!r}", where="")
    return BoardProfile(name=f"serial:{parts.path}", link_type="serial",
                        description=f"serial line {parts.path} at {params.baud} baud",
                        source=url, serial=params)


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
    serial = _serial_params(link, source) if ltype == "serial" else None
    if ltype != "serial" and set(link) & SERIAL_KEYS:
        raise BoardError(f"{source}: link.{sorted(set(link) & SERIAL_KEYS)[0]} belongs to a "
                         f"serial link, but link.type is {ltype!r}")
    return BoardProfile(name=name, link_type=ltype, description=board.get("description", ""),
                        python=py, cache_dir=link.get("cache_dir"), cpu_affinity=aff,
                        source=source, serial=serial)


def load_board(name_or_path: str) -> BoardProfile:
    if name_or_path.startswith("serial:"):
        return parse_board_url(name_or_path)
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
    if profile.link_type == "serial" and profile.serial is not None:
        from .serial_link import SerialLink

        sp = profile.serial
        return SerialLink(sp.port, sp.baud, sp.parity, sp.stopbits, sp.flow_control)
    raise BoardError(f"board {profile.name}: link type {profile.link_type!r} is not supported")
