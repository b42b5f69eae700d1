"""Power measurement: meters, clock synchronisation, energy over the measurement window."""

from edgeperf.power.clocksync import ClockMap, ClockSync, SyncPoint
from edgeperf.power.energy import integrate, scenario_figures
from edgeperf.power.meter import Meter, MeterError, PowerTrace, WallAnchor, host_ns, open_meter

__all__ = ["ClockMap", "ClockSync", "Meter", "MeterError", "PowerTrace", "SyncPoint",
           "WallAnchor", "host_ns", "integrate", "open_meter", "scenario_figures"]
