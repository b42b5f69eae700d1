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

from edgeperf_agent import __version__

from edgeperf.api import MODES, Device, connect, preset, score
from edgeperf.boards.profile import BoardProfile
from edgeperf.errors import (
    AgentDied,
    AgentError,
    AgentTimeout,
    EdgeperfError,
    LinkError,
    MeterError,
    RunError,
    TaskError,
    UsageError,
)
from edgeperf.outputs.querylog_file import read_querylog
from edgeperf.run.spec import RunResult
from edgeperf.run.tiny import TinyResult
from edgeperf.scoring.accuracy import AccuracyResult
from edgeperf.scoring.loadgen import Summary
from edgeperf.settings import PRESETS, SCENARIOS, TestSettings

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
    "connect",
    "preset",
    "read_querylog",
    "score",
]
