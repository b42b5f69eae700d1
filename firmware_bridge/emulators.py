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
    """A started emulated board: ``port`` to open, ``what`` it is, ``meter_url`` the emulated
    shield its timestamp line drives (energy mode; else ""); ``close()`` stops it."""

    def __init__(self, port: str, what: str, closer: Any, meter_url: str = "") -> None:
        self.port, self.what, self._closer, self.meter_url = port, what, closer, meter_url

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
          infer_us: int = 1000, watts: Any = None) -> Emulated:
    """``kind`` "qemu" (the reference firmware; built first if needed), "python", or None:
    qemu when its tools are installed, else python. In energy mode the board comes with an
    emulated LPM01A drawing ``watts`` (a number, or a LoadProfile; 10 mW) that its
    timestamps drive (``meter_url``)."""
    kind = kind or ("qemu" if qemu_available() else "python")
    if kind == "qemu":
        from edgeperf_firmware.build import build
        from edgeperf_firmware.qemu import QemuBoard

        from edgeperf_firmware.gen_weights import MODEL_IDS

        tasks = {m: t for t, m in MODEL_IDS.items()}
        if model not in tasks:
            raise UsageError(f"the reference firmware runs {', '.join(tasks)}, not {model}")
        fw = build("energy" if mode == "energy" else "performance", tasks[model])
        if mode == "energy":
            from edgeperf_firmware.energy_bench import WATTS, EnergyBench

            bench = EnergyBench(fw.elf, WATTS if watts is None else watts).start()
            return Emulated(bench.port, f"the reference firmware ({fw.model_id}, energy mode) "
                                        f"on qemu {fw.elf.name} behind an emulated interface "
                                        f"board, its timestamp line into an emulated LPM01A "
                                        f"({_load(watts)})", bench,
                            bench.meter_url)
        board = QemuBoard(fw.elf).start()
        return Emulated(board.port, f"the reference firmware ({fw.model_id}, {mode} mode) "
                                    f"on qemu {board.elf.name}", board)
    from edgeperf_firmware.emulated_dut import EmulatedDut

    if mode == "energy":
        from edgeperf.testing.emulators.lpm01a import Lpm01aEmulator
        from edgeperf_firmware.energy_bench import METER_QUERY, WATTS

        shield = Lpm01aEmulator(WATTS if watts is None else watts).start()
        try:
            dut = EmulatedDut(model, mode=mode, infer_us=infer_us,
                              on_timestamp=shield.gpio_falling_edge).start()
        except BaseException:
            shield.close()
            raise
        return Emulated(dut.path, f"the Python emulated DUT ({model}, energy mode, behind an "
                                  f"interface board, {infer_us} us an inference), its "
                                  f"timestamps into an emulated LPM01A "
                                  f"({_load(watts)})", _Both(dut, shield),
                        f"lpm01a://{shield.path}?{METER_QUERY}")
    dut = EmulatedDut(model, mode=mode, infer_us=infer_us).start()
    behind = ", behind an interface board" if dut.interface else ""
    return Emulated(dut.path, f"the Python emulated DUT ({model}, {mode} mode{behind}, "
                              f"{infer_us} us an inference)", dut)


def _load(watts: Any) -> str:
    from edgeperf_firmware.energy_bench import WATTS

    if watts is None or isinstance(watts, (int, float)):
        return f"{(WATTS if watts is None else watts) * 1e3:g} mW"
    return "its load profile"


class _Both:
    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def close(self) -> None:
        for p in self.parts:
            p.close()


def serve(kind: str | None = None, model: str = "ic01", mode: str = "performance",
          infer_us: int = 1000, board: str | None = None, watts: Any = None) -> None:
    """Start one, print its port and how to use it, serve until Ctrl-C."""
    with start(kind, model, mode, infer_us, watts) as emu:
        name = board or ("emulated-tiny" if "qemu" not in emu.what else "qemu-mps2-an385"
                         + ("-ad01" if model == "ad01" else ""))
        print(f"edgeperf: {emu.what} on {emu.port}", flush=True)
        meter = f" --meter '{emu.meter_url}'" if emu.meter_url else ""
        print(f"edgeperf: use it with: edgeperf run --board {name} --port {emu.port} "
              f"--mode {'energy' if mode == 'energy' else 'performance'}{meter}   "
              "(Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


@contextmanager
def line_for(profile: Any, mode: str, report: Reporter | None = None
             ) -> Iterator[tuple[str, int, str]]:
    """(port, baud, meter URL) to open for ``mode``: the profile's (no meter URL), or an
    emulated board's started for the duration (``link.emulate``, no port), with its
    emulated shield's URL in energy mode."""
    params = profile.tiny
    port, baud = params.line(mode)
    if port:
        yield port, baud, ""
        return
    boot = "energy" if mode == "energy" else "performance"  # the firmware's two builds
    with start(params.emulate, params.model or "ic01", boot) as emu:
        if report is not None:
            report("task", {"message": f"{profile.name} has no port: started {emu.what} on "
                                       f"{emu.port} for this run"})
        yield emu.port, baud, emu.meter_url
