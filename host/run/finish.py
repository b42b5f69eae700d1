"""The end of a run: what the device measured -> a Summary (scoring) -> the run's files
(outputs), and the exit code the command line returns.

A results directory that fills (during the run: the spill stops; at the end: the outputs
cannot be written) ends the run with EXIT_ERROR and an error naming the directory, its free
space, what the spill holds and the ``edgeperf score`` command that rebuilds the outputs
from it. The run's settings go into the spill's reserved slot first, for that command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.outputs.model_costs import costs_record
from edgeperf.outputs import record
from edgeperf.outputs.disk import free_space, is_disk_full, why
from edgeperf.run import device_state
from edgeperf.run.querylog import QueryLogCollector, QueryLogData, write_spill_meta
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
from edgeperf.store.record import record_run_safely


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
    logged: list[tuple[int, int, bytes]] = field(default_factory=list)  # (seq, position, out)
    ranging: QueryLogCollector = field(default_factory=QueryLogCollector)  # a power ranging run
    ranging_reply: dict[str, Any] = field(default_factory=dict)  # its answer to "run"


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
    costs = costs_record(reply.get("model_costs"), (rec.get("model") or {}).get("details"))
    if costs:  # init, first inference, warm-up, memory: benchmark_model's figures, unscored
        rec["model_costs"] = costs
        say("model_costs", costs)
    mode = reply.get("querylog_mode")
    if mode:  # what the agent chose for --querylog auto, and why (it says so on stderr too)
        rec["run"]["querylog_mode"] = mode
        if mode.get("requested") == "auto" and mode.get("used") == "summary":
            say("querylog", mode)
    rec.update(device_state.throttling(rec["telemetry"], rec["run"].get("cpu_affinity")))
    rec["warnings"] = device_state.warnings_for(rec)
    summarised = "latencies_sorted_ns" in reply
    if summarised:  # q holds the first stretch: the run's end is the device's own
        q.last_done_ns = _summary_last_done(reply)
        rec["run"]["querylog"] = "summary"
        lat = reply["latencies_sorted_ns"]
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
        rq = _ranging_querylog(m)
        rec["power"] = m.power.finish(q, summary, s.scenario, reply, ranging_q=rq)
        _write_ranging_logs(m, rq)
    written = _Written(s, list(m.spec.conf_files), m.options.trace_all)
    logged = reply.get("logged_outputs")
    if logged is None and (s.accuracy_log_sampling_target or s.accuracy_log_probability) \
            and reply.get("rows"):
        errors.append("the run asked for accuracy-log sampling (TEST01) but the device "
                      "reported no logged outputs: update edgeperf on the device")
    if logged is not None:  # TEST01: LoadGen logs these samples' responses in performance mode
        rec["run"]["logged_outputs"] = dict(logged, received=len(m.logged))
        if len(m.logged) != logged.get("count"):
            errors.append(f"the device logged {logged.get('count')} outputs but "
                          f"{len(m.logged)} arrived")
    qsl_of = m.qsl if m.qsl is not None else None
    accuracy = [(seq, int(qsl_of[pos]) if qsl_of is not None else pos, data)
                for seq, pos, data in m.logged]
    spill = m.collector.spill_error
    if spill:
        rec["run"]["spill_error"] = spill  # the outputs below hold every row; only noted
    write_spill_meta(out / "querylog.spill", spill_meta(rec, s, eff, q))
    try:
        if summarised:
            np.save(out / "latencies_sorted.npy", reply["latencies_sorted_ns"])
        result = record.write_run(out, written, eff, rec, q, summary,  # type: ignore[arg-type]
                                  errors, accuracy=accuracy)
    except OSError as exc:
        error = outputs_not_written(out, exc, m.collector, q.rows)
        say("done", {"out": str(out), "valid": False})
        return RunResult(out, summary, EXIT_ERROR, error, [error], rec, s.scenario)
    record_run_safely(out)  # the results store; a store that fails only warns
    if m.power is not None:  # power-dev's files hash the LoadGen logs: written last
        m.power.write_session_files(rec["power"])
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


def spill_meta(rec: dict[str, Any], s: TestSettings, eff: TestSettings,
               q: QueryLogData) -> dict[str, Any]:
    """What ``edgeperf score RUN_DIR/querylog.spill`` needs to rebuild the run's outputs;
    the QSL order when it fits the spill's slot (8 KiB), the board by name when it does not."""
    keep = ("schema", "command", "edgeperf_version", "created", "board", "model", "driver")
    r = {k: rec[k] for k in keep if k in rec}
    r["model"] = {k: v for k, v in (r.get("model") or {}).items() if k != "details"}
    meta = {"scenario": s.scenario, "requested": s.to_dict(), "effective": eff.to_dict(),
            "start_ns": int(q.start_ns), "rows_measured": int(q.rows), "record": r,
            "run": {k: (rec.get("run") or {}).get(k) for k in ("wall_anchor", "stop_reason")}}
    if q.qsl_index is not None and len(q.qsl_index) <= 512:
        meta["qsl"] = [int(i) for i in q.qsl_index]
    if len(str(meta)) > 7000:
        meta.pop("qsl", None)
        r["board"] = {"name": (r.get("board") or {}).get("name", "")}
    return meta


def outputs_not_written(out: Path, exc: OSError, collector: QueryLogCollector,
                        measured: int) -> str:
    """The error of a run whose outputs could not be written: where, how much room, what
    the spill holds, and the command that rebuilds the outputs from it."""
    spill = out / "querylog.spill"
    full = is_disk_full(exc)
    what = (f"the results directory {out} is full ({free_space(out)}): writing the run's "
            f"outputs failed: {why(exc)}" if full else
            f"the run's outputs could not be written to {out}: {exc}")
    if collector.spill_error:
        what += f"; earlier, during the run, {collector.spill_error}"
    kept = collector.spilled_rows
    if kept and spill.exists():
        lost = f" (the other {measured - kept} were lost when the disk filled)" \
            if kept < measured else ""
        what += (f". Files already in {out} were left as they were; {spill} holds {kept} of "
                 f"the {measured} queries measured{lost}. Free space there (or move the spill "
                 f"to a disk with room) and rebuild the outputs: edgeperf score {spill}")
    else:
        what += ". Nothing of the run could be kept: free space there and run again"
    return what


def _ranging_querylog(m: Measured) -> QueryLogData:
    rq = m.ranging.data(start_ns=int(m.ranging_reply.get("start_ns", 0)))
    rq.qsl_index = m.qsl
    if "latencies_sorted_ns" in m.ranging_reply:
        rq.last_done_ns = _summary_last_done(m.ranging_reply)
    return rq


def _summary_last_done(reply: dict[str, Any]) -> int:
    """A summary-mode run's last completion on the device clock (its latency summary)."""
    return int(reply.get("start_ns") or 0) + int(
        (reply.get("latency_summary") or {}).get("final_done_ns") or 0)


def _write_ranging_logs(m: Measured, q: QueryLogData) -> None:
    """ranging/mlperf_log_{summary,detail}.txt (and the trace and accuracy log): the power
    ranging run scored and written as the testing run is, with power_begin/power_end on its
    own window. Its validity is its own: the testing result never reads it."""
    reply, s = m.ranging_reply, m.spec.settings
    summarised = "latencies_sorted_ns" in reply
    if not reply or not (q.rows or summarised):
        return
    errors: list[str] = []
    if not summarised and reply.get("checksum") is not None and \
            q.checksum() != int(reply["checksum"]):
        errors.append("the ranging run's QueryLog received does not match the device's checksum")
    warm = reply.get("warmup_ns_per_sample") or 0
    eff = effective_settings(s, expected_qps=1e9 / warm if warm else None,
                             total_sample_count=reply.get("n_samples"))
    if s.scenario == "Offline" and reply.get("offline_sample_count"):
        eff.samples_per_query = int(reply["offline_sample_count"])
    inp = score_input_summary(s.scenario, reply) if summarised else score_input(s.scenario, q)
    summary = score_with_settings(inp, s, eff, extra_invalid_reasons=errors)
    power = m.rec["power"]
    w = (power.get("ranging") or {}).get("window")
    record.write_logs(m.out / "ranging", s, eff, m.rec, q, summary, errors, (), reply.get(
        "wall_anchor") or {}, m.options.trace_all, {
        "power_window_wall_ns": (w["wall_start_ns"], w["wall_end_ns"]) if w else None,
        "extra": {"edgeperf_power_phase": "ranging"}})
    power["files"].update(ranging_summary="ranging/mlperf_log_summary.txt",
                          ranging_detail="ranging/mlperf_log_detail.txt")
    power.setdefault("ranging", {})["result"] = summary.result
