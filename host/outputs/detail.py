"""mlperf_log_detail.txt: one ``:::MLLOG {json}`` line per event, LoadGen 6.0.17's keys in its
order (the requested and effective settings, the run, the results), written and read back.
Its header names edgeperf instead of LoadGen's build.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from edgeperf.outputs.formatting import json_value
from edgeperf.outputs.log_settings import (
    effective_log_items,
    requested_log_items,
    resolve_effective,
)
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings
from edgeperf_agent import __version__, lgseq

LOG_FORMAT = "LoadGen 6.0.17"
_FILE = "mlperf_logs.py"  # every event's metadata "file": kept as it was, so logs compare


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
    accuracy = requested.mode == "AccuracyOnly"
    if scen == "Offline" and not effective.target_qps > 0:
        # no expected QPS (an accuracy run needs none: its one query is the whole set)
        spq = effective.samples_per_query or (effective.performance_sample_count
                                              if accuracy else 0)
        if spq:
            return 1, spq, None
    stream = scen in ("SingleStream", "MultiStream")
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
            f':::MLLOG {{"key": {json.dumps(key)}, "value": {json_value(value)}, '
            f'"time_ms": {t_ms:.6f}, "namespace": "mlperf::logging", '
            f'"event_type": "POINT_IN_TIME", "metadata": {{"is_error": '
            f'{"true" if group == "error" else "false"}, "is_warning": '
            f'{"true" if group == "warning" else "false"}, "file": "{_FILE}", '
            f'"line_no": {_LINE[group]}, "pid": {self.pid}, "tid": {self.tid}}}}}')


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
    eff = resolve_effective(settings, summary, effective, info.total_sample_count)
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
