"""The device's state around a run: the cool-down gate, the governor, the throttling verdict.

Read from the agent's telemetry; what the device does not report is recorded as unknown,
never guessed. The governor is changed only when the profile asks and always restored: here
in a ``finally`` and, if the link is gone by then, by the agent itself when its input ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edgeperf.boards.profile import BoardProfile
from edgeperf.run.client import AgentClient, AgentError

Reporter = Callable[[str, dict[str, Any]], None]
POLL_S = 2.0
PLAUSIBLE_C = (-40.0, 150.0)  # outside: a zone reporting garbage (phones have some)


def hottest_c(telemetry: dict[str, Any] | None) -> float | None:
    temps = [z["temp_c"] for z in (telemetry or {}).get("thermal", [])
             if isinstance(z.get("temp_c"), (int, float))
             and PLAUSIBLE_C[0] < z["temp_c"] < PLAUSIBLE_C[1]]
    return max(temps) if temps else None


def cool_down(client: AgentClient, profile: BoardProfile, say: Reporter,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic, poll_s: float = POLL_S
              ) -> dict[str, Any] | None:
    """Wait (bounded) until the device's hottest zone is below the profile's threshold."""
    limit = profile.cool_down_below_c
    if limit is None:
        return None
    rec: dict[str, Any] = {"threshold_c": limit, "max_wait_s": profile.cool_down_max_wait_s}
    t0 = clock()
    temp = hottest_c(client.telemetry())
    rec["start_c"] = temp
    if temp is None:
        rec.update(waited_s=0.0, end_c=None, reached=False,
                   skipped="the device reports no temperature")
        return rec
    polls = 1
    while temp >= limit and clock() - t0 < profile.cool_down_max_wait_s:
        say("cool_down", {"temp_c": temp, "threshold_c": limit, "waited_s": clock() - t0,
                          "max_wait_s": profile.cool_down_max_wait_s})
        sleep(min(poll_s, max(0.0, profile.cool_down_max_wait_s - (clock() - t0))))
        temp = hottest_c(client.telemetry())
        polls += 1
        if temp is None:
            break
    waited = round(clock() - t0, 3)
    rec.update(waited_s=waited, end_c=temp, reached=temp is not None and temp < limit,
               polls=polls)
    say("cool_down", {"temp_c": temp, "threshold_c": limit, "waited_s": waited,
                      "max_wait_s": profile.cool_down_max_wait_s, "done": True})
    return rec


class GovernorControl:
    """Sets the profile's governor for the run; ``restore`` is safe to call any number of
    times and never raises (a dead link leaves the restoring to the agent)."""

    def __init__(self, client: AgentClient, profile: BoardProfile) -> None:
        self.client, self.wanted = client, profile.governor
        self.record: dict[str, Any] | None = None
        self._set = False

    def apply(self) -> dict[str, Any] | None:
        if not self.wanted:
            return None
        before, _ = self.client.request("governor", action="get")
        self.record = {"requested": self.wanted, "before": before.get("governors")}
        reply, _ = self.client.request("governor", action="set", governor=self.wanted)
        self._set = True
        self.record["during"] = reply.get("governors")
        return self.record

    def restore(self) -> None:
        if not self._set:
            return
        self._set = False
        try:
            reply, _ = self.client.request("governor", action="restore", timeout=10.0)
            assert self.record is not None
            self.record["restored"] = reply.get("restored")
            if reply.get("failed"):
                self.record["restore_failed"] = reply["failed"]
        except AgentError as exc:
            assert self.record is not None
            self.record["restored"] = None
            self.record["restore_note"] = (f"the host could not ask for it ({exc}); the agent "
                                           "restores the governors itself when its link ends")


def throttling(telemetry: dict[str, Any], run_cpus: list[int] | None) -> dict[str, Any]:
    """Did the device throttle during the run? From the snapshots before and after it.

    Evidence, strongest first: the firmware's own flags (vcgencmd: throttled or capped now, or
    a "since boot" flag that appeared during the run); a CPU frequency limit below the CPU's
    maximum that was not there before the run (a thermal cap); and, under the performance
    governor, every CPU of the run below its maximum right after it.
    """
    snaps = {k: telemetry.get(k) for k in ("before", "before_run", "after_run", "after")}
    reasons: list[str] = []
    first = snaps["before"] or snaps["before_run"] or {}
    flagged: set[str] = set()
    for name in ("before_run", "after_run", "after"):
        thr = (snaps[name] or {}).get("throttling") or {}
        for flag in thr.get("now", []):
            if flag not in flagged:
                flagged.add(flag)
                reasons.append(f"vcgencmd get_throttled: {flag} ({name.replace('_', ' ')})")
    old = set(((first.get("throttling") or {}).get("since_boot")) or [])
    last = snaps["after"] or snaps["after_run"] or {}
    for flag in ((last.get("throttling") or {}).get("since_boot")) or []:
        if flag not in old and flag not in flagged:
            flagged.add(flag)
            reasons.append(f"vcgencmd get_throttled: {flag} occurred during the run")
    was_limited = set(first.get("cpus_freq_limited") or [])
    end = snaps["after_run"] or {}
    newly = sorted(set(end.get("cpus_freq_limited") or []) - was_limited)
    if newly:
        reasons.append(f"frequency limit below maximum on cpu {', '.join(map(str, newly))} "
                       "after the run (not before)")
    cpus = {c["cpu"]: c for c in end.get("cpus") or []}
    used = [cpus[c] for c in (run_cpus or list(cpus)) if c in cpus]
    if used and all(c.get("governor") == "performance" and c.get("cur_khz") and c.get("max_khz")
                    and c["cur_khz"] < c["max_khz"] for c in used):
        freqs = ", ".join(f"cpu{c['cpu']} {c['cur_khz']}/{c['max_khz']} kHz" for c in used)
        reasons.append(f"under the performance governor every CPU of the run was below its "
                       f"maximum frequency after it ({freqs})")
    known = any(snaps[k] for k in snaps) and (
        any((snaps[k] or {}).get("throttling") for k in snaps) or bool(cpus))
    return {"throttled": bool(reasons), "throttled_reasons": reasons,
            "throttling_observable": bool(known)}


def warnings_for(rec: dict[str, Any]) -> list[str]:
    """The run's warnings, for mlperf_log_detail.txt and the summary's warning count."""
    out = []
    if rec.get("throttled"):
        out.append("edgeperf: the device throttled during the run: "
                   + "; ".join(rec.get("throttled_reasons", [])))
    cd = rec.get("cool_down") or {}
    if cd.get("skipped"):
        out.append(f"edgeperf: cool-down gate skipped: {cd['skipped']}")
    elif cd and not cd.get("reached"):
        out.append(f"edgeperf: the device did not cool below {cd['threshold_c']:g} C within "
                   f"{cd['max_wait_s']:g} s (it was at {cd.get('end_c')} C); the run started "
                   "warm")
    gov = rec.get("governor") or {}
    if gov.get("restore_failed"):
        out.append(f"edgeperf: governors not restored: {gov['restore_failed']}")
    busy = (rec.get("run") or {}).get("busy_flushes")
    if busy:
        out.append(f"edgeperf: the device was saturated: {busy} QueryLog send(s) found no idle "
                   "gap in 10 s and went out between queries that were due, so the queries "
                   "behind them include the send; lower --target-qps")
    return out
