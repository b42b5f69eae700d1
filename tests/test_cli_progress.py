"""Progress as the user sees it: rich's live bars (rate, time left) on a terminal, plain
lines flushed one by one into a pipe or a file, nothing with --quiet.

The terminal is a real pseudo-terminal (python's pty module) that a real ``edgeperf run``
writes to; the pipe is a real pipe. The printer itself is also driven event by event with a
fake clock, so that rates and times left are exact."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from edgeperf.cli.main import main
from edgeperf.cli.progress import ProgressPrinter
from edgeperf.testing.emulators.ptd import PtdEmulator

ROOT = Path(__file__).resolve().parents[1]
# a run of 3 s at least: long enough for progress (it shows after 2 s); the expected latency
# is the model's, so that LoadGen's pre-generated queries last the whole run
RUN = ["run", "--model", "synthetic:busy:200", "--scenario", "SingleStream", "--preset",
       "smoke", "--min-queries", "100", "--min-duration", "3", "--target-latency-ms", "0.2"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "edgeperf.cli", *args]


def test_a_pipe_gets_plain_lines(tmp_path):
    r = subprocess.run(_cli([*RUN, "--out", str(tmp_path)]), capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("edgeperf: connected to local (")
    assert lines[1] == "  running SingleStream ..."
    progress = [ln for ln in lines if re.fullmatch(
        r"  \d+ queries, \d+\.\d/3 s \[[#-]{24}\] [\d,]+ q/s, about \d s left", ln)]
    assert len(progress) in (1, 2), lines  # one a 5 s at most, the first after 2 s
    queries = int(progress[0].split()[0])
    assert queries > 0
    assert "Result is : VALID" in r.stdout


def test_quiet_prints_no_progress(tmp_path):
    r = subprocess.run(_cli([*RUN, "--out", str(tmp_path), "--quiet"]), capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stderr == ""
    assert "Result is : VALID" in r.stdout


def test_a_terminal_gets_live_bars_with_rate_and_time_left(tmp_path):
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    proc = subprocess.Popen(_cli([*RUN, "--out", str(tmp_path)]), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert ANSI.search(text)  # the live display redraws itself in place
    plain = ANSI.sub("", text)
    assert "edgeperf: connected to local (" in plain
    assert "running SingleStream ..." in plain
    bars = re.findall(r"SingleStream ━+.*? (\d+)% (\d+) queries, ([\d,]+) q/s, "
                      r"(\d+\.\d)/3 s ETA (\d:\d\d:\d\d|-:--:--)", plain)
    assert bars, plain
    assert any(eta != "-:--:--" for *_, eta in bars)  # the time left, once a rate is known
    assert bars[-1][0] == "100"  # the run's bar ends full
    assert "Result is : VALID" in plain


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _push(printer: ProgressPrinter, clock: Clock, what: str, total: int, steps: int,
          dt: float) -> None:
    for i in range(1, steps + 1):
        clock.t += dt
        printer("push", {"what": what, "done": total * i // steps, "total": total})


def test_live_push_bar_shows_bytes_rate_and_time_left():
    clock, out = Clock(), Tty()
    with ProgressPrinter(stream=out, clock=clock) as printer:
        printer("push", {"what": "model", "done": 0, "total": 64 * 1024})
        _push(printer, clock, "model", 64 * 1024, 4, 0.5)  # 16 KiB each 0.5 s: 32 KiB/s
    text = ANSI.sub("", out.getvalue())
    assert re.search(r"push model ━+ 100% 64\.0 KiB/64\.0 KiB, 32\.0 KiB/s ETA 0:00:00", text)


def test_plain_push_lines_every_few_seconds_and_at_the_end():
    clock, out = Clock(), io.StringIO()
    printer = ProgressPrinter(stream=out, clock=clock)
    printer("push", {"what": "samples", "done": 0, "total": 120 * 1024})
    _push(printer, clock, "samples", 120 * 1024, 12, 1.0)  # 10 KiB/s for 12 s
    lines = out.getvalue().splitlines()
    assert lines == [
        "  push samples: 10.0 KiB/120.0 KiB [##----------------------] 10.0 KiB/s, 11 s left",
        "  push samples: 60.0 KiB/120.0 KiB [############------------] 10.0 KiB/s, 6 s left",
        "  push samples: 110.0 KiB/120.0 KiB [######################--] 10.0 KiB/s, 1 s left",
        "  push samples: 120.0 KiB/120.0 KiB [########################] 10.0 KiB/s, 0 s left"]
    quick = io.StringIO()  # a push done within a second says nothing
    p = ProgressPrinter(stream=quick, clock=clock)
    p("push", {"what": "model", "done": 0, "total": 100})
    _push(p, clock, "model", 100, 2, 0.2)
    assert quick.getvalue() == ""


def test_accuracy_windows_live_and_plain():
    clock, out = Clock(), Tty()
    with ProgressPrinter(stream=out, clock=clock) as printer:
        for done in (0, 100, 200, 300, 360):
            printer("accuracy", {"done": done, "total": 360})
            clock.t += 1.0
    assert re.search(r"accuracy ━+ 100% 360/360 samples, 90/s ETA 0:00:00",
                     ANSI.sub("", out.getvalue()))
    plain = io.StringIO()
    printer = ProgressPrinter(stream=plain, clock=clock)
    for done in (120, 240, 360):
        printer("accuracy", {"done": done, "total": 360})
    assert plain.getvalue().splitlines() == [f"  accuracy: {d}/360 samples"
                                             for d in (120, 240, 360)]
    quiet = io.StringIO()
    printer = ProgressPrinter(stream=quiet, quiet=True, clock=clock)
    printer("accuracy", {"done": 360, "total": 360})
    printer("connect", {"board": "local", "link": "local"})
    assert quiet.getvalue() == ""


def test_a_power_run_names_its_ranging_and_testing_phases(tmp_path, capsys):
    with PtdEmulator(5.0) as emu:
        code = main(["run", "--model", "synthetic:busy:500", "--scenario", "SingleStream",
                     "--preset", "smoke", "--min-queries", "200", "--out", str(tmp_path),
                     "--meter", f"{emu.url}?interval_ms=20"])
    err = capsys.readouterr().err
    assert code == 0, err
    running = [ln for ln in err.splitlines() if ln.startswith("  running")]
    assert running == [
        "  running SingleStream, power ranging phase (the meter finds its ranges; not scored) ...",
        "  running SingleStream, power testing phase (ranges fixed from the ranging run; "
        "scored) ..."]
