"""On-device power sensors, sampled by the agent on the device clock.

* Linux hwmon: INA219/INA226-style monitors as wired on many Raspberry Pi power boards:
  ``power1_input`` (uW), ``curr1_input`` (mA), ``in1_input`` (bus voltage, mV).
* power_supply: batteries of Android phones and laptops: ``current_now`` (uA; its sign on
  discharge differs between drivers, so its magnitude is used), ``voltage_now`` (uV),
  ``power_now`` (uW) where the driver has it.

The sysfs root is ``/sys`` unless ``EDGEPERF_SYSFS_ROOT`` is set in the agent's environment
(tests point it at a fake tree): device configuration, never taken from a request.

A sampler thread reads the chosen sensor every ``interval_ms`` into a bounded ring buffer,
stamped with ``time.perf_counter_ns`` (the QueryLog's clock) at the middle of each read;
it reads once when started and once more when stopped, so the samples span both moments.
It shares the interpreter with the scenario loop: each read takes the GIL for tens of
microseconds, so a query in flight at that moment is delayed by that much (once per
interval; at the default 100 ms, a few queries in a thousand on a fast model). Runs that
need latencies untouched by it should measure power with an external meter.
"""

from __future__ import annotations

import glob
import os
import struct
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

ROOT_ENV = "EDGEPERF_SYSFS_ROOT"
DEFAULT_INTERVAL_MS = 100
DEFAULT_CAPACITY = 1_000_000  # samples kept (the newest); 32 MB at most


class SensorError(Exception):
    pass


def sysfs_root() -> str:
    return os.environ.get(ROOT_ENV) or "/sys"


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def list_sensors(root: Optional[str] = None) -> List[Dict[str, Any]]:
    """Sensors that can give watts (directly, or as volts x amps)."""
    base = root or sysfs_root()
    found = []
    for d in sorted(glob.glob(os.path.join(base, "class", "hwmon", "hwmon*"))):
        have = [f for f in ("power1_input", "curr1_input", "in1_input")
                if os.path.exists(os.path.join(d, f))]
        if "power1_input" in have or {"curr1_input", "in1_input"} <= set(have):
            found.append({"id": "hwmon:" + os.path.basename(d), "kind": "hwmon",
                          "name": _read_text(os.path.join(d, "name")), "path": d,
                          "fields": have})
    for d in sorted(glob.glob(os.path.join(base, "class", "power_supply", "*"))):
        have = [f for f in ("power_now", "current_now", "voltage_now")
                if os.path.exists(os.path.join(d, f))]
        if "power_now" in have or {"current_now", "voltage_now"} <= set(have):
            found.append({"id": "power_supply:" + os.path.basename(d), "kind": "power_supply",
                          "name": _read_text(os.path.join(d, "type")) or os.path.basename(d),
                          "path": d, "fields": have})
    return found


def pick_sensor(sensors: List[Dict[str, Any]], want: Optional[str]) -> Dict[str, Any]:
    if not sensors:
        raise SensorError("no power sensor on this device (looked for hwmon power1_input or "
                          "curr1_input+in1_input, and power_supply current_now+voltage_now)")
    if not want:
        return sensors[0]
    for s in sensors:
        if want in (s["id"], s["id"].split(":", 1)[1], s["name"]):
            return s
    raise SensorError("no sensor %r; the device has: %s"
                      % (want, ", ".join("%s (%s)" % (s["id"], s["name"]) for s in sensors)))


def read_sensor(sensor: Dict[str, Any]) -> Tuple[float, float, float]:
    """(watts, volts, amps); NaN for what the sensor does not give."""
    d = sensor["path"]
    nan = float("nan")
    if sensor["kind"] == "hwmon":
        p = _read_int(os.path.join(d, "power1_input"))
        i = _read_int(os.path.join(d, "curr1_input"))
        v = _read_int(os.path.join(d, "in1_input"))
        amps = abs(i) / 1e3 if i is not None else nan
        volts = v / 1e3 if v is not None else nan
        watts = p / 1e6 if p is not None else volts * amps
    else:
        p = _read_int(os.path.join(d, "power_now"))
        i = _read_int(os.path.join(d, "current_now"))
        v = _read_int(os.path.join(d, "voltage_now"))
        amps = abs(i) / 1e6 if i is not None else nan
        volts = v / 1e6 if v is not None else nan
        watts = abs(p) / 1e6 if p is not None else volts * amps
    if watts != watts:  # NaN: the files vanished or hold no number
        raise SensorError("cannot read %s" % d)
    return watts, volts, amps


ROW = struct.Struct("<qddd")


class Sampler(threading.Thread):
    def __init__(self, sensor: Dict[str, Any], interval_ns: int, capacity: int) -> None:
        super().__init__(name="power-sampler", daemon=True)
        self.sensor = sensor
        self.interval_ns = max(1_000_000, int(interval_ns))
        self.rows: Deque[Tuple[int, float, float, float]] = deque(maxlen=max(1, capacity))
        self.taken = 0
        self.errors = 0
        self.last_error = ""
        self._stop_event = threading.Event()

    def _take(self) -> None:
        pc = time.perf_counter_ns
        a = pc()
        try:
            w, v, i = read_sensor(self.sensor)
            self.rows.append(((a + pc()) // 2, w, v, i))
            self.taken += 1
        except SensorError as exc:
            self.errors += 1
            self.last_error = str(exc)

    def run(self) -> None:
        pc = time.perf_counter_ns
        next_ns = pc()
        while not self._stop_event.is_set():
            self._take()
            next_ns += self.interval_ns
            now = pc()
            if next_ns < now:  # fell behind (a long GIL hold): skip, do not burst
                next_ns = now + self.interval_ns
            self._stop_event.wait((next_ns - now) / 1e9)

    def finish(self) -> Tuple[Dict[str, Any], bytes]:
        """Stop, take a last reading (so the samples always reach the moment of stopping,
        however late the thread's last tick ran), and return the rows."""
        self._stop_event.set()
        self.join(timeout=5)
        self._take()
        rows = list(self.rows)
        body = b"".join(ROW.pack(*r) for r in rows)
        return {"rows": len(rows), "taken": self.taken, "dropped": self.taken - len(rows),
                "errors": self.errors, "last_error": self.last_error,
                "interval_ns": self.interval_ns, "sensor": self.sensor,
                "row_format": "<qddd: perf_counter_ns, watts, volts, amps"}, body
