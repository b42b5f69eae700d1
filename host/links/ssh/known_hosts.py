"""Host keys: OpenSSH fingerprints, the known_hosts check, and recording a trusted key.

A key that is unknown, differs from the recorded one or is ``@revoked`` refuses the
connection; the only way a key gets into known_hosts is ``edgeperf trust`` (or the user's own
ssh). Nothing is accepted silently.

known_hosts is read as OpenSSH reads it: host patterns with ``*``/``?`` wildcards and ``!``
negation, hashed names (``|1|salt|hmac``), ``[host]:port`` off port 22, ``@revoked`` lines
(the key is refused for every host the line matches, ``*`` for all). ``@cert-authority`` lines
are skipped: edgeperf checks plain host keys only, not host certificates.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko

from edgeperf.links.base import LinkError
from edgeperf.links.ssh.config import SshTarget

# the host-key algorithms that verify a key of each known_hosts type
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}
# the key types `trust --fingerprint` asks a device for, one connection each, on a mismatch
PROBE_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
               "ecdsa-sha2-nistp521", "ssh-rsa")
# a type asked for first, over the known ones (asking_first: trust's probe of other keys)
_FIRST: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("first_types",
                                                                        default=())


class HostKeyError(LinkError):
    """The device's host key is not the one known_hosts holds (or it holds none), or it is
    revoked (``revoked`` names the file and line)."""

    def __init__(self, message: str, offered: str, known: list[str], revoked: str = "") -> None:
        super().__init__(message)
        self.offered, self.known, self.revoked = offered, known, revoked


@dataclass(frozen=True)
class Entry:
    """One key line of a known_hosts file."""

    marker: str  # "" | "@revoked" | "@cert-authority"
    hosts: str  # the comma-separated patterns, as written
    key: paramiko.PKey
    path: str
    lineno: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"


def parse_fingerprint(text: str) -> str:
    """A fingerprint as ``ssh-keygen -lf`` prints it (``SHA256:`` and 43 base64 characters;
    the bare base64 too) -> ``SHA256:...``. MD5 fingerprints are refused (ValueError)."""
    t = text.strip()
    if t.upper().startswith("MD5:") or re.fullmatch(r"([0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2}", t):
        raise ValueError(f"--fingerprint {text!r} is an MD5 fingerprint, which edgeperf does "
                         "not compare (MD5 is too weak to vouch for a key); on the device run "
                         "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub (SHA256 is its "
                         "default; -E sha256 on old OpenSSH)")
    b64 = t[7:] if t.upper().startswith("SHA256:") else t
    b64 = b64.rstrip("=")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"--fingerprint {text!r} is not a SHA256 fingerprint "
                         "(SHA256: and 43 base64 characters, as ssh-keygen -lf prints it)")
    return "SHA256:" + base64.b64encode(raw).decode().rstrip("=")


def key_family(algorithm: str) -> str:
    """The known_hosts key type an algorithm verifies (rsa-sha2-512 -> ssh-rsa)."""
    for ktype, algs in _ALGORITHMS.items():
        if algorithm in algs:
            return ktype
    return algorithm


# ------------------------------------------------------------------ reading known_hosts
def _parse_line(line: str, path: str, lineno: int) -> Entry | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = fields.pop(0) if fields[0].startswith("@") else ""
    if len(fields) < 3:
        return None
    try:
        key = paramiko.PKey.from_type_string(fields[1], base64.b64decode(fields[2]))
    except Exception:  # noqa: BLE001 - a type paramiko cannot read, a damaged blob: skipped
        return None
    return Entry(marker, fields[0], key, path, lineno)


def entries(paths: list[str]) -> list[Entry]:
    out = []
    for p in paths:
        if os.path.isfile(p):
            try:
                text = Path(p).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise LinkError(f"SshLink: cannot read known_hosts file {p}: {exc}") from None
            out += [e for n, ln in enumerate(text.splitlines(), 1)
                    if (e := _parse_line(ln, p, n)) is not None]
    return out


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        parts = pattern.split("|")
        try:
            return len(parts) == 4 and paramiko.HostKeys.hash_host(name, parts[2]) == pattern
        except (binascii.Error, AssertionError, ValueError):
            return False
    rx = re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(rx, name.lower()) is not None


def host_matches(hosts: str, name: str) -> bool:
    """OpenSSH's match_hostname_list: a negated pattern that matches wins over the rest."""
    hit = False
    for pattern in hosts.split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            hit = True
    return hit


def _for(target: SshTarget) -> list[Entry]:
    return [e for e in entries(target.known_hosts + target.global_known_hosts)
            if host_matches(e.hosts, target.key_name)]


def known_keys(target: SshTarget) -> dict[str, tuple[paramiko.PKey, str]]:
    """The keys known_hosts records for the target, by type, with the file they came from
    (revoked keys and certificate authorities are not among them)."""
    found: dict[str, tuple[paramiko.PKey, str]] = {}
    for e in _for(target):
        if not e.marker:
            found.setdefault(e.key.get_name(), (e.key, e.path))
    return found


def revoked_entry(target: SshTarget, key: paramiko.PKey) -> Entry | None:
    """The ``@revoked`` line that revokes this key for the target, if any."""
    blob = key.asbytes()
    return next((e for e in _for(target) if e.marker == "@revoked"
                 and e.key.asbytes() == blob), None)


@contextlib.contextmanager
def asking_first(algorithm: str) -> Iterator[None]:
    """Connections opened inside ask the device for this host-key algorithm first."""
    token = _FIRST.set((algorithm,))
    try:
        yield
    finally:
        _FIRST.reset(token)


def preferred_algorithms(known: dict[str, object], offered: tuple[str, ...]) -> list[str]:
    """Host-key algorithms in negotiation order: the types known_hosts holds first, so the
    device proves the key we can check rather than another one it also has."""
    first: list[str] = []
    for ktype in (*_FIRST.get(), *known):
        first += [a for a in _ALGORITHMS.get(ktype, (ktype,)) if a in offered and a not in first]
    return first + [a for a in offered if a not in first]


def check(target: SshTarget, key: paramiko.PKey) -> None:
    """Raise HostKeyError unless known_hosts holds exactly this key for the target and does
    not revoke it."""
    offered = describe_key(key)
    bad = revoked_entry(target, key)
    if bad is not None:
        raise HostKeyError(
            f"SshLink: the host key of {target.key_name} is REVOKED: the device offers "
            f"{offered}, which {bad.where} marks @revoked. Do not connect with it: give the "
            f"device a new host key (on its console: ssh-keygen -A after removing "
            f"/etc/ssh/ssh_host_{short_type(key)}_key*), check the new fingerprint there and run "
            f"'{target.trust_hint()} --fingerprint SHA256:...'", offered, [], bad.where)
    known = known_keys(target)
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
            f"{short_type(key)}_key.pub) and run '{target.trust_hint()} --replace'",
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


def short_type(key: paramiko.PKey) -> str:
    """The name in the device's key file: /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key.pub."""
    name = key.get_name()
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(
        name, "ecdsa" if name.startswith("ecdsa") else name)



# ------------------------------------------------------------------ recording
def _matches(line: str, names: set[str]) -> bool:
    """Whether a known_hosts key line is for one of ``names`` (hashed entries included;
    marker lines, @revoked among them, never are: --replace keeps them)."""
    fields = line.split()
    if not fields or line.lstrip().startswith("#") or fields[0].startswith("@"):
        return False
    return any(_pattern_matches(p, n) for p in fields[0].split(",") for n in names)


def _hashed(lines: list[str]) -> bool | None:
    """Whether the file's entries are hashed: True if any is (a name written plain next to
    hashed ones would give away what hashing hides), None when it has none."""
    hosts = [f[1] if f[0].startswith("@") and len(f) > 1 else f[0] for f in
             (ln.split() for ln in lines) if f and not f[0].startswith("#")]
    return any(h.startswith("|1|") for h in hosts) if hosts else None


def writes_hashed(target: SshTarget) -> bool:
    """Whether ``record`` hashes the host: as the file's entries are; an empty or new file
    as HashKnownHosts says (~/.ssh/config, then /etc/ssh/ssh_config; else plain)."""
    path = Path(target.known_hosts[0])
    hashed = _hashed(path.read_text().splitlines()) if path.exists() else None
    return target.hash_known_hosts if hashed is None else hashed


def record(target: SshTarget, key: paramiko.PKey, replace: bool = False,
           hashed: bool | None = None) -> tuple[str, int]:
    """Append the key to the target's known_hosts file (the first one), its host hashed
    when ``writes_hashed`` (or ``hashed``) says; with ``replace``, drop the lines it had
    for the host first. Returns (file, lines removed)."""
    if hashed is None:
        hashed = writes_hashed(target)  # the file's style, as it was before --replace
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
    name = paramiko.HostKeys.hash_host(target.key_name) if hashed else target.key_name
    lines.append(f"{name} {key.get_name()} {key.get_base64()}\n")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(lines))
    os.chmod(tmp, 0o600 if not path.exists() else (path.stat().st_mode & 0o777))
    os.replace(tmp, path)
    return str(path), removed
