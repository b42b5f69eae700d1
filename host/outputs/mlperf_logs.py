"""MLPerf log files for one run directory, in LoadGen 6.0.17's formats.

``write_run_logs`` writes all four for a run: mlperf_log_summary.txt (summary.py),
mlperf_log_detail.txt (detail.py), mlperf_log_accuracy.json (accuracy_log.py) and
mlperf_log_trace.json (trace.py). They follow LoadGen in layout, keys, order and number
formatting (formatting.py), so that checkers and people who read LoadGen logs read ours; the
trace is valid JSON (LoadGen's is not). The single-file writers and readers are re-exported
here for tools and tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeperf.outputs.accuracy_log import (
    AccuracyEntry,
    format_accuracy_json,
    parse_accuracy_json,
    write_accuracy_json,
)
from edgeperf.outputs.detail import (
    LOG_FORMAT,
    RunInfo,
    format_detail,
    generated_queries,
    parse_detail,
    power_time,
    write_detail,
)
from edgeperf.outputs.formatting import fmt_fixed, fmt_g
from edgeperf.outputs.summary import SEPARATOR, format_summary, parse_summary, write_summary
from edgeperf.outputs.trace import TraceEvents, write_trace
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings

__all__ = [
    "DEFAULT_TRACE_LIMIT", "LOG_FORMAT", "SEPARATOR", "AccuracyEntry", "QueryLogLike", "RunInfo",
    "TraceEvents", "fmt_fixed", "fmt_g", "format_accuracy_json", "format_detail",
    "format_summary", "generated_queries", "parse_accuracy_json", "parse_detail",
    "parse_summary", "power_time", "write_accuracy_json", "write_detail", "write_run_logs",
    "write_summary", "write_trace",
]

DEFAULT_TRACE_LIMIT = 10_000


def _wall_datetime(wall_ns: int) -> datetime:
    secs, ns = divmod(int(wall_ns), 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).replace(microsecond=ns // 1000)


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
    end_ns = (int(q.last_done()) if hasattr(q, "last_done") else int(q.done_ns.max())) \
        if rows else begin_ns
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
