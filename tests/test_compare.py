"""``edgeperf compare``: real runs of busy:130 flagged against busy:100 and two runs of
busy:100 passed; the statistics against scipy's and by hand."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from edgeperf.cli.main import main
from edgeperf.store import compare, db, record
from edgeperf.store.query import get_latencies, get_run

RUN = ["run", "--preset", "smoke", "--min-queries", "300", "--min-duration", "0.2",
       "--target-latency-ms", "0.1", "--quiet"]


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    url = str(tmp_path / "results.sqlite")
    monkeypatch.setenv("EDGEPERF_STORE", url)
    return url


def run(tmp_path: Path, name: str, model: str, scenario: str = "SingleStream",
        codes: tuple[int, ...] = (0,)) -> Path:
    out = tmp_path / name
    assert main([*RUN, "--scenario", scenario, "--model", model, "--out", str(out)]) in codes
    return out


# ---------------------------------------------------------------- real runs
def test_busy130_is_flagged_against_busy100_and_two_busy100_runs_pass(store, tmp_path,
                                                                        capsys):
    run(tmp_path, "a", "synthetic:busy:100")
    run(tmp_path, "b", "synthetic:busy:100")
    run(tmp_path, "c", "synthetic:busy:130")
    capsys.readouterr()
    assert main(["compare", "1", "2", "--json", str(tmp_path / "same.json")]) == 0
    out = capsys.readouterr().out
    assert "Mann-Whitney U" in out and "bootstrap 95% CI of B-A" in out
    assert "FLAGGED" not in out and out.rstrip().endswith("nothing flagged (1 compared)")
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["flagged"] is False

    assert main(["compare", "1", "3", "--json", str(tmp_path / "slower.json")]) == 3
    out = capsys.readouterr().out
    (p90,) = [ln for ln in out.splitlines() if ln.startswith("p90 latency (scored)")]
    assert "Mann-Whitney U" in p90 and p90.endswith("FLAGGED (slower)")
    res = json.loads((tmp_path / "slower.json").read_text())
    (cmp,) = res["comparisons"]
    scored = cmp["figures"][0]
    assert res["flagged"] is True and cmp["flagged"] is True
    assert (scored["name"], scored["scored"], scored["verdict"]) == (
        "p90 latency", True, "FLAGGED (slower)")
    assert scored["change"] > 0.05 and scored["p"] < 0.01 and scored["ci"][0] > 0
    assert cmp["ci_label"] == "bootstrap 95% CI" and cmp["run_b"]["model"] == \
        "synthetic:busy:130"
    # the statistics are those of the raw latencies the store holds
    with db.open_store(store) as st:
        la, lb = get_latencies(st, 1)[0], get_latencies(st, 3)[0]
    ref = scipy.stats.mannwhitneyu(la, lb, method="asymptotic", use_continuity=True)
    assert cmp["mann_whitney"]["u"] == ref.statistic and scored["p"] == pytest.approx(
        ref.pvalue, abs=1e-9)
    assert scored["a"] == np.sort(la)[int(len(la) * 0.9)]

    # the same by filters, and B faster than A is flagged too
    assert main(["compare", "model=synthetic:busy:130",
                 "board=local,model=synthetic:busy:100"]) == 3
    assert "FLAGGED (faster)" in capsys.readouterr().out
    # a threshold above the change passes it
    assert main(["compare", "1", "3", "--threshold", "60"]) == 0
    assert "nothing flagged" in capsys.readouterr().out


def test_campaigns_are_compared_pairwise(store, tmp_path, capsys):
    base = run(tmp_path, "a", "synthetic:busy:100")
    slow = run(tmp_path, "b", "synthetic:busy:130")
    with db.open_store(store) as st:
        for camp, dirs in (("c1", [base, base]), ("c2", [base, slow])):
            for i, d in enumerate(dirs):  # a copy is another run, with the same latencies
                copy = tmp_path / f"{camp}-{i}"
                shutil.copytree(d, copy)
                rec = json.loads((copy / "result.json").read_text())
                if i:  # the campaign's second cell: another model
                    rec["model"]["name"] = rec["model"]["spec"] = "other"
                    (copy / "result.json").write_text(json.dumps(rec))
                record.record_run(copy, st, campaign=camp)
    capsys.readouterr()
    assert main(["compare", "campaign=c1", "campaign=c2"]) == 3
    out = capsys.readouterr().out
    assert out.count("p90 latency (scored)") == 2  # one comparison a board/model/scenario
    assert out.count("FLAGGED (slower)") == 1 and "1 of 2 comparisons flagged" in out
    assert main(["compare", "campaign=c1", "campaign=c1"]) == 0


def test_usage_errors(store, tmp_path, capsys):
    run(tmp_path, "a", "synthetic:busy:100")
    # an Offline run of any verdict: the smoke preset's rate is the machine's to beat or miss
    run(tmp_path, "b", "builtin:mlp", "Offline", codes=(0, 3))
    capsys.readouterr()
    assert main(["compare", "1", "99"]) == 2
    assert "no run 99 in results store" in capsys.readouterr().err
    assert main(["compare", "1", "colour=blue"]) == 2
    assert "'colour=blue' is neither a run id nor a filter" in capsys.readouterr().err
    assert main(["compare", "1", "model=nothing"]) == 2
    assert "no run in results store" in capsys.readouterr().err
    assert main(["compare", "1", "2"]) == 2
    assert "run 1 is SingleStream and run 2 Offline: compare runs of one scenario" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", "1", "2", "--alpha", "5"])
    assert exc.value.code == 2
    # Offline against itself: its throughput, tested on inter-completion intervals
    assert main(["compare", "2", "2"]) == 0
    out = capsys.readouterr().out
    assert "throughput (samples/s) (scored)" in out and "inter-completion intervals" in out


# ---------------------------------------------------------------- the statistics
@pytest.mark.parametrize("n_a,n_b,ties", [(8, 11, False), (25, 30, True), (3000, 2500, True),
                                          (400, 40000, False)])
def test_mann_whitney_u_equals_scipys(n_a, n_b, ties):
    rng = np.random.default_rng(n_a + n_b)
    if ties:  # integer nanoseconds, many equal: the tie correction matters
        a, b = rng.integers(100, 140, n_a), rng.integers(103, 150, n_b)
    else:
        a, b = rng.lognormal(0, 1, n_a), rng.lognormal(0.1, 1, n_b)
    got = compare.mann_whitney_u(a, b)
    ref = scipy.stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
    assert got.u == pytest.approx(ref.statistic, abs=1e-9)
    assert got.p == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)
    assert got.small == (min(n_a, n_b) <= 20)
    ref_b = scipy.stats.mannwhitneyu(b, a, method="asymptotic", use_continuity=True)
    assert compare.mann_whitney_u(b, a).u == pytest.approx(ref_b.statistic, abs=1e-9)


def test_identical_samples_have_p_one():
    assert compare.mann_whitney_u(np.full(50, 7), np.full(60, 7)).p == 1.0
    a = np.arange(100)
    assert compare.mann_whitney_u(a, a).p == pytest.approx(1.0)


def test_the_bootstrap_is_deterministic_for_a_seed_and_a_plain_bootstrap_in_distribution():
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.lognormal(11.5, 0.3, 500)), np.sort(rng.lognormal(11.6, 0.3, 700))

    def ci(seed: int) -> tuple[float, float]:
        g = np.random.default_rng(seed)
        return compare.bootstrap_ci(compare.bootstrap_percentiles(a, 0.9, 2000, g),
                                    compare.bootstrap_percentiles(b, 0.9, 2000, g), 0.95)

    assert ci(0) == ci(0) and ci(0) != ci(1)
    lo, hi = ci(0)
    assert lo < compare.percentile(b, 0.9) - compare.percentile(a, 0.9) < hi
    # the Beta order-statistic draw has the plain resampling's distribution
    g = np.random.default_rng(5)
    fast = compare.bootstrap_percentiles(a, 0.9, 4000, g)
    plain = np.array([compare.percentile(np.sort(a[g.integers(0, len(a), len(a))]), 0.9)
                      for _ in range(4000)])
    assert scipy.stats.ks_2samp(fast, plain).pvalue > 0.001
    assert np.quantile(fast, [0.025, 0.975]) == pytest.approx(
        np.quantile(plain, [0.025, 0.975]), rel=0.01)


def test_stability_figures_exact():
    lat = np.array([100] * 90 + [200] * 9 + [400])  # mean 112, variance 1656
    s = compare.stability(np.random.default_rng(0).permutation(lat))
    assert s.cv == pytest.approx(math.sqrt(1656) / 112, rel=1e-12)
    assert s.p99_over_p50 == 4.0  # sorted[99] / sorted[50], LoadGen's percentiles


def _rows(scenario: str, **kw: object) -> tuple[dict, dict]:
    a = {"id": 1, "scenario": scenario, "summary": {"target_percentile": 0.9}}
    return a, dict(a, id=2, **kw)


def test_offline_throughput_is_compared_on_inter_completion_intervals():
    rng = np.random.default_rng(9)
    done_a = np.cumsum(rng.exponential(100_000, 3000))  # 10,000 samples/s
    done_b = np.cumsum(rng.exponential(130_000, 3000))
    a, b = _rows("Offline")
    c = compare.compare_runs(a, b, (done_a, 3000), (done_b, 3000))
    f = c.figures[0]
    assert f.scored and f.a == pytest.approx(3000 / done_a[-1] * 1e9)
    assert f.b == pytest.approx(3000 / done_b[-1] * 1e9)
    assert f.verdict == "FLAGGED (slower)" and c.flagged and f.ci[1] < 0
    ref = scipy.stats.mannwhitneyu(np.diff(done_a, prepend=0), np.diff(done_b, prepend=0),
                                   method="asymptotic", use_continuity=True)
    assert f.p == pytest.approx(ref.pvalue, abs=1e-9)
    same = compare.compare_runs(a, b, (done_a, 3000), (done_a.copy(), 3000))
    assert not same.flagged and same.figures[0].verdict == "ok" and same.figures[0].p == 1


def test_small_samples_and_missing_latencies_are_said():
    a, b = _rows("SingleStream")
    c = compare.compare_runs(a, b, (np.arange(100, 110), 10), (np.arange(200, 215), 15))
    assert any("normal approximation's, not an exact p" in n for n in c.notes)
    none = compare.compare_runs(a, b, None, (np.arange(10), 10))
    assert not none.flagged and "run 1 has no per-query latencies" in none.notes[0]


def test_a_long_run_is_thinned_to_evenly_spaced_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "MAX_KEPT", 101)
    lat = np.random.default_rng(2).permutation(np.arange(1000, 2000))
    (tmp_path / "result.json").write_text(json.dumps(
        {"settings": {"requested": {"scenario": "SingleStream"}}, "run": {"querylog":
                                                                            "summary"}}))
    np.save(tmp_path / "latencies_sorted.npy", np.sort(lat))
    what, kept, n = record.latencies_of(json.loads((tmp_path / "result.json").read_text()),
                                        tmp_path)
    assert (what, n) == ("query_latency_ns", 1000)
    assert len(kept) == 101 and (kept[0], kept[-1]) == (1000, 1999)  # the extremes kept
    assert set(np.diff(kept).tolist()) <= {9, 10, 11}  # and ranks evenly spaced between
    a, b = _rows("SingleStream")
    c = compare.compare_runs(a, b, (kept, n), (kept, n))
    assert "run 1: the store kept 101 of its 1000 latencies (evenly spaced ranks)" in c.notes


def test_a_stored_run_compares_as_its_directory_did(store, tmp_path):
    out = run(tmp_path, "a", "synthetic:busy:100")
    with db.open_store(store) as st:
        row = get_run(st, 1)
    assert row["p90_ns"] == json.loads((out / "result.json").read_text())["summary"][
        "samples"]["percentiles"]["90.00"]
    assert compare.scored_percentile(row) == 0.9
