"""Device state the agent may change for a run, and always puts back: the CPU governor.

Setting a governor needs write access to cpufreq's scaling_governor files: an agent running
as root has it; the unprivileged serial service (user edgeperf) gets it from one rule,
boards/edgeperf-governor.tmpfiles.conf, which lets group edgeperf write those files and
nothing else. The agent tries the write rather than guessing from its uid, and a refusal
names that rule. The previous governors are kept from the first change on, so
``restore`` returns the device to what it was before edgeperf touched it, however many sets
came between. The agent calls ``restore`` itself when its link ends (bye, end of input, a
signal), so a dropped connection never leaves a device tuned.
"""

from __future__ import annotations

import errno
import os
from typing import Dict, Iterable, List, Optional

from .telemetry import _read, sysfs


TMPFILES_RULE = "edgeperf-governor.tmpfiles.conf"
NO_PERMISSION = (
    "the agent (uid %d) may not change the CPU governor: install the rule that lets group "
    "edgeperf write the scaling_governor files (and nothing else) and apply it: 'install -m 644 "
    "boards/" + TMPFILES_RULE + " /etc/tmpfiles.d/edgeperf-governor.conf && systemd-tmpfiles "
    "--create /etc/tmpfiles.d/edgeperf-governor.conf' (it is applied again at every boot), "
    "with the agent in group edgeperf (the serial unit's user is); an SSH board may log in as "
    "root instead (link.user = \"root\"); or remove device.governor from the board profile")


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
        targets = sorted(int(c) for c in cpus) if cpus else present
        for c in targets:
            if c not in present:
                raise TuningError("cpu%d has no cpufreq governor; the device has %s"
                                  % (c, present))
            allowed = (_read(_gov_path(c, "scaling_available_governors")) or "").split()
            if allowed and governor not in allowed:
                raise TuningError("cpu%d cannot use governor %r; it offers: %s"
                                  % (c, governor, ", ".join(allowed)))
        before: Dict[int, str] = {}  # what this call changed, to undo if a later CPU refuses
        first: List[int] = []  # CPUs this call saved first
        try:
            for c in targets:
                current = _read(_gov_path(c))
                self._write(c, governor)
                if current is not None:
                    before[c] = current
                    if c not in self.saved:
                        self.saved[c] = current
                        first.append(c)
        except TuningError:
            for c, gov in before.items():
                try:
                    self._write(c, gov)
                except TuningError:
                    continue  # still saved: restore tries again
                if c in first:
                    del self.saved[c]
            raise
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
        path = _gov_path(cpu)
        try:
            with open(path, "w") as f:
                f.write(governor)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                uid = os.geteuid() if hasattr(os, "geteuid") else -1
                raise TuningError("cannot write %s (%s): %s"
                                  % (path, exc.strerror, NO_PERMISSION % uid)) from None
            raise TuningError("cannot write %s: %s" % (path, exc)) from None
