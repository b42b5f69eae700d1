"""Joulescope (JS110/JS220) through the ``joulescope`` package (``edgeperf[joulescope]``).

``joulescope`` uses the one instrument attached, ``joulescope:SERIAL`` a given one; options
``freq`` (samples a second, default 1000: the instrument downsamples) and ``chunk_s``.

The driver uses the package's documented high-level calls: ``scan_require_one`` / ``scan``,
``open``, ``parameter_set('sampling_frequency', f)``, ``read(contiguous_duration=s)`` (an
N x 2 array of amps and volts) and ``close``. A reader thread reads contiguous chunks; a
chunk's last sample is stamped with the host time the read returned and the others are
spaced at 1/f before it, so the bound on timing is the USB latency (a few ms). Between
chunks the stream restarts, leaving gaps of a few milliseconds that the energy integration
bridges linearly and reports when they are long.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgeperf.power.clock import WallAnchor, host_ns
from edgeperf.power.meter import Meter, MeterError, MeterURL
from edgeperf.power.trace import PowerTrace


def _import_joulescope() -> Any:
    try:
        import joulescope
    except ImportError:
        raise MeterError("the joulescope meter needs the joulescope package: "
                         "pip install 'edgeperf[joulescope]'") from None
    return joulescope


class JoulescopeMeter(Meter):
    def __init__(self, serial: str | None = None, freq: int = 1000, chunk_s: float = 0.25,
                 url: str = "") -> None:
        js = _import_joulescope()
        self.url = url or "joulescope" + (f":{serial}" if serial else "")
        self.freq, self.chunk_s = int(freq), float(chunk_s)
        self.lead_s = self.settle_s = self.chunk_s + 0.1
        try:
            if serial:
                devices = [d for d in js.scan(config="auto") if serial in str(d)]
                if not devices:
                    raise MeterError(f"no Joulescope with serial {serial} attached")
                self.device = devices[0]
            else:
                self.device = js.scan_require_one(config="auto")
            self.device.open()
            self.device.parameter_set("sampling_frequency", self.freq)
        except MeterError:
            raise
        except Exception as exc:  # noqa: BLE001 - the package raises its own types
            raise MeterError(f"{self.url}: {exc}; is the Joulescope attached and not open in "
                             "the Joulescope UI?") from None
        self.name = str(self.device)
        self._chunks: list[tuple[int, np.ndarray]] = []
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._anchor = WallAnchor.now()
        self._mark = ""

    @classmethod
    def from_url(cls, u: MeterURL) -> JoulescopeMeter:
        try:
            return cls(u.target or None, int(u.get("freq", "1000") or 1000),
                       float(u.get("chunk_s", "0.25") or 0.25), url=u.text)
        except ValueError as exc:
            raise MeterError(f"meter {u.text}: {exc}") from None

    def start(self, mark: str) -> None:
        self._mark = mark
        self._chunks, self._error = [], None
        self._anchor = WallAnchor.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._read, name="joulescope", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.device.read(contiguous_duration=self.chunk_s)
            except Exception as exc:  # noqa: BLE001
                self._error = f"{type(exc).__name__}: {exc}"
                return
            t_end = host_ns()
            if data is None or len(data) == 0:
                self._error = "the instrument returned no data"
                return
            self._chunks.append((t_end, np.asarray(data, np.float64)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.chunk_s * 4 + 5)
            self._thread = None
        if self._error:
            raise MeterError(f"{self.url} ({self.name}) failed during the measurement: "
                             f"{self._error}")

    def trace(self) -> PowerTrace:
        if not self._chunks:
            return PowerTrace.empty(self.url)
        period = 1e9 / self.freq
        ts, amps, volts = [], [], []
        for t_end, data in self._chunks:
            n = len(data)
            ts.append(np.round(t_end - (n - 1 - np.arange(n)) * period).astype(np.int64))
            amps.append(data[:, 0])
            volts.append(data[:, 1])
        a, v = np.concatenate(amps), np.concatenate(volts)
        return PowerTrace(np.concatenate(ts), a * v, v, a, meter=self.url, mark=self._mark,
                          wall_offset_ns=self._anchor.offset_ns,
                          timing_uncertainty_ns=5_000_000)

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "device": self.name, "freq": self.freq}

    def close(self) -> None:
        try:
            self.stop()
        except MeterError:
            pass
        try:
            self.device.close()
        except Exception:  # noqa: BLE001
            pass
