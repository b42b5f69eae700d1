"""A real OpenSSH server as a test device: its own network namespace, host key and users.

``SshDevice.start()`` makes a network namespace joined to this one by a veth pair (the host
side 10.231.N.1/30, the device 10.231.N.2), and runs Debian's /usr/sbin/sshd inside it with a
fresh ed25519 host key, public-key authentication only and a generated client key: the host
reaches it over a link, as it reaches a Raspberry Pi. Inside the namespace sshd also listens
on 127.0.0.1:2222, which only a ProxyJump through the device can reach. Where namespaces
cannot be made (no root, no ip tool; or $EDGEPERF_TEST_SSHD_LOOPBACK set, to check that
path), it falls back to sshd on a free loopback port, and says so in ``mode``. Used by
tests/test_ssh.py and benchmarks/bench_ssh.py.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
INNER_PORT = 2222


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class SshDevice:
    def __init__(self, workdir: Path | None = None) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="edgeperf-sshd-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.netns: str | None = None
        self.veth = ""
        self.mode = ""
        self.addr = "127.0.0.1"
        self.port = 22
        self.proc: subprocess.Popen | None = None
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.log = self.dir / "sshd.log"
        self.bin = self.dir / "bin"

    # ------------------------------------------------------------------ setup
    def start(self) -> SshDevice:
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} is missing: install Debian's openssh-server "
                               "(scripts/test.sh does)")
        for key in (self.host_key, self.client_key):
            if not key.exists():
                _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key))
        (self.dir / "authorized_keys").write_text(
            Path(str(self.client_key) + ".pub").read_text())
        os.chmod(self.dir / "authorized_keys", 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.bin.mkdir(exist_ok=True)
        self.python_wrapper(self.bin / "python3")
        why = self._make_netns()
        if why is None:
            self.mode, self.port = f"netns {self.netns}", 22
        else:
            self.mode, self.addr, self.port = f"loopback ({why})", "127.0.0.1", _free_port()
        self.known_hosts.write_text(f"{self.key_name} {self.host_pub_line()}\n")
        self._start_sshd()
        return self

    def _make_netns(self) -> str | None:
        """Create the namespace and veth pair; returns why not, or None on success."""
        if os.environ.get("EDGEPERF_TEST_SSHD_LOOPBACK"):
            return "EDGEPERF_TEST_SSHD_LOOPBACK is set"
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return "not root" if os.geteuid() != 0 else "no ip tool"
        pid = os.getpid()
        for n in range(pid % 200 + 20, pid % 200 + 60):
            if _run("ip", "-o", "addr", "show", "to", f"10.231.{n % 250}.0/30",
                    check=False).stdout.strip() == "":
                break
        n %= 250
        ns, host_if, dev_if = f"edgeperf-{pid}", f"epH{pid}"[:15], f"epD{pid}"[:15]
        steps = [("ip", "netns", "add", ns),
                 ("ip", "link", "add", host_if, "type", "veth", "peer", "name", dev_if),
                 ("ip", "link", "set", dev_if, "netns", ns),
                 ("ip", "addr", "add", f"10.231.{n}.1/30", "dev", host_if),
                 ("ip", "link", "set", host_if, "up"),
                 ("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.231.{n}.2/30", "dev",
                  dev_if),
                 ("ip", "netns", "exec", ns, "ip", "link", "set", dev_if, "up"),
                 ("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")]
        self.netns, self.veth, self._host_if = ns, dev_if, host_if
        for step in steps:
            r = _run(*step, check=False)
            if r.returncode != 0:
                self._drop_netns()
                return f"{' '.join(step[:3])}: {r.stderr.strip()}"
        self.addr = f"10.231.{n}.2"
        return None

    def _drop_netns(self) -> None:
        if self.netns:
            _run("ip", "link", "del", self._host_if, check=False)
            _run("ip", "netns", "del", self.netns, check=False)
            self.netns = None

    def _config(self) -> Path:
        listen = [f"ListenAddress {self.addr}:{self.port}"]
        if self.netns:
            listen.append(f"ListenAddress 127.0.0.1:{INNER_PORT}")
        cfg = self.dir / "sshd_config"
        cfg.write_text("\n".join(listen + [
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "AllowTcpForwarding yes",
            "PermitTTY no",
            "PrintMotd no",
            "MaxStartups 64",
            "MaxSessions 64",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            # the device's own environment: python3 is the test venv's (numpy, a runtime),
            # and the agent's default cache is in the test's directory, not ~/.cache
            f"SetEnv PATH={self.bin}:/usr/local/bin:/usr/bin:/bin "
            f"XDG_CACHE_HOME={self.dir / 'device-cache'}",
        ]) + "\n")
        return cfg

    def _start_sshd(self) -> None:
        cfg = self._config()
        argv = [SSHD, "-D", "-e", "-f", str(cfg)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}:\n"
                                   + self.log.read_text()[-2000:])
            if self._listening():
                return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s:\n" + self.log.read_text()[-2000:])

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.addr, self.port), timeout=0.5) as s:
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    @staticmethod
    def python_wrapper(path: Path, *flags: str, env: dict[str, str] | None = None) -> Path:
        """A 'device python': this test Python, with interpreter flags and environment."""
        lines = ["#!/bin/sh"] + [f"export {k}='{v}'" for k, v in (env or {}).items()]
        lines.append(f"exec {sys.executable} {' '.join(flags)} \"$@\"")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)
        return path

    # ------------------------------------------------------------------ facts
    @property
    def key_name(self) -> str:
        return self.addr if self.port == 22 else f"[{self.addr}]:{self.port}"

    def host_pub_line(self) -> str:
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def fingerprint(self) -> str:
        """The host key's fingerprint as OpenSSH's own ssh-keygen prints it."""
        out = _run("ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key) + ".pub").stdout
        return out.split()[1]

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.addr}:{self.port}"

    def profile_toml(self, **link: object) -> str:
        """A board profile for this device; ``link`` adds or overrides [link] keys and
        ``device_*`` keys go to [device]."""
        device = {k[7:]: v for k, v in link.items() if k.startswith("device_")}
        values = {"type": "ssh", "host": self.addr, "port": self.port, "user": self.user,
                  "identity": str(self.client_key), "known_hosts": str(self.known_hosts),
                  "python": sys.executable, "connect_timeout": 5}
        values.update({k: v for k, v in link.items() if not k.startswith("device_")})

        def toml(v: object) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (int, float)):
                return repr(v)
            if isinstance(v, list):
                return "[" + ", ".join(toml(x) for x in v) + "]"
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["[board]", 'name = "sshdev"', 'description = "test sshd"', "", "[link]"]
        lines += [f"{k} = {toml(v)}" for k, v in values.items() if v is not None]
        if device:
            lines += ["", "[device]"] + [f"{k} = {toml(v)}" for k, v in device.items()]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ faults
    def session_pids(self) -> list[int]:
        return _descendants(self.proc.pid) if self.proc else []

    def kill(self) -> None:
        """SIGKILL sshd: the listener and every sshd session process under it (what runs in
        a session, such as the agent, is left to notice)."""
        if self.proc is None:
            return
        pids = [self.proc.pid] + [p for p in self.session_pids() if _comm(p) == "sshd"]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None

    def kill_sessions(self) -> None:
        """SIGKILL every session (and what runs in it, the agent), keeping the listener."""
        for pid in reversed(self.session_pids()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def restart(self) -> None:
        self.kill()
        self._start_sshd()

    def cut(self) -> None:
        """Drop the device off the network without a word (a pulled cable): the veth goes
        down; on loopback, the session processes are stopped instead."""
        if self.netns:
            _run("ip", "netns", "exec", self.netns, "ip", "link", "set", self.veth, "down")
        else:
            for pid in self.session_pids():
                os.kill(pid, signal.SIGSTOP)

    def uncut(self) -> None:
        if self.netns:
            _run("ip", "netns", "exec", self.netns, "ip", "link", "set", self.veth, "up")
        else:
            for pid in self.session_pids():
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        try:
            self.uncut()
        except (OSError, subprocess.SubprocessError):
            pass
        self.kill()
        self._drop_netns()
