"""The edgeperf command line: one module a command."""

from edgeperf.cli.main import main

__all__ = ["main"]
