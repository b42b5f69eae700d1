"""Host keys: OpenSSH fingerprints, the known_hosts check, and recording a trusted key.

A key that is unknown or differs from the recorded one refuses the connection; the only way a
key gets into known_hosts is ``edgeperf trust`` (or the user's own ssh). Nothing is accepted
silently.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import paramiko

from edgeperf.links.base import LinkError
from edgeperf.links.ssh.config import SshTarget

# the host-key algorithms that verify a key of each known_hosts type
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


class HostKeyError(LinkError):
    """The device's host key is not the one known_hosts holds (or it holds none)."""

    def __init__(self, message: str, offered: str, known: list[str]) -> None:
        super().__init__(message)
        self.offered, self.known = offered, known


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"


def _load(paths: list[str]) -> list[tuple[str, paramiko.HostKeys]]:
    out = []
    for p in paths:
        if os.path.isfile(p):
            try:
                out.append((p, paramiko.HostKeys(p)))
            except (OSError, UnicodeDecodeError) as exc:
                raise LinkError(f"SshLink: cannot read known_hosts file {p}: {exc}") from None
    return out


def known_keys(target: SshTarget) -> dict[str, tuple[paramiko.PKey, str]]:
    """The keys known_hosts records for the target, by type, with the file they came from."""
    found: dict[str, tuple[paramiko.PKey, str]] = {}
    for path, keys in _load(target.known_hosts + target.global_known_hosts):
        entry = keys.lookup(target.key_name)
        for ktype in (entry.keys() if entry else ()):
            found.setdefault(ktype, (entry[ktype], path))
    return found


def preferred_algorithms(known: dict[str, object], offered: tuple[str, ...]) -> list[str]:
    """Host-key algorithms in negotiation order: the types known_hosts holds first, so the
    device proves the key we can check rather than another one it also has."""
    first = []
    for ktype in known:
        first += [a for a in _ALGORITHMS.get(ktype, (ktype,)) if a in offered and a not in first]
    return first + [a for a in offered if a not in first]


def check(target: SshTarget, key: paramiko.PKey) -> None:
    """Raise HostKeyError unless known_hosts holds exactly this key for the target."""
    known = known_keys(target)
    offered = describe_key(key)
    files = ", ".join(target.known_hosts + target.global_known_hosts)
    if key.get_name() in known:
        have, path = known[key.get_name()]
        if have.asbytes() == key.asbytes():
            return
        raise HostKeyError(
            f"SshLink: the host key of {target.key_name} has CHANGED: the device offers "
            f"{offered}, but {path} holds {describe_key(have)}. Someone may be intercepting "
            "the connection, or the device was reinstalled. If you know it was, check the "
            f"new fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_"
            f"{_short(key)}_key.pub) and run '{target.trust_hint()} --replace'",
            offered, [describe_key(k) for k, _ in known.values()])
    if known:
        have = "; ".join(f"{describe_key(k)} ({p})" for k, p in known.values())
        raise HostKeyError(
            f"SshLink: the host key of {target.key_name} is not the one known: the device "
            f"offers {offered}, known_hosts holds {have}. If the device's keys were "
            f"regenerated, check the fingerprint on the device and run "
            f"'{target.trust_hint()} --replace'", offered, [describe_key(k) for k, _ in
                                                             known.values()])
    raise HostKeyError(
        f"SshLink: the host key of {target.key_name} is not in known_hosts ({files}); the "
        f"device offers {offered}. Run '{target.trust_hint()}' to check and record it, or "
        "pass --known-hosts FILE", offered, [])


def _short(key: paramiko.PKey) -> str:
    name = key.get_name()
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(
        name, "ecdsa" if name.startswith("ecdsa") else name)


def _matches(line: str, names: set[str]) -> bool:
    """Whether a known_hosts line is for one of ``names`` (hashed entries included)."""
    fields = line.split()
    if not fields or line.lstrip().startswith("#") or fields[0].startswith("@"):
        return False
    for pattern in fields[0].split(","):
        if pattern.startswith("|1|"):
            salt = pattern.split("|")[2]
            if any(paramiko.HostKeys.hash_host(n, salt) == pattern for n in names):
                return True
        elif pattern in names:
            return True
    return False


def record(target: SshTarget, key: paramiko.PKey, replace: bool = False) -> tuple[str, int]:
    """Append the key to the target's known_hosts file (the first one); with ``replace``,
    drop the lines it had for the host first. Returns (file, lines removed)."""
    path = Path(target.known_hosts[0])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    removed = 0
    if replace:
        keep = [ln for ln in lines if not _matches(ln, {target.key_name})]
        removed = len(lines) - len(keep)
        lines = keep
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.append(f"{target.key_name} {key.get_name()} {key.get_base64()}\n")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(lines))
    os.chmod(tmp, 0o600 if not path.exists() else (path.stat().st_mode & 0o777))
    os.replace(tmp, path)
    return str(path), removed
