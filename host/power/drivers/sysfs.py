"""The device's own power sensors (hwmon, power_supply), sampled by the agent.

``sysfs`` picks the first sensor the device has; ``sysfs:NAME`` one by id (``hwmon:hwmon2``,
``power_supply:BAT0``), directory or driver name (``ina219``); options ``interval_ms``
(default 100) and ``capacity``. Which sysfs tree the agent reads is the device's own
configuration ($EDGEPERF_SYSFS_ROOT in the agent's environment, default /sys; a fake tree
for tests), never the host's to choose: ``?root=`` is refused.

Samples come back stamped with the device's clock and are placed on the host clock with the
run's ClockSync, so this meter's trace is ready only after the run's final sync. The
sampler is a thread inside the agent: see device_agent/power.py for how it can delay a
query, and use an external meter where that matters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeperf.power.clock import WallAnchor
from edgeperf.power.meter import Meter, MeterError, MeterURL
from edgeperf.power.trace import PowerTrace

if TYPE_CHECKING:
    from edgeperf.power.clocksync import ClockMap
    from edgeperf.run.client import AgentClient

ROW_DTYPE = np.dtype([("t", "<i8"), ("w", "<f8"), ("v", "<f8"), ("a", "<f8")])


class SysfsMeter(Meter):
    def __init__(self, sensor: str | None = None, interval_ms: int = 100,
                 capacity: int | None = None, url: str = "") -> None:
        self.url = url or "sysfs" + (f":{sensor}" if sensor else "")
        self.sensor, self.interval_ms, self.capacity = sensor, interval_ms, capacity
        self.lead_s = self.settle_s = 1.5 * interval_ms / 1000
        self.client: AgentClient | None = None
        self.clock: Callable[[], ClockMap] | None = None
        self.sensor_info: dict[str, Any] = {}
        self.reply: dict[str, Any] = {}
        self._rows = np.zeros(0, ROW_DTYPE)
        self._mark = ""
        self._anchor = WallAnchor.now()

    @classmethod
    def from_url(cls, u: MeterURL) -> SysfsMeter:
        if "root" in u.params:
            raise MeterError(f"meter {u.text}: the sysfs root is device configuration, not a "
                             "meter option: set EDGEPERF_SYSFS_ROOT in the agent's environment "
                             "on the device (the local board's agent inherits this process's; "
                             "default /sys) and drop ?root= from the meter URL")
        try:
            cap = u.get("capacity")
            return cls(u.target or None, int(u.get("interval_ms", "100") or 100),
                       int(cap) if cap else None, url=u.text)
        except ValueError as exc:
            raise MeterError(f"meter {u.text}: {exc}") from None

    def bind_agent(self, client: AgentClient, clock: Callable[[], ClockMap]) -> None:
        self.client, self.clock = client, clock

    def _need_agent(self) -> AgentClient:
        if self.client is None:
            raise MeterError("the sysfs meter reads the device's sensors through the agent; it "
                             "works only inside a run (edgeperf run --meter sysfs)")
        return self.client

    def list_sensors(self) -> list[dict[str, Any]]:
        from edgeperf.run.client import AgentError

        try:
            return self._need_agent().request("sensors")[0]["sensors"]
        except AgentError as exc:
            raise MeterError(f"{self.url}: {exc}") from None

    def start(self, mark: str) -> None:
        from edgeperf.run.client import AgentError

        self._mark = mark
        self._anchor = WallAnchor.now()
        self._rows = np.zeros(0, ROW_DTYPE)
        try:
            reply, _ = self._need_agent().request(
                "sample_power", action="start", sensor=self.sensor,
                interval_ms=self.interval_ms, capacity=self.capacity)
        except AgentError as exc:
            raise MeterError(f"{self.url}: {exc}") from None
        self.sensor_info = reply.get("sensor") or {}

    def stop(self) -> None:
        from edgeperf.run.client import AgentError

        try:
            self.reply, body = self._need_agent().request("sample_power", action="stop")
        except AgentError as exc:
            raise MeterError(f"{self.url}: the device's sampler failed: {exc}") from None
        self._rows = np.frombuffer(body, ROW_DTYPE).copy()
        if self.reply.get("rows", 0) and self.reply.get("taken", 0) == 0:
            raise MeterError(f"{self.url}: the sensor gave no readings "
                             f"({self.reply.get('last_error')})")

    def trace(self) -> PowerTrace:
        r = self._rows
        if self.clock is None:
            raise MeterError("the sysfs trace needs the run's ClockSync to map device time")
        cm = self.clock()
        t = np.array([cm.to_host(int(x)) for x in r["t"]], np.int64) if len(r) else \
            np.zeros(0, np.int64)
        mid = int(r["t"][len(r) // 2]) if len(r) else 0
        tr = PowerTrace(t, r["w"], r["v"], r["a"], interval_ns=0, meter=self.url,
                        mark=self._mark, wall_offset_ns=self._anchor.offset_ns,
                        timing_uncertainty_ns=cm.uncertainty_ns(mid) if len(r) else 0)
        if self.reply.get("dropped"):
            tr.notes.append(f"the device's ring buffer dropped the oldest "
                            f"{self.reply['dropped']} samples")
        if self.reply.get("errors"):
            tr.notes.append(f"{self.reply['errors']} sensor reads failed "
                            f"({self.reply.get('last_error')})")
        return tr

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "sensor": self.sensor_info, "interval_ms": self.interval_ms}

    def describe(self) -> str:
        name = self.sensor_info.get("name") or self.sensor or "first sensor"
        return f"{self.url} ({self.sensor_info.get('id', '')} {name})".replace("( ", "(")
