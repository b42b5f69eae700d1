"""The results store: real runs of the local board recorded in SQLite and in a real
PostgreSQL server (Debian's, started here), listed, shown and exported; a store that
cannot be written costs a warning, never the run; EDGEPERF_STORE=off records nothing."""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from edgeperf.cli.main import main
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.store import db, schema
from edgeperf.store.query import get_latencies, get_run, list_runs
from edgeperf.store.record import edgeperf_commit, record_run

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--scenario", "SingleStream", "--preset", "smoke", "--min-queries", "300",
       "--min-duration", "0.2", "--target-latency-ms", "0.1", "--quiet"]
# a null model runs out of LoadGen's queries at 0.1 ms expected (test_min_duration.py)
NULL = ("synthetic:null", "--target-latency-ms", "0.0001")
PG_USER = "edgeperf-pg"  # the server's user when the tests are root and there is no postgres
# the export's columns, pinned: a schema change shows here, and in docs/notes/store.md
EXPORT_COLUMNS = [
    "id", "recorded_at", "created", "run_key", "run_dir", "kind", "board", "link", "hostname",
    "cpu_model", "cpu_count", "machine", "os", "python_version", "numpy_version", "runtime",
    "runtime_version", "agent_version", "model", "model_spec", "model_sha256", "task",
    "scenario", "mode", "result", "metric_name", "metric_value", "metric_unit", "query_count",
    "sample_count", "p50_ns", "p90_ns", "p99_ns", "qps", "energy_j", "avg_watts",
    "uj_per_inference", "power_valid", "throttled", "campaign_id", "edgeperf_version",
    "edgeperf_commit", "command", "invalid_reasons", "warnings", "throttling",
    "settings_requested", "settings_effective", "summary", "power", "device", "telemetry"]


# ---------------------------------------------------------------- a real PostgreSQL
def _bindir() -> Path:
    """Debian's server binaries: pg_config's bindir, else the newest /usr/lib/postgresql/N."""
    found = []
    if shutil.which("pg_config"):
        r = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        found.append(Path(r.stdout.strip()))
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    for d in found:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    pytest.fail("PostgreSQL's server is not installed (no initdb/pg_ctl in pg_config's bindir "
                "or /usr/lib/postgresql/*/bin): apt-get install postgresql (scripts/test.sh "
                "does)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str:
    """Debian's package's ``postgres`` user, else one of ours, made now."""
    for name in ("postgres", PG_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    PG_USER], check=True, capture_output=True)
    return PG_USER


class PostgresServer:
    """initdb into a fresh directory and a postgres on a free loopback port, trust auth for
    the superuser ``edgeperf``. PostgreSQL refuses to run as root: as root, the server runs
    as an unprivileged system user (made if missing) through runuser."""

    def __init__(self) -> None:
        self.bin = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="edgeperf-pg-"))  # not under a 0700 root dir
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = _server_user()
            shutil.chown(self.dir, user)
            self.prefix = ["runuser", "-u", user, "--"]

    def _run(self, *argv: str) -> None:
        r = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{r.stdout}{r.stderr}{log}")

    def start(self) -> PostgresServer:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "edgeperf", "-A",
                  "trust", "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                  opts, "-w", "-t", "30", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://edgeperf@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if not self.dir.exists():
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                            "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    atexit.register(server.stop)  # also when the session dies before teardown
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, monkeypatch) -> str:
    """A fresh store of each kind, named by EDGEPERF_STORE as a lab would."""
    if request.param == "sqlite":
        url = str(tmp_path / "store" / "results.sqlite")
    else:
        url = request.getfixturevalue("postgres").new_database()
    monkeypatch.setenv("EDGEPERF_STORE", url)
    return url


@pytest.fixture(autouse=True)
def _own_store(tmp_path, monkeypatch):
    """Never the user's store: a test's own (the store fixture names another)."""
    monkeypatch.setenv("EDGEPERF_STORE", str(tmp_path / "own-store.sqlite"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def run(tmp_path: Path, name: str, model: str = "synthetic:busy:100", *extra: str) -> Path:
    out = tmp_path / name
    assert main([*RUN, "--model", model, "--out", str(out), *extra]) == 0
    return out


# ---------------------------------------------------------------- recorded, listed, shown
def test_runs_are_recorded_listed_shown_and_exported(store, tmp_path, capsys):
    a = run(tmp_path, "a")
    b = run(tmp_path, "b", *NULL, "--querylog", "summary")
    capsys.readouterr()
    with db.open_store(store) as st:
        rows = list_runs(st)
        assert [r["run_dir"] for r in rows] == [str(a), str(b)]
        one = get_run(st, rows[0]["id"])
        lat_a, lat_b = get_latencies(st, rows[0]["id"]), get_latencies(st, rows[1]["id"])
    rec = json.loads((a / "result.json").read_text())
    dev, summ = rec["device"], rec["summary"]
    expect = {"kind": "loadgen", "board": "local", "link": "local", "model": "synthetic:busy:100",
              "model_spec": "synthetic:busy:100", "model_sha256": None, "task": None,
              "scenario": "SingleStream", "mode": "PerformanceOnly", "result": "VALID",
              "metric_name": "early_stopping_latency_ns", "metric_unit": "ns",
              "metric_value": summ["metric_value"], "query_count": summ["query_count"],
              "p50_ns": summ["samples"]["percentiles"]["50.00"],
              "p90_ns": summ["samples"]["percentiles"]["90.00"],
              "p99_ns": summ["samples"]["percentiles"]["99.00"],
              "qps": summ["qps_with_overhead"], "cpu_model": dev["cpu_model"],
              "cpu_count": dev["cpu_count"], "machine": dev["machine"], "os": dev["system"],
              "hostname": dev["hostname"], "python_version": dev["python"],
              "numpy_version": dev["numpy"], "runtime": "synthetic",
              "agent_version": dev["agent_version"], "edgeperf_version": rec["edgeperf_version"],
              "edgeperf_commit": edgeperf_commit(), "campaign_id": None, "throttled": 0,
              "energy_j": None, "power_valid": None, "summary": summ,
              "settings_requested": rec["settings"]["requested"],
              "settings_effective": rec["settings"]["effective"], "device": dev,
              "telemetry": rec["telemetry"], "invalid_reasons": [], "warnings": []}
    assert {k: one[k] for k in expect} == expect
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert one["edgeperf_commit"].removesuffix("-dirty") == head
    assert one["recorded_at"].endswith("Z") and one["created"] == rec["created"]
    # the raw latencies, exact: querylog.npz's, and a summarised run's latencies_sorted.npy
    q = read_querylog(a / "querylog.npz")
    assert lat_a[1] == len(lat_a[0]) == summ["query_count"]
    assert np.array_equal(lat_a[0], q["done_ns"] - q["issue_ns"])
    assert np.array_equal(lat_b[0], np.load(b / "latencies_sorted.npy"))

    assert main(["results", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["id", "recorded", "(UTC)"]
    assert [ln.split()[3] for ln in lines[1:]] == ["synthetic:busy:100", "synthetic:null"]
    assert lines[1].endswith(str(a)) and " VALID " in lines[1]
    assert main(["results", "show", str(one["id"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_dir"] == str(a) and shown["summary"] == summ
    assert shown["latencies_stored"] == {"kept": lat_a[1], "count": lat_a[1]}
    assert main(["results", "show", str(one["id"])]) == 0
    assert f"{'p90_ns':19} {summ['samples']['percentiles']['90.00']}\n" in \
        capsys.readouterr().out

    assert main(["results", "export", "--csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == EXPORT_COLUMNS == schema.COLUMN_NAMES
    assert [r[EXPORT_COLUMNS.index("run_dir")] for r in table[1:]] == [str(a), str(b)]
    assert json.loads(table[1][EXPORT_COLUMNS.index("summary")]) == summ
    out = tmp_path / "export.json"
    assert main(["results", "export", "--json", "--out", str(out)]) == 0
    exported = json.loads(out.read_text())
    assert [list(r) for r in exported] == [EXPORT_COLUMNS] * 2
    assert exported[0]["summary"] == summ and exported[0]["p90_ns"] == expect["p90_ns"]
    assert exported[1]["model"] == "synthetic:null"


def test_filters(store, tmp_path, capsys):
    run(tmp_path, "a")
    b = run(tmp_path, "b", *NULL)
    with db.open_store(store) as st:
        record_run(b, st, campaign="nightly-7")  # the same run: recorded once, no campaign
        c = tmp_path / "c"
        shutil.copytree(b, c)  # another directory: another run
        record_run(c, st, campaign="nightly-7")
    capsys.readouterr()

    def listed(*flags: str) -> list[str]:
        assert main(["results", "list", *flags]) == 0
        return [ln.split()[-1] for ln in capsys.readouterr().out.splitlines()[1:]]

    assert listed() == [str(tmp_path / n) for n in "abc"]
    assert listed("--model", "synthetic:null") == [str(b), str(c)]
    assert listed("--campaign", "nightly-7") == [str(c)]
    assert listed("--board", "local", "--scenario", "SingleStream", "--limit", "1") == [str(c)]
    assert listed("--board", "raspberry-pi-4") == []
    assert listed("--result", "invalid") == []
    assert len(listed("--since", "1h")) == 3
    assert listed("--since", "2999-01-01") == []
    assert main(["results", "export", "--json", "--model", "synthetic:busy:100"]) == 0
    assert [r["run_dir"] for r in json.loads(capsys.readouterr().out)] == [
        str(tmp_path / "a")]
    assert main(["results", "list", "--since", "last tuesday"]) == 2
    assert "since 'last tuesday': give a date (2026-12-01)" in capsys.readouterr().err
    assert main(["results", "show", "999"]) == 2
    assert "no run 999 in results store" in capsys.readouterr().err


def test_an_mcu_run_is_recorded(tmp_path):
    out = tmp_path / "tiny"
    assert main(["run", "--board", "emulated-tiny", "--task", "ic-digits", "--mode",
                 "performance", "--tiny-window-s", "0.2", "--tiny-windows", "1", "--out",
                 str(out)]) == 3  # INVALID: Tiny wants 5 windows of 10 s
    rec = json.loads((out / "result.json").read_text())
    with db.open_store() as st:
        (row,) = [get_run(st, r["id"]) for r in list_runs(st)]
        assert get_latencies(st, row["id"]) is None
    assert {k: row[k] for k in ("kind", "board", "link", "task", "mode", "result",
                                "metric_value", "metric_unit", "model", "cpu_model")} == {
        "kind": "tiny", "board": "emulated-tiny", "link": "tiny", "task": "ic-digits:int8",
        "mode": "performance", "result": "INVALID", "metric_value": rec["value"],
        "metric_unit": "inf./sec.", "model": "ic01", "cpu_model": "edgeperf-emulated-dut"}
    assert row["invalid_reasons"] == rec["reasons"]


def test_accuracy_and_official_loadgen_runs_are_recorded(tmp_path):
    acc, perf = tmp_path / "acc", tmp_path / "official"
    assert main(["run", "--task", "ic-digits:fp32", "--mode", "accuracy", "--out", str(acc),
                 "--quiet"]) == 0
    assert main([*RUN, "--model", "synthetic:busy:100", "--loadgen", "official", "--out",
                 str(perf)]) == 0
    a_rec = json.loads((acc / "result.json").read_text())
    p_rec = json.loads((perf / "result.json").read_text())
    with db.open_store() as st:
        rows = {r["run_dir"]: get_run(st, r["id"]) for r in list_runs(st)}
        assert get_latencies(st, rows[str(perf)]["id"]) is None  # LoadGen keeps them
    a, p = rows[str(acc)], rows[str(perf)]
    got = a_rec["accuracy"]
    assert {k: a[k] for k in ("mode", "task", "result", "metric_name", "metric_value",
                              "sample_count", "summary")} == {
        "mode": "AccuracyOnly", "task": "ic-digits:fp32", "result": "PASS",
        "metric_name": got["metric"], "metric_value": got["value"], "sample_count": got["count"],
        "summary": got}
    lg = p_rec["loadgen"]
    assert {k: p[k] for k in ("mode", "result", "metric_name", "metric_value", "metric_unit",
                              "query_count", "p90_ns", "summary")} == {
        "mode": "PerformanceOnly", "result": "VALID", "metric_name": "early_stopping_latency_ss",
        "metric_value": lg["metric"]["value"], "metric_unit": "ns",
        "query_count": lg["result_query_count"],
        "p90_ns": lg["result_90.00_percentile_latency_ns"], "summary": lg}


def test_run_and_campaign_record_into_the_store_given(tmp_path, capsys):
    other, default = tmp_path / "lab.sqlite", os.environ["EDGEPERF_STORE"]
    a = run(tmp_path, "a", "synthetic:busy:100", "--store", str(other))
    plan = tmp_path / "plan.toml"
    plan.write_text('models = ["synthetic:busy:100"]\nscenarios = ["SingleStream"]\n'
                    '[campaign]\nname = "s"\nout = "c"\n[[boards]]\nname = "local"\n'
                    '[settings]\nmin_duration_ms = 100\n'
                    '[settings.SingleStream]\ntarget_latency_ns = 100000\n')
    assert main(["campaign", str(plan), "--store", str(other), "--quiet"]) == 0
    with db.open_store(str(other)) as st:
        rows = list_runs(st)
    assert len(rows) == 2 and rows[0]["run_dir"] == str(a)
    assert rows[1]["campaign_id"] is not None
    with db.open_store(default) as st:
        assert list_runs(st) == []  # nothing went to the store $EDGEPERF_STORE named


def test_recording_again_updates_the_row_and_keeps_its_campaign(tmp_path):
    from edgeperf.store.record import set_campaign

    a = run(tmp_path, "a")
    with db.open_store() as st:
        (first,) = list_runs(st)
    assert set_campaign(a, "nightly-1") == 1
    rec = json.loads((a / "result.json").read_text())
    rec["accuracy"] = {"metric": "top1", "value": 0.97, "run_dir": str(tmp_path / "acc")}
    rec["command"] = "edgeperf run --mode submission"
    (a / "result.json").write_text(json.dumps(rec))
    assert record_run(a) == first["id"]
    with db.open_store() as st:
        (row,) = [get_run(st, r["id"]) for r in list_runs(st)]
        lat = get_latencies(st, row["id"])
    assert row["command"] == "edgeperf run --mode submission"
    assert row["campaign_id"] == "nightly-1" and row["recorded_at"] == first["recorded_at"]
    assert row["metric_name"] == "early_stopping_latency_ns"  # a performance run still
    assert lat[1] == rec["summary"]["query_count"]  # its latencies kept once


# ---------------------------------------------------------------- failures cost a warning
@pytest.mark.parametrize("where", ["unwritable", "directory", "not-a-database", "postgresql"])
def test_a_store_that_cannot_be_written_leaves_the_run_valid(where, tmp_path, monkeypatch,
                                                             capsys):
    url = {"unwritable": "/proc/edgeperf-nowhere/results.sqlite",  # root or not: no writing
           "directory": str(tmp_path),
           "not-a-database": str(tmp_path / "garbage.sqlite"),
           "postgresql": f"postgresql://edgeperf@127.0.0.1:{_free_port()}/nothing"}[where]
    (tmp_path / "garbage.sqlite").write_bytes(b"this is not SQLite\n" * 100)
    monkeypatch.setenv("EDGEPERF_STORE", url)
    out = run(tmp_path, "r")
    err = capsys.readouterr().err
    (warning,) = [ln for ln in err.splitlines() if "not recorded" in ln]
    assert warning.startswith("edgeperf: warning: this run is not recorded: results store ")
    assert db.shown(url) in warning and "EDGEPERF_STORE" in warning
    assert f"the run and its files in {out} are unaffected" in warning
    rec = json.loads((out / "result.json").read_text())
    assert rec["result"] == "VALID"
    assert {"querylog.npz", "mlperf_log_summary.txt", "mlperf_log_detail.txt"} <= {
        p.name for p in out.iterdir()}
    assert main(["results", "list"]) == 1  # reading it fails too, with the same words
    assert db.shown(url) in capsys.readouterr().err


def test_store_off_records_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPERF_STORE", "off")
    run(tmp_path, "r")
    assert "not recorded" not in capsys.readouterr().err
    assert not (tmp_path / "xdg-data").exists() and not list(tmp_path.glob("*.sqlite"))
    assert main(["results", "list"]) == 1
    assert "the results store is off (EDGEPERF_STORE=off)" in capsys.readouterr().err
    assert main(["results", "list", "--store", str(tmp_path / "s.sqlite")]) == 0


def test_the_default_store_is_in_the_users_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEPERF_STORE")
    assert db.store_url() == str(tmp_path / "xdg-data" / "edgeperf" / "results.sqlite")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert db.store_url() == str(tmp_path / "home/.local/share/edgeperf/results.sqlite")
    assert db.store_url("postgresql://lab/db") == "postgresql://lab/db"
    assert db.shown("postgresql://me:secret@lab:5432/db") == "postgresql://me:***@lab:5432/db"


# ---------------------------------------------------------------- one schema, many writers
_WRITER = """
import shutil, sys
from edgeperf.store.record import record_run
src, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    d = f"{src}-{tag}-{i}"
    shutil.copytree(src, d)
    record_run(d)
"""


def test_several_processes_record_into_one_sqlite_store(tmp_path):
    src = run(tmp_path, "r")
    env = dict(os.environ, EDGEPERF_STORE=str(tmp_path / "shared.sqlite"))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(src), "5", str(k)], env=env)
             for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    with db.open_store(env["EDGEPERF_STORE"]) as st:
        assert len(list_runs(st)) == 20
        assert st.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_both_databases_take_the_same_schema_and_a_newer_one_is_refused(store):
    with db.open_store(store) as st:
        if st.dialect == "sqlite":
            cols = [r["name"] for r in st.query("PRAGMA table_info(runs)")]
        else:
            cols = [r["column_name"] for r in st.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs' "
                "ORDER BY ordinal_position")]
        assert cols == EXPORT_COLUMNS
        with st.transaction():
            st.execute("UPDATE schema_version SET version = ?", (schema.SCHEMA_VERSION + 1,))
    with pytest.raises(db.StoreError, match=r"has schema version 2, newer than this "
                                            r"edgeperf's 1: upgrade edgeperf"):
        db.open_store(store)


def test_a_record_survives_its_run_directory(store, tmp_path):
    out = run(tmp_path, "gone")
    shutil.rmtree(out)
    with db.open_store(store) as st:
        (row,) = list_runs(st)
        lat, n = get_latencies(st, row["id"])
    assert row["run_dir"] == str(out) and n == row["query_count"] == len(lat)
    assert int(np.sort(lat)[int(n * 0.9)]) == row["p90_ns"]


def test_a_writer_waits_for_another_processs_transaction(tmp_path):
    """SQLite's busy timeout: a record made while another connection holds the write lock
    waits for it and then succeeds, instead of failing with "database is locked"."""
    src = run(tmp_path, "r")
    path = tmp_path / "busy.sqlite"
    db.open_store(str(path)).close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    committed = threading.Event()

    def commit() -> None:
        committed.set()
        other.execute("COMMIT")

    timer = threading.Timer(0.3, commit)
    timer.start()
    with db.open_store(str(path)) as st:
        run_id = record_run(src, st)
    assert committed.is_set()  # it could only finish after the other transaction did
    timer.join()
    other.close()
    with db.open_store(str(path)) as st:
        assert [r["id"] for r in list_runs(st)] == [run_id]
