"""edgeperf: MLPerf-style inference benchmarks for edge devices, timed on the device.

    import edgeperf
    with edgeperf.connect("raspberry-pi-4") as dev:     # a profile, a .toml, ssh:// or serial://
        r = dev.run(model="builtin:mlp", scenario="SingleStream", preset="quick")
        print(r.summary.valid, r.summary.metric, r.out_dir)
    summary = edgeperf.score("latencies.txt", scenario="SingleStream")
    settings = edgeperf.preset("mlperf", scenario="Offline", user_conf=["user.conf"])
    q = edgeperf.read_querylog("results/RUN/querylog.npz")   # issue_ns, done_ns, sample_idx...
    with edgeperf.connect("nucleo-l4r5zi") as mcu:       # an MCU board: MLPerf Tiny's procedures
        t = mcu.run(task="ic-digits", mode="performance")  # a TinyResult: t.valid, t.value

The names below are the public surface; every other module is private to its subpackage.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgeperf_agent import __version__

# each public name and the module it comes from, imported on first use: 'import edgeperf'
# (and pytest's loading of edgeperf's plugin in every run) costs nothing until a name is read
_FROM = {
    "MODES": "edgeperf.api", "Device": "edgeperf.api", "connect": "edgeperf.api",
    "preset": "edgeperf.api", "score": "edgeperf.api",
    "BoardProfile": "edgeperf.boards.profile", "campaign": "edgeperf.campaigns",
    **{name: "edgeperf.errors" for name in (
        "AgentDied", "AgentError", "AgentTimeout", "EdgeperfError", "LinkError", "MeterError",
        "RunError", "TaskError", "UsageError")},
    "read_querylog": "edgeperf.outputs.querylog_file",
    "RunResult": "edgeperf.run.spec", "TinyResult": "edgeperf.run.tiny",
    "AccuracyResult": "edgeperf.scoring.accuracy", "Summary": "edgeperf.scoring.loadgen",
    "PRESETS": "edgeperf.settings", "SCENARIOS": "edgeperf.settings",
    "TestSettings": "edgeperf.settings",
}


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeperf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM))


__all__ = [
    "MODES",
    "PRESETS",
    "SCENARIOS",
    "AccuracyResult",
    "AgentDied",
    "AgentError",
    "AgentTimeout",
    "BoardProfile",
    "Device",
    "EdgeperfError",
    "LinkError",
    "MeterError",
    "RunError",
    "RunResult",
    "Summary",
    "TaskError",
    "TestSettings",
    "TinyResult",
    "UsageError",
    "__version__",
    "campaign",
    "connect",
    "preset",
    "read_querylog",
    "score",
]
