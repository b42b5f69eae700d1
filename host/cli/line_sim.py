"""``edgeperf line-sim``: two pseudo-terminals joined at a real baud rate, with faults."""

from __future__ import annotations

import argparse

from edgeperf.cli.common import formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("line-sim", help="a serial line between two pseudo-terminals, at a "
                                        "real baud rate, with faults (to rehearse a setup)",
                       formatter_class=formatter)
    p.add_argument("--baud", type=int, default=115200, help="line speed (default: 115200)")
    p.add_argument("--flip-rate", type=float, default=0.0, metavar="R",
                   help="chance per byte that one of its bits flips (default: 0)")
    p.add_argument("--drop-rate", type=float, default=0.0, metavar="R",
                   help="chance per byte that it is lost (default: 0)")
    p.add_argument("--garbage-every", type=float, default=0.0, metavar="S",
                   help="a burst of random bytes every S seconds, each way (default: never)")
    p.add_argument("--garbage-bytes", type=int, default=64, metavar="N",
                   help="bytes in a burst (default: 64)")
    p.add_argument("--bits-per-char", type=int, default=10,
                   help="line bits a byte (default: 10, as 8N1)")
    p.add_argument("--seed", type=int, default=0, help="the faults' RNG seed (default: 0)")
    p.set_defaults(fn=cmd_line_sim)


def cmd_line_sim(args: argparse.Namespace) -> int:
    from edgeperf.testing.line_sim import main as line_sim_main

    return line_sim_main(args)
