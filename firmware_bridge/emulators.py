"""The emulated MCU boards: the reference firmware on qemu (qemu.py) when qemu-system-arm is
installed, the pure-Python DUT (emulated_dut.py) otherwise; what ``edgeperf emulate mcu``
serves and what a run on a profile with ``link.emulate`` and no port starts for itself.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edgeperf.errors import UsageError
from edgeperf.run.spec import Reporter


class Emulated:
    """A started emulated board: ``port`` to open, ``what`` it is; ``close()`` stops it."""

    def __init__(self, port: str, what: str, closer: Any) -> None:
        self.port, self.what, self._closer = port, what, closer

    def close(self) -> None:
        self._closer.close()

    def __enter__(self) -> Emulated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def qemu_available() -> bool:
    return shutil.which("qemu-system-arm") is not None and \
        shutil.which("arm-none-eabi-gcc") is not None


def start(kind: str | None = None, model: str = "ic01", mode: str = "performance",
          infer_us: int = 1000) -> Emulated:
    """``kind`` "qemu" (the reference firmware; built first if needed), "python", or None:
    qemu when its tools are installed, else python."""
    kind = kind or ("qemu" if qemu_available() else "python")
    if kind == "qemu":
        from edgeperf_firmware.build import build
        from edgeperf_firmware.qemu import QemuBoard

        if model != "ic01":
            raise UsageError(f"the reference firmware runs ic01 only, not {model}; use the "
                             "Python DUT (--python) for ad01")
        fw = build("energy" if mode == "energy" else "performance", "ic-digits")
        board = QemuBoard(fw.elf).start()
        return Emulated(board.port, f"the reference firmware ({fw.model_id}, {mode} mode) "
                                    f"on qemu {board.elf.name}", board)
    from edgeperf_firmware.emulated_dut import EmulatedDut

    dut = EmulatedDut(model, mode=mode, infer_us=infer_us).start()
    behind = ", behind an interface board" if dut.interface else ""
    return Emulated(dut.path, f"the Python emulated DUT ({model}, {mode} mode{behind}, "
                              f"{infer_us} us an inference)", dut)


def serve(kind: str | None = None, model: str = "ic01", mode: str = "performance",
          infer_us: int = 1000, board: str | None = None) -> None:
    """Start one, print its port and how to use it, serve until Ctrl-C."""
    with start(kind, model, mode, infer_us) as emu:
        name = board or ("qemu-mps2-an385" if "qemu" in emu.what else "emulated-tiny")
        print(f"edgeperf: {emu.what} on {emu.port}", flush=True)
        print(f"edgeperf: use it with: edgeperf run --board {name} --port {emu.port} "
              f"--mode {'energy' if mode == 'energy' else 'performance'}   (Ctrl-C to stop)",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


@contextmanager
def line_for(profile: Any, mode: str, report: Reporter | None = None
             ) -> Iterator[tuple[str, int]]:
    """(port, baud) to open for ``mode``: the profile's, or an emulated board's started for
    the duration (``link.emulate``, no port)."""
    params = profile.tiny
    port, baud = params.line(mode)
    if port:
        yield port, baud
        return
    if params.emulate == "python" and mode == "energy":
        raise UsageError(f"board {profile.name}: energy mode needs a DUT whose timestamp line "
                         "reaches the meter; the Python DUT a run starts has none. Start a "
                         "board whose edges reach your --meter and pass --port PATH")
    boot = "energy" if mode == "energy" else "performance"  # the firmware's two builds
    with start(params.emulate, params.model or "ic01", boot) as emu:
        if report is not None:
            report("task", {"message": f"{profile.name} has no port: started {emu.what} on "
                                       f"{emu.port} for this run"})
        yield emu.port, baud
