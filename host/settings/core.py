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
A line is read as LoadGen's parser reads it (words split at whitespace, '#' a comment only as
a word of its own, strtoull/strtod for the values); a line LoadGen refuses, or would drop or
misread without a word (``k=v`` in one word, a comment after a value, ``010`` read as octal
8, ``1e3`` read as 1 for an integer key, a Server bound of 7.5 ms read as 7), is refused
with its file:line, the line and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from edgeperf.scoring.loadgen import early_stopping_min_queries
from edgeperf_agent import lgseq

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
    """Samples in the one Offline query, as LoadGen: max(min_query_count, 1.1 * duration * qps),
    by the one function the agent uses too (device_agent.lgseq)."""
    return lgseq.offline_sample_count(requested.min_duration_ms, qps, requested.min_query_count)


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


def preset(name: str, scenario: str, *, confs: list[str | os.PathLike[str]] | None = None,
           conf_model: str = "*", **overrides: Any) -> TestSettings:
    """Named settings for a scenario; then LoadGen conf files (``confs``, looked up for
    ``conf_model``, as apply_conf); then keyword overrides (e.g. target_qps=50) win.

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
    (a conf's or an override's included) unless min_query_count itself is set by either.
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
    s, from_conf = _apply_conf(s, confs or [], conf_model)
    try:
        s = dataclasses.replace(s, **overrides)
    except TypeError as e:
        raise SettingsError(f"preset {name!r}: {e}") from None
    if name in ("mobile", "quick") and "min_query_count" not in {*overrides, *from_conf}:
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
    """A conf line edgeperf refuses; the message names file:line, the line and the fix."""


# How LoadGen 6.0.17's "dirt simple config parser" (TestSettings::FromConfig) reads a file:
# lines split at '\n'; words split at C whitespace (isspace in the C locale); the first word
# is the key, the second must be '=' (else: error), every further word a value that
# strtoul(.., 0) or strtod must read whole (else: error), the last one kept; a word '#'
# before the value ends the line (a comment), after it it is one more value (so an error).
# A line with one word, or with none after '=', is silently ignored, and so is a key no
# lookup asks for. Values stay text until a lookup converts them: strtoull(text, 0) times
# the multiplier for an integer key, strtod(text) times it for a double.
_C_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")
_STRTOUL_WHOLE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD_WHOLE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)")
_STRTOULL_PREFIX = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
_DECIMAL_INT = re.compile(r"[+-]?[0-9]+")
_OCTAL_LOOKING = re.compile(r"[+-]?0[0-9]+")


def _loadgen_number(word: str) -> bool:
    """True when LoadGen's parser takes ``word`` as a value (strtoul or strtod reads it all)."""
    return bool(_STRTOUL_WHOLE.fullmatch(word) or _STRTOD_WHOLE.fullmatch(word))


def _loadgen_u64(text: str) -> int:
    """strtoull(text, nullptr, 0) as glibc computes it: the longest integer prefix (0x hex,
    leading-0 octal, decimal), 0 when there is none, ULLONG_MAX on overflow, a negative
    number wrapped modulo 2**64."""
    m = _STRTOULL_PREFIX.match(text)
    if not m:
        return 0
    sign, hexa, octal, decimal = m.groups()
    v = int(hexa, 16) if hexa else int(octal, 8) if octal else int(decimal)
    if v >= _U64:
        return _U64 - 1
    return (-v) % _U64 if sign == "-" else v


def _written(text: str) -> int | Decimal | float:
    """The number a value says, read as a person reads it: decimal digits are decimal (010
    is ten), 0x is hex, decimals exactly (a Decimal), hex floats, inf and nan."""
    if _DECIMAL_INT.fullmatch(text):
        return int(text, 10)
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.match(r"[+-]?0[xX]", text):
        return _strtod(text)
    if "n" in text.lower():  # inf, infinity, nan, nan(...)
        return math.nan if "a" in text.lower() else float(text)
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent past Decimal's range: 0 or inf as a double
        return float(text)


def _strtod(text: str) -> float:
    """strtod(text) for a word LoadGen's parser took: the correctly rounded double, +-inf
    past the range, hex floats included."""
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        if re.match(r"[+-]?0[xX]", text):
            return float.fromhex(text)
        return float(text)  # rounds as strtod does; inf, infinity, nan as well
    except OverflowError:
        return math.copysign(math.inf, sign)
    except ValueError:  # nan(n-char-sequence), which float() does not read
        return math.copysign(math.nan, sign)


class _Refusal(ValueError):
    """A conf value refused at lookup: (what is wrong, how to fix it)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem, fix)
        self.problem, self.fix = problem, fix


def _u64(text: str, multiplier: int = 1, unit: str = "") -> int:
    """An integer key, read as LoadGen reads it, refused where that is not what it says."""
    lg = _loadgen_u64(text) * multiplier % _U64
    says = _written(text)
    finite = not isinstance(says, float) or math.isfinite(says)
    if not finite:
        raise _Refusal(f"LoadGen reads {text} as {lg} here", "write a whole number")
    if says < 0:
        raise _Refusal(f"a negative value: LoadGen reads {text} as {lg} (it wraps)",
                       "write a number >= 0")
    if says != int(says):
        whole = (" (the Server target_latency is read in whole milliseconds)"
                 if unit == "ms" else "")
        raise _Refusal(f"LoadGen reads {text} as {_loadgen_u64(text)}{whole}",
                       f"write a whole number{' of ms' if unit else ''}")
    value = int(says) * multiplier
    if value >= _U64:
        raise _Refusal(f"{text} does not fit in 64 bits (LoadGen reads {lg})",
                       "write a smaller number")
    if value != lg:
        if _OCTAL_LOOKING.fullmatch(text):
            raise _Refusal(f"LoadGen reads {text} as octal, {_loadgen_u64(text)}",
                           f"write {int(says)} (or {_loadgen_u64(text)}) without the leading 0")
        raise _Refusal(f"LoadGen reads {text} as {_loadgen_u64(text)} (an integer key is "
                       "read up to its first character that is not a digit)",
                       f"write {int(says)}")
    return value


def _double(text: str) -> float:
    """strtod(text), as LoadGen reads a double key: the same double; refused if not usable."""
    v = _strtod(text)
    if not (math.isfinite(v) and v >= 0.0):
        raise _Refusal(f"LoadGen reads {text}, but edgeperf needs a finite number >= 0",
                       "write a finite number >= 0")
    return v


def _min_one(text: str) -> int:
    v = _u64(text)
    if v < 1:
        raise _Refusal(f"{text}: edgeperf needs a value >= 1 (LoadGen takes 0)",
                       "write a number >= 1")
    return v


def _ms_to_ns(text: str) -> int:
    """SingleStream/MultiStream target_latency: a double number of ms (strtod * 1e6)."""
    ns = round(_double(text) * 1_000_000)
    if ns <= 0:
        raise _Refusal(f"a target_latency of {text} ms: edgeperf needs one > 0 ms",
                       "write the expected latency in ms, > 0 ms")
    return ns


def _whole_ms_to_ns(text: str) -> int:
    """Server target_latency: strtoull(text) * 1000 * 1000, so whole milliseconds."""
    ns = _u64(text, 1_000_000, "ms")
    if ns <= 0:
        raise _Refusal("a Server bound of 0 ms: edgeperf needs one > 0 ms (LoadGen's 0 is "
                       "for token-latency models, which edgeperf does not run)",
                       "write the latency bound in ms, > 0 ms")
    return ns


def _percent(text: str) -> float:
    v = _double(text)
    if not 0.0 < v < 100.0:
        raise _Refusal(f"target_latency_percentile {text}: a percentile in percent, strictly "
                       "between 0 and 100", "write e.g. 99 for p99, 99.9 for p99.9")
    return v * 0.01  # as LoadGen multiplies, so 99.9 gives the same double


def _mode(text: str) -> str:
    modes = {0: "SubmissionRun", 1: "AccuracyOnly", 2: "PerformanceOnly"}
    v = _u64(text)
    if v == 3:
        raise _Refusal("mode 3 is LoadGen's FindPeakPerformance, which edgeperf does not run",
                       "write 0 (SubmissionRun), 1 (AccuracyOnly) or 2 (PerformanceOnly)")
    if v not in modes:
        raise _Refusal(f"mode is 0 (SubmissionRun), 1 (AccuracyOnly) or 2 (PerformanceOnly); "
                       f"LoadGen ignores {text} (it logs an error and keeps its mode)",
                       "write 0, 1 or 2")
    return modes[v]


SS_MS_SERVER = ("SingleStream", "MultiStream", "Server")
# conf key -> (TestSettings field, converter, scenarios it is looked up for, None: all), as
# LoadGen's FromConfig looks them up (target_latency_percentile: not for Offline).
_CONF_KEYS: dict[str, tuple[str, Any, tuple[str, ...] | None]] = {
    "mode": ("mode", _mode, None),
    "min_duration": ("min_duration_ms", _u64, None),
    "max_duration": ("max_duration_ms", _u64, None),
    "min_query_count": ("min_query_count", _min_one, None),
    "max_query_count": ("max_query_count", _u64, None),
    "target_latency": ("target_latency_ns", _ms_to_ns, SS_MS_SERVER),
    "target_latency_percentile": ("target_latency_percentile", _percent, SS_MS_SERVER),
    "target_qps": ("target_qps", _double, ("Server", "Offline")),
    "samples_per_query": ("samples_per_query", _min_one, ("MultiStream",)),
    "performance_sample_count_override": ("performance_sample_count", _u64, None),
    "qsl_rng_seed": ("qsl_rng_seed", _u64, None),
    "sample_index_rng_seed": ("sample_index_rng_seed", _u64, None),
    "schedule_rng_seed": ("schedule_rng_seed", _u64, None),
    "warmup_queries": ("warmup_queries", _u64, None),  # edgeperf's own key
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


def _refuse(source: str, n: int, raw: str, problem: str, fix: str) -> ConfError:
    return ConfError(f"{source}:{n}: {raw.rstrip(chr(13))!r}: {problem}; {fix}")


class _LineVerdict(NamedTuple):
    key: str  # "" when the line is refused
    values: list[str]
    problem: str = ""
    fix: str = ""


def _refused(problem: str, fix: str) -> _LineVerdict:
    return _LineVerdict("", [], problem, fix)


def _parse_line(raw: str) -> _LineVerdict | None:
    """LoadGen's reading of one line: None (nothing to read), its key and values, or a
    refusal for a line LoadGen refuses or silently drops although it says something."""
    words = [w for w in _C_SPACE.split(raw) if w]
    key, values, state = "", [], 0  # state: 0 key, 1 '=', 2 values
    for word in words:
        if word == "#" and state != 2:
            break
        if state == 2:
            if not _loadgen_number(word):
                return _refused(
                    f"LoadGen refuses the line: {word!r} is not a number",
                    "put the comment on a line of its own ('#' after a value is read as one "
                    "more value)" if "#" in word else
                    "write an integer (12, 0x1f) or a decimal number (2.5, 1e3), no unit")
            values.append(word)
            continue
        if state == 1 and word != "=":
            if key.startswith("#"):
                return _refused("LoadGen refuses the line: '#' starts a comment only as a "
                                "word of its own",
                                f"write {'# ' + raw.strip()[1:].lstrip()!r}")
            return _refused("LoadGen refuses the line: its second word must be '='",
                            "write 'model.scenario.key = value', with spaces around '='")
        if state == 0:
            key = word
        state += 1
    if state == 0 or key.startswith("#"):
        return None  # empty, a comment, or a key LoadGen stores under '#...' (commented out)
    if state == 1 and "=" in key:
        left, _, right = key.partition("=")
        return _refused("LoadGen ignores the line: it splits words at spaces, and this is one "
                        "word, a key without a value", f"write {f'{left} = {right}'!r}")
    if state == 1:
        return _refused("LoadGen ignores the line: a key with no '= value'",
                        "add ' = VALUE', or make the line a comment ('# ...')")
    if not values:
        return _refused("LoadGen ignores the line: no value after '='",
                        "give a value or delete the line")
    if len(values) > 1:
        return _refused(f"{len(values)} values: LoadGen reads only the last, {values[-1]}",
                        "keep one")
    parts = key.rsplit(".", 2)
    if len(parts) != 3 or not all(parts):
        return _refused(f"LoadGen ignores the line: {key!r} is not model.scenario.key",
                        "write e.g. '*.*.min_duration' ('*' for any model or scenario)")
    return _LineVerdict(key, values)


def _parse(text: str, source: str) -> list[tuple[ConfEntry, int]]:
    out: list[tuple[ConfEntry, int]] = []
    for n, raw in enumerate(text.split("\n"), 1):
        if "\ufeff" in raw:
            raise _refuse(source, n, raw, "LoadGen ignores the line: it holds a byte-order mark "
                          "(U+FEFF), which LoadGen reads as part of the key",
                          "save the file as UTF-8 without a BOM")
        if "\0" in raw:
            raise _refuse(source, n, raw, "a NUL byte (LoadGen ends a word there)",
                          "remove it")
        verdict = _parse_line(raw)
        if verdict is None:
            continue
        if not verdict.key:
            raise _refuse(source, n, raw, verdict.problem, verdict.fix)
        model, scenario, key = verdict.key.rsplit(".", 2)
        out.append((ConfEntry(model, scenario, key, verdict.values[0]), n))
    return out


def parse_conf(text: str, source: str = "<conf>") -> list[ConfEntry]:
    """Parse LoadGen conf text into (model, scenario, key, value) entries, values as text.
    Raises ConfError on a line LoadGen refuses or would silently drop or misread."""
    return [e for e, _ in _parse(text, source)]


def _read_conf(conf: str | os.PathLike[str], index: int) -> tuple[str, str]:
    """(text, source name). A Path is a file; a str holding '=' or a newline is conf text."""
    if isinstance(conf, str) and ("=" in conf or "\n" in conf):
        return conf, f"<conf #{index}>"
    path = Path(conf)
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape"), str(path)
    except OSError as e:
        raise ConfError(f"cannot read conf file {path}: {e.strerror}") from None


def apply_conf(settings: TestSettings, confs: list[str | os.PathLike[str]],
               model: str) -> TestSettings:
    """Apply conf files in order (later files win), looking keys up as LoadGen's FromConfig.

    Within one file a key is taken from the first of ``model.scenario``, ``*.scenario``,
    ``model.*``, ``*.*`` that has it; within one of those, the last line wins. A value is
    converted (and refused, naming its line, where LoadGen would misread it) only where a
    lookup finds it, as LoadGen converts it only then. One difference: LoadGen ignores the
    rng seeds in user.conf (they come from its built-in mlperf.conf only); edgeperf takes
    them from any file, as it has no built-in conf.
    """
    return _apply_conf(settings, confs, model)[0]


def _apply_conf(settings: TestSettings, confs: list[str | os.PathLike[str]],
                model: str) -> tuple[TestSettings, set[str]]:
    """apply_conf, and the names of the fields the files set."""
    fields: set[str] = set()
    result = dataclasses.replace(settings)
    scen = settings.scenario
    for i, conf in enumerate(confs):
        text, source = _read_conf(conf, i)
        table: dict[tuple[str, str, str], tuple[str, int]] = {}
        for entry, line in _parse(text, source):
            _warn_unknown(entry, source, line)
            table[(entry.model, entry.scenario, entry.key)] = (entry.value, line)
        lines = text.split("\n")
        for key, (field, convert, scenarios) in _CONF_KEYS.items():
            if scenarios is not None and scen not in scenarios:
                continue
            if key == "target_latency" and scen == "Server":
                convert = _whole_ms_to_ns
            for m, s in ((model, scen), ("*", scen), (model, "*"), ("*", "*")):
                if (m, s, key) in table:
                    value, line = table[(m, s, key)]
                    try:
                        setattr(result, field, convert(value))
                    except _Refusal as e:
                        raise _refuse(source, line, lines[line - 1], e.problem, e.fix) from None
                    fields.add(field)
                    break
    return result, fields


def _warn_unknown(entry: ConfEntry, source: str, line: int) -> None:
    if entry.scenario != "*" and entry.scenario not in SCENARIOS:
        warnings.warn(f"{source}:{line}: scenario {entry.scenario!r} is not one of "
                      f"{', '.join(SCENARIOS)}; the line never applies (LoadGen ignores it "
                      f"too)", ConfWarning, stacklevel=3)
    key = entry.key
    if key in _CONF_KEYS or key in _LOADGEN_ONLY_KEYS:
        return
    hint = f"; the conf key is {_NOT_CONF_KEYS[key]}" if key in _NOT_CONF_KEYS else ""
    warnings.warn(f"{source}:{line}: unknown key {key!r} ignored (LoadGen ignores it too)"
                  f"{hint}", ConfWarning, stacklevel=3)
