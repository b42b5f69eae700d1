"""A microcontroller board's profile keys (``link.type = "tiny"``): the DUT's UART and its baud
in each mode, the interface board that carries energy runs, and the MLPerf Tiny model its
firmware runs.

Checked here, raised as ValueError with the whole message (profile.py turns it into a
BoardError, as it does for an ssh:// URL), so this module needs nothing of profile.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TINY_MODELS = ("kws01", "vww01", "ic01", "ad01")  # MLPerf Tiny's model ids (profile%)
MODEL_TASKS = {"ic01": "ic-digits", "ad01": "ad-synthetic"}  # edgeperf's task each one runs
PERFORMANCE_BAUD = 115200  # performance and accuracy modes (the Tiny reference boards)
MODEL_BAUD = {"ad01": 921600}  # the MLCommons runner's devices yaml
ENERGY_BAUD = 9600  # the DUT's UART to the interface board in energy mode
INTERFACE_BAUD = 115200
EMULATORS = ("python", "qemu")  # where 'edgeperf emulate mcu' gets the port from
LINK_KEYS = {"port", "baud", "energy_baud", "model", "task", "emulate"}
INTERFACE_KEYS = {"port", "baud"}
URL_KEYS = {"baud", "energy_baud", "model", "task", "emulate", "interface", "interface_baud"}


@dataclass
class TinyParams:
    """How to reach an MCU board. ``port`` None: an emulated board whose port
    ``edgeperf emulate mcu`` prints (``emulate`` says which), or ``--port``."""

    port: str | None
    model: str | None = None  # what the firmware runs (None: whatever profile% reports)
    task: str | None = None  # edgeperf's task for it (default: MODEL_TASKS[model])
    baud: int = PERFORMANCE_BAUD  # performance and accuracy
    energy_baud: int = ENERGY_BAUD  # energy, through the interface board
    emulate: str | None = None
    interface_port: str | None = None  # [interface] port: the energy runs' interface board
    interface_baud: int = INTERFACE_BAUD

    @property
    def default_task(self) -> str | None:
        return self.task or MODEL_TASKS.get(self.model or "")

    def line(self, mode: str) -> tuple[str | None, int]:
        """The port and baud the host opens in ``mode``: the interface board's in energy
        mode when the profile has one, else the DUT's own UART at its mode's baud."""
        if mode == "energy":
            if self.interface_port:
                return self.interface_port, self.interface_baud
            return self.port, self.energy_baud
        return self.port, self.baud


def _baud(value: Any, where: str, source: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{source}: {where} must be a positive whole number of baud "
                         f"(115200 for performance and accuracy, 9600 in energy mode, 921600 "
                         f"for ad01 boards), got {value!r}")
    return value


def _port(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source}: {where} must be the board's serial device, e.g. "
                         f"/dev/ttyACM0 (an ST-Link's virtual COM port), got {value!r}")
    return value


def tiny_params(link: dict[str, Any], interface: Any, source: str,
                where: str = "link.") -> TinyParams:
    """[link] (type "tiny") and [interface] of a profile (``where=""``: a URL's parameters)."""
    model = link.get("model")
    if model is not None and model not in TINY_MODELS:
        raise ValueError(f"{source}: {where}model is {model!r}; allowed: "
                         f"{', '.join(TINY_MODELS)} (the id the firmware's profile% reports "
                         "as m-model-[...])")
    task = link.get("task")
    if task is not None and not (isinstance(task, str) and task.strip()):
        raise ValueError(f"{source}: {where}task must be a task name such as ic-digits, got "
                         f"{task!r}")
    emulate = link.get("emulate")
    if emulate is not None and emulate not in EMULATORS:
        raise ValueError(f"{source}: {where}emulate is {emulate!r}; allowed: "
                         f"{', '.join(EMULATORS)} (the emulator 'edgeperf emulate mcu' starts)")
    port = link.get("port")
    if port is None and emulate is None:
        raise ValueError(f"{source}: a tiny board needs link.port, the DUT's serial device "
                         "(e.g. /dev/ttyACM0, the ST-Link's virtual COM port; 'ls "
                         "/dev/serial/by-id' lists them), or link.emulate for an emulated "
                         "board whose port 'edgeperf emulate mcu' prints")
    params = TinyParams(
        port=None if port is None else _port(port, f"{where}port", source), model=model,
        task=task, emulate=emulate,
        baud=_baud(link.get("baud", MODEL_BAUD.get(model or "", PERFORMANCE_BAUD)),
                   f"{where}baud", source),
        energy_baud=_baud(link.get("energy_baud", ENERGY_BAUD), f"{where}energy_baud", source))
    if interface is not None:
        if not isinstance(interface, dict):
            raise ValueError(f"{source}: [interface] must be a section with port = \"...\" "
                             "and baud = 115200 (the interface board of energy runs)")
        params.interface_port = _port(interface.get("port"), "interface.port", source)
        params.interface_baud = _baud(interface.get("baud", INTERFACE_BAUD), "interface.baud",
                                      source)
    return params


def parse_tiny_url(url: str) -> tuple[TinyParams, str]:
    """``tiny:///dev/ttyACM0?baud=115200&model=ic01`` (also energy_baud, task, interface,
    interface_baud) -> (params, a description)."""
    parts = urlsplit(url)
    if parts.scheme != "tiny" or parts.netloc or not parts.path:
        raise ValueError(f"board URL {url!r}: write tiny:///dev/ttyACM0?model=ic01 (three "
                         "slashes: an empty host, then the DUT's serial device)")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - URL_KEYS)
    if unknown:
        raise ValueError(f"board URL {url!r}: unknown parameter {unknown[0]!r}; allowed: "
                         f"{', '.join(sorted(URL_KEYS))}")
    interface = None
    if "interface" in query:
        interface = {"port": query.pop("interface"),
                     "baud": query.pop("interface_baud", INTERFACE_BAUD)}
    elif "interface_baud" in query:
        raise ValueError(f"board URL {url!r}: interface_baud needs interface=PORT too")
    params = tiny_params(dict(query, port=parts.path), interface, f"board URL {url!r}")
    what = f"MLPerf Tiny board on {parts.path} at {params.baud} baud"
    return params, what + (f", model {params.model}" if params.model else "")
