"""The Meter contract: a power instrument driver that yields a PowerTrace on the host clock.

Every meter does four things: ``start(mark)`` .. ``stop()`` bracket one measurement,
``trace()`` returns its samples (power/trace.py, stamped with power/clock.py's host clock),
``close()`` releases the instrument. What only some meters need is not here: a meter told
each phase (PTDaemon's ranging) or sampled through the device's agent (sysfs) says so by
the methods power/session.py looks for (``Phased``, ``AgentSampled``).

A driver is one file under drivers/ (``ptd.py``, ``lpm01a.py``, ...); ``open_meter(url)``
picks it by the URL's scheme, the way pyserial maps ``loop://`` to ``protocol_loop``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from edgeperf import errors
from edgeperf.power.trace import PowerTrace


class MeterError(errors.MeterError):
    """The meter failed or refused; the message names the meter, what it said and the fix."""


class Meter(ABC):
    """start(mark) .. stop() brackets one measurement; trace() returns its samples.

    A meter that fails mid-measurement raises MeterError from stop() and still returns what
    it received from trace().
    """

    url = ""
    lead_s = 0.0  # wait after start() before the workload, so samples precede the window
    settle_s = 0.0  # wait after the workload before stop(), so samples outlast the window

    @abstractmethod
    def start(self, mark: str) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def trace(self) -> PowerTrace: ...

    def close(self) -> None:
        """Release the instrument (sockets, serial ports); safe to call twice."""
        return None

    def info(self) -> dict[str, Any]:
        """What the instrument says about itself (identity, ranges, settings)."""
        return {"url": self.url}

    def describe(self) -> str:
        return self.url

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class MeterURL:
    scheme: str
    target: str  # host:port, a device path, a file, a sensor name
    params: dict[str, str]
    text: str

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.params.get(key, default)


def parse_meter_url(text: str) -> MeterURL:
    """``ptd://host:port``, ``lpm01a:///dev/ttyACM0``, ``joulescope``, ``sysfs``,
    ``csv:FILE``; options as a query string (``?interval_ms=100``)."""
    raw = text.strip()
    if not raw:
        raise MeterError("empty meter URL; pass ptd://HOST:PORT, lpm01a:///dev/ttyACM0, "
                         "joulescope, sysfs or csv:FILE")
    base, _, query = raw.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if ":" not in base:
        return MeterURL(base.lower(), "", params, raw)
    scheme, _, rest = base.partition(":")
    scheme = scheme.lower()
    if rest.startswith("//"):
        parts = urlsplit(f"{scheme}:{rest}")
        target = parts.netloc + parts.path if scheme == "ptd" else (parts.netloc or "") + parts.path
    else:
        target = rest
    return MeterURL(scheme, target, params, raw)


_DRIVERS = {"ptd": ("ptd", "PtdMeter"), "lpm01a": ("lpm01a", "Lpm01aMeter"),
            "joulescope": ("joulescope", "JoulescopeMeter"),
            "sysfs": ("sysfs", "SysfsMeter"), "csv": ("csv_file", "CsvMeter")}


def open_meter(url: str) -> Meter:
    """A Meter for ``url``; raises MeterError naming the accepted forms."""
    import importlib

    u = parse_meter_url(url)
    if u.scheme not in _DRIVERS:
        raise MeterError(f"unknown meter {url!r}; use ptd://HOST:PORT, lpm01a:///dev/ttyACM0, "
                         "joulescope, sysfs or csv:FILE")
    module, cls = _DRIVERS[u.scheme]
    mod = importlib.import_module(f"{__package__}.drivers.{module}")
    return getattr(mod, cls).from_url(u)
