"""Device state the agent may change for a run, and always puts back: the CPU governor.

Setting a governor needs root. The previous governors are kept from the first change on, so
``restore`` returns the device to what it was before edgeperf touched it, however many sets
came between. The agent calls ``restore`` itself when its link ends (bye, end of input, a
signal), so a dropped connection never leaves a device tuned.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional

from .telemetry import _read, sysfs


class TuningError(Exception):
    """A tuning request that cannot be honoured; the message names the fix."""


def _gov_path(cpu: int, name: str = "scaling_governor") -> str:
    return sysfs("devices", "system", "cpu", "cpu%d" % cpu, "cpufreq", name)


class Governors:
    def __init__(self) -> None:
        self.saved: Dict[int, str] = {}

    @staticmethod
    def cpus() -> List[int]:
        root = sysfs("devices", "system", "cpu")
        try:
            names = os.listdir(root)
        except OSError:
            return []
        cpus = [int(n[3:]) for n in names if n.startswith("cpu") and n[3:].isdigit()]
        return sorted(c for c in cpus if os.path.exists(_gov_path(c)))

    def get(self) -> Dict[str, object]:
        cpus = self.cpus()
        return {"governors": {str(c): _read(_gov_path(c)) for c in cpus},
                "available": {str(c): (_read(_gov_path(c, "scaling_available_governors"))
                                       or "").split() for c in cpus},
                "saved": {str(c): g for c, g in self.saved.items()}}

    def set(self, governor: str, cpus: Optional[Iterable[int]] = None) -> Dict[str, object]:
        present = self.cpus()
        if not present:
            raise TuningError("this device exposes no cpufreq governor (no %s): remove "
                              "device.governor from the board profile"
                              % _gov_path(0))
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            raise TuningError("setting the CPU governor needs root on the device (the agent runs "
                              "as uid %d): log in as root (link.user = \"root\") or remove "
                              "device.governor from the board profile" % os.geteuid())
        targets = sorted(int(c) for c in cpus) if cpus else present
        for c in targets:
            if c not in present:
                raise TuningError("cpu%d has no cpufreq governor; the device has %s"
                                  % (c, present))
            allowed = (_read(_gov_path(c, "scaling_available_governors")) or "").split()
            if allowed and governor not in allowed:
                raise TuningError("cpu%d cannot use governor %r; it offers: %s"
                                  % (c, governor, ", ".join(allowed)))
        for c in targets:
            current = _read(_gov_path(c))
            if c not in self.saved and current is not None:
                self.saved[c] = current
            self._write(c, governor)
        return self.get()

    def restore(self) -> Dict[str, object]:
        """Put every changed CPU back; returns what was restored and what could not be."""
        restored, failed = {}, {}
        for c, gov in sorted(self.saved.items()):
            try:
                self._write(c, gov)
                restored[str(c)] = gov
            except TuningError as exc:
                failed[str(c)] = str(exc)
        self.saved = {int(c): self.saved[int(c)] for c in failed}
        return {"restored": restored, "failed": failed}

    @staticmethod
    def _write(cpu: int, governor: str) -> None:
        try:
            with open(_gov_path(cpu), "w") as f:
                f.write(governor)
        except OSError as exc:
            raise TuningError("cannot write %s: %s" % (_gov_path(cpu), exc)) from None
