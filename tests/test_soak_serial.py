"""The serial fault soak (benchmarks/soak_serial.py): its classifier on doctored run
directories (it must refuse every one), and four fixed schedules end to end, one of each
fault kind, through the real line simulator, agent zipapp and host run path."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeperf.links.bundle import local_agent_path
from edgeperf.outputs.querylog_file import write_querylog
from edgeperf.run.querylog import QueryLogCollector, QueryLogData
from edgeperf.testing.line_sim import LineSim

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import soak_serial as soak  # noqa: E402

ORDER = {"set_size": soak.SAMPLE_COUNT, "min_queries": 100, "seed": 12345}


# ---------------------------------------------------------------- a run directory, by hand


def _body(issue: np.ndarray, done: np.ndarray, sample: np.ndarray) -> bytes:
    return (issue.astype("<i8").tobytes() + done.astype("<i8").tobytes()
            + sample.astype("<u4").tobytes())


def make_run(tmp: Path, rows: int = 300, *, verdict: str = "VALID", exit_code: int = 0):
    """A run directory as the host writes it (its own spill and querylog.npz writers), the
    host's account and the device's log: all three agree."""
    rng = np.random.default_rng(7)
    lat = 200_000 + rng.integers(0, 5_000, rows)
    gap = 1_000 + rng.integers(0, 500, rows)
    issue = 10**12 + np.cumsum(np.r_[0, (lat + gap)[:-1]]).astype(np.int64)
    done = issue + lat
    sample = soak.expected_order(ORDER, rows).astype(np.uint32)
    run = tmp / "run"
    run.mkdir(parents=True)
    col = QueryLogCollector(run / "querylog.spill")
    half = rows // 2
    col.add(0, half, 1, _body(issue[:half], done[:half], sample[:half]))
    col.add(half, rows - half, 1, _body(issue[half:], done[half:], sample[half:]))
    col.close()
    write_querylog(run / "querylog.npz", QueryLogData(issue, done, sample, 1, int(issue[0])),
                   "SingleStream")
    crc = soak.crc_of(issue, done, sample)
    (run / "result.json").write_text(json.dumps({
        "result": verdict, "invalid_reasons": [],
        "run": {"rows": rows, "rows_received": rows, "checksum_ok": True}}))
    host = {"exit_code": exit_code, "ran": True, "verdict": verdict, "error": None,
            "invalid_reasons": [], "order": ORDER}
    device = {"rows": rows, "checksum": crc, "issue": issue, "done": done, "sample": sample}
    return run, host, device


def rewrite_npz(run: Path, change) -> None:
    """querylog.npz, changed by ``change(issue, done, sample) -> (issue, done, sample)``."""
    from edgeperf.outputs.querylog_file import read_querylog

    with read_querylog(run / "querylog.npz") as z:
        issue, done, sample = (np.array(z[k]) for k in ("issue_ns", "done_ns", "sample_idx"))
    issue, done, sample = change(issue, done, sample)
    write_querylog(run / "querylog.npz", QueryLogData(np.asarray(issue, np.int64),
                                                      np.asarray(done, np.int64),
                                                      np.asarray(sample, np.uint32), 1),
                   "SingleStream")


def test_classifier_accepts_the_untouched_run(tmp_path):
    run, host, device = make_run(tmp_path)
    r = soak.classify(run, host, device)
    assert (r["outcome"], r["checked"], r["lost"], r["wrong"]) == (
        "completed", "the device's log", 0, [])


def _drop_row(i):
    return lambda a, b, c: (np.delete(a, i), np.delete(b, i), np.delete(c, i))


def _later(i, ns):
    def change(a, b, c):
        b = b.copy()
        b[i] += ns
        return a, b, c
    return change


def _swap(i):
    def change(a, b, c):
        c = c.copy()
        c[[i, i + 1]] = c[[i + 1, i]]
        return a, b, c
    return change


@pytest.mark.parametrize("change,lost", [
    (_drop_row(-1), 1),  # the last row kept missing
    (_drop_row(123), 1),  # a middle row missing
    (_later(77, 1), 0),  # one latency 1 ns longer
    (_later(5, -150_000), 0),  # a latency shorter than the model can be
    (_swap(40), 0),  # two queries' samples swapped
], ids=["last-row", "middle-row", "latency+1ns", "latency-short", "swapped"])
def test_classifier_refuses_a_doctored_querylog(tmp_path, change, lost):
    run, host, device = make_run(tmp_path)
    rewrite_npz(run, change)
    r = soak.classify(run, host, device)
    assert r["wrong"], r  # never accepted as the device's log
    assert r["lost"] == lost
    # without the device's log (an agent restarted after the run), the spill and the rules
    # still catch it
    r = soak.classify(run, host, {"error": "no completed run on the agent"})
    assert r["wrong"] and r["lost"] == lost, r


def test_classifier_on_runs_that_ended_with_an_error(tmp_path):
    run, host, device = make_run(tmp_path, verdict="INVALID", exit_code=1)
    host["error"] = "the agent died during the run: run: serial X: the agent restarted"
    r = soak.classify(run, host, device)
    assert (r["outcome"], r["reason_key"], r["wrong"], r["lost"]) == (
        "invalid", "the agent restarted", [], 0)
    # the device went on logging after the host stopped hearing: a prefix is fine
    longer = {k: (np.r_[v, v[-1:] + 1] if isinstance(v, np.ndarray) else v)
              for k, v in device.items()}
    longer["rows"] += 1
    longer["checksum"] = soak.crc_of(longer["issue"], longer["done"], longer["sample"])
    assert not soak.classify(run, host, longer)["wrong"]
    # a kept row that is not the device's is a wrong result, even in an INVALID run
    rewrite_npz(run, _later(10, 3))
    spill = run / "querylog.spill"
    spill.unlink()  # (the spill agrees with querylog.npz here: only the device can tell)
    r = soak.classify(run, host, device)
    assert r["wrong"] and "prefix" in r["wrong"][-1], r
    # a VALID verdict on a run that ended with an error
    run2, host2, device2 = make_run(tmp_path / "b", exit_code=1)
    host2["error"] = "agent error during the run: boom"
    assert soak.classify(run2, host2, device2)["wrong"]


def test_classifier_counts_received_rows_missing_from_the_outputs(tmp_path):
    run, host, device = make_run(tmp_path, exit_code=1)
    host["error"] = "the agent restarted"
    (run / "querylog.npz").unlink()  # outputs never written, the spill holds 300 rows
    assert soak.classify(run, host, {"error": "gone"})["lost"] == 300


def test_classifier_reply_only_check_and_host_accounts(tmp_path):
    run, host, device = make_run(tmp_path)
    rec = json.loads((run / "result.json").read_text())
    rec["run"]["checksum_ok"] = False
    (run / "result.json").write_text(json.dumps(rec))
    r = soak.classify(run, host, {"error": "no completed run on the agent"})
    assert r["checked"] == "the run reply's checksum only" and r["wrong"]
    assert soak.classify(run, None, device)["outcome"] == "unexplained"
    assert soak.classify(run, {"crash": "KeyError: x"}, device)["outcome"] == "unexplained"
    assert soak.classify(run, host, device, hang=True)["outcome"] == "hang"


def test_line_sim_runtime_controls():
    with LineSim(115200, seed=3) as sim:
        sim.set_faults(flip_rate=0.01)
        assert (sim.faults.flip_rate, sim.faults.drop_rate) == (0.01, 0.0)
        sim.set_faults(drop_rate=0.002)
        assert (sim.faults.flip_rate, sim.faults.drop_rate) == (0.01, 0.002)
        with pytest.raises(ValueError, match="flip_rate must be in"):
            sim.set_faults(flip_rate=1.0)
        sim.burst("to_device", 100)
        assert sim.to_device.stats.garbage == 100
        with pytest.raises(ValueError):
            sim.burst("to_host", 0)


# ---------------------------------------------------------------- four schedules, for real


F = soak.Fault
FIXED = {
    "flip": soak.Schedule(0, 0, 921600, [F("flip", "run", 0.1, 1.5, rate=2e-3)]),
    "restart": soak.Schedule(0, 1, 921600, [F("restart", "run", 0.7, 0.2)]),
    "pull": soak.Schedule(0, 2, 921600, [F("garbage", "connect", 0.0, nbytes=3000,
                                           direction="both"),
                                         F("pull", "run", 0.4, 1.0)]),
    "drop": soak.Schedule(0, 3, 115200, [F("drop", "run", 0.3, 0.8, rate=1e-3),
                                         F("garbage", "tail", 0.2, nbytes=400,
                                           direction="to_host")]),
}


@pytest.fixture(scope="module")
def soaked(tmp_path_factory):
    root = tmp_path_factory.mktemp("soak")
    got: dict[int, dict] = {}
    soak.run_many(list(FIXED.values()), 2, root, str(local_agent_path()), None,
                  lambda r: got.__setitem__(r["index"], r))
    return {name: got[s.index] for name, s in FIXED.items()}


def test_fixed_schedules_lose_nothing_and_never_hang(soaked):
    for name, r in soaked.items():
        assert r["outcome"] not in ("hang", "unexplained"), (name, r["reason"], r["notes"])
        assert r["lost"] == 0 and r["wrong"] == [], (name, r)
        assert all(f["applied"] for f in r["faults"]), (name, r["faults"])
        assert not r["memory"]["flags"], (name, r["memory"])


def test_bit_flips_complete_with_the_devices_checksum(soaked):
    r = soaked["flip"]
    assert r["outcome"] == "completed" and r["checked"] == "the device's log", r
    assert r["rows_kept"] == r["rows_device"] > 100
    assert r["line"]["to_device"]["flipped"] + r["line"]["to_host"]["flipped"] > 0
    work = Path(r["work"])
    with np.load(work / "device_log.npz") as d:
        crc = int(d["checksum"])
    npz = soak.read_npz(work / "run" / "querylog.npz")
    assert soak.crc_of(npz["issue"], npz["done"], npz["sample"]) == crc
    # the same run directory, doctored: refused
    host = json.loads((work / "host.json").read_text())
    with np.load(work / "device_log.npz") as d:
        device = {"rows": len(d["done"]), "checksum": crc, "issue": d["issue"],
                  "done": d["done"], "sample": d["sample"]}
    doctored = work / "doctored"
    shutil.copytree(work / "run", doctored)
    rewrite_npz(doctored, _later(len(device["done"]) // 2, 1))
    assert soak.classify(doctored, host, device)["wrong"]
    rewrite_npz(doctored, _drop_row(3))
    r2 = soak.classify(doctored, host, device)
    assert r2["wrong"] and r2["lost"] == 1


def test_agent_restart_mid_run_is_invalid_naming_the_restart(soaked):
    r = soaked["restart"]
    assert r["outcome"] == "invalid", r
    assert "restart" in r["reason"] and r["reason_key"] == "the agent restarted"
    assert [a["how"] for a in r["agents"]] == ["killed", "stopped"]


def test_pulled_cable_and_dropped_bytes_complete(soaked):
    for name in ("pull", "drop"):
        r = soaked[name]
        assert r["outcome"] == "completed" and r["checked"] == "the device's log", (name, r)
    assert soaked["pull"]["line"]["to_host"]["lost_unplugged"] > 0
    assert soaked["drop"]["line"]["to_host"]["dropped"] + \
        soaked["drop"]["line"]["to_device"]["dropped"] > 0
    windows = [w for r in soaked.values() for w in r["windows"]]
    assert any(w["recovery_s"] is not None for w in windows)
