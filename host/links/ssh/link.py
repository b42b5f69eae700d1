"""SshLink: the agent's stdin/stdout over an SSH exec channel (paramiko).

``SshConnection`` is one authenticated connection (through any ProxyJump gateways) with the
host key checked against known_hosts; it runs the host's few fixed commands and opens SFTP.
``SshLink`` is a Link on one exec channel of it: bytes in, bytes out, LinkClosed with the
reason when the channel, the connection or the device goes away. A keepalive thread asks the
device for an answer every ``keepalive`` seconds; ``KEEPALIVE_COUNT`` unanswered in a row and
the link is declared dead, as OpenSSH's ServerAliveCountMax does.

Key authentication only: ssh-agent keys and identity files. A passphrase-protected file is
not unlocked here (no secret is ever asked for or kept): load it into ssh-agent.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

import paramiko

from edgeperf.links.base import Link, LinkClosed, LinkError
from edgeperf.links.ssh import known_hosts
from edgeperf.links.ssh.config import KEEPALIVE_COUNT, SshTarget


@dataclass
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes

    def err_text(self, lines: int = 6) -> str:
        text = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return "\n  ".join(text[-lines:])


def _socket(hop: SshTarget) -> socket.socket:
    try:
        return socket.create_connection((hop.hostname, hop.port), timeout=hop.connect_timeout)
    except socket.gaierror as exc:
        raise LinkError(f"SshLink: cannot resolve host {hop.hostname!r} ({exc.strerror}); check "
                        "the board's link.host or your ~/.ssh/config HostName") from None
    except TimeoutError:
        raise LinkError(f"SshLink: no answer from {hop.hostname}:{hop.port} within "
                        f"{hop.connect_timeout:g} s (connect_timeout); is the device on and on "
                        "this network?") from None
    except ConnectionRefusedError:
        raise LinkError(f"SshLink: {hop.hostname}:{hop.port} refused the connection: no SSH "
                        "server listens there; start sshd on the device (Termux: run 'sshd', "
                        "port 8022) or fix link.port") from None
    except OSError as exc:
        raise LinkError(f"SshLink: cannot reach {hop.hostname}:{hop.port}: "
                        f"{exc.strerror or exc}") from None


class SshConnection:
    """An authenticated SSH connection to ``target``, through its gateways."""

    def __init__(self, target: SshTarget, *, capture_host_key: bool = False) -> None:
        """``capture_host_key``: stop after the final hop's key exchange, without checking
        its key or logging in (``edgeperf trust``); the key is in ``host_key``."""
        self.target = target
        self.transports: list[paramiko.Transport] = []
        self.host_key: paramiko.PKey | None = None
        self._alive = time.monotonic()
        self._pending_since: float | None = None
        self._stop = threading.Event()
        try:
            hops = [*target.proxy_jump, target]
            prev: paramiko.Transport | None = None
            for i, hop in enumerate(hops):
                last = i == len(hops) - 1
                sock = _socket(hop) if prev is None else self._through(prev, hops[i - 1], hop)
                t = self._handshake(hop, sock, check=not (last and capture_host_key))
                self.transports.append(t)
                if last and capture_host_key:
                    self.host_key = t.get_remote_server_key()
                    return
                self._authenticate(hop, t)
                prev = t
        except BaseException:
            self.close()
            raise
        self.transport = self.transports[-1]
        if target.keepalive > 0:
            threading.Thread(target=self._keepalive, daemon=True,
                             name=f"ssh-keepalive {target.hostname}").start()

    # ---------------------------------------------------------------- connecting
    @staticmethod
    def _through(prev: paramiko.Transport, gw: SshTarget, hop: SshTarget) -> paramiko.Channel:
        try:
            return prev.open_channel("direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0),
                                     timeout=hop.connect_timeout)
        except (paramiko.ChannelException, paramiko.SSHException, EOFError, OSError) as exc:
            raise LinkError(f"SshLink: the gateway {gw.describe()} could not reach "
                            f"{hop.hostname}:{hop.port} ({exc}); check ProxyJump and that the "
                            "gateway allows TCP forwarding") from None

    @staticmethod
    def _handshake(hop: SshTarget, sock, check: bool) -> paramiko.Transport:
        t = paramiko.Transport(sock)
        t.banner_timeout = t.handshake_timeout = t.auth_timeout = hop.connect_timeout
        opts = t.get_security_options()
        opts.key_types = known_hosts.preferred_algorithms(known_hosts.known_keys(hop),
                                                          tuple(opts.key_types))
        try:
            t.start_client(timeout=hop.connect_timeout)
            if not (t.is_active() and t.initial_kex_done):  # start_client's timeout is silent
                raise t.get_exception() or paramiko.SSHException("no key exchange in time")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            t.close()
            why = str(exc) or type(exc).__name__
            raise LinkError(f"SshLink: no SSH session with {hop.describe()}: {why} (waited up "
                            f"to {hop.connect_timeout:g} s, connect_timeout); is an SSH server "
                            "listening there?") from None
        key = t.get_remote_server_key()
        if check:
            try:
                known_hosts.check(hop, key)
            except known_hosts.HostKeyError:
                t.close()
                raise
        return t

    @staticmethod
    def _keys(hop: SshTarget, agent: paramiko.Agent | None):
        """(label, key or None, note) in the order they are offered: named identity files,
        ssh-agent's keys, then (when no file was named) OpenSSH's default files."""
        files = list(hop.identity_files)
        for path in files if hop.explicit_identity else []:
            yield path, *_load_key(path, named=True)
        if agent is not None:
            try:
                keys = agent.get_keys()
            except (paramiko.SSHException, OSError) as exc:
                yield "ssh-agent", None, f"unusable: {exc}"
                keys = ()
            for k in keys:
                yield f"ssh-agent {known_hosts.fingerprint(k)}", k, ""
        if not hop.explicit_identity:
            for path in files:
                key, note = _load_key(path, named=False)
                if key is not None or note:
                    yield path, key, note

    def _authenticate(self, hop: SshTarget, t: paramiko.Transport) -> None:
        tried: list[str] = []
        agent = None
        if not hop.identities_only:
            try:
                agent = paramiko.Agent()  # keys of $SSH_AUTH_SOCK; none when it is unset
            except (paramiko.SSHException, OSError) as exc:
                tried.append(f"ssh-agent (unusable: {exc})")
        try:
            for label, key, note in self._keys(hop, agent):
                if key is None:
                    tried.append(f"{label} ({note})")
                    continue
                try:
                    t.auth_publickey(hop.user, key)
                except paramiko.BadAuthenticationType as exc:
                    if "publickey" not in exc.allowed_types:
                        raise LinkError(
                            f"SshLink: {hop.describe()} accepts only "
                            f"{', '.join(exc.allowed_types)} logins; edgeperf logs in with keys "
                            "only: enable PubkeyAuthentication in the device's sshd_config and "
                            "authorise a key with 'ssh-copy-id'") from None
                    tried.append(f"{label} (refused)")
                    continue
                except paramiko.AuthenticationException:
                    tried.append(f"{label} (refused)")
                    continue
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    if not t.is_active():
                        raise LinkError(f"SshLink: {hop.describe()} closed the connection "
                                        f"during login ({exc})") from None
                    tried.append(f"{label} ({exc})")
                    continue
                if t.is_authenticated():
                    return
                tried.append(f"{label} (accepted, but the device asks for more)")
        finally:
            if agent is not None:
                agent.close()
        what = "; ".join(tried) or "no key: ssh-agent has none and no identity file exists"
        raise LinkError(f"SshLink: {hop.describe()} refused every key offered ({what}); "
                        f"authorise one on the device (ssh-copy-id -i KEY.pub "
                        f"{hop.user}@{hop.hostname}) or pass --identity FILE")

    # ---------------------------------------------------------------- liveness
    def _keepalive(self) -> None:
        t = self.transport
        while not self._stop.wait(self.target.keepalive):
            if not t.is_active():
                return
            self._pending_since = time.monotonic()
            try:
                t.global_request("keepalive@openssh.com", wait=True)  # any answer will do
            except Exception:  # noqa: BLE001 - a failing transport is seen by dead()
                return
            self._pending_since = None
            self._alive = time.monotonic()

    def dead(self) -> str | None:
        """Why the connection is unusable, or None while it is fine."""
        t = getattr(self, "transport", None)
        if t is None or not t.is_active():
            exc = t.get_exception() if t is not None else None
            if isinstance(exc, EOFError) or (exc is not None and not str(exc)):
                why = ": the device closed it (sshd stopped, or the device rebooted)"
            else:
                why = f" ({type(exc).__name__}: {exc})" if exc else ""
            return f"the SSH connection to {self.target.describe()} dropped{why}"
        since = self._pending_since
        limit = self.target.keepalive * KEEPALIVE_COUNT
        if since is not None and time.monotonic() - since > limit:
            return (f"the SSH connection to {self.target.describe()} dropped: the device has "
                    f"answered no keepalive for {time.monotonic() - since:.0f} s "
                    f"({KEEPALIVE_COUNT} at {self.target.keepalive:g} s)")
        return None

    # ---------------------------------------------------------------- use
    def open_exec(self, command: str) -> paramiko.Channel:
        try:
            chan = self.transport.open_session(timeout=self.target.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise LinkError(f"SshLink: {self.target.describe()} refused to run a command "
                            f"({exc})") from None
        return chan

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run one of the host's fixed commands, no input; bounded by command_timeout."""
        timeout = self.target.command_timeout if timeout is None else timeout
        chan = self.open_exec(command)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            chan.shutdown_write()
            while True:
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    return CommandResult(chan.recv_exit_status(), bytes(out), bytes(err))
                why = self.dead()
                if why:
                    raise LinkClosed(f"SshLink: {why}")
                if time.monotonic() > deadline:
                    raise LinkError(f"SshLink: {command.split()[0]} on {self.target.describe()} "
                                    f"did not finish within {timeout:g} s (command_timeout)")
                select.select([chan], [], [], 0.05)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise LinkClosed(f"SshLink: {self.dead() or exc}") from None
        finally:
            chan.close()

    def sftp(self) -> paramiko.SFTPClient:
        try:
            return paramiko.SFTPClient.from_transport(self.transport)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise LinkError(f"SshLink: {self.target.describe()} offers no SFTP ({exc}); "
                            "enable the sftp Subsystem in the device's sshd_config") from None

    def close(self) -> None:
        self._stop.set()
        for t in reversed(self.transports):
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing a broken transport may raise anything
                pass


def _load_key(path: str, named: bool) -> tuple[paramiko.PKey | None, str]:
    """The private key in ``path``, or None and why not (silence for a default file that
    simply is not there, as with OpenSSH)."""
    try:
        return paramiko.PKey.from_path(path), ""
    except FileNotFoundError:
        return None, "no such file" if named else ""
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if isinstance(exc, TypeError) and "password" not in str(exc):
            return None, f"unreadable: {exc}"
        return None, f"passphrase-protected: load it into ssh-agent with 'ssh-add {path}'"
    except (paramiko.SSHException, OSError, ValueError) as exc:
        return None, f"unreadable: {exc}"


def fetch_host_key(target: SshTarget) -> paramiko.PKey:
    """The key the target's SSH server proves it holds (gateways are checked as usual)."""
    conn = SshConnection(target, capture_host_key=True)
    conn.close()
    assert conn.host_key is not None
    return conn.host_key


class SshLink(Link):
    """A Link on an exec channel running the agent; owns the connection."""

    name = "ssh"

    def __init__(self, conn: SshConnection, command: str) -> None:
        self.conn = conn
        self.command = command
        self.chan = conn.open_exec(command)
        self._fd = self.chan.fileno()  # readable when stdout or stderr has data, or on close
        self._err = deque(maxlen=40)
        self._err_partial = b""

    def describe(self) -> str:
        return f"ssh {self.conn.target.describe()}"

    def _drain_stderr(self) -> None:
        while self.chan.recv_stderr_ready():
            data = self._err_partial + self.chan.recv_stderr(1 << 16)
            *lines, self._err_partial = data.split(b"\n")
            self._err.extend(ln.decode("utf-8", "replace").rstrip() for ln in lines)

    def _closed(self) -> LinkClosed:
        self._drain_stderr()
        why = self.conn.dead()
        if why is None and self.chan.exit_status_ready():
            code = self.chan.recv_exit_status()
            why = (f"the agent exited with code {code}" if code >= 0
                   else "the agent's channel closed")
        elif why is None:
            why = "the agent closed its output"
        tail = [*self._err, self._err_partial.decode("utf-8", "replace")]
        tail = [ln for ln in tail if ln.strip()]
        msg = f"{self.describe()}: {why}"
        if tail:
            msg += "; its last words:\n  " + "\n  ".join(tail[-8:])
        return LinkClosed(msg)

    def send(self, data: bytes) -> None:
        if self.conn.dead():
            raise self._closed()
        try:
            self.chan.sendall(data)
        except (OSError, EOFError, paramiko.SSHException):
            raise self._closed() from None

    def recv(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self._drain_stderr()
            if self.chan.recv_ready():
                data = self.chan.recv(n)
                if data:
                    return data
            if self.chan.eof_received or self.chan.closed or self.conn.dead():
                raise self._closed()
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            # wake at least every half second to see a keepalive verdict
            select.select([self._fd], [], [], min(left, 0.5))

    def close(self) -> None:
        try:
            if not self.chan.closed:
                self.chan.shutdown_write()  # end of input: the agent restores and exits
                end = time.monotonic() + 3.0
                while not self.chan.exit_status_ready() and time.monotonic() < end \
                        and not self.conn.dead():
                    self._drain_stderr()
                    if self.chan.recv_ready():
                        self.chan.recv(1 << 16)
                    select.select([self._fd], [], [], 0.1)
            self.chan.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            self.conn.close()
