"""Where an SSH board is and how to log in to it: ssh:// URLs, ~/.ssh/config, defaults.

Each setting is taken, as OpenSSH takes it, from the first place that has it: the command
line (--identity, --known-hosts), the board profile, the ``Host`` block of ~/.ssh/config
matching the profile's host, then OpenSSH's defaults. Nothing here opens a connection.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.boards.profile import parse_ssh_url

if TYPE_CHECKING:
    from edgeperf.boards.profile import BoardProfile

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"  # read for HashKnownHosts only (Debian's says yes)
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
KEEPALIVE_S = 15.0
KEEPALIVE_COUNT = 3  # unanswered keepalives before the link is declared dead (ServerAliveCountMax)


@dataclass
class SshTarget:
    """One SSH endpoint, fully resolved; ``proxy_jump`` lists the gateways in order."""

    alias: str  # what the user named: a host, an address or a ~/.ssh/config Host alias
    hostname: str
    port: int = 22
    user: str = ""
    identity_files: list[str] = field(default_factory=list)
    identities_only: bool = False  # only these files, no ssh-agent keys (IdentitiesOnly)
    explicit_identity: bool = False  # the files were named; a missing one is an error
    known_hosts: list[str] = field(default_factory=list)  # [0] is where 'trust' writes
    global_known_hosts: list[str] = field(default_factory=list)  # read, never written
    proxy_jump: list[SshTarget] = field(default_factory=list)
    connect_timeout: float = CONNECT_TIMEOUT_S
    command_timeout: float = COMMAND_TIMEOUT_S
    keepalive: float = KEEPALIVE_S
    board: str = ""  # the --board value, for the fix in error messages
    known_hosts_given: bool = False  # --known-hosts or link.known_hosts was set
    # HashKnownHosts: how 'trust' writes the host into an empty or new known_hosts (a file
    # with entries is written the way they are)
    hash_known_hosts: bool = False

    @property
    def key_name(self) -> str:
        """The host's name in known_hosts: ``host``, or ``[host]:port`` off port 22."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def describe(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        via = "".join(f" via {j.describe()}" for j in reversed(self.proxy_jump))
        return f"{self.user}@{host}:{self.port}{via}"

    def trust_hint(self) -> str:
        """The command that records this host's key, as the user should type it."""
        cmd = f"edgeperf trust {self.board or 'ssh://' + self.user + '@' + self.alias}"
        if self.known_hosts_given and self.known_hosts:
            cmd += f" --known-hosts {self.known_hosts[0]}"
        return cmd


def parse_jump(spec: str) -> list[tuple[str | None, str, int | None]]:
    """A ProxyJump value, ``[user@]host[:port][,...]`` (ssh:// forms too), in order."""
    hops = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"ProxyJump {spec!r} has an empty hop")
        try:
            hops.append(parse_ssh_url(item if item.startswith("ssh://") else "ssh://" + item))
        except ValueError:
            raise ValueError(f"ProxyJump {spec!r}: {item!r} is not [user@]host[:port]") from None
    return hops


def _ssh_config(path: str | None):
    import paramiko

    p = Path(os.path.expanduser(path or "~/.ssh/config"))
    if not p.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(p))
    except Exception as exc:  # noqa: BLE001 - paramiko raises several kinds here
        raise ValueError(f"{p}: cannot read the SSH client config: {exc}") from None


def _hash_known_hosts(cfg, host: str) -> bool:
    """HashKnownHosts as OpenSSH takes it: ~/.ssh/config, then /etc/ssh/ssh_config, else no
    (Include lines are not followed: paramiko does not read them)."""
    value = cfg.get("hashknownhosts")
    if value is None and os.path.isfile(SYSTEM_CONFIG):
        try:
            value = _ssh_config(SYSTEM_CONFIG).lookup(host).get("hashknownhosts")
        except ValueError:
            value = None  # an unreadable system file: plain, as with none
    return str(value or "no").lower() == "yes"


def _expand(path: str) -> str:
    return os.path.expanduser(path)


def resolve(host: str, *, user: str | None = None, port: int | None = None,
            identity: str | None = None, known_hosts: str | None = None,
            proxy_jump: str | None = None, connect_timeout: float | None = None,
            command_timeout: float | None = None, keepalive: float | None = None,
            board: str = "", config_path: str | None = None, _hop: bool = False) -> SshTarget:
    """Resolve one target (and its gateways) from explicit values and ~/.ssh/config."""
    cfg = _ssh_config(config_path).lookup(host)
    port = port or int(cfg.get("port", 22))
    ids: list[str] = [_expand(identity)] if identity else []
    ids += [_expand(p) for p in cfg.get("identityfile", []) if _expand(p) not in ids]
    explicit = bool(ids)
    if not ids:
        ids = [_expand(f"~/.ssh/{name}") for name in DEFAULT_IDENTITIES]
    if known_hosts:
        kh, glob_kh = [_expand(known_hosts)], []
    else:
        kh = [_expand(p) for p in cfg.get("userknownhostsfile", "").split()] or \
             [_expand("~/.ssh/known_hosts")]
        glob_kh = [_expand(p) for p in cfg.get("globalknownhostsfile", "").split()] or \
            [GLOBAL_KNOWN_HOSTS]

    def seconds(value: float | None, key: str, default: float) -> float:
        if value is not None:
            return float(value)
        try:
            return float(cfg[key]) if key in cfg else default
        except ValueError:
            raise ValueError(f"~/.ssh/config: {key} for {host} is not a number: "
                             f"{cfg[key]!r}") from None

    target = SshTarget(
        alias=host, hostname=cfg.get("hostname", host), port=port,
        user=user or cfg.get("user") or getpass.getuser(), identity_files=ids,
        identities_only=cfg.get("identitiesonly", "no").lower() == "yes",
        explicit_identity=explicit, known_hosts=kh, global_known_hosts=glob_kh,
        connect_timeout=seconds(connect_timeout, "connecttimeout", CONNECT_TIMEOUT_S),
        command_timeout=float(command_timeout or COMMAND_TIMEOUT_S),
        keepalive=seconds(keepalive, "serveraliveinterval", KEEPALIVE_S),
        board=board, known_hosts_given=bool(known_hosts),
        hash_known_hosts=_hash_known_hosts(cfg, host))
    if "proxycommand" in cfg and not _hop:
        raise ValueError(f"~/.ssh/config gives {host} a ProxyCommand, which edgeperf does not "
                         "run; use ProxyJump (or link.proxy_jump in the board profile)")
    jump = proxy_jump if proxy_jump is not None else cfg.get("proxyjump")
    if jump and jump.lower() != "none" and not _hop:
        for juser, jhost, jport in parse_jump(jump):
            hop = resolve(jhost, user=juser, port=jport, identity=identity,
                          known_hosts=known_hosts, connect_timeout=connect_timeout,
                          board=board, config_path=config_path, _hop=True)
            target.proxy_jump.append(hop)
    return target


def target_for(profile: BoardProfile, config_path: str | None = None) -> SshTarget:
    """The SshTarget of an ssh board profile (its --identity/--known-hosts already applied)."""
    assert profile.host, "an ssh profile always has a host"
    return resolve(profile.host, user=profile.user, port=profile.port,
                   identity=profile.identity, known_hosts=profile.known_hosts,
                   proxy_jump=profile.proxy_jump, connect_timeout=profile.connect_timeout,
                   command_timeout=profile.command_timeout, keepalive=profile.keepalive,
                   board=profile.name, config_path=config_path)
