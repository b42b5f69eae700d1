"""Board profiles: ``boards/NAME.toml`` parsed and checked into a BoardProfile.

A profile is data: which device, how to reach it, how to tune it. Errors name the file, the
key and what is allowed.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from edgeperf import errors
from edgeperf.boards.labgrid import LabgridPlace, parse_labgrid_url
from edgeperf.boards.tiny import INTERFACE_KEYS, TinyParams, parse_tiny_url, tiny_params
from edgeperf.boards.tiny import LINK_KEYS as TINY_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LINK_TYPES = ("local", "ssh", "serial", "tiny",  # tiny: an MCU board (MLPerf Tiny UART)
              "labgrid")  # a labgrid place: its SSH or serial resource (links/labgrid.py)
_SSH_KEYS = {"host", "port", "user", "identity", "known_hosts", "proxy_jump",
             "connect_timeout", "command_timeout", "keepalive"}
SERIAL_KEYS = {"port", "baud", "parity", "stopbits", "flow_control", "key_file"}
_SECTIONS = {"board": {"name", "description"},
             "link": {"type", "python", "cache_dir"} | _SSH_KEYS | SERIAL_KEYS | TINY_KEYS,
             "interface": INTERFACE_KEYS,  # tiny boards: the interface board of energy runs
             "device": {"cpu_affinity", "cool_down_below_c", "cool_down_max_wait_s", "governor"},
             "meter": {"url"}}
_GOVERNOR = re.compile(r"[a-z][a-z0-9_]*")


class BoardError(errors.UsageError):
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
    # link.type = "ssh" (None: ~/.ssh/config, then OpenSSH's defaults)
    host: str | None = None
    port: int | None = None
    user: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    proxy_jump: str | None = None
    connect_timeout: float | None = None
    command_timeout: float | None = None
    keepalive: float | None = None
    # device tuning
    cool_down_below_c: float | None = None
    cool_down_max_wait_s: float = 300.0
    governor: str | None = None
    meter_url: str | None = None  # [meter] url: the board's power meter (edgeperf run --meter)
    serial: SerialParams | None = None  # link type "serial"
    tiny: TinyParams | None = None  # link type "tiny"
    labgrid: LabgridPlace | None = None  # link type "labgrid"

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "link": self.link_type, "description": self.description,
             "python": self.python, "cpu_affinity": self.cpu_affinity, "source": self.source,
             "meter": self.meter_url}
        if self.link_type == "ssh":
            d["ssh"] = {k: getattr(self, k) for k in sorted(_SSH_KEYS)}
        if self.serial is not None:
            d["serial"] = asdict(self.serial)
        if self.tiny is not None:
            d["tiny"] = asdict(self.tiny)
        if self.labgrid is not None:
            d["labgrid"] = asdict(self.labgrid)
        if self.cool_down_below_c is not None or self.governor:
            d["tuning"] = {"cool_down_below_c": self.cool_down_below_c,
                           "cool_down_max_wait_s": self.cool_down_max_wait_s,
                           "governor": self.governor}
        return d


@dataclass
class SerialParams:
    """How to reach a board over a serial line (link type "serial")."""

    port: str
    baud: int = 115200
    parity: str = "N"  # N, E, O
    stopbits: int = 1
    flow_control: str = "none"  # none, rtscts, xonxoff
    key_file: str | None = None  # the agent's shared key (edgeperf serial-key), if it has one


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
    key_file = link.get("key_file")
    if key_file is not None and not (isinstance(key_file, str) and key_file):
        raise BoardError(f"{source}: {where}key_file must be the path of a key file "
                         f"('edgeperf serial-key new PATH' writes one), got {key_file!r}")
    return SerialParams(port, baud, parity, stopbits, flow,
                        os.path.expanduser(key_file) if key_file else None)


def parse_board_url(url: str) -> BoardProfile:
    """``serial:///dev/ttyUSB0?baud=921600&parity=N&stopbits=1&flow_control=none&key_file=P``."""
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
    package = Path(__file__).resolve().parent.parent  # edgeperf/ (host/ in a clone)
    dirs += [package / "_boards", package.parent / "boards"]
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
    if isinstance(data.get("link"), dict) and "password" in data["link"]:
        raise BoardError(f"{source}: link.password is not supported: edgeperf logs in with keys "
                         "only (ssh-agent, link.identity or IdentityFile in ~/.ssh/config), so "
                         "no password is ever stored; remove the line and authorise a key on the "
                         "device with 'ssh-copy-id USER@HOST'")
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
    if ltype not in LINK_TYPES or ltype == "labgrid":
        raise BoardError(f"{source}: link.type is {ltype!r}; allowed: {', '.join(LINK_TYPES[:4])}"
                         " (a labgrid place is --board labgrid://PLACE)")
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
    serial = _serial_params(link, source) if ltype == "serial" else None
    tiny = _tiny_params(link, data.get("interface"), source) if ltype == "tiny" else None
    for kind, keys in (("serial", SERIAL_KEYS - _SSH_KEYS), ("tiny", TINY_KEYS - {"port"})):
        stray = sorted(set(link) & keys - (TINY_KEYS if ltype == "tiny" else set())
                       - (SERIAL_KEYS if ltype == "serial" else set()))
        if ltype != kind and stray:
            raise BoardError(f"{source}: link.{stray[0]} belongs to a {kind} link, but "
                             f"link.type is {ltype!r}")
    if "interface" in data and ltype != "tiny":
        raise BoardError(f"{source}: [interface] (the interface board of MLPerf Tiny energy "
                         f"runs) belongs to a tiny board, but link.type is {ltype!r}")
    ssh = _ssh_keys(link, ltype, source)
    tuning = _device_keys(device, source)
    return BoardProfile(name=name, link_type=ltype, description=board.get("description", ""),
                        python=py, cache_dir=link.get("cache_dir"), cpu_affinity=aff,
                        source=source, meter_url=meter, serial=serial, tiny=tiny, **ssh,
                        **tuning)


def _tiny_params(link: dict[str, Any], interface: Any, source: str) -> TinyParams:
    try:
        return tiny_params(link, interface, source)
    except ValueError as exc:
        raise BoardError(str(exc)) from None


def labgrid_board_from_url(url: str) -> BoardProfile:
    try:
        place, ssh = parse_labgrid_url(url)
    except ValueError as exc:
        raise BoardError(str(exc)) from None
    return BoardProfile(name=url, link_type="labgrid", source=url, labgrid=place,
                        description=f"labgrid place {place.place}", **ssh)


def tiny_board_from_url(url: str) -> BoardProfile:
    """``tiny:///dev/ttyACM0?baud=115200&model=ic01``: an MCU board with no profile file."""
    try:
        params, description = parse_tiny_url(url)
    except ValueError as exc:
        raise BoardError(str(exc)) from None
    return BoardProfile(name=f"tiny:{params.port}", link_type="tiny", description=description,
                        source=url, tiny=params)


def _number(table: str, key: str, value: Any, source: str, lo: float, hi: float | None = None,
            what: str = "a number") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        bound = f"from {lo:g} to {hi:g}" if hi is not None else f"of at least {lo:g}"
        raise BoardError(f"{source}: {table}.{key} must be {what} {bound}, got {value!r}")
    return float(value)


def _ssh_keys(link: dict[str, Any], ltype: str, source: str) -> dict[str, Any]:
    # "port" is a TCP port for ssh and a device path for serial
    given = sorted(k for k in link
                   if k in _SSH_KEYS and not (ltype in ("serial", "tiny") and k == "port"))
    if ltype != "ssh":
        if given:
            raise BoardError(f"{source}: link.{given[0]} applies to type = \"ssh\" links only; "
                             f"this board's link.type is {ltype!r}")
        return {}
    out: dict[str, Any] = {}
    host = link.get("host")
    if not (isinstance(host, str) and host.strip()):
        raise BoardError(f"{source}: link.host is required for an ssh link: a host name, an "
                         f"address or a Host alias of ~/.ssh/config, got {host!r}")
    out["host"] = host.strip()
    for key in ("user", "identity", "known_hosts", "proxy_jump", "cache_dir"):
        v = link.get(key)
        if v is not None and not (isinstance(v, str) and v):
            raise BoardError(f"{source}: link.{key} must be a non-empty string, got {v!r}")
        if key != "cache_dir":
            out[key] = v
    if "port" in link:
        port = link["port"]
        if not (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535):
            raise BoardError(f"{source}: link.port must be a TCP port number from 1 to 65535, "
                             f"got {port!r}")
        out["port"] = port
    for key in ("connect_timeout", "command_timeout"):
        if key in link:
            out[key] = _number("link", key, link[key], source, 0.1, what="seconds")
    if "keepalive" in link:
        out["keepalive"] = _number("link", "keepalive", link["keepalive"], source, 0,
                                   what="seconds between keepalives (0: off)")
    return out


def _device_keys(device: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "cool_down_below_c" in device:
        out["cool_down_below_c"] = _number("device", "cool_down_below_c",
                                           device["cool_down_below_c"], source, 0, 150,
                                           what="degrees Celsius")
    if "cool_down_max_wait_s" in device:
        out["cool_down_max_wait_s"] = _number("device", "cool_down_max_wait_s",
                                              device["cool_down_max_wait_s"], source, 0,
                                              what="seconds")
    gov = device.get("governor")
    if gov is not None:
        if not (isinstance(gov, str) and _GOVERNOR.fullmatch(gov)):
            raise BoardError(f"{source}: device.governor must be a cpufreq governor name such as "
                             f"\"performance\", \"ondemand\" or \"schedutil\", got {gov!r}")
        out["governor"] = gov
    return out


_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.%a-z]+\]")


def parse_ssh_url(url: str) -> tuple[str | None, str, int | None]:
    """``ssh://[user@]host[:port]`` -> (user, host, port); the path must be empty."""
    bad = (f"{url!r} is not an SSH board URL; write ssh://[user@]host[:port], e.g. "
           "ssh://pi@raspberrypi.local or ssh://u0_a123@192.168.1.20:8022")
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(bad)
    if parts.password is not None:
        raise ValueError(f"{url!r} holds a password; edgeperf logs in with keys only, so drop "
                         "it from the URL (ssh://user@host) and authorise a key on the device "
                         "with 'ssh-copy-id USER@HOST'")
    hostport = parts.netloc.rpartition("@")[2]
    m = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+)(?::(\d*))?", hostport)
    if not m or not m.group(1) or not _HOST.fullmatch(m.group(1)):
        raise ValueError(bad)
    host = m.group(1).strip("[]")
    port_text = m.group(2)
    if port_text is not None:
        port = int(port_text) if port_text.isdigit() else -1
        if not 1 <= port <= 65535:
            raise ValueError(f"{url!r}: the port must be a number from 1 to 65535")
    else:
        port = None
    user = unquote(parts.username) if parts.username else None
    return user, host, port


def board_from_url(url: str) -> BoardProfile:
    """``ssh://[user@]host[:port]``: an SSH board with no profile file."""
    try:
        user, host, port = parse_ssh_url(url)
    except ValueError as exc:
        raise BoardError(str(exc)) from None
    return BoardProfile(name=url, link_type="ssh", description="SSH board given by URL",
                        host=host, port=port, user=user, source=url)


def with_overrides(profile: BoardProfile, identity: str | None = None,
                   known_hosts: str | None = None, python: str | None = None,
                   port: str | None = None) -> BoardProfile:
    """The command line's --identity/--known-hosts/--python/--port over the profile's."""
    if port is not None:
        if profile.tiny is None:
            raise BoardError(f"--port applies to MCU boards (link.type \"tiny\"); board "
                             f"{profile.name} has a {profile.link_type} link")
        profile = replace(profile, tiny=replace(profile.tiny, port=port))
    if identity is not None or known_hosts is not None:
        if profile.link_type not in ("ssh", "labgrid"):
            flag = "--identity" if identity is not None else "--known-hosts"
            raise BoardError(f"{flag} applies to SSH boards; board {profile.name} has a "
                             f"{profile.link_type} link")
    changes = {k: v for k, v in (("identity", identity), ("known_hosts", known_hosts),
                                 ("python", python)) if v}
    return replace(profile, **changes) if changes else profile


def load_board(name_or_path: str) -> BoardProfile:
    if name_or_path.startswith("ssh://"):
        return board_from_url(name_or_path)
    if name_or_path.startswith("serial:"):
        return parse_board_url(name_or_path)
    if name_or_path.startswith("tiny:"):
        return tiny_board_from_url(name_or_path)
    if name_or_path.startswith("labgrid:"):
        return labgrid_board_from_url(name_or_path)
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
