"""Power measurement: meters, clock synchronisation, energy over the measurement window."""

from edgeperf.power.clock import WallAnchor, host_ns
from edgeperf.power.clocksync import ClockMap, ClockSync, SyncPoint
from edgeperf.power.energy import integrate, scenario_figures
from edgeperf.power.meter import Meter, MeterError, open_meter
from edgeperf.power.trace import PowerTrace

__all__ = ["ClockMap", "ClockSync", "Meter", "MeterError", "PowerTrace", "SyncPoint",
           "WallAnchor", "host_ns", "integrate", "open_meter", "scenario_figures"]
