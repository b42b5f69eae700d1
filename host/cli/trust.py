"""``edgeperf trust BOARD``: show an SSH board's host key and, once confirmed, record it."""

from __future__ import annotations

import argparse
import sys

from edgeperf.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    EXIT_VALID,
    add_ssh_args,
    board,
    formatter,
    say,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="show an SSH board's host key and record it in known_hosts",
                       formatter_class=formatter,
                       description="Fetch an SSH board's host key, show its fingerprint, ask "
                                   "(or --yes) and record it in known_hosts. Compare it with "
                                   "the device's own: ssh-keygen -lf "
                                   "/etc/ssh/ssh_host_ed25519_key.pub on the device.")
    p.add_argument("board", help="board profile name, .toml path or ssh://[user@]host[:port]")
    p.add_argument("--yes", action="store_true", help="record without asking (scripts)")
    p.add_argument("--replace", action="store_true",
                   help="drop the key known_hosts holds for the host first (reinstalled device)")
    add_ssh_args(p)
    p.set_defaults(fn=cmd_trust)


def cmd_trust(args: argparse.Namespace) -> int:
    from edgeperf.links import LinkError
    from edgeperf.links.ssh import known_hosts
    from edgeperf.links.ssh.config import target_for
    from edgeperf.links.ssh.link import fetch_host_key

    profile = board(args)  # a BoardError is a usage error (main)
    if profile.link_type != "ssh":
        say(f"board {profile.name} has a {profile.link_type} link; only SSH boards have host "
            "keys to trust")
        return EXIT_USAGE
    try:
        target = target_for(profile)
        key = fetch_host_key(target)
    except (LinkError, ValueError) as exc:  # ssh_config's own: ValueError
        say(str(exc))
        return EXIT_ERROR
    print(f"board      {profile.name} ({target.describe()})")
    print(f"host key   {known_hosts.describe_key(key)}")
    try:
        known_hosts.check(target, key)
        print(f"already trusted in {', '.join(target.known_hosts)}")
        return EXIT_VALID
    except known_hosts.HostKeyError as exc:
        if exc.known and not args.replace:
            say(f"known_hosts holds another key for {target.key_name}: "
                f"{'; '.join(exc.known)}. If the device's keys really changed, run again "
                "with --replace")
            return EXIT_ERROR
    if not args.yes:
        if not sys.stdin.isatty():
            say("no terminal to confirm on: compare the fingerprint with the device's own (on "
                "the device: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and run again with "
                "--yes")
            return EXIT_USAGE
        answer = input(f"Trust this key for {target.key_name}? Compare it with the device's "
                       "own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the device) [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("not trusted; nothing written")
            return EXIT_ERROR
    path, removed = known_hosts.record(target, key, replace=args.replace)
    note = f" (replacing {removed} old line{'s' if removed != 1 else ''})" if removed else ""
    print(f"recorded   {target.key_name} in {path}{note}")
    return EXIT_VALID
