"""mlperf_log_summary.txt: LoadGen 6.0.17's layout, keys and numbers, written and read back."""

from __future__ import annotations

import os
from typing import Any

from edgeperf.outputs.formatting import fmt_fixed, fmt_g, text_value
from edgeperf.outputs.log_settings import effective_log_items, resolve_effective
from edgeperf.scoring.loadgen import LatencyStats, Summary
from edgeperf.settings import TestSettings

SEPARATOR = "=" * 48


def _yes(ok: bool | None) -> str:
    return "Yes" if ok else "NO"


def _count_line(n: int, one: str, many: str, none: str) -> str:
    if n == 0:
        return none
    return one if n == 1 else f"{n} {many}"


_PARAM_LABELS = {"target_latency_ns": "target_latency (ns)", "min_duration_ms": "min_duration (ms)",
                 "max_duration_ms": "max_duration (ms)"}
_PARAM_KEYS = ("samples_per_query", "target_qps", "target_latency_ns", "max_async_queries",
               "min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count",
               "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
               "accuracy_log_rng_seed", "accuracy_log_probability",
               "accuracy_log_sampling_target", "print_timestamps", "performance_issue_unique",
               "performance_issue_same", "performance_issue_same_index",
               "performance_sample_count", "accuracy_sample_count")


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
    eff = resolve_effective(settings, summary, effective, total_sample_count)
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
        out[-1] += text_value(params[key])
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
