"""MLPerf log files for one run directory, in LoadGen 6.0.17's formats.

``write_run_logs`` writes all four for a run; the single-file writers and the readers
(``parse_summary``, ``parse_detail``) are public for tools and tests.

mlperf_log_summary.txt, mlperf_log_detail.txt and mlperf_log_accuracy.json follow LoadGen
in layout, keys, order and number formatting (C++ stream defaults: ``%g`` for doubles in the
detail log and on the summary's "Samples per second" line, two decimals where LoadGen calls
DoubleToString; a NaN or an infinity as glibc spells it, bare: nan, -nan, inf), so that
checkers and people who read LoadGen logs read ours. The detail log's header names edgeperf
instead of LoadGen's build, and mlperf_log_trace.json is valid JSON (LoadGen's is not).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeperf import __version__
from edgeperf.outputs.trace import TraceEvents, write_trace
from edgeperf.scoring.loadgen import LatencyStats, Summary
from edgeperf.settings.core import (
    TestSettings,
    effective_log_items,
    effective_settings,
    requested_log_items,
)
from edgeperf_agent import lgseq

SEPARATOR = "=" * 48
LOG_FORMAT = "LoadGen 6.0.17"
_FILE = "mlperf_logs.py"


# --------------------------------------------------------------------------- formatting


def _c_nonfinite(x: float) -> str | None:
    """glibc's spelling of a NaN or an infinity (its printf, so C++ streams): nan, -nan
    (sign bit set), inf, -inf; None for a finite x."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def fmt_g(x: float) -> str:
    """A double as C++ ``ostream << double`` prints it (6 significant digits; nan, -nan, inf).

    LoadGen 6.0.17 logs every double of the detail log this way, bare in its JSON lines: its
    ``ArgValueTransform(double)`` that would write NaN/Infinity is defined in logging.cc but
    never declared to the code that logs, so the generic template streams the value.
    """
    return _c_nonfinite(x) or f"{x:g}"


def fmt_fixed(x: float, precision: int = 2) -> str:
    """LoadGen's DoubleToString: ``std::fixed`` with ``precision`` decimals (nan, -nan, inf)."""
    return _c_nonfinite(x) or f"{x:.{precision}f}"


def _json_value(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return fmt_g(float(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _text_value(v: Any) -> str:
    """A value as LoadGen's summary prints it: bools as 0/1, doubles with %g."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return fmt_g(v)
    return str(v)


def _yes(ok: bool | None) -> str:
    return "Yes" if ok else "NO"


def _count_line(n: int, one: str, many: str, none: str) -> str:
    if n == 0:
        return none
    return one if n == 1 else f"{n} {many}"


# --------------------------------------------------------------------------- summary

_PARAM_LABELS = {"target_latency_ns": "target_latency (ns)", "min_duration_ms": "min_duration (ms)",
                 "max_duration_ms": "max_duration (ms)"}
_PARAM_KEYS = ("samples_per_query", "target_qps", "target_latency_ns", "max_async_queries",
               "min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count",
               "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
               "accuracy_log_rng_seed", "accuracy_log_probability",
               "accuracy_log_sampling_target", "print_timestamps", "performance_issue_unique",
               "performance_issue_same", "performance_issue_same_index",
               "performance_sample_count", "accuracy_sample_count")


def _resolve(settings: TestSettings, summary: Summary | None, effective: TestSettings | None,
             total_sample_count: int | None) -> TestSettings:
    eff = effective or effective_settings(settings, total_sample_count=total_sample_count)
    if eff.samples_per_query is None:  # Offline with the rate estimated on the device
        spq = (summary.sample_count // max(summary.query_count, 1) if summary
               else settings.min_query_count)
        eff = dataclasses.replace(eff, samples_per_query=spq)
    return eff


def _latency_lines(stats: LatencyStats) -> list[str]:
    lines = [f"Min latency (ns)                : {stats.min_ns}",
             f"Max latency (ns)                : {stats.max_ns}",
             f"Mean latency (ns)               : {stats.mean_ns}"]
    lines += [f"{label} percentile latency (ns)   : {ns}"
              for label, ns in stats.percentiles.items()]
    return lines


def format_summary(summary: Summary | None, settings: TestSettings, sut_name: str,
                   warnings: int = 0, errors: int = 0, *, effective: TestSettings | None = None,
                   total_sample_count: int | None = None) -> str:
    """The text of mlperf_log_summary.txt; ``summary`` is None for an AccuracyOnly run."""
    tail = ["", _count_line(warnings, "1 warning encountered. See detailed log.",
                            "warnings encountered. See detailed log.",
                            "No warnings encountered during test."),
            "", _count_line(errors, "1 ERROR encountered. See detailed log.",
                            "ERRORS encountered. See detailed log.",
                            "No errors encountered during test.")]
    if summary is None or settings.mode == "AccuracyOnly":
        return "\n".join(tail) + "\n"
    eff = _resolve(settings, summary, effective, total_sample_count)
    s, scen = summary, summary.scenario
    out = [SEPARATOR, "MLPerf Results Summary", SEPARATOR, f"SUT name : {sut_name}",
           f"Scenario : {scen}", f"Mode     : {eff.mode}"]
    if scen in ("SingleStream", "MultiStream"):
        out.append(f"{s.target_percentile * 100:.1f}th percentile latency (ns) : "
                   f"{s.target_percentile_latency_ns}")
    elif scen == "Server":
        out.append(f"Completed samples per second    : {fmt_fixed(s.completed_samples_per_sec)}")
    else:
        out.append(f"Samples per second: {fmt_g(s.samples_per_second or 0.0)}")
    out.append(f"Result is : {s.result}")
    if scen == "Server":
        out.append(f"  Performance constraints satisfied : {_yes(s.perf_constraints_met)}")
    out += [f"  Min duration satisfied : {_yes(s.min_duration_met)}",
            f"  Min queries satisfied : {_yes(s.min_queries_met)}",
            f"  Early stopping satisfied: {_yes(s.early_stopping.met)}"]
    if not s.valid:
        out.append("Recommendations:")
        out += [f" * {r}" for r in s.recommendations]
    if scen != "Offline":
        out += ["Early Stopping Result:", s.early_stopping.text]
    out += ["", SEPARATOR, "Additional Stats", SEPARATOR]
    if scen == "SingleStream":
        out += [f"QPS w/ loadgen overhead         : {fmt_fixed(s.qps_with_overhead)}",
                f"QPS w/o loadgen overhead        : {fmt_fixed(s.qps_without_overhead)}", ""]
    elif scen == "Server":
        out.append(f"Scheduled samples per second : {fmt_fixed(s.scheduled_samples_per_sec)}")
    if scen == "MultiStream" and s.queries is not None:
        out += ["Per-query latency:  "] + _latency_lines(s.queries)
    else:
        out += _latency_lines(s.samples)
    params = dict(effective_log_items(eff, total_sample_count))
    out += ["", SEPARATOR, "Test Parameters Used", SEPARATOR]
    for key in _PARAM_KEYS:
        label = _PARAM_LABELS.get(key)
        out.append(f"{label}: " if label else f"{key} : ")
        out[-1] += _text_value(params[key])
    return "\n".join(out + tail) + "\n"


def write_summary(path: str | os.PathLike[str], summary: Summary | None,
                  settings: TestSettings, sut_name: str, warnings: int = 0, errors: int = 0,
                  *, effective: TestSettings | None = None,
                  total_sample_count: int | None = None) -> None:
    """Write mlperf_log_summary.txt. ``settings`` are the requested settings."""
    text = format_summary(summary, settings, sut_name, warnings, errors, effective=effective,
                          total_sample_count=total_sample_count)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# --------------------------------------------------------------------------- detail


@dataclass
class RunInfo:
    """What the detail log records besides settings and results; times are UTC wall clock."""

    sut_name: str
    start: datetime
    end: datetime | None = None
    power_begin: datetime | None = None  # default: start
    power_end: datetime | None = None  # default: end
    generated_query_count: int = 0
    generated_samples_per_query: int = 1
    generated_query_duration: int | None = None
    total_sample_count: int | None = None  # the QSL's size
    qsl_name: str = "edgeperf"
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # generic_message events
    extra: dict[str, Any] = field(default_factory=dict)  # edgeperf_* keys (device state...)


def generated_queries(requested: TestSettings, effective: TestSettings
                      ) -> tuple[int, int, int | None]:
    """(generated_query_count, generated_samples_per_query, generated_query_duration) as
    LoadGen's GenerateQueries logs them for these settings: the queries it builds before
    the start (device_agent.lgseq reproduces it), not the ones a run scored.

    Offline's one query holds ``effective.samples_per_query`` samples when the device
    decided it; its duration (one period of the expected QPS) is None while no rate is
    known."""
    scen = requested.scenario
    if scen == "Offline" and effective.samples_per_query and not effective.target_qps > 0:
        return 1, effective.samples_per_query, None
    stream = scen in ("SingleStream", "MultiStream")
    accuracy = requested.mode == "AccuracyOnly"
    count, spq, duration = lgseq.generated_queries(
        scen, requested.min_duration_ms, requested.min_query_count,
        target_qps=effective.target_qps,
        expected_latency_ns=float(effective.target_latency_ns or 0) if stream else 0.0,
        samples_per_query=effective.samples_per_query or 1,
        schedule_rng_seed=requested.schedule_rng_seed,
        mode="AccuracyOnly" if accuracy else "PerformanceOnly",
        set_size=effective.performance_sample_count if accuracy else 0)
    if scen == "Offline" and effective.samples_per_query:
        spq = effective.samples_per_query
    return count, spq, duration


# line_no per event group: stable across edits of this file
_LINE = {"header": 10, "requested": 20, "effective": 30, "run": 40, "warning": 50,
         "error": 51, "power": 60, "result": 70, "end": 80}


class _DetailWriter:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.lines: list[str] = []
        self.pid, self.tid = os.getpid(), threading.get_native_id()

    def event(self, key: str, value: Any, group: str, at: datetime | None = None) -> None:
        t_ms = max((at - self.start).total_seconds() * 1000.0, 0.0) if at else 0.0
        self.lines.append(
            f':::MLLOG {{"key": {json.dumps(key)}, "value": {_json_value(value)}, '
            f'"time_ms": {t_ms:.6f}, "namespace": "mlperf::logging", '
            f'"event_type": "POINT_IN_TIME", "metadata": {{"is_error": '
            f'{"true" if group == "error" else "false"}, "is_warning": '
            f'{"true" if group == "warning" else "false"}, "file": "{_FILE}", '
            f'"line_no": {_LINE[group]}, "pid": {self.pid}, "tid": {self.tid}}}}}')


def _wall_datetime(wall_ns: int) -> datetime:
    secs, ns = divmod(int(wall_ns), 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).replace(microsecond=ns // 1000)


def power_time(t: datetime) -> str:
    """LoadGen's power_begin/power_end format, UTC: MM-DD-YYYY HH:MM:SS.mmm."""
    t = t.astimezone(timezone.utc)
    return t.strftime("%m-%d-%Y %H:%M:%S") + f".{t.microsecond // 1000:03d}"


def _invalid_reason(recommendations: Sequence[str]) -> str:
    """LoadGen's result_invalid_reason: recommendations joined, each followed by a space."""
    parts = []
    for r in recommendations:
        first = r.split("\n", 1)[0]
        parts.append(first if first.startswith("The test exited early") else first + " ")
    return "".join(parts)


def _result_events(w: _DetailWriter, s: Summary, at: datetime | None) -> None:
    def ev(key: str, value: Any) -> None:
        w.event(key, value, "result", at)

    ev("result_validity", s.result)
    if s.scenario == "Server":
        ev("result_perf_constraints_met", bool(s.perf_constraints_met))
    ev("result_min_duration_met", s.min_duration_met)
    ev("result_min_queries_met", s.min_queries_met)
    ev("early_stopping_met", s.early_stopping.met)
    if not s.valid:
        ev("result_invalid_reason", _invalid_reason(s.recommendations))
        ev("edgeperf_invalid_reasons", list(s.invalid_reasons))
    ev("early_stopping_result", s.early_stopping.text.replace("\n", " "))
    ev("result_query_count", s.query_count)
    if s.scenario == "Server":
        ev("result_overlatency_query_count", s.overlatency_query_count or 0)
    es = s.early_stopping
    if s.scenario == "SingleStream":
        ev("result_qps_with_loadgen_overhead", float(s.qps_with_overhead or 0.0))
        ev("result_qps_without_loadgen_overhead", float(s.qps_without_overhead or 0.0))
        ev("early_stopping_latency_ss", es.estimate_ns or 0)
        ev("early_stopping_latency_ms", es.estimate_p99_ns or 0)
    elif s.scenario == "MultiStream" and s.queries is not None:
        ev("result_min_query_latency_ns", s.queries.min_ns)
        ev("result_max_query_latency_ns", s.queries.max_ns)
        ev("result_mean_query_latency_ns", s.queries.mean_ns)
        for label, ns in s.queries.percentiles.items():
            ev(f"result_{label}_percentile_per_query_latency_ns", ns)
        ev("early_stopping_latency_ms", es.estimate_ns or 0)
    elif s.scenario == "Server":
        ev("result_scheduled_samples_per_sec", float(s.scheduled_samples_per_sec or 0.0))
        ev("result_completed_samples_per_sec", float(s.completed_samples_per_sec or 0.0))
    elif s.scenario == "Offline":
        ev("result_samples_per_second", float(s.samples_per_second or 0.0))
    ev("result_min_latency_ns", s.samples.min_ns)
    ev("result_max_latency_ns", s.samples.max_ns)
    ev("result_mean_latency_ns", s.samples.mean_ns)
    for label, ns in s.samples.percentiles.items():
        ev(f"result_{label}_percentile_latency_ns", ns)


def format_detail(settings: TestSettings, summary: Summary | None, info: RunInfo, *,
                  effective: TestSettings | None = None) -> str:
    """The text of mlperf_log_detail.txt: one ``:::MLLOG {json}`` line per event."""
    w = _DetailWriter(info.start)
    end = info.end or info.start
    w.event("loadgen_version", f"edgeperf {__version__}", "header")
    w.event("edgeperf_version", __version__, "header")
    w.event("edgeperf_log_format", LOG_FORMAT, "header")
    w.event("test_datetime", info.start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "header")
    w.event("sut_name", info.sut_name, "header")
    w.event("qsl_name", info.qsl_name, "header")
    eff = _resolve(settings, summary, effective, info.total_sample_count)
    if info.total_sample_count is not None:
        w.event("qsl_reported_total_count", info.total_sample_count, "header")
        w.event("qsl_reported_performance_count",
                eff.performance_sample_count or info.total_sample_count, "header")
    for key, value in requested_log_items(settings):
        w.event(key, value, "requested")
    for key, value in effective_log_items(eff, info.total_sample_count):
        w.event("effective_" + key, value, "effective")
    w.event("edgeperf_warmup_queries", settings.warmup_queries, "effective")
    for key, value in info.extra.items():
        w.event(key if key.startswith("edgeperf_") else "edgeperf_" + key, value, "run")
    accuracy = settings.mode == "AccuracyOnly"
    w.event("generic_message", f"Starting {'accuracy' if accuracy else 'performance'} mode",
            "run")
    w.event("generated_query_count", info.generated_query_count, "run")
    w.event("generated_samples_per_query", info.generated_samples_per_query, "run")
    if info.generated_query_duration is not None:
        w.event("generated_query_duration", info.generated_query_duration, "run")
    for msg in info.messages:
        w.event("generic_message", msg, "run", end)
    for msg in info.warnings:
        w.event("warning_generic_message", msg, "warning", end)
    for msg in info.errors:
        w.event("error_runtime", msg, "error", end)
    w.event("power_begin", power_time(info.power_begin or info.start), "power", end)
    w.event("power_end", power_time(info.power_end or end), "power", end)
    if summary is not None and not accuracy:
        _result_events(w, summary, end)
        w.event("num_errors", len(info.errors), "end", end)
    return "\n".join(w.lines) + "\n"


def write_detail(path: str | os.PathLike[str], settings: TestSettings, summary: Summary | None,
                 info: RunInfo, *, effective: TestSettings | None = None) -> None:
    """Write mlperf_log_detail.txt. ``settings`` are the requested settings."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(format_detail(settings, summary, info, effective=effective))


# --------------------------------------------------------------------------- accuracy


@dataclass
class AccuracyEntry:
    seq_id: int
    qsl_idx: int
    data: bytes  # the raw output bytes of the sample


def format_accuracy_json(entries: Iterable[AccuracyEntry | tuple[int, int, bytes]]) -> str:
    rows = []
    for e in entries:
        seq_id, qsl_idx, data = (e.seq_id, e.qsl_idx, e.data) if isinstance(e, AccuracyEntry) else e
        rows.append(f'{{ "seq_id" : {int(seq_id)}, "qsl_idx" : {int(qsl_idx)}, '
                    f'"data" : "{bytes(data).hex().upper()}" }}')
    return "[\n" + ",\n".join(rows) + ("\n" if rows else "") + "]\n"


def write_accuracy_json(path: str | os.PathLike[str],
                        entries: Iterable[AccuracyEntry | tuple[int, int, bytes]]) -> None:
    """mlperf_log_accuracy.json exactly as LoadGen writes it (data: uppercase hex)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(format_accuracy_json(entries))


# --------------------------------------------------------------------------- one run


DEFAULT_TRACE_LIMIT = 10_000


class QueryLogLike(Protocol):
    issue_ns: np.ndarray
    done_ns: np.ndarray
    sample_idx: np.ndarray
    samples_per_row: int
    start_ns: int


def _qsl_samples(q: QueryLogLike) -> np.ndarray:
    """The QSL index of every sample (LoadGen's numbering), where the QueryLog maps its
    positions in the pushed set to them."""
    qsl_samples = getattr(q, "qsl_samples", None)
    return qsl_samples() if callable(qsl_samples) else q.sample_idx


def write_run_logs(out: str | os.PathLike[str], *, summary: Summary | None,
                   requested: TestSettings, effective: TestSettings, sut_name: str,
                   querylog: QueryLogLike, wall_anchor: dict[str, int] | None = None,
                   errors: Sequence[str] = (), warnings: Sequence[str] = (),
                   accuracy: Iterable[AccuracyEntry | tuple[int, int, bytes]] = (),
                   trace_limit: int | None = DEFAULT_TRACE_LIMIT,
                   power_window_wall_ns: tuple[int, int] | None = None,
                   summary_appendix: str = "",
                   extra: dict[str, Any] | None = None) -> None:
    """Write the four mlperf_log_* files of one run into ``out``.

    The trace holds the first ``trace_limit`` queries (None: all of them): a ten-second run of
    a fast model has millions, and every one of them is in querylog.npz anyway.

    ``wall_anchor`` ({"wall_ns", "monotonic_ns"} read together on the device) places the
    device-clock QueryLog on the wall clock for test_datetime and power_begin/power_end;
    without it the run is taken to have ended now.

    ``power_window_wall_ns`` (UTC wall ns of the measurement window's start and end, mapped
    from the device clock by ClockSync) gives power_begin/power_end; ``summary_appendix``
    (the Power block) is appended to the summary after LoadGen's text; ``extra`` adds
    ``edgeperf_*`` detail events.
    """
    out = Path(out)
    q = querylog
    rows = len(q.done_ns)
    begin_ns = int(q.start_ns or (q.issue_ns[0] if rows else 0))
    end_ns = int(q.done_ns.max()) if rows else begin_ns
    if wall_anchor and "wall_ns" in wall_anchor and "monotonic_ns" in wall_anchor:
        offset = int(wall_anchor["wall_ns"]) - int(wall_anchor["monotonic_ns"])
    else:
        offset = time.time_ns() - end_ns

    def wall(t_ns: int) -> datetime:
        return datetime.fromtimestamp((t_ns + offset) / 1e9, tz=timezone.utc)

    total = effective.performance_sample_count or None
    write_summary(out / "mlperf_log_summary.txt", summary, requested, sut_name,
                  len(warnings), len(errors), effective=effective, total_sample_count=total)
    if summary_appendix:
        with open(out / "mlperf_log_summary.txt", "a", encoding="utf-8") as f:
            f.write(summary_appendix)
    count, spq, duration = generated_queries(requested, effective)
    info = RunInfo(sut_name, wall(begin_ns), wall(end_ns), generated_query_count=count,
                   generated_samples_per_query=spq, generated_query_duration=duration,
                   total_sample_count=total, warnings=list(warnings), errors=list(errors),
                   extra=dict(extra or {}))
    if power_window_wall_ns is not None:
        info.power_begin, info.power_end = (_wall_datetime(t) for t in power_window_wall_ns)
    write_detail(out / "mlperf_log_detail.txt", requested, summary, info, effective=effective)
    offline = requested.scenario == "Offline"
    k = rows if trace_limit is None else min(rows, trace_limit)
    spr = max(1, q.samples_per_row)
    events = TraceEvents(q.issue_ns[:k], q.done_ns[:k],
                         sample_indices=_qsl_samples(q)[:k * spr] if k else None,
                         query_ids=np.zeros(k, np.int64) if offline else None,
                         name="Sample" if offline else "Query")
    write_trace(out / "mlperf_log_trace.json", events, start_ns=begin_ns, total_rows=rows)
    write_accuracy_json(out / "mlperf_log_accuracy.json", accuracy)


# --------------------------------------------------------------------------- readers


def _number(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_summary(text: str) -> dict[str, Any]:
    """Labels to values (numbers converted), plus "early_stopping" and "recommendations" lists
    of bullet texts, and "warnings"/"errors" counts. MultiStream's latency rows are per query.
    """
    out: dict[str, Any] = {"early_stopping": [], "recommendations": [], "warnings": 0,
                           "errors": 0}
    bullets: list[str] | None = None  # the list that " * " lines go to
    for line in text.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        if line.startswith(" * ") and bullets is not None:
            bullets.append(line[3:])
        elif bullets and (line.startswith("   ") or (line[0] == " " and line[1] != " ")):
            bullets[-1] += "\n" + line  # a bullet's continuation line
        elif "encountered" in line:
            word = line.split()[0]
            out["errors" if "ERROR" in line or "error" in line else "warnings"] = (
                0 if word == "No" else int(word))
        elif ":" in line:
            label, _, value = line.partition(":")
            label, value = label.strip(), value.strip()
            bullets = {"Recommendations": out["recommendations"],
                       "Early Stopping Result": out["early_stopping"]}.get(label)
            if value:
                out[label] = _number(value)
    return out


# A double LoadGen logged as nan, -nan, inf or -inf: bare, so not JSON; read as a float.
_NONFINITE_VALUE = re.compile(r'^(\{"key": "(?:[^"\\]|\\.)*", "value": )(-?)(nan|inf)(, )')
_JSON_NONFINITE = {("", "nan"): "NaN", ("-", "nan"): "NaN", ("", "inf"): "Infinity",
                   ("-", "inf"): "-Infinity"}


def _mllog_json(text: str) -> Any:
    m = _NONFINITE_VALUE.match(text)
    if m:
        text = (m.group(1) + _JSON_NONFINITE[m.group(2), m.group(3)] + m.group(4)
                + text[m.end():])
    return json.loads(text)


def parse_detail(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a detail log (LoadGen's or ours), in file order; a bare nan/inf value
    (as LoadGen writes a non-finite double) is read as that float."""
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not line.startswith(":::MLLOG "):
                raise ValueError(f"{path}:{n}: not a ':::MLLOG {{json}}' line")
            try:
                events.append(_mllog_json(line[len(":::MLLOG "):]))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: bad JSON: {e}") from None
    return events


def parse_accuracy_json(path: str | os.PathLike[str]) -> list[AccuracyEntry]:
    """The entries of an mlperf_log_accuracy.json (LoadGen's or ours), in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON: {e}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of accuracy entries")
    entries = []
    for n, row in enumerate(rows):
        try:
            entries.append(AccuracyEntry(int(row["seq_id"]), int(row["qsl_idx"]),
                                         bytes.fromhex(row["data"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: entry {n} is not {{seq_id, qsl_idx, data (hex)}}: "
                             f"{e}") from None
    return entries
