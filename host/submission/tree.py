"""``edgeperf submission init|add``: an MLPerf submission tree made from edgeperf runs.

    DIR/README.md                              what the tree is and how to check it
    DIR/{division}/{org}/systems/SYSTEM.json
    DIR/{division}/{org}/results/SYSTEM/BENCHMARK/SCENARIO/...   (layout.py; Tiny: tiny.py)
    DIR/{division}/{org}/src/README.md, edgeperf-submission.json, MANIFEST.sha256
    DIR/{division}/{org}/documentation/README.md, calibration.md

No dotfiles, nothing at the root but README.md, no empty directory once a result is in:
both of MLCommons' checkers' hygiene rules (survey §9). edgeperf's own record of the tree
(organisation, division, rules, every result's runs, model, device and command) is
``src/edgeperf-submission.json``, where no checker's file list looks.

``add`` builds each scenario in a directory under src/ and renames it into place, so a
failed add leaves the tree as it was; the run directories are only read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeperf import __version__
from edgeperf.errors import UsageError
from edgeperf.submission import readmes, system
from edgeperf.submission.layout import build_scenario
from edgeperf.submission.manifest import write_manifest
from edgeperf.submission.rules import Benchmark, Rules, load_rules
from edgeperf.submission.runs import Run, collect_runs

STATE_NAME = "edgeperf-submission.json"
STATE_SCHEMA = "edgeperf.submission/1"


# ---------------------------------------------------------------- the tree's state
def find_state(root: str | Path) -> Path:
    found = sorted(Path(root).glob(f"*/*/src/{STATE_NAME}"))
    if len(found) != 1:
        raise UsageError(f"{root}: {'no' if not found else 'more than one'} "
                         f"{{division}}/{{org}}/src/{STATE_NAME}; make the tree with "
                         f"'edgeperf submission init'")
    return found[0]


def load_state(root: str | Path) -> dict[str, Any]:
    state = json.loads(find_state(root).read_text())
    state["root"] = str(Path(root))
    return state


def rules_of(state: dict[str, Any]) -> Rules:
    return load_rules(path=state["rules_file"]) if state.get("rules_file") \
        else load_rules(state["rules"])


def _org_dir(state: dict[str, Any]) -> Path:
    return Path(state["root"]) / state["division"] / state["org"]


def _save(state: dict[str, Any]) -> None:
    org = _org_dir(state)
    keep = {k: v for k, v in state.items() if k != "root"}
    tmp = org / "src" / (STATE_NAME + "-tmp")
    tmp.write_text(json.dumps(keep, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, org / "src" / STATE_NAME)
    (Path(state["root"]) / "README.md").write_text(readmes.root_readme(state))
    (org / "src" / "README.md").write_text(readmes.src_readme(state))
    write_manifest(state["root"])


# ---------------------------------------------------------------- init
def init_tree(root: str | Path, org: str, division: str, rules: str = "v6.1",
              system_toml: str | Path | None = None) -> dict[str, Any]:
    root = Path(root)
    r = load_rules(path=rules) if rules.endswith(".toml") else load_rules(rules)
    if division not in r.divisions:
        raise UsageError(f"division {division!r}: rules {r.version} have "
                         f"{', '.join(r.divisions)}")
    if not org or org.startswith(".") or any(c in org for c in " /\\"):
        raise UsageError(f"--org {org!r}: a directory name without spaces, slashes or a "
                         f"leading dot")
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} exists and is not empty; init makes a new tree")
    user = system.read_user_toml(system_toml)
    org_dir = root / division / org
    for d in ("systems", "results", "src", "documentation"):
        (org_dir / d).mkdir(parents=True, exist_ok=True)
    state = {"schema": STATE_SCHEMA, "org": org, "division": division, "rules": r.version,
             "rules_file": str(Path(rules).resolve()) if rules.endswith(".toml") else None,
             "suite": None, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "edgeperf_version": __version__, "edgeperf_commit": readmes.edgeperf_commit(),
             "user_toml": user, "systems": {}, "results": {}, "root": str(root)}
    (org_dir / "documentation" / "README.md").write_text(readmes.documentation_readme(state))
    (org_dir / "documentation" / "calibration.md").write_text(readmes.CALIBRATION)
    _save(state)
    return state


# ---------------------------------------------------------------- add
def _meter_note(rules: Rules, state: dict[str, Any], perf: Run) -> str:
    power = perf.record.get("power")
    if not power:
        return ""
    kind = str(power.get("url") or "").split(":", 1)[0].lower()
    if kind not in rules.accepted_power_meters:
        if state["division"] == "closed":
            raise UsageError(f"{perf.path}: measured with meter {power.get('meter') or kind!r}"
                             f", which MLPerf does not accept for power results (only "
                             f"{', '.join(rules.accepted_power_meters)}); closed division "
                             f"refuses it: rerun without --meter, or use an open tree")
        return (f"Power: measured with {power.get('meter') or kind}, a meter MLPerf does not "
                f"accept (only {', '.join(rules.accepted_power_meters)}: PTDaemon with a "
                f"Yokogawa analyser); performance/run_1/spl.txt holds its samples. Not a "
                f"power result.")
    return ("Power: PTDaemon samples in performance/run_1/spl.txt and ranging/spl.txt, LoadGen's "
            "logs of the ranging run in performance/ranging/, and edgeperf's record of its "
            "PTDaemon session in power-dev's formats in performance/power/. edgeperf, not "
            "MLCommons' power-dev, drove PTDaemon, and those files say so: their sources are "
            "edgeperf's code and their messages edgeperf's commands to PTDaemon, so MLCommons' "
            "power_checker refuses its two source-checksum checks and its client/server "
            "message check (and its PTD log and PTD configuration checks unless the meter URL "
            "gave PTDaemon's console output and device number: console=FILE, device_type=N).")


def _closed_checks(state: dict[str, Any], bench: Benchmark, run: Run) -> None:
    if state["division"] != "closed":
        return
    sha = (run.record.get("model") or {}).get("sha256")
    if bench.model_sha256 and sha and sha != bench.model_sha256:
        raise UsageError(f"{run.path}: model sha256 {sha} is not the one closed {bench.name} "
                         f"requires ({bench.model_sha256}); use an open tree for your own model")


def _check_task(bench: Benchmark, run: Run) -> None:
    task = run.record.get("task")
    name = (task.get("name") if isinstance(task, dict) else str(task or "").split(":")[0])
    if bench.task and name and name != bench.task:
        raise UsageError(f"{run.path}: a run of task {name!r}, but benchmark {bench.name} is "
                         f"task {bench.task!r}; pass the --benchmark it is")


def _place(state: dict[str, Any], build: Path, final: Path, force: bool) -> None:
    """Rename the built directory into place; the old one (with --force) goes last."""
    old = None
    if final.exists():
        if not force:
            raise UsageError(f"{final} already exists; pass --force to replace it")
        old = build.parent / (build.name + "-old")
        os.replace(final, old)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(build, final)
    if old is not None:
        shutil.rmtree(old)


def _system(state: dict[str, Any], rules: Rules, name: str, run: Run,
            user: dict[str, dict[str, str]], power: bool, toml_path: Any) -> None:
    fp = system.fingerprint(run.record) if not run.tiny else \
        {"board": str((run.record.get("board") or {}).get("name")),
         "dut": str(run.record.get("sut_name"))}
    known = state["systems"].get(name)
    if known is not None:
        if known["fingerprint"] != fp:
            diff = [f"{k}: {known['fingerprint'].get(k)!r} vs {v!r}" for k, v in fp.items()
                    if known["fingerprint"].get(k) != v]
            raise UsageError(f"{run.path} was not made on system {name!r}'s device "
                             f"({'; '.join(diff)}); add it under another --system name")
    args = dict(division=state["division"], submitter=state["org"], system=name,
                rec=run.record, user=user["system"])
    fields = system.tiny_system(**args) if run.tiny else system.inference_system(
        rules, **args, power=power or bool(known and known.get("power")), toml_path=toml_path)
    state["systems"][name] = {"fingerprint": fp, "power": power or bool(known and
                                                                          known.get("power"))}
    path = _org_dir(state) / "systems" / f"{name}.json"
    path.write_text(json.dumps(fields, indent=2) + "\n")


def _by_scenario(runs: list[Run]) -> dict[str, dict[str, Run]]:
    out: dict[str, dict[str, Run]] = {}
    for r in runs:
        slot = out.setdefault(r.scenario, {})
        if r.kind in slot:
            raise UsageError(f"two {r.kind} runs for {r.scenario}: {slot[r.kind].path} and "
                             f"{r.path}; add one of them")
        slot[r.kind] = r
    for scen, slot in out.items():
        for need in ("performance", "accuracy"):
            if need not in slot:
                raise UsageError(f"{scen}: no {need} run among the run directories; a "
                                 f"scenario needs both ('edgeperf run --mode submission' "
                                 f"makes them)")
    return out


def add_runs(root: str | Path, run_dirs: list[str | Path], *, system_name: str,
             benchmark: str, system_toml: str | Path | None = None,
             force: bool = False) -> list[str]:
    """Lay the runs out in the tree; returns the result keys added."""
    state = load_state(root)
    rules = rules_of(state)
    bench = rules.benchmark(benchmark)
    if not system_name or system_name.startswith(".") or any(c in system_name for c in " /\\"):
        raise UsageError(f"--system {system_name!r}: a file name without spaces or slashes")
    user = system.read_user_toml(system_toml) if system_toml else state["user_toml"]
    runs = collect_runs(run_dirs)
    tiny = {r.tiny for r in runs}
    if len(tiny) > 1:
        raise UsageError("MCU runs and Linux-board runs in one add; add them separately")
    suite = "tiny" if tiny.pop() else "inference"
    if (suite == "tiny") != bench.tiny:
        kind = "an MLPerf Tiny" if bench.tiny else "an MLPerf Inference"
        raise UsageError(f"benchmark {bench.name} is {kind} benchmark, the runs are "
                         f"{'MCU' if suite == 'tiny' else 'Linux-board'} runs; pass the "
                         f"--benchmark they ran (e.g. ic01 for an MCU ic-digits run)")
    if state["suite"] not in (None, suite):
        raise UsageError(f"{root} is an MLPerf {state['suite']} tree; MLCommons' Tiny and "
                         f"Inference checkers read different layouts: make another tree")
    for r in runs:
        _check_task(bench, r)
        _closed_checks(state, bench, r)
    src = _org_dir(state) / "src"
    for stale in src.glob("add-tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if suite == "tiny":
        from edgeperf.submission.tiny import add_tiny

        keys = add_tiny(state, bench, system_name, runs, force, src, _place)
        _system(state, rules, system_name, runs[0], user, False, system_toml)
    else:
        keys = _add_inference(state, rules, bench, system_name, runs, user, force, src,
                              system_toml)
    state["suite"] = suite
    _save(state)
    return keys


def _add_inference(state: dict[str, Any], rules: Rules, bench: Benchmark, name: str,
                   runs: list[Run], user: dict[str, dict[str, str]], force: bool, src: Path,
                   toml_path: Any) -> list[str]:
    groups = _by_scenario(runs)
    results = _org_dir(state) / "results" / name / bench.name
    for scen, slot in groups.items():  # refuse before anything is built
        if (results / scen).exists() and not force:
            raise UsageError(f"{results / scen} already exists; pass --force to replace it")
        _meter_note(rules, state, slot["performance"])
    keys = []
    for scen, slot in sorted(groups.items()):
        perf, acc = slot["performance"], slot["accuracy"]
        tests = {k: v for k, v in slot.items() if k.startswith("TEST")}
        power = bool(perf.record.get("power"))
        _system(state, rules, name, perf, user, power, toml_path)
        fp = system.fingerprint(perf.record)
        for other in (acc, *tests.values()):
            system.same_device(name, fp, system.fingerprint(other.record), str(other.path))
        meas = system.measurements(rules, perf.record, user["measurements"])
        readme = readmes.scenario_readme(rules, bench, name, perf, acc, tests, fp,
                                         _meter_note(rules, state, perf))
        build = Path(tempfile.mkdtemp(prefix="add-tmp-", dir=src))
        try:
            info = build_scenario(build / scen, rules, bench, perf, acc, tests, meas, readme)
            _place(state, build / scen, results / scen, force)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        key = f"{name}/{bench.name}/{scen}"
        state["results"][key] = {
            "system": name, "benchmark": bench.name, "scenario": scen,
            "task": (perf.record.get("task") or {}).get("name"),
            "model_sha256": (perf.record.get("model") or {}).get("sha256"),
            "result": perf.record.get("result"),
            "accuracy": (acc.record.get("accuracy") or {}).get("result"),
            "runs": {k: str(v.path.resolve()) for k, v in slot.items()},
            "device": fp, "power_meter": (perf.record.get("power") or {}).get("url"),
            "settings": (perf.record.get("settings") or {}).get("requested"), **info}
        keys.append(key)
    return keys


# ---------------------------------------------------------------- command line
def add_parsers(cmds: argparse._SubParsersAction) -> None:
    p = cmds.add_parser("init", help="make an empty submission tree")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--org", required=True, help="the submitting organisation (a directory)")
    p.add_argument("--division", required=True, choices=("closed", "open"))
    p.add_argument("--rules", default="v6.1", help="rules version or a rules .toml path")
    p.add_argument("--system-toml", metavar="FILE",
                   help="[system] and [measurements] field = value, kept for every add")
    p.set_defaults(fn=_cmd_init)
    a = cmds.add_parser("add", help="lay edgeperf run directories out in a tree")
    a.add_argument("dir", metavar="DIR")
    a.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="an 'edgeperf run' --out directory (submission mode: its "
                        "accuracy, performance, TEST01 and TEST04 runs, every scenario)")
    a.add_argument("--system", required=True, help="the system's name (systems/NAME.json)")
    a.add_argument("--benchmark", required=True, help="the rules' benchmark (e.g. ic-digits)")
    a.add_argument("--system-toml", metavar="FILE", help="over the one init was given")
    a.add_argument("--force", action="store_true", help="replace a scenario already there")
    a.set_defaults(fn=_cmd_add)


def _cmd_init(args: argparse.Namespace) -> int:
    init_tree(args.dir, args.org, args.division, args.rules, args.system_toml)
    print(f"{args.dir}: {args.division}/{args.org} tree, rules {args.rules}")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    try:
        keys = add_runs(args.dir, args.run_dirs, system_name=args.system,
                        benchmark=args.benchmark, system_toml=args.system_toml,
                        force=args.force)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    for k in keys:
        print(f"added {k}")
    return 0


__all__ = ["STATE_NAME", "add_parsers", "add_runs", "find_state", "init_tree", "load_state",
           "rules_of"]
