"""The serial link's fault soak (issue 15): N random fault schedules, each a short
SingleStream run of ``synthetic:busy:200`` over the line simulator, every outcome checked.

    .venv/bin/python benchmarks/soak_serial.py                  # 1000 schedules
    .venv/bin/python benchmarks/soak_serial.py --quick          # 50 (CI)
        [--seed S] [--jobs J] [--baud 115200|921600] [--json FILE|-] [--keep DIR] [--quiet]
    .venv/bin/python benchmarks/soak_serial.py --replay S:I     # schedule I of seed S again,
                                                                # its timeline and files kept

What runs, all real processes on this machine:

* the line: ``edgeperf.testing.line_sim.LineSim`` (two real pseudo-terminals joined at the
  line's pace, 10 line bits a byte) at 115200 or 921600 baud (schedules alternate; ``--baud``
  keeps one), in the schedule's own process, which injects the faults into it;
* the device: the agent zipapp, ``serve --serial DEVICE_PTY --baud B``, started by this
  script's own supervisor (a fault kills it with SIGKILL and starts it again, as systemd's
  ``Restart=always`` would);
* the host: a process of its own (this script with ``--_host``) running edgeperf's normal
  run path, ``edgeperf.connect('serial://PTY?baud=B')`` then ``Device.run(...)`` (what
  ``edgeperf run --board 'serial://PTY?baud=B' --model synthetic:busy:200 --scenario
  SingleStream --preset smoke --min-duration 1.5 --target-latency-ms 0.1 --querylog full``
  calls), writing its run directory as the command line does. Its reporter and a watch on
  its ``querylog.spill`` (5 ms) log what the host saw, and when, to ``events.jsonl``.

A schedule: 1-3 faults, each of a random kind, at a random moment of a phase:

* kinds: ``flip`` (bits flipped at a rate of 1e-4..3e-3 a byte, both ways, for 0.2-3 s),
  ``drop`` (bytes dropped at that rate, for 0.2-3 s), ``garbage`` (a burst of 16-8000 random
  bytes towards the host, the device or both), ``pull`` (the cable pulled for 0.5-5 s:
  bytes sent meanwhile are lost, the line keeps its pace), ``restart`` (the agent killed
  with SIGKILL, started again 0-1 s later);
* phases, each from a moment the host reports: ``connect`` (0-0.3 s after the host process
  starts connecting: SYN, hello, load_model; it asks for the run ~0.2-0.4 s after),
  ``run`` (0-1.5 s after the host asks for the run: the timed loop, its QueryLog stretches
  and progress every 0.5 s), ``tail`` (after the run's minimum duration, while the rest of
  the log crosses the line: ~2.5 s at 115200).
  A fault whose moment comes after the host has finished is not applied (counted apart).

Outcomes (one per schedule; the checks read the run directory and the device's own log,
fetched by this script from the agent over a fresh session after the host has finished,
re-decoded here from querylog.npz and querylog.spill by their documented layouts):

* completed: the run finished (VALID, or INVALID by a scoring rule, exit 0 or 3) and its
  querylog.npz equals the device's own QueryLog row for row: the same count, order (sample
  positions) and timestamps, so the CRC32 of issue||done||sample (the agent's checksum) is
  the same too. When the device's log is gone (the agent was restarted after the run), the
  host's own check against the run reply's checksum (result.json run.checksum_ok) stands in,
  and the run is counted apart ("checked against the reply only").
* invalid with a reason: the run ended INVALID with an error, or the host refused before
  the run, naming why (the reason is counted by its key words: "the agent restarted", ...),
  and every row the host received was kept: the spill's rows are all in querylog.npz
  (nothing received is missing), and the kept rows are a prefix of the device's sequence:
  of its own log when it still has it, else of the sample order LoadGen's rules fix
  (device_agent.lgseq with the run's seed); in issue order, with issue <= done, each query
  issued after the previous one completed (SingleStream), latencies >= the model's 200 us.
* lost queries (must be 0): rows in the host's spill (received, and acknowledged on the
  line) or counted in result.json's rows_received that are missing from querylog.npz.
* wrong results (must be 0): a finished run whose rows differ from the device's log in
  count, order or any timestamp (or whose host check against the reply's checksum failed
  while the verdict stands), and any kept row that is not the device's (a row differing
  from the device's, from the spill, or out of the sequence, or a broken timestamp).
* hangs (must be 0): the host still running at the schedule's hard limit, killed then:
  15 s (start, imports, connect: SerialLink waits 10 s for an agent) + the run's minimum
  duration + twice the log's line time + the faults' own durations + 10 s (the reliable
  layer: two retransmissions at its 4 s maximum timeout, the 2 s stale-frame timeout) +
  30 s of slack: 60-80 s. A host waiting out the run's 120 s idle timeout is a hang here:
  after the last fault the line is clean and an agent is up, so the host must hear from it
  within seconds. (The schedule's own process gets 120 s more, for the fetch and cleanup.)
* unexplained (must be 0): a host that ended with neither a verdict nor a clear error (a
  traceback), or an agent that exited by itself.

Recovery time: for each stretch of faults (overlapping faults merged), from its end to the
first sign on the host's side of the link carrying data again: a QueryLog stretch written
to the spill, a progress event, the link established or hello answered, the run's reply
(the "done" event), or the run's end with the error the fault caused. A fault ends: flip,
drop, pull when the line is clean or plugged again; garbage when the burst's last byte has
crossed the line (its bytes / the byte rate after it was queued); restart when the new
agent process is started (its Python start counts as recovery, as a board's boot would).
It includes waiting for the next thing to carry (up to the agent's 0.5 s flush interval
during a run), so it is an upper bound of the link's own recovery. Stretches that end after
the host has finished have none. Printed beside it, the link's recovery: from the same end
to the first stream bytes the host's reliable layer delivers in order after it (its public
``SerialLink.stats.payload_delivered``, watched every 5 ms), or any of the events above.

Memory: VmRSS/VmHWM of every agent process and of the host process, sampled every 0.1 s
(and the host's own VmHWM at its exit); the peaks are reported, and a process is flagged
when it grows by more than 64 MiB after its first sample taken 1.5 s or more after its
start (once Python and numpy are in) or exceeds 256 MiB (agent) or 768 MiB (host); a flag
also makes the exit status 1.

Code: by default the soak copies host/, device_agent/ and boards/ at its start and runs
that copy (the agent zipapp is built from it, the host processes import it ahead of the
editable install), so that edits to the working tree during a long soak do not mix
versions; ``--live`` runs the working tree as it is. This script itself is read at each
schedule's start.

Exit status: 0 when lost, wrong, hangs, unexplained and memory flags are all 0; else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the working tree first on sys.path)
import numpy as np

HERE = Path(__file__).resolve()
MODEL = "synthetic:busy:200"
BUSY_NS = 200_000  # what a query of the model takes at least
BAUDS = (115200, 921600)
SAMPLE_COUNT = 256
# the run: the smoke preset cut short; 0.1 ms expected latency so that LoadGen's rule
# pre-generates enough queries (2 * 1.5 s / 0.1 ms = 30,000) for the min duration
RUN = {"preset": "smoke", "min_query_count": 100, "min_duration_ms": 1500,
       "max_duration_ms": 20_000, "target_latency_ns": 100_000}
EST_QPS = 4500.0  # busy:200 on this machine, for the log's size
EST_BYTES_PER_QUERY = 4.0  # compact QueryLog on the line, framing included (~3 B measured)
KINDS = ("flip", "drop", "garbage", "pull", "restart")
PHASES = ("connect", "run", "tail")
PHASE_WEIGHTS = (0.2, 0.6, 0.2)
CONNECT_SPAN_S = 0.3  # the host's connect, hello and load_model take ~0.2-0.4 s here
# the link's documented timeouts (host/links/serial.py, device_agent/reliable.py, server.py)
CONNECT_TIMEOUT_S = 10.0
MAX_RTO_S = 4.0
STALE_S = 2.0
STARTUP_S = 15.0
SLACK_S = 30.0
RUNNER_EXTRA_S = 120.0  # the schedule's process: fetch the device's log, clean up
TICK_S = 0.01
RSS_EVERY_S = 0.1
SETTLED_S = 1.5  # a process's growth counts from its first sample this long after its start
GROWTH_LIMIT = 64 << 20
AGENT_RSS_LIMIT = 256 << 20
HOST_RSS_LIMIT = 768 << 20
DATA_EVENTS = ("connect", "hello", "progress", "spill", "done", "exit")


def rate_of(baud: int) -> float:
    return baud / 10.0  # 8N1: ten line bits a byte


def log_line_s(baud: int) -> float:
    """The run's compact QueryLog's line time, estimated."""
    return RUN["min_duration_ms"] / 1000 * EST_QPS * EST_BYTES_PER_QUERY / rate_of(baud)


# ============================================================================ schedules


@dataclass
class Fault:
    kind: str  # flip | drop | garbage | pull | restart
    phase: str  # connect | run | tail
    offset_s: float  # after the phase's anchor
    duration_s: float = 0.0  # flip/drop/pull: how long; restart: the supervisor's delay
    rate: float = 0.0  # flip/drop: per byte
    nbytes: int = 0  # garbage
    direction: str = ""  # garbage: to_host | to_device | both

    def describe(self) -> str:
        what = {"flip": f"flip {self.rate:.1e} for {self.duration_s:.1f}s",
                "drop": f"drop {self.rate:.1e} for {self.duration_s:.1f}s",
                "garbage": f"garbage {self.nbytes}B {self.direction}",
                "pull": f"pull {self.duration_s:.1f}s",
                "restart": f"restart (down {self.duration_s:.1f}s)"}[self.kind]
        return f"{what} @{self.phase}+{self.offset_s:.2f}s"


@dataclass
class Schedule:
    seed: int
    index: int
    baud: int
    faults: list[Fault]

    @property
    def key(self) -> str:
        return f"{self.seed}:{self.index}"

    def limit_s(self) -> float:
        """The hard wall-clock limit of the host (see the module's docstring)."""
        own = sum(f.duration_s if f.kind != "garbage" else f.nbytes / rate_of(self.baud)
                  for f in self.faults)
        return (STARTUP_S + RUN["min_duration_ms"] / 1000 + 2 * log_line_s(self.baud) + own
                + 2 * MAX_RTO_S + STALE_S + SLACK_S)


def phase_span(phase: str, baud: int) -> float:
    return {"connect": CONNECT_SPAN_S, "run": RUN["min_duration_ms"] / 1000,
            "tail": max(0.3, log_line_s(baud))}[phase]


def make_fault(rng: random.Random, kind: str, baud: int, phase: str | None = None) -> Fault:
    phase = phase or rng.choices(PHASES, PHASE_WEIGHTS)[0]
    f = Fault(kind, phase, round(rng.uniform(0, phase_span(phase, baud)), 3))
    if kind in ("flip", "drop"):
        f.rate = float(f"{10 ** rng.uniform(-4, -2.5):.3g}")
        f.duration_s = round(rng.uniform(0.2, 3.0), 2)
    elif kind == "garbage":
        f.nbytes = int(10 ** rng.uniform(1.2, 3.9))
        f.direction = rng.choice(("to_host", "to_device", "both"))
    elif kind == "pull":
        f.duration_s = round(rng.uniform(0.5, 5.0), 2)
    elif kind == "restart":
        f.duration_s = round(rng.uniform(0.0, 1.0), 2)
    return f


def make_schedule(seed: int, index: int, bauds: tuple[int, ...] = BAUDS) -> Schedule:
    """Schedule ``index`` of ``seed``: the same on every machine and every run."""
    rng = random.Random(f"soak-serial:{seed}:{index}")
    baud = bauds[index % len(bauds)]
    faults = [make_fault(rng, rng.choice(KINDS), baud) for _ in range(rng.randint(1, 3))]
    return Schedule(seed, index, baud, faults)


def schedule_from_dict(d: dict[str, Any]) -> Schedule:
    return Schedule(int(d["seed"]), int(d["index"]), int(d["baud"]),
                    [Fault(**f) for f in d["faults"]])


# ============================================================================ the host process


def host_main(cfg_path: str) -> int:
    """The host of one schedule: edgeperf's normal run path, its events logged with the
    time (CLOCK_MONOTONIC, the same clock as the schedule's process)."""
    cfg = json.loads(Path(cfg_path).read_text())
    out = Path(cfg["out_dir"])
    lock = threading.Lock()
    events = open(cfg["events"], "a", buffering=1)

    def log(ev: str, **data: Any) -> None:
        line = json.dumps({"t": time.monotonic(), "ev": ev, **data})
        with lock:
            events.write(line + "\n")

    def report(ev: str, data: dict[str, Any]) -> None:
        if ev == "progress":
            log(ev, queries=data.get("queries"))
        elif ev in ("connect", "hello", "run", "done", "push", "task"):
            log(ev)

    stop = threading.Event()

    def watch_spill() -> None:
        size = 0
        while not stop.wait(0.005):
            try:
                now = os.stat(out / "querylog.spill").st_size
            except OSError:
                continue
            if now != size:
                size = now
                log("spill", size=now)

    threading.Thread(target=watch_spill, daemon=True).start()
    res: dict[str, Any] = {}
    import edgeperf
    from edgeperf.errors import EdgeperfError

    s = edgeperf.preset(RUN["preset"], "SingleStream", **{k: v for k, v in RUN.items()
                                                          if k != "preset"})
    res["order"] = {"set_size": SAMPLE_COUNT, "min_queries": s.min_query_count,
                    "seed": s.sample_index_rng_seed}
    log("start")

    def watch_link(link: Any) -> None:
        """The reliable layer's in-order bytes delivered to the host (its public stats)."""
        seen = 0
        while not stop.wait(0.005):
            now = int(getattr(link.stats, "payload_delivered", 0))
            if now != seen:
                seen = now
                log("rx", bytes=now)

    try:
        with edgeperf.connect(cfg["board"], progress=report) as dev:
            link = getattr(getattr(dev, "_session", None), "link", None)
            if link is not None and hasattr(link, "stats"):
                threading.Thread(target=watch_link, args=(link,), daemon=True).start()
            r = dev.run(MODEL, scenario="SingleStream", preset=RUN["preset"], out_dir=out,
                        querylog="full", progress=report, sample_count=SAMPLE_COUNT,
                        **{k: v for k, v in RUN.items() if k != "preset"})
        res.update(exit_code=r.exit_code, error=r.error, invalid_reasons=r.invalid_reasons,
                   verdict=(r.result or {}).get("result"), ran=True)
    except EdgeperfError as exc:  # refused before the run: a clear error, nothing measured
        res.update(exit_code=1, error=f"{type(exc).__name__}: {exc}", invalid_reasons=[],
                   verdict=None, ran=False)
    except BaseException as exc:  # noqa: BLE001 - a crash is an outcome to count
        res.update(exit_code=1, crash=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc()[-4000:], ran=False)
    stop.set()
    res["vmhwm"] = _status(os.getpid()).get("VmHWM", 0)
    log("exit")
    tmp = Path(cfg["result"] + ".tmp")
    tmp.write_text(json.dumps(res))
    os.replace(tmp, cfg["result"])
    return 0


# ============================================================================ the device


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, bytes ({} once it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


class Supervisor:
    """The agent zipapp on the simulator's device end, restarted after a kill as systemd's
    Restart=always would; every instance's stderr in its own file."""

    def __init__(self, pyz: str, device_path: str, baud: int, cache: Path, logs: Path) -> None:
        self.pyz, self.device_path, self.baud = pyz, device_path, baud
        self.cache, self.logs = cache, logs
        self.proc: subprocess.Popen | None = None
        self.instances: list[dict[str, Any]] = []
        self.start_at: float | None = None  # a restart waiting for its delay

    def start(self) -> float:
        env = dict(os.environ, EDGEPERF_AGENT_CACHE=str(self.cache))
        env.pop("PYTHONPATH", None)
        n = len(self.instances)
        err = open(self.logs / f"agent-{n}.log", "w")
        self.proc = subprocess.Popen([sys.executable, self.pyz, "serve", "--serial",
                                      self.device_path, "--baud", str(self.baud)],
                                     env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        t = time.monotonic()
        self.instances.append({"pid": self.proc.pid, "started": t, "ended": None,
                               "how": None, "code": None, "rss_first": 0, "rss_max": 0,
                               "hwm": 0})
        self.start_at = None
        return t

    def sample(self) -> None:
        if self.proc is None:
            return
        st = _status(self.proc.pid)
        inst = self.instances[-1]
        if st:
            if not inst["rss_first"] and time.monotonic() - inst["started"] >= SETTLED_S:
                inst["rss_first"] = st.get("VmRSS", 0)
            inst["rss_max"] = max(inst["rss_max"], st.get("VmRSS", 0))
            inst["hwm"] = max(inst["hwm"], st.get("VmHWM", 0))

    def kill(self, delay: float) -> None:
        """SIGKILL (the board loses power); the next start ``delay`` s later."""
        if self.proc is not None:
            self.sample()
            self.proc.send_signal(signal.SIGKILL)
            code = self.proc.wait()
            self.instances[-1].update(ended=time.monotonic(), how="killed", code=code)
            self.proc = None
        self.start_at = max(self.start_at or 0.0, time.monotonic() + delay)

    def poll(self, now: float) -> float | None:
        """Start a due restart; restart an agent that exited by itself. Returns the time
        of a start made for a kill."""
        if self.proc is not None and self.proc.poll() is not None:
            self.instances[-1].update(ended=now, how="exited by itself",
                                      code=self.proc.returncode)
            self.proc = None
            self.start()
            return None
        if self.proc is None and self.start_at is not None and now >= self.start_at:
            return self.start()
        return None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.sample()
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.instances[-1].update(ended=time.monotonic(), how="stopped", code=code)
        self.proc = None


def fetch_device_log(host_path: str, baud: int) -> dict[str, Any]:
    """The device's own QueryLog of its last run, over a fresh session: rows, the agent's
    checksum of it, and the arrays; {"error": ...} when the agent has none."""
    from edgeperf.errors import EdgeperfError
    from edgeperf.links.base import LinkError
    from edgeperf.links.serial import SerialLink
    from edgeperf.run.client import AgentClient

    try:
        link = SerialLink(host_path, baud, connect_timeout=CONNECT_TIMEOUT_S)
    except LinkError as exc:
        return {"error": f"connect: {exc}"}
    try:
        c = AgentClient(link, timeout=30.0)
        pid = c.hello().get("pid")
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        got, total, checksum = 0, None, None
        while total is None or got < total:
            hdr, body = c.results(first=got)
            total, checksum = int(hdr["total_rows"]), int(hdr["checksum"])
            n, spr = int(hdr["rows"]), int(hdr["samples_per_row"])
            if int(hdr["first"]) != got or len(body) != n * (16 + 4 * spr):
                return {"error": f"results: a page of {n} rows from {hdr['first']} of "
                                 f"{len(body)} bytes does not follow the {got} fetched"}
            if not n:
                break
            parts.append(_split(body, n, spr))
            got += n
        c.bye()
    except EdgeperfError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        link.close()
    e = np.zeros(0, np.int64)
    issue, done, sample = (np.concatenate([p[i] for p in parts]) if parts else e
                           for i in range(3))
    return {"rows": got, "total_rows": total, "checksum": checksum, "pid": pid,
            "issue": issue, "done": done, "sample": sample.astype(np.uint32)}


# ============================================================================ files, re-read here


def _split(body: bytes, rows: int, spr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """issue || done || sample: little-endian int64, int64, uint32 (the wire's layout)."""
    return (np.frombuffer(body, "<i8", rows, 0).astype(np.int64),
            np.frombuffer(body, "<i8", rows, rows * 8).astype(np.int64),
            np.frombuffer(body, "<u4", rows * spr, rows * 16).astype(np.uint32))


def crc_of(issue: np.ndarray, done: np.ndarray, sample: np.ndarray) -> int:
    """The agent's QueryLog checksum: CRC32 over issue, then done, then sample bytes."""
    crc = zlib.crc32(np.asarray(issue).astype("<i8").tobytes())
    crc = zlib.crc32(np.asarray(done).astype("<i8").tobytes(), crc)
    return zlib.crc32(np.asarray(sample).astype("<u4").tobytes(), crc)


_SPILL_HEAD = struct.Struct("<4sQQI")  # magic, first row, rows, samples per row


def read_spill(path: Path) -> dict[str, Any]:
    """querylog.spill by its documented layout: EPQM settings slot, EPQL stretches."""
    raw = path.read_bytes() if path.exists() else b""
    off, parts, rows, notes = 0, [], 0, []
    while off < len(raw):
        if off + _SPILL_HEAD.size > len(raw):
            notes.append(f"torn head at byte {off}")
            break
        magic, first, n, spr = _SPILL_HEAD.unpack_from(raw, off)
        size = n if magic == b"EPQM" else n * (16 + 4 * spr)
        body = raw[off + _SPILL_HEAD.size: off + _SPILL_HEAD.size + size]
        if magic not in (b"EPQM", b"EPQL"):
            notes.append(f"not a record at byte {off}")
            break
        if len(body) != size:
            notes.append(f"torn record at byte {off} (rows {first}+{n})")
            break
        if magic == b"EPQL":
            if first != rows:
                notes.append(f"stretch at row {first} after {rows} rows")
                if first > rows:
                    break
            else:
                parts.append(_split(body, n, spr))
                rows += n
        off += _SPILL_HEAD.size + size
    e = np.zeros(0, np.int64)
    arrays = [np.concatenate([p[i] for p in parts]) if parts else e for i in range(3)]
    return {"rows": rows, "issue": arrays[0], "done": arrays[1],
            "sample": arrays[2].astype(np.uint32), "notes": notes, "exists": path.exists()}


def read_npz(path: Path) -> dict[str, Any] | None:
    """querylog.npz by its documented layout (steps from t0_ns, or plain int64 times)."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        if "issue_step_ns" in z:
            t0 = int(z["t0_ns"])
            issue = t0 + np.cumsum(np.asarray(z["issue_step_ns"], np.int64), dtype=np.int64)
            done = t0 + np.cumsum(np.asarray(z["done_step_ns"], np.int64), dtype=np.int64)
        else:
            issue, done = np.asarray(z["issue_ns"], np.int64), np.asarray(z["done_ns"], np.int64)
        sample = np.asarray(z["sample_idx"]).astype(np.int64)
    return {"rows": len(done), "issue": issue, "done": done, "sample": sample}


def expected_order(order: dict[str, Any], n: int) -> np.ndarray:
    """The sample positions LoadGen's rules give the first ``n`` queries of the run."""
    from edgeperf_agent.lgseq import SampleOrder

    so = SampleOrder("SingleStream", int(order["set_size"]), 1, int(order["min_queries"]),
                     int(order["seed"]))
    return so.next(n).astype(np.int64) if n else np.zeros(0, np.int64)


# ============================================================================ the classifier


REASONS = (  # key words of an error -> the reason counted
    ("restart", "the agent restarted"),
    ("went away", "the port went away"),
    ("no edgeperf agent answered", "no agent answered the connection"),
    ("no answer", "no answer from the agent (timeout)"),
    ("checksum", "the QueryLog's checksum differs"),
    ("died", "the agent died"),
)


def reason_key(text: str) -> str:
    low = text.lower()
    for needle, key in REASONS:
        if needle in low:
            return key
    return text[:90]


def _first_diff(a: np.ndarray, b: np.ndarray) -> int | None:
    n = min(len(a), len(b))
    bad = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(bad[0]) if len(bad) else None


def _rows_differ(kept: dict[str, Any], other: dict[str, Any], n: int) -> str | None:
    """Where the first ``n`` rows of ``kept`` and ``other`` differ, if they do."""
    for k in ("issue", "done", "sample"):
        if len(kept[k]) < n or len(other[k]) < n:
            return f"{k}: {len(kept[k])} vs {len(other[k])} rows"
        at = _first_diff(kept[k][:n], other[k][:n])
        if at is not None:
            return f"row {at}: {k} {int(kept[k][at])} vs {int(other[k][at])}"
    return None


def check_rows(q: dict[str, Any], order: dict[str, Any] | None) -> list[str]:
    """What a kept SingleStream QueryLog must be whatever happened to the line."""
    bad = []
    issue, done, sample = q["issue"], q["done"], q["sample"]
    n = len(done)
    if len(issue) != n or len(sample) != n:
        return [f"{len(issue)} issue times, {n} completions, {len(sample)} samples"]
    if not n:
        return bad
    lat = done - issue
    if (lat < BUSY_NS).any():
        i = int(np.flatnonzero(lat < BUSY_NS)[0])
        bad.append(f"row {i}: latency {int(lat[i])} ns < the model's {BUSY_NS}")
    if n > 1 and (issue[1:] < done[:-1]).any():
        i = int(np.flatnonzero(issue[1:] < done[:-1])[0]) + 1
        bad.append(f"row {i}: issued at {int(issue[i])}, before row {i - 1} completed "
                   f"({int(done[i - 1])})")
    if (sample < 0).any() or (sample >= SAMPLE_COUNT).any():
        bad.append(f"sample positions outside [0, {SAMPLE_COUNT})")
    if order is not None:
        at = _first_diff(sample, expected_order(order, n))
        if at is not None:
            bad.append(f"row {at}: sample {int(sample[at])} is not LoadGen's sequence's")
    return bad


def classify(run_dir: Path, host: dict[str, Any] | None, device: dict[str, Any] | None,
             hang: bool = False, restarted_after_run: bool = False) -> dict[str, Any]:
    """One schedule's outcome from its run directory (result.json, querylog.npz,
    querylog.spill), the host's own account (``host``: exit code, error, verdict; None when
    it left none) and the device's log (``device``: fetch_device_log's answer; None or an
    "error" when it has none). Returns outcome (completed | invalid | hang | unexplained),
    reason, lost (rows), wrong (list of why), checked (what the rows were checked against).
    """
    out: dict[str, Any] = {"outcome": None, "reason": "", "reason_key": "", "lost": 0,
                           "wrong": [], "checked": "", "rows_kept": 0, "rows_device": None,
                           "notes": []}
    if hang:
        out.update(outcome="hang", reason="the host ran past its hard limit and was killed",
                   reason_key="hang")
        return out
    if host is None or host.get("crash"):
        why = (host or {}).get("crash") or "the host process left no account"
        out.update(outcome="unexplained", reason=why, reason_key="host crash")
        return out
    res_path = run_dir / "result.json"
    rec = json.loads(res_path.read_text()) if res_path.exists() else None
    spill = read_spill(run_dir / "querylog.spill")
    npz = read_npz(run_dir / "querylog.npz")
    kept = npz or {"rows": 0, "issue": np.zeros(0, np.int64), "done": np.zeros(0, np.int64),
                   "sample": np.zeros(0, np.int64)}
    out["rows_kept"] = kept["rows"]
    out["notes"] += spill["notes"]
    order = host.get("order")
    # nothing received may be missing from the outputs
    if spill["rows"] > kept["rows"]:
        out["lost"] += spill["rows"] - kept["rows"]
    received = int(((rec or {}).get("run") or {}).get("rows_received") or 0)
    if received > max(kept["rows"], spill["rows"]):
        out["lost"] += received - max(kept["rows"], spill["rows"])
    n = min(spill["rows"], kept["rows"])
    diff = _rows_differ(kept, spill, n)
    if diff:
        out["wrong"].append(f"querylog.npz differs from the spill the host received: {diff}")
    out["wrong"] += [f"querylog.npz: {b}" for b in check_rows(kept, order)]
    dev_ok = device is not None and "error" not in device
    if dev_ok:
        out["rows_device"] = device["rows"]
        if crc_of(device["issue"], device["done"], device["sample"]) != device["checksum"]:
            out["notes"].append("the device's log as fetched does not match its own checksum "
                                "(the fetch, not the run)")
            dev_ok = False
    finished = bool(host.get("ran")) and host.get("exit_code") in (0, 3)
    verdict = (rec or {}).get("result") or host.get("verdict")
    if finished:
        if dev_ok:
            out["checked"] = "the device's log"
            if device["rows"] != kept["rows"]:
                out["wrong"].append(f"{kept['rows']} rows kept, the device logged "
                                    f"{device['rows']}")
            diff = _rows_differ(kept, device, min(kept["rows"], device["rows"]))
            if diff:
                out["wrong"].append(f"querylog.npz differs from the device's log: {diff}")
            if crc_of(kept["issue"], kept["done"], kept["sample"]) != device["checksum"]:
                out["wrong"].append("the checksum of querylog.npz is not the device's")
        else:
            out["checked"] = "the run reply's checksum only"
            why = (device or {}).get("error", "no device log")
            out["notes"].append(f"the device's log is gone ({why}); "
                                + ("the agent restarted after the run" if restarted_after_run
                                   else "no restart explains it"))
            run = (rec or {}).get("run") or {}
            if run.get("checksum_ok") is not True:
                out["wrong"].append(f"a finished run ({verdict}) whose QueryLog the host did "
                                    f"not match to the reply's checksum "
                                    f"(checksum_ok={run.get('checksum_ok')})")
            if run.get("rows") != kept["rows"]:
                out["wrong"].append(f"{kept['rows']} rows kept, the reply said {run.get('rows')}")
        out.update(outcome="completed", reason=str(verdict), reason_key=str(verdict))
        if verdict == "INVALID":
            why = "; ".join((rec or {}).get("invalid_reasons") or host.get("invalid_reasons")
                            or [])
            out["reason"] = f"INVALID: {why}"
        return out
    # ended with an error: what was kept must be the device's, in order
    if dev_ok:
        out["checked"] = "the device's log (prefix)"
        if kept["rows"] > device["rows"]:
            out["wrong"].append(f"{kept['rows']} rows kept, more than the device's "
                                f"{device['rows']}")
        diff = _rows_differ(kept, device, min(kept["rows"], device["rows"]))
        if diff:
            out["wrong"].append(f"kept rows are not a prefix of the device's log: {diff}")
    else:
        out["checked"] = "LoadGen's sample sequence and the timestamps' rules"
    if rec is not None and rec.get("result") == "VALID":
        out["wrong"].append("result.json says VALID for a run that ended with an error")
    error = host.get("error") or "; ".join(host.get("invalid_reasons") or [])
    if not error:
        out.update(outcome="unexplained", reason=f"exit {host.get('exit_code')} without a "
                                                 "reason", reason_key="no reason")
        return out
    out.update(outcome="invalid", reason=error, reason_key=reason_key(error))
    return out


# ============================================================================ one schedule


class Events:
    """events.jsonl as the host writes it, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path, self.pos, self.buf = path, 0, b""
        self.items: list[dict[str, Any]] = []
        self.first: dict[str, float] = {}

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return
        self.pos += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.strip():
                e = json.loads(line)
                self.items.append(e)
                self.first.setdefault(e["ev"], e["t"])


@dataclass
class Applied:
    fault: Fault
    start: float = 0.0
    end: float = 0.0
    cut: bool = False  # ended early: the host finished first


def run_schedule(sched: Schedule, work: Path, pyz: str, limit: float | None = None) -> dict:
    """Run one schedule in ``work``; returns its record (also written to work/record.json)."""
    from edgeperf.testing.line_sim import LineSim

    work.mkdir(parents=True, exist_ok=True)
    run_dir = work / "run"
    limit = limit or sched.limit_s()
    sim = LineSim(sched.baud, seed=zlib.crc32(sched.key.encode())).start()
    rate = rate_of(sched.baud)
    sup = Supervisor(pyz, sim.device_path, sched.baud, work / "agent-cache", work)
    sup.start()
    cfg = {"board": f"serial://{sim.host_path}?baud={sched.baud}", "out_dir": str(run_dir),
           "events": str(work / "events.jsonl"), "result": str(work / "host.json")}
    (work / "host-config.json").write_text(json.dumps(cfg))
    t0 = time.monotonic()
    host_err = open(work / "host.log", "w")
    host = subprocess.Popen([sys.executable, str(HERE), "--_host", str(work / "host-config.json")],
                            stdin=subprocess.DEVNULL, stdout=host_err, stderr=subprocess.STDOUT)
    host_err.close()
    events = Events(work / "events.jsonl")
    todo = [Applied(f) for f in sched.faults]
    begun: list[Applied] = []
    active: list[Applied] = []
    restarts: list[Applied] = []  # killed, waiting for the new start
    host_rss = {"first": 0, "max": 0}
    hang = False
    next_rss = 0.0

    def anchor(phase: str) -> float | None:
        if phase == "connect":
            return events.first.get("start")
        run = events.first.get("run")
        if run is None:
            return None
        return run + (RUN["min_duration_ms"] / 1000 if phase == "tail" else 0.0)

    def set_line() -> None:
        flips = [a.fault.rate for a in active if a.fault.kind == "flip"]
        drops = [a.fault.rate for a in active if a.fault.kind == "drop"]
        sim.set_faults(flip_rate=max(flips, default=0.0), drop_rate=max(drops, default=0.0))
        if any(a.fault.kind == "pull" for a in active):
            sim.pull()
        else:
            sim.plug()

    def begin(a: Applied, now: float) -> None:
        f = a.fault
        a.start = now
        begun.append(a)
        if f.kind == "garbage":
            for d in (("to_host", "to_device") if f.direction == "both" else (f.direction,)):
                sim.burst(d, f.nbytes)
            a.end = now + f.nbytes / rate  # its last byte has crossed the line
        elif f.kind == "restart":
            sup.kill(f.duration_s)
            restarts.append(a)
            return
        else:
            a.end = now + f.duration_s
            active.append(a)
            set_line()

    try:
        while True:
            now = time.monotonic()
            events.poll()
            for a in list(todo):
                at = anchor(a.fault.phase)
                if at is not None and now >= at + a.fault.offset_s:
                    todo.remove(a)
                    begin(a, now)
            for a in list(active):
                if now >= a.end:
                    active.remove(a)
                    set_line()
            started = sup.poll(now)
            if started is not None:
                for a in restarts:
                    a.end = started
                restarts.clear()
            if now >= next_rss:
                next_rss = now + RSS_EVERY_S
                sup.sample()
                st = _status(host.pid)
                if st and now - t0 >= SETTLED_S:
                    host_rss["first"] = host_rss["first"] or st.get("VmRSS", 0)
                    host_rss["max"] = max(host_rss["max"], st.get("VmRSS", 0))
            if host.poll() is not None:
                break
            if now - t0 > limit:
                hang = True
                host.kill()
                host.wait()
                break
            time.sleep(TICK_S)
        t_end = time.monotonic()
        events.poll()
        for a in active:  # the host finished first: the line is made clean at once
            a.end, a.cut = t_end, True
        active.clear()
        set_line()
        while restarts:  # a kill waiting for its restart: the supervisor starts it now
            started = sup.poll(max(time.monotonic(), sup.start_at or 0.0) + 1e-6)
            if started is None:
                time.sleep(TICK_S)
                continue
            for a in restarts:
                a.end, a.cut = started, True
            restarts.clear()
        sup.poll(time.monotonic())  # an agent that exited by itself meanwhile
        host_out = json.loads((work / "host.json").read_text()) \
            if (work / "host.json").exists() else None
        device = None
        if not hang:
            device = fetch_device_log(sim.host_path, sched.baud)
            if "error" not in device:
                np.savez(work / "device_log.npz", issue=device["issue"], done=device["done"],
                         sample=device["sample"], checksum=device["checksum"])
        sup.sample()
    finally:
        sup.stop()
        if host.poll() is None:
            host.kill()
            host.wait()
        line = {d.name: asdict(d.stats) for d in (sim.to_device, sim.to_host)}
        sim.close()
    run_t = events.first.get("run")
    restarted_after_run = run_t is not None and any(
        a.fault.kind == "restart" and a.start >= run_t for a in begun)
    verdict = classify(run_dir, host_out, device, hang, restarted_after_run)
    faults_rec = [dict(asdict(a.fault), applied=a in begun,
                       start=round(a.start - t0, 4) if a in begun else None,
                       end=round(a.end - t0, 4) if a in begun else None, cut=a.cut)
                  for a in [*begun, *todo]]
    windows = recovery_windows([(a.start, a.end, a.fault.kind) for a in begun],
                               events.items, t0)
    agents = [dict(i, started=round(i["started"] - t0, 3),
                   ended=round(i["ended"] - t0, 3) if i["ended"] else None)
              for i in sup.instances]
    selfexit = [i for i in sup.instances if i["how"] == "exited by itself"]
    verdict["notes"] += [f"agent {i['pid']} exited by itself (code {i['code']})"
                         for i in selfexit]
    if selfexit and verdict["outcome"] in ("completed", "invalid"):
        verdict["outcome"], verdict["reason_key"] = "unexplained", "the agent exited by itself"
    kinds = {a.fault.kind for a in begun}
    verdict["restart_applied"] = "restart" in kinds
    verdict["reason_names_restart"] = "restart" in verdict["reason"].lower()
    host_hwm = max(host_rss["max"], (host_out or {}).get("vmhwm", 0))
    mem = {"agent_peak": max([i["hwm"] for i in sup.instances] + [0]),
           "agent_growth": max([i["rss_max"] - i["rss_first"] for i in sup.instances
                                if i["rss_first"]] + [0]),
           "host_peak": host_hwm,
           "host_growth": host_rss["max"] - host_rss["first"] if host_rss["first"] else 0}
    mem["flags"] = [f"{who} {what}" for who, what, bad in (
        ("agent", f"peak {mem['agent_peak'] >> 20} MiB", mem["agent_peak"] > AGENT_RSS_LIMIT),
        ("agent", f"grew {mem['agent_growth'] >> 20} MiB", mem["agent_growth"] > GROWTH_LIMIT),
        ("host", f"peak {mem['host_peak'] >> 20} MiB", mem["host_peak"] > HOST_RSS_LIMIT),
        ("host", f"grew {mem['host_growth'] >> 20} MiB", mem["host_growth"] > GROWTH_LIMIT))
        if bad]
    rec = {"seed": sched.seed, "index": sched.index, "key": sched.key, "baud": sched.baud,
           "limit_s": round(limit, 1), "took_s": round(t_end - t0, 2),
           "faults": faults_rec, "windows": windows, **verdict, "memory": mem,
           "agents": agents, "line": line, "host": _host_summary(host_out),
           "events": [dict(e, t=round(e["t"] - t0, 4)) for e in events.items
                      if e["ev"] not in ("spill", "rx")][:200]}
    (work / "record.json").write_text(json.dumps(rec, indent=1, default=str))
    return rec


def recovery_windows(spans: list[tuple[float, float, str]], events: list[dict[str, Any]],
                     t0: float) -> list[dict[str, Any]]:
    """Overlapping faults merged into stretches; each with its recovery time: from its end
    to the host's first data event after it (None: the host had finished by then)."""
    merged: list[list[Any]] = []
    for start, end, kind in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].append(kind)
        else:
            merged.append([start, end, [kind]])
    data = sorted(e["t"] for e in events if e["ev"] in DATA_EVENTS)
    link = sorted(e["t"] for e in events if e["ev"] in DATA_EVENTS or e["ev"] == "rx")
    out = []
    for start, end, kinds in merged:
        nxt = next((t for t in data if t > end), None)
        raw = next((t for t in link if t > end), None)
        out.append({"start": round(start - t0, 4), "end": round(end - t0, 4), "kinds": kinds,
                    "recovery_s": round(nxt - end, 4) if nxt is not None else None,
                    "link_recovery_s": round(raw - end, 4) if raw is not None else None})
    return out


def _host_summary(h: dict[str, Any] | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {k: h.get(k) for k in ("exit_code", "error", "verdict", "ran", "crash",
                                  "invalid_reasons")}


# ============================================================================ many schedules


def runner_main(args: argparse.Namespace) -> int:
    """``--_schedule FILE``: one schedule in its own process (the orchestrator can kill it
    and everything it started, as a group)."""
    sched = schedule_from_dict(json.loads(Path(args._schedule).read_text()))
    run_schedule(sched, Path(args.work), args.pyz, args.limit)
    return 0


@dataclass
class Job:
    sched: Schedule
    work: Path
    proc: subprocess.Popen
    started: float
    deadline: float


def _runner_failed(job: Job, why: str, outcome: str) -> dict[str, Any]:
    log = job.work / "runner.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    return {"seed": job.sched.seed, "index": job.sched.index, "key": job.sched.key,
            "baud": job.sched.baud, "outcome": outcome, "reason": why, "reason_key": why,
            "lost": 0, "wrong": [], "notes": [tail], "took_s": round(time.monotonic()
                                                                        - job.started, 1),
            "faults": [dict(asdict(f), applied=None) for f in job.sched.faults],
            "windows": [], "memory": {"agent_peak": 0, "host_peak": 0, "flags": []}}


def run_many(scheds: list[Schedule], jobs: int, root: Path, pyz: str,
             limit: float | None, done: Any, env: dict[str, str] | None = None) -> None:
    """Each schedule in a process of its own, ``jobs`` at once; ``done(record)`` for each.
    ``env``: the schedules' environment (a code snapshot's PYTHONPATH)."""
    queue = list(scheds)
    running: list[Job] = []
    while queue or running:
        while queue and len(running) < jobs:
            s = queue.pop(0)
            work = root / f"s{s.seed}-{s.index:05d}"
            work.mkdir(parents=True, exist_ok=True)
            (work / "schedule.json").write_text(json.dumps(asdict(s)))
            log = open(work / "runner.log", "w")
            cmd = [sys.executable, str(HERE), "--_schedule", str(work / "schedule.json"),
                   "--work", str(work), "--pyz", pyz]
            if limit:
                cmd += ["--limit", str(limit)]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, env=env,
                                 stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            now = time.monotonic()
            running.append(Job(s, work, p, now, now + (limit or s.limit_s()) + RUNNER_EXTRA_S))
        time.sleep(0.1)
        for job in list(running):
            code = job.proc.poll()
            if code is None and time.monotonic() < job.deadline:
                continue
            running.remove(job)
            if code is None:  # the schedule's own process is stuck: everything it started goes
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job.proc.pid, signal.SIGKILL)
                job.proc.wait()
                rec = _runner_failed(job, "the schedule's process ran past its limit", "hang")
            else:
                with contextlib.suppress(ProcessLookupError):  # strays of a failed runner
                    os.killpg(job.proc.pid, signal.SIGKILL)
                path = job.work / "record.json"
                rec = json.loads(path.read_text()) if path.exists() else _runner_failed(
                    job, f"the schedule's process failed (exit {code})", "unexplained")
            rec["work"] = str(job.work)
            done(rec)


BAD = ("hang", "unexplained")


def is_bad(r: dict[str, Any]) -> bool:
    return r["outcome"] in BAD or r.get("lost") or r.get("wrong") or \
        (r.get("memory") or {}).get("flags")


def replay_command(r: dict[str, Any], bauds: tuple[int, ...]) -> str:
    extra = f" --baud {bauds[0]}" if len(bauds) == 1 else ""
    return f".venv/bin/python benchmarks/soak_serial.py --replay {r['key']}{extra}"


def line_of(r: dict[str, Any]) -> str:
    faults = ", ".join(Fault(**{k: v for k, v in f.items() if k in Fault.__dataclass_fields__})
                       .describe() + ("" if f.get("applied") else " [not applied]")
                       for f in r["faults"])
    rec = [w["recovery_s"] for w in r.get("windows", []) if w.get("recovery_s") is not None]
    what = r["outcome"] + (f" ({r['reason_key']})" if r["outcome"] != "completed"
                           else f" ({r['reason_key']}, vs {r.get('checked')})")
    flags = ""
    if r.get("lost"):
        flags += f" LOST {r['lost']}"
    if r.get("wrong"):
        flags += f" WRONG: {r['wrong'][0]}"
    if (r.get("memory") or {}).get("flags"):
        flags += f" MEMORY: {', '.join(r['memory']['flags'])}"
    worst = f"{max(rec):4.2f}s" if rec else "   - "
    return (f"{r['key']:>9} {r['baud']:>6} {r['took_s']:5.1f}s rows={r.get('rows_kept', 0):<5} "
            f"rec={worst} {what}{flags} | {faults}")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


def summarise(records: list[dict[str, Any]], wall_s: float, jobs: int) -> dict[str, Any]:
    by = lambda o: [r for r in records if r["outcome"] == o]  # noqa: E731
    completed = by("completed")
    invalid = by("invalid")
    reasons: dict[str, int] = {}
    for r in invalid:
        reasons[r["reason_key"]] = reasons.get(r["reason_key"], 0) + 1
    verdicts: dict[str, int] = {}
    for r in completed:
        verdicts[r["reason_key"]] = verdicts.get(r["reason_key"], 0) + 1
    faults = [f for r in records for f in r["faults"]]
    kinds = {k: sum(1 for f in faults if f["kind"] == k and f.get("applied")) for k in KINDS}
    windows = [(w["recovery_s"], r, w) for r in records for w in r.get("windows", [])
               if w.get("recovery_s") is not None]
    recs = [w[0] for w in windows]
    worst = max(windows, key=lambda w: w[0], default=None)
    links = [(w["link_recovery_s"], r) for r in records for w in r.get("windows", [])
             if w.get("link_recovery_s") is not None]
    worst_link = max(links, key=lambda w: w[0], default=None)
    by_kind: dict[str, list[float]] = {}
    for rec_s, _, w in windows:
        by_kind.setdefault("+".join(sorted(set(w["kinds"]))), []).append(rec_s)
    mem = [r.get("memory") or {} for r in records]
    return {
        "schedules": len(records),
        "by_baud": {b: sum(1 for r in records if r["baud"] == b) for b in BAUDS},
        "faults_applied": kinds,
        "faults_not_applied": sum(1 for f in faults if f.get("applied") is False),
        "completed": len(completed), "completed_verdicts": verdicts,
        "completed_vs_device_log": sum(1 for r in completed
                                       if r.get("checked") == "the device's log"),
        "completed_vs_reply_only": sum(1 for r in completed
                                       if r.get("checked") == "the run reply's checksum only"),
        "invalid": len(invalid), "invalid_reasons": dict(sorted(reasons.items(),
                                                                key=lambda kv: -kv[1])),
        "invalid_with_restart_named": sum(1 for r in invalid if r.get("reason_names_restart")),
        "invalid_with_restart_applied": sum(1 for r in invalid if r.get("restart_applied")),
        "unexplained": len(by("unexplained")),
        "lost_queries": sum(int(r.get("lost") or 0) for r in records),
        "schedules_losing": sum(1 for r in records if r.get("lost")),
        "wrong_results": sum(1 for r in records if r.get("wrong")),
        "hangs": len(by("hang")),
        "recovery": {"windows": len(recs), "worst_s": worst[0] if worst else None,
                     "worst_key": worst[1]["key"] if worst else None,
                     "worst_kinds": worst[2]["kinds"] if worst else None,
                     "worst_baud": worst[1]["baud"] if worst else None,
                     "median_s": statistics.median(recs) if recs else None,
                     "p90_s": pct(recs, 0.9) if recs else None,
                     "worst_by_kind": {k: max(v) for k, v in sorted(by_kind.items())},
                     "link_worst_s": worst_link[0] if worst_link else None,
                     "link_worst_key": worst_link[1]["key"] if worst_link else None,
                     "link_median_s": statistics.median([x[0] for x in links])
                     if links else None},
        "memory": {"agent_peak": max([m.get("agent_peak", 0) for m in mem] + [0]),
                   "host_peak": max([m.get("host_peak", 0) for m in mem] + [0]),
                   "agent_growth_max": max([m.get("agent_growth", 0) for m in mem] + [0]),
                   "host_growth_max": max([m.get("host_growth", 0) for m in mem] + [0]),
                   "flagged": sum(1 for m in mem if m.get("flags"))},
        "wall_s": wall_s, "jobs": jobs,
        "schedule_s_median": statistics.median([r["took_s"] for r in records])
        if records else None,
    }


def print_summary(s: dict[str, Any], bad: list[dict[str, Any]], bauds: tuple[int, ...],
                  work_root: Path | None) -> None:
    mib = lambda b: f"{b / (1 << 20):.1f} MiB"  # noqa: E731
    print()
    print(f"schedules: {s['schedules']} ("
          + ", ".join(f"{n} at {b}" for b, n in s["by_baud"].items() if n) + ")")
    print("faults applied: " + ", ".join(f"{k} {n}" for k, n in s["faults_applied"].items())
          + f"; not applied (the run was over first): {s['faults_not_applied']}")
    print(f"completed:            {s['completed']} ("
          + ", ".join(f"{k} {n}" for k, n in s["completed_verdicts"].items())
          + f"; checked against the device's own log: {s['completed_vs_device_log']}, "
            f"against the run reply's checksum only: {s['completed_vs_reply_only']})")
    print(f"invalid with reason:  {s['invalid']}")
    for k, n in s["invalid_reasons"].items():
        print(f"    {n:5d}  {k}")
    print(f"    (of them with an agent restart applied: {s['invalid_with_restart_applied']}, "
          f"whose reason names the restart: {s['invalid_with_restart_named']})")
    print(f"unexplained endings:  {s['unexplained']} (must be 0)")
    print(f"lost queries:         {s['lost_queries']} (must be 0; in "
          f"{s['schedules_losing']} schedules)")
    print(f"wrong results:        {s['wrong_results']} (must be 0)")
    print(f"hangs:                {s['hangs']} (must be 0)")
    r = s["recovery"]
    if r["worst_s"] is not None:
        print(f"recovery (fault end -> data on the host again), {r['windows']} stretches: worst "
              f"{r['worst_s']:.2f} s (schedule {r['worst_key']}, {'+'.join(r['worst_kinds'])} "
              f"at {r['worst_baud']}), median {r['median_s']:.2f} s, p90 {r['p90_s']:.2f} s")
        print("    worst by kind: " + ", ".join(f"{k} {v:.2f} s"
                                                 for k, v in r["worst_by_kind"].items()))
    if r["link_worst_s"] is not None:
        print(f"link recovery (fault end -> the reliable layer delivers bytes again): worst "
              f"{r['link_worst_s']:.2f} s (schedule {r['link_worst_key']}), median "
              f"{r['link_median_s']:.2f} s")
    m = s["memory"]
    print(f"peak RSS (VmHWM):     agent {mib(m['agent_peak'])}, host {mib(m['host_peak'])}; "
          f"largest growth within a process: agent {mib(m['agent_growth_max'])}, host "
          f"{mib(m['host_growth_max'])}; flagged: {m['flagged']}")
    print(f"total time:           {s['wall_s']:.0f} s ({s['jobs']} at once; a schedule takes "
          f"{s['schedule_s_median'] or 0:.1f} s, median)")
    for b in bad:
        print(f"BAD {b['key']}: {b['outcome']} {b.get('reason', '')[:200]}; lost "
              f"{b.get('lost')}, wrong {b.get('wrong')}; files: {b.get('work')}; replay: "
              f"{replay_command(b, bauds)}")
    if bad and work_root is not None:
        print(f"the bad schedules' files are kept under {work_root}")


def print_replay(r: dict[str, Any]) -> None:
    print(f"schedule {r['key']} at {r['baud']} baud, limit {r.get('limit_s')} s, "
          f"took {r['took_s']} s")
    print("faults:")
    for f in r["faults"]:
        desc = Fault(**{k: v for k, v in f.items() if k in Fault.__dataclass_fields__}).describe()
        when = (f"applied {f['start']:.3f}-{f['end']:.3f} s" + (" (cut: the host finished)"
                                                                 if f.get("cut") else "")
                if f.get("applied") else "not applied (the run was over first)")
        print(f"  {desc}: {when}")
    print("agents: " + "; ".join(f"pid {a['pid']} {a['started']:.3f}-{a['ended']} s "
                                 f"({a['how']}, code {a['code']})" for a in r.get("agents", [])))
    print("host events (s after the host started; spill writes left out):")
    for e in r.get("events", []):
        print(f"  {e['t']:8.3f}  {e['ev']}" + (f" {e['queries']}" if "queries" in e else ""))
    for w in r.get("windows", []):
        print(f"fault stretch {w['start']:.3f}-{w['end']:.3f} s ({'+'.join(w['kinds'])}): "
              f"recovery {w['recovery_s']} s (link: {w.get('link_recovery_s')} s)")
    print(f"outcome: {r['outcome']}: {r.get('reason')}")
    print(f"checked against: {r.get('checked')}; rows kept {r.get('rows_kept')}, device "
          f"{r.get('rows_device')}; lost {r.get('lost')}; wrong {r.get('wrong')}")
    for n in r.get("notes", []):
        print(f"note: {n}")
    print(f"line: {json.dumps(r.get('line'))}")
    print(f"memory: {json.dumps(r.get('memory'))}")
    print(f"files: {r.get('work')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="schedules (default 1000)")
    ap.add_argument("--quick", action="store_true", help="50 schedules")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="schedules at once (default 1)")
    ap.add_argument("--baud", type=int, choices=BAUDS, action="append",
                    help="only this baud (default: 115200 and 921600 in turn)")
    ap.add_argument("--json", metavar="FILE", help="the raw results ('-': stdout)")
    ap.add_argument("--replay", metavar="SEED:INDEX", help="run one schedule again, verbosely")
    ap.add_argument("--keep", metavar="DIR", help="keep every schedule's files under DIR "
                                                  "(default: a temporary directory, and only "
                                                  "the bad schedules' files are kept)")
    ap.add_argument("--limit", type=float, help="the host's hard limit, s (default: derived)")
    ap.add_argument("--quiet", action="store_true", help="no line a schedule")
    ap.add_argument("--live", action="store_true",
                    help="run the working tree's code as it is at each schedule's start "
                         "(default: a copy of host/, device_agent/, boards/ taken at the "
                         "soak's start, so that edits made meanwhile do not mix versions)")
    ap.add_argument("--_host", help=argparse.SUPPRESS)
    ap.add_argument("--_schedule", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--pyz", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._host:
        return host_main(args._host)
    if args._schedule:
        return runner_main(args)
    from edgeperf.links.bundle import local_agent_path

    bauds = tuple(sorted(set(args.baud))) if args.baud else BAUDS
    if args.replay:
        seed_s, _, idx_s = args.replay.partition(":")
        scheds = [make_schedule(int(seed_s), int(idx_s), bauds)]
    else:
        n = 50 if args.quick else args.n
        scheds = [make_schedule(args.seed, i, bauds) for i in range(n)]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="soak-serial-"))
    root.mkdir(parents=True, exist_ok=True)
    env = None
    if args.live:
        pyz = str(local_agent_path())  # one agent build for the whole soak
    else:
        env, pyz = snapshot(root / "code")
    keep_all = bool(args.keep or args.replay)
    out = sys.stderr if args.json == "-" else sys.stdout
    with contextlib.redirect_stdout(out):
        _common.print_header(f"serial fault soak: {len(scheds)} schedules, seed "
                             f"{scheds[0].seed}, bauds {', '.join(map(str, bauds))}, "
                             f"{args.jobs} at once; agent {Path(pyz).name[:16]}; files {root}")
    records: list[dict[str, Any]] = []
    t0 = time.monotonic()

    def done(r: dict[str, Any]) -> None:
        records.append(r)
        if not args.quiet and not args.replay:
            print(line_of(r), file=out, flush=True)
        if not keep_all and not is_bad(r):
            shutil.rmtree(r["work"], ignore_errors=True)
        if args.json and args.json != "-" and len(records) % 10 == 0:
            _write_json(args.json, records, summarise(records, time.monotonic() - t0,
                                                      args.jobs), partial=True)

    run_many(scheds, max(1, args.jobs), root, pyz, args.limit, done, env)
    records.sort(key=lambda r: (r["seed"], r["index"]))
    summary = summarise(records, time.monotonic() - t0, args.jobs)
    bad = [r for r in records if is_bad(r)]
    with contextlib.redirect_stdout(out):
        if args.replay:
            print_replay(records[0])
        print_summary(summary, bad, bauds, root if bad else None)
    if args.json:
        _write_json(args.json, records, summary, partial=False)
    if not keep_all and not bad:
        shutil.rmtree(root, ignore_errors=True)
    failed = summary["lost_queries"] or summary["wrong_results"] or summary["hangs"] or \
        summary["unexplained"] or summary["memory"]["flagged"]
    return 1 if failed else 0


def snapshot(dest: Path) -> tuple[dict[str, str], str]:
    """A copy of the code the soak runs (the host package, the agent, the board profiles),
    importable ahead of the working tree's editable install; and the agent zipapp built from
    it. Returns (the environment that imports it, the zipapp's path)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    repo = HERE.parent.parent
    shutil.copytree(repo / "host", dest / "edgeperf", ignore=ignore)
    shutil.copytree(repo / "boards", dest / "edgeperf" / "_boards", ignore=ignore)
    shutil.copytree(repo / "device_agent", dest / "edgeperf_agent", ignore=ignore)
    if (repo / "firmware_bridge").is_dir():
        shutil.copytree(repo / "firmware_bridge", dest / "edgeperf_firmware", ignore=ignore)
    env = dict(os.environ, PYTHONPATH=str(dest))
    code = ("import edgeperf; from edgeperf.links.bundle import local_agent_path; "
            f"assert edgeperf.__file__.startswith({str(dest)!r}), edgeperf.__file__; "
            "print(local_agent_path())")
    pyz = subprocess.run([sys.executable, "-c", code],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    return env, pyz


def _write_json(path: str, records: list[dict[str, Any]], summary: dict[str, Any],
                partial: bool) -> None:
    doc = {"command": _common.command_line(), "machine": _common.machine(), "partial": partial,
           "summary": summary, "schedules": records}
    if path == "-":
        json.dump(doc, sys.stdout, indent=1, default=str)
        print()
        return
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
