"""An emulated device on a pseudo-terminal, served by a thread of its own.

The emulated PowerShield and the emulated MLPerf Tiny DUT are both this: a raw pty pair whose
slave path a driver opens with pyserial, and a thread that answers on the master side until
``close()``. Subclasses set ``thread_name`` and write ``_loop`` (which returns when
``self._closing`` is set).
"""

from __future__ import annotations

import os
import select
import threading
import tty
from typing import TypeVar

T = TypeVar("T", bound="PtyDevice")


def write_all(fd: int, data: bytes, closing: threading.Event) -> None:
    """Write all of ``data`` to ``fd`` as fast as it takes it, until ``closing`` is set (a
    closed fd ends it: the reader is gone)."""
    while data and not closing.is_set():
        try:
            _, w, _ = select.select([], [fd], [], 0.05)
            if w:
                data = data[os.write(fd, data):]
        except BlockingIOError:
            continue
        except OSError:
            return


class PtyDevice:
    thread_name = "pty-device"

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._inbuf = b""
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        raise NotImplementedError

    def start(self: T) -> T:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self: T) -> T:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
