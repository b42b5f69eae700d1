"""The serial agent's optional shared secret: one key file on both ends, an HMAC handshake
at the start of every reliable session.

A UART or a USB gadget port has no login: whoever plugs into it can drive an agent that
serves it open. With a key (``serve --serial DEV --key-file PATH``, or
$EDGEPERF_AGENT_KEY_FILE), the agent answers only ``hello`` and ``auth`` until the host of
the current session has proved it holds the key, and proves in turn that it holds it too:

    hello reply   {"auth": {"required": true, "nonce": A}}    A fresh for every session
    auth request  {"nonce": H, "mac": HMAC(key, LABEL|A|H|cid)}
    auth reply    {"authenticated": true, "mac": HMAC(key, LABEL|H|A|cid)}

HMAC is HMAC-SHA256; A and H are 32 random bytes (hex on the wire, the raw bytes under the
MAC), cid the reliable session's connection id (reliable.py: sid ^ peer) as 8 hex digits,
and ``|`` the byte b"|". An answer recorded in one session is worth nothing in the next (a
new A, a new cid). A wrong MAC is refused (kind AuthFailed), logged without any key or MAC
value, and the next attempt is answered no sooner than RETRY_DELAY_S later, in whatever
session it comes. Every other request before that gets kind AuthRequired, naming the fix,
and hello tells only the versions, nothing of the device.

The key file holds 32 random bytes as 64 hex digits; like ssh with a private key, a file
that its group or others may read is refused. The host side (edgeperf's AgentClient)
uses HostHandshake. This module must run on Python 3.9 and needs only the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from typing import Any, Callable, Dict, Optional, Tuple

from . import wire

KEY_ENV = "EDGEPERF_AGENT_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 32
LABEL = b"edgeperf-serial-auth-v1"
RETRY_DELAY_S = 1.0
OPEN_OPS = frozenset(("hello", "auth"))  # what an unauthenticated host may ask
PUBLIC_HELLO = ("op", "agent_version", "protocol", "wire")  # what its hello tells
HOST_FIX = ("give the host the key file: ?key_file=PATH on the serial URL, or key_file = "
            "\"PATH\" in the board profile's [link]")
_HEX = re.compile(r"[0-9a-f]{%d}" % (2 * NONCE_BYTES))

Answer = Tuple[int, Dict[str, Any], bytes]


class KeyFileError(Exception):
    """A key file that cannot be used; the message names the fix (never the key)."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str, key: Optional[bytes] = None) -> None:
    """A new key file at ``path``, mode 0600, never over an existing file."""
    text = (key or new_key()).hex() + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError("%s already exists; a key is never overwritten: remove it first or "
                           "choose another path" % path) from None
    except OSError as exc:
        raise KeyFileError("cannot create key file %s: %s" % (path, exc.strerror)) from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_key(path: str) -> bytes:
    """The key in ``path``; KeyFileError when it is missing, open to others or malformed."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError("key file %s is not a regular file" % path)
        if st.st_mode & 0o077:
            raise KeyFileError("key file %s may be read by its group or others (mode %04o), so "
                               "it is refused, as ssh refuses such a private key: run "
                               "'chmod 600 %s' (owned by the user who reads it)"
                               % (path, stat.S_IMODE(st.st_mode), path))
        with open(path, "rb") as f:
            raw = f.read(4 * KEY_BYTES + 8)
    except OSError as exc:
        raise KeyFileError("cannot read key file %s: %s" % (path, exc.strerror)) from None
    text = raw.decode("ascii", "replace").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{%d}" % (2 * KEY_BYTES), text):
        raise KeyFileError("key file %s does not hold a key (%d hex digits on one line, as "
                           "'edgeperf serial-key new PATH' writes)" % (path, 2 * KEY_BYTES))
    return bytes.fromhex(text)


def is_nonce(value: Any) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def mac(key: bytes, first: str, second: str, connection: int) -> str:
    """HMAC-SHA256(key, LABEL|first|second|cid), hex; ``first`` and ``second`` are nonces
    in hex (their raw bytes go under the MAC), ``connection`` the reliable session's id."""
    msg = b"|".join((LABEL, bytes.fromhex(first), bytes.fromhex(second),
                     b"%08x" % (connection & 0xFFFFFFFF)))
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class HostHandshake:
    """The host's half: the auth request for the agent's nonce, and the check of its reply."""

    def __init__(self, key: bytes, agent_nonce: str, connection: int) -> None:
        if not is_nonce(agent_nonce):
            raise ValueError("the agent's hello carries no valid nonce")
        self.key, self.agent_nonce, self.connection = key, agent_nonce, connection
        self.nonce = secrets.token_hex(NONCE_BYTES)

    def request(self) -> Dict[str, str]:
        return {"nonce": self.nonce,
                "mac": mac(self.key, self.agent_nonce, self.nonce, self.connection)}

    def agent_proved(self, reply: Dict[str, Any]) -> bool:
        """The agent's MAC is over the nonces in reverse order: only a holder of the key
        computes it."""
        got = reply.get("mac")
        want = mac(self.key, self.nonce, self.agent_nonce, self.connection)
        return isinstance(got, str) and hmac.compare_digest(got.lower().encode(), want.encode())


class Gate:
    """The agent's half, one per serving loop: which requests of the current session are
    answered, and the answer to ``auth``. No key: everything passes, as without a gate."""

    def __init__(self, key: Optional[bytes], log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic,
                 delay: float = RETRY_DELAY_S) -> None:
        self.key, self.log, self.clock, self.delay = key, log, clock, delay
        self.session: Optional[int] = None
        self.connection = 0
        self.nonce = ""
        self.authenticated = False
        self.not_before = float("-inf")  # an auth is answered no sooner (after a failure)
        self.failures = 0

    @property
    def required(self) -> bool:
        return self.key is not None

    def describe(self) -> str:
        return "key required (a host must prove it holds the key file's key)" if self.required \
            else "open (no key: any host on this port can drive it; see --key-file)"

    def enter(self, session: int, connection: int) -> None:
        """The request at hand belongs to ``session``: a new one starts unauthenticated,
        with a fresh nonce."""
        if session != self.session:
            self.session, self.connection = session, connection
            self.nonce = secrets.token_hex(NONCE_BYTES)
            self.authenticated = False

    def hold(self, frame: wire.Frame) -> float:
        """Seconds before ``frame`` may be answered: an auth soon after a failed one waits."""
        if frame.header.get("op") != "auth":
            return 0.0
        return max(0.0, self.not_before - self.clock())

    def screen(self, frame: wire.Frame) -> Optional[Answer]:
        """The gate's own answer to ``frame`` (auth, or a refusal), or None: the agent's."""
        if frame.type != wire.REQUEST or frame.version != wire.WIRE_VERSION:
            return None  # dispatch names what is wrong with it
        op = frame.header.get("op")
        if op == "auth":
            return self._auth(frame.header)
        if not self.required or self.authenticated or op in OPEN_OPS:
            return None
        return wire.ERROR, {"error": "this agent requires a key and this host has not "
                                     "authenticated in this session: " + HOST_FIX,
                            "kind": "AuthRequired", "op": op}, b""

    def annotate(self, frame: wire.Frame, type_: int, header: Dict[str, Any]) -> Dict[str, Any]:
        """hello's reply says what access needs (and, with a key, carries the nonce). Until
        the host is authenticated it tells only the versions (what to update on a mismatch),
        nothing of the device."""
        if type_ != wire.RESPONSE or frame.header.get("op") != "hello":
            return header
        info: Dict[str, Any] = {"required": self.required}
        if self.required:
            info.update(nonce=self.nonce, authenticated=self.authenticated)
            if not self.authenticated:
                header = {k: header[k] for k in PUBLIC_HELLO if k in header}
        return dict(header, auth=info)

    def _auth(self, req: Dict[str, Any]) -> Answer:
        if not self.required:
            return wire.ERROR, {"error": "this agent runs without a key (no --key-file): there "
                                         "is nothing to authenticate", "kind": "AuthError",
                                "op": "auth"}, b""
        assert self.key is not None
        nonce, got = req.get("nonce"), req.get("mac")
        if is_nonce(nonce) and isinstance(got, str) and hmac.compare_digest(
                got.lower().encode(), mac(self.key, self.nonce, nonce, self.connection).encode()):
            self.authenticated = True
            self.log("host authenticated (connection %08x)" % self.connection)
            return wire.RESPONSE, {"op": "auth", "authenticated": True,
                                   "mac": mac(self.key, nonce, self.nonce, self.connection)}, b""
        self.authenticated = False
        self.failures += 1
        self.not_before = self.clock() + self.delay
        self.log("auth refused (connection %08x, %d so far): the host's answer does not match "
                 "this agent's key (a host without the key, a wrong key file, or an answer "
                 "replayed from another session); the next attempt waits %g s"
                 % (self.connection, self.failures, self.delay))
        return wire.ERROR, {"error": "authentication failed: the host's key is not this agent's "
                                     "(a different key file on the host, or an answer from "
                                     "another session); copy the device's key file to the host "
                                     "and " + HOST_FIX.replace("give the host the key file: ",
                                                               "name it with "),
                            "kind": "AuthFailed", "op": "auth"}, b""
