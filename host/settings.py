"""Test settings: what a run is asked to do, what it will really do, and LoadGen conf files.

``TestSettings`` is the *requested* settings (what the user, a preset or a conf file asked for);
``effective_settings`` resolves the scenario defaults the way LoadGen's TestSettingsInternal
does, so that the detail log can record both, as LoadGen does, and a reader can see why a run
issued the number of queries it did.

Conf files use LoadGen's format (``model.scenario.key = value``) and LoadGen's key names and
units, so an existing ``mlperf.conf``/``user.conf`` pair applies unchanged. What LoadGen 6.0.17
reads (checked against its ``FromConfig``): ``target_latency`` (ms) sets the SingleStream and
MultiStream *expected* latency and the Server latency bound; ``target_qps`` sets the Server
arrival rate and the Offline expected QPS; ``samples_per_query`` is read for MultiStream only.
TestSettings field names such as ``single_stream_expected_latency_ns`` or ``server_target_qps``
are *not* conf keys; LoadGen ignores them and so do we, with a warning naming the right key.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from .scoring import early_stopping_min_queries

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MODES = ("PerformanceOnly", "AccuracyOnly", "SubmissionRun")
_U64 = 1 << 64

# LoadGen 6.0.17's built-in mlperf.conf (loadgen/mlperf.conf, embedded in the wheel).
MLPERF_SEEDS = {
    "qsl_rng_seed": 2085463073848966840,
    "sample_index_rng_seed": 2747215439041700203,
    "schedule_rng_seed": 16159082839903944936,
}
# LoadGen's own defaults where a scenario leaves a value unset (test_settings.h).
DEFAULT_EXPECTED_LATENCY_NS = {"SingleStream": 1_000_000, "MultiStream": 8_000_000}
MULTISTREAM_SAMPLES_PER_QUERY = 8
OFFLINE_SLACK = 1.1  # LoadGen issues 10 % more Offline samples than min_duration * QPS
# Server presets need an arrival rate and a bound; these apply unless the caller gives them.
SERVER_DEFAULT_TARGET_QPS = 50.0
SERVER_DEFAULT_TARGET_LATENCY_NS = 100_000_000


class SettingsError(ValueError):
    """Settings that contradict each other or LoadGen's rules; the message names the fix."""


class ConfWarning(UserWarning):
    """A conf-file key that edgeperf (like LoadGen) ignores."""


def default_percentile(scenario: str) -> float:
    return 0.9 if scenario == "SingleStream" else 0.99


@dataclass
class TestSettings:
    """Requested settings. ``None`` means "the scenario's default" (see effective_settings)."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    scenario: str = "SingleStream"
    mode: str = "PerformanceOnly"
    min_duration_ms: int = 10_000
    max_duration_ms: int = 0  # 0: no limit
    min_query_count: int = 100  # Offline: the minimum *sample* count, as in LoadGen
    max_query_count: int = 0  # 0: no limit
    target_latency_ns: int | None = None  # Server: the bound; SS/MS: expected latency
    target_latency_percentile: float | None = None  # a fraction: 0.9, 0.99
    target_qps: float = 0.0  # Server: arrival rate; Offline: expected QPS (0: from warm-up)
    samples_per_query: int | None = None  # MultiStream 8; Offline derived; else 1
    qsl_rng_seed: int = 0
    sample_index_rng_seed: int = 0
    schedule_rng_seed: int = 0
    performance_sample_count: int = 0  # 0: the whole sample set
    warmup_queries: int = 10

    def validate(self) -> TestSettings:
        """Raise SettingsError on the first contradiction; return self to allow chaining."""
        if self.scenario not in SCENARIOS:
            raise SettingsError(f"unknown scenario {self.scenario!r}; "
                                f"choose one of {', '.join(SCENARIOS)}")
        if self.mode not in MODES:
            raise SettingsError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        for name in ("min_duration_ms", "max_duration_ms", "max_query_count",
                     "performance_sample_count", "warmup_queries"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("min_query_count", self.min_query_count, minimum=1)
        for name in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
            value = _check_int(name, getattr(self, name), minimum=0)
            if value >= _U64:
                raise SettingsError(f"{name} = {value} does not fit in 64 bits")
        if self.max_duration_ms and self.min_duration_ms > self.max_duration_ms:
            raise SettingsError(
                f"min_duration_ms ({self.min_duration_ms}) > max_duration_ms "
                f"({self.max_duration_ms}): raise max_duration_ms or set it to 0 (no limit)")
        # Offline's min_query_count counts samples (LoadGen's meaning): not comparable.
        if (self.max_query_count and self.min_query_count > self.max_query_count
                and self.scenario != "Offline"):
            raise SettingsError(
                f"min_query_count ({self.min_query_count}) > max_query_count "
                f"({self.max_query_count}): raise max_query_count or set it to 0 (no limit)")
        if self.target_latency_ns is not None:
            _check_int("target_latency_ns", self.target_latency_ns, minimum=1)
        p = self.target_latency_percentile
        if p is not None and not 0.0 < p < 1.0:
            hint = f"; did you mean {p / 100:g} ({p:g} %)?" if 1.0 < p < 100.0 else ""
            raise SettingsError(f"target_latency_percentile must be a fraction in (0, 1), "
                                f"got {p:g}{hint}")
        if not self.target_qps >= 0.0:
            raise SettingsError(f"target_qps must be >= 0, got {self.target_qps}")
        if self.samples_per_query is not None:
            _check_int("samples_per_query", self.samples_per_query, minimum=1)
            if self.scenario in ("SingleStream", "Server") and self.samples_per_query != 1:
                raise SettingsError(f"{self.scenario} issues one sample per query; "
                                    f"samples_per_query = {self.samples_per_query} is not "
                                    f"allowed (leave it unset)")
        if self.scenario == "Server":
            if not self.target_qps > 0.0:
                raise SettingsError("Server needs target_qps > 0 (the Poisson arrival rate); "
                                    "set target_qps, e.g. preset('quick', 'Server', "
                                    "target_qps=50)")
            if self.target_latency_ns is None:
                raise SettingsError("Server needs a latency bound; set target_latency_ns "
                                    "(conf key target_latency, in ms)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestSettings:
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise SettingsError(f"unknown TestSettings field(s) {', '.join(unknown)}")
        return cls(**d)

    @property
    def min_sample_count(self) -> int:
        """LoadGen's min_sample_count (min_query_count * samples_per_query)."""
        return self.min_query_count * (self.samples_per_query or 1)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


# --------------------------------------------------------------------------- effective


def offline_sample_count(requested: TestSettings, qps: float) -> int:
    """Samples in the one Offline query, as LoadGen: max(min_query_count, 1.1 * duration * qps)."""
    target = int(OFFLINE_SLACK * (requested.min_duration_ms / 1000.0) * qps)
    return max(requested.min_query_count, target)


def effective_settings(requested: TestSettings, *, expected_qps: float | None = None,
                       total_sample_count: int | None = None) -> TestSettings:
    """What the run will really use, resolved as LoadGen's TestSettingsInternal does.

    Call it on *requested* settings only (Offline's min_query_count means samples there and
    1 here). For Offline without a target QPS, pass the ``expected_qps`` the device measured
    in warm-up; until then ``samples_per_query`` stays None. ``total_sample_count`` resolves
    performance_sample_count = 0 to the whole sample set.
    """
    r = requested.validate()
    eff = dataclasses.replace(r)
    scen = r.scenario
    eff.target_latency_percentile = (0.99 if scen == "Offline" else
                                     r.target_latency_percentile or default_percentile(scen))
    if scen in DEFAULT_EXPECTED_LATENCY_NS:
        eff.target_latency_ns = r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen]
        eff.target_qps = 0.0
    if scen == "SingleStream" or scen == "Server":
        eff.samples_per_query = 1
    elif scen == "MultiStream":
        eff.samples_per_query = r.samples_per_query or MULTISTREAM_SAMPLES_PER_QUERY
    else:  # Offline: all samples in one query
        qps = r.target_qps or (expected_qps or 0.0)
        eff.target_qps = qps
        eff.target_latency_ns = 0
        if r.samples_per_query is not None:
            eff.samples_per_query = max(r.samples_per_query, r.min_query_count)
        else:
            eff.samples_per_query = offline_sample_count(r, qps) if qps > 0 else None
        eff.min_query_count = 1
    if r.performance_sample_count == 0 and total_sample_count:
        eff.performance_sample_count = total_sample_count
    return eff


def requested_log_items(r: TestSettings) -> list[tuple[str, Any]]:
    """The requested_* keys of LoadGen's detail log, in its order (6.0.17)."""
    scen = r.scenario
    items: list[tuple[str, Any]] = [("scenario", scen), ("test_mode", r.mode)]
    pct = r.target_latency_percentile or default_percentile(scen)
    if scen == "SingleStream":
        # LoadGen's expected latencies are doubles (logged with %g: 1e+07)
        items += [("single_stream_expected_latency_ns",
                   float(r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen])),
                  ("single_stream_target_latency_percentile", pct)]
    elif scen == "MultiStream":
        items += [("multi_stream_expected_latency_ns",
                   float(r.target_latency_ns or DEFAULT_EXPECTED_LATENCY_NS[scen])),
                  ("multi_stream_target_latency_percentile", pct),
                  ("multi_stream_samples_per_query",
                   r.samples_per_query or MULTISTREAM_SAMPLES_PER_QUERY)]
    elif scen == "Server":
        items += [("server_target_qps", float(r.target_qps)),
                  ("server_target_latency_ns", r.target_latency_ns or 0),
                  ("server_target_latency_percentile", pct),
                  ("server_coalesce_queries", False),
                  ("server_find_peak_qps_decimals_of_precision", 1),
                  ("server_find_peak_qps_boundary_step_size", 1.0),
                  ("server_max_async_queries", 0),
                  ("server_num_issue_query_threads", 0)]
    else:
        items += [("offline_expected_qps", float(r.target_qps))]
    items += [("min_duration_ms", r.min_duration_ms), ("max_duration_ms", r.max_duration_ms),
              ("min_query_count", r.min_query_count), ("max_query_count", r.max_query_count),
              ("qsl_rng_seed", r.qsl_rng_seed),
              ("sample_index_rng_seed", r.sample_index_rng_seed),
              ("schedule_rng_seed", r.schedule_rng_seed)]
    items += _UNSUPPORTED_LOG_DEFAULTS
    items += [("performance_sample_count_override", r.performance_sample_count),
              ("accuracy_sample_count_override", 0),
              ("sample_concatenate_permutation", False)]
    return [("requested_" + k, v) for k, v in items]


# LoadGen features edgeperf does not implement, logged with LoadGen's default values.
_UNSUPPORTED_LOG_DEFAULTS: list[tuple[str, Any]] = [
    ("accuracy_log_rng_seed", 0), ("accuracy_log_probability", 0.0),
    ("accuracy_log_sampling_target", 0), ("print_timestamps", False),
    ("performance_issue_unique", False), ("performance_issue_same", False),
    ("performance_issue_same_index", 0),
]


def effective_log_items(eff: TestSettings, total_sample_count: int | None = None
                        ) -> list[tuple[str, Any]]:
    """The effective_* keys (without prefix) as LoadGen's TestSettingsInternal logs them.

    ``eff`` comes from effective_settings; for Offline its samples_per_query must be known.
    LoadGen's view differs from ours in two places: for SingleStream/MultiStream its
    target_qps is 1 / expected latency and its target_latency is 0.
    """
    scen = eff.scenario
    spq = eff.samples_per_query
    if spq is None:
        raise SettingsError("Offline samples_per_query is not known yet; call "
                            "effective_settings(..., expected_qps=<warm-up QPS>)")
    if scen in DEFAULT_EXPECTED_LATENCY_NS:
        target_qps, target_latency = 1e9 / (eff.target_latency_ns or 1), 0
    else:
        target_qps, target_latency = float(eff.target_qps), eff.target_latency_ns or 0
    perf_count = eff.performance_sample_count or (total_sample_count or 0)
    items: list[tuple[str, Any]] = [
        ("scenario", scen), ("test_mode", eff.mode), ("samples_per_query", spq),
        ("target_qps", target_qps), ("target_latency_ns", target_latency),
        ("target_latency_percentile", eff.target_latency_percentile),
        ("max_async_queries", 0 if scen == "Server" else 1),
        ("target_duration_ms", 0 if scen == "Offline" else eff.min_duration_ms),
        ("min_duration_ms", eff.min_duration_ms), ("max_duration_ms", eff.max_duration_ms),
        ("min_query_count", eff.min_query_count), ("max_query_count", eff.max_query_count),
        ("min_sample_count", eff.min_query_count * spq),
        ("qsl_rng_seed", eff.qsl_rng_seed), ("sample_index_rng_seed", eff.sample_index_rng_seed),
        ("schedule_rng_seed", eff.schedule_rng_seed),
    ]
    items += _UNSUPPORTED_LOG_DEFAULTS
    items += [("performance_sample_count", perf_count),
              ("accuracy_sample_count", total_sample_count or perf_count),
              ("sample_concatenate_permutation", False)]
    return items


# --------------------------------------------------------------------------- presets

PRESETS = ("mlperf", "mobile", "quick", "smoke")
# (min_query_count, min_duration_ms, max_duration_ms) of edgeperf's own presets.
_SHORT_PRESETS = {"mobile": (1024, 60_000, 600_000), "quick": (128, 10_000, 60_000),
                  "smoke": (100, 0, 20_000)}


def preset(name: str, scenario: str, **overrides: Any) -> TestSettings:
    """Named settings for a scenario; keyword overrides (e.g. target_qps=50) win.

    ``mlperf`` is LoadGen 6.0.17's mlperf.conf for a model without model-specific lines
    (over LoadGen's TestSettings defaults), field for field: 600 s minimum everywhere;
    min_query_count 662 for MultiStream and LoadGen's default 100 elsewhere (current
    mlperf.conf no longer sets 1024 for SingleStream or 270336 for Server: early stopping
    replaced them); expected latencies 10 ms (SingleStream) and 80 ms (MultiStream); Server
    bound 10 ms; placeholder target_qps 1.0 for Server and Offline (so Offline issues
    1.1 * 600 s * 1 = 660 samples, as LoadGen would), all meant to be overridden as user.conf
    would. ``mobile``/``quick``/``smoke`` shorten the run. Offline: min_query_count is the
    minimum sample count of the single query (LoadGen's meaning); in the short presets
    target_qps 0 lets the device estimate the rate in warm-up. Server presets other than
    mlperf default to target_qps 50 and a 100 ms bound. ``mobile`` and ``quick`` raise
    min_query_count to ``scoring.early_stopping_min_queries`` at the percentile in force
    (overrides included) unless min_query_count itself is overridden.
    """
    if scenario not in SCENARIOS:
        raise SettingsError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    s = TestSettings(scenario=scenario, **MLPERF_SEEDS)
    if name == "mlperf":
        s.min_duration_ms = 600_000
        s.target_latency_ns = {"SingleStream": 10_000_000, "MultiStream": 80_000_000,
                               "Server": 10_000_000}.get(scenario)
        if scenario == "MultiStream":
            s.min_query_count = 662
            s.samples_per_query = MULTISTREAM_SAMPLES_PER_QUERY
        if scenario in ("Server", "Offline"):
            s.target_qps = 1.0  # mlperf.conf's placeholders, "to be overridden by user.conf"
    elif name in _SHORT_PRESETS:
        s.min_query_count, s.min_duration_ms, s.max_duration_ms = _SHORT_PRESETS[name]
        if scenario == "MultiStream":
            s.samples_per_query = MULTISTREAM_SAMPLES_PER_QUERY
        if scenario == "Server":
            s.target_qps = SERVER_DEFAULT_TARGET_QPS
            s.target_latency_ns = SERVER_DEFAULT_TARGET_LATENCY_NS
    else:
        raise SettingsError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if scenario != "Offline":
        s.target_latency_percentile = default_percentile(scenario)
    try:
        s = dataclasses.replace(s, **overrides)
    except TypeError as e:
        raise SettingsError(f"preset {name!r}: {e}") from None
    if name in ("mobile", "quick") and "min_query_count" not in overrides:
        # never a preset that cannot be VALID: as many queries as early stopping needs at
        # the percentile in force (an overridden one too: 662 at p99, 6636 at p99.9)
        pct = s.validate().target_latency_percentile
        if pct is not None:
            s.min_query_count = max(s.min_query_count,
                                    early_stopping_min_queries(scenario, pct))
    return s.validate()


# --------------------------------------------------------------------------- conf files


class ConfEntry(NamedTuple):
    model: str
    scenario: str
    key: str
    value: str


class ConfError(SettingsError):
    """A conf file that cannot be read; the message names file:line and key."""


def _number_ok(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        pass
    try:
        float(text)
        return True
    except ValueError:
        return False


def _parse(text: str, source: str) -> list[tuple[ConfEntry, int]]:
    out: list[tuple[ConfEntry, int]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, eq, value = line.partition("=")
        name, value = name.strip(), value.strip()
        parts = name.rsplit(".", 2)
        if not eq or len(parts) != 3 or not all(parts) or not value or " " in value:
            raise ConfError(f"{source}:{n}: expected 'model.scenario.key = value', got {raw!r}")
        entry = ConfEntry(parts[0], parts[1], parts[2], value)
        if not _number_ok(value):
            raise ConfError(f"{source}:{n}: key {name!r}: value {value!r} is not a number")
        out.append((entry, n))
    return out


def parse_conf(text: str, source: str = "<conf>") -> list[ConfEntry]:
    """Parse LoadGen conf text into (model, scenario, key, value) entries, values as text."""
    return [e for e, _ in _parse(text, source)]


def _as_int(text: str) -> int:
    """A non-negative integer ("0x" prefixes allowed; "010" is ten, not LoadGen's octal 8)."""
    try:
        v = int(text, 0)
    except ValueError:
        try:
            v = int(text, 10)
        except ValueError:
            f = float(text)
            if not f.is_integer():
                raise ValueError("not an integer") from None
            v = int(f)
    if not 0 <= v < _U64:
        raise ValueError("must be >= 0 and fit in 64 bits")
    return v


def _as_float(text: str) -> float:
    v = float(text)
    if not v >= 0.0 or v == float("inf"):
        raise ValueError("must be a finite number >= 0")
    return v


def _ms_to_ns(text: str) -> int:
    ns = round(_as_float(text) * 1_000_000)
    if ns <= 0:
        raise ValueError("must be > 0 ms")
    return ns


def _whole_ms_to_ns(text: str) -> int:
    """LoadGen reads the Server bound as integer ms (strtoull: "7.5" is 7); refuse fractions."""
    ns = _ms_to_ns(text)
    if ns % 1_000_000:
        raise ValueError("LoadGen reads the Server target_latency as whole milliseconds and "
                         "would truncate it; write a whole number of ms")
    return ns


def _percent(text: str) -> float:
    v = _as_float(text)
    if not 0.0 < v < 100.0:
        raise ValueError("a percentile in percent, strictly between 0 and 100")
    return v * 0.01  # as LoadGen multiplies, so 99.9 gives the same double


def _mode(text: str) -> str:
    modes = {0: "SubmissionRun", 1: "AccuracyOnly", 2: "PerformanceOnly"}
    v = _as_int(text)
    if v not in modes:
        raise ValueError("mode is 0 (SubmissionRun), 1 (AccuracyOnly) or 2 (PerformanceOnly)")
    return modes[v]


# conf key -> (TestSettings field, converter, scenarios it applies to or None for all)
_CONF_KEYS: dict[str, tuple[str, Any, tuple[str, ...] | None]] = {
    "mode": ("mode", _mode, None),
    "min_duration": ("min_duration_ms", _as_int, None),
    "max_duration": ("max_duration_ms", _as_int, None),
    "min_query_count": ("min_query_count", _as_int, None),
    "max_query_count": ("max_query_count", _as_int, None),
    "target_latency": ("target_latency_ns", _ms_to_ns,
                       ("SingleStream", "MultiStream", "Server")),
    "target_latency_percentile": ("target_latency_percentile", _percent, None),
    "target_qps": ("target_qps", _as_float, ("Server", "Offline")),
    "samples_per_query": ("samples_per_query", _as_int, ("MultiStream",)),
    "performance_sample_count_override": ("performance_sample_count", _as_int, None),
    "qsl_rng_seed": ("qsl_rng_seed", _as_int, None),
    "sample_index_rng_seed": ("sample_index_rng_seed", _as_int, None),
    "schedule_rng_seed": ("schedule_rng_seed", _as_int, None),
    "warmup_queries": ("warmup_queries", _as_int, None),  # edgeperf's own key
}
# Keys LoadGen reads that edgeperf does not act on: ignored silently, as mlperf.conf has them.
_LOADGEN_ONLY_KEYS = frozenset({
    "accuracy_log_rng_seed", "accuracy_log_probability", "accuracy_log_sampling_target",
    "print_timestamps", "performance_issue_unique", "performance_issue_same",
    "performance_issue_same_index", "accuracy_sample_count_override",
    "sample_concatenate_permutation", "max_async_queries", "coalesce_queries",
    "target_duration", "use_token_latencies", "ttft_latency", "tpot_latency",
    "infer_token_latencies", "token_latency_scaling_factor", "use_grouped_qsl",
    "test05", "test05_qsl_rng_seed", "test05_sample_index_rng_seed",
    "test05_schedule_rng_seed",
})
_NOT_CONF_KEYS = {
    "single_stream_expected_latency_ns": "target_latency (ms)",
    "multi_stream_expected_latency_ns": "target_latency (ms)",
    "server_target_latency_ns": "target_latency (ms)",
    "server_target_qps": "target_qps",
    "offline_expected_qps": "target_qps",
    "multi_stream_samples_per_query": "samples_per_query",
    "performance_sample_count": "performance_sample_count_override",
}


def _read_conf(conf: str | os.PathLike[str], index: int) -> tuple[str, str]:
    """(text, source name). A Path is a file; a str holding '=' or a newline is conf text."""
    if isinstance(conf, str) and ("=" in conf or "\n" in conf):
        return conf, f"<conf #{index}>"
    path = Path(conf)
    try:
        return path.read_text(), str(path)
    except OSError as e:
        raise ConfError(f"cannot read conf file {path}: {e.strerror}") from None


def apply_conf(settings: TestSettings, confs: list[str | os.PathLike[str]],
               model: str) -> TestSettings:
    """Apply conf files in order (later files win), looking keys up as LoadGen's FromConfig.

    Within one file a key is taken from the first of ``model.scenario``, ``*.scenario``,
    ``model.*``, ``*.*`` that has it; within one of those, the last line wins. One
    difference: LoadGen ignores the rng seeds in user.conf (they come from its built-in
    mlperf.conf only); edgeperf takes them from any file, as it has no built-in conf.
    """
    result = dataclasses.replace(settings)
    scen = settings.scenario
    for i, conf in enumerate(confs):
        text, source = _read_conf(conf, i)
        table: dict[tuple[str, str, str], tuple[str, int]] = {}
        for entry, line in _parse(text, source):
            _warn_unknown(entry, source, line)
            table[(entry.model, entry.scenario, entry.key)] = (entry.value, line)
        for key, (field, convert, scenarios) in _CONF_KEYS.items():
            if scenarios is not None and scen not in scenarios:
                continue
            for m, s in ((model, scen), ("*", scen), (model, "*"), ("*", "*")):
                if (m, s, key) in table:
                    value, line = table[(m, s, key)]
                    try:
                        if key == "target_latency" and scen == "Server":
                            convert = _whole_ms_to_ns
                        setattr(result, field, convert(value))
                    except ValueError as e:
                        raise ConfError(f"{source}:{line}: key {m}.{s}.{key}: "
                                        f"bad value {value!r} ({e})") from None
                    break
    return result


def _warn_unknown(entry: ConfEntry, source: str, line: int) -> None:
    if entry.scenario != "*" and entry.scenario not in SCENARIOS:
        warnings.warn(f"{source}:{line}: scenario {entry.scenario!r} is not one of "
                      f"{', '.join(SCENARIOS)}; the line never applies", ConfWarning,
                      stacklevel=3)
    key = entry.key
    if key in _CONF_KEYS or key in _LOADGEN_ONLY_KEYS:
        return
    hint = f"; the conf key is {_NOT_CONF_KEYS[key]}" if key in _NOT_CONF_KEYS else ""
    warnings.warn(f"{source}:{line}: unknown key {key!r} ignored (LoadGen ignores it too)"
                  f"{hint}", ConfWarning, stacklevel=3)
