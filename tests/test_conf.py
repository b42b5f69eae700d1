"""LoadGen conf lines: edgeperf accepts what LoadGen 6.0.17's FromConfig accepts, with the same
meaning, and refuses what it refuses or silently misreads, naming file:line, the line and the fix.

Every row is put to the real LoadGen too (``TestSettings.FromConfig(path, model, scenario, 2)``:
the file alone, no built-in mlperf.conf), so each verdict is checked against LoadGen's return
code and the value LoadGen itself read, not against what the table expects.
"""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

import mlperf_loadgen as lg
import pytest

from edgeperf.settings import ConfError, ConfWarning, TestSettings, apply_conf, parse_conf

# ours -> LoadGen's field, per scenario
_LG_FIELD = {
    "min_duration_ms": "min_duration_ms", "max_duration_ms": "max_duration_ms",
    "min_query_count": "min_query_count", "max_query_count": "max_query_count",
    "performance_sample_count": "performance_sample_count_override", "mode": "mode",
    "samples_per_query": "multi_stream_samples_per_query",
}
_LG_SCENARIO_FIELD = {
    ("target_latency_ns", "SingleStream"): "single_stream_expected_latency_ns",
    ("target_latency_ns", "MultiStream"): "multi_stream_expected_latency_ns",
    ("target_latency_ns", "Server"): "server_target_latency_ns",
    ("target_latency_percentile", "SingleStream"): "single_stream_target_latency_percentile",
    ("target_latency_percentile", "MultiStream"): "multi_stream_target_latency_percentile",
    ("target_latency_percentile", "Server"): "server_target_latency_percentile",
    ("target_qps", "Server"): "server_target_qps",
    ("target_qps", "Offline"): "offline_expected_qps",
}
SS, MS, SRV, OFF = "SingleStream", "MultiStream", "Server", "Offline"
U64_MAX = (1 << 64) - 1

# (line, scenario, field, edgeperf's value); None: the line sets nothing (field unchanged)
ACCEPTED = [
    ("*.*.min_duration = 5", SS, "min_duration_ms", 5),
    ("\t*.*.min_duration\t=\t5\t", SS, "min_duration_ms", 5),  # any C whitespace
    ("*.*.min_duration = 5\r", SS, "min_duration_ms", 5),  # a CRLF file
    ("*.*.min_duration \x0b= 5", SS, "min_duration_ms", 5),
    ("*.*.min_duration = 0x10", SS, "min_duration_ms", 16),
    ("*.*.min_duration = 0X1F", SS, "min_duration_ms", 31),
    ("*.*.min_duration = +7", SS, "min_duration_ms", 7),
    ("*.*.min_duration = 1.0", SS, "min_duration_ms", 1),
    ("*.*.min_duration = 5.", SS, "min_duration_ms", 5),
    ("*.*.min_query_count = 5e0", SS, "min_query_count", 5),
    ("*.*.max_query_count = 00", SS, "max_query_count", 0),
    ("*.*.min_duration = 0", SS, "min_duration_ms", 0),
    ("*.*.max_query_count = 18446744073709551615", SS, "max_query_count", U64_MAX),
    ("m.*.min_duration = 5", SS, "min_duration_ms", 5),
    ("M.*.min_duration = 5", SS, "min_duration_ms", None),  # names are case-sensitive
    ("*.SingleStream.min_duration = 5", SS, "min_duration_ms", 5),
    ("*.Server.min_duration = 5", SS, "min_duration_ms", None),
    ("m.x.SingleStream.min_duration = 5", SS, "min_duration_ms", None),  # model "m.x"
    ("# a comment", SS, "min_duration_ms", None),
    ("#comment", SS, "min_duration_ms", None),
    ("#*.*.min_duration = 5", SS, "min_duration_ms", None),  # commented out
    ("   ", SS, "min_duration_ms", None),
    ("*.*.target_latency = 2.5", SS, "target_latency_ns", 2_500_000),
    ("*.*.target_latency = 1e1", MS, "target_latency_ns", 10_000_000),
    ("*.*.target_latency = 15", SRV, "target_latency_ns", 15_000_000),
    ("*.*.target_latency_percentile = 99.9", SS, "target_latency_percentile", 99.9 * 0.01),
    ("*.*.target_latency_percentile = 0.9", SRV, "target_latency_percentile", 0.9 * 0.01),
    ("*.*.target_qps = 0x1p3", OFF, "target_qps", 8.0),
    ("*.*.target_qps = 250", SRV, "target_qps", 250.0),
    ("*.*.target_qps = 1e-3", OFF, "target_qps", 0.001),
    ("*.MultiStream.samples_per_query = 4", MS, "samples_per_query", 4),
    ("*.*.performance_sample_count_override = 77", SS, "performance_sample_count", 77),
    ("*.*.mode = 1", SS, "mode", "AccuracyOnly"),
    ("*.*.mode = 0", SS, "mode", "SubmissionRun"),
    ("*.*.print_timestamps = 1", SS, "min_duration_ms", None),  # LoadGen's key, not ours
]

# (line, scenario, field, fragment of the fix); LoadGen's FromConfig returns an error
REFUSED_BY_LOADGEN = [
    ("*.*.min_duration =5", SS, "min_duration_ms", "spaces around '='"),
    ("*.*.min_duration= 5", SS, "min_duration_ms", "spaces around '='"),
    ("*.*.min_duration == 5", SS, "min_duration_ms", "spaces around '='"),
    ("a b = 5", SS, "min_duration_ms", "spaces around '='"),
    ("= 5", SS, "min_duration_ms", "spaces around '='"),
    ("*.*.min_duration = = 5", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 5 # seconds", SS, "min_duration_ms", "a line of its own"),
    ("*.*.min_duration = 5 #", SS, "min_duration_ms", "a line of its own"),
    ("*.*.min_duration = 5#", SS, "min_duration_ms", "a line of its own"),
    ("*.*.min_duration = 5 x", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = abc", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 1_000", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 0x", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 0b101", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 1e", SS, "min_duration_ms", "is not a number"),
    ("*.*.min_duration = 5ms", SS, "min_duration_ms", "is not a number"),
    ("#c d", SS, "min_duration_ms", "'# c d'"),
    ("#*.*.min_duration = x", SS, "min_duration_ms", "is not a number"),
]

# (line, scenario, field, what the line says, fragment); LoadGen returns 0 but reads something
# else than the line says (or nothing at all: None)
MISREAD_BY_LOADGEN = [
    ("*.*.min_duration=5", SS, "min_duration_ms", 5, "'*.*.min_duration = 5'"),
    ("*.*.min_duration", SS, "min_duration_ms", None, "no '= value'"),
    ("*.*.min_duration =", SS, "min_duration_ms", None, "no value after '='"),
    ("min_duration = 5", SS, "min_duration_ms", 5, "model.scenario.key"),
    ("SingleStream.min_duration = 5", SS, "min_duration_ms", 5, "model.scenario.key"),
    (".SingleStream.min_duration = 5", SS, "min_duration_ms", 5, "model.scenario.key"),
    ("*.*.min_duration = 5 6", SS, "min_duration_ms", 5, "keep one"),
    ("*.*.min_duration = 010", SS, "min_duration_ms", 10, "octal"),
    ("*.*.min_duration = 08", SS, "min_duration_ms", 8, "octal"),
    ("*.*.min_duration = 1.5", SS, "min_duration_ms", 1.5, "whole number"),
    ("*.*.min_duration = 1e3", SS, "min_duration_ms", 1000, "write 1000"),
    ("*.*.min_duration = 0x1p3", SS, "min_duration_ms", 8, "write 8"),
    ("*.*.min_duration = .5", SS, "min_duration_ms", 0.5, "whole number"),
    ("*.*.min_duration = -3", SS, "min_duration_ms", -3, "negative"),
    ("*.*.min_duration = inf", SS, "min_duration_ms", math.inf, "whole number"),
    ("*.*.min_duration = nan", SS, "min_duration_ms", math.nan, "whole number"),
    ("*.*.max_query_count = 18446744073709551616", SS, "max_query_count", 1 << 64,
     "64 bits"),
    ("*.Server.target_latency = 7.5", SRV, "target_latency_ns", 7_500_000,
     "whole milliseconds"),
    ("*.*.mode = 7", SS, "mode", 7, "mode is 0"),
    ("\ufeff*.*.min_duration = 5", SS, "min_duration_ms", 5, "byte-order mark"),
]

# (line, scenario, field, LoadGen's value, fragment); LoadGen takes the value as written, and
# edgeperf cannot run it
UNUSABLE = [
    ("*.*.target_qps = -5", OFF, "target_qps", -5.0, ">= 0"),
    ("*.*.target_qps = inf", SRV, "target_qps", math.inf, "finite"),
    ("*.*.target_qps = nan", OFF, "target_qps", math.nan, "finite"),
    ("*.*.target_latency = 0", SS, "target_latency_ns", 0.0, "> 0 ms"),
    ("*.*.target_latency_percentile = 100", SS, "target_latency_percentile", 1.0,
     "strictly between 0 and 100"),
    ("*.*.min_query_count = 0", SS, "min_query_count", 0, ">= 1"),
    ("*.*.mode = 3", SS, "mode", "FindPeakPerformance", "FindPeakPerformance"),
]


def _loadgen(conf: Path, scenario: str, field: str) -> tuple[int, object, object]:
    """(FromConfig's return code, the field after, the field's default) by LoadGen itself."""
    name = _LG_FIELD.get(field) or _LG_SCENARIO_FIELD[field, scenario]
    theirs, default = lg.TestSettings(), lg.TestSettings()
    rc = theirs.FromConfig(str(conf), "m", scenario, 2)
    value, default_value = getattr(theirs, name), getattr(default, name)
    if field == "mode":
        value, default_value = value.name, default_value.name
    return rc, value, default_value


def _conf(tmp_path: Path, line: str) -> Path:
    conf = tmp_path / "user.conf"
    conf.write_bytes(f"# header\n*.*.max_duration = 0\n{line}\n".encode())
    return conf


def _base(scenario: str) -> TestSettings:
    return TestSettings(scenario, target_qps=1.0 if scenario == SRV else 0.0,
                        target_latency_ns=100_000_000 if scenario == SRV else None)


def _same(a: object, b: object) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
            ) or a == b


def _refusal(conf: Path, line: str, scenario: str) -> str:
    with pytest.raises(ConfError) as err:
        apply_conf(_base(scenario), [conf], "m")
    msg = str(err.value)
    assert msg.startswith(f"{conf}:3: "), msg  # file:line
    assert repr(line.rstrip("\r")) in msg, msg  # the line
    return msg


@pytest.mark.parametrize("line, scenario, field, ours", ACCEPTED)
def test_accepted_lines_mean_what_loadgen_reads(tmp_path: Path, line: str, scenario: str,
                                                field: str, ours: object) -> None:
    conf = _conf(tmp_path, line)
    rc, theirs, default = _loadgen(conf, scenario, field)
    assert rc == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfWarning)
        got = getattr(apply_conf(_base(scenario), [conf], "m"), field)
    if ours is None:  # the line sets nothing, in LoadGen neither
        assert theirs == default
        assert got == getattr(_base(scenario), field)
    else:
        assert got == ours
        assert theirs == ours  # LoadGen's own reading, in its units (ns as a double, ...)


@pytest.mark.parametrize("line, scenario, field, fix", REFUSED_BY_LOADGEN)
def test_lines_loadgen_refuses_are_refused(tmp_path: Path, line: str, scenario: str,
                                           field: str, fix: str) -> None:
    conf = _conf(tmp_path, line)
    assert _loadgen(conf, scenario, field)[0] != 0
    msg = _refusal(conf, line, scenario)
    assert fix in msg and "LoadGen refuses" in msg, msg


@pytest.mark.parametrize("line, scenario, field, says, fix", MISREAD_BY_LOADGEN)
def test_lines_loadgen_misreads_are_refused(tmp_path: Path, line: str, scenario: str,
                                            field: str, says: object, fix: str) -> None:
    conf = _conf(tmp_path, line)
    rc, theirs, default = _loadgen(conf, scenario, field)
    assert rc == 0
    if says is None:
        assert theirs == default  # LoadGen silently ignores the line
    else:
        assert not _same(theirs, says)  # LoadGen reads something else than the line says
    msg = _refusal(conf, line, scenario)
    assert fix in msg, msg
    if theirs != default:
        assert "LoadGen reads" in msg, msg
    else:
        assert "LoadGen ignores" in msg, msg


@pytest.mark.parametrize("line, scenario, field, theirs_expected, fix", UNUSABLE)
def test_values_loadgen_takes_but_edgeperf_cannot_run_are_refused(
        tmp_path: Path, line: str, scenario: str, field: str, theirs_expected: object,
        fix: str) -> None:
    conf = _conf(tmp_path, line)
    rc, theirs, _ = _loadgen(conf, scenario, field)
    assert rc == 0 and _same(theirs, theirs_expected)
    msg = _refusal(conf, line, scenario)
    assert fix in msg, msg


def test_a_bad_line_is_refused_only_where_it_applies(tmp_path: Path) -> None:
    # LoadGen converts a value only when a lookup finds it: a line for another model or
    # scenario is never misread, so it is not refused either
    conf = tmp_path / "user.conf"
    conf.write_text("other.*.min_duration = 010\n*.Server.target_latency = 7.5\n"
                    "*.*.min_duration = 9\n")
    assert apply_conf(TestSettings(SS), [conf], "m").min_duration_ms == 9
    with pytest.raises(ConfError, match=r"user.conf:1: .*octal"):
        apply_conf(TestSettings(SS), [conf], "other")


def test_duplicate_keys_last_wins_as_in_loadgen(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("*.*.min_duration = 5\nm.*.min_duration = 7\n*.*.min_duration = 6\n")
    theirs = lg.TestSettings()
    assert theirs.FromConfig(str(conf), "m", SS, 2) == 0
    assert apply_conf(TestSettings(SS), [conf], "m").min_duration_ms == 7 == (
        theirs.min_duration_ms)
    assert apply_conf(TestSettings(SS), [conf], "x").min_duration_ms == 6


def test_offline_ignores_the_percentile_as_loadgen_does() -> None:
    # LoadGen looks target_latency_percentile up for SingleStream, MultiStream and Server
    # only (mlperf.conf's *.Offline.target_latency_percentile = 90 is never read)
    s = apply_conf(TestSettings(OFF), ["*.Offline.target_latency_percentile = 90\n"], "m")
    assert s.target_latency_percentile is None


def test_parse_conf_keeps_loadgens_keys() -> None:
    text = ("# a comment\n\n#commented.out.key = 5\n"
            "resnet50.SingleStream.min_query_count = 1024\n"
            "wan-2.2-t2v-a14b.*.performance_sample_count_override \t= 248\r\n")
    assert [tuple(e) for e in parse_conf(text)] == [
        ("resnet50", "SingleStream", "min_query_count", "1024"),
        ("wan-2.2-t2v-a14b", "*", "performance_sample_count_override", "248"),
    ]


def _number_words(n: int) -> list[str]:
    """Words of digits, signs, points, exponents, hex and inf/nan pieces, seeded."""
    rng = random.Random(20261202)
    pieces = ["0", "1", "7", "8", "9", "00", "010", "08", "0x", "0X", "1f", "a", ".", "e", "E",
              "+", "-", "p", "P", "e5", "e-3", "inf", "nan", "INF", "infinity", "(1)", "_",
              "99999999999999999999", "18446744073709551615", "1e400", "0x1p9999"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 4))) for _ in range(n)]


def test_number_words_read_as_loadgen_reads_them(tmp_path: Path) -> None:
    # Which words LoadGen's parser takes as values, and what its strtoull and strtod then
    # read, for hundreds of seeded words: edgeperf's model of it must agree on every one.
    from edgeperf.settings.conf_numbers import loadgen_number, loadgen_u64, strtod

    conf = tmp_path / "c.conf"
    words = _number_words(400) + ["1e3", "0x1p3", "-3", "08", ".5", "5.", "nan(x_1)"]
    for word in words:
        conf.write_text(f"*.*.min_duration = {word}\n*.Offline.target_qps = {word}\n")
        theirs = lg.TestSettings()
        rc = theirs.FromConfig(str(conf), "m", OFF, 2)
        assert (rc == 0) == loadgen_number(word), word
        if rc == 0:
            assert theirs.min_duration_ms == loadgen_u64(word), word
            assert _same(theirs.offline_expected_qps, strtod(word)), word
    assert sum(loadgen_number(w) for w in words) > 100  # both kinds well represented
