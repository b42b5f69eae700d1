"""A run directory -> one row of ``runs`` and its raw latencies in ``run_latencies``.

``record_run(run_dir)`` reads what the run wrote (result.json, querylog.npz or, for a run
whose device summarised, latencies_sorted.npy) and inserts it; recording the same run again
returns its id, and brings its row up to date where result.json changed since (a submission's
accuracy verdict, its command line, an audit's verdict, written after the run ended), keeping
the row's campaign, which only ``set_campaign`` changes (``run_key`` names a run by its
directory, start time and device start). Performance runs scored by edgeperf, runs timed by
the official LoadGen (its detail log's figures), accuracy runs (the task's metric and
verdict) and MCU runs are all recorded.
``record_run_safely(run_dir)`` is what a run's end calls: a store that cannot be opened or
written costs one warning line on stderr, never the run's result or files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.store import db, schema
from edgeperf.store.db import Store

MAX_KEPT = 4_000_000  # latencies kept a run (32 MB before zlib); more: evenly spaced ranks
_POWER_KEYS = ("valid", "energy_j", "avg_watts", "duration_s", "uj_per_inference",
               "energy_per_query_mj", "samples_per_joule", "watts",
               "queries_per_second_per_watt", "idle_watts", "net_energy_j", "net_avg_watts",
               "energy_uncertainty_j", "clock_uncertainty_us", "invalid_reasons", "warnings")
_TINY_METRIC = {"performance": "median_throughput", "energy": "median_energy"}


def record_run(run_dir: str | Path, store: Store | None = None, *,
               campaign: str | None = None) -> int:
    """Record the run in ``run_dir`` (in ``store``, else the one ``open_store`` names) and
    return its id. StoreError when the store fails; OSError/ValueError when the directory
    holds no readable result.json."""
    run_dir = Path(run_dir).resolve()
    rec = json.loads((run_dir / "result.json").read_text())
    row = row_of(rec, run_dir, campaign=campaign)
    lat = latencies_of(rec, run_dir)
    st = store or db.open_store()
    try:
        return _insert(st, row, lat)
    except db.StoreError:
        raise
    except Exception as exc:
        raise db.StoreError(f"results store {st.where} cannot be written ({db.reason(exc)}); "
                            f"{db.FIX}") from None
    finally:
        if store is None:
            st.close()


def set_campaign(run_dir: str | Path, campaign: str | None, store: Store | None = None
                 ) -> int:
    """Put the run whose result.json is in ``run_dir`` (its run_key: not an earlier run kept
    at the same path) in ``campaign``; the number of rows changed (0: not recorded)."""
    run_dir = Path(run_dir).resolve()
    key = run_key(json.loads((run_dir / "result.json").read_text()), run_dir)
    st = store or db.open_store()
    try:
        with st.transaction():
            cur = st.execute("UPDATE runs SET campaign_id = ? WHERE run_key = ?", (campaign, key))
        return int(cur.rowcount or 0)
    finally:
        if store is None:
            st.close()


_WARNED: set[tuple[str, str]] = set()  # (run, why): a submission's runs warn once each


def record_run_safely(run_dir: str | Path) -> int | None:
    """``record_run`` at the end of a run (and after its result.json is annotated): the
    run's id, or None when the store is off (EDGEPERF_STORE=off) or failed, which prints one
    line on stderr (once per run and reason) and nothing else."""
    url = db.store_url()
    if url is None:
        return None
    try:
        return record_run(run_dir)
    except Exception as exc:  # a run never fails for its record
        why = str(exc) if isinstance(exc, db.StoreError) else (
            f"results store {db.shown(url)}: {type(exc).__name__}: {db.reason(exc)}")
        if (str(run_dir), why) in _WARNED:
            return None
        _WARNED.add((str(run_dir), why))
        print(f"edgeperf: warning: this run is not recorded: {why} (the run and its files "
              f"in {run_dir} are unaffected)", file=sys.stderr, flush=True)
        return None


_KEPT_ON_UPDATE = ("id", "recorded_at", "run_key", "campaign_id")


def _insert(st: Store, row: dict[str, Any], lat: tuple[str, np.ndarray, int] | None) -> int:
    cols = [c for c in schema.COLUMN_NAMES if c != "id"]
    with st.transaction():
        got = st.query("SELECT * FROM runs WHERE run_key = ?", (row["run_key"],))
        if got:
            old, run_id = got[0], int(got[0]["id"])
            changed = [c for c in cols if c not in _KEPT_ON_UPDATE and old.get(c) != row.get(c)]
            if changed:
                st.execute(f"UPDATE runs SET {', '.join(c + ' = ?' for c in changed)} "
                           "WHERE id = ?", [row.get(c) for c in changed] + [run_id])
            if lat is not None and not st.query(
                    "SELECT run_id FROM run_latencies WHERE run_id = ?", (run_id,)):
                _insert_latencies(st, run_id, lat)
            return run_id
        cur = st.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES "
                         f"({', '.join('?' * len(cols))}) RETURNING id",
                         [row.get(c) for c in cols])
        run_id = int(cur.fetchone()["id"])
        if lat is not None:
            _insert_latencies(st, run_id, lat)
    return run_id


def _insert_latencies(st: Store, run_id: int, lat: tuple[str, np.ndarray, int]) -> None:
    what, kept, count = lat
    st.execute("INSERT INTO run_latencies (run_id, what, count, kept, encoding, data) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               (run_id, what, count, len(kept), schema.LATENCY_ENCODING,
                encode_latencies(kept)))


def encode_latencies(lat: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(lat, dtype="<i8").tobytes(), 6)


def decode_latencies(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(zlib.decompress(bytes(data)), dtype="<i8").astype(np.int64)


def latencies_of(rec: dict[str, Any], run_dir: Path) -> tuple[str, np.ndarray, int] | None:
    """(what, latencies in ns, how many the run had) or None: each query's latency (Server:
    from its scheduled arrival), in issue order; Offline: each sample's completion time from
    the query's issue. Over MAX_KEPT, evenly spaced ranks of the sorted latencies."""
    scenario = ((rec.get("settings") or {}).get("requested") or {}).get("scenario")
    qlog = (rec.get("files") or {}).get("querylog")
    summarised = run_dir / "latencies_sorted.npy"
    if (rec.get("run") or {}).get("querylog") == "summary" and summarised.is_file():
        # every latency; its querylog.npz holds only the queries sent before the summary
        lat = np.asarray(np.load(summarised, allow_pickle=False), np.int64)
    elif qlog and (run_dir / qlog).is_file():
        q = read_querylog(run_dir / qlog)
        lat = np.asarray(q["done_ns"], np.int64) - np.asarray(q["issue_ns"], np.int64)
    else:
        return None
    what = "sample_completion_ns" if scenario == "Offline" else "query_latency_ns"
    n = len(lat)
    if n > MAX_KEPT:
        lat = np.sort(lat)[np.round(np.linspace(0, n - 1, MAX_KEPT)).astype(np.int64)]
    return what, lat, n


def run_key(rec: dict[str, Any], run_dir: Path) -> str:
    run = rec.get("run") or {}
    parts = (str(run_dir), str(rec.get("created")), str(run.get("start_ns")),
             str((rec.get("model") or {}).get("spec") or rec.get("task")), str(rec.get("mode")))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def row_of(rec: dict[str, Any], run_dir: Path, *, campaign: str | None = None
           ) -> dict[str, Any]:
    """The ``runs`` row of a result.json (a LoadGen run's, or an MCU run's)."""
    board = rec.get("board") or {}
    camp = campaign if campaign is not None else rec.get("campaign")
    if isinstance(camp, dict):
        camp = camp.get("id")
    row: dict[str, Any] = {
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "created": rec.get("created"), "run_key": run_key(rec, run_dir),
        "run_dir": str(run_dir), "board": board.get("name"), "link": board.get("link"),
        "result": rec.get("result"), "campaign_id": None if camp is None else str(camp),
        "edgeperf_version": rec.get("edgeperf_version"), "edgeperf_commit": edgeperf_commit(),
        "command": rec.get("command"), "throttled": _flag(rec.get("throttled")),
        "invalid_reasons": rec.get("invalid_reasons", rec.get("reasons")),
        "warnings": rec.get("warnings"),
        "throttling": {k: rec.get(k) for k in ("throttled", "throttled_reasons",
                                               "throttling_observable", "governor",
                                               "cool_down")},
        "telemetry": rec.get("telemetry"),
    }
    if "procedure" in rec:
        row.update(_tiny_fields(rec))
    else:
        row.update(_loadgen_fields(rec))
    for c in schema.JSON_COLUMNS:
        if row.get(c) is not None:
            row[c] = json.dumps(row[c], sort_keys=True, default=str)
    return row


def _loadgen_fields(rec: dict[str, Any]) -> dict[str, Any]:
    dev, model = rec.get("device") or {}, rec.get("model") or {}
    details = model.get("details") or {}
    settings = rec.get("settings") or {}
    req = settings.get("requested") or {}
    summ = rec.get("summary") or {}
    scen = req.get("scenario")
    stats = (summ.get("queries") if scen == "MultiStream" else summ.get("samples")) or {}
    pct = stats.get("percentiles") or {}
    runtime = details.get("runtime")
    task = rec.get("task")
    if isinstance(task, dict):
        task = f"{task['name']}:{task['variant']}" if task.get("variant") else task.get("name")
    power = rec.get("power") or {}
    qps = {"SingleStream": "qps_with_overhead", "Server": "completed_samples_per_sec",
           "Offline": "samples_per_second"}.get(scen or "")
    figures = _accuracy_fields(rec) or _official_fields(rec, scen)
    return {
        "kind": "loadgen", "hostname": dev.get("hostname"), "cpu_model": dev.get("cpu_model"),
        "cpu_count": dev.get("cpu_count"), "machine": dev.get("machine"),
        "os": dev.get("system"), "python_version": dev.get("python"),
        "numpy_version": dev.get("numpy"), "runtime": runtime,
        "runtime_version": details.get("runtime_version") or
        (dev.get("runtimes") or {}).get(runtime or ""),
        "agent_version": dev.get("agent_version"), "model": model.get("name"),
        "model_spec": model.get("spec"), "model_sha256": model.get("sha256"), "task": task,
        "scenario": scen, "mode": summ.get("mode") or req.get("mode"),
        "metric_name": summ.get("metric_name"), "metric_value": summ.get("metric_value"),
        "metric_unit": summ.get("metric_unit"), "query_count": summ.get("query_count"),
        "sample_count": summ.get("sample_count"), "p50_ns": pct.get("50.00"),
        "p90_ns": pct.get("90.00"), "p99_ns": pct.get("99.00"),
        "qps": summ.get(qps) if qps else None,
        "energy_j": power.get("energy_j"), "avg_watts": power.get("avg_watts"),
        "uj_per_inference": power.get("uj_per_inference"),
        "power_valid": _flag(power.get("valid")) if power else None,
        "settings_requested": req or None, "settings_effective": settings.get("effective"),
        "summary": summ or None, "device": dev or None,
        "power": {k: power[k] for k in _POWER_KEYS if k in power} or None,
        **figures,
    }


def _accuracy_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """An accuracy run: the task's metric (e.g. top1), its value, the verdict's figures."""
    acc = rec.get("accuracy") or {}
    if rec.get("summary") or not acc or "run_dir" in acc:
        return {}  # a performance run carries its accuracy run's verdict, not its metric
    return {"mode": "AccuracyOnly", "metric_name": acc.get("metric"),
            "metric_value": acc.get("value"), "metric_unit": None,
            "sample_count": acc.get("count"), "summary": acc}


def _official_fields(rec: dict[str, Any], scen: str | None) -> dict[str, Any]:
    """A run the official LoadGen timed: the figures its detail log gave (result.json's
    ``loadgen``); no raw latencies reach the host."""
    lg = rec.get("loadgen") or {}
    if rec.get("summary") or not lg.get("metric"):
        return {}
    pct = {k: v for k, v in lg.items() if k.endswith("_percentile_latency_ns")}
    qps = {"Server": "result_completed_samples_per_sec",
           "Offline": "result_samples_per_second"}.get(scen or "")
    name = lg["metric"].get("name") or ""
    unit = "ns" if "latency" in name else "samples/s" if "per_sec" in name else None
    return {"metric_name": name or None, "metric_value": lg["metric"].get("value"),
            "metric_unit": unit, "query_count": lg.get("result_query_count"),
            "p90_ns": pct.get("result_90.00_percentile_latency_ns"),
            "p99_ns": pct.get("result_99.00_percentile_latency_ns"),
            "qps": lg.get(qps) if qps else None, "summary": lg}


def _tiny_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """An MCU run (firmware_bridge): Tiny's figure, the DUT for a fingerprint, no latencies."""
    proc = rec.get("procedure") or {}
    dut = proc.get("dut") or {}
    mode = rec.get("mode")
    energy = proc.get("value") if mode == "energy" else None
    return {
        "kind": "tiny", "cpu_model": dut.get("name"), "runtime": dut.get("profile"),
        "model": dut.get("model"), "task": rec.get("task"), "mode": mode,
        "metric_name": proc.get("metric") or _TINY_METRIC.get(mode or "", mode),
        "metric_value": rec.get("value"), "metric_unit": rec.get("unit"),
        "uj_per_inference": energy, "query_count": proc.get("count") or None,
        "summary": {k: v for k, v in proc.items() if k != "out_dir"}, "device": dut or None,
    }


def _flag(v: Any) -> int | None:
    return None if v is None else int(bool(v))


@functools.lru_cache(maxsize=1)
def edgeperf_commit() -> str | None:
    """The git commit of the edgeperf source recording the run (``-dirty`` with changes to
    its code); None for an installed wheel, or without git."""
    src = Path(__file__).resolve().parents[2]
    if not ((src / "pyproject.toml").is_file() and (src / "host" / "__init__.py").is_file()):
        return None  # not a clone: a wheel's site-packages may sit inside another repo
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "host",
                                "device_agent", "firmware_bridge"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")
