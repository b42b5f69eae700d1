"""The host's half of a serial agent's shared key (the handshake itself: edgeperf_agent.auth).

A serial board whose agent runs with ``--key-file`` answers nothing but hello and auth until
the host proves it holds the same key; the host checks the agent's proof in turn, so a
stranger on the port can neither drive the agent nor pass for it. The host names its copy
with ``key_file`` (``?key_file=PATH`` on a serial URL, ``key_file`` in a profile's [link]);
``edgeperf serial-key new PATH`` writes one. No key or MAC value ever reaches a log, an
error or a result: only "open" or "key required (authenticated)".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeperf.errors import AgentError, UsageError
from edgeperf.links.base import LinkError
from edgeperf_agent import auth

OPEN = "open (no key: any host on this port can drive it; see edgeperf serial-key)"
AUTHENTICATED = "key required (authenticated)"
Request = Callable[..., tuple[dict, bytes]]  # AgentClient.request


def load_host_key(path: str, where: str) -> bytes:
    """The key in ``path``, refused as the agent refuses it (mode, format): LinkError."""
    try:
        return auth.load_key(path)
    except auth.KeyFileError as exc:
        raise LinkError(f"{where}: {exc}") from None


def access(info: dict[str, Any]) -> str:
    """What ``edgeperf info`` says of an agent's access (its hello's auth record)."""
    return AUTHENTICATED if info.get("required") and info.get("authenticated") else OPEN


def authenticate(request: Request, where: str, offered: dict[str, Any] | None,
                 key: bytes | None, key_file: str | None, connection: int) -> dict[str, Any]:
    """The handshake after hello, when the agent asks for it; returns the auth record kept
    with the hello (no nonce, no MAC). ``offered`` is the hello's "auth" (None: an agent
    that predates keys), ``connection`` the link's reliable-session id."""
    required = bool((offered or {}).get("required"))
    if not required:
        if key is not None:
            raise LinkError(f"{where}: this host holds a key for the board (key_file "
                            f"{key_file}), but the agent that answered requires none: it is "
                            "not the device holding that key, or its agent runs without "
                            "--key-file; start it with 'serve --serial DEV --key-file PATH' "
                            "(or $EDGEPERF_AGENT_KEY_FILE), or drop key_file")
        return {"required": False}
    if key is None:
        raise AgentError(f"{where}: the agent requires a key (AuthRequired) and this host has "
                         f"none for it: {auth.HOST_FIX} (a copy of the key file the device "
                         "was given, as 'edgeperf serial-key new PATH' wrote it)",
                         "AuthRequired", "hello")
    try:
        hs = auth.HostHandshake(key, offered["nonce"], connection)
    except ValueError as exc:
        raise LinkError(f"{where}: {exc}; update the agent on the device") from None
    try:
        reply, _ = request("auth", **hs.request())
    except AgentError as exc:
        if exc.kind != "AuthFailed":
            raise
        raise AgentError(f"{where}: the agent refused this host's key (AuthFailed): key_file "
                         f"{key_file} is not the key the device was given; copy the device's "
                         "key file to the host (or install this one on the device)",
                         "AuthFailed", "auth") from None
    if not hs.agent_proved(reply):
        raise LinkError(f"{where}: the device does not hold this key (key_file {key_file}): "
                        "its answer to the handshake is not the key's; it is another device, "
                        "or something between pretends to be the agent")
    return {"required": True, "authenticated": True}


def new_key_file(path: str) -> str:
    """Write a new key to ``path`` (mode 0600); returns how to install it on the device.
    UsageError when the path exists or cannot be created."""
    try:
        auth.write_key_file(path)
    except auth.KeyFileError as exc:
        raise UsageError(str(exc)) from None
    return (f"wrote a new key to {path} (mode 0600). On the device (as root), for the "
            "systemd unit boards/edgeperf-agent-serial.service:\n"
            f"  install -D -m 600 {path} /etc/edgeperf/agent.key   (copy it over a channel "
            "you trust: scp, a USB stick)\n"
            "  then uncomment LoadCredential= and Environment=EDGEPERF_AGENT_KEY_FILE= in the "
            "unit and 'systemctl daemon-reload && systemctl restart edgeperf-agent-serial'\n"
            "  (by hand: python3 agent.pyz serve --serial DEV --key-file /etc/edgeperf/agent.key,"
            " the file the agent's user's own, mode 600).\n"
            f"On this host: --board 'serial:///dev/ttyACM0?key_file={path}' or key_file = "
            f"\"{path}\" in the board profile's [link]")
