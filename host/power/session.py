"""PowerSession: one run's power measurement, wrapped around the runner's workload.

The runner hands ``measure`` a callback that runs the workload once for a phase and returns
the agent's run reply; the session does the rest::

    ClockSync burst (before)
    [idle baseline: the meter alone for S seconds, the device idle]
    for each phase ("ranging" then "testing" for PTDaemon, "testing" otherwise):
        configure the meter for the phase, start it, run the workload, stop it
    ClockSync burst (after)  -> drift, and the device-to-host ClockMap

``finish`` then maps the window (first issue to last completion, device clock) onto the
host clock, integrates the testing trace over it, checks MLPerf's ranging rule, derives the
scenario's figures, and writes spl.txt (testing), ranging/spl.txt and power_trace.npz (and
maps the ranging run's window too); ``write_session_files`` then writes power-dev's power/.

A meter that fails never stops the workload: the phase's error is recorded, the workload
still runs, the latency results stay as they are and the power record is marked invalid
with the reason. Only failures of the agent itself propagate (the runner handles those).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from edgeperf.power import energy, powerdev, spl
from edgeperf.power.clock import WallAnchor, host_ns
from edgeperf.power.clocksync import ClockMap, ClockSync, SyncPoint
from edgeperf.power.meter import Meter, MeterError, open_meter
from edgeperf.power.trace import PowerTrace

if TYPE_CHECKING:
    from edgeperf.run.client import AgentClient
    from edgeperf.run.querylog import QueryLogData
    from edgeperf.scoring.loadgen import Summary

Reporter = Callable[[str, dict[str, Any]], None]
RunPhase = Callable[[str], dict[str, Any]]
CLOCK_GOAL_NS = 1_000_000  # ClockSync's goal over a network link (SSH, local)
SERIAL_CLOCK_GOAL_NS = 2_000_000  # and over a byte-rate-limited line (a UART at 115200)


@runtime_checkable
class Phased(Protocol):
    """A meter told each phase ("idle", "ranging", "testing") before start(): PTDaemon fixes
    its ranges for testing from the ranging trace; with ``needs_ranging`` it is given a
    ranging run first."""

    needs_ranging: bool

    def configure_phase(self, phase: str, ranging: PowerTrace | None = None) -> None: ...


@runtime_checkable
class AgentSampled(Protocol):
    """A meter the device's agent samples (sysfs): it talks through the run's AgentClient
    and maps device time with the run's ClockSync (a ClockMap once the run has ended)."""

    def bind_agent(self, client: AgentClient, clock: Callable[[], ClockMap]) -> None: ...


@dataclass
class Phase:
    name: str
    mark: str
    reply: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    trace: PowerTrace | None = None
    started: bool = False


class PowerSession:
    def __init__(self, meter: Meter, client: AgentClient, out: Path, *, idle_s: float = 0.0,
                 report: Reporter | None = None, label: str = "edgeperf",
                 clocksync: ClockSync | None = None) -> None:
        self.meter = meter
        self.client = client
        self.out = Path(out)
        self.idle_s = float(idle_s)
        report = report or (lambda ev, data: None)
        self.journal: list[tuple[float, str, dict[str, Any]]] = []  # (wall s, event, data)

        def say(ev: str, data: dict[str, Any]) -> None:
            self.journal.append((time.time(), ev, dict(data)))
            report(ev, data)

        self.say = say
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        self.label = f"{stamp}_{label}"
        link = getattr(client, "link", None)
        rate = getattr(link, "bytes_per_s", None)
        self.sync = clocksync or ClockSync(client, link_bytes_per_s=rate)
        self.clock_goal_ns = SERIAL_CLOCK_GOAL_NS if rate else CLOCK_GOAL_NS
        self.anchor = WallAnchor.now()
        self.sync_before: SyncPoint | None = None
        self.sync_after: SyncPoint | None = None
        self.phases: list[Phase] = []
        self.idle: Phase | None = None
        self.errors: list[str] = []
        if isinstance(meter, AgentSampled):
            meter.bind_agent(client, self.clock_map)

    @classmethod
    def open(cls, url: str, client: AgentClient, out: Path, **kw: Any) -> PowerSession:
        """Open the meter named by ``url``; MeterError if it cannot be reached."""
        return cls(open_meter(url), client, out, **kw)

    # ---------------------------------------------------------------- measuring
    def clock_map(self) -> ClockMap:
        if self.sync_before is None:
            raise MeterError("no clock synchronisation with the device happened")
        return ClockMap(self.sync_before, self.sync_after)

    def _meter_call(self, phase: Phase, what: str, fn: Callable[[], Any]) -> bool:
        try:
            fn()
            return True
        except MeterError as exc:
            msg = f"{phase.name}: {exc}"
            phase.error = phase.error or msg
            self.say("power", {"phase": phase.name, "error": str(exc), "during": what})
            return False

    def measure(self, run_phase: RunPhase) -> dict[str, Any]:
        """Run the workload once per phase under the meter; returns the testing reply."""
        self.anchor = WallAnchor.now()
        self.sync_before = self.sync.sync()
        self.say("power", {"clock_sync": self.sync_before.to_dict()})
        if self.idle_s > 0:
            self.idle = Phase("idle", f"{self.label}_idle")
            ok = self._meter_call(self.idle, "configure", lambda: self._configure("idle"))
            if ok and self._meter_call(self.idle, "start",
                                       lambda: self.meter.start(self.idle.mark)):
                self.idle.started = True
                self.say("power", {"phase": "idle", "seconds": self.idle_s})
                t0 = host_ns()
                time.sleep(self.idle_s)
                self.idle.reply = {"host_start_ns": t0, "host_end_ns": host_ns()}
                self._meter_call(self.idle, "stop", self.meter.stop)
                self.idle.trace = self._trace_now(self.idle)
        ranged = isinstance(self.meter, Phased) and self.meter.needs_ranging
        names = ["ranging", "testing"] if ranged else ["testing"]
        reply: dict[str, Any] = {}
        ranging_trace: PowerTrace | None = None
        for name in names:
            ph = Phase(name, f"{self.label}_{name}")
            self.phases.append(ph)
            ok = self._meter_call(ph, "configure", lambda ph=ph, rt=ranging_trace:
                                  self._configure(ph.name, rt))
            ok = ok and self._meter_call(ph, "start", lambda ph=ph: self.meter.start(ph.mark))
            if not ok and name == "ranging":
                continue  # ranging exists for the meter; without one, go straight to testing
            ph.started = ok
            if ok:
                time.sleep(self.meter.lead_s)
            self.say("power", {"phase": name, "state": "run"})
            try:
                reply = run_phase(name)
            except BaseException:
                if ph.started:
                    self._meter_call(ph, "stop", self.meter.stop)
                    ph.trace = self._trace_now(ph)
                self._finish_sync()
                raise
            ph.reply = {k: reply.get(k) for k in ("start_ns", "end_ns", "rows")}
            # tests drive an emulated instrument's load profile from this event
            self.say("power_window", {"phase": name, "start_ns": reply.get("start_ns"),
                                      "end_ns": reply.get("end_ns")})
            if ph.started:
                time.sleep(self.meter.settle_s)
                self._meter_call(ph, "stop", self.meter.stop)
                if name == "ranging":
                    ranging_trace = ph.trace = self._trace_now(ph)
        self._finish_sync()
        for ph in self.phases:
            if ph.started and ph.trace is None:
                ph.trace = self._trace_now(ph)
        return reply

    def _configure(self, phase: str, ranging: PowerTrace | None = None) -> None:
        if isinstance(self.meter, Phased):
            self.meter.configure_phase(phase, ranging)

    def _finish_sync(self) -> None:
        from edgeperf.run.client import AgentError

        try:
            self.sync_after = self.sync.sync()
        except AgentError as exc:
            self.errors.append(f"the clock sync after the run failed: {exc}")

    def _trace_now(self, ph: Phase) -> PowerTrace | None:
        try:
            tr = self.meter.trace()
        except MeterError as exc:
            ph.error = ph.error or f"{ph.name}: {exc}"
            return None
        tr.mark = ph.mark
        return tr

    def close(self) -> None:
        try:
            self.meter.close()
        except MeterError:
            pass

    # ---------------------------------------------------------------- scoring
    def finish(self, q: QueryLogData | None, summary: Summary | None, scenario: str,
               reply: dict[str, Any], ranging_q: QueryLogData | None = None) -> dict[str, Any]:
        """The power record (result.json's "power"); writes the power files into ``out``."""
        rec: dict[str, Any] = {"meter": self.meter.describe(), "url": self.meter.url,
                               "host_clock": "time.monotonic_ns (CLOCK_MONOTONIC)",
                               "instrument": _jsonable(self.meter.info())}
        reasons: list[str] = list(self.errors)
        warnings: list[str] = []
        testing = next((p for p in self.phases if p.name == "testing"), None)
        ranging = next((p for p in self.phases if p.name == "ranging"), None)
        for ph in [self.idle, ranging, testing]:
            if ph is not None and ph.error:
                reasons.append(ph.error)
        cm: ClockMap | None = None
        try:
            cm = self.clock_map()
        except MeterError as exc:
            reasons.append(str(exc))
        window = _device_window(q, reply)
        if cm is not None:
            rec["clock"] = cm.to_dict()
            unc = max(cm.before.uncertainty_ns,
                      cm.after.uncertainty_ns if cm.after else cm.before.uncertainty_ns)
            rec["clock_uncertainty_us"] = unc / 1e3
            rec["clock_drift_ppm"] = cm.drift_ppm
            if unc > self.clock_goal_ns:
                warnings.append(f"the clock sync bound is {unc / 1e6:.2f} ms, over the "
                                f"{self.clock_goal_ns / 1e6:g} ms goal (a slow or busy link)")
        files: dict[str, str] = {}
        if window is None:
            reasons.append("the run recorded no measurement window")
        elif cm is not None:
            self._score_window(rec, reasons, warnings, cm, window, testing, q, summary,
                               scenario)
        if ranging is not None and cm is not None:
            self._score_ranging(rec, reasons, cm, ranging, ranging_q)
        if self.idle is not None and self.idle.trace is not None and len(self.idle.trace):
            idle_w = energy.mean_power(self.idle.trace)
            rec["idle_watts"] = idle_w
            rec["idle_seconds"] = self.idle_s
            if "energy_j" in rec:
                net = rec["energy_j"] - idle_w * rec["duration_s"]
                rec["net_energy_j"] = net
                rec["net_avg_watts"] = rec["avg_watts"] - idle_w
                # a difference within what the measurement can tell is no difference
                floor = max(rec.get("energy_uncertainty_j") or 0.0, 1e-6 * rec["energy_j"])
                if net > floor and summary is not None:
                    rec.update(energy.scenario_figures(
                        scenario, net, rec["duration_s"], summary.query_count,
                        summary.sample_count, summary.completed_samples_per_sec, prefix="net_"))
                elif net <= floor:
                    warnings.append("the run drew no more than the idle baseline (within the "
                                    "measurement's resolution); net figures are left out")
        files.update(self._write_files(testing, ranging))
        if isinstance(getattr(self.meter, "session_record", None), powerdev.SessionRecord):
            files.update(powerdev.file_entries())  # written by write_session_files
        rec["files"] = files
        rec["phases"] = {p.name: {"mark": p.mark, "error": p.error, "samples":
                                  len(p.trace) if p.trace is not None else 0,
                                  "notes": p.trace.notes if p.trace is not None else []}
                         for p in [self.idle, *self.phases] if p is not None}
        rec["valid"] = not reasons
        rec["invalid_reasons"] = reasons
        rec["warnings"] = warnings
        return _jsonable(rec)

    def _score_window(self, rec: dict[str, Any], reasons: list[str], warnings: list[str],
                      cm: ClockMap, window: tuple[int, int], testing: Phase | None,
                      q: QueryLogData | None, summary: Summary | None, scenario: str) -> None:
        rec["window"] = w = self._window(cm, window)
        h0, h1, u0, u1 = (w[k] for k in ("host_start_ns", "host_end_ns",
                                         "uncertainty_start_ns", "uncertainty_end_ns"))
        rec["duration_s"] = (h1 - h0) / 1e9
        tr = testing.trace if testing is not None else None
        if tr is None:
            if testing is not None and not testing.error:
                reasons.append("the meter returned no trace for the testing run")
            return
        we = energy.integrate(tr, h0, h1)
        reasons.extend(we.problems)
        warnings.extend(we.warnings)
        rec.update(energy_j=we.energy_j, avg_watts=we.avg_watts, samples_in_window=we.samples,
                   coverage_s=we.coverage_s, max_gap_s=we.max_gap_s,
                   sample_interval_s=tr.interval_ns / 1e9 if tr.interval_ns else
                   (float(np.median(np.diff(tr.t_ns))) / 1e9 if len(tr) > 2 else None))
        t_unc = tr.timing_uncertainty_ns
        rec["energy_uncertainty_j"] = ((u0 + t_unc) * abs(energy.edge_power(tr, h0))
                                       + (u1 + t_unc) * abs(energy.edge_power(tr, h1))) / 1e9
        rec["meter_timing_uncertainty_us"] = t_unc / 1e3
        if we.samples < 10:
            warnings.append(f"only {we.samples} meter samples fall in the {we.duration_s:.3g} s "
                            "window: the edges dominate; run longer (MLPerf power runs last at "
                            "least 10 minutes)")
        if summary is not None and we.energy_j > 0:
            rec.update(energy.scenario_figures(
                scenario, we.energy_j, rec["duration_s"], summary.query_count,
                summary.sample_count, summary.completed_samples_per_sec))
        warnings.extend(tr.notes)

    def _window(self, cm: ClockMap, window: tuple[int, int]) -> dict[str, Any]:
        """A device-clock window on the host clock and the wall clock (power_begin/end)."""
        d0, d1 = window
        h0, h1 = cm.to_host(d0), cm.to_host(d1)
        wall0, wall1 = self.anchor.to_wall_ns(h0), self.anchor.to_wall_ns(h1)
        return {"device_start_ns": d0, "device_end_ns": d1, "host_start_ns": h0,
                "host_end_ns": h1, "wall_start_ns": wall0, "wall_end_ns": wall1,
                "power_begin": spl.format_time(wall0), "power_end": spl.format_time(wall1),
                "uncertainty_start_ns": cm.uncertainty_ns(d0),
                "uncertainty_end_ns": cm.uncertainty_ns(d1)}

    def _score_ranging(self, rec: dict[str, Any], reasons: list[str], cm: ClockMap,
                       ranging: Phase, q: QueryLogData | None) -> None:
        window = _device_window(q, ranging.reply)
        if ranging.trace is None or window is None:
            return
        w = self._window(cm, window)
        h0, h1 = w["host_start_ns"], w["host_end_ns"]
        we = energy.integrate(ranging.trace, h0, h1)
        tr = ranging.trace
        rec["ranging"] = {"window": w, "avg_watts": we.avg_watts, "energy_j": we.energy_j,
                          "duration_s": (h1 - h0) / 1e9,
                          "max_volts": float(np.nanmax(tr.volts)) if len(tr) else None,
                          "max_amps": float(np.nanmax(tr.amps)) if len(tr) else None,
                          "problems": we.problems}
        rec["ranging_avg_watts"] = we.avg_watts
        if we.problems:
            reasons.extend(f"ranging: {p}" for p in we.problems)
        elif "avg_watts" in rec:
            why = energy.ranging_check(rec["avg_watts"], we.avg_watts)
            rec["ranging_rule_ok"] = why is None
            if why:
                reasons.append(why)

    def _write_files(self, testing: Phase | None, ranging: Phase | None) -> dict[str, str]:
        files: dict[str, str] = {}
        arrays: dict[str, Any] = {}
        for ph, name, path in ((testing, "testing", "spl.txt"),
                               (ranging, "ranging", "ranging/spl.txt"),
                               (self.idle, "idle", None)):
            if ph is None or ph.trace is None:
                continue
            if path is not None:
                spl.write_spl(self.out / path, ph.trace, ph.mark)
                files[f"spl_{name}"] = path
            arrays.update(ph.trace.to_arrays(f"{name}_"))
        if arrays:
            np.savez(self.out / "power_trace.npz", **arrays)
            files["trace"] = "power_trace.npz"
        return files

    def write_session_files(self, power: dict[str, Any]) -> None:
        """power-dev's session files (power/), when the meter recorded its session; after
        every file they hash (LoadGen's logs of both runs, spl.txt) is written."""
        record = getattr(self.meter, "session_record", None)
        if isinstance(record, powerdev.SessionRecord):
            powerdev.write_session(self.out, record, self.label, self.journal, power)


def _device_window(q: QueryLogData | None, reply: dict[str, Any]) -> tuple[int, int] | None:
    """First issue to last completion on the device clock (the run's own bounds if the
    QueryLog is empty)."""
    if q is not None and q.rows:
        return int(q.issue_ns.min()), q.last_done()
    if reply.get("start_ns") and reply.get("end_ns"):
        return int(reply["start_ns"]), int(reply["end_ns"])
    return None


def wall_datetime(wall_ns: int) -> datetime:
    return datetime.fromtimestamp(wall_ns // 1_000_000_000, tz=timezone.utc).replace(
        microsecond=(wall_ns % 1_000_000_000) // 1000)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) or isinstance(x, np.floating):
        return float(x) if np.isfinite(x) else None  # JSON has no NaN
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)
