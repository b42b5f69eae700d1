"""``edgeperf info``: what a board's device has (Python, numpy, runtimes, CPUs, clock, temps)."""

from __future__ import annotations

import argparse
import json

import edgeperf
from edgeperf.links.serial_key import access
from edgeperf.cli.common import (
    EXIT_VALID,
    add_board_arg,
    add_ssh_args,
    formatter,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="what a board's device has", formatter_class=formatter,
                       description="Connect to a board's agent and show what the device has: "
                                   "Python, numpy, TFLite runtimes, CPUs, clock, temperatures. "
                                   "An MCU board: its firmware's name, profile and model.")
    add_board_arg(p)
    p.add_argument("--port", metavar="PATH", help="an MCU board's serial port, over its "
                                                   "profile's")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    add_ssh_args(p)
    p.set_defaults(fn=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    with edgeperf.connect(args.board, identity=args.identity, known_hosts=args.known_hosts,
                          python=args.python, port=args.port) as dev:
        info = dev.info()
        profile, link = dev.profile, dev.link
    if args.json:
        print(json.dumps(info, indent=1))
    elif profile.link_type == "tiny":
        print_tiny_info(info, link)
    else:
        print_info(profile.name, profile.link_type, info, link)
    return EXIT_VALID


def print_info(name: str, link_type: str, info: dict, link: str) -> None:
    """What ``info`` prints: one line a fact, the label first."""
    rt = ", ".join(f"{k} {v}" for k, v in info["runtimes"].items() if v) or "none"
    clk = info["clock"]
    print(f"board      {name} ({link_type})")
    print(f"device     {info['hostname']}  {info['system']}")
    print(f"cpu        {info['cpu_model']} x{info['cpu_count']} ({info['machine']})")
    print(f"python     {info['python']}   numpy {info['numpy']}")
    print(f"runtimes   {rt}")
    for name, b in (info.get("backends") or {}).items():  # each optional backend
        if b.get("available"):
            what = ", ".join(f"{k} {v}" for k, v in (b.get("runtimes") or {}).items()) \
                or f"{b.get('runtime', name)} {b.get('version') or ''}".strip()
            eps = b.get("providers")
            print(f"backend    {name}: {what}" + (f" ({', '.join(eps)})" if eps else ""))
        else:
            print(f"backend    {name}: missing; install: {b.get('install')}")
    print(f"clock      {clk['source']} via {clk['implementation']}, "
          f"resolution {clk['resolution_ns']} ns")
    print(f"agent      {info['agent_version']} (protocol {info['protocol']}), "
          f"cache {info['cache_dir']}")
    if "auth" in info:  # a serial agent: who may drive it
        print(f"access     {access(info['auth'])}")
    deploy = info.get("deploy")
    if deploy is not None:
        how = f"uploaded {deploy['uploaded_bytes']} bytes" if deploy["uploaded_bytes"] else \
            "cached"
        print(f"link       {link}, python {deploy['python']} "
              f"({deploy['check'].get('executable')})")
        print(f"agent file {deploy['agent_path']} ({how})")
    tel = info["telemetry"]
    thr = tel.get("throttling")
    if thr:
        now = ", ".join(thr.get("now", [])) or thr.get("error") or "none"
        since = ", ".join(thr.get("since_boot", [])) or "none"
        print(f"throttling {now} now; since boot: {since}")
    for z in tel["thermal"]:
        print(f"thermal    {z['zone']} {z['type']}: {z['temp_c']:.1f} C")
    for c in tel["cpus"]:
        print(f"cpu{c['cpu']:<7} {c['cur_khz']} kHz (max {c['max_khz']}), {c['governor']}")


def print_tiny_info(info: dict, link: str) -> None:
    """An MCU board: what its firmware answers to name% and profile%."""
    print(f"board      {info['board']} (tiny: MLPerf Tiny UART protocol)")
    print(f"port       {info['port']} at {info['baud']} baud")
    print(f"dut        {info['name']}")
    print(f"profile    {info['profile']}")
    print(f"model      {info['model']}" + (f" (profile: {info['profile_model']})"
                                           if info.get("profile_model") else ""))
    if info.get("timestamp_mode"):
        print(f"timestamps {info['timestamp_mode']} mode")
    if info.get("warning"):
        print(f"warning    {info['warning']}")
