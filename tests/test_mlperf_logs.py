"""edgeperf.outputs (the mlperf_log_* files) against LoadGen 6.0.17: the reference files and
LoadGen itself, run here.

Layouts are compared as "skeletons" (every number replaced by #), so a difference in a label,
a separator, a blank line or the order of lines fails, while latencies, which are LoadGen's
own, do not. Numbers are checked exactly where they can be computed by hand.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from lgrun import run_loadgen

from edgeperf.outputs.mlperf_logs import (
    AccuracyEntry,
    RunInfo,
    TraceEvents,
    fmt_g,
    format_detail,
    format_summary,
    generated_queries,
    parse_detail,
    parse_summary,
    power_time,
    write_accuracy_json,
    write_detail,
    write_run_logs,
    write_summary,
    write_trace,
)
from edgeperf.run.querylog import QueryLogData
from edgeperf.scoring.loadgen import ScoreInput, Summary, score
from edgeperf.settings import TestSettings, effective_settings

REF = Path(__file__).resolve().parent / "reference" / "loadgen-6.0.17"  # LoadGen's output
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
T0 = datetime(2026, 11, 29, 19, 1, 42, 92_000, tzinfo=timezone.utc)


def skeleton(text: str) -> list[str]:
    return [re.sub(r"-?\d+(\.\d+)?(e[+-]\d+)?", "#", line) for line in text.splitlines()]


def labels(text: str) -> list[str]:
    """The text before ':' of every line that has one, bullets excepted."""
    return [line.split(":")[0].strip() for line in text.splitlines()
            if ":" in line and not line.startswith(" * ")]


def section(text: str, title: str) -> str:
    return text[text.index(title):]


def settings_for(scenario: str, n: int, **kw: object) -> TestSettings:
    """The settings the reference runs used (see the reference README)."""
    if scenario == "Offline":
        return TestSettings("Offline", min_duration_ms=0, min_query_count=n, target_qps=1.0)
    args: dict = dict(min_duration_ms=0, min_query_count=n, max_query_count=n)
    if scenario == "Server":
        args.update(target_qps=5000.0, target_latency_ns=10_000_000)
    else:
        args.update(target_latency_ns=1000)
    args.update(kw)
    return TestSettings(scenario, **args)


def scored(settings: TestSettings, query_lat: np.ndarray, span_ns: int = 2 * 10**9,
           sample_lat: np.ndarray | None = None) -> Summary:
    eff = effective_settings(settings, total_sample_count=1024)
    if sample_lat is None:
        sample_lat = np.repeat(query_lat, eff.samples_per_query)
    inp = ScoreInput(settings.scenario, sample_lat, query_lat, final_issue_ns=span_ns,
                     final_scheduled_ns=span_ns, final_done_ns=span_ns * 5 // 4)
    return score(inp, min_duration_ns=eff.min_duration_ms * 10**6,
                 min_query_count=eff.min_query_count, min_sample_count=eff.min_sample_count,
                 target_latency_ns=eff.target_latency_ns if settings.scenario == "Server" else 0,
                 target_percentile=eff.target_latency_percentile, mode=settings.mode)


def reference_case(scenario: str) -> tuple[TestSettings, Summary]:
    n = {"SingleStream": 2000, "MultiStream": 1000, "Server": 5000, "Offline": 20000}[scenario]
    s = settings_for(scenario, n)
    if scenario == "Offline":
        return s, scored(s, np.array([48_000_000]), sample_lat=np.full(n, 48_000_000))
    return s, scored(s, np.arange(1, n + 1, dtype=np.int64) * 1000)


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_summary_layout_equals_reference(scenario: str, tmp_path: Path) -> None:
    ref = (REF / scenario / "mlperf_log_summary.txt").read_text()
    settings, summary = reference_case(scenario)
    counts = parse_summary(ref)
    path = tmp_path / "mlperf_log_summary.txt"
    write_summary(path, summary, settings, "PySUT", counts["warnings"], counts["errors"],
                  total_sample_count=1024)
    ours = path.read_text()
    assert summary.valid
    assert labels(ours) == labels(ref)
    assert skeleton(ours) == skeleton(ref)
    assert section(ours, "Test Parameters Used") == section(ref, "Test Parameters Used")
    assert ours.splitlines()[-4:] == ref.splitlines()[-4:]  # the warning/error counts


def test_summary_numbers_singlestream_by_hand() -> None:
    # latencies 1..2000 us: p90 = sorted[1800]; early stopping at N = 2000, p = 0.9 discards
    # 167 (LoadGen's own number in the reference), so the estimate is sorted[2000 - 168].
    settings, summary = reference_case("SingleStream")
    lines = format_summary(summary, settings, "PySUT").splitlines()
    for expected in [
        "90.0th percentile latency (ns) : 1801000", "Result is : VALID",
        " * Processed at least 64 queries (2000).",
        " * Would discard 167 highest latency queries.",
        " * Early stopping 90.0th percentile estimate: 1833000",
        "QPS w/ loadgen overhead         : 999.50",  # 1999 queries / 2 s
        "QPS w/o loadgen overhead        : 999.50",  # 1e9 / mean 1000500 ns
        "Min latency (ns)                : 1000", "Max latency (ns)                : 2000000",
        "Mean latency (ns)               : 1000500",
        "50.00 percentile latency (ns)   : 1001000",
        "99.90 percentile latency (ns)   : 1999000",
        "samples_per_query : 1", "target_qps : 1e+06",
        "No warnings encountered during test.", "No errors encountered during test.",
    ]:
        assert expected in lines


def test_summary_numbers_other_scenarios_by_hand() -> None:
    _, ms = reference_case("MultiStream")
    text = format_summary(ms, settings_for("MultiStream", 1000), "PySUT")
    assert "99.0th percentile latency (ns) : 991000\n" in text  # sorted[990] of 1..1000 us
    assert " * Would discard 1 highest latency queries.\n" in text  # the reference's count
    assert " * Early stopping 99.0th percentile estimate: 999000\n" in text
    assert "Per-query latency:  \nMin latency (ns)                : 1000\n" in text
    _, srv = reference_case("Server")
    text = format_summary(srv, settings_for("Server", 5000), "PySUT")
    assert "Completed samples per second    : 1999.60\n" in text  # 4999 / 2.5 s
    assert "Scheduled samples per second : 2499.50\n" in text  # 4999 / 2 s
    assert "  Performance constraints satisfied : Yes\n" in text
    _, off = reference_case("Offline")
    text = format_summary(off, settings_for("Offline", 20000), "PySUT")
    assert "Samples per second: 416667\n" in text  # 20000 / 0.048 s, printed with %g
    assert "samples_per_query : 20000\nmin_query_count" not in text
    assert "Early Stopping Result:" not in text


def test_invalid_summary_lists_recommendations() -> None:
    s = settings_for("Server", 3000, target_latency_ns=2_000_000)
    summary = scored(s, np.full(3000, 3_000_000, dtype=np.int64))
    text = format_summary(summary, s, "PySUT", warnings=2, errors=3)
    assert ("Result is : INVALID\n  Performance constraints satisfied : NO\n"
            "  Min duration satisfied : Yes\n  Min queries satisfied : Yes\n"
            "  Early stopping satisfied: NO\nRecommendations:\n"
            " * Reduce target QPS to improve latency.\nEarly Stopping Result:\n"
            " * Run unsuccessful.\n * Processed 3000 queries.\n") in text
    assert text.endswith("\n2 warnings encountered. See detailed log.\n\n"
                         "3 ERRORS encountered. See detailed log.\n")
    ss = settings_for("SingleStream", 2000)
    short = scored(ss, np.arange(1, 51, dtype=np.int64))  # 50 < 2000 queries, < 64 too
    text = format_summary(short, ss, "PySUT")
    assert ("Recommendations:\n * The test exited early, before enough queries were issued.\n"
            "   See the detailed log for why this may have occurred.\nEarly Stopping Result:\n"
            " * Only processed 50 queries.\n"
            " * Need to process at least 64 queries for early stopping.\n") in text
    parsed = parse_summary(text)
    assert parsed["Result is"] == "INVALID" and parsed["Min queries satisfied"] == "NO"
    assert parsed["recommendations"] == [
        "The test exited early, before enough queries were issued.\n"
        "   See the detailed log for why this may have occurred."]


def test_accuracy_only_summary_is_the_counts_only(tmp_path: Path) -> None:
    s = TestSettings("Offline", mode="AccuracyOnly", min_duration_ms=10_000, target_qps=1.0)
    write_summary(tmp_path / "s.txt", None, s, "PySUT")
    assert (tmp_path / "s.txt").read_bytes() == (
        REF / "AccuracyOnly-SingleStream" / "mlperf_log_summary.txt").read_bytes()


def test_parse_summary_reads_reference() -> None:
    d = parse_summary((REF / "Server" / "mlperf_log_summary.txt").read_text())
    assert d["Completed samples per second"] == 4937.09
    assert d["Scheduled samples per second"] == 4937.56
    assert d["target_latency (ns)"] == 10_000_000 and d["target_qps"] == 5000
    assert d["early_stopping"] == ["Run successful."]
    assert (d["warnings"], d["errors"]) == (0, 1)
    d = parse_summary((REF / "SingleStream" / "mlperf_log_summary.txt").read_text())
    assert d["90.0th percentile latency (ns)"] == 4469 and d["target_qps"] == 1e6
    assert d["early_stopping"][1] == "Would discard 167 highest latency queries."


# --------------------------------------------------------------------------- detail


def run_info(settings: TestSettings, summary: Summary | None, **kw: object) -> RunInfo:
    eff = effective_settings(settings, total_sample_count=1024)
    count, spq, duration = generated_queries(settings, eff)
    return RunInfo("PySUT", T0, T0 + timedelta(milliseconds=13), generated_query_count=count,
                   generated_samples_per_query=spq, generated_query_duration=duration,
                   total_sample_count=1024, **kw)


CHECKER_KEYS = ["test_datetime", "sut_name", "requested_scenario", "effective_scenario",
                "effective_min_duration_ms", "effective_min_query_count",
                "generated_query_count", "generated_samples_per_query",
                "generated_query_duration", "power_begin",
                "power_end", "result_validity", "result_min_duration_met",
                "result_min_queries_met", "early_stopping_met", "early_stopping_result",
                "result_query_count", "result_min_latency_ns", "result_max_latency_ns",
                "result_mean_latency_ns", "result_90.00_percentile_latency_ns", "num_errors"]
SCENARIO_KEYS = {
    "SingleStream": ["result_qps_with_loadgen_overhead", "early_stopping_latency_ss",
                     "early_stopping_latency_ms"],
    "MultiStream": ["result_99.00_percentile_per_query_latency_ns", "early_stopping_latency_ms"],
    "Server": ["result_perf_constraints_met", "result_overlatency_query_count",
               "result_scheduled_samples_per_sec", "result_completed_samples_per_sec"],
    "Offline": ["result_samples_per_second"],
}


def raw_values(text: str, prefixes: tuple[str, ...]) -> list[str]:
    """'key=value' as written (number formatting included) for keys with these prefixes."""
    out = []
    for line in text.splitlines():
        m = re.match(r':::MLLOG \{"key": "([^"]+)", "value": (.*), "time_ms": ', line)
        assert m, line
        if m.group(1).startswith(prefixes):
            out.append(f"{m.group(1)}={m.group(2)}")
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_detail_lines_keys_and_values(scenario: str, tmp_path: Path) -> None:
    settings, summary = reference_case(scenario)
    info = run_info(settings, summary, warnings=["thermal throttling at 85 C"],
                    errors=["device reset"] if scenario == "Server" else [])
    path = tmp_path / "mlperf_log_detail.txt"
    write_detail(path, settings, summary, info)
    text = path.read_text()
    events = parse_detail(path)
    assert len(events) == len(text.splitlines())
    for ev in events:
        assert set(ev) == {"key", "value", "time_ms", "namespace", "event_type", "metadata"}
        assert ev["namespace"] == "mlperf::logging" and ev["event_type"] == "POINT_IN_TIME"
        assert set(ev["metadata"]) == {"is_error", "is_warning", "file", "line_no", "pid", "tid"}
    by_key = {ev["key"]: ev for ev in events}
    for key in CHECKER_KEYS + SCENARIO_KEYS[scenario]:
        assert key in by_key, key
    assert by_key["result_validity"]["value"] == "VALID"
    assert by_key["power_begin"]["value"] == "11-29-2026 19:01:42.092"
    assert by_key["power_end"]["value"] == "11-29-2026 19:01:42.105"
    assert by_key["test_datetime"]["value"] == "2026-11-29T19:01:42Z"
    assert by_key["loadgen_version"]["value"].startswith("edgeperf ")
    warning = by_key["warning_generic_message"]
    assert warning["metadata"]["is_warning"] and not warning["metadata"]["is_error"]
    assert warning["value"] == "thermal throttling at 85 C"
    assert by_key["num_errors"]["value"] == len(info.errors)
    if scenario == "Server":
        assert by_key["error_runtime"]["metadata"]["is_error"]
        assert by_key["error_runtime"]["value"] == "device reset"
    # settings and structure as LoadGen writes them, value formatting included
    ref = (REF / scenario / "mlperf_log_detail.txt").read_text()
    prefixes = ("requested_", "effective_", "generated_", "result_validity",
                "result_min_duration_met",
                "result_min_queries_met", "early_stopping_met", "result_perf_constraints_met",
                "result_query_count", "result_overlatency_query_count", "num_errors")
    assert raw_values(text, prefixes) == raw_values(ref, prefixes)
    skip = ("loadgen_", "logger_", "edgeperf_", "loaded_qsl_set", "get_sut_name",
            "generic_message", "warning_", "error_", "qsl_name")
    keys = [ev["key"] for ev in events if not ev["key"].startswith(skip)]
    ref_keys = [ev["key"] for ev in parse_detail(REF / scenario / "mlperf_log_detail.txt")
                if not ev["key"].startswith(skip)]
    assert keys == ref_keys


def test_detail_settings_values_are_formatted_as_loadgen() -> None:
    for scenario in SCENARIOS:
        settings, summary = reference_case(scenario)
        text = format_detail(settings, summary, run_info(settings, summary))
        ref = (REF / scenario / "mlperf_log_detail.txt").read_text()
        prefixes = ("requested_", "effective_", "generated_samples_per_query")
        assert raw_values(text, prefixes) == raw_values(ref, prefixes)
        if scenario in ("SingleStream", "MultiStream"):
            assert "effective_target_qps=1e+06" in raw_values(text, prefixes)
        if scenario == "Server":
            assert "requested_server_target_latency_percentile=0.99" in raw_values(text, prefixes)


def test_detail_invalid_run_and_float_formatting() -> None:
    s = settings_for("SingleStream", 2000, min_duration_ms=600_000)
    summary = scored(s, np.arange(1, 101, dtype=np.int64) * 1000, span_ns=10**9)
    text = format_detail(s, summary, run_info(s, summary))
    values = dict(v.split("=", 1) for v in raw_values(text, ("result_", "early_stopping")))
    assert values["result_validity"] == '"INVALID"'
    assert values["result_invalid_reason"] == (
        '"Decrease the expected latency so the loadgen pre-generates more queries. '
        'The test exited early, before enough queries were issued."')
    assert values["result_qps_with_loadgen_overhead"] == "99"  # 99 / 1 s, as %g
    assert values["result_qps_without_loadgen_overhead"] == "19802"  # 1e9 / 50500
    assert values["early_stopping_latency_ms"] == "0"  # p99 needs 662 queries
    assert values["early_stopping_result"].startswith(
        '" * Processed at least 64 queries (100).  * Would discard 2 highest')
    assert "\\n" not in values["early_stopping_result"]


def test_accuracy_mode_detail_has_no_results() -> None:
    s = TestSettings("Offline", mode="AccuracyOnly", min_duration_ms=10_000,
                     min_query_count=100, target_qps=1.0)
    info = RunInfo("PySUT", T0, T0, generated_query_count=1, generated_samples_per_query=10,
                   total_sample_count=10)
    keys = [json.loads(line[9:])["key"] for line in format_detail(s, None, info).splitlines()]
    assert "generic_message" in keys and keys[-2:] == ["power_begin", "power_end"]
    assert not [k for k in keys if k.startswith("result_")]


def test_power_time_format() -> None:
    assert power_time(datetime(2026, 1, 2, 3, 4, 5, 6_999, tzinfo=timezone.utc)) == (
        "01-02-2026 03:04:05.006")


# --------------------------------------------------------------------------- trace, accuracy


def test_trace_is_valid_json_with_exact_times(tmp_path: Path) -> None:
    n, start = 10_000, 5_000_000_000
    rng = np.random.default_rng(1)
    issue = start + 1234 + np.cumsum(rng.integers(1, 200_000, n))
    done = issue + rng.integers(0, 50_000, n)
    samples = rng.integers(0, 1_000_000, (n, 8))
    path = tmp_path / "mlperf_log_trace.json"
    write_trace(path, TraceEvents(issue, done, sample_indices=samples), start_ns=start)
    doc = json.loads(path.read_text())
    assert doc["displayTimeUnit"] == "ns"
    events = doc["traceEvents"]
    assert len(events) == n and all(e["ph"] == "X" for e in events)
    first, last = events[0], events[-1]
    assert first["ts"] == (issue[0] - start) / 1000 and first["dur"] == (done[0] - issue[0]) / 1000
    assert last["ts"] == (issue[-1] - start) / 1000 and last["dur"] == (done[-1] - issue[-1]) / 1000
    assert first["args"] == {"query_id": 0, "sample_indices": samples[0].tolist()}
    assert last["args"]["query_id"] == n - 1
    assert [e["ts"] for e in events] == ((issue - start) / 1000).tolist()


def test_trace_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_trace(path, TraceEvents(np.zeros(0, np.int64), np.zeros(0, np.int64)))
    assert json.loads(path.read_text())["traceEvents"] == []
    write_trace(path, TraceEvents(np.array([5, 1100]), np.array([5, 2100]),
                                  query_ids=np.array([7, 0])), start_ns=100)
    events = json.loads(path.read_text())["traceEvents"]
    assert [(e["ts"], e["dur"], e["args"]) for e in events] == [
        (-0.095, 0.0, {"query_id": 7}), (1.0, 1.0, {"query_id": 0})]
    with pytest.raises(ValueError, match="query 1 completes before it is issued"):
        write_trace(path, TraceEvents(np.array([1, 5]), np.array([2, 4])))


def test_accuracy_json_matches_loadgen(tmp_path: Path) -> None:
    ref = REF / "AccuracyOnly-SingleStream" / "mlperf_log_accuracy.json"
    order = [e["qsl_idx"] for e in json.loads(ref.read_text())]
    entries = [AccuracyEntry(i, q, q.to_bytes(4, "little")) for i, q in enumerate(order)]
    write_accuracy_json(tmp_path / "a.json", entries)
    assert (tmp_path / "a.json").read_bytes() == ref.read_bytes()
    write_accuracy_json(tmp_path / "e.json", [])
    assert (tmp_path / "e.json").read_bytes() == (
        REF / "SingleStream" / "mlperf_log_accuracy.json").read_bytes()
    write_accuracy_json(tmp_path / "t.json", [(0, 3, b"\xab\x01")])
    assert json.loads((tmp_path / "t.json").read_text()) == [
        {"seq_id": 0, "qsl_idx": 3, "data": "AB01"}]


# --------------------------------------------------------------------------- real LoadGen

LOADGEN_CASES = {
    "ss2000": dict(scenario="SingleStream", n=2000),
    "ss50": dict(scenario="SingleStream", n=50),
    "ms1000": dict(scenario="MultiStream", n=1000),
    "server_ok": dict(scenario="Server", n=1000, qps=5000.0, bound_ns=50_000_000),
    "server_tight": dict(scenario="Server", n=400, qps=5000.0, bound_ns=1),
    "ss_cut_short": dict(scenario="SingleStream", n=100, max_n=80),  # min queries not met
    # what GenerateQueries generates when the min duration, not the count, decides
    "gen_ss": dict(scenario="SingleStream", n=1, settings={
        "min_duration_ms": 50, "single_stream_expected_latency_ns": 5_000_000}),
    "gen_ms": dict(scenario="MultiStream", n=3, settings={
        "min_duration_ms": 40, "multi_stream_expected_latency_ns": 3_000_000,
        "multi_stream_samples_per_query": 4}),
    "gen_server": dict(scenario="Server", n=10, qps=2000.0, bound_ns=50_000_000, settings={
        "min_duration_ms": 30, "schedule_rng_seed": 16159082839903944936}),
    "gen_offline": dict(scenario="Offline", n=100, settings={
        "min_duration_ms": 20, "offline_expected_qps": 30000.0}),
    # doubles LoadGen only logs, set to NaN/inf to see how it spells them
    "ss_nan": dict(scenario="SingleStream", n=10, settings={"accuracy_log_probability": "nan"}),
    "ss_minus_nan": dict(scenario="SingleStream", n=10,
                         settings={"accuracy_log_probability": "-nan"}),
    "ss_inf": dict(scenario="SingleStream", n=10, settings={"accuracy_log_probability": "inf"}),
    "server_minus_inf": dict(scenario="Server", n=10, qps=5000.0, bound_ns=50_000_000,
                             settings={"server_find_peak_qps_boundary_step_size": "-inf"}),
}


def _loadgen_settings(case: dict) -> dict:
    settings = dict(min_duration_ms=0, min_query_count=case["n"],
                    max_query_count=case.get("max_n", case["n"]),
                    single_stream_expected_latency_ns=1000,
                    multi_stream_expected_latency_ns=1000)
    if case["scenario"] == "Server":
        settings.update(server_target_qps=case["qps"],
                        server_target_latency_ns=case["bound_ns"])
    settings.update(case.get("settings", {}))
    return settings


@pytest.fixture(scope="module")
def loadgen_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cases = {name: dict(scenario=case["scenario"], settings=_loadgen_settings(case))
             for name, case in LOADGEN_CASES.items()}
    return run_loadgen(cases, tmp_path_factory.mktemp("loadgen"))


def ours_like(run: Path, case: dict, latencies_ns: np.ndarray,
              **settings: object) -> tuple[str, str]:
    """(LoadGen's summary, ours for the same settings, N and warning/error counts)."""
    theirs = (run / "mlperf_log_summary.txt").read_text()
    counts = parse_summary(theirs)
    extra = {} if case["scenario"] != "Server" else dict(target_qps=case["qps"],
                                                         target_latency_ns=case["bound_ns"])
    s = settings_for(case["scenario"], case["n"], **extra, **settings)
    text = format_summary(scored(s, latencies_ns), s, "PySUT", counts["warnings"],
                          counts["errors"], total_sample_count=1024)
    return theirs, text


@pytest.mark.parametrize("name", ["ss2000", "ss50", "ms1000", "server_ok"])
def test_early_stopping_lines_match_loadgen(loadgen_runs: dict[str, Path], name: str) -> None:
    case = LOADGEN_CASES[name]
    theirs, ours = ours_like(loadgen_runs[name], case,
                             np.arange(1, case["n"] + 1, dtype=np.int64) * 1000)
    t, o = parse_summary(theirs), parse_summary(ours)
    assert o["Result is"] == t["Result is"]
    assert skeleton(ours) == skeleton(theirs)
    assert section(ours, "Test Parameters Used") == section(theirs, "Test Parameters Used")
    # the N-dependent lines are identical; only latency estimates are LoadGen's own
    n_lines = [line for line in t["early_stopping"] if "estimate" not in line]
    assert n_lines == [line for line in o["early_stopping"] if "estimate" not in line]
    assert len(n_lines) >= 1
    if name == "ss2000":
        assert t["early_stopping"][:2] == ["Processed at least 64 queries (2000).",
                                           "Would discard 167 highest latency queries."]
    if name == "ms1000":
        assert t["early_stopping"][:2] == ["Processed at least 662 queries (1000).",
                                           "Would discard 1 highest latency queries."]


def test_server_unsuccessful_early_stopping_matches_loadgen(
        loadgen_runs: dict[str, Path]) -> None:
    run, case = loadgen_runs["server_tight"], LOADGEN_CASES["server_tight"]
    detail = {ev["key"]: ev["value"] for ev in parse_detail(run / "mlperf_log_detail.txt")}
    over = detail["result_overlatency_query_count"]
    n = case["n"]
    assert over == n  # a 1 ns bound: every query is over latency
    theirs, ours = ours_like(run, case, np.full(n, 5000, dtype=np.int64))
    t, o = parse_summary(theirs), parse_summary(ours)
    assert t["early_stopping"][2].startswith("Would need to run at least ")
    assert o["early_stopping"] == t["early_stopping"]
    assert o["recommendations"] == t["recommendations"] == [
        "Reduce target QPS to improve latency."]
    assert skeleton(ours) == skeleton(theirs)


def test_min_queries_not_met_matches_loadgen(loadgen_runs: dict[str, Path]) -> None:
    run, case = loadgen_runs["ss_cut_short"], LOADGEN_CASES["ss_cut_short"]
    # LoadGen stopped at max_query_count 80 < min_query_count 100; edgeperf refuses such
    # settings, so ours ran without a maximum and was cut short after 80 queries
    theirs, ours = ours_like(run, case, np.arange(1, 81, dtype=np.int64) * 1000,
                             max_query_count=0)
    t, o = parse_summary(theirs), parse_summary(ours)
    assert (t["Result is"], t["Min queries satisfied"]) == ("INVALID", "NO")
    assert (o["Result is"], o["Min queries satisfied"]) == ("INVALID", "NO")
    assert o["recommendations"] == t["recommendations"]
    assert [x for x in o["early_stopping"] if "estimate:" not in x] == [
        x for x in t["early_stopping"] if "estimate:" not in x]
    assert skeleton(ours) == skeleton(theirs)
    detail = {ev["key"]: ev["value"] for ev in parse_detail(run / "mlperf_log_detail.txt")}
    s = settings_for("SingleStream", 100, max_query_count=0)
    summary = scored(s, np.arange(1, 81, dtype=np.int64) * 1000)
    mine = {ev["key"]: ev["value"] for ev in json_events(format_detail(
        s, summary, run_info(s, summary)))}
    for key in ("result_validity", "result_min_queries_met", "result_invalid_reason",
                "result_query_count"):
        assert mine[key] == detail[key], key


def json_events(text: str) -> list[dict]:
    return [json.loads(line[len(":::MLLOG "):]) for line in text.splitlines()]


def test_write_run_logs_places_the_device_clock_on_the_wall_clock(tmp_path: Path) -> None:
    mono0 = 7_000_000_000  # device perf_counter at the anchor
    wall0 = int(T0.timestamp() * 1e9)  # 19:01:42.092 UTC at the same instant
    start = mono0 + 5_000_000
    issue = start + np.arange(100, dtype=np.int64) * 1_000_000
    q = QueryLogData(issue, issue + 400_000, np.arange(100, dtype=np.uint32), 1, start)
    s = settings_for("SingleStream", 100)
    eff = effective_settings(s, total_sample_count=256)
    summary = scored(s, q.done_ns - q.issue_ns, span_ns=int(issue[-1] - start))
    write_run_logs(tmp_path, summary=summary, requested=s, effective=eff, sut_name="edgeperf:x",
                   querylog=q, wall_anchor={"wall_ns": wall0, "monotonic_ns": mono0},
                   errors=["link hiccup"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mlperf_log_accuracy.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt",
        "mlperf_log_trace.json"]
    detail = {ev["key"]: ev["value"] for ev in parse_detail(tmp_path / "mlperf_log_detail.txt")}
    assert detail["power_begin"] == "11-29-2026 19:01:42.097"  # anchor + 5 ms
    assert detail["power_end"] == "11-29-2026 19:01:42.196"  # + 99 ms + 0.4 ms
    assert (detail["error_runtime"], detail["num_errors"]) == ("link hiccup", 1)
    assert detail["effective_performance_sample_count"] == 256
    summ = parse_summary((tmp_path / "mlperf_log_summary.txt").read_text())
    assert (summ["SUT name"], summ["errors"], summ["performance_sample_count"]) == (
        "edgeperf:x", 1, 256)
    trace = json.loads((tmp_path / "mlperf_log_trace.json").read_text())["traceEvents"]
    assert [(e["ts"], e["dur"]) for e in trace[:2]] == [(0.0, 400.0), (1000.0, 400.0)]
    assert (tmp_path / "mlperf_log_accuracy.json").read_text() == "[\n]\n"
    # Offline: rows are the samples of one query
    off = settings_for("Offline", 50)
    q = QueryLogData(np.full(50, start), start + 10_000 + np.arange(50, dtype=np.int64),
                     np.arange(50, dtype=np.uint32)[::-1].copy(), 1, start)
    lat = q.done_ns - q.issue_ns
    summary = scored(off, np.array([lat.max()]), sample_lat=lat)
    write_run_logs(tmp_path, summary=summary, requested=off,
                   effective=effective_settings(off), sut_name="x", querylog=q)
    trace = json.loads((tmp_path / "mlperf_log_trace.json").read_text())["traceEvents"]
    assert len(trace) == 50 and {e["name"] for e in trace} == {"Sample"}
    assert trace[0]["args"] == {"query_id": 0, "sample_indices": [49]}


# --------------------------------------------------------------------------- NaN and inf

NAN_CASES = {"ss_nan": ("accuracy_log_probability", math.nan),
             "ss_minus_nan": ("accuracy_log_probability", -math.nan),
             "ss_inf": ("accuracy_log_probability", math.inf),
             "server_minus_inf": ("server_find_peak_qps_boundary_step_size", -math.inf)}


@pytest.mark.parametrize("name", sorted(NAN_CASES))
def test_nan_and_inf_are_spelled_as_loadgen_spells_them(loadgen_runs: dict[str, Path],
                                                        name: str) -> None:
    # LoadGen logs a double with ostream << (its "NaN"/"Infinity" overload in logging.cc is
    # never declared to the callers): nan, -nan, inf, -inf, bare, in the JSON lines too.
    key, value = NAN_CASES[name]
    run = loadgen_runs[name]
    theirs = dict(v.split("=", 1) for v in raw_values(
        (run / "mlperf_log_detail.txt").read_text(), ("requested_", "effective_")))
    assert theirs[f"requested_{key}"] == fmt_g(value)
    if key == "accuracy_log_probability":
        assert theirs[f"effective_{key}"] == fmt_g(value)
        summary = (run / "mlperf_log_summary.txt").read_text()
        assert f"\n{key} : {fmt_g(value)}\n" in summary
        assert math.isnan(value) == math.isnan(parse_summary(summary)[key])
    events = {ev["key"]: ev["value"] for ev in parse_detail(run / "mlperf_log_detail.txt")}
    read = events[f"requested_{key}"]  # LoadGen's own file reads back
    assert (math.isnan(read) and math.isnan(value)) or read == value


def _values(text: str) -> dict[str, str]:
    return dict(v.split("=", 1) for v in raw_values(text, ("result_",)))


def test_zero_duration_runs_log_nan_and_inf_as_loadgen(tmp_path: Path) -> None:
    # One SingleStream query issued at the start: LoadGen's (1 - 1) / 0 s is 0.0 / 0.0, the
    # x86-64 default NaN (sign bit set): -nan; a zero mean latency gives 1 / 0 = inf.
    ss = settings_for("SingleStream", 1)
    one = scored(ss, np.array([0]), span_ns=0)
    text = format_summary(one, ss, "PySUT")
    assert "QPS w/ loadgen overhead         : -nan\n" in text
    assert "QPS w/o loadgen overhead        : inf\n" in text
    detail = format_detail(ss, one, run_info(ss, one))
    assert _values(detail)["result_qps_with_loadgen_overhead"] == "-nan"
    assert _values(detail)["result_qps_without_loadgen_overhead"] == "inf"
    # Server, one sample scheduled and done at the start: (1 - 1) / 0 s twice
    srv = settings_for("Server", 1)
    one = scored(srv, np.array([0]), span_ns=0)
    text = format_summary(one, srv, "PySUT")
    assert "Completed samples per second    : -nan\n" in text
    assert "Scheduled samples per second : -nan\n" in text
    values = _values(format_detail(srv, one, run_info(srv, one)))
    assert values["result_completed_samples_per_sec"] == "-nan"
    assert values["result_scheduled_samples_per_sec"] == "-nan"
    # Offline of one sample answered within the clock's resolution: 1 / 0 s = inf
    off = settings_for("Offline", 1)
    one = scored(off, np.array([0]), sample_lat=np.array([0]))
    assert one.samples_per_second == math.inf
    assert "Samples per second: inf\n" in format_summary(one, off, "PySUT")
    path = tmp_path / "mlperf_log_detail.txt"
    write_detail(path, off, one, run_info(off, one))
    assert _values(path.read_text())["result_samples_per_second"] == "inf"
    events = {ev["key"]: ev["value"] for ev in parse_detail(path)}  # and reads back
    assert events["result_samples_per_second"] == math.inf


def test_fmt_g_spellings() -> None:
    assert [fmt_g(x) for x in (math.nan, -math.nan, math.inf, -math.inf, 1e6, 0.5)] == [
        "nan", "-nan", "inf", "-inf", "1e+06", "0.5"]


# --------------------------------------------------------------------------- generated queries

GENERATED = ("generated_query_count", "generated_samples_per_query", "generated_query_duration")


def _short_querylog(scenario: str, rows: int, spr: int) -> QueryLogData:
    start = 1_000_000
    issue = start + np.arange(rows, dtype=np.int64) * (0 if scenario == "Offline" else 1000)
    return QueryLogData(issue, issue + 500, np.zeros(rows * spr, np.uint32), spr, start)


def _logged_generated(settings: TestSettings, out: Path, rows: int = 50) -> list[str]:
    """The generated_* lines write_run_logs writes for a run that scored ``rows`` queries."""
    eff = effective_settings(settings, total_sample_count=1024)
    spr = eff.samples_per_query if settings.scenario == "MultiStream" else 1
    q = _short_querylog(settings.scenario, rows, spr)
    lat = q.done_ns - q.issue_ns
    summary = (scored(settings, np.array([lat.max()]), sample_lat=lat)
               if settings.scenario == "Offline" else scored(settings, lat))
    out.mkdir(exist_ok=True)
    write_run_logs(out, summary=summary, requested=settings, effective=eff, sut_name="PySUT",
                   querylog=q)
    return raw_values((out / "mlperf_log_detail.txt").read_text(), GENERATED)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_run_logs_say_what_loadgen_generated_not_what_was_scored(scenario: str,
                                                                 tmp_path: Path) -> None:
    # The reference runs' settings, but only 50 queries scored (a run cut short): the detail
    # log still says what LoadGen's GenerateQueries built for those settings, all three keys
    # in LoadGen's order, right after "Starting performance mode".
    settings, _ = reference_case(scenario)
    ours = _logged_generated(settings, tmp_path)
    ref = (REF / scenario / "mlperf_log_detail.txt").read_text()
    assert ours == raw_values(ref, GENERATED)
    keys = [ev["key"] for ev in parse_detail(tmp_path / "mlperf_log_detail.txt")]
    start = keys.index("generic_message")
    assert keys[start + 1:start + 4] == list(GENERATED)


@pytest.mark.parametrize("name", ["gen_ss", "gen_ms", "gen_server", "gen_offline"])
def test_generated_queries_equal_real_loadgens(loadgen_runs: dict[str, Path], name: str,
                                               tmp_path: Path) -> None:
    # Settings where the min duration decides how many queries LoadGen generates (twice the
    # duration at the expected latency; Server's seeded Poisson schedule past the duration;
    # Offline's 1.1 * duration * QPS samples): ours equal LoadGen's own lines.
    case = LOADGEN_CASES[name]
    lg_settings = _loadgen_settings(case)
    scen = case["scenario"]
    kw: dict = dict(min_duration_ms=lg_settings["min_duration_ms"],
                    min_query_count=case["n"],
                    max_query_count=0 if scen == "Offline" else case["n"])
    if scen == "SingleStream":
        kw.update(target_latency_ns=lg_settings["single_stream_expected_latency_ns"])
    elif scen == "MultiStream":
        kw.update(target_latency_ns=lg_settings["multi_stream_expected_latency_ns"],
                  samples_per_query=lg_settings["multi_stream_samples_per_query"])
    elif scen == "Server":
        kw.update(target_qps=case["qps"], target_latency_ns=case["bound_ns"],
                  schedule_rng_seed=lg_settings["schedule_rng_seed"])
    else:
        kw.update(target_qps=lg_settings["offline_expected_qps"])
    ours = _logged_generated(TestSettings(scen, **kw), tmp_path, rows=5)
    theirs = raw_values((loadgen_runs[name] / "mlperf_log_detail.txt").read_text(), GENERATED)
    assert len(theirs) == 3 and ours == theirs


def test_trace_names_qsl_indices_where_the_querylog_maps_them(tmp_path: Path) -> None:
    # the agent records positions in the pushed set; the trace names LoadGen's QSL indices
    s = settings_for("SingleStream", 3)
    q = _short_querylog("SingleStream", 3, 1)
    q.sample_idx = np.array([0, 1, 2], np.uint32)
    q.qsl_index = np.array([882, 396, 136])
    write_run_logs(tmp_path, summary=scored(s, q.done_ns - q.issue_ns), requested=s,
                   effective=effective_settings(s), sut_name="x", querylog=q)
    trace = json.loads((tmp_path / "mlperf_log_trace.json").read_text())["traceEvents"]
    assert [e["args"]["sample_indices"] for e in trace] == [[882], [396], [136]]
