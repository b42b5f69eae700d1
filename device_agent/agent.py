"""The agent's operations: what a device does for the host, one method a request.

The agent executes nothing it was sent: requests name one of the operations below and carry
data (models, sample sets, settings), never code. Each operation takes the request's Call
(dispatch.py: its header, body and the sender of its events) and returns (header, body).

Operations: hello, push_model, load_model, push_samples, run, run_official (the official
LoadGen driving the backend: loadgen_official.py), results, logged_outputs (the outputs a
TEST01 run logged), summary_bytes (a long summary-mode run's latencies, paged), infer, telemetry,
clock, governor (action get | set | restore; set needs write access to scaling_governor: tuning.py),
sensors, sample_power (both read the sysfs root the device is configured with), bye.
``shutdown`` restores the governors the agent changed; the serving loops call it however
the link ends.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import (__version__, infer, loadgen_official, logsend, memory, power, qlcodec, sampleset,
               telemetry, wire)
from .backends import SUFFIXES, Backend, available_runtimes, import_runtime, make_backend
from .check import probe_backends
from .dispatch import AgentError, Call, Op, Reply, Sink, Waiter, dispatch, no_events
from .logsend import LogSender, latency_summary
from .querylog import QueryLog
from .scenarios import RunSettings, ScenarioRunner
from .store import CacheCorrupt, Store, default_cache_dir
from .tuning import Governors

PROTOCOL = 1
MAX_CHUNK = 4 * 1024 * 1024
# entries of a logged_outputs page: a sequence id (int64: 19 digits) and a position (10
# digits), each with its comma, in a header under wire.MAX_HEADER with room for the rest
LOGGED_PER_PAGE = (wire.MAX_HEADER - 4096) // 32
MAX_RESULT_ROWS = 1 << 20  # 20+ MiB a reply at most


class Agent:
    def __init__(self, cache_dir: Optional[str] = None) -> None:
        self.store = Store(cache_dir or default_cache_dir())
        self.backend: Optional[Backend] = None
        self.model_sha: Optional[str] = None
        self.samples: Optional[List[np.ndarray]] = None
        self.samples_sha: Optional[str] = None
        self.log: Optional[QueryLog] = None
        self.logged: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        self.sampler: Optional[power.Sampler] = None
        self.ops: Dict[str, Op] = {
            "hello": self.hello, "push_model": self.push_model, "load_model": self.load_model,
            "push_samples": self.push_samples, "run": self.run, "results": self.results,
            "run_official": self.run_official, "logged_outputs": self.logged_outputs,
            "summary_bytes": self.summary_bytes,
            "telemetry": self.telemetry, "clock": self.clock, "governor": self.governor,
            "infer": self.infer, "sensors": self.sensors, "sample_power": self.sample_power,
            "profile_ops": self.profile_ops, "bye": self.bye,
        }
        # what the loaded model cost to load and first run (benchmark_model's Init and
        # First inference), each timed here and never a scored latency
        self.costs: Dict[str, Any] = {}
        self.governors = Governors()
        self.closing = False
        self.line_rate: Optional[float] = None  # bytes/s of a paced line (serial_serve.py)
        self.line_stats: Optional[Callable[[], Dict[str, int]]] = None  # its queue's figures

    # ------------------------------------------------------------------ operations
    def hello(self, call: Call) -> Reply:
        info = time.get_clock_info("perf_counter")
        return {
            "agent_version": __version__, "protocol": PROTOCOL, "wire": wire.WIRE_VERSION,
            "python": platform.python_version(), "numpy": np.__version__,
            "runtimes": available_runtimes(), "backends": probe_backends(deep=False),
            "cpu_count": os.cpu_count(),
            "cpu_model": telemetry.cpu_model(), "machine": platform.machine(),
            "system": platform.platform(), "hostname": platform.node(),
            "clock": {"source": "time.perf_counter_ns", "implementation": info.implementation,
                      "resolution_ns": int(round(info.resolution * 1e9)) or 1,
                      "monotonic": info.monotonic},
            "cache_dir": self.store.root, "pid": os.getpid(),
            "querylog_encodings": ["raw"] + list(qlcodec.ENCODINGS),
            "querylog_modes": list(logsend.MODES),
            "loadgen_official": loadgen_official.available(),
        }, b""

    def _push(self, kind: str, suffix: str, req: Dict[str, Any], body: bytes,
              check: Optional[Callable[[str], None]] = None) -> Reply:
        sha = Store.check_sha(req.get("sha256"))
        size = int(req.get("size", -1))
        if size < 0:
            raise AgentError("push_%s needs the artifact's size" % kind)
        if "offset" not in req:  # the announcement: is it here (and intact), how much of it?
            return self._probe(kind, suffix, sha, size)
        if len(body) > MAX_CHUNK:
            self.store.discard(kind, sha)
            raise AgentError("chunk of %d bytes is over the %d limit" % (len(body), MAX_CHUNK))
        held = self.store.write_chunk(kind, sha, int(req["offset"]), body, size)
        if req.get("last"):
            self.store.commit(kind, sha, size, suffix, check)
            return {"present": True, "received": held}, b""
        return {"present": False, "received": held}, b""

    def _probe(self, kind: str, suffix: str, sha: str, size: int) -> Reply:
        """A cached copy is re-hashed (it is used next); a corrupt one is removed and said
        so, then the push is admitted (cap, free space) before its first chunk is sent."""
        reply: Dict[str, Any] = {"present": False}
        try:
            if self.store.verified(kind, sha, suffix):
                return {"present": True, "received": size}, b""
        except CacheCorrupt as exc:
            reply["corrupt"] = {"sha256": exc.got, "size": exc.size, "error": str(exc)}
        self.store.sweep(kind, sha)
        self.store.admit(kind, sha, size)
        reply["received"] = self.store.partial_size(kind, sha)
        return reply, b""

    def push_model(self, call: Call) -> Reply:
        fmt = call.header.get("format", "tflite")
        if fmt not in SUFFIXES:
            raise AgentError("push_model: unknown model format %r (this agent takes %s)"
                             % (fmt, ", ".join(SUFFIXES)))
        return self._push("models", SUFFIXES[fmt], call.header, call.body)

    def push_samples(self, call: Call) -> Reply:
        """A sample set is parsed before it is kept: one that cannot be used is never cached
        (and, parsed, it is the set in memory for the next run)."""
        loaded: List[List[np.ndarray]] = []

        def check(path: str) -> None:
            self._drop_samples()
            try:
                loaded.append(sampleset.unpack(np.fromfile(path, dtype=np.uint8)))
            except sampleset.SampleSetError as exc:
                raise AgentError("pushed sample set is malformed: %s" % exc) from None

        reply = self._push("samples", ".eps", call.header, call.body, check)
        if loaded:
            self.samples, self.samples_sha = loaded[0], call.header["sha256"]
        return reply

    def _drop_samples(self) -> None:
        # one sample set in memory at a time: an accuracy set streamed in windows stays bounded
        self.samples = self.samples_sha = None
        if self.backend is not None:
            self.backend.release()

    def _load_samples(self, sha: str) -> List[np.ndarray]:
        """The set in memory, else the cached file, re-hashed first (outside any timed
        region: runs bind their samples before their loop starts)."""
        if self.samples_sha == sha and self.samples is not None:
            return self.samples
        path = self.store.verified("samples", sha, ".eps")
        if path is None:
            raise AgentError("sample set %s is not on the device; push it first" % sha[:12])
        self._drop_samples()
        try:
            arrays = sampleset.unpack(np.fromfile(path, dtype=np.uint8))
        except sampleset.SampleSetError as exc:  # kept by an agent that checked less
            os.unlink(path)
            raise AgentError("cached sample set %s is malformed (%s): removed; push it again"
                             % (sha[:12], exc)) from None
        self.samples, self.samples_sha = arrays, sha
        return arrays

    def load_model(self, call: Call) -> Reply:
        """Load and initialise the model, timed (session creation, or load + allocate) and
        its memory measured: the resident set before, after, and the peak between."""
        req = call.header
        path = None
        kind = req.get("backend")
        if kind in SUFFIXES:
            sha = Store.check_sha(req.get("sha256"))
            path = self.store.verified("models", sha, SUFFIXES[kind])  # CacheCorrupt: removed
        if self.backend is not None:
            self.backend.release()
        self.backend = self.model_sha = None
        self.costs = {}
        import_runtime(req)  # the runtime's own import is not the model's init
        window = memory.Window()
        t0 = time.perf_counter_ns()
        backend = make_backend(req, path)
        init_ns = time.perf_counter_ns() - t0
        mem = window.close()
        self.backend = backend
        self.model_sha = req.get("sha256") if path else None
        self.costs = {"init_ns": init_ns, "first_inference_ns": None,
                      "memory": {"before_load_kib": mem["start_kib"],
                                 "after_init_kib": mem["end_kib"],
                                 "peak_init_kib": mem["peak_kib"], "scope": mem["scope"]}}
        return dict(backend.describe(), init=dict(self.costs)), b""

    def _bind_samples(self, req: Dict[str, Any], default_count: int) -> int:
        """Bind the loaded model to the request's sample set (or to generated inputs, when
        it names none); returns the number of samples."""
        assert self.backend is not None
        samples = None
        n_samples = int(req.get("sample_count", default_count))
        if req.get("samples"):
            samples = self._load_samples(Store.check_sha(req["samples"]))
            n_samples = len(samples[0])
        self.backend.bind(samples)
        return n_samples

    def run(self, call: Call) -> Reply:
        req = call.header
        if self.backend is None:
            raise AgentError("no model is loaded; call load_model first")
        settings = RunSettings.from_dict(req.get("settings") or {})
        n_samples = self._bind_samples(req, 1024)
        if self.costs.get("first_inference_ns") is None:  # the first run of this model
            self.costs["first_inference_ns"] = self.backend.first_inference(0)
        invoke = self.backend.invoker()
        gather = self.backend.gather_invoker() if req.get("batched", True) else None
        runner: Optional[ScenarioRunner] = None
        sender = LogSender(call, self.line_rate,
                           lambda: runner.log.start_ns if runner is not None else 0)
        runner = ScenarioRunner(settings, invoke, n_samples, sender, gather, self.backend.batch,
                                backend=self.backend, wait_line=call.wait_room)
        self.log = self.logged = None
        affinity = self._set_affinity(req.get("cpu_affinity"))
        before = telemetry.snapshot()
        window = memory.Window()  # the run's peak: warm-up, timed loop, its logs
        wall0, mono0 = time.time_ns(), time.perf_counter_ns()
        try:
            log = runner.run()
        finally:
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
        mem = window.close()
        self.log = log
        extra: Dict[str, Any] = {}
        if runner.outlog is not None:
            self.logged = runner.outlog.entries()
            extra["logged_outputs"] = {
                "count": len(self.logged[0]), "sample_bytes": runner.outlog.sample_bytes,
                "probability": runner.accuracy_log_probability}
        packed = b""
        self.summary_packed = b""
        extra["querylog_mode"] = sender.mode()
        extra["model_costs"] = dict(
            self.costs, warmup=runner.warmup_stats,
            memory=dict(self.costs.get("memory") or {}, run_start_kib=mem["start_kib"],
                        peak_run_kib=mem["peak_kib"], run_scope=mem["scope"]))
        if self.line_stats is not None:
            extra["line_queue"] = self.line_stats()
        if sender.summary:
            lat, packed = latency_summary(log)
            extra.update(lat)  # beside the logged outputs' record, never over it
            limit = int(req.get("max_reply_bytes") or MAX_CHUNK)
            if len(packed) > limit:  # a long run's latencies: the host pages them in
                self.summary_packed, packed = packed, b""
                extra["latency_summary"].update(
                    paged=True, body_bytes=len(self.summary_packed),
                    sha256=hashlib.sha256(self.summary_packed).hexdigest())
        return dict(extra, **{
            "cpu_affinity": sorted(req["cpu_affinity"]) if affinity is not None else (
                sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None),
            "rows": log.rows, "samples_per_row": log.samples_per_row,
            "start_ns": log.start_ns, "end_ns": log.end_ns,
            "checksum": log.checksum(), "stop_reason": runner.stop_reason,
            "batched": runner.gather is not None, "batch": runner.batch,
            "busy_flushes": runner.busy_flushes,
            "generated_query_count": runner.generated_query_count,
            "warmup_ns_per_sample": runner.warmup_ns_per_sample,
            "wall_anchor": {"wall_ns": wall0, "monotonic_ns": mono0},
            "telemetry_before": before, "telemetry_after": telemetry.snapshot(),
            "querylog_bytes": log.nbytes, "n_samples": n_samples,
            "offline_sample_count": runner.offline_sample_count,
        }), packed

    def run_official(self, call: Call) -> Reply:
        """The official LoadGen drives the loaded backend over the request's sample set; its
        log files go back as "lgfile" events (loadgen_official.py)."""
        req = call.header
        if self.backend is None:
            raise AgentError("no model is loaded; call load_model first")
        lg = loadgen_official.load_loadgen()  # before anything is bound: names the install
        n_samples = self._bind_samples(req, 1024)
        self.log = None
        affinity = self._set_affinity(req.get("cpu_affinity"))
        before = telemetry.snapshot()
        try:
            reply = loadgen_official.run_official(self.backend, n_samples, req, call.emit, lg)
        finally:
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
        reply.update(telemetry_before=before, telemetry_after=telemetry.snapshot())
        return reply, b""

    def infer(self, call: Call) -> Reply:
        """Accuracy mode: each requested sample once, raw outputs streamed back as events."""
        req = call.header
        if self.backend is None:
            raise AgentError("no model is loaded; call load_model first")
        n_samples = self._bind_samples(req, 0)
        limit = min(int(req.get("max_event_bytes", infer.MAX_EVENT_BYTES)), MAX_CHUNK)
        return infer.run_infer(self.backend, infer.sample_indices(req, n_samples),
                               lambda h, b: call.emit("outputs", h, b), max(limit, 1)), b""

    def profile_ops(self, call: Call) -> Reply:
        """A per-operator profile of the loaded model over ``runs`` samples, in the
        runtime's own profiler (a separate session or mode: never a timed run's)."""
        req = call.header
        if self.backend is None:
            raise AgentError("no model is loaded; call load_model first")
        n_samples = self._bind_samples(req, 1)
        runs = int(req.get("runs", 100))
        if not 1 <= runs <= 100000:
            raise AgentError("profile_ops: runs must be 1..100000, got %d" % runs)
        t0 = time.perf_counter_ns()
        table = self.backend.profile_ops([k % n_samples for k in range(runs)])
        table["wall_ns"] = time.perf_counter_ns() - t0
        return table, b""

    @staticmethod
    def _set_affinity(cores: Any) -> Optional[set]:
        """Pin the scenario loop to ``cores``; returns the previous set to restore."""
        if not cores:
            return None
        if not hasattr(os, "sched_setaffinity"):
            raise AgentError("this device cannot set CPU affinity; remove cpu_affinity from "
                             "the board profile")
        previous = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, [int(c) for c in cores])
        except (OSError, ValueError) as exc:
            raise AgentError("cannot pin the run to cores %s: %s; the device has cores %s"
                             % (list(cores), exc, sorted(previous))) from None
        return previous

    def results(self, call: Call) -> Reply:
        """Rows [first, first + MAX_RESULT_ROWS) of the last run's QueryLog."""
        req = call.header
        if self.log is None:
            raise AgentError("no completed run on the agent")
        log = self.log
        first = min(max(0, int(req.get("first", 0))), log.rows)
        last = min(log.rows, first + MAX_RESULT_ROWS)
        header = {"first": first, "rows": last - first, "total_rows": log.rows,
                  "samples_per_row": log.samples_per_row, "checksum": log.checksum()}
        body = b"".join(log.views(first, last))
        if req.get("encoding") in qlcodec.ENCODINGS:  # a slow link asks for the compact form
            return qlcodec.encode_stretch(header, body)
        return header, body

    def summary_bytes(self, call: Call) -> Reply:
        """Bytes [offset, offset + MAX_CHUNK) of the last summary-mode run's packed
        latencies, when they were too many for its reply."""
        data = getattr(self, "summary_packed", b"")
        if not data:
            raise AgentError("the last run left no paged latency summary")
        off = min(max(0, int(call.header.get("offset", 0))), len(data))
        return {"offset": off, "total": len(data)}, data[off:off + MAX_CHUNK]

    def logged_outputs(self, call: Call) -> Reply:
        """Entries [first, first + n) of the outputs the last run logged (TEST01): their
        sequence ids and loaded-set positions (int64 lists) and their bytes, joined."""
        if self.logged is None:
            raise AgentError("the last run logged no outputs (it set no accuracy_log_*)")
        seq, pos, data = self.logged
        first = min(max(0, int(call.header.get("first", 0))), len(seq))
        per = max(1, data.shape[1]) if data.ndim == 2 else 1
        # a page's ids travel in its JSON header: at most LOGGED_PER_PAGE fit under the
        # wire's header limit, however small each output is
        last = min(len(seq), first + max(1, min(MAX_CHUNK // per, LOGGED_PER_PAGE)))
        return {"first": first, "count": last - first, "total": len(seq),
                "sample_bytes": int(data.shape[1]), "seq_ids": seq[first:last].tolist(),
                "positions": pos[first:last].tolist()}, data[first:last].tobytes()

    def telemetry(self, call: Call) -> Reply:
        return telemetry.snapshot(), b""

    def clock(self, call: Call) -> Reply:
        return {"monotonic_ns": time.perf_counter_ns(), "wall_ns": time.time_ns()}, b""

    def governor(self, call: Call) -> Reply:
        req = call.header
        action = req.get("action", "get")
        if action == "get":
            return self.governors.get(), b""
        if action == "set":
            name = req.get("governor")
            if not isinstance(name, str) or not name:
                raise AgentError("governor set needs the governor's name")
            return self.governors.set(name, req.get("cpus")), b""
        if action == "restore":
            return self.governors.restore(), b""
        raise AgentError("governor action %r is not one of: get, set, restore" % (action,))

    def shutdown(self) -> None:
        """The link is ending: leave the device as it was found."""
        self.governors.restore()

    @staticmethod
    def _sysfs_root(req: Dict[str, Any]) -> str:
        """The device's sysfs root: /sys or $EDGEPERF_SYSFS_ROOT, never the host's choice (a
        host naming the tree the agent reads could point it anywhere)."""
        if req.get("root") is not None:
            raise AgentError("%s refuses a sysfs root from the host: the sysfs root is device "
                             "configuration, set as EDGEPERF_SYSFS_ROOT in the agent's "
                             "environment on the device (default /sys); drop root from the "
                             "request (meter URL sysfs, without ?root=)" % req.get("op"))
        return power.sysfs_root()

    def sensors(self, call: Call) -> Reply:
        root = self._sysfs_root(call.header)
        return {"root": root, "sensors": power.list_sensors(root)}, b""

    def sample_power(self, call: Call) -> Reply:
        """``action`` start (sensor, interval_ms, capacity) or stop (returns the rows:
        int64 perf_counter_ns and float64 watts, volts, amps, little-endian)."""
        req = call.header
        action = req.get("action")
        if action == "start":
            if self.sampler is not None:
                raise AgentError("the power sampler is already running; stop it first")
            root = self._sysfs_root(req)
            try:
                sensor = power.pick_sensor(power.list_sensors(root), req.get("sensor"))
            except power.SensorError as exc:
                raise AgentError(str(exc)) from None
            interval = int(req.get("interval_ms") or power.DEFAULT_INTERVAL_MS) * 1_000_000
            self.sampler = power.Sampler(sensor, interval,
                                         int(req.get("capacity") or power.DEFAULT_CAPACITY))
            self.sampler.start()
            return {"started": True, "sensor": sensor, "interval_ns": interval,
                    "monotonic_ns": time.perf_counter_ns()}, b""
        if action == "stop":
            if self.sampler is None:
                raise AgentError("the power sampler is not running")
            sampler, self.sampler = self.sampler, None
            return sampler.finish()
        raise AgentError("sample_power needs action 'start' or 'stop', got %r" % (action,))

    def bye(self, call: Call) -> Reply:
        self.closing = True
        if self.sampler is not None:
            self.sampler.finish()
            self.sampler = None
        return {"bye": True}, b""

    # ------------------------------------------------------------------ dispatch
    def handle(self, frame: wire.Frame, sink: Sink = no_events,
               waiter: Optional[Waiter] = None) -> Tuple[int, Dict[str, Any], bytes]:
        """One request frame in, one reply (type, header, body) out; the request's events go
        to ``sink`` stamped with its seq (``waiter``: a line that may decline offers serves
        itself until it has room). Never raises."""
        return dispatch(self.ops, frame, sink, waiter)
