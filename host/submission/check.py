"""``edgeperf submission check DIR``: every rule of the rules' version that a submission tree
can be checked against, stricter than MLCommons' v6.1 checker where that one lets a result
through (an INVALID LoadGen result, LoadGen error records, a tree of no results, the old
checker's tree hygiene).

The walk is here; each group of rules is a module of its own: check_tree (hygiene),
check_system (system JSON, measurements.json, user.conf, README.md, src/), check_result (one
Inference result: check_perf, check_accuracy, check_compliance, check_power), check_tiny (one
MLPerf Tiny result). Findings go to a Report (check_report).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgeperf.submission.check_report import Report
from edgeperf.submission.check_result import check_result
from edgeperf.submission.check_system import check_names, check_src, check_system
from edgeperf.submission.check_tiny import check_tiny_result
from edgeperf.submission.check_tree import check_hygiene

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")


def _dirs(p: Path) -> list[Path]:
    return sorted(d for d in p.iterdir() if d.is_dir() and not d.is_symlink()) \
        if p.is_dir() else []


def find_benchmark(rules: Any, name: str) -> Any | None:
    """A benchmark directory's rules: by name, or a Tiny benchmark by Tiny's model name."""
    b = rules.benchmarks.get(name)
    if b is not None:
        return b
    return next((b for b in rules.benchmarks.values() if b.tiny and b.mlperf_model == name),
                None)


def check_tree(root: str | Path, rules: Any, originals: str | Path | None = None) -> Report:
    """Check the submission tree at ``root`` by ``rules``; the findings."""
    root = Path(root).resolve()
    rep = Report(root)
    if not root.is_dir():
        rep.error(root, "tree", "not a directory")
        return rep
    orig = Path(originals).resolve() if originals else None
    check_hygiene(rep, root, tuple(rules.divisions))
    for div in rules.divisions:
        for org in _dirs(root / div):
            _check_submitter(rep, org, rules, div, orig)
    _check_manifest(rep, root)
    if not rep.results:
        rep.error(root, "no-results", "the tree has no result (MLCommons' checker passes an "
                                      "empty tree; edgeperf does not): add runs with "
                                      "edgeperf submission add")
    return rep


def _check_submitter(rep: Report, org: Path, rules: Any, div: str, orig: Path | None) -> None:
    check_src(rep, org)
    results = org / "results"
    if not results.is_dir():
        rep.error(results, "required-file", "missing; a submitter's results go here")
        return
    systems = {p.stem: p for p in (org / "systems").glob("*.json")}
    for sysdir in _dirs(results):
        sys_json = org / "systems" / f"{sysdir.name}.json"
        has_power = any((s / "performance" / "power").exists()
                        for b in _dirs(sysdir) for s in _dirs(b))
        tiny = any(getattr(find_benchmark(rules, b.name), "tiny", False) for b in _dirs(sysdir))
        if tiny:
            _check_tiny_system(rep, sys_json, div, org.name)
        else:
            check_system(rep, sys_json, rules, div, org.name, has_power)
        systems.pop(sysdir.name, None)
        for bdir in _dirs(sysdir):
            _check_benchmark(rep, bdir, rules, div, sysdir.name, orig)
    for name, path in sorted(systems.items()):
        rep.error(path, "system-without-results", f"no results/{name}/ for this system; "
                                                  f"remove it or add its results")


def _check_benchmark(rep: Report, bdir: Path, rules: Any, div: str, system: str,
                     orig: Path | None) -> None:
    bench = find_benchmark(rules, bdir.name)
    if bench is None:
        rep.error(bdir, "benchmark", f"rules {rules.version} know no benchmark "
                                     f"{bdir.name!r} ({', '.join(sorted(rules.benchmarks))}); "
                                     f"name the directory after one or add it to a rules file")
        return
    if bench.tiny:
        if bdir.name != bench.mlperf_model:
            rep.error(bdir, "benchmark", f"Tiny's tree names benchmark {bench.name} "
                                         f"{bench.mlperf_model!r} (Tiny's model name), not "
                                         f"{bdir.name!r}; rename the directory")
            return
        rep.results.append(check_tiny_result(rep, bdir, bench, div, system))
        return
    present = [s.name for s in _dirs(bdir)]
    for name in present:
        if name not in SCENARIOS:
            rep.error(bdir / name, "scenario", f"not a LoadGen scenario "
                                               f"({', '.join(SCENARIOS)}); MLCommons' checker "
                                               f"takes every folder here as one")
    if div == "closed":
        missing = [s for s in bench.scenarios_edge if s not in present]
        if missing:
            rep.error(bdir, "required-scenarios", f"closed edge {bench.name} needs "
                                                  f"{', '.join(bench.scenarios_edge)}; missing "
                                                  f"{', '.join(missing)}")
    for scen in _dirs(bdir):
        if scen.name in SCENARIOS:
            rep.results.append(check_result(rep, scen, bench, rules, div, system, orig))


def _check_tiny_system(rep: Report, path: Path, div: str, submitter: str) -> None:
    from edgeperf.submission.check_system import load_json
    from edgeperf.submission.system import STATUSES

    data = load_json(rep, path, "system-json")
    if data is None:
        return
    if "Status" not in data:
        how = " (it has 'status': Tiny's checker reads 'Status', capitalised)" \
            if "status" in data else ""
        rep.error(path, "system-status", f"no 'Status' field{how}; Tiny's checker needs it: "
                                         f"one of {', '.join(STATUSES)}")
    else:
        status = str(data["Status"]).lower()
        if status not in STATUSES:
            rep.error(path, "system-status", f"Status {status!r} is not one of "
                                             f"{', '.join(STATUSES)}")
    if "system_type" in data:  # Tiny's set_type: any system_type is "invalid system type"
        rep.error(path, "system-type", f"system_type {data['system_type']!r}: Tiny's checker "
                                       f"refuses any system_type (v1.4 knows none); remove it")
    check_names(rep, path, data, div, submitter)


def _check_manifest(rep: Report, root: Path) -> None:
    try:
        from edgeperf.submission.manifest import verify_manifest
    except ImportError:  # the tree builder's manifest is not installed: nothing to verify
        rep.warn(root, "manifest", "edgeperf.submission.manifest is missing: hashes not verified")
        return
    for problem in verify_manifest(root):
        head, sep, rest = problem.partition(": ")
        if sep and " " not in head:  # "path: what"
            rep.error(root / head, "manifest", f"{rest}; if the change is meant, write the "
                                               f"manifest again (edgeperf submission add)")
        else:
            rep.error(root, "manifest", problem)


# ---------------------------------------------------------------- the command line
DESCRIPTION = ("Check a submission tree by every rule of the rules' version edgeperf can check: "
               "the required files, LoadGen's logs (VALID, no errors, early stopping, "
               "durations, counts, seeds), accuracy, the truncated accuracy logs and their "
               "hashes, compliance, power, the manifest, the system descriptions and the "
               "tree's hygiene. Stricter than MLCommons' v6.1 checker, never looser.")
EXIT_HELP = """exit codes:
  0  no error (warnings never fail)
  3  the tree has errors (each printed as ERROR file: rule: what is wrong and the fix)
  2  a usage error (no such rules version, an unreadable rules file)"""


def add_parser(cmds: argparse._SubParsersAction) -> None:
    from edgeperf.cli.common import formatter

    p = cmds.add_parser("check", help="check a submission tree by the rules of its version",
                        formatter_class=formatter, description=DESCRIPTION, epilog=EXIT_HELP)
    p.add_argument("dir", metavar="DIR", help="the tree's root (it holds closed/ and open/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rules", metavar="VERSION", help="rules version (default: v6.1)")
    g.add_argument("--rules-file", metavar="FILE", help="a rules file of your own (the "
                                                         "shipped rules' schema)")
    p.add_argument("--originals", metavar="DIR", help="untruncated accuracy logs laid out as "
                                                      "the tree (MLCommons' truncation "
                                                      "--backup DIR), to check hash= lines")
    p.add_argument("--json", metavar="OUT", help="also write the findings as JSON "
                                                 "(edgeperf.submission-check/1)")
    p.set_defaults(fn=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from edgeperf.cli.common import EXIT_INVALID, EXIT_USAGE, EXIT_VALID, say
    from edgeperf.errors import UsageError
    from edgeperf.submission.rules import load_rules

    try:
        rules = load_rules(args.rules, args.rules_file)
    except UsageError as exc:
        say(str(exc))
        return EXIT_USAGE
    rep = check_tree(args.dir, rules, args.originals)
    print(rep.format(), end="")
    if args.json:
        rep.write_json(args.json)
    return EXIT_VALID if rep.ok else EXIT_INVALID
