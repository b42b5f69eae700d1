"""``edgeperf emulate ptd|lpm01a|mcu``: an emulated power instrument or MCU board, to rehearse
without one. ``mcu``: the reference firmware on qemu when qemu-system-arm is installed, the
Python DUT otherwise (``--python`` forces it); its port is printed."""

from __future__ import annotations

import argparse

from edgeperf.cli.common import EXIT_ERROR, EXIT_USAGE, EXIT_VALID, formatter, non_negative, say


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulate", help="emulated power instruments and MCU boards, to "
                                       "rehearse without hardware", formatter_class=formatter)
    p.add_argument("instrument", choices=("ptd", "lpm01a", "mcu"),
                   help="ptd: a PTDaemon with an analyser on TCP; lpm01a: a PowerShield on a "
                        "pseudo-terminal (its path is printed); mcu: an MLPerf Tiny board on a "
                        "pseudo-terminal (qemu's mps2-an385 with the reference firmware when "
                        "qemu-system-arm is installed, else the Python DUT)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--watts", type=non_negative, default=None,
                      help="the constant load the instrument measures (default: 5 W; mcu "
                           "--energy: the emulated LPM01A's load, 0.01 W)")
    load.add_argument("--profile", metavar="FILE",
                      help="a load profile: 'SECONDS WATTS' a line ('repeat' to loop)")
    p.add_argument("--port", type=int, default=8888, help="ptd: TCP port (default: 8888)")
    p.add_argument("--host", default="127.0.0.1",
                   help="ptd: address to listen on (default: 127.0.0.1)")
    p.add_argument("--volts", type=non_negative, default=230.0,
                   help="ptd: line voltage (default: 230)")
    p.add_argument("--pf", type=non_negative, default=1.0, help="ptd: power factor (default: 1)")
    p.add_argument("--logfile", help="ptd: also write each sample with its Mark to this file, "
                   "as PTDaemon's -l log (read it with ptd://...?logfile=FILE)")
    m = p.add_argument_group("mcu")
    m.add_argument("--python", action="store_true",
                   help="mcu: the Python emulated DUT even when qemu is installed")
    m.add_argument("--model", choices=("ic01", "ad01"), default="ic01",
                   help="mcu: the MLPerf Tiny model it runs (default: ic01)")
    m.add_argument("--energy", action="store_true",
                   help="mcu: boot in energy mode (timestamps as edges, behind an interface "
                        "board), with an emulated LPM01A its timestamp line drives (both "
                        "ports printed)")
    m.add_argument("--infer-us", type=int, default=1000, metavar="US",
                   help="mcu --python: virtual microseconds an inference (default: 1000)")
    p.set_defaults(fn=cmd_emulate)


def cmd_emulate(args: argparse.Namespace) -> int:
    from edgeperf.testing.emulators.load_profile import load_profile

    if args.instrument == "mcu":
        from edgeperf.links.registry import open_emulator

        try:
            load = load_profile(args.profile) if args.profile else args.watts
        except ValueError as exc:
            say(str(exc))
            return EXIT_USAGE
        open_emulator("python" if args.python else None, args.model,
                      "energy" if args.energy else "performance", args.infer_us, None, load)
        return EXIT_VALID

    try:
        profile = load_profile(args.profile if args.profile else
                               (5.0 if args.watts is None else args.watts))
    except ValueError as exc:
        say(str(exc))
        return EXIT_USAGE
    if args.instrument == "ptd":
        from edgeperf.testing.emulators.ptd import serve

        try:
            serve(args.port, profile, host=args.host, volts=args.volts, pf=args.pf,
                  logfile=args.logfile)
        except OSError as exc:
            say(f"cannot listen on {args.host}:{args.port}: {exc}")
            return EXIT_ERROR
    else:
        from edgeperf.testing.emulators.lpm01a import serve as serve_lpm

        serve_lpm(profile)
    return EXIT_VALID
