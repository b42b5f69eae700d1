"""A real labgrid lab on loopback for tests/test_labgrid.py.

A labgrid-coordinator on a free port, and one labgrid-exporter offering three places:

* ``<prefix>-ssh``: a NetworkService naming the test sshd (tests/sshd.py); it carries a
  password, which edgeperf must neither use nor show;
* ``<prefix>-serial``: a RawSerialPort on the host end of a LineSim pty pair, the agent
  serving the other end; the exporter serves it over RFC 2217 with ser2net, as a lab's
  exporter serves a USB serial adapter;
* ``<prefix>-power``: the same again, with a NetworkPowerPort of labgrid's ``simplerest``
  model: a small HTTP power switch (labgrid's driver speaks it) whose "off" kills the agent
  and whose "on" starts it again, as a board's power does.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from serial_agent import Agent

from edgeperf.testing.line_sim import LineSim

BIN = Path(sys.executable).parent
PASSWORD = "lab-secret-never-shown"
BAUD = 921600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PowerSwitch:
    """labgrid's ``simplerest`` power protocol: GET /relay/I/V sets, GET /relay/I reads."""

    def __init__(self, agent: Agent) -> None:
        self.agent, self.on, self.log = agent, True, []
        switch = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = self.path.strip("/").split("/")
                if parts[:2] != ["relay", "0"] or len(parts) > 3:
                    self.send_error(404)
                    return
                if len(parts) == 3:
                    switch.set(parts[2] == "1")
                body = b"1" if switch.on else b"0"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/relay/{{index}}/{{value}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, on: bool) -> None:
        self.log.append("on" if on else "off")
        if not on and self.on and self.agent.proc and self.agent.proc.poll() is None:
            self.agent.kill()
        if on and not self.on:
            self.agent.start()
        self.on = on

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Lab:
    def __init__(self, workdir: Path, ssh_device, prefix: str = "ep") -> None:
        self.dir, self.ssh, self.prefix = workdir, ssh_device, prefix
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.sims: list[LineSim] = []
        self.agents: list[Agent] = []
        self.power: PowerSwitch | None = None
        self.exporter = f"{prefix}-exporter"

    def place(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    # ------------------------------------------------------------------ setup
    def start(self) -> Lab:
        sims = [LineSim(BAUD, seed=n).start() for n in (1, 2)]
        self.sims += sims
        self.agents += [Agent(sim, self.dir / f"agent-cache-{n}") for n, sim in enumerate(sims)]
        self.power = PowerSwitch(self.agents[1])
        cfg = self.dir / "exporter.yaml"
        cfg.write_text(
            "ssh:\n  NetworkService:\n"
            f"    address: '{self.ssh.addr}'\n    username: '{self.ssh.user}'\n"
            f"    port: {self.ssh.port}\n    password: '{PASSWORD}'\n"
            f"serial:\n  RawSerialPort:\n    port: '{sims[0].host_path}'\n    speed: {BAUD}\n"
            f"power:\n  RawSerialPort:\n    port: '{sims[1].host_path}'\n    speed: {BAUD}\n"
            "  NetworkPowerPort:\n    model: simplerest\n"
            f"    host: '{self.power.url}'\n    index: 0\n")
        self._spawn("coordinator", [str(BIN / "labgrid-coordinator"), "-l", self.address])
        self._wait(lambda: self._answers(), "the coordinator to listen")
        self._spawn("exporter", [str(BIN / "labgrid-exporter"), "-c", self.address,
                                 "--hostname", "127.0.0.1", "-n", self.exporter, str(cfg)])
        self._wait(lambda: self.exporter in self.client("resources").stdout,
                   "the exporter's resources")
        for kind in ("ssh", "serial", "power"):
            self.client("create", place=self.place(kind), check=True)
            self.client("add-match", f"{self.exporter}/{kind}/*", place=self.place(kind),
                        check=True)
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "ab")
        self.procs.append(subprocess.Popen(argv, cwd=self.dir, stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL))
        log.close()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait(self, ready, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode}: "
                                       + self.logs())
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"waited {timeout:.0f} s for {what}: " + self.logs())

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.dir.glob("*.log")))

    # ------------------------------------------------------------------ use
    def client(self, *args: str, place: str | None = None, user: str | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
        """labgrid-client against this lab, as a person would type it (``user``: as
        someone else, through LG_USERNAME)."""
        env = dict(os.environ)
        if user is not None:
            env["LG_USERNAME"] = user
        argv = [str(BIN / "labgrid-client"), "-x", self.address]
        argv += ["-p", place] if place else []
        r = subprocess.run([*argv, *args], capture_output=True, text=True, env=env,
                           timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {r.stderr}")
        return r

    def holder(self, place: str) -> str | None:
        """Who holds the place (HOST/USER), or None: labgrid-client show."""
        out = self.client("show", place=place, check=True).stdout
        for line in out.splitlines():
            if line.strip().startswith("acquired:"):
                who = line.split(":", 1)[1].strip()
                return None if who in ("", "None") else who
        return None

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        for agent in self.agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.stop()
        self.agents.clear()
        if self.power is not None:
            self.power.close()
            self.power = None
        for sim in self.sims:
            sim.close()
        self.sims.clear()
