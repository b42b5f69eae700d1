"""The agent zipapp serving the device side of a LineSim (two real pseudo-terminals joined at
a real line's speed), as a real process: a serial board for tests/test_serial.py and
tests/test_campaign.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edgeperf.links.bundle import local_agent_path
from edgeperf.testing.line_sim import LineSim


class Agent:
    """``serve --serial`` on the simulator's device end; started at once. ``key_file``:
    served with ``--key-file``; ``args`` and ``env`` go to the agent's command line and
    environment."""

    def __init__(self, sim: LineSim, cache: Path, python: str = sys.executable,
                 key_file: Path | None = None, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.sim, self.cache, self.python = sim, cache, python
        self.args = (*(("--key-file", str(key_file)) if key_file else ()), *args)
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        env = dict(os.environ, EDGEPERF_AGENT_CACHE=str(self.cache), **self.env)
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [self.python, str(local_agent_path()), "serve", "--serial", self.sim.device_path,
             "--baud", str(self.sim.baud), *self.args], env=env, stderr=subprocess.PIPE,
            text=True)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err
