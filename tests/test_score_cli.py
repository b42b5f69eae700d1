"""``edgeperf score``: real timestamps for Server and Offline, bare latencies only where they
are enough, and a run's querylog.npz scored exactly as the run itself was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeperf.cli.main import main
from edgeperf.outputs.mlperf_logs import parse_summary

START = 7_000_000_000  # the run's start on some device clock (ns)
N = 1000


def server_rows() -> tuple[np.ndarray, np.ndarray]:
    """1000 arrivals 1 ms apart, the first 0.5 ms after the start; latency of query k is
    ((7k mod 1000) + 1) us, so every value 1..1000 us once: p99 = sorted[990] = 991 us, and
    the last completion is query 999's (at 999.5 + 0.994 ms)."""
    k = np.arange(N, dtype=np.int64)
    sched = START + 500_000 + k * 1_000_000
    return sched, sched + ((7 * k) % 1000 + 1) * 1000


def write_csv(path: Path, header: str, *cols: np.ndarray, comment: str = "") -> Path:
    lines = ([comment] if comment else []) + [header]
    lines += [",".join(str(int(c[i])) for c in cols) for i in range(len(cols[0]))]
    path.write_text("\n".join(lines) + "\n")
    return path


def score(capsys, *args: str) -> tuple[int, dict, str, str]:
    code = main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    head = out.split("\n================================================\nTest Parameters")[0]
    return code, parse_summary(head), out, err


def test_server_csv_is_scored_on_its_own_timestamps(tmp_path, capsys):
    sched, done = server_rows()
    with_start = write_csv(tmp_path / "server.csv", "scheduled_ns,done_ns,start_ns", sched,
                           done, np.full(N, START), comment="# a Server run on a board")
    code, s, _, err = score(capsys, with_start, "--scenario", "Server",
                            "--target-latency-ms", "1", "--min-duration", "0.999")
    assert code == 0, err
    assert s["Result is"] == "VALID" and s["Performance constraints satisfied"] == "Yes"
    assert s["Scheduled samples per second"] == 999.50  # 999 gaps / 0.9995 s after start
    assert s["Completed samples per second"] == 998.51  # 999 / 1.000494 s
    assert s["99.00 percentile latency (ns)"] == 991_000
    assert s["Max latency (ns)"] == 1_000_000 and s["Min latency (ns)"] == 1000
    assert s["Min duration satisfied"] == "Yes"
    # the min-duration verdict comes from the last scheduled arrival: 0.9995 s, not 1 s
    code, s, _, _ = score(capsys, with_start, "--scenario", "Server", "--target-latency-ms",
                          "1", "--min-duration", "1")
    assert code == 3 and s["Min duration satisfied"] == "NO"
    # no start_ns column: the first arrival is the start; issue_ns is read the same way
    no_start = write_csv(tmp_path / "issue.csv", "issue_ns,done_ns", sched, done)
    code, s, _, _ = score(capsys, no_start, "--scenario", "Server", "--target-latency-ms", "1")
    assert code == 0
    assert s["Scheduled samples per second"] == 1000.00  # 999 / 0.999 s
    assert s["Completed samples per second"] == 999.01  # 999 / 0.999994 s
    # a bound under the p99: constraints not met
    code, s, _, _ = score(capsys, no_start, "--scenario", "Server", "--target-latency-ms",
                          "0.99")
    assert code == 3 and s["Performance constraints satisfied"] == "NO"


def test_offline_csv(tmp_path, capsys):
    n = 400
    done = START + (np.arange(n, dtype=np.int64) + 1) * 2500  # the last at 1 ms
    f = write_csv(tmp_path / "offline.csv", "issue_ns,done_ns", np.full(n, START), done)
    code, s, out, err = score(capsys, f, "--scenario", "Offline", "--min-queries", "400",
                              "--json")
    assert code == 0, err
    assert s["Samples per second"] == 400_000  # 400 samples in 1 ms
    summary = json.loads(out[out.index("\n{") + 1:])
    assert summary["sample_count"] == 400 and summary["min_queries_met"]
    # fewer samples than the query must hold: LoadGen's min-queries rule for Offline
    code, s, _, _ = score(capsys, f, "--scenario", "Offline", "--min-queries", "401")
    assert code == 3 and s["Min queries satisfied"] == "NO"


@pytest.mark.parametrize("scenario,needs", [("Server", "scheduled_ns (or issue_ns)"),
                                            ("Offline", "issue_ns")])
def test_bare_latencies_are_refused_for_server_and_offline(tmp_path, capsys, scenario, needs):
    txt = tmp_path / "lat.txt"
    txt.write_text("\n".join(str(x) for x in range(1000, 600_000, 1000)) + "\n")
    npy = tmp_path / "lat.npy"
    np.save(npy, np.arange(1000, 600_000, 1000, dtype=np.int64))
    for f in (txt, npy):
        code, _, out, err = score(capsys, f, "--scenario", scenario)
        assert code == 2 and out == ""
        assert f"{f.name} holds bare latencies" in err
        assert f"{scenario} is scored on real timestamps" in err
        assert "querylog.npz" in err and needs in err and "done_ns" in err


def test_multistream_latencies_take_samples_per_query_from_the_settings(tmp_path, capsys):
    f = tmp_path / "ms.txt"
    f.write_text("# per-query latencies\n" + "\n".join(str(k * 1000) for k in range(1, 701)))
    code, s, out, err = score(capsys, f, "--scenario", "MultiStream", "--samples-per-query",
                              "4", "--json")
    assert code == 0, err
    assert s["99.0th percentile latency (ns)"] == 694_000  # sorted[floor(700 * 0.99)]
    summary = json.loads(out[out.index("\n{") + 1:])
    assert summary["query_count"] == 700 and summary["sample_count"] == 2800
    assert "samples_per_query : 4" in out
    # no flag: the preset's (LoadGen's) 8
    code, _, out, _ = score(capsys, f, "--scenario", "MultiStream", "--json")
    assert json.loads(out[out.index("\n{") + 1:])["sample_count"] == 5600


def test_csv_errors_say_what_is_needed(tmp_path, capsys):
    f = write_csv(tmp_path / "bad.csv", "scheduled_ns,finish_ns", *server_rows())
    code, _, _, err = score(capsys, f, "--scenario", "Server")
    assert code == 1
    assert "bad.csv: no done_ns column (the columns are scheduled_ns, finish_ns)" in err
    sched, done = server_rows()
    f = write_csv(tmp_path / "neg.csv", "issue_ns,done_ns", sched, sched - 5)
    code, _, _, err = score(capsys, f, "--scenario", "Server")
    assert code == 1 and "neg.csv:2: done_ns is before issue_ns" in err
    f = write_csv(tmp_path / "order.csv", "issue_ns,done_ns", sched[::-1], done[::-1])
    code, _, _, err = score(capsys, f, "--scenario", "SingleStream")
    assert code == 1 and "order.csv:3: issue_ns goes back in time" in err


RUN_FLAGS = {"Server": ["--target-qps", "2000", "--min-queries", "500"],
             "Offline": ["--min-queries", "500"],
             "MultiStream": ["--min-queries", "100", "--samples-per-query", "4"]}


@pytest.mark.parametrize("scenario", sorted(RUN_FLAGS))
def test_querylog_npz_scores_as_the_run_did(tmp_path, capsys, scenario):
    out = tmp_path / "run"
    flags = ["--scenario", scenario, "--preset", "smoke", *RUN_FLAGS[scenario]]
    code = main(["run", "--board", "local", "--model", "synthetic:null", *flags, "--out",
                 str(out), "--quiet"])
    capsys.readouterr()
    assert code in (0, 3)
    text = (out / "mlperf_log_summary.txt").read_text()
    run = parse_summary(text.split("\n================================================\n"
                                   "Test Parameters")[0])
    got_code, got, _, err = score(capsys, out / "querylog.npz", *flags)
    assert got_code == code, err
    for d in (run, got):
        d.pop("SUT name")
    assert got == run
    if scenario == "Server":
        assert run["Scheduled samples per second"] > 0
    if scenario == "MultiStream":  # the file says how many samples a query had
        code, _, _, err = score(capsys, out / "querylog.npz", "--scenario", scenario,
                                "--samples-per-query", "2")
        assert code == 2
        assert "querylog.npz holds 4 samples per query, but --samples-per-query is 2" in err
    # the run directory records the scenario: another is an error naming both
    other = "SingleStream"
    code, _, _, err = score(capsys, out / "querylog.npz", "--scenario", other)
    assert code == 2
    assert f"was recorded in a {scenario} run, but --scenario is {other}" in err


def test_a_querylog_npz_that_names_its_scenario(tmp_path, capsys):
    sched, done = server_rows()
    f = tmp_path / "elsewhere.npz"  # no result.json beside it: the file's own word counts
    np.savez(f, issue_ns=sched, done_ns=done, sample_idx=np.zeros(N, np.uint32),
             start_ns=np.int64(START), samples_per_row=np.int64(1), scenario="Server")
    code, s, _, _ = score(capsys, f, "--scenario", "Server", "--target-latency-ms", "1")
    assert code == 0 and s["Scheduled samples per second"] == 999.50
    code, _, _, err = score(capsys, f, "--scenario", "Offline")
    assert code == 2 and "was recorded in a Server run, but --scenario is Offline" in err
