"""One benchmark run on a session: push the model and samples, run the scenario, collect the
QueryLog; then run/finish.py scores it and writes the outputs.

Whatever fails, what the device measured is kept: QueryLog stretches are spilled to the run
directory as they arrive, and a run cut short is scored on what arrived and marked INVALID
with the reason.

``execute(spec)`` is a run on a session of its own (a link opened and closed for the run, as
the command line does); ``run_on(session, spec)`` is one of many runs on a kept session.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.boards.profile import BoardProfile, load_board
from edgeperf.errors import AgentDied, AgentError, AgentTimeout, LinkError, RunError
from edgeperf.models.resolve import ModelRef, resolve_model
from edgeperf.outputs import record
from edgeperf.run import device_state, official
from edgeperf.run.finish import Measured, finish
from edgeperf.run.querylog import QueryLogCollector
from edgeperf.run.samples import check_dynamic_inputs, generate_samples, loaded_set_order
from edgeperf.run.session import Session
from edgeperf.run.spec import (
    DEFAULT_SAMPLE_COUNT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    AfterRun,
    Reporter,
    RunOptions,
    RunOutcome,
)
from edgeperf.run.spec import RunSpec as CoreRunSpec
from edgeperf.scoring.inputs import score_input, score_input_summary
from edgeperf.settings import TestSettings, effective_settings


class _AgentGone(RunError, AgentDied):
    """The agent was gone before the run started: a RunError (nothing was measured) that a
    session's user can also catch as AgentDied (connect again)."""


@dataclass
class RunSpec(CoreRunSpec):
    """A RunSpec that carries its caller's RunOptions in it (the form callers used before
    RunOptions; ``execute`` splits it). New code passes ``options=RunOptions(...)``."""

    trace_all: bool = False
    after_run: AfterRun | None = None
    record_extra: dict[str, Any] = field(default_factory=dict)


def _split(spec: CoreRunSpec, options: RunOptions | None) -> tuple[CoreRunSpec, RunOptions]:
    if not isinstance(spec, RunSpec):
        return spec, options or RunOptions()
    core = CoreRunSpec(**{f.name: getattr(spec, f.name) for f in fields(CoreRunSpec)})
    return core, options or RunOptions(spec.trace_all, spec.after_run, spec.record_extra)


def prepare(spec: CoreRunSpec) -> tuple[TestSettings, BoardProfile, ModelRef]:
    """What is refused before any device is involved: settings, board, model."""
    s = spec.settings.validate()
    profile = spec.board if isinstance(spec.board, BoardProfile) else load_board(spec.board)
    return s, profile, resolve_model(spec.model)


def execute(spec: CoreRunSpec, report: Reporter | None = None,
            options: RunOptions | None = None) -> RunOutcome:
    """Run one benchmark on a link of its own; never loses what was measured. Raises
    RunError before a run."""
    spec, options = _split(spec, options)
    s, profile, model = prepare(spec)
    try:
        session = Session.open(profile, report, needs_runtime=model.backend == "tflite")
    except LinkError as exc:
        raise RunError(str(exc)) from None
    with session:
        return _run(session, spec, options, report, s, model, close_after=True)


def run_on(session: Session, spec: CoreRunSpec, report: Reporter | None = None,
           options: RunOptions | None = None) -> RunOutcome:
    """One run on an open session (its link and agent stay open for the next)."""
    spec, options = _split(spec, options)
    session.check_usable()
    s, _, model = prepare(dataclasses.replace(spec, board=session.profile))
    if model.backend == "tflite":
        session.check_runtime()
    return _run(session, spec, options, report, s, model)


def check_backend(info: dict[str, Any], backend: str, board: str, deploy: Any = None) -> None:
    """A model whose runtime the device lacks is refused before anything is pushed, with
    the install command (the agent's hello says which backends it can import; an SSH
    board's device check, which imported them, wins: it names the Python to install into)."""
    found = ((deploy.check if deploy is not None else None) or info).get("backends") or {}
    have = found.get(backend) or (info.get("backends") or {}).get(backend)
    if backend == "synthetic" or have is None or have.get("available"):
        return  # an agent that predates "backends" answers at load_model
    install = str(have.get("install"))
    if deploy is not None and install.startswith("pip install"):
        install = f"{deploy.python} -m {install}"
        if deploy.check.get("externally_managed") and not deploy.check.get("in_venv"):
            install += (" (the OS manages this Python: make a venv, python3 -m venv "
                        "~/edgeperf-venv, install there, and set link.python = "
                        "\"~/edgeperf-venv/bin/python\" in the board profile)")
    raise RunError(f"board {board}: the {backend} backend is not available on the device "
                   f"({have.get('error') or 'not installed'}); install it there: {install}")


def _agent_settings(req: TestSettings, eff: TestSettings) -> dict[str, Any]:
    offline = req.scenario == "Offline"
    return {
        "scenario": req.scenario,
        "min_duration_ns": int(req.min_duration_ms) * 1_000_000,
        "max_duration_ns": int(req.max_duration_ms) * 1_000_000,
        # Offline: the agent counts samples of its one query, as requested
        "min_query_count": int(req.min_query_count),
        "max_query_count": int(req.max_query_count),
        "samples_per_query": 1 if offline else int(eff.samples_per_query or 1),
        "offline_sample_count": int(eff.samples_per_query or 0) if offline else 0,
        "target_qps": float(eff.target_qps or req.target_qps),
        "sample_index_rng_seed": int(req.sample_index_rng_seed),
        "schedule_rng_seed": int(req.schedule_rng_seed),
        "warmup_queries": int(req.warmup_queries),
        # SingleStream/MultiStream: LoadGen's target QPS (1e9 / it) sizes TEST01's sampling
        "expected_latency_ns": int(eff.target_latency_ns or 0)
        if req.scenario in ("SingleStream", "MultiStream") else 0,
        "performance_issue_same": bool(req.performance_issue_same),
        "performance_issue_same_index": int(req.performance_issue_same_index),
        "accuracy_log_rng_seed": int(req.accuracy_log_rng_seed),
        "accuracy_log_probability": float(req.accuracy_log_probability),
        "accuracy_log_sampling_target": int(req.accuracy_log_sampling_target),
    }


def _run(session: Session, spec: CoreRunSpec, options: RunOptions, report: Reporter | None,
         s: TestSettings, model: ModelRef, close_after: bool = False) -> RunOutcome:
    say = report or (lambda ev, data: None)
    # a repaired cache entry's one line: the reporter's news, else stderr
    notice = (lambda text: say("task", {"message": text})) if report else None
    profile, client = session.profile, session.client
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = record.new_record(profile, model, spec)
    rec.update(options.record_extra)
    rec["driver"] = official.DRIVERS[spec.loadgen]
    m = Measured(spec, options, rec, QueryLogCollector(out / "querylog.spill"), out)
    first = session.runs == 0
    session.runs += 1
    governor = device_state.GovernorControl(client, profile)
    stage = "setup"
    try:
        if spec.loadgen == "official":
            official.check_device(session.info, profile.name)
        check_backend(session.info, model.backend, profile.name, session.deploy)
        if session.deploy is not None:  # an SSH board: the agent was shipped (on the first run)
            rec["deploy"] = session.deploy.to_dict()
            rec["transfers"]["agent_bytes_sent"] = session.deploy.uploaded_bytes if first else 0
        rec["device"] = dict(session.info)
        rec["telemetry"]["before"] = client.telemetry()
        samples_sha = None
        n_samples = s.performance_sample_count or spec.sample_count
        if spec.samples is not None:
            n_samples = len(spec.samples[0])
        elif spec.fit_samples is not None and spec.qsl_indices is not None:
            n_samples = len(spec.qsl_indices)
        qsl = (np.asarray(spec.qsl_indices, np.int64) if spec.qsl_indices is not None else
               loaded_set_order(n_samples, s.qsl_rng_seed))
        m.qsl = qsl
        rec["samples"] = {"count": n_samples, "qsl_first": qsl[:16].tolist()}
        if model.data is not None:  # a model file: tflite, onnx or executorch
            sha, sent = client.push_model(model.data, lambda d, t: say("push", {
                "what": "model", "done": d, "total": t}), name=model.name, notice=notice,
                fmt=model.backend)
            rec["transfers"]["model_bytes_sent"] = sent
            opts = {"num_threads": spec.threads} if spec.threads else {}
            opts.update(spec.load_options)
            details = client.load_model(model.backend, sha256=sha, options=opts)
            if spec.samples is not None:
                arrays = spec.samples
            elif spec.fit_samples is not None:  # a task's data, fitted to the loaded model
                arrays = spec.fit_samples(details["inputs"])
            else:  # QSL samples 0..n-1, generated, then laid out in loaded-set order
                check_dynamic_inputs(details["inputs"], opts.get("input_shapes"))
                arrays = [a[qsl] for a in generate_samples(details["inputs"], n_samples,
                                                           s.qsl_rng_seed)]
            samples_sha, sent = client.push_samples(arrays, lambda d, t: say("push", {
                "what": "samples", "done": d, "total": t}), notice=notice)
            rec["transfers"]["samples_bytes_sent"] = sent
            rec["samples"].update(sha256=samples_sha, generated=spec.samples is None
                                  and spec.fit_samples is None,
                                  seed=s.qsl_rng_seed)
        else:
            details = client.load_model("synthetic", kind=model.kind)
        rec["model"]["details"] = details
        m.power = _open_power(spec, profile, client, out, say, model.name)
        collector = m.collector

        def on_event(header: dict[str, Any], body: bytes,
                     into: QueryLogCollector | None = None) -> None:
            if header.get("event") == "querylog":
                (into or collector).add(int(header["first"]), int(header["rows"]),
                                        int(header["samples_per_row"]), body)
            elif header.get("event") == "progress":
                say("progress", header)

        eff = effective_settings(s, total_sample_count=n_samples)
        rec["cool_down"] = device_state.cool_down(client, profile, say)
        rec["governor"] = governor.apply()

        def run_phase(phase: str = "testing") -> dict[str, Any]:
            """One run of the workload; a power ranging run's QueryLog goes to m.ranging
            (whole before the testing run replaces it on the device), its reply kept."""
            say("run", {"scenario": s.scenario, "phase": phase})
            into = collector if phase == "testing" else m.ranging
            reply = client.run(_agent_settings(s, eff), samples=samples_sha,
                               sample_count=n_samples, idle_timeout=spec.run_idle_timeout,
                               on_event=lambda h, b: on_event(h, b, into),
                               cpu_affinity=profile.cpu_affinity, querylog=spec.querylog)
            if phase == "ranging":
                m.ranging_reply = reply
                _fetch_rest(client, m.ranging, reply)
            return reply

        if spec.loadgen == "official":  # an error before LoadGen's files arrive: nothing kept
            rec["settings"]["loadgen"] = lgs = official.loadgen_settings(s, eff)
            say("run", {"scenario": s.scenario, "phase": "testing"})
            m.reply, m.files = official.run(
                client, lgs, samples=samples_sha, sample_count=n_samples,
                qsl_indices=qsl.tolist(), qsl_total=spec.qsl_total or n_samples,
                warmup_queries=s.warmup_queries, idle_timeout=spec.run_idle_timeout,
                cpu_affinity=profile.cpu_affinity)
            m.reply["rows"] = 0
        stage = "run"
        if spec.loadgen != "official":
            m.reply = m.power.measure(run_phase) if m.power else run_phase()
        while collector.rows < m.reply["rows"] and "latency_summary" not in m.reply:
            hdr, body = client.results(first=collector.rows)  # fetch the rest
            if not hdr["rows"]:
                break
            collector.add(int(hdr["first"]), int(hdr["rows"]), int(hdr["samples_per_row"]), body)
        if (m.reply.get("logged_outputs") or {}).get("count"):  # TEST01: the logged outputs
            m.logged = client.logged_outputs()
        if options.after_run is not None:
            say("audit", {})
            rec["audit"] = options.after_run(client, {"samples_sha": samples_sha,
                                                      "details": details,
                                                      "querylog": collector.data()})
        if spec.profile_ops:  # after the scored run, in the runtime's own profiler
            rec["op_profile"] = _profile_ops(client, samples_sha, spec.profile_ops, out, say)
        rec["telemetry"]["before_run"] = m.reply.get("telemetry_before")
        rec["telemetry"]["after_run"] = m.reply.get("telemetry_after")
        rec["telemetry"]["after"] = client.telemetry()
        governor.restore()
    except AgentDied as exc:
        session.mark_dead(f"it died: {exc}")
        if stage != "run":
            raise _AgentGone(f"{profile.name}: {exc}", "Died", exc.op) from None
        m.errors.append(f"the agent died during the run: {exc}")
    except AgentError as exc:
        if isinstance(exc, AgentTimeout):
            session.mark_dead(f"it did not answer: {exc}")
        if stage != "run":  # nothing measured yet: a plain, early error
            raise RunError(f"{profile.name}: {exc}") from None
        m.errors.append(f"agent error during the run: {exc}")
    except KeyboardInterrupt:
        m.errors.append("interrupted by the user (Ctrl-C)")
        session.mark_dead("a run on it was interrupted")  # the agent may be mid-scenario
    finally:
        governor.restore()  # no-op when restored above or never set; never raises
        m.collector.close()
        if m.power is not None:
            m.power.close()
    if close_after:
        session.close()
    line = session.line_stats()
    if line is not None:  # a serial line's own account
        rec["transfers"]["line"] = line
    if stage != "run":
        raise RunError(f"{profile.name}: " + "; ".join(m.errors))
    return official.finish(m, say) if spec.loadgen == "official" else finish(m, say)


def _profile_ops(client: Any, samples_sha: str | None, runs: int, out: Path,
                 say: Reporter) -> dict[str, Any]:
    """--profile-ops: op_profile.csv and its record; a runtime without a profiler, or one
    that fails, is recorded as such and never costs the run what it measured."""
    from edgeperf.outputs import op_profile

    say("op_profile", {"runs": runs})
    try:
        table = client.profile_ops(samples_sha, runs)
    except AgentError as exc:
        if isinstance(exc, (AgentDied, AgentTimeout)):
            raise
        rec = {"available": False, "message": str(exc), "kind": exc.kind}
    else:
        op_profile.write_csv(out / op_profile.FILE, table)
        rec = op_profile.record(table)
    say("op_profile_done", rec)
    return rec


def _fetch_rest(client: Any, collector: QueryLogCollector, reply: dict[str, Any]) -> None:
    """The QueryLog rows of the run that did not arrive as events."""
    while collector.rows < reply["rows"] and "latency_summary" not in reply:
        hdr, body = client.results(first=collector.rows)
        if not hdr["rows"]:
            break
        collector.add(int(hdr["first"]), int(hdr["rows"]), int(hdr["samples_per_row"]), body)


def _open_power(spec: CoreRunSpec, profile: BoardProfile, client: Any, out: Path,
                say: Reporter, label: str) -> Any:
    """The run's PowerSession when a meter is asked for (--meter or the board's [meter])."""
    url = spec.meter or profile.meter_url
    if not url:
        return None
    from edgeperf.power.meter import MeterError
    from edgeperf.power.session import PowerSession

    try:
        return PowerSession.open(url, client, out, idle_s=spec.idle_baseline_s, report=say,
                                 label="".join(c if c.isalnum() or c in "-_" else "-"
                                               for c in label))
    except MeterError as exc:  # nothing measured yet: the run does not start
        raise RunError(f"{profile.name}: meter {url}: {exc}") from None


# the names callers imported from here before the split
__all__ = ["DEFAULT_SAMPLE_COUNT", "EXIT_ERROR", "EXIT_INVALID", "EXIT_USAGE", "EXIT_VALID",
           "ModelRef", "RunError", "RunOptions", "RunOutcome", "RunSpec", "check_dynamic_inputs",
           "execute", "generate_samples", "prepare", "resolve_model", "run_on", "score_input",
           "score_input_summary"]
