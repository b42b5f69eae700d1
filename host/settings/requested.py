"""Requested test settings: what a run is asked to do, and whether it can be done.

``TestSettings`` holds what the user, a preset or a conf file asked for, in LoadGen's terms;
``None`` leaves a value to the scenario's default, which settings.effective resolves. The
scenarios and their fixed rules (names, default percentile, MultiStream's samples per query)
are defined once, in the agent's lgseq, for both ends.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from edgeperf import errors
from edgeperf_agent.lgseq import SCENARIOS

MODES = ("PerformanceOnly", "AccuracyOnly", "SubmissionRun")
U64 = 1 << 64  # seeds and conf integers are LoadGen's uint64


class SettingsError(errors.UsageError):
    """Settings that contradict each other or LoadGen's rules; the message names the fix."""


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
    # the compliance audits' keys (MLCommons' audit.config): TEST01 logs a sample of the
    # performance run's outputs, TEST04 issues one sample over and over
    accuracy_log_rng_seed: int = 0
    accuracy_log_probability: float = 0.0  # not a conf key in LoadGen either
    accuracy_log_sampling_target: int = 0
    performance_issue_same: bool = False
    performance_issue_same_index: int = 0

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
        for name in ("accuracy_log_sampling_target", "performance_issue_same_index"):
            _check_int(name, getattr(self, name), minimum=0)
        if not 0.0 <= self.accuracy_log_probability <= 1.0:
            raise SettingsError(f"accuracy_log_probability must be in [0, 1], got "
                                f"{self.accuracy_log_probability!r}")
        if (self.accuracy_log_sampling_target or self.accuracy_log_probability
                or self.performance_issue_same) and self.mode != "PerformanceOnly":
            raise SettingsError("accuracy_log_* and performance_issue_same are the "
                                "compliance audits' keys: they apply to a performance run "
                                "(mode PerformanceOnly, conf 'mode = 2')")
        for name in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
                     "accuracy_log_rng_seed"):
            value = _check_int(name, getattr(self, name), minimum=0)
            if value >= U64:
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

