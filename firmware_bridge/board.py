"""An MCU board behind ``edgeperf.connect``: what the link registry opens for a profile whose
``link.type`` is ``"tiny"`` (edgeperf reaches the bridge only through that registry).

``TinyBoard.run`` resolves the task (the profile's, else its model's), the port and baud of
the mode (the interface board's in energy mode), opens the meter, runs ``run_procedure`` and
writes edgeperf's files beside Tiny's (run_logs.py). A profile with no port and
``link.emulate`` gets its emulated board started for the run (emulators.py), so a rehearsal
needs no second terminal.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeperf.boards.profile import BoardProfile
from edgeperf.boards.tiny import MODEL_TASKS
from edgeperf.errors import LinkError, UsageError
from edgeperf.run.spec import EXIT_INVALID, EXIT_VALID, Reporter
from edgeperf.run.tiny import TINY_MODES, TinyResult
from edgeperf_firmware import emulators, procedures
from edgeperf_firmware.dut import Dut
from edgeperf_firmware.run import run_procedure

TUNING = {"windows", "window_s", "warmups", "line_timeout", "infer_timeout", "boot_wait"}


class TinyBoard:
    def __init__(self, profile: BoardProfile, report: Reporter | None = None) -> None:
        assert profile.tiny is not None
        self.profile, self.params = profile, profile.tiny
        self.report = report or (lambda event, data: None)
        self.closed = False

    def describe(self) -> str:
        port, baud = self.params.line("performance")
        where = port or f"an emulated board ({self.params.emulate}) started for each run"
        return f"tiny {where} at {baud} baud"

    def close(self) -> None:
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise UsageError(f"board {self.profile.name}: this connection is closed; "
                             "connect again")

    def info(self, boot_wait: float = 0.5) -> dict[str, Any]:
        """What the DUT says: ``name%`` and ``profile%`` (name, profile, model)."""
        self._check_open()
        with emulators.line_for(self.profile, "performance", self.report) as (port, baud, _):
            with Dut(port, baud) as dut:
                info = dut.identify(boot_wait)
        d = {"board": self.profile.name, "port": port, "baud": baud, "name": info.name,
             "profile": info.profile, "model": info.model, "timestamp_mode": info.mode,
             "profile_model": self.params.model}
        if self.params.model and info.model != self.params.model:
            d["warning"] = (f"the board reports model {info.model} but its profile says "
                            f"link.model = {self.params.model!r}; flash the {self.params.model} "
                            "firmware or correct the profile")
        return d

    def _task(self, task: str | None, model: str | None) -> Any:
        from edgeperf.tasks.registry import load_task

        if model is not None:
            raise UsageError(f"board {self.profile.name} is a microcontroller: it runs the "
                             "model its firmware was built with, nothing can be pushed to it; "
                             "drop model= (--model) and pass the task (--task) it runs")
        name = task or self.params.default_task
        if name is None:
            raise UsageError(f"board {self.profile.name}: which task does its firmware run? "
                             f"pass task= (--task), e.g. ic-digits for an ic01 board, or set "
                             "link.model / link.task in its profile")
        t = load_task(name, lambda text: self.report("task", {"message": text}))
        want = self.params.model
        if want and MODEL_TASKS.get(want, t.name) != t.name:
            raise UsageError(f"board {self.profile.name} runs model {want} (link.model), "
                             f"which is task {MODEL_TASKS[want]}, not {t.name}; pass --task "
                             f"{MODEL_TASKS[want]}")
        return t

    def run(self, *, task: str | None = None, model: str | None = None,
            mode: str = "performance", out_dir: str | Path | None = None,
            meter: str | None = None, progress: Reporter | None = None,
            **tuning: Any) -> TinyResult:
        """One MLPerf Tiny procedure; ``tuning``: windows, window_s (Tiny's 5 and 10 s; other
        values make the result INVALID, with the rule named), warmups, line_timeout,
        infer_timeout, boot_wait. DutError (a LinkError) when nothing could be measured."""
        self._check_open()
        unknown = sorted(set(tuning) - TUNING)
        if unknown:
            raise UsageError(f"board {self.profile.name} runs MLPerf Tiny's procedures, "
                             f"which take no {unknown[0]}=; they take: "
                             f"{', '.join(sorted(TUNING))}")
        if mode not in TINY_MODES:
            raise UsageError(f"mode {mode!r} on MCU board {self.profile.name}: choose one of "
                             f"{', '.join(TINY_MODES)} (MLPerf Tiny's procedures)")
        _check_tuning(tuning)
        say = progress or self.report
        meter_url = meter or self.profile.meter_url
        started = not self.params.line(mode)[0] and bool(self.params.emulate)
        if mode == "energy" and started and meter_url:
            raise UsageError(f"board {self.profile.name} has no port, so the run starts an "
                             "emulated board, which brings its own emulated LPM01A: drop "
                             "--meter (meter=), or start the board with 'edgeperf emulate mcu "
                             "--mode energy' and pass the --port and --meter it prints")
        if mode == "energy" and not meter_url and not started:
            raise UsageError(f"energy mode needs an energy monitor and board "
                             f"{self.profile.name} names none: pass --meter "
                             "'lpm01a:///dev/ttyACM0?freq=1k&output=energy' (meter= in the API) "
                             "or set [meter] url in its profile")
        t = self._task(task, model)
        out = Path(out_dir) if out_dir is not None else Path("results") / (
            datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{t.name}-{mode}")
        with emulators.line_for(self.profile, mode, say) as (port, baud, emulated_meter):
            m = _open_meter(meter_url or emulated_meter) if mode == "energy" else None
            start = datetime.now(timezone.utc)
            try:
                r = run_procedure(port, baud, mode, t, out, meter=m, report=say, **tuning)
            finally:
                if m is not None:
                    m.close()
        end = datetime.now(timezone.utc)
        ok = r.valid and (mode != "accuracy" or bool(r.passed))
        code = EXIT_VALID if ok else EXIT_INVALID
        from edgeperf_firmware.run_logs import accuracy_result, write_run_dir

        record = write_run_dir(out, r, board=self.profile.to_dict(), task=t, port=port,
                               baud=baud, exit_code=code, start=start, end=end)
        reasons = accuracy_result(t, r).reasons if mode == "accuracy" else list(r.reasons)
        return TinyResult(out, mode, t.full_name, self.profile.name, r.value, r.unit, code,
                          r.valid, reasons, r.passed, r.metric, r.target, record, r)


def _check_tuning(tuning: dict[str, Any]) -> None:
    w = tuning.get("windows", procedures.TINY_WINDOWS)
    if not (isinstance(w, int) and not isinstance(w, bool) and w >= 1):
        raise UsageError(f"windows must be a whole number of at least 1 (MLPerf Tiny: "
                         f"{procedures.TINY_WINDOWS}), got {w!r}")
    s = tuning.get("window_s", procedures.TINY_MIN_WINDOW_S)
    if not (isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0):
        raise UsageError(f"window_s must be a number of seconds above 0 (MLPerf Tiny: "
                         f"{procedures.TINY_MIN_WINDOW_S:g}), got {s!r}")


def _open_meter(url: str) -> Any:
    from edgeperf.power.meter import open_meter

    return open_meter(url)


def open_profile(profile: BoardProfile, report: Reporter | None = None,
                 needs_runtime: bool = False) -> TinyBoard:
    """The link registry's opener for ``tiny`` boards: no agent, a TinyBoard. A port that
    does not exist is refused now, naming it."""
    port = profile.tiny.port if profile.tiny is not None else None
    if port and port.startswith("/") and not Path(port).exists():
        raise LinkError(f"board {profile.name}: serial port {port} does not exist; plug the "
                        "board in ('ls -l /dev/serial/by-id' names its port), pass --port "
                        "PATH, or start an emulated board with 'edgeperf emulate mcu'")
    return TinyBoard(profile, report)
