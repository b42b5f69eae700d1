"""The ``edgeperf`` command line.

Exit codes: 0 a VALID result, 3 a run that completed but is INVALID, 1 an error,
2 a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from edgeperf import __version__
from edgeperf.boards.profile import (
    BoardError,
    BoardProfile,
    list_boards,
    load_board,
    open_link,
    with_overrides,
)
from edgeperf.links.base import LinkError
from edgeperf.run.client import AgentClient, AgentError
from edgeperf.run.execute import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    RunError,
    RunSpec,
    execute,
)
from edgeperf.scoring.loadgen import SCENARIOS
from edgeperf.settings import PRESETS, SettingsError, TestSettings, preset


def _scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    lower = {s.lower(): s for s in SCENARIOS}
    out = []
    for n in names:
        if n.lower() not in lower:
            raise argparse.ArgumentTypeError(
                f"unknown scenario {n!r}; choose from {', '.join(SCENARIOS)}")
        out.append(lower[n.lower()])
    return out


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return v


def _add_settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", choices=PRESETS,
                   help="starting settings (default: quick)")
    p.add_argument("--user-conf", action="append", default=[], metavar="FILE",
                   help="LoadGen-format conf file (repeatable, later wins)")
    p.add_argument("--conf-model", default="*", metavar="NAME",
                   help="model name the conf keys are looked up for")
    p.add_argument("--min-queries", type=int, metavar="N")
    p.add_argument("--max-queries", type=int, metavar="N")
    p.add_argument("--min-duration", type=_positive_float, metavar="S", help="seconds")
    p.add_argument("--max-duration", type=_positive_float, metavar="S", help="seconds (0: none)")
    p.add_argument("--target-latency-ms", type=_positive_float, metavar="X",
                   help="Server: the latency bound; SingleStream/MultiStream: expected latency")
    p.add_argument("--target-qps", type=_positive_float, metavar="Q",
                   help="Server: arrival rate; Offline: expected throughput")
    p.add_argument("--samples-per-query", type=int, metavar="N")
    p.add_argument("--seed", type=int, metavar="N", help="all three RNG seeds")


def build_settings(args: argparse.Namespace, scenario: str) -> TestSettings:
    # a conf's percentile also sets the short presets' early-stopping minimum
    s = preset(args.preset, scenario, confs=args.user_conf or None, conf_model=args.conf_model)
    changes: dict = {}
    if args.min_queries is not None:
        changes["min_query_count"] = args.min_queries
    if args.max_queries is not None:
        changes["max_query_count"] = args.max_queries
    if args.min_duration is not None:
        changes["min_duration_ms"] = int(round(args.min_duration * 1000))
    if args.max_duration is not None:
        changes["max_duration_ms"] = int(round(args.max_duration * 1000))
    if args.target_latency_ms is not None:
        changes["target_latency_ns"] = int(round(args.target_latency_ms * 1e6))
    if args.target_qps is not None:
        changes["target_qps"] = args.target_qps
    if getattr(args, "samples_per_query", None) is not None:
        changes["samples_per_query"] = args.samples_per_query
    if getattr(args, "seed", None) is not None:
        changes.update(qsl_rng_seed=args.seed, sample_index_rng_seed=args.seed,
                       schedule_rng_seed=args.seed)
    return dataclasses.replace(s, **changes).validate()


def _add_ssh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identity", metavar="FILE",
                   help="SSH boards: private key file (over the profile and ~/.ssh/config)")
    p.add_argument("--known-hosts", metavar="FILE",
                   help="SSH boards: known_hosts file to check (and, for trust, to write)")
    p.add_argument("--python", metavar="PATH",
                   help="the device's Python for the agent (over the profile's link.python)")


def _board(args: argparse.Namespace) -> BoardProfile:
    """--board (a profile name, a .toml path or ssh://[user@]host[:port]) with the flags."""
    return with_overrides(load_board(args.board), identity=args.identity,
                          known_hosts=args.known_hosts, python=getattr(args, "python", None))


def _print_summary(out: Path) -> None:
    path = out / "mlperf_log_summary.txt"
    if path.exists():
        text = path.read_text()
        cut = text.find("\n================================================\nTest Parameters")
        sys.stdout.write(text[:cut if cut > 0 else len(text)].rstrip() + "\n")


def cmd_run(args: argparse.Namespace) -> int:
    from edgeperf.cli.progress import ProgressPrinter

    if (args.task or args.mode != "performance" or args.audit_outputs or args.input_shape
            or args.audit_against):
        from edgeperf.tasks.run import cmd_run_task  # tasks, accuracy/submission, audit

        return cmd_run_task(args)
    if not args.model or not args.scenario:
        print(f"edgeperf: run needs {'--model' if not args.model else '--scenario'} "
              "(or --task NAME; see 'edgeperf tasks')", file=sys.stderr)
        return EXIT_USAGE

    scenarios = [s for group in args.scenario for s in group]
    try:
        settings = [build_settings(args, scen) for scen in scenarios]
    except SettingsError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        board = _board(args)
    except BoardError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_ERROR
    root = Path(args.out) if args.out else Path("results") / (
        time.strftime("%Y%m%d-%H%M%S") + "-" + args.model.replace(":", "-").replace("/", "_"))
    worst = EXIT_VALID
    for s in settings:
        out = root / s.scenario if len(settings) > 1 or not args.out else root
        printer = ProgressPrinter(s.min_duration_ms / 1000, s.min_query_count, quiet=args.quiet)
        spec = RunSpec(model=args.model, settings=s, board=board, out_dir=out,
                       threads=args.threads, conf_files=args.user_conf,
                       trace_all=args.trace_all, meter=args.meter,
                       idle_baseline_s=args.idle_baseline, querylog=args.querylog)
        try:
            outcome = execute(spec, printer)
        except (RunError, BoardError, SettingsError, LinkError) as exc:
            print(f"edgeperf: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(f"\n=== {s.scenario} on {args.board}: {args.model} -> {out}")
        _print_summary(out)
        for warning in outcome.result.get("warnings", []):
            print(f"edgeperf: warning: {warning.removeprefix('edgeperf: ')}", file=sys.stderr)
        if outcome.result.get("power"):
            from edgeperf.power.energy import format_power_block

            sys.stdout.write(format_power_block(outcome.result["power"]))
        if outcome.error:
            print(f"edgeperf: {outcome.error}", file=sys.stderr)
            print(f"edgeperf: everything measured was kept in {out}", file=sys.stderr)
        worst = max(worst, outcome.exit_code, key=lambda c: {0: 0, 3: 1, 1: 2}.get(c, 2))
    return worst


def cmd_score(args: argparse.Namespace) -> int:
    from edgeperf.outputs.mlperf_logs import format_summary
    from edgeperf.scoring.files import ScoreFileError, score_file

    try:
        s = build_settings(args, args.scenario)
        scored = score_file(args.latencies, s, samples_per_query=args.samples_per_query)
    except SettingsError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScoreFileError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return exc.exit_code
    summ = scored.summary
    sys.stdout.write(format_summary(summ, scored.settings, sut_name=Path(args.latencies).name,
                                    effective=scored.effective))
    if args.json:
        print(json.dumps(summ.to_dict(), indent=1))
    return EXIT_VALID if summ.valid else EXIT_INVALID


def cmd_info(args: argparse.Namespace) -> int:
    try:
        profile = _board(args)
        link = open_link(profile)
    except (BoardError, LinkError) as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_ERROR
    client = AgentClient(link)
    try:
        info = client.hello()
        info["telemetry"] = client.telemetry()
        client.bye()
    except AgentError as exc:
        print(f"edgeperf: {profile.name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        link.close()
    deploy = getattr(link, "deploy", None)
    if deploy is not None:
        info["deploy"] = deploy.to_dict()
    if args.json:
        print(json.dumps(info, indent=1))
        return EXIT_VALID
    rt = ", ".join(f"{k} {v}" for k, v in info["runtimes"].items() if v) or "none"
    clk = info["clock"]
    print(f"board      {profile.name} ({profile.link_type})")
    print(f"device     {info['hostname']}  {info['system']}")
    print(f"cpu        {info['cpu_model']} x{info['cpu_count']} ({info['machine']})")
    print(f"python     {info['python']}   numpy {info['numpy']}")
    print(f"runtimes   {rt}")
    print(f"clock      {clk['source']} via {clk['implementation']}, "
          f"resolution {clk['resolution_ns']} ns")
    print(f"agent      {info['agent_version']} (protocol {info['protocol']}), "
          f"cache {info['cache_dir']}")
    if deploy is not None:
        how = f"uploaded {deploy.uploaded_bytes} bytes" if deploy.uploaded_bytes else "cached"
        print(f"link       {link.describe()}, python {deploy.python} "
              f"({deploy.check.get('executable')})")
        print(f"agent file {deploy.agent_path} ({how})")
    thr = info["telemetry"].get("throttling")
    if thr:
        now = ", ".join(thr.get("now", [])) or thr.get("error") or "none"
        since = ", ".join(thr.get("since_boot", [])) or "none"
        print(f"throttling {now} now; since boot: {since}")
    tel = info["telemetry"]
    for z in tel["thermal"]:
        print(f"thermal    {z['zone']} {z['type']}: {z['temp_c']:.1f} C")
    for c in tel["cpus"]:
        print(f"cpu{c['cpu']:<7} {c['cur_khz']} kHz (max {c['max_khz']}), {c['governor']}")
    return EXIT_VALID


def cmd_trust(args: argparse.Namespace) -> int:
    """Show an SSH board's host key and, once confirmed, record it in known_hosts."""
    from edgeperf.links.ssh import known_hosts
    from edgeperf.links.ssh.config import target_for
    from edgeperf.links.ssh.link import fetch_host_key

    try:
        profile = _board(args)
        if profile.link_type != "ssh":
            print(f"edgeperf: board {profile.name} has a {profile.link_type} link; only SSH "
                  "boards have host keys to trust", file=sys.stderr)
            return EXIT_USAGE
        target = target_for(profile)
        key = fetch_host_key(target)
    except (BoardError, LinkError, ValueError) as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"board      {profile.name} ({target.describe()})")
    print(f"host key   {known_hosts.describe_key(key)}")
    try:
        known_hosts.check(target, key)
        print(f"already trusted in {', '.join(target.known_hosts)}")
        return EXIT_VALID
    except known_hosts.HostKeyError as exc:
        if exc.known and not args.replace:
            print(f"edgeperf: known_hosts holds another key for {target.key_name}: "
                  f"{'; '.join(exc.known)}. If the device's keys really changed, run again "
                  "with --replace", file=sys.stderr)
            return EXIT_ERROR
    if not args.yes:
        if not sys.stdin.isatty():
            print("edgeperf: no terminal to confirm on: compare the fingerprint with the "
                  "device's own (on the device: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and "
                  "run again with --yes", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"Trust this key for {target.key_name}? Compare it with the device's "
                       "own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the device) [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("edgeperf: not trusted; nothing written", file=sys.stderr)
            return EXIT_ERROR
    path, removed = known_hosts.record(target, key, replace=args.replace)
    note = f" (replacing {removed} old line{'s' if removed != 1 else ''})" if removed else ""
    print(f"recorded   {target.key_name} in {path}{note}")
    return EXIT_VALID


def cmd_boards(args: argparse.Namespace) -> int:
    for name, path in list_boards().items():
        try:
            b = load_board(str(path))
            print(f"{name:20s} {b.link_type:8s} {b.description}")
        except BoardError as exc:
            print(f"{name:20s} INVALID  {exc}")
    return EXIT_VALID


def cmd_models(args: argparse.Namespace) -> int:
    from edgeperf.models.builtin import list_builtin

    for name in list_builtin():
        print(f"builtin:{name}")
    print("synthetic:null")
    print("synthetic:busy:<microseconds>")
    return EXIT_VALID


def cmd_tasks(args: argparse.Namespace) -> int:
    from edgeperf.tasks.run import cmd_tasks as list_tasks

    return list_tasks(args)


def cmd_report(args: argparse.Namespace) -> int:
    from edgeperf.outputs.report import ReportError, write_report

    try:
        path = write_report(Path(args.run_dir), Path(args.out) if args.out else None)
    except ReportError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(path)
    return EXIT_VALID


def cmd_emulate(args: argparse.Namespace) -> int:
    from edgeperf.testing.emulators.load_profile import load_profile

    try:
        profile = load_profile(args.profile if args.profile else args.watts)
    except ValueError as exc:
        print(f"edgeperf: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.instrument == "ptd":
        from edgeperf.testing.emulators.ptd import serve

        try:
            serve(args.port, profile, host=args.host, volts=args.volts, pf=args.pf,
                  logfile=args.logfile)
        except OSError as exc:
            print(f"edgeperf: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return EXIT_ERROR
    else:
        from edgeperf.testing.emulators.lpm01a import serve as serve_lpm

        serve_lpm(profile)
    return EXIT_VALID


def cmd_line_sim(args: argparse.Namespace) -> int:
    from edgeperf.testing.line_sim import main as line_sim_main

    return line_sim_main(args)


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeperf", description=(
        "MLPerf-style inference benchmarks, timed on the device."))
    ap.add_argument("--version", action="version", version=f"edgeperf {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run a benchmark on a board")
    r.add_argument("--board", default="local",
                   help="board profile name, .toml path or ssh://[user@]host[:port]")
    r.add_argument("--model",
                   help="a .tflite path, builtin:NAME or synthetic:null|busy:US (with --task: "
                        "your own model for the task's data and target)")
    r.add_argument("--scenario", type=_scenarios, action="append",
                   help="SingleStream, MultiStream, Server, Offline (comma list or repeat)")
    _add_settings_args(r)
    r.add_argument("--threads", type=int, metavar="N", help="runtime threads")
    r.add_argument("--out", metavar="DIR", help="output directory (default: results/...)")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("--trace-all", action="store_true",
                   help="every query in mlperf_log_trace.json (default: the first 10,000)")
    _add_ssh_args(r)
    r.add_argument("--task", metavar="NAME",
                   help="a task (model + dataset + target): ic-digits, ad-synthetic, "
                        "tasks/NAME.toml or a .toml path; NAME:VARIANT picks int8 or fp32")
    r.add_argument("--mode", default="performance",
                   choices=("performance", "accuracy", "submission"),
                   help="accuracy: every sample once, metric checked; submission: accuracy "
                        "then performance (default: performance)")
    r.add_argument("--audit-outputs", type=int, default=0, metavar="N",
                   help="after the timed run, check N queried samples' outputs against an "
                        "accuracy run's (MLPerf TEST01)")
    r.add_argument("--audit-against", metavar="RUN_DIR",
                   help="the accuracy run that --audit-outputs compares with")
    r.add_argument("--input-shape", action="append", metavar="[NAME:]D,D,...",
                   help="set an input's shape (dynamic dimensions), e.g. 1,224,224,3")
    r.add_argument("--meter", metavar="URL",
                   help="measure power: ptd://HOST:PORT, lpm01a:///dev/ttyACM0, joulescope, "
                        "sysfs (the device's sensors) or csv:FILE (default: the board's "
                        "[meter] url)")
    r.add_argument("--idle-baseline", type=_positive_float, default=0.0, metavar="S",
                   help="with --meter: measure the idle device for S seconds first, for net "
                        "figures")
    r.add_argument("--querylog", choices=("full", "summary"), default="full",
                   help="summary: the device keeps the per-query log and sends its sorted "
                        "latencies (exact scoring; for long runs over a serial line)")
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("score", help="score a run's querylog.npz, or timestamps or latencies "
                                     "recorded elsewhere")
    s.add_argument("latencies", metavar="FILE",
                   help="a run's querylog.npz; a CSV with a header naming issue_ns or "
                        "scheduled_ns, done_ns and optionally start_ns (ns, one row a query); "
                        "or bare latencies, SingleStream/MultiStream only (.npy, or one "
                        "integer of ns a line)")
    s.add_argument("--scenario", required=True, choices=SCENARIOS)
    _add_settings_args(s)
    s.set_defaults(preset="smoke")
    s.add_argument("--json", action="store_true", help="also print the summary as JSON")
    s.set_defaults(fn=cmd_score)

    i = sub.add_parser("info", help="what a board's device has")
    i.add_argument("--board", default="local")
    i.add_argument("--json", action="store_true")
    _add_ssh_args(i)
    i.set_defaults(fn=cmd_info)

    t = sub.add_parser("trust", help="show an SSH board's host key and record it in known_hosts")
    t.add_argument("board", help="board profile name, .toml path or ssh://[user@]host[:port]")
    t.add_argument("--yes", action="store_true", help="record without asking (scripts)")
    t.add_argument("--replace", action="store_true",
                   help="drop the key known_hosts holds for the host first (reinstalled device)")
    _add_ssh_args(t)
    t.set_defaults(fn=cmd_trust)
    rp = sub.add_parser("report", help="draw a run's power trace and latency histogram (PNG)")
    rp.add_argument("run_dir", help="a run's output directory")
    rp.add_argument("--out", metavar="FILE", help="the PNG (default: RUN_DIR/report.png)")
    rp.set_defaults(fn=cmd_report)

    em = sub.add_parser("emulate", help="emulated power instruments, to rehearse without "
                                        "hardware")
    em.add_argument("instrument", choices=("ptd", "lpm01a"),
                    help="ptd: a PTDaemon with an analyser on TCP; lpm01a: a PowerShield on a "
                         "pseudo-terminal (its path is printed)")
    load = em.add_mutually_exclusive_group()
    load.add_argument("--watts", type=_positive_float, default=5.0,
                      help="the constant load the instrument measures (default 5 W)")
    load.add_argument("--profile", metavar="FILE",
                      help="a load profile: 'SECONDS WATTS' a line ('repeat' to loop)")
    em.add_argument("--port", type=int, default=8888, help="ptd: TCP port (default 8888)")
    em.add_argument("--host", default="127.0.0.1", help="ptd: address to listen on")
    em.add_argument("--volts", type=_positive_float, default=230.0, help="ptd: line voltage")
    em.add_argument("--pf", type=_positive_float, default=1.0, help="ptd: power factor")
    em.add_argument("--logfile", help="ptd: also write each sample with its Mark to this file, "
                    "as PTDaemon's -l log (read it with ptd://...?logfile=FILE)")
    em.set_defaults(fn=cmd_emulate)

    b = sub.add_parser("boards", help="list board profiles")
    b.set_defaults(fn=cmd_boards)
    m = sub.add_parser("models", help="list built-in models")
    m.set_defaults(fn=cmd_models)
    t = sub.add_parser("tasks", help="list tasks (built-in and ./tasks/*.toml)")
    t.set_defaults(fn=cmd_tasks)

    ls = sub.add_parser("line-sim", help="a serial line between two pseudo-terminals, at a "
                                         "real baud rate, with faults (to rehearse a setup)")
    ls.add_argument("--baud", type=int, default=115200)
    ls.add_argument("--flip-rate", type=float, default=0.0, metavar="R",
                    help="chance per byte that one of its bits flips")
    ls.add_argument("--drop-rate", type=float, default=0.0, metavar="R",
                    help="chance per byte that it is lost")
    ls.add_argument("--garbage-every", type=float, default=0.0, metavar="S",
                    help="a burst of random bytes every S seconds, each way")
    ls.add_argument("--garbage-bytes", type=int, default=64, metavar="N")
    ls.add_argument("--bits-per-char", type=int, default=10, help="line bits a byte (8N1: 10)")
    ls.add_argument("--seed", type=int, default=0)
    ls.set_defaults(fn=cmd_line_sim)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = make_parser()
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("edgeperf: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
