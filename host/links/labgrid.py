"""Labgrid places as boards: acquire the place, reach the board through it, release it.

``--board labgrid://PLACE`` acquires PLACE from the lab's coordinator, reads the resources
it holds and opens one of them:

* a NetworkService: SSH to its address, port and username, with the user's own keys and
  known_hosts (host-key checking as on every SSH board; a password in it is never used);
* a NetworkSerialPort: the agent's serial line, over RFC 2217 from the exporter's ser2net,
  at the port's speed.

``?via=ssh|serial`` chooses when the place has both (default: SSH); ``?coordinator=HOST:PORT``
names the coordinator (default ``$LG_COORDINATOR``, then labgrid's 127.0.0.1:20408);
``?key_file=PATH`` is the serial agent's shared key, when it runs with one.

labgrid is spoken to through ``labgrid-client``, the commands a person types (acquire, env,
power, release-from), run by this Python: it keeps labgrid's gRPC and asyncio out of this
process, works from any thread (a campaign runs one a board) and from atexit. The Link
returned closes the inner link, then releases the place; a failed open releases it, and so
do atexit and SIGTERM for a process that ends without closing it. ``release-from`` releases
only a place that this host and user hold, so a place someone else took meanwhile is kept.
"""

from __future__ import annotations

import atexit
import dataclasses
import getpass
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from edgeperf.boards.labgrid import LabgridPlace
from edgeperf.boards.profile import BoardError, BoardProfile, SerialParams, load_board
from edgeperf.links.base import Link, LinkError
from edgeperf.links.serial import open_profile as open_serial
from edgeperf.links.ssh.deploy import open_agent_link as open_ssh

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid-client's own default
CLIENT_TIMEOUT_S = 60.0  # one labgrid-client command (a coordinator that never answers)
INSTALL = "pip install 'edgeperf[labgrid]'"
# resources labgrid-client's 'power' command drives (labgrid/remote/client.py, power())
POWER_RESOURCES = ("NetworkPowerPort", "PDUDaemonPort", "TasmotaPowerPort",
                   "NetworkUSBPowerPort", "NetworkSiSPMPowerPort", "NetworkYKUSHPowerPort",
                   "NetworkSysfsGPIO")


class LabgridError(LinkError):
    """The place cannot be had or used; the message names the fix."""


class _NoAnswer(LabgridError):
    """labgrid-client did not finish in time: a command may or may not have gone through."""


def coordinator_of(lp: LabgridPlace) -> str:
    return lp.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def owner() -> str:
    """Who labgrid says holds a place this process acquires: HOST/USER, as labgrid-client
    names it ($LG_HOSTNAME and $LG_USERNAME override)."""
    return (f"{os.environ.get('LG_HOSTNAME', socket.gethostname())}/"
            f"{os.environ.get('LG_USERNAME', getpass.getuser())}")


def client(coordinator: str, place: str, *args: str,
           timeout: float = CLIENT_TIMEOUT_S) -> str:
    """Run ``labgrid-client -x COORDINATOR -p PLACE ARGS``; its stdout, or LabgridError with
    what it said and the fix. Its stdout may hold secrets (env: a password): never shown."""
    if importlib.util.find_spec("labgrid") is None:
        raise LabgridError(f"labgrid place {place}: labgrid is not installed here; run "
                           f"{INSTALL}")
    argv = [sys.executable, "-m", "labgrid.remote.client", "-x", coordinator, "-p", place,
            *args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise _NoAnswer(f"labgrid place {place}: 'labgrid-client {' '.join(args)}' got no "
                        f"answer from the coordinator at {coordinator} in {timeout:.0f} s; is "
                        "labgrid-coordinator running there?") from None
    if r.returncode != 0:
        raise LabgridError(explain(coordinator, place, args[0], r.stderr))
    return r.stdout


def explain(coordinator: str, place: str, command: str, stderr: str) -> str:
    """labgrid-client's complaint, as the fix."""
    said = " ".join(ln.strip() for ln in stderr.strip().splitlines()[-3:])
    said = re.sub(r"^(\S*client\S*|labgrid-client): (error: |Error: )?", "", said)
    held = re.search(r"already acquired by (\S+?)\.(\s|$)", said)
    if held:
        return (f"labgrid place {place} is held by {held.group(1)} (HOST/USER): wait until "
                f"they release it ('labgrid-client -x {coordinator} who' lists who holds "
                f"which place), or ask them to run 'labgrid-client -p {place} release'")
    if "You have already acquired place" in said:
        return (f"labgrid place {place} is already held by you ({owner()}), by another run "
                f"or a shell: finish that, or release it with 'labgrid-client -x "
                f"{coordinator} -p {place} release'")
    if "matches nothing" in said or "does not exist" in said:
        return (f"labgrid place {place!r} does not exist on the coordinator at {coordinator}; "
                f"'labgrid-client -x {coordinator} places' lists its places (a lab creates "
                f"one with 'labgrid-client -p {place} create' and 'add-match')")
    if "matches multiple places" in said:
        return f"labgrid place {place!r} is ambiguous: {said}; give the place's full name"
    if "Could not connect to coordinator" in said or "coordinator is unavailable" in said:
        return (f"labgrid place {place}: no labgrid coordinator answers at {coordinator}; "
                "start labgrid-coordinator there, or name the right one with "
                "labgrid://PLACE?coordinator=HOST:PORT or LG_COORDINATOR=HOST:PORT")
    if "has no matching remote resource" in said:
        return (f"labgrid place {place}: {said}: its exporter is down or its matches are "
                f"wrong; check with 'labgrid-client -x {coordinator} -p {place} show'")
    return f"labgrid place {place}: 'labgrid-client {command}' failed: {said or 'no message'}"


# ---------------------------------------------------------------- holding a place
_LOCK = threading.Lock()
_HELD: set[Held] = set()
_SIGTERM_SET = False


class Held:
    """A place this process acquired; ``release()`` gives it back, once."""

    def __init__(self, coordinator: str, name: str, who: str) -> None:
        self.coordinator, self.name, self.owner = coordinator, name, who
        self.released = False

    def release(self) -> None:
        with _LOCK:
            if self.released:
                return
            self.released = True
            _HELD.discard(self)
        try:
            client(self.coordinator, self.name, "release-from", self.owner, timeout=30)
        except LabgridError as exc:
            if "is not acquired" not in str(exc):  # released already: fine
                print(f"edgeperf: could not release {exc}", file=sys.stderr)


def acquire(coordinator: str, place: str) -> Held:
    """Acquire the place (LabgridError naming who holds it, or why not). Interrupted, or
    with no answer, it may have gone through: released again (only if this host and user
    hold it) before the exception goes on."""
    who = owner()
    try:
        out = client(coordinator, place, "acquire")
    except _NoAnswer:
        Held(coordinator, place, who).release()
        raise
    except LabgridError:
        raise
    except BaseException:  # Ctrl-C during the command
        Held(coordinator, place, who).release()
        raise
    m = re.search(r"acquired place (\S+)", out)
    held = Held(coordinator, m.group(1) if m else place, who)
    with _LOCK:
        _HELD.add(held)
    _guard_exit()
    return held


def release_all() -> None:
    """Release every place this process still holds (atexit, SIGTERM)."""
    with _LOCK:
        held = list(_HELD)
    for h in held:
        h.release()


def _guard_exit() -> None:
    """atexit releases what is held; SIGTERM (when nobody else handles it) exits through
    Python's own unwinding, so links close and atexit runs."""
    global _SIGTERM_SET
    with _LOCK:
        if _SIGTERM_SET:
            return
        _SIGTERM_SET = True
    atexit.register(release_all)
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------- what a place holds
@dataclass
class Place:
    name: str
    coordinator: str
    resources: list[tuple[str, dict[str, Any]]]  # (class, params); passwords taken out
    has_password: bool = False  # a NetworkService carried one (never used, never shown)

    def first(self, cls: str) -> dict[str, Any] | None:
        return next((p for c, p in self.resources if c == cls), None)

    def power(self) -> tuple[str, dict[str, Any]] | None:
        return next(((c, p) for c, p in self.resources if c in POWER_RESOURCES), None)

    def classes(self) -> str:
        return ", ".join(sorted({c for c, _ in self.resources})) or "none"


def read_place(held: Held) -> Place:
    """The resources of an acquired place, from ``labgrid-client env``."""
    import yaml  # PyYAML: labgrid's own dependency

    text = client(held.coordinator, held.name, "env")
    try:
        targets = (yaml.safe_load(text) or {}).get("targets") or {}
        name, target = next(iter(targets.items()))
        items = target.get("resources") or []
    except (yaml.YAMLError, AttributeError, StopIteration):
        raise LabgridError(f"labgrid place {held.name}: 'labgrid-client env' gave no "
                           "resources edgeperf can read") from None
    resources, password = [], False
    for item in items:
        for cls, params in (item or {}).items():
            params = dict(params or {})
            password |= params.pop("password", None) not in (None, "")
            resources.append((cls, params))
    return Place(str(name), held.coordinator, resources, password)


def inner_profile(profile: BoardProfile, place: Place, via: str | None) -> BoardProfile:
    """The SSH or serial profile the place's resource gives; the board's own keys (identity,
    known_hosts, python, device tuning) stay."""
    ssh, ser = place.first("NetworkService"), place.first("NetworkSerialPort")
    via = via or ("ssh" if ssh is not None else "serial" if ser is not None else None)
    what = {"ssh": "NetworkService", "serial": "NetworkSerialPort"}
    if via is None or (via == "ssh" and ssh is None) or (via == "serial" and ser is None):
        need = f"{what[via]} (for via={via})" if via else \
            "NetworkService (SSH) or NetworkSerialPort (serial)"
        raise LabgridError(f"labgrid place {place.name} has no {need} (it has: "
                           f"{place.classes()}); add one to its exporter's config and a match "
                           f"('labgrid-client -p {place.name} add-match EXPORTER/GROUP/CLASS')")
    if via == "ssh":
        if profile.labgrid is not None and profile.labgrid.key_file:
            raise LabgridError(f"labgrid place {place.name}: key_file is a serial agent's key, "
                               "but the board is reached over SSH: add ?via=serial, or drop "
                               "key_file (SSH authenticates with its own keys)")
        host, user, port = ssh.get("address"), ssh.get("username"), int(ssh.get("port") or 22)
        if not host:
            raise LabgridError(f"labgrid place {place.name}: its NetworkService has no address")
        return dataclasses.replace(profile, name=f"ssh://{user}@{host}:{port}", link_type="ssh",
                                   host=str(host), port=port, user=user or None, labgrid=None)
    host, port, speed = ser.get("host"), ser.get("port"), int(ser.get("speed") or 115200)
    if not host or not port:
        raise LabgridError(f"labgrid place {place.name}: its NetworkSerialPort has no host and "
                           "port: is its exporter serving it (ser2net installed there)?")
    # ser2net on a pty (and some adapters) never answers RFC 2217's SET_CONTROL: do not
    # wait for it, as labgrid's own SerialDriver does not
    url = (f"rfc2217://{host}:{port}?ign_set_control"
           if ser.get("protocol", "rfc2217") == "rfc2217" else f"socket://{host}:{port}")
    key_file = profile.labgrid.key_file if profile.labgrid is not None else None
    return dataclasses.replace(profile, name=url, link_type="serial", labgrid=None,
                               serial=SerialParams(url, speed, key_file=key_file))


# ---------------------------------------------------------------- the Link
class PlaceLink(Link):
    """The inner link, and the place held for it: close() closes one, then releases the
    other. Everything else (stats, deploy, the serial line's rate) is the inner link's."""

    def __init__(self, inner: Link, held: Held, place: Place) -> None:
        self.inner, self.held, self.place = inner, held, place
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:
        if attr in ("inner", "held", "place"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def send(self, data: bytes) -> None:
        self.inner.send(data)

    def recv(self, n: int, timeout: float) -> bytes:
        return self.inner.recv(n, timeout)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.held.release()

    def describe(self) -> str:
        return f"{self.inner.describe()} (labgrid place {self.place.name})"


def open_place(profile: BoardProfile, report: Any = None,
               needs_runtime: bool = False) -> PlaceLink:
    """The ``labgrid`` scheme's opener (links/registry.py)."""
    lp = profile.labgrid
    if lp is None:
        raise LinkError(f"board {profile.name}: a labgrid board is --board labgrid://PLACE")
    held = acquire(coordinator_of(lp), lp.place)
    try:
        place = read_place(held)
        inner = inner_profile(profile, place, lp.via)
        try:
            link = (open_ssh if inner.link_type == "ssh" else open_serial)(
                inner, report=report, needs_runtime=needs_runtime)
        except LinkError as exc:
            if place.has_password and inner.link_type == "ssh":
                raise LinkError(f"{exc} (the place's NetworkService carries a password, which "
                                "edgeperf never uses: it logs in with keys only; authorise "
                                "one on the device with 'ssh-copy-id USER@HOST')") from None
            raise
    except BaseException:
        held.release()
        raise
    return PlaceLink(link, held, place)


def hard_reset(board: BoardProfile | str) -> str | None:
    """Power-cycle a labgrid place's board through its power resource (between a campaign's
    retries): what was done, or None when the board is no labgrid place or the place has no
    power resource. The place is acquired for it and released again; LabgridError when the
    power switch or the coordinator fails."""
    try:
        profile = board if isinstance(board, BoardProfile) else load_board(board)
    except BoardError:
        return None
    if profile.labgrid is None:
        return None
    held = acquire(coordinator_of(profile.labgrid), profile.labgrid.place)
    try:
        power = read_place(held).power()
        if power is None:
            return None
        client(held.coordinator, held.name, "power", "cycle")
    finally:
        held.release()
    cls, params = power
    model = f" {params['model']}" if params.get("model") else ""
    return f"power-cycled labgrid place {held.name} ({cls}{model})"
