"""``edgeperf trust BOARD``: show an SSH board's host key and, once confirmed (a fingerprint
read on the device, a yes at the prompt, or --yes), record it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgeperf.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    EXIT_VALID,
    add_ssh_args,
    board,
    formatter,
    say,
)

_ON_DEVICE = ("read it on the device's own console (not over the network being checked): "
              "ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="show an SSH board's host key and record it in known_hosts",
                       formatter_class=formatter,
                       description="Fetch an SSH board's host key, show its fingerprint and "
                                   "record it in known_hosts when it matches --fingerprint "
                                   "(or after a yes at the prompt, or --yes). Read the "
                                   "device's own on its console: ssh-keygen -lf "
                                   "/etc/ssh/ssh_host_ed25519_key.pub. A key that "
                                   "known_hosts marks @revoked is never recorded.")
    p.add_argument("board", help="board profile name, .toml path or ssh://[user@]host[:port]")
    p.add_argument("--fingerprint", metavar="SHA256:...",
                   help="record the key only if it has this fingerprint, as ssh-keygen -lf "
                        "prints it on the device (the SHA256: prefix may be left out; MD5 "
                        "is refused)")
    p.add_argument("--yes", action="store_true",
                   help="record whatever key answers, without asking (scripts on a network "
                        "you trust; --fingerprint is the safe form)")
    p.add_argument("--replace", action="store_true",
                   help="drop the key known_hosts holds for the host first (reinstalled device)")
    add_ssh_args(p)
    p.set_defaults(fn=cmd_trust)


def cmd_trust(args: argparse.Namespace) -> int:
    from edgeperf.links import LinkError
    from edgeperf.links.ssh import known_hosts as kh
    from edgeperf.links.ssh.config import target_for
    from edgeperf.links.ssh.link import fetch_host_key

    profile = board(args)  # a BoardError is a usage error (main)
    if profile.link_type != "ssh":
        say(f"board {profile.name} has a {profile.link_type} link; only SSH boards have host "
            "keys to trust")
        return EXIT_USAGE
    try:
        wanted = kh.parse_fingerprint(args.fingerprint) if args.fingerprint else None
    except ValueError as exc:
        say(str(exc))
        return EXIT_USAGE
    try:
        target = target_for(profile)
        key = fetch_host_key(target)
    except (LinkError, ValueError) as exc:  # ssh_config's own: ValueError
        say(str(exc))
        return EXIT_ERROR
    print(f"board      {profile.name} ({target.describe()})")
    print(f"host key   {kh.describe_key(key)}")
    if wanted is not None and kh.fingerprint(key) != wanted:
        try:
            other, also = _other_key(target, key, wanted, fetch_host_key)
        except LinkError as exc:
            say(str(exc))
            return EXIT_ERROR
        if other is None:
            more = f" (and holds {', '.join(kh.describe_key(k) for k in also)})" if also else ""
            say(f"the device's host key does not match --fingerprint {wanted}: it offers "
                f"{kh.describe_key(key)}{more}. Nothing recorded. If the device is yours, "
                + _ON_DEVICE.format(kh.short_type(key)) + ", and run again with that "
                "fingerprint; if it already is that, something else answers at "
                f"{target.describe()}")
            return EXIT_ERROR
        print(f"matched    {kh.describe_key(other)}: --fingerprint is the device's "
              f"{other.get_name()} key, not the {key.get_name()} key it offers first; "
              f"recording the {other.get_name()} key (edgeperf then asks for it first)")
        key = other
    bad = kh.revoked_entry(target, key)
    if bad is not None:
        say(f"the host key {kh.describe_key(key)} of {target.key_name} is revoked "
            f"(@revoked in {bad.where}); not recorded. Give the device a new host key on its "
            "console, then trust that one")
        return EXIT_ERROR
    try:
        kh.check(target, key)
        print(f"already trusted in {', '.join(target.known_hosts)}")
        return EXIT_VALID
    except kh.HostKeyError as exc:
        if exc.known and not args.replace:
            say(f"known_hosts holds another key for {target.key_name}: "
                f"{'; '.join(exc.known)}. If the device's keys really changed, run again "
                "with --replace")
            return EXIT_ERROR
    if wanted is None and not args.yes and not _confirmed(target.key_name):
        return EXIT_USAGE if not sys.stdin.isatty() else EXIT_ERROR
    hashed = kh.writes_hashed(target)
    path, removed = kh.record(target, key, replace=args.replace, hashed=hashed)
    note = f" (replacing {removed} old line{'s' if removed != 1 else ''})" if removed else ""
    print(f"recorded   {target.key_name} in {path}{note}: {kh.describe_key(key)}"
          f"{', host name hashed' if hashed else ''}"
          f"{', fingerprint matched' if wanted else ''}")
    return EXIT_VALID


def _confirmed(name: str) -> bool:
    if not sys.stdin.isatty():
        say("no terminal to confirm on: compare the fingerprint with the device's own (on "
            "the device: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and run again with "
            "--fingerprint SHA256:... (or --yes)")
        return False
    answer = input(f"Trust this key for {name}? Compare it with the device's own "
                   "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the device) [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        say("not trusted; nothing written")
        return False
    return True


def _other_key(target: Any, first: Any, wanted: str, fetch: Any) -> tuple[Any, list[Any]]:
    """The device's key of another type with the wanted fingerprint (one connection a
    type, asking for it first) or None, and the other keys it showed."""
    from edgeperf.links.ssh import known_hosts as kh

    seen, others = {first.get_name()}, []
    for ktype in kh.PROBE_TYPES:
        if ktype in seen:
            continue
        with kh.asking_first(ktype):
            key = fetch(target)
        if key.get_name() in seen:
            continue  # the device has no key of this type
        seen.add(key.get_name())
        if kh.fingerprint(key) == wanted:
            return key, others
        others.append(key)
    return None, others
