"""The end of a run: what the device measured -> a Summary (scoring) -> the run's files
(outputs), and the exit code the command line returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.outputs import record
from edgeperf.run import device_state
from edgeperf.run.querylog import QueryLogCollector
from edgeperf.run.spec import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_VALID,
    Reporter,
    RunOptions,
    RunResult,
    RunSpec,
)
from edgeperf.scoring.inputs import score_input, score_input_summary, score_with_settings
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings, effective_settings


@dataclass
class Measured:
    """What a run gathered on the device, handed from the execution to the finishing."""

    spec: RunSpec
    options: RunOptions
    rec: dict[str, Any]  # result.json, as far as it is known
    collector: QueryLogCollector
    out: Path
    reply: dict[str, Any] = field(default_factory=dict)  # the agent's answer to "run"
    errors: list[str] = field(default_factory=list)
    power: Any = None  # the PowerSession, with a meter
    qsl: np.ndarray | None = None  # QSL index of each position in the pushed set
    files: dict[str, bytes] = field(default_factory=dict)  # an official LoadGen run's logs


@dataclass(frozen=True)
class _Written:
    """What outputs/record.write_run reads of a run (until it takes the trace limit itself)."""

    settings: TestSettings
    conf_files: list[str]
    trace_all: bool


def finish(m: Measured, say: Reporter) -> RunResult:
    s, rec, reply, errors, out = m.spec.settings, m.rec, m.reply, m.errors, m.out
    q = m.collector.data(start_ns=int(reply.get("start_ns", 0)))
    q.qsl_index = m.qsl
    if q.rows and not reply.get("start_ns"):
        q.start_ns = int(q.issue_ns[0])  # the run's own start never arrived: use its first issue
    rec["run"] = {k: reply.get(k) for k in ("rows", "start_ns", "end_ns", "stop_reason",
                                             "batched", "warmup_ns_per_sample", "wall_anchor",
                                             "querylog_bytes", "n_samples", "cpu_affinity",
                                             "offline_sample_count", "batch", "busy_flushes",
                                             "generated_query_count")}
    rec["run"]["rows_received"] = q.rows
    rec.update(device_state.throttling(rec["telemetry"], rec["run"].get("cpu_affinity")))
    rec["warnings"] = device_state.warnings_for(rec)
    summarised = "latencies_sorted_ns" in reply
    if summarised:
        rec["run"]["querylog"] = "summary"
        lat = reply["latencies_sorted_ns"]
        np.save(out / "latencies_sorted.npy", lat)
        if len(lat) != reply.get("rows"):
            errors.append(f"the device summarised {reply.get('rows')} queries but sent "
                          f"{len(lat)} latencies")
    elif reply.get("checksum") is not None:
        ok = q.checksum() == int(reply["checksum"])
        rec["run"]["checksum_ok"] = ok
        if not ok:
            errors.append("the QueryLog received does not match the device's checksum")
    summary: Summary | None = None
    warm = reply.get("warmup_ns_per_sample") or 0
    eff = effective_settings(s, expected_qps=1e9 / warm if warm else None,
                             total_sample_count=reply.get("n_samples"))
    if s.scenario == "Offline" and reply.get("offline_sample_count"):
        eff.samples_per_query = int(reply["offline_sample_count"])  # the device decided
    rec["settings"]["effective"] = eff.to_dict()
    audit_reasons = list((rec.get("audit") or {}).get("invalid_reasons", []))
    if q.rows or summarised:
        inp = score_input_summary(s.scenario, reply) if summarised else score_input(s.scenario, q)
        summary = score_with_settings(inp, s, eff, extra_invalid_reasons=errors + audit_reasons)
    elif not errors:
        errors.append("the run produced no queries")
    if m.power is not None:  # the power record; a failed meter leaves the latencies as they are
        rec["power"] = m.power.finish(q, summary, s.scenario, reply)
    written = _Written(s, list(m.spec.conf_files), m.options.trace_all)
    result = record.write_run(out, written, eff, rec, q, summary, errors)  # type: ignore[arg-type]
    code = EXIT_VALID
    if errors:
        code = EXIT_ERROR
    elif summary is None or not summary.valid:
        code = EXIT_INVALID
    elif rec.get("power") and not rec["power"]["valid"]:
        code = EXIT_INVALID  # a power run whose power result is invalid
    say("done", {"out": str(out), "valid": bool(summary and summary.valid)})
    return RunResult(out, summary, code, "; ".join(errors) or None,
                     summary.invalid_reasons if summary else errors, result, s.scenario)
