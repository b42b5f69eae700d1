"""Which module opens which link: a board's link type is a scheme, mapped to the module that
opens it, the way pyserial maps ``loop://`` to ``protocol_loop``.

Each opener takes the board's profile and returns a Link: ``opener(profile, report=None,
needs_runtime=False)``. A module is imported the first time its scheme is opened, so paramiko
and pyserial load only for the links that use them. The profile's ``link.type`` is checked
against the same names (boards/profile.py's LINK_TYPES; a test holds the two together).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeperf.boards.profile import BoardError

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile
    from edgeperf.links.base import Link

# scheme -> "module:opener"
OPENERS = {
    "local": "edgeperf.links.local:open_profile",
    "ssh": "edgeperf.links.ssh.deploy:open_agent_link",
    "serial": "edgeperf.links.serial:open_profile",
    # an MCU board speaks MLPerf Tiny's UART protocol, not the agent's frames: its opener is
    # the firmware bridge's and gives a TinyBoard (the one way edgeperf reaches the bridge)
    "tiny": "edgeperf_firmware.board:open_profile",
    # a labgrid place: acquired, then its NetworkService (ssh) or NetworkSerialPort (serial)
    "labgrid": "edgeperf.links.labgrid:open_place",
}


def open_link(profile: BoardProfile, report: Any = None, needs_runtime: bool = False) -> Link:
    """A Link to the board's agent. SSH boards: connect, ship the agent if the device lacks
    it, check the device's Python (``needs_runtime``: and a TFLite runtime), start it. A
    ``tiny`` board gives the bridge's TinyBoard instead (edgeperf.connect hands it to a
    Device)."""
    where = OPENERS.get(profile.link_type)
    if where is None:
        raise BoardError(f"board {profile.name}: link type {profile.link_type!r} is not "
                         "supported")
    module, _, name = where.partition(":")
    opener = getattr(importlib.import_module(module), name)
    return opener(profile, report=report, needs_runtime=needs_runtime)


EMULATOR = "edgeperf_firmware.emulators:serve"  # 'edgeperf emulate mcu'


def open_emulator(*args: Any) -> Any:
    """Serve an emulated MCU board (the bridge's) until Ctrl-C, printing its port."""
    module, _, name = EMULATOR.partition(":")
    return getattr(importlib.import_module(module), name)(*args)
