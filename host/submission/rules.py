"""The rules of an MLPerf version, as data: one TOML file a version in rules/ (rules/v6.1.toml
says where each number comes from in MLCommons' sources), read into frozen records.

A user may keep a rules file of their own (the same schema) and pass its path: the tree and
the checker then follow it instead of a shipped version.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeperf.errors import UsageError

DEFAULT_VERSION = "v6.1"
RULES_DIR = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's rules; ``name`` is its directory in the tree."""

    name: str
    task: str | None  # the edgeperf task that runs it; None for MLPerf benchmarks a user brings
    mlperf_model: str | None  # MLCommons' model name (Tiny's for tiny ones); None: edgeperf's
    model_sha256: str | None  # the model closed requires; None when unknown
    dataset: str
    dataset_size: int  # QSL total count the accuracy run must cover
    metric: str
    target: float  # closed: the accuracy must be >= it
    accuracy_pattern: str  # re.match on each line of accuracy.txt, first group = value
    scenarios_edge: tuple[str, ...]  # required for the edge category in closed
    min_query_count: dict[str, int] = field(default_factory=dict)  # effective, per scenario
    performance_sample_count: int = 0
    offline_min_samples_per_query: int = 0
    compliance: tuple[str, ...] = ()
    test01_sampling_target: int = 4096  # compliance/TEST01/<model>/audit.config
    tiny: bool = False  # an MLPerf Tiny benchmark: Tiny's tree, not Inference's


@dataclass(frozen=True)
class Rules:
    version: str
    loadgen_version: str
    seeds: dict[str, int]
    min_duration_ms: int
    accuracy_log_max_bytes: int
    truncate_keep_bytes: int
    truncate_marker: str
    divisions: tuple[str, ...]
    system_required_fields: tuple[str, ...]
    system_meaningful_fields: tuple[str, ...]
    system_power_fields: tuple[str, ...]
    measurements_required_fields: tuple[str, ...]
    accepted_power_meters: tuple[str, ...]
    benchmarks: dict[str, Benchmark]
    source: str = ""
    # compliance/TEST01/*/audit.config's accuracy_log_rng_seed, TEST04/audit.config's index
    test01_accuracy_log_rng_seed: int = 720381539243781796
    test04_performance_issue_same_index: int = 3  # the file the rules were read from

    def benchmark(self, name: str) -> Benchmark:
        try:
            return self.benchmarks[name]
        except KeyError:
            raise UsageError(f"rules {self.version}: no benchmark {name!r}; known: "
                             f"{', '.join(sorted(self.benchmarks))} (or add it to a rules "
                             f"file of your own and pass --rules PATH)") from None


def shipped_versions() -> list[str]:
    return sorted(p.stem for p in RULES_DIR.glob("v*.toml"))


def load_rules(version: str | None = None, path: str | Path | None = None) -> Rules:
    """The rules of ``version`` (default v6.1) as shipped, or of the file at ``path``."""
    if path is None:
        version = version or DEFAULT_VERSION
        path = RULES_DIR / f"{version}.toml"
        if not path.is_file():
            raise UsageError(f"no rules for version {version!r}; edgeperf ships "
                             f"{', '.join(shipped_versions())} (or pass a rules file's path)")
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read rules file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"rules file {path}: {e}") from None
    try:
        return _rules(data, str(path))
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"rules file {path}: {type(e).__name__} {e}: missing or wrong key; "
                         f"see {RULES_DIR / (DEFAULT_VERSION + '.toml')} for the schema") from None


def _rules(d: dict[str, Any], source: str) -> Rules:
    return Rules(
        version=str(d["version"]), loadgen_version=str(d["loadgen_version"]),
        seeds={k: int(v) for k, v in d["seeds"].items()},
        min_duration_ms=int(d["min_duration_ms"]),
        accuracy_log_max_bytes=int(d["accuracy_log_max_bytes"]),
        truncate_keep_bytes=int(d["truncate_keep_bytes"]),
        truncate_marker=str(d["truncate_marker"]), divisions=tuple(d["divisions"]),
        system_required_fields=tuple(d["system"]["required_fields"]),
        system_meaningful_fields=tuple(d["system"]["meaningful_fields"]),
        system_power_fields=tuple(d["system"]["power_fields"]),
        measurements_required_fields=tuple(d["measurements"]["required_fields"]),
        accepted_power_meters=tuple(d["accepted_power_meters"]),
        benchmarks={name: _benchmark(name, b) for name, b in d["benchmarks"].items()},
        source=source,
        test01_accuracy_log_rng_seed=int(d.get("audit", {}).get(
            "test01_accuracy_log_rng_seed", 720381539243781796)),
        test04_performance_issue_same_index=int(d.get("audit", {}).get(
            "test04_performance_issue_same_index", 3)))


def _benchmark(name: str, b: dict[str, Any]) -> Benchmark:
    return Benchmark(
        name=name, task=b.get("task"), mlperf_model=b.get("mlperf_model"),
        model_sha256=b.get("model_sha256"), dataset=str(b["dataset"]),
        dataset_size=int(b["dataset_size"]), metric=str(b["metric"]),
        target=float(b["target"]), accuracy_pattern=str(b["accuracy_pattern"]),
        scenarios_edge=tuple(b.get("scenarios_edge", ())),
        min_query_count={k: int(v) for k, v in b.get("min_query_count", {}).items()},
        performance_sample_count=int(b.get("performance_sample_count", 0)),
        offline_min_samples_per_query=int(b.get("offline_min_samples_per_query", 0)),
        compliance=tuple(b.get("compliance", ())), tiny=bool(b.get("tiny", False)),
        test01_sampling_target=int(b.get("test01_sampling_target", 4096)))


__all__ = ["DEFAULT_VERSION", "Benchmark", "Rules", "load_rules", "shipped_versions"]
