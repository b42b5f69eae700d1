"""Runs driven by the official LoadGen on the device (``loadgen="official"``).

The agent's run_official (device_agent/loadgen_official.py) runs LoadGen over the pushed
sample set; LoadGen's own files come back byte for byte and are written unchanged. The
result is LoadGen's: result.json takes its figures from mlperf_log_detail.txt. edgeperf's
QueryLog and scoring are not run (LoadGen keeps no QueryLog to hand over).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from edgeperf.errors import AgentError, RunError
from edgeperf.outputs import record
from edgeperf.outputs.detail import parse_detail
from edgeperf.run.spec import EXIT_ERROR, EXIT_INVALID, EXIT_VALID, Reporter, RunResult
from edgeperf.settings import TestSettings
from edgeperf.store.record import record_run_safely

DRIVERS = {"edgeperf": "edgeperf", "official": "loadgen-official"}
INSTALL = "pip install mlcommons-loadgen"
NOT_SCORED = ("not run: the official LoadGen timed this run and scored it itself (its "
              "mlperf_log_detail.txt); there is no QueryLog")
# the figure each scenario is judged by, as LoadGen's detail log names it
METRIC_KEYS = {"SingleStream": "early_stopping_latency_ss",
               "MultiStream": "early_stopping_latency_ms",
               "Server": "result_completed_samples_per_sec",
               "Offline": "result_samples_per_second"}


def check_device(info: dict[str, Any], board: str) -> None:
    """Refuse before anything is pushed when the device has no LoadGen to run."""
    if info.get("loadgen_official") is False:
        raise RunError(f"{board}: --loadgen official needs MLCommons LoadGen on the device and "
                       f"mlperf_loadgen is not importable there; install it on the device: "
                       f"{INSTALL} (or run with --loadgen edgeperf)")


def loadgen_settings(s: TestSettings, eff: TestSettings) -> dict[str, Any]:
    """The run's effective settings in the terms the agent builds LoadGen's TestSettings
    from (Offline's expected QPS 0: the device measures it in warm-up, as for edgeperf)."""
    mode = "AccuracyOnly" if s.mode == "AccuracyOnly" else "PerformanceOnly"
    return {"scenario": s.scenario, "mode": mode, "min_duration_ms": s.min_duration_ms,
            "max_duration_ms": s.max_duration_ms, "min_query_count": s.min_query_count,
            "max_query_count": s.max_query_count, "target_latency_ns": eff.target_latency_ns,
            "target_latency_percentile": eff.target_latency_percentile,
            "target_qps": float(s.target_qps if s.scenario == "Offline" else eff.target_qps),
            "samples_per_query": eff.samples_per_query if s.scenario == "MultiStream" else 1,
            "performance_sample_count": s.performance_sample_count,
            "qsl_rng_seed": s.qsl_rng_seed, "sample_index_rng_seed": s.sample_index_rng_seed,
            "schedule_rng_seed": s.schedule_rng_seed,
            # the compliance audits' keys: LoadGen itself samples (TEST01) or repeats (TEST04)
            "accuracy_log_rng_seed": s.accuracy_log_rng_seed,
            "accuracy_log_probability": s.accuracy_log_probability,
            "accuracy_log_sampling_target": s.accuracy_log_sampling_target,
            "performance_issue_same": s.performance_issue_same,
            "performance_issue_same_index": s.performance_issue_same_index}


def run(client: Any, settings: dict[str, Any], *, samples: str | None, sample_count: int,
        qsl_indices: list[int], qsl_total: int, warmup_queries: int, idle_timeout: float,
        cpu_affinity: list[int] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The agent's run_official; returns its reply and LoadGen's files (checked by SHA-256)."""
    parts: dict[str, bytearray] = {}

    def on_event(header: dict[str, Any], body: bytes) -> None:
        if header.get("event") != "lgfile":
            return
        name = str(header["name"])
        buf = parts.setdefault(name, bytearray())
        if int(header["offset"]) != len(buf):
            raise AgentError(f"run_official: {name} bytes at {header['offset']} do not follow "
                             f"the {len(buf)} received", "Protocol", "run_official")
        buf.extend(body)

    reply, _ = client.request("run_official", loadgen=settings, samples=samples,
                              sample_count=sample_count, qsl_indices=[int(i) for i in qsl_indices],
                              qsl_total=int(qsl_total), warmup_queries=int(warmup_queries),
                              cpu_affinity=cpu_affinity or None, on_event=on_event,
                              timeout=idle_timeout)
    files = {}
    for f in reply.get("files", []):
        data = bytes(parts.get(f["name"], b""))
        if len(data) != f["size"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise AgentError(f"run_official: {f['name']} arrived as {len(data)} bytes that do "
                             f"not match the device's {f['size']} (SHA-256)", "Protocol",
                             "run_official")
        files[f["name"]] = data
    return reply, files


def write_files(out: Path, files: dict[str, bytes]) -> dict[str, Any]:
    """LoadGen's files into the run directory, unchanged; their figures from the detail log."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    if "mlperf_log_detail.txt" not in files:
        return {}
    return {ev["key"]: ev["value"] for ev in parse_detail(out / "mlperf_log_detail.txt")}


def figures(detail: dict[str, Any], s: TestSettings, eff: TestSettings) -> dict[str, Any]:
    """What result.json takes from LoadGen's detail log."""
    pct = f"result_{100 * (eff.target_latency_percentile or 0.9):.2f}_percentile_latency_ns"
    keys = ("result_validity", "result_min_duration_met", "result_min_queries_met",
            "result_perf_constraints_met", "early_stopping_met", "early_stopping_result",
            "result_query_count", "result_mean_latency_ns", pct, METRIC_KEYS[s.scenario],
            "result_samples_per_second", "result_completed_samples_per_sec",
            "effective_samples_per_query", "generated_query_count", "num_errors")
    got = {k: detail[k] for k in keys if k in detail}
    got["metric"] = {"name": METRIC_KEYS[s.scenario],
                     "value": detail.get(METRIC_KEYS[s.scenario])}
    return got


def finish(m: Any, say: Reporter) -> RunResult:
    """Write LoadGen's files and result.json (the figures LoadGen's detail log holds)."""
    s, rec, out = m.spec.settings, m.rec, m.out
    from edgeperf.settings import effective_settings

    eff = effective_settings(s, total_sample_count=m.reply.get("n_samples"))
    detail = write_files(out, m.files)
    version = str(detail.get("loadgen_version", ""))
    lg = figures(detail, s, eff) if detail else {}
    rec["driver"] = DRIVERS["official"]
    rec["loadgen_version"] = version.split(" @")[0] or None
    rec["loadgen"] = dict(lg, loadgen_version=version)
    rec["scoring"] = {"by": "LoadGen (mlperf_log_detail.txt)", "edgeperf": NOT_SCORED}
    rec["settings"]["effective"] = eff.to_dict()
    rec["run"] = {k: m.reply.get(k) for k in (
        "start_ns", "end_ns", "warmup_ns_per_sample", "offline_expected_qps", "n_samples",
        "qsl_total", "loaded_sets", "loaded_set_matches", "batched", "batch")}
    rec["telemetry"]["before_run"] = m.reply.get("telemetry_before")
    rec["telemetry"]["after_run"] = m.reply.get("telemetry_after")
    errors = list(m.errors)
    if m.reply and not detail:
        errors.append("LoadGen wrote no mlperf_log_detail.txt")
    if m.reply and not m.reply.get("loaded_set_matches"):
        errors.append("LoadGen loaded samples that were not pushed")
    valid = lg.get("result_validity") == "VALID"
    rec["summary"] = None
    rec["result"] = "VALID" if valid and not errors else "INVALID"
    rec["valid"] = valid and not errors
    rec["invalid_reasons"] = [] if valid else errors or ["LoadGen: Result is INVALID (see "
                                                         "mlperf_log_summary.txt)"]
    rec["errors"] = errors
    rec["files"] = {k: v for k, v in (("summary", "mlperf_log_summary.txt"),
                                      ("detail", "mlperf_log_detail.txt"),
                                      ("accuracy", "mlperf_log_accuracy.json"),
                                      ("trace", "mlperf_log_trace.json")) if v in m.files}
    record.write_record(out, rec)
    record_run_safely(out)  # the results store, with LoadGen's figures
    code = EXIT_ERROR if errors else (EXIT_VALID if valid else EXIT_INVALID)
    say("done", {"out": str(out), "valid": rec["valid"]})
    return RunResult(out, None, code, "; ".join(errors) or None, rec["invalid_reasons"], rec,
                     s.scenario)
