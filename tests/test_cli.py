"""The command line as a newcomer meets it: usage errors exit 2 in the flags' own words, the
help says the defaults and the exit codes, an INVALID run says why when it can, listings say
what a model takes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeperf.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--model", "synthetic:null", "--scenario", "SingleStream", "--preset", "smoke",
       "--quiet"]


def usage_error(capsys, argv: list[str]) -> str:
    """argparse's own refusals exit 2 through SystemExit; edgeperf's return 2."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_out_naming_a_file_or_an_impossible_path(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    err = usage_error(capsys, [*RUN, "--out", str(f)])
    assert f"--out {f} is a file; name a directory" in err
    err = usage_error(capsys, [*RUN, "--out", str(f / "sub")])
    assert f"--out {f / 'sub'} cannot be created: {f} is a file" in err
    err = usage_error(capsys, [*RUN, "--out", "/proc/edgeperf-nowhere/run"])
    assert "--out /proc/edgeperf-nowhere/run cannot be created (" in err
    fresh = tmp_path / "a" / "b"
    assert main([*RUN, "--out", str(fresh), "--board", "nosuchboard"]) == 2
    assert not (tmp_path / "a").exists()  # the probe leaves nothing behind


def test_an_empty_scenario_is_refused(capsys):
    err = usage_error(capsys, ["run", "--model", "synthetic:null", "--scenario", ""])
    assert "argument --scenario: no scenario named; choose from SingleStream, MultiStream" in err
    err = usage_error(capsys, ["run", "--model", "synthetic:null", "--scenario", " , "])
    assert "no scenario named" in err


def test_an_unknown_board_is_a_usage_error(capsys):
    err = usage_error(capsys, [*RUN, "--board", "nosuchboard"])
    assert "no board profile named 'nosuchboard'; known boards: " in err
    assert main(["info", "--board", "nosuchboard"]) == 2


@pytest.mark.parametrize("flag,value,words", [
    ("--min-queries", "-5", "argument --min-queries: must be 0 or more, got -5"),
    ("--max-queries", "-1", "argument --max-queries: must be 0 or more, got -1"),
    ("--samples-per-query", "0", "argument --samples-per-query: must be 1 or more, got 0"),
    ("--target-qps", "0", "argument --target-qps: must be greater than 0, got 0"),
    ("--target-qps", "nan", "argument --target-qps: must be greater than 0, got nan"),
    ("--threads", "-3", "argument --threads: must be 1 or more, got -3 (leave it out for the "
                        "runtime's own choice)"),
    ("--threads", "0", "argument --threads: must be 1 or more, got 0"),
    ("--min-duration", "-1", "argument --min-duration: must not be negative, got -1"),
])
def test_bad_numbers_are_named_by_their_flag(capsys, flag, value, words):
    err = usage_error(capsys, ["run", "--model", "builtin:mlp", "--scenario", "Server", flag,
                               value])
    assert words in err
    for internal in ("min_query_count", "target_qps", "num_threads", "preset(", "model"):
        assert internal not in err.split("argument")[-1]


def test_settings_conflicts_are_named_by_their_flags(capsys):
    err = usage_error(capsys, [*RUN, "--max-queries", "10", "--min-queries", "20"])
    assert "--min-queries (20) > --max-queries (10): raise --max-queries or set it to 0" in err
    err = usage_error(capsys, [*RUN, "--max-duration", "1.5", "--min-duration", "3"])
    assert "--min-duration (3 s) > --max-duration (1.5 s): raise --max-duration" in err
    err = usage_error(capsys, ["run", "--model", "synthetic:null", "--scenario", "Server",
                               "--samples-per-query", "4"])
    assert "Server issues one sample per query; --samples-per-query = 4 is not allowed" in err


def help_text(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


def test_help_states_defaults_and_exit_codes(capsys):
    top = help_text(capsys, [])
    run = help_text(capsys, ["run"])
    score = help_text(capsys, ["score"])
    info = help_text(capsys, ["info"])
    for text in (top, run, score):
        assert "exit codes: 0 VALID" in text and "3 a run completed but is INVALID" in text
        assert "1 an error" in text and "2 a usage error" in text
    assert "--preset {mlperf,mobile,quick,smoke} starting settings (default: smoke;" in score
    assert "(default: quick;" in run
    for text in (run, info):
        assert "(default: local, this machine)" in text
    assert "--min-queries N the fewest queries a run issues (Offline: samples)" in run
    assert "--max-queries N the most queries a run issues, 0 for no limit" in run
    assert "--samples-per-query N MultiStream: samples a query (default: LoadGen's 8)" in run
    assert "--threads N runtime threads (default: the runtime's own choice)" in run


def test_too_short_for_early_stopping_says_how_many_queries_it_needs(tmp_path, capsys):
    code = main(["run", "--model", "synthetic:null", "--scenario", "SingleStream,MultiStream",
                 "--preset", "smoke", "--out", str(tmp_path), "--quiet"])
    assert code == 3
    printed = capsys.readouterr()
    assert printed.out.count("Result is : VALID") == 1  # SingleStream's
    assert "Result is : INVALID" in printed.out
    assert ("hint: MultiStream's early stopping needs at least 662 queries at the 99th "
            "percentile; this run issued 100 (--preset smoke: 100 at least). Pass --min-queries "
            "662") in printed.err
    assert printed.err.count("hint:") == 1
    code = main(["run", "--model", "synthetic:null", "--scenario", "MultiStream", "--preset",
                 "smoke", "--min-queries", "662", "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 0 and "hint:" not in capsys.readouterr().err


def test_models_lists_inputs_and_outputs(capsys):
    assert main(["models"]) == 0
    rows = {ln.split()[0]: ln.split()[1:3] for ln in capsys.readouterr().out.splitlines()
            if ln.startswith(("builtin:", "synthetic:"))}
    assert rows["builtin:mlp"] == ["float32[1,64]", "float32[1,10]"]
    assert rows["builtin:mlp-int8"] == ["int8[1,64]", "int8[1,10]"]
    assert rows["builtin:mlp-batch8"] == ["float32[8,64]", "float32[8,10]"]
    assert rows["builtin:cnn-int8"] == ["int8[1,8,8,1]", "int8[1,10]"]
    assert rows["synthetic:null"] == ["-", "-"]


def test_a_missing_extra_names_this_venvs_pip_from_a_clone(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    assert main([*RUN, "--out", str(run_dir)]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    monkeypatch.chdir(ROOT)
    pip = Path(sys.executable).parent / "pip"
    assert main(["report", str(run_dir)]) == 1
    err = capsys.readouterr().err
    here = pip.relative_to(ROOT) if pip.is_relative_to(ROOT) else pip
    assert f"{here} install -e '.[report]'" in err, err
    assert "pip install 'edgeperf[report]'" not in err
    monkeypatch.chdir(tmp_path)  # elsewhere: the clone named by its path
    assert main(["report", str(run_dir)]) == 1
    assert f"{pip} install -e '{ROOT}[report]'" in capsys.readouterr().err


def test_report_takes_a_run_directory_or_a_campaign_or_a_compare(tmp_path, capsys):
    assert main(["report"]) == 2
    assert "give a run's directory (a PNG), or --campaign ID or --compare A B" in \
        capsys.readouterr().err
    assert main(["report", str(tmp_path), "--campaign", "night-1"]) == 2
    assert "or --campaign/--compare, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--campaign", "a", "--compare", "1", "2"])
    assert "not allowed with argument" in capsys.readouterr().err
