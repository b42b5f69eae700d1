"""Links: byte pipes to a device agent, and nothing more (framing lives in the client).

The contract is three methods: ``send(data)``, ``recv(n, timeout) -> bytes`` (at most n
bytes; b"" when nothing arrived in time) and ``close()``. A link whose peer is gone raises
``LinkClosed`` from send or recv, with what the peer last said on its error stream.

One module a link (local.py, serial.py, ssh/), each opened by its scheme through
registry.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from edgeperf import errors


class LinkError(errors.LinkError):
    """The link cannot be opened or used; the message names the fix."""


class LinkClosed(LinkError):
    """The peer went away (process exited, connection dropped, cable pulled)."""


class Link(ABC):
    name = "link"

    @abstractmethod
    def send(self, data: bytes) -> None: ...

    @abstractmethod
    def recv(self, n: int, timeout: float) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
