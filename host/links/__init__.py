"""Links: byte pipes to a device agent, one module a link, opened by scheme (registry.py)."""

from edgeperf.links.base import Link, LinkClosed, LinkError
from edgeperf.links.local import LocalLink
from edgeperf.links.registry import OPENERS, open_link

__all__ = ["OPENERS", "Link", "LinkClosed", "LinkError", "LocalLink", "open_link"]
