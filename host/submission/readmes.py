"""The tree's README texts: the root's, src/README.md, documentation/, and each scenario's
(how its runs were made and how to make them again)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import edgeperf
from edgeperf.submission.rules import Benchmark, Rules
from edgeperf.submission.runs import Run


def edgeperf_commit() -> str:
    """The git commit of the edgeperf source in use, or why it is not known."""
    src = Path(edgeperf.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    if out.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "host",
                            "device_agent"], capture_output=True, text=True, timeout=10).stdout
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


def root_readme(state: dict[str, Any]) -> str:
    d, org = state["division"], state["org"]
    return (f"# MLPerf submission of {org} ({d} division)\n\n"
            f"Made by edgeperf {state['edgeperf_version']} from edgeperf runs, to MLPerf rules "
            f"{state['rules']} ({'MLPerf Tiny' if state.get('suite') == 'tiny' else 'Inference'}"
            f" layout).\n\n"
            f"- `{d}/{org}/systems/`: one JSON a system\n"
            f"- `{d}/{org}/results/SYSTEM/BENCHMARK/...`: the runs' logs\n"
            f"- `{d}/{org}/src/`: how the runs were made; `edgeperf-submission.json` (edgeperf's "
            f"record of every result) and `MANIFEST.sha256` (every file's sha256)\n\n"
            f"Check it: `edgeperf submission check {Path(state['root']).name}`; verify the "
            f"files: `sha256sum -c {d}/{org}/src/MANIFEST.sha256` from this directory.\n")


def src_readme(state: dict[str, Any]) -> str:
    rows = "".join(f"| {k} | {v['task'] or '-'} | {v['model_sha256'] or '-'} | "
                   f"{v['result']} |\n" for k, v in sorted(state["results"].items()))
    return (f"# How the runs were made\n\n"
            f"Every result was measured by edgeperf (an MLPerf-Inference-style harness for edge "
            f"devices): LoadGen's scenarios run on the device by edgeperf's agent, timed there, "
            f"and written in LoadGen 6.0.17's log format; MCU results by MLPerf Tiny's "
            f"procedure over the EEMBC UART protocol.\n\n"
            f"- edgeperf version: {state['edgeperf_version']}\n"
            f"- edgeperf commit: {state['edgeperf_commit']}\n"
            f"- rules: {state['rules']}\n\n"
            f"Each scenario's README.md gives the command that reproduces it.\n\n"
            f"| result | task | model sha256 | result |\n|---|---|---|---|\n{rows}")


def documentation_readme(state: dict[str, Any]) -> str:
    return (f"# Documentation\n\n{state['org']}'s {state['division']} submission, made with "
            f"edgeperf {state['edgeperf_version']}. See ../src/README.md for how the runs "
            f"were made and each scenario's README.md for its command.\n")


CALIBRATION = ("# Calibration\n\nedgeperf's reference tasks quantize their model to int8 "
               "after training, from the task's own training split (host/tasks/training.py); "
               "no held-out sample is used. For a model of your own, describe its "
               "calibration here.\n")


def _command(run: Run, bench: Benchmark) -> tuple[str, str]:
    """The command that reproduces the run, and a note on where it came from."""
    rec = run.record
    task = rec.get("task") or {}
    board = (rec.get("board") or {}).get("name") or "local"
    what = (f"--task {task['name']}:{task.get('variant', 'int8')}" if task.get("name")
            else f"--model {(rec.get('model') or {}).get('spec', 'MODEL')}")
    meter = (rec.get("power") or {}).get("url")
    cmd = (f"edgeperf run --board {board} {what} --mode submission --scenario "
           f"{run.scenario} --user-conf user.conf" + (f" --meter '{meter}'" if meter else ""))
    if rec.get("command"):
        return cmd, ("user.conf holds every setting the run requested; the run itself was "
                     f"made with `{rec['command']}`, as its result.json records it")
    return cmd, ("reconstructed: this run's result.json does not record its command line; "
                 "user.conf holds every setting the run requested")


def scenario_readme(rules: Rules, bench: Benchmark, system: str, perf: Run, acc: Run,
                    tests: dict[str, Run], fp: dict[str, str], power_note: str) -> str:
    rec, arec = perf.record, acc.record
    cmd, how = _command(perf, bench)
    model = rec.get("model") or {}
    a = arec.get("accuracy") or {}
    summ = rec.get("summary") or {}
    lines = [
        f"# {bench.name} {perf.scenario} on {system}", "",
        "Reproduce (from this directory):", "", "```", cmd, "```", "", f"({how})", "",
        f"- performance: {rec.get('result')} ({summ.get('metric_name')} = "
        f"{summ.get('metric_value')} {summ.get('metric_unit')})",
        f"- accuracy: {a.get('metric')} = {a.get('value')} ({a.get('result')}; target "
        f"{a.get('target_text') or a.get('target')}), {a.get('count')} samples",
        f"- model: {model.get('name')}",
        # one `what: value` line each, as the checker's provenance.py reads them
        f"- model sha256: `{model.get('sha256')}`",
        f"- performance run: `{perf.path.resolve()}`",
        f"- accuracy run: `{acc.path.resolve()}`",
        f"- task: {(rec.get('task') or {}).get('name') or '-'}; dataset sha256 "
        f"{((rec.get('task') or {}).get('dataset') or {}).get('sha256', '-')}",
        "- device: " + ", ".join(f"{k} {v}" for k, v in fp.items()),
        f"- edgeperf {rec.get('edgeperf_version')}; rules {rules.version}",
    ]
    lines += [f"- {t} run: `{r.path.resolve()}`" for t, r in sorted(tests.items())]
    meter = (rec.get("power") or {}).get("url")
    if meter:
        lines.append(f"- power meter: `{meter}`")
    if power_note:
        lines += ["", power_note]
    return "\n".join(lines) + "\n"


def tiny_readme(bench: Benchmark, system: str, run: Run) -> str:
    rec = run.record
    board = (rec.get("board") or {}).get("name") or "BOARD"
    how = (f"`{rec['command']}` (as its result.json records it)" if rec.get("command") else
           f"`edgeperf run --board {board} --mode {run.kind}` (reconstructed: the record has "
           f"no command line)")
    return (f"# {bench.name} {run.kind} on {system}\n\nReproduce: {how}.\n\n"
            f"- result: {rec.get('result')} ({rec.get('value')} {rec.get('unit')}), from "
            f"{run.path}\n- task: {rec.get('task')}; DUT: {rec.get('sut_name')}\n")


__all__ = ["CALIBRATION", "documentation_readme", "edgeperf_commit", "root_readme",
           "scenario_readme", "src_readme", "tiny_readme"]
