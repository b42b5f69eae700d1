"""``python -m edgeperf_agent serve --stdio | --serial DEV [--key-file PATH]``: the agent's
command line.

``check`` prints what the device has as JSON and needs nothing beyond the standard library
(it runs before numpy is known to be there); ``serve`` needs numpy.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import __version__


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="edgeperf_agent",
                                 description="edgeperf device agent %s" % __version__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve", help="serve the edgeperf wire protocol")
    sv.add_argument("--stdio", action="store_true", help="on stdin/stdout (local, SSH)")
    sv.add_argument("--serial", metavar="DEV", help="on a serial port (a UART such as "
                                                    "/dev/ttyAMA0, a USB gadget /dev/ttyGS0)")
    sv.add_argument("--baud", type=int, default=115200, help="serial: line rate (115200)")
    sv.add_argument("--parity", default="N", choices=("N", "E", "O"), help="serial: parity")
    sv.add_argument("--stopbits", type=int, default=1, choices=(1, 2), help="serial")
    sv.add_argument("--flow-control", default="none", choices=("none", "rtscts", "xonxoff"),
                    help="serial: flow control")
    sv.add_argument("--key-file", metavar="PATH",
                    help="serial: answer only a host that proves it holds this key (32 bytes, "
                         "hex; 'edgeperf serial-key new PATH' on the host writes one; mode 0600)"
                         " (default: $EDGEPERF_AGENT_KEY_FILE; none: the port is open)")
    sv.add_argument("--cache-dir", help="where pushed models and sample sets are kept (default: "
                                        "$EDGEPERF_AGENT_CACHE or ~/.cache/edgeperf-agent)")
    sub.add_parser("version", help="print the agent version")
    sub.add_parser("check", help="print what this device has (Python, numpy, runtimes) as JSON")
    args = ap.parse_args(argv)
    if args.cmd == "version":
        print(__version__)
        return 0
    if args.cmd == "check":
        import json

        from .check import report
        print(json.dumps(report()))
        return 0
    if args.stdio == bool(args.serial):
        ap.error("choose one transport: --stdio or --serial DEV")
    if args.stdio and args.key_file:
        ap.error("--key-file applies to --serial: over SSH, SSH itself authenticates the host")
    try:
        if args.serial:
            from . import auth
            from .serial_serve import serve_serial

            key_file = args.key_file or os.environ.get(auth.KEY_ENV)
            try:
                key = auth.load_key(key_file) if key_file else None
            except auth.KeyFileError as exc:
                print("edgeperf-agent: cannot serve on %s: %s" % (args.serial, exc),
                      file=sys.stderr)
                return 1
            return serve_serial(args.serial, args.baud, args.cache_dir, args.parity,
                                args.stopbits, args.flow_control, key)
        from .server import serve_stdio
        return serve_stdio(args.cache_dir)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
