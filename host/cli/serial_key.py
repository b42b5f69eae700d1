"""``edgeperf serial-key new PATH``: a shared key for a serial agent (its --key-file)."""

from __future__ import annotations

import argparse

from edgeperf.cli.common import EXIT_VALID, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serial-key", help="make the shared key a serial agent asks hosts for",
                       formatter_class=formatter,
                       description="A serial agent started with --key-file answers only a "
                                   "host that proves it holds the same key (an HMAC "
                                   "handshake at every session; the device proves it too). "
                                   "Without one, any host on its port can drive it.")
    keys = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = keys.add_parser("new", help="write a new key (32 random bytes, hex) with mode 0600 "
                                      "and print how to install it on the device",
                          formatter_class=formatter)
    new.add_argument("path", help="the key file to write (never over an existing file)")
    new.set_defaults(fn=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    from edgeperf.links.serial_key import new_key_file

    print(new_key_file(args.path))  # the file exists: a usage error (main)
    return EXIT_VALID
