"""The performance rules a LoadGen detail log must meet in a submission: VALID with no error
records, early stopping met, the minimum duration both requested and measured, the query and
sample counts, the performance sample count and the official seeds.

The detail log is read as MLCommons' checker reads it: the first record of a key wins, and a
record whose metadata says ``is_error`` is a LoadGen error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf.outputs.detail import parse_detail
from edgeperf.power.spl import parse_time
from edgeperf.submission.check_report import Report

EARLY_STOPPING = ("SingleStream", "MultiStream", "Server")
RESULT_FIELD = {"Offline": "result_samples_per_second",
                "SingleStream": "early_stopping_latency_ss",
                "MultiStream": "early_stopping_latency_ms",
                "Server": "result_completed_samples_per_sec"}
UNIT = {"Offline": "Samples/s", "SingleStream": "Latency (ms)", "MultiStream": "Latency (ms)",
        "Server": "Queries/s"}


@dataclass
class DetailLog:
    path: Path
    values: dict[str, Any] = field(default_factory=dict)  # first record of each key
    errors: list[str] = field(default_factory=list)  # "key: value" of each is_error record

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def read_detail(rep: Report, path: Path, rule: str = "required-file") -> DetailLog | None:
    """The detail log at ``path``, or None (and an error) when it is missing or unreadable."""
    if not path.is_file():
        rep.error(path, rule, "missing; copy the run's mlperf_log_detail.txt here "
                              "(edgeperf submission add does)")
        return None
    try:
        events = parse_detail(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        rep.error(path, "detail-log", f"not a LoadGen detail log ({exc}); copy the run's "
                                      f"mlperf_log_detail.txt unedited")
        return None
    log = DetailLog(path)
    for ev in events:
        if not isinstance(ev, dict) or "key" not in ev:
            continue
        log.values.setdefault(ev["key"], ev.get("value"))
        if (ev.get("metadata") or {}).get("is_error"):
            log.errors.append(f"{ev['key']}: {ev.get('value')}")
    return log


def power_time(text: Any) -> int | None:
    """A power_begin/power_end record as UTC wall ns, or None."""
    try:
        return parse_time(str(text), "mdy")
    except ValueError:
        return None


def measured_ms(log: DetailLog) -> float | None:
    """The run's measured duration: LoadGen's power_begin to power_end (ms resolution)."""
    begin, end = power_time(log.get("power_begin")), power_time(log.get("power_end"))
    if begin is None or end is None:
        return None
    return (end - begin) / 1e6


def loadgen_errors(rep: Report, log: DetailLog) -> None:
    for e in log.errors:
        rep.error(log.path, "loadgen-error", f"LoadGen error record {e}; fix its cause and "
                                             f"run again")


def check_performance(rep: Report, log: DetailLog, bench: Any, rules: Any, division: str,
                      scenario: str) -> float | None:
    """Every performance rule on one detail log; its metric (ms for SS/MS) or None."""
    p = log.path
    eff = log.get("effective_scenario")
    if eff != scenario:
        rep.error(p, "scenario", f"the log's effective_scenario is {eff!r}, the directory "
                                 f"says {scenario}; put the run under its own scenario")
    validity = log.get("result_validity")
    if validity != "VALID":
        rep.error(p, "result-validity", f"result_validity is {validity!r}, not VALID "
                                        f"(the run missed min duration, min queries or early "
                                        f"stopping); run again with the rules' settings")
    loadgen_errors(rep, log)
    if scenario in EARLY_STOPPING and log.get("early_stopping_met") is not True:
        why = " ".join(str(log.get("early_stopping_result", "")).split())
        rep.error(p, "early-stopping", f"early stopping was not met ({why}); run more "
                                       f"queries (--min-queries)")
    _min_duration(rep, log, rules.min_duration_ms)
    _counts(rep, log, bench, division, scenario)
    psc = log.get("effective_performance_sample_count")
    if not isinstance(psc, int) or psc < bench.performance_sample_count:
        rep.error(p, "performance-sample-count",
                  f"effective_performance_sample_count is {psc}, the rules need at least "
                  f"{bench.performance_sample_count}; set performance_sample_count_override = "
                  f"{bench.performance_sample_count} in user.conf")
    for name, want in rules.seeds.items():
        key = name if name.startswith("effective_") else f"effective_{name}"
        got = log.get(key)
        if got != int(want):
            rep.error(p, "seeds", f"{key} is {got}, the rules' {rules.version} seed is {want}; "
                                  f"do not override the seeds (the mlperf preset has them)")
    value = log.get(RESULT_FIELD.get(scenario, ""))
    if not isinstance(value, (int, float)):
        rep.error(p, "result", f"no {RESULT_FIELD.get(scenario)} record; the run did not end")
        return None
    return value / 1e6 if scenario in ("SingleStream", "MultiStream") else float(value)


def _min_duration(rep: Report, log: DetailLog, min_ms: int) -> None:
    p = log.path
    setting = log.get("effective_min_duration_ms")
    if not isinstance(setting, (int, float)) or setting < min_ms:
        rep.error(p, "min-duration-setting",
                  f"effective_min_duration_ms is {setting}, the rules need {min_ms} "
                  f"({min_ms / 1000:g} s); do not lower min_duration (user.conf, --min-duration)")
    measured = measured_ms(log)
    if measured is None:
        rep.error(p, "min-duration-measured", "no power_begin/power_end records to measure "
                                              "the run's duration; copy the log unedited")
    elif measured + 1.0 < min_ms:  # the records have ms resolution
        rep.error(p, "min-duration-measured",
                  f"the run lasted {measured / 1000:.3f} s (power_begin to power_end), the "
                  f"rules need {min_ms / 1000:g} s; run at least that long")


def _counts(rep: Report, log: DetailLog, bench: Any, division: str, scenario: str) -> None:
    p = log.path
    need = bench.min_query_count.get(scenario)
    got = log.get("effective_min_query_count")
    if need is not None and (not isinstance(got, int) or got < need):
        msg = (f"effective_min_query_count is {got}, the rules need {need} for {scenario}; "
               f"keep the rules' min_query_count (--min-queries)")
        if division == "closed":
            rep.error(p, "min-query-count", msg)
        else:
            rep.warn(p, "min-query-count", msg)
    done = log.get("result_query_count")
    if (need is not None and division == "closed" and scenario != "Offline"
            and isinstance(done, int) and done < need):
        rep.error(p, "min-query-count", f"the run completed {done} queries, the rules need "
                                        f"{need}; run more queries")
    if scenario == "Offline" and division == "closed":
        spq = log.get("effective_samples_per_query")
        need = bench.offline_min_samples_per_query
        if not isinstance(spq, int) or spq < need:
            rep.error(p, "offline-samples-per-query",
                      f"effective_samples_per_query is {spq}, closed Offline needs at least "
                      f"{need}; raise --target-qps or --samples-per-query")
