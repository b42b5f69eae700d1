"""edgeperf host controller."""

from device_agent import __version__

__all__ = ["__version__"]
