"""edgeperf as a library: connect to a board once, run many benchmarks on it, score files.

    import edgeperf
    with edgeperf.connect("raspberry-pi-4") as dev:
        r = dev.run(model="kws.tflite", scenario="SingleStream", preset="mobile")
        print(r.summary.valid, r.summary.metric, r.out_dir)

A Device keeps one link and one agent for all its runs. Errors are edgeperf.EdgeperfError
subclasses (UsageError before anything runs, LinkError, RunError, AgentDied, ...), never
SystemExit. What ``edgeperf run`` does, ``Device.run`` does: the command line is a layer over it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeperf.boards.profile import BoardProfile, load_board, with_overrides
from edgeperf.errors import UsageError
from edgeperf.run.execute import run_on
from edgeperf.run.session import Session
from edgeperf.run.tiny import TinyResult
from edgeperf.run.spec import (
    DEFAULT_SAMPLE_COUNT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    LOADGEN_DRIVERS,
    QUERYLOG_MODES,
    Reporter,
    RunOptions,
    RunResult,
    RunSpec,
)
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import SCENARIOS, TestSettings
from edgeperf.settings import preset as _preset

MODES = ("performance", "accuracy", "submission")
_RANK = {EXIT_VALID: 0, EXIT_INVALID: 1, EXIT_ERROR: 2, EXIT_USAGE: 3}


def preset(name: str, scenario: str, *, user_conf: Sequence[str | Path] | None = None,
           model: str = "*", **overrides: Any) -> TestSettings:
    """Named settings (mlperf, mobile, quick, smoke) for a scenario; then LoadGen conf files
    (``user_conf``, later wins, looked up for ``model``); then TestSettings fields given by
    name (``min_query_count=``, ``target_qps=``, ``min_duration_ms=``...) win."""
    return _preset(name, scenario, confs=list(user_conf) if user_conf else None,
                   conf_model=model, **overrides)


def score(path: str | Path, scenario: str, *, preset: str = "smoke",
          user_conf: Sequence[str | Path] | None = None, model: str = "*",
          samples_per_query: int | None = None, **overrides: Any) -> Summary:
    """Score a run's querylog.npz, a CSV of timestamps or bare latencies (as ``edgeperf
    score`` does: the settings from ``preset``, ``user_conf`` and ``overrides``)."""
    from edgeperf.scoring.files import score_file

    if samples_per_query is not None:
        overrides["samples_per_query"] = samples_per_query
    s = globals()["preset"](preset, scenario, user_conf=user_conf, model=model, **overrides)
    return score_file(path, s, samples_per_query=samples_per_query).summary


def connect(board: str | BoardProfile = "local", *, identity: str | None = None,
            known_hosts: str | None = None, python: str | None = None,
            needs_runtime: bool = False, progress: Reporter | None = None,
            port: str | None = None) -> Device:
    """Open a board's link and start its agent, once, for many runs.

    ``board``: a profile name (boards/NAME.toml), a .toml path, ``ssh://[user@]host[:port]``
    or ``serial:///dev/ttyUSB0?baud=...``, or a BoardProfile; ``identity``, ``known_hosts`` and
    ``python`` override the profile's (SSH key, known_hosts file, the device's Python).
    ``needs_runtime``: an SSH device must have a TFLite runtime now (else a .tflite run
    checks it before its push). ``progress(event, data)`` hears the connection's events.
    An MCU board (``link.type = "tiny"``, or ``tiny:///dev/ttyACM0?model=ic01``) has no
    agent: its Device runs MLPerf Tiny's procedures through the firmware bridge; ``port``
    overrides its profile's serial port (an emulated board's, from 'edgeperf emulate mcu').
    Raises UsageError (no such board), LinkError (the link cannot be opened or the device
    lacks what the agent needs: the message says what to install), RunError (the agent does
    not answer as it should).
    """
    profile = board if isinstance(board, BoardProfile) else load_board(board)
    profile = with_overrides(profile, identity=identity, known_hosts=known_hosts, python=python,
                             port=port)
    if profile.link_type == "tiny":
        from edgeperf.links.registry import open_link

        return Device(None, open_link(profile, report=progress))
    return Device(Session.open(profile, progress, needs_runtime=needs_runtime))


class Device:
    """A connected board: one link and one agent for all its runs. Use it in ``with`` (or
    call close()). If its agent dies, the run in progress keeps what it measured (its
    result says why it ended) and the next run raises AgentDied: connect again."""

    def __init__(self, session: Session | None, board: Any = None) -> None:
        self._session = session
        self._board = board  # an MCU board's TinyBoard (the firmware bridge's), no session

    @property
    def is_mcu(self) -> bool:
        """A microcontroller board: runs MLPerf Tiny's procedures, returns TinyResult."""
        return self._board is not None

    @property
    def profile(self) -> BoardProfile:
        return self._board.profile if self._session is None else self._session.profile

    @property
    def link(self) -> str:
        """How the board is reached (e.g. ``ssh pi@10.0.0.5:22``)."""
        return self._board.describe() if self._session is None else \
            self._session.link.describe()

    def info(self) -> dict[str, Any]:
        """What ``edgeperf info`` shows: the agent's hello (versions, runtimes, CPU, clock),
        the device's telemetry now, and an SSH board's deployment. An MCU board: what its
        firmware answers to name% and profile% (name, profile, model), its port and baud."""
        if self._session is None:
            return self._board.info()
        self._session.check_usable()
        info = dict(self._session.info)
        info["telemetry"] = self._session.client.telemetry()
        if self._session.deploy is not None:
            info["deploy"] = self._session.deploy.to_dict()
        return info

    def close(self) -> None:
        (self._board if self._session is None else self._session).close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, model: str | None = None, *, task: str | None = None,
            scenario: str | Sequence[str] | None = None, mode: str = "performance",
            preset: str = "quick", settings: TestSettings | None = None,
            user_conf: Sequence[str | Path] = (), conf_model: str = "*",
            seed: int | None = None, out_dir: str | Path | None = None,
            threads: int | None = None, sample_count: int = DEFAULT_SAMPLE_COUNT,
            meter: str | None = None, idle_baseline_s: float = 0.0, querylog: str = "auto",
            input_shapes: dict[str, list[int]] | None = None,
            load_options: dict[str, Any] | None = None, trace_all: bool = False,
            audit_outputs: int = 0, audit_against: str | Path | None = None,
            loadgen: str = "edgeperf", progress: Reporter | None = None,
            compliance: bool = True, profile_ops: int = 0, **overrides: Any
            ) -> RunResult | list[RunResult] | TinyResult:
        """Run a benchmark on this device, as ``edgeperf run`` does.

        ``model`` (a .tflite path, builtin:NAME, synthetic:null|busy:US|sleep:US) or ``task`` (a
        task's model, dataset and target; with ``model`` too: yours on the task's data).
        ``scenario``: one name (returns a RunResult) or a list (returns one a scenario).
        ``mode``: performance, accuracy (a task's every sample once, metric checked) or
        submission (accuracy, then performance, then the compliance audits TEST01 and
        TEST04; ``compliance=False`` leaves them out, which a closed result needs).
        Settings: ``settings`` as given, else ``preset`` with ``user_conf`` files (for
        ``conf_model``); then ``overrides`` by TestSettings field (``min_query_count=``,
        ``target_qps=``, ``target_latency_ns=``,
        ``min_duration_ms=``...) and ``seed`` (all three RNG seeds). ``out_dir``: default
        results/<timestamp>-<model>/<scenario>, as the command line. ``meter``: a power meter
        URL (default: the board's [meter]). ``querylog="summary"``: the device keeps the
        per-query log (long runs on slow links); "auto" (the default) chooses summary when
        a serial line would not carry the full log while the run lasts; "full" forces it.
        ``audit_outputs=N``: check N queried samples' outputs against an accuracy run
        (``audit_against``, or submission mode's own).
        ``progress(event, data)`` hears pushes, progress and the end of each run.
        ``loadgen="official"``: MLCommons LoadGen (``pip install mlcommons-loadgen`` on the
        device) drives the model instead of edgeperf's loops and writes the logs itself;
        the result's ``summary`` is None and ``result`` holds LoadGen's figures.
        ``profile_ops=N``: after each timed run, a per-operator profile over N inferences in
        the runtime's own profiler (op_profile.csv; result["op_profile"]). Runtime options
        go in ``load_options`` (``runtime``, ``xnnpack``, ``delegate``, ``providers``,
        ``graph_optimization``, ``state``: as the command line's flags set them).

        An MCU board (``is_mcu``) runs one of MLPerf Tiny's procedures instead and returns a
        TinyResult: ``task`` (default: the profile's), ``mode`` performance, accuracy or
        energy (``meter``: an energy monitor URL, default the board's), ``out_dir``,
        ``progress``, and ``windows=``/``window_s=`` (Tiny's 5 and 10 s; others make it
        INVALID, the rule named); the agent's options are refused.
        """
        from edgeperf.tasks.modes import TaskRun, check_task_args

        if self._session is None:
            given = {k: v for k, v in locals().items() if k in _AGENT_ONLY
                     and v != _AGENT_ONLY[k]}
            if given:
                raise UsageError(f"{sorted(given)[0]}= is an option of agent runs; board "
                                 f"{self.profile.name} is a microcontroller running MLPerf "
                                 "Tiny's procedures (task=, mode=, meter=, out_dir=, "
                                 "windows=, window_s=)")
            return self._board.run(task=task, model=model, mode=mode, out_dir=out_dir,
                                   meter=meter, progress=progress, **overrides)

        if mode not in MODES:
            raise UsageError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        if querylog not in QUERYLOG_MODES:
            raise UsageError(f"querylog {querylog!r}: choose one of {', '.join(QUERYLOG_MODES)}")
        check_task_args(model, task, mode, audit_outputs, audit_against)
        _check_loadgen(loadgen, meter or self.profile.meter_url, audit_outputs)
        scenarios = _scenarios(scenario, settings, needed=mode != "accuracy")
        all_settings = [_settings(scen, settings, preset, user_conf, conf_model, seed,
                                  overrides) for scen in scenarios]
        label = (task or model or "").replace(":", "-").replace("/", "_")
        root = Path(out_dir) if out_dir is not None else Path("results") / (
            time.strftime("%Y%m%d-%H%M%S") + "-" + label)
        base = RunSpec(model=model or "", settings=all_settings[0], board=self.profile,
                       threads=threads, sample_count=sample_count,
                       conf_files=[str(c) for c in user_conf], meter=meter,
                       idle_baseline_s=idle_baseline_s, querylog=querylog,
                       load_options=dict(load_options or {}), loadgen=loadgen,
                       profile_ops=int(profile_ops))
        if input_shapes:
            base.load_options["input_shapes"] = input_shapes
        if task is not None or mode != "performance":
            results = TaskRun(self._session, task, model, mode, base, input_shapes, trace_all,
                              audit_outputs, audit_against, progress, compliance).run(
                                  all_settings, root, single_out=out_dir is not None)
        else:
            results = []
            for s in all_settings:
                out = root / s.scenario if len(all_settings) > 1 or out_dir is None else root
                spec = dataclasses.replace(base, settings=s, out_dir=out,
                                           load_options=dict(base.load_options))
                o = run_on(self._session, spec, progress, RunOptions(trace_all=trace_all))
                results.append(o)
        return results if scenario is not None and not isinstance(scenario, str) else results[0]


# Device.run's options that only an agent run takes, with their defaults
_AGENT_ONLY = {"scenario": None, "preset": "quick", "settings": None, "user_conf": (),
               "conf_model": "*", "seed": None, "threads": None,
               "sample_count": DEFAULT_SAMPLE_COUNT, "idle_baseline_s": 0.0, "querylog": "auto",
               "input_shapes": None, "load_options": None, "trace_all": False,
               "audit_outputs": 0, "audit_against": None, "loadgen": "edgeperf",
               "compliance": True, "profile_ops": 0}


def _check_loadgen(loadgen: str, meter: str | None, audit_outputs: int) -> None:
    if loadgen not in LOADGEN_DRIVERS:
        raise UsageError(f"loadgen {loadgen!r}: choose one of {', '.join(LOADGEN_DRIVERS)}")
    if loadgen == "official" and (meter or audit_outputs):
        raise UsageError(f"{'a meter' if meter else 'audit_outputs'} needs edgeperf's QueryLog;"
                         " with loadgen='official' LoadGen keeps none: use loadgen='edgeperf'")


def _scenarios(scenario: str | Sequence[str] | None, settings: TestSettings | None,
               needed: bool) -> list[str]:
    if scenario is None:
        if settings is not None:
            return [settings.scenario]
        if needed:
            raise UsageError("a performance run needs a scenario: scenario='SingleStream' (or "
                             f"a list of {', '.join(SCENARIOS)})")
        return ["SingleStream"]
    names = [scenario] if isinstance(scenario, str) else list(scenario)
    if not names:
        raise UsageError(f"no scenario given; choose from {', '.join(SCENARIOS)}")
    for n in names:
        if n not in SCENARIOS:
            raise UsageError(f"unknown scenario {n!r}; choose from {', '.join(SCENARIOS)}")
    if settings is not None and names != [settings.scenario]:
        raise UsageError(f"settings are for {settings.scenario}, scenario asks for "
                         f"{', '.join(names)}; pass one of them")
    return names


def _settings(scenario: str, settings: TestSettings | None, preset_name: str,
              user_conf: Sequence[str | Path], conf_model: str, seed: int | None,
              overrides: dict[str, Any]) -> TestSettings:
    changes = dict(overrides)
    if seed is not None:
        changes.update(qsl_rng_seed=seed, sample_index_rng_seed=seed, schedule_rng_seed=seed)
    if settings is not None:
        try:
            return dataclasses.replace(settings, **changes).validate()
        except TypeError as exc:
            raise UsageError(f"settings: {exc}") from None
    return preset(preset_name, scenario, user_conf=user_conf, model=conf_model, **changes)


def worst(a: int, b: int) -> int:
    """The exit code that says more is wrong (error over INVALID over VALID)."""
    return max(a, b, key=lambda c: _RANK.get(c, 2))
