"""host.settings: validation, presets, LoadGen conf files, requested vs effective settings.

Where LoadGen itself can answer (its FromConfig, its built-in mlperf.conf, the reference
detail logs), the tests ask it rather than restating numbers from memory.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mlperf_loadgen as lg
import pytest
from lgrun import run_loadgen

from edgeperf.outputs.log_settings import effective_log_items, requested_log_items
from edgeperf.scoring.loadgen import early_stopping_min_queries
from edgeperf.settings import (
    MLPERF_SEEDS,
    ConfError,
    ConfWarning,
    SettingsError,
    TestSettings,
    apply_conf,
    effective_settings,
    preset,
)

REF = Path(__file__).resolve().parent / "reference" / "loadgen-6.0.17"  # LoadGen's output

# The settings that produced each reference folder (see the reference README).
REFERENCE_SETTINGS = {
    "SingleStream": (TestSettings("SingleStream", min_duration_ms=0, min_query_count=2000,
                                  max_query_count=2000, target_latency_ns=1000), 1024),
    "MultiStream": (TestSettings("MultiStream", min_duration_ms=0, min_query_count=1000,
                                 max_query_count=1000, target_latency_ns=1000), 1024),
    "Server": (TestSettings("Server", min_duration_ms=0, min_query_count=5000,
                            max_query_count=5000, target_latency_ns=10_000_000,
                            target_qps=5000), 1024),
    "Offline": (TestSettings("Offline", min_duration_ms=0, min_query_count=20000,
                             target_qps=1.0), 1024),
    "AccuracyOnly-SingleStream": (TestSettings("Offline", mode="AccuracyOnly",
                                               min_duration_ms=10_000, min_query_count=100,
                                               target_qps=1.0), 10),
}


def reference_items(folder: str, prefix: str) -> list[tuple[str, object]]:
    items = []
    for line in (REF / folder / "mlperf_log_detail.txt").read_text().splitlines():
        ev = json.loads(line[len(":::MLLOG "):])
        if ev["key"].startswith(prefix):
            items.append((ev["key"], ev["value"]))
    return items


# --------------------------------------------------------------------------- conf files


LOOKUP_LINES = ["*.*.min_query_count = 4", "m.*.min_query_count = 3",
                "*.Server.min_query_count = 2", "m.Server.min_query_count = 1"]


@pytest.mark.parametrize("present, expected", [
    ((0, 1, 2, 3), 1), ((0, 1, 2), 2), ((0, 1), 3), ((0,), 4),
    ((0, 2), 2), ((0, 1, 3), 1), ((1, 3), 1), ((0, 3), 1),
])
def test_lookup_order_model_scenario_first(present: tuple[int, ...], expected: int) -> None:
    # Shuffled line order must not matter: only specificity does.
    text = "\n".join(LOOKUP_LINES[i] for i in reversed(present))
    base = TestSettings("Server", target_qps=1, target_latency_ns=1)
    assert apply_conf(base, [text], model="m").min_query_count == expected


def test_lookup_order_matches_loadgen_fromconfig(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("\n".join(LOOKUP_LINES + [
        "*.*.max_query_count = 40", "m.*.max_query_count = 30",
        "*.Server.max_query_count = 20", "*.*.min_duration = 400", "m.*.min_duration = 300",
        "*.*.max_duration = 4000", "*.Server.target_latency = 7",
        "*.SingleStream.target_latency = 2.5", "m.MultiStream.target_latency = 33",
        "*.*.target_latency_percentile = 97.5",
        "*.*.target_qps = 123.5", "*.MultiStream.samples_per_query = 4",
        "*.*.performance_sample_count_override = 77", "*.*.qsl_rng_seed = 11",
        "*.*.sample_index_rng_seed = 12", "m.*.schedule_rng_seed = 13"]) + "\n")
    for scen in ("SingleStream", "MultiStream", "Server", "Offline"):
        for model in ("m", "x"):
            theirs = lg.TestSettings()
            assert theirs.FromConfig(str(conf), model, scen, 1) == 0
            ours = apply_conf(TestSettings(scen), [conf], model)
            assert ours.min_query_count == theirs.min_query_count
            assert ours.max_query_count == theirs.max_query_count
            assert ours.min_duration_ms == theirs.min_duration_ms
            assert ours.max_duration_ms == theirs.max_duration_ms
            assert ours.performance_sample_count == theirs.performance_sample_count_override
            # LoadGen takes seeds from its built-in mlperf.conf only; edgeperf from any file.
            assert (ours.qsl_rng_seed, ours.sample_index_rng_seed) == (11, 12)
            assert ours.schedule_rng_seed == (13 if model == "m" else 0)
            lat = {"SingleStream": theirs.single_stream_expected_latency_ns,
                   "MultiStream": theirs.multi_stream_expected_latency_ns,
                   "Server": theirs.server_target_latency_ns}
            pct = {"SingleStream": theirs.single_stream_target_latency_percentile,
                   "MultiStream": theirs.multi_stream_target_latency_percentile,
                   "Server": theirs.server_target_latency_percentile}
            if scen in lat:
                assert (ours.target_latency_ns or 8_000_000) == lat[scen]
                assert ours.target_latency_percentile == pct[scen]
            qps = {"Server": theirs.server_target_qps, "Offline": theirs.offline_expected_qps}
            assert ours.target_qps == qps.get(scen, 0.0)
            spq = theirs.multi_stream_samples_per_query if scen == "MultiStream" else None
            assert ours.samples_per_query == spq


def test_later_files_win_and_earlier_values_survive(tmp_path: Path) -> None:
    mlperf = tmp_path / "mlperf.conf"
    mlperf.write_text("resnet.SingleStream.min_duration = 5000\n"
                      "*.*.min_query_count = 500\n*.*.qsl_rng_seed = 7\n")
    user = tmp_path / "user.conf"
    user.write_text("*.*.min_duration = 7000\n*.SingleStream.target_latency = 3\n")
    s = apply_conf(TestSettings("SingleStream"), [mlperf, user], model="resnet")
    assert (s.min_duration_ms, s.min_query_count, s.qsl_rng_seed, s.target_latency_ns) == (
        7000, 500, 7, 3_000_000)
    # reversed order: the more specific line of mlperf.conf now comes last and wins
    s = apply_conf(TestSettings("SingleStream"), [user, mlperf], model="resnet")
    assert s.min_duration_ms == 5000


def test_conf_units_and_scenario_scope() -> None:
    text = ("*.*.target_latency = 15\n*.*.target_latency_percentile = 99.9\n"
            "*.*.target_qps = 250\n*.*.samples_per_query = 4\n*.*.mode = 1\n")
    ss = apply_conf(TestSettings("SingleStream"), [text], "m")
    assert (ss.target_latency_ns, ss.target_latency_percentile) == (15_000_000, 99.9 * 0.01)
    assert ss.target_qps == 0.0 and ss.samples_per_query is None  # not SingleStream keys
    assert ss.mode == "AccuracyOnly"
    assert apply_conf(TestSettings("MultiStream"), [text], "m").samples_per_query == 4
    off = apply_conf(TestSettings("Offline"), [text], "m")
    assert (off.target_qps, off.target_latency_ns) == (250.0, None)


def test_malformed_line_and_missing_file(tmp_path: Path) -> None:
    # (tests/test_conf.py puts every kind of line to LoadGen itself)
    with pytest.raises(ConfError, match=r"<conf #0>:2: 'min_duration = 5': LoadGen ignores the "
                       r"line: 'min_duration' is not model.scenario.key; write e.g. "):
        apply_conf(TestSettings(), ["*.*.min_duration = 1\nmin_duration = 5\n"], "m")
    with pytest.raises(ConfError, match="cannot read conf file .*nope.conf"):
        apply_conf(TestSettings(), [tmp_path / "nope.conf"], "m")


def test_unknown_keys_warn_and_loadgen_only_keys_are_silent() -> None:
    text = ("*.*.server_target_qps = 50\n*.*.bogus = 1\n*.*.test05_qsl_rng_seed = 1\n"
            "*.*.print_timestamps = 1\n*.Srever.min_duration = 1\n*.*.min_duration = 9\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = apply_conf(TestSettings("Server", target_qps=1, target_latency_ns=1), [text], "m")
    msgs = [str(w.message) for w in caught if issubclass(w.category, ConfWarning)]
    assert len(msgs) == 3
    assert "<conf #0>:1: unknown key 'server_target_qps'" in msgs[0]
    assert "the conf key is target_qps" in msgs[0]
    assert "<conf #0>:2: unknown key 'bogus'" in msgs[1]
    assert "<conf #0>:5: scenario 'Srever'" in msgs[2]
    assert s.min_duration_ms == 9 and s.target_qps == 1  # kept going, ignored the bad key


# --------------------------------------------------------------------------- presets


def loadgen_builtin(scenario: str) -> lg.TestSettings:
    """LoadGen's TestSettings after its own built-in mlperf.conf (conf_type 0), for a model
    that mlperf.conf has no line for."""
    theirs = lg.TestSettings()
    theirs.scenario = getattr(lg.TestScenario, scenario)
    assert theirs.FromConfig("", "edgeperf-model", scenario, 0) == 0
    return theirs


def _loadgen_value(theirs: lg.TestSettings, name: str) -> object:
    value = getattr(theirs, name if name != "test_mode" else "mode")
    return value.name if isinstance(value, (lg.TestScenario, lg.TestMode)) else value


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_mlperf_preset_is_loadgens_builtin_mlperf_conf(scenario: str) -> None:
    # Every requested_* setting LoadGen logs is a field of its TestSettings of the same name:
    # each must equal what LoadGen itself resolved from its built-in mlperf.conf.
    theirs = loadgen_builtin(scenario)
    items = requested_log_items(preset("mlperf", scenario))
    assert len(items) >= 20
    for key, ours in items:
        name = key.removeprefix("requested_")
        assert (name, ours) == (name, _loadgen_value(theirs, name))
        assert type(ours) is type(_loadgen_value(theirs, name)), name
    if scenario == "Offline":
        assert preset("mlperf", "Offline").target_qps == theirs.offline_expected_qps == 1.0


@pytest.fixture(scope="module")
def loadgen_builtin_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # AccuracyOnly: one pass over a 1-sample QSL, instead of a 600 s performance run
    cases = {scen: dict(scenario=scen, builtin_conf=True, mode="AccuracyOnly", samples=1)
             for scen in ("SingleStream", "MultiStream", "Server", "Offline")}
    runs = run_loadgen(cases, tmp_path_factory.mktemp("loadgen-builtin"))
    return {scen: run / "mlperf_log_detail.txt" for scen, run in runs.items()}


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_mlperf_preset_logs_what_loadgen_logs_for_its_builtin_conf(
        scenario: str, loadgen_builtin_logs: dict[str, Path]) -> None:
    # LoadGen run with nothing but its built-in mlperf.conf: its requested_* and effective_*
    # lines (Offline's 660 samples = 1.1 * 600 s * target_qps 1 included) are ours.
    theirs = [(ev["key"], ev["value"]) for ev in (
        json.loads(line[len(":::MLLOG "):])
        for line in loadgen_builtin_logs[scenario].read_text().splitlines())
        if ev["key"].startswith(("requested_", "effective_"))]
    s = preset("mlperf", scenario, mode="AccuracyOnly")
    ours = requested_log_items(s) + [
        ("effective_" + k, v)
        for k, v in effective_log_items(effective_settings(s, total_sample_count=1), 1)]
    assert ours == theirs


def test_mlperf_preset_values() -> None:
    assert preset("mlperf", "SingleStream").min_query_count == 100
    assert preset("mlperf", "MultiStream").min_query_count == 662
    assert preset("mlperf", "SingleStream").qsl_rng_seed == 2085463073848966840
    assert preset("mlperf", "Server").schedule_rng_seed == 16159082839903944936
    assert preset("mlperf", "SingleStream").target_latency_percentile == 0.9
    assert preset("mlperf", "MultiStream").target_latency_percentile == 0.99
    # mlperf.conf's placeholder target_qps 1.0 decides, as in LoadGen, not a warm-up rate
    off = effective_settings(preset("mlperf", "Offline"), expected_qps=50.0)
    assert (off.min_query_count, off.samples_per_query) == (1, 660)  # 1.1 * 600 s * 1
    off = effective_settings(preset("mlperf", "Offline", target_qps=50.0))
    assert (off.min_query_count, off.samples_per_query) == (1, 33_000)  # 1.1 * 600 s * 50


@pytest.mark.parametrize("name, counts", [
    ("mobile", (1024, 60_000, 600_000)), ("quick", (128, 10_000, 60_000)),
    ("smoke", (100, 0, 20_000)),
])
def test_short_presets(name: str, counts: tuple[int, int, int]) -> None:
    for scenario in ("SingleStream", "MultiStream", "Server", "Offline"):
        s = preset(name, scenario)
        want = counts
        if name != "smoke" and scenario != "Offline":
            # raised to the fewest queries with which early stopping can pass
            floor = early_stopping_min_queries(scenario, s.target_latency_percentile)
            want = (max(counts[0], floor), *counts[1:])
        assert (s.min_query_count, s.min_duration_ms, s.max_duration_ms) == want
        assert (s.qsl_rng_seed, s.sample_index_rng_seed, s.schedule_rng_seed) == tuple(
            MLPERF_SEEDS.values())
        assert s.warmup_queries == 10
    server = preset(name, "Server")
    assert (server.target_qps, server.target_latency_ns) == (50.0, 100_000_000)
    assert preset(name, "MultiStream").samples_per_query == 8
    off = effective_settings(preset(name, "Offline"))
    assert off.min_query_count == 1 and off.samples_per_query is None  # QPS from warm-up


def test_preset_overrides_and_errors() -> None:
    s = preset("quick", "Server", target_qps=50.0, target_latency_ns=20_000_000)
    assert (s.target_qps, s.target_latency_ns, s.min_query_count) == (50.0, 20_000_000, 459)
    with pytest.raises(SettingsError, match="unknown preset 'fast'; choose one of mlperf"):
        preset("fast", "Server")
    with pytest.raises(SettingsError, match="preset 'quick'.*target_qpz"):
        preset("quick", "Server", target_qpz=5)
    with pytest.raises(SettingsError, match="min_query_count .* > max_query_count"):
        preset("smoke", "SingleStream", max_query_count=10)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(min_duration_ms=5000, max_duration_ms=1000),
     "min_duration_ms (5000) > max_duration_ms (1000): raise max_duration_ms or set it to 0"),
    (dict(min_query_count=10, max_query_count=5),
     "min_query_count (10) > max_query_count (5): raise max_query_count or set it to 0"),
    (dict(scenario="Streaming"), "unknown scenario 'Streaming'; choose one of SingleStream"),
    (dict(mode="Perf"), "unknown mode 'Perf'"),
    (dict(scenario="Server", target_latency_ns=1), "Server needs target_qps > 0"),
    (dict(scenario="Server", target_qps=5.0), "Server needs a latency bound"),
    (dict(min_query_count=0), "min_query_count must be >= 1, got 0"),
    (dict(min_duration_ms=-1), "min_duration_ms must be >= 0, got -1"),
    (dict(target_latency_ns=0), "target_latency_ns must be >= 1"),
    (dict(target_latency_percentile=90.0), "did you mean 0.9 (90 %)?"),
    (dict(target_qps=-1.0), "target_qps must be >= 0"),
    (dict(samples_per_query=4), "SingleStream issues one sample per query"),
    (dict(qsl_rng_seed=1 << 64), "does not fit in 64 bits"),
    (dict(min_query_count=1.5), "min_query_count must be an integer"),
])
def test_validate_names_the_contradiction(kwargs: dict, fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        TestSettings(**kwargs).validate()
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)


def test_zero_limits_mean_unlimited_and_dict_round_trip() -> None:
    s = TestSettings(min_duration_ms=5000, max_duration_ms=0, min_query_count=10,
                     max_query_count=0).validate()
    assert TestSettings.from_dict(s.to_dict()) == s
    assert TestSettings.from_dict(json.loads(json.dumps(preset("mlperf", "Server").to_dict()))
                                  ) == preset("mlperf", "Server")
    with pytest.raises(SettingsError, match="unknown TestSettings field.*target_qpz"):
        TestSettings.from_dict({"target_qpz": 1})


# --------------------------------------------------------------------------- effective


def test_effective_resolves_scenario_defaults() -> None:
    ss = effective_settings(TestSettings("SingleStream"))
    assert (ss.target_latency_percentile, ss.samples_per_query, ss.target_latency_ns) == (
        0.9, 1, 1_000_000)
    ms = effective_settings(TestSettings("MultiStream", min_query_count=700))
    assert (ms.target_latency_percentile, ms.samples_per_query, ms.min_sample_count) == (
        0.99, 8, 5600)
    srv = effective_settings(TestSettings("Server", target_qps=5, target_latency_ns=7))
    assert (srv.target_latency_percentile, srv.samples_per_query) == (0.99, 1)
    off = effective_settings(TestSettings("Offline", min_duration_ms=60_000,
                                          min_query_count=24_576, target_qps=1000.0),
                             total_sample_count=50_000)
    assert (off.min_query_count, off.samples_per_query, off.min_sample_count) == (
        1, 66_000, 66_000)
    assert off.performance_sample_count == 50_000
    small = effective_settings(TestSettings("Offline", min_duration_ms=1000,
                                            min_query_count=24_576, target_qps=10.0))
    assert small.samples_per_query == 24_576  # the requested count is the floor
    assert effective_settings(TestSettings("Offline", min_duration_ms=10_000),
                              expected_qps=2.0).samples_per_query == 100  # max(100, 22)
    with pytest.raises(SettingsError, match="needs target_qps"):
        effective_settings(TestSettings("Server"))


@pytest.mark.parametrize("folder", sorted(REFERENCE_SETTINGS))
def test_log_items_equal_loadgens_requested_and_effective(folder: str) -> None:
    requested, total = REFERENCE_SETTINGS[folder]
    assert requested_log_items(requested) == reference_items(folder, "requested_")
    eff = effective_settings(requested, total_sample_count=total)
    ours = [("effective_" + k, v) for k, v in effective_log_items(eff, total)]
    assert ours == reference_items(folder, "effective_")
