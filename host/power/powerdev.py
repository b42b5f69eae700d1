"""power-dev's five session files, written from edgeperf's own record of a PTDaemon session.

In a real MLPerf power submission, MLCommons' power-dev pair (ptd_client_server: a client
beside the workload and a server beside PTDaemon) drives the analyser and writes
``performance/power/``, which MLCommons' power_checker reads. edgeperf talks to PTDaemon
itself and plays both roles, so it writes the same files from what it recorded while
the session ran (``SessionRecord``, kept by the PTD driver):

    client.json, server.json  power-dev's Summary layout: version, timezone, modules, sources,
                              messages, uuid, session_name, results (sha1), phases; the
                              server's also ptd_messages and ptd_config; both an "edgeperf" block
    client.log, server.log    power-dev's log line layout, one event a line, at its host time
    ptd_logs.txt              PTDaemon's console output (meter URL ``console=FILE``)

A field edgeperf has no true value for holds a value that says so ("not recorded: ..."); a
field whose true value is edgeperf's own (sources: edgeperf's code, not power-dev's;
messages: edgeperf's commands to PTDaemon, as there was no client/server protocol) holds it,
and MLCommons' checker refuses those (docs/notes/power_dev_files.md).

Result paths are power-dev's: ``run_1/`` is the testing run, which is the run directory's
top level here; ``ranging/`` and ``power/`` are the same in both.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf_agent import __version__

POWER_FILES = ("client.json", "client.log", "ptd_logs.txt", "server.json", "server.log")
# what each of power-dev's roles hashes (its own outputs), as power_checker names them
CLIENT_RESULTS = ("power/client.log", "ranging/mlperf_log_detail.txt",
                  "ranging/mlperf_log_summary.txt", "run_1/mlperf_log_detail.txt",
                  "run_1/mlperf_log_summary.txt")
SERVER_RESULTS = ("power/ptd_logs.txt", "power/server.log", "ranging/spl.txt", "run_1/spl.txt")
SUMMARY_KEYS = ("version", "timezone", "modules", "sources", "messages", "uuid",
                "session_name", "results", "phases")
FORMAT_VERSION = "1.0"  # power-dev's Summary format, not a power-dev release
NOT_STARTED = ("not recorded: edgeperf did not start PTDaemon (it connects to a daemon already "
               "running), so it does not know this")
NO_CONSOLE = ("not recorded: edgeperf was not given PTDaemon's console output. Start PTDaemon "
              "with its output redirected to a file and add console=FILE to the meter URL. "
              "Every command edgeperf sent and every reply is in server.json (ptd_messages) "
              "and server.log\n")
NOT_POWER_DEV = {
    "sources": "edgeperf's own power code (sha1 of host/power/*.py), not power-dev's: "
               "power-dev did not run",
    "modules": "edgeperf's modules that played power-dev's client and server",
    "messages": "edgeperf's commands to PTDaemon and its replies: there was no power-dev "
                "client/server protocol, so no 'mlcommons/power client vN' handshake",
}


def _now() -> tuple[float, float]:
    return time.time(), time.monotonic()


@dataclass
class SessionRecord:
    """What happened in one PTDaemon session, as it happened (host wall clock, seconds)."""

    where: str = ""
    meter_url: str = ""
    console_path: str | None = None
    device_type: int | None = None  # declared in the meter URL (device_type=N)
    client_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    server_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    messages: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, list[list[float]]] = field(
        default_factory=lambda: {"ranging": [], "testing": []})
    events: list[tuple[float, str]] = field(default_factory=list)
    console: str | None = None  # PTDaemon's console output, read when the session closed
    console_error: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources:  # at the session's start, as power-dev hashes its own
            self.sources, self.modules = _sources()

    def message(self, cmd: str, cmd_time: float, reply: str | None, reply_time: float,
                error: str | None = None) -> None:
        m: dict[str, Any] = {"cmd": cmd, "cmd_time": cmd_time, "reply": reply,
                             "reply_time": reply_time}
        if error is not None:
            m["error"] = error
        self.messages.append(m)

    def phase(self, phase: str, n: int, what: str) -> None:
        """Step n of a phase (0 ranges being set, 1 Go answered, 2 Stop about to be sent,
        3 Stop answered and the samples read), as power-dev's phases hold them."""
        if phase not in self.phases:
            self.note(f"{phase}: {what}")
            return
        steps = self.phases[phase]
        t = list(_now())
        if len(steps) == n:
            steps.append(t)
        elif len(steps) > n:
            steps[n] = t
        self.note(f"{phase} phase, step {n}: {what}")

    def note(self, text: str) -> None:
        self.events.append((time.time(), text))


def _sources() -> tuple[dict[str, str], dict[str, str]]:
    """sha1 of edgeperf's power package files, and the loaded modules among them."""
    host = Path(__file__).resolve().parent.parent
    files = {p.relative_to(host).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
             for p in sorted((host / "power").rglob("*.py"))}
    mods = {}
    for name, mod in sorted(sys.modules.copy().items()):
        path = getattr(mod, "__file__", None)
        if name.startswith("edgeperf.power") and path:
            rel = Path(path).resolve()
            if rel.is_relative_to(host) and rel.relative_to(host).as_posix() in files:
                mods[name] = rel.relative_to(host).as_posix()
    return files, mods


def run_path(out: Path, name: str) -> Path:
    """A result's file in the run directory (power-dev's ``run_1/`` is its top level)."""
    head, _, rest = name.partition("/")
    return Path(out) / (rest if head == "run_1" else name)


def file_hashes(path: Path) -> tuple[str, str]:
    data = Path(path).read_bytes()
    return hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()


def _log_line(role: str, t: float, text: str, level: str = "INFO") -> str:
    """power-dev's ``NAME %(asctime)s [%(levelname)s] %(message)s``, local time."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    return f"{role} {stamp},{int(t % 1 * 1000):03d} [{level}] {text}\n"


def _server_log(rec: SessionRecord) -> str:
    lines = [(t, f"[edgeperf as server] {text}", "INFO") for t, text in rec.events]
    for m in rec.messages:
        lines.append((m["cmd_time"], f"sending to PTDaemon: {m['cmd']!r}", "INFO"))
        if m.get("error"):
            lines.append((m["reply_time"], f"no reply from PTDaemon: {m['error']}", "ERROR"))
        else:
            lines.append((m["reply_time"], f"PTDaemon replied: {m['reply']!r}", "INFO"))
    lines.sort(key=lambda x: x[0])
    return "".join(_log_line("edgeperf-server", t, text, lv) for t, text, lv in lines)


def _client_log(rec: SessionRecord, name: str,
                journal: list[tuple[float, str, dict[str, Any]]], written: list[str]) -> str:
    lines = [_log_line("edgeperf-client", rec.started,
                       f"session {name!r}: client uuid {rec.client_uuid}, server uuid "
                       f"{rec.server_uuid} (edgeperf plays both roles, with {rec.where})")]
    for t, ev, data in journal:
        lines.append(_log_line("edgeperf-client", t,
                               f"{ev} {json.dumps(data, sort_keys=True, default=str)}"))
    now = time.time()
    lines.append(_log_line("edgeperf-client", now, "LoadGen logs written: "
                           + (", ".join(written) or "none")))
    lines.append(_log_line("edgeperf-client", now, "hashing the session's result files"))
    return "".join(lines)


def _ptd_logs(rec: SessionRecord) -> str:
    if rec.console is None:
        return NO_CONSOLE if rec.console_path is None else (
            f"not recorded: PTDaemon's console output {rec.console_path} could not be read "
            f"when the session closed ({rec.console_error})\n")
    return (f"edgeperf: PTDaemon's console output follows, as read from {rec.console_path} "
            f"when the session closed ({len(rec.console.encode())} bytes)\n" + rec.console)


def _hashes(out: Path, names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    sha1, sha256 = {}, {}
    for name in names:
        p = run_path(out, name)
        if p.is_file():
            sha1[name], sha256[name] = file_hashes(p)
    return sha1, sha256


def _summary(rec: SessionRecord, name: str, role: str, results: tuple[dict, dict],
             power: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {
        "version": FORMAT_VERSION, "timezone": -time.localtime().tm_gmtoff,
        "modules": rec.modules, "sources": rec.sources, "messages": rec.messages,
        "uuid": {"client": rec.client_uuid, "server": rec.server_uuid},
        "session_name": name, "results": results[0], "phases": rec.phases}
    if role == "server":
        d["ptd_messages"] = [{"cmd": m["cmd"], "reply": m["reply"]} for m in rec.messages]
        declared = rec.device_type is not None
        d["ptd_config"] = [{
            "command": NOT_STARTED, "device_type": rec.device_type if declared else NOT_STARTED,
            "interface_flag": NOT_STARTED, "dc_flag": NOT_STARTED, "device_port": NOT_STARTED,
            "channel": NOT_STARTED,
            "edgeperf": (f"device_type {rec.device_type} was declared in the meter URL "
                         "(device_type=N), not read from PTDaemon") if declared else
                        "add device_type=N (PTDaemon's device number) to the meter URL"}]
    instrument = power.get("instrument") or {}
    d["edgeperf"] = {
        "written_by": f"edgeperf {__version__} (edgeperf.power.powerdev), playing power-dev's "
                      f"{role}", "not_power_dev": NOT_POWER_DEV,
        "results_sha256": results[1], "meter": rec.meter_url,
        "identify": instrument.get("identify"), "initial_ranges": instrument.get(
            "initial_ranges"), "ranges": instrument.get("ranges"),
        "console": rec.console_path,
        "windows": {"ranging": (power.get("ranging") or {}).get("window"),
                    "testing": power.get("window")}}
    return d


def write_session(out: Path, rec: SessionRecord, name: str,
                  journal: list[tuple[float, str, dict[str, Any]]],
                  power: dict[str, Any]) -> dict[str, str]:
    """Write power/ in ``out`` once every file it hashes is written; returns the files."""
    d = Path(out) / "power"
    d.mkdir(parents=True, exist_ok=True)
    (d / "ptd_logs.txt").write_text(_ptd_logs(rec), encoding="utf-8")
    (d / "server.log").write_text(_server_log(rec), encoding="utf-8")
    written = [n for n in CLIENT_RESULTS if n.endswith(".txt") and run_path(out, n).is_file()]
    (d / "client.log").write_text(_client_log(rec, name, journal, written), encoding="utf-8")
    for role, names in (("client", CLIENT_RESULTS), ("server", SERVER_RESULTS)):
        text = json.dumps(_summary(rec, name, role, _hashes(out, names), power), indent=4)
        (d / f"{role}.json").write_text(text + "\n", encoding="utf-8")
    return file_entries()


def file_entries() -> dict[str, str]:
    """result.json's "files" entries for power/."""
    return {f"power_dev_{n.replace('.', '_')}": f"power/{n}" for n in POWER_FILES}




def rehash(run_dir: Path, why: str) -> bool:
    """Hash the result files again after edgeperf itself edited one once the session had
    ended (submission mode's "Accuracy result" line in the summary), saying so in
    client.log; False when the run has no power-dev files."""
    d = Path(run_dir) / "power"
    if not (d / "client.json").is_file():
        return False
    with open(d / "client.log", "a", encoding="utf-8") as f:
        f.write(_log_line("edgeperf-client", time.time(), f"hashing the result files again: "
                                                          f"{why}"))
    for role, names in (("client", CLIENT_RESULTS), ("server", SERVER_RESULTS)):
        doc = json.loads((d / f"{role}.json").read_text(encoding="utf-8"))
        doc["results"], doc["edgeperf"]["results_sha256"] = _hashes(Path(run_dir), names)
        (d / f"{role}.json").write_text(json.dumps(doc, indent=4) + "\n", encoding="utf-8")
    return True


__all__ = ["CLIENT_RESULTS", "POWER_FILES", "SERVER_RESULTS", "SUMMARY_KEYS", "SessionRecord",
           "file_entries", "file_hashes", "rehash", "run_path", "write_session"]
