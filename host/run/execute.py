"""One benchmark run, end to end: profile -> link -> agent -> QueryLog -> scoring -> outputs.

Whatever fails, what the device measured is kept: QueryLog stretches are spilled to the run
directory as they arrive, and a run cut short is scored on what arrived and marked INVALID
with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.boards.profile import BoardProfile, load_board, open_link
from edgeperf.links.base import LinkError
from edgeperf.outputs import record
from edgeperf.run import device_state
from edgeperf.run.client import AgentClient, AgentDied, AgentError
from edgeperf.run.querylog import QueryLogCollector, QueryLogData
from edgeperf.scoring.loadgen import NS_PER_S, ScoreInput, Summary, score
from edgeperf.settings import TestSettings, effective_settings
from edgeperf_agent.backends import BackendError, check_tflite_bytes
from edgeperf_agent.lgseq import loaded_sample_set

EXIT_VALID, EXIT_ERROR, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3
DEFAULT_SAMPLE_COUNT = 256


class RunError(Exception):
    """A run could not start; the message names the problem and the fix."""


@dataclass
class ModelRef:
    spec: str
    backend: str  # "tflite" | "synthetic"
    name: str
    data: bytes | None = None
    kind: str = ""  # synthetic kind

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None


def resolve_model(spec: str) -> ModelRef:
    if spec.startswith("synthetic:"):
        return ModelRef(spec, "synthetic", spec, kind=spec.split(":", 1)[1])
    if spec.startswith("builtin:"):
        from edgeperf.models.builtin import builtin_model

        name = spec.split(":", 1)[1]
        try:
            return ModelRef(spec, "tflite", spec, data=builtin_model(name))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    path = Path(spec)
    if not path.exists():
        raise RunError(f"model file {spec} does not exist; pass a .tflite path, "
                       "builtin:NAME (see 'edgeperf models') or synthetic:null|busy:US")
    if path.is_dir():
        raise RunError(f"model {spec} is a directory; pass a .tflite file")
    data = path.read_bytes()
    try:
        check_tflite_bytes(data)
    except BackendError as exc:
        raise RunError(f"{spec}: {exc}") from None
    _check_builtin_ops(spec, data)
    return ModelRef(spec, "tflite", path.name, data=data)


def _check_builtin_ops(spec: str, data: bytes) -> None:
    """Refuse, before anything is pushed, a model that needs custom or TensorFlow ops."""
    from edgeperf.models.tflite_reader import TfliteReadError, read_model, unsupported_ops_message

    try:
        problem = unsupported_ops_message(read_model(data))
    except TfliteReadError:
        return  # the runtime on the device gives its own word on a file it cannot read
    if problem:
        raise RunError(f"{spec}: {problem}")


def generate_samples(inputs: list[dict[str, Any]], n: int, seed: int) -> list[np.ndarray]:
    """A seeded sample set that fits the model's inputs (for models without a dataset)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for info in inputs:
        shape = [max(1, d) for d in info["shape"][1:]]
        dt = np.dtype(info["dtype"])
        if dt.kind == "f":
            a = rng.uniform(-1.0, 1.0, size=[n, *shape]).astype(dt)
        elif dt.kind in "iu":
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            a = rng.integers(lo, hi, size=[n, *shape], endpoint=True, dtype=dt)
        elif dt.kind == "b":
            a = rng.integers(0, 2, size=[n, *shape]).astype(dt)
        else:
            raise RunError(f"input {info['name']!r} has dtype {dt.name}, for which edgeperf "
                           "cannot generate samples; supply a dataset")
        arrays.append(a)
    return arrays


def score_input(scenario: str, q: QueryLogData) -> ScoreInput:
    """Turn the device's timestamps into what LoadGen's scoring reads."""
    if q.rows == 0:
        return ScoreInput(scenario, np.zeros(0, np.int64), np.zeros(0, np.int64))
    lat = q.done_ns - q.issue_ns
    start = q.start_ns
    if scenario == "Offline":
        return ScoreInput(scenario, lat, np.array([int(lat.max())], np.int64))
    if scenario == "MultiStream":
        return ScoreInput(scenario, np.repeat(lat, q.samples_per_row), lat,
                          final_issue_ns=int(q.issue_ns[-1] - start))
    if scenario == "Server":
        return ScoreInput(scenario, lat, lat, final_scheduled_ns=int(q.issue_ns[-1] - start),
                          final_done_ns=int(q.done_ns.max() - start))
    return ScoreInput(scenario, lat, lat, final_issue_ns=int(q.issue_ns[-1] - start))


def score_input_summary(scenario: str, reply: dict[str, Any]) -> ScoreInput:
    """The same from a summarised run: every latency, sorted, and the last issue and
    completion times (all that LoadGen's scoring reads; only per-query order is gone)."""
    lat = reply["latencies_sorted_ns"]
    ls = reply["latency_summary"]
    fin_issue, fin_done = int(ls["final_issue_ns"]), int(ls["final_done_ns"])
    if scenario == "Offline":
        return ScoreInput(scenario, lat, np.array([int(lat[-1])], np.int64))
    if scenario == "MultiStream":
        return ScoreInput(scenario, np.repeat(lat, int(reply["samples_per_row"])), lat,
                          final_issue_ns=fin_issue)
    if scenario == "Server":
        return ScoreInput(scenario, lat, lat, final_scheduled_ns=fin_issue,
                          final_done_ns=fin_done)
    return ScoreInput(scenario, lat, lat, final_issue_ns=fin_issue)


@dataclass
class RunSpec:
    model: str
    settings: TestSettings  # as requested (presets, conf files, flags); resolved per run
    board: str | BoardProfile = "local"
    out_dir: Path = Path("results")
    threads: int | None = None
    sample_count: int = DEFAULT_SAMPLE_COUNT
    run_idle_timeout: float = 120.0
    conf_files: list[str] = field(default_factory=list)
    trace_all: bool = False  # every query in mlperf_log_trace.json (default: the first 10,000)
    # A task's run (host/tasks.py) brings its own samples, load options and output audit:
    samples: list[np.ndarray] | None = None  # the sample set (default: generated)
    # the QSL index of each of ``samples``, in LoadGen's loaded-set order (the agent's
    # QueryLog holds positions in the set; querylog.npz maps them back with qsl_index)
    qsl_indices: list[int] | None = None
    load_options: dict[str, Any] = field(default_factory=dict)  # e.g. input_shapes
    after_run: AfterRun | None = None  # called after the timed run, same agent and model
    record_extra: dict[str, Any] = field(default_factory=dict)  # merged into result.json
    meter: str | None = None  # power meter URL (default: the board profile's [meter] url)
    idle_baseline_s: float = 0.0  # measure the idle device this long before the run
    # "summary": the device keeps the QueryLog and sends its sorted latencies (exact scoring,
    # few bytes: for long runs over slow links) and the first 10,000 queries for the trace
    querylog: str = "full"


@dataclass
class RunOutcome:
    out_dir: Path
    summary: Summary | None
    exit_code: int
    error: str | None = None
    invalid_reasons: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


Reporter = Callable[[str, dict[str, Any]], None]
# after_run(client, {"samples_sha", "querylog", "details"}) -> a record for result.json; its
# "invalid_reasons" make the run INVALID (host/audit.py: the output audit)
AfterRun = Callable[[AgentClient, dict[str, Any]], dict[str, Any]]


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
    }


def execute(spec: RunSpec, report: Reporter | None = None) -> RunOutcome:
    """Run one benchmark; never loses what was measured. Raises RunError before a run."""
    say = report or (lambda ev, data: None)
    s = spec.settings.validate()
    profile = spec.board if isinstance(spec.board, BoardProfile) else load_board(spec.board)
    model = resolve_model(spec.model)
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = record.new_record(profile, model, spec)
    rec.update(spec.record_extra)
    collector = QueryLogCollector(out / "querylog.spill")
    errors: list[str] = []
    reply: dict[str, Any] = {}
    power = None
    try:
        link = open_link(profile, report=say, needs_runtime=model.backend == "tflite")
    except LinkError as exc:
        raise RunError(str(exc)) from None
    client = AgentClient(link)
    governor = device_state.GovernorControl(client, profile)
    stage = "setup"
    try:
        say("connect", {"board": profile.name, "link": link.describe()})
        if getattr(link, "deploy", None) is not None:  # an SSH board: the agent was shipped
            rec["deploy"] = link.deploy.to_dict()
            rec["transfers"]["agent_bytes_sent"] = link.deploy.uploaded_bytes
        rec["device"] = client.hello()
        say("hello", rec["device"])
        rec["telemetry"]["before"] = client.telemetry()
        samples_sha = None
        n_samples = s.performance_sample_count or spec.sample_count
        if spec.samples is not None:
            n_samples = len(spec.samples[0])
        # the sample set goes to the device in LoadGen's loaded-set order, so that LoadGen's
        # sample positions (device_agent/lgseq.py) name the samples LoadGen would issue
        qsl = (np.asarray(spec.qsl_indices, np.int64) if spec.qsl_indices is not None else
               np.asarray(loaded_sample_set(n_samples, n_samples, s.qsl_rng_seed,
                                            "SingleStream")[:n_samples], np.int64))
        rec["samples"] = {"count": n_samples, "qsl_first": qsl[:16].tolist()}
        if model.backend == "tflite":
            assert model.data is not None
            sha, sent = client.push_model(model.data, lambda d, t: say("push", {
                "what": "model", "done": d, "total": t}))
            rec["transfers"]["model_bytes_sent"] = sent
            opts = {"num_threads": spec.threads} if spec.threads else {}
            opts.update(spec.load_options)
            details = client.load_model("tflite", sha256=sha, options=opts)
            if spec.samples is None:
                check_dynamic_inputs(details["inputs"], opts.get("input_shapes"))
            if spec.samples is not None:
                arrays = spec.samples
            else:  # QSL samples 0..n-1, generated, then laid out in loaded-set order
                arrays = [a[qsl] for a in generate_samples(details["inputs"], n_samples,
                                                           s.qsl_rng_seed)]
            samples_sha, sent = client.push_samples(arrays, lambda d, t: say("push", {
                "what": "samples", "done": d, "total": t}))
            rec["transfers"]["samples_bytes_sent"] = sent
            rec["samples"].update(sha256=samples_sha, generated=spec.samples is None,
                                  seed=s.qsl_rng_seed)
        else:
            details = client.load_model("synthetic", kind=model.kind)
        rec["model"]["details"] = details
        power = _open_power(spec, profile, client, out, say, model.name)

        def on_event(header: dict[str, Any], body: bytes, keep: bool = True) -> None:
            if header.get("event") == "querylog" and keep:
                collector.add(int(header["first"]), int(header["rows"]),
                              int(header["samples_per_row"]), body)
            elif header.get("event") == "progress":
                say("progress", header)

        eff = effective_settings(s, total_sample_count=n_samples)
        rec["cool_down"] = device_state.cool_down(client, profile, say)
        rec["governor"] = governor.apply()

        def run_phase(phase: str = "testing") -> dict[str, Any]:
            """One run of the workload; a power ranging run's QueryLog is not kept."""
            say("run", {"scenario": s.scenario, "phase": phase})
            return client.run(_agent_settings(s, eff), samples=samples_sha,
                              sample_count=n_samples, idle_timeout=spec.run_idle_timeout,
                              on_event=lambda h, b: on_event(h, b, phase == "testing"),
                              cpu_affinity=profile.cpu_affinity, querylog=spec.querylog)

        stage = "run"
        reply = power.measure(run_phase) if power else run_phase()
        while collector.rows < reply["rows"] and "latency_summary" not in reply:  # fetch the rest
            hdr, body = client.results(first=collector.rows)
            if not hdr["rows"]:
                break
            collector.add(int(hdr["first"]), int(hdr["rows"]), int(hdr["samples_per_row"]), body)
        if spec.after_run is not None:
            say("audit", {})
            rec["audit"] = spec.after_run(client, {"samples_sha": samples_sha, "details": details,
                                                   "querylog": collector.data()})
        rec["telemetry"]["before_run"] = reply.get("telemetry_before")
        rec["telemetry"]["after_run"] = reply.get("telemetry_after")
        rec["telemetry"]["after"] = client.telemetry()
        governor.restore()
        client.bye()
    except AgentDied as exc:
        if stage != "run":
            collector.close()
            link.close()
            raise RunError(f"{profile.name}: {exc}") from None
        errors.append(f"the agent died during the run: {exc}")
    except AgentError as exc:
        if stage != "run":  # nothing measured yet: a plain, early error
            collector.close()
            link.close()
            raise RunError(f"{profile.name}: {exc}") from None
        errors.append(f"agent error during the run: {exc}")
    except KeyboardInterrupt:
        errors.append("interrupted by the user (Ctrl-C)")
    finally:
        governor.restore()  # no-op when restored above or never set; never raises
        collector.close()
        if power is not None:
            power.close()
        link.close()
        if getattr(link, "stats", None) is not None:  # a serial line's own account
            rec["transfers"]["line"] = dataclasses.asdict(link.stats)
    if stage != "run":
        raise RunError(f"{profile.name}: " + "; ".join(errors))
    return _finish(spec, rec, collector, reply, errors, out, say, power, qsl)


def _open_power(spec: RunSpec, profile: BoardProfile, client: AgentClient, out: Path,
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


def _finish(spec: RunSpec, rec: dict[str, Any], collector: QueryLogCollector,
            reply: dict[str, Any], errors: list[str], out: Path, say: Reporter,
            power: Any = None, qsl: np.ndarray | None = None) -> RunOutcome:
    s = spec.settings
    q = collector.data(start_ns=int(reply.get("start_ns", 0)))
    q.qsl_index = qsl
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
        summary = score(inp, min_duration_ns=s.min_duration_ms * 1_000_000,
                        min_query_count=eff.min_query_count,
                        # LoadGen: an Offline run must answer every sample of its one query
                        min_sample_count=(eff.samples_per_query or s.min_query_count)
                        if s.scenario == "Offline" else 0,
                        target_latency_ns=(eff.target_latency_ns or 0)
                        if s.scenario == "Server" else 0,
                        target_percentile=eff.target_latency_percentile,
                        extra_invalid_reasons=errors + audit_reasons)
    elif not errors:
        errors.append("the run produced no queries")
    if power is not None:  # the power record; a failed meter leaves the latencies as they are
        rec["power"] = power.finish(q, summary, s.scenario, reply)
    outcome = record.write_run(out, spec, eff, rec, q, summary, errors)
    code = EXIT_VALID
    if errors:
        code = EXIT_ERROR
    elif summary is None or not summary.valid:
        code = EXIT_INVALID
    elif rec.get("power") and not rec["power"]["valid"]:
        code = EXIT_INVALID  # a power run whose power result is invalid
    say("done", {"out": str(out), "valid": bool(summary and summary.valid)})
    return RunOutcome(out, summary, code, "; ".join(errors) or None,
                      summary.invalid_reasons if summary else errors, outcome)


def check_dynamic_inputs(inputs: list[dict[str, Any]], shapes: dict | None) -> None:
    """A model with dynamic dimensions (other than the batch) needs them set: a runtime
    would otherwise allocate them as 1 and the benchmark would time a 1x1 image."""
    for info in inputs:
        sig = info.get("shape_signature") or info["shape"]
        if any(d < 0 for d in sig[1:]) and not (shapes and (info["name"] in shapes
                                                           or (len(inputs) == 1 and "" in shapes))):
            example = ",".join(str(d if d > 0 else 224) for d in [1, *sig[1:]])
            raise RunError(f"input {info['name']!r} has dynamic dimensions (shape signature "
                           f"{sig}); set them with --input-shape {info['name']}:{example}")


def elapsed_s(start_ns: int, now_ns: int) -> float:
    return (now_ns - start_ns) / NS_PER_S


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
