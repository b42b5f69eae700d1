"""What a run is asked to do (RunSpec), what its caller adds (RunOptions), what it gives back.

A RunSpec holds the benchmark's own facts: model, settings, board, samples, meter. What a
command line or a task adds around it (every query in the trace, an output audit after the
timed run, extra keys for result.json) travels apart, in RunOptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeperf.boards.profile import BoardProfile
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import TestSettings

if TYPE_CHECKING:
    from edgeperf.run.client import AgentClient
    from edgeperf.scoring.accuracy import AccuracyResult

EXIT_VALID, EXIT_ERROR, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3
DEFAULT_SAMPLE_COUNT = 256
QUERYLOG_MODES = ("auto", "full", "summary")
LOADGEN_DRIVERS = ("edgeperf", "official")  # who times the run on the device

# report(event, data): "connect", "hello", "push", "run", "progress", "audit", "done", and a
# power run's events; the CLI draws progress from them, a script may pass None
Reporter = Callable[[str, dict[str, Any]], None]
# after_run(client, {"samples_sha", "querylog", "details"}) -> a record for result.json; its
# "invalid_reasons" make the run INVALID (tasks/audit.py: the output audit)
AfterRun = Callable[["AgentClient", dict[str, Any]], dict[str, Any]]


@dataclass
class RunSpec:
    model: str
    settings: TestSettings  # as requested (presets, conf files, flags); resolved per run
    board: str | BoardProfile = "local"
    out_dir: Path = Path("results")
    threads: int | None = None
    sample_count: int = DEFAULT_SAMPLE_COUNT
    run_idle_timeout: float = 120.0
    conf_files: list[str] = field(default_factory=list)
    # A task's run brings its own samples and load options:
    samples: list[np.ndarray] | None = None  # the sample set (default: generated)
    # the QSL index of each of ``samples``, in LoadGen's loaded-set order (the agent's
    # QueryLog holds positions in the set; querylog.npz maps them back with qsl_index)
    qsl_indices: list[int] | None = None
    load_options: dict[str, Any] = field(default_factory=dict)  # e.g. input_shapes
    meter: str | None = None  # power meter URL (default: the board profile's [meter] url)
    idle_baseline_s: float = 0.0  # measure the idle device this long before the run
    # "summary": the device keeps the QueryLog and sends its sorted latencies (exact scoring,
    # few bytes: for long runs over slow links) and the first 10,000 queries for the trace
    querylog: str = "auto"
    # "official": MLCommons LoadGen (mlperf_loadgen, on the device) drives the backend and
    # writes the logs; "edgeperf": the agent's own loops, scored on the host
    loadgen: str = "edgeperf"
    qsl_total: int | None = None  # the QSL's total count (a task's dataset); None: the set's
    # after the timed run: a per-operator profile over this many inferences (0: none)
    profile_ops: int = 0
    # instead of ``samples``: the sample set made from the loaded model's input details (a
    # task's dataset fitted to an .onnx or .pte model, whose inputs its runtime reports)
    fit_samples: Callable[[list[dict[str, Any]]], list[np.ndarray]] | None = None


@dataclass
class RunOptions:
    """What a run's caller adds to it; none of it changes what is measured."""

    trace_all: bool = False  # every query in mlperf_log_trace.json (default: the first 10,000)
    after_run: AfterRun | None = None  # called after the timed run, same agent and model
    record_extra: dict[str, Any] = field(default_factory=dict)  # merged into result.json


@dataclass
class RunResult:
    """One run's outcome: a performance run's Summary, an accuracy run's AccuracyResult (both
    for a submission run), where its files are, its result.json record, and the command
    line's exit code (0 VALID, 3 INVALID or accuracy target missed, 1 an error: what was
    measured is kept, ``error`` says why it ended)."""

    out_dir: Path
    summary: Summary | None  # None: accuracy mode, or nothing measured
    exit_code: int
    error: str | None = None
    invalid_reasons: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)  # the run's result.json
    scenario: str = ""
    mode: str = "performance"  # performance | accuracy | submission
    accuracy: AccuracyResult | None = None  # accuracy and submission modes

    @property
    def valid(self) -> bool:
        return self.exit_code == EXIT_VALID


RunOutcome = RunResult  # the name the execution's callers used
