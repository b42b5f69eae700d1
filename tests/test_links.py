"""links/registry.py: a board's link type is a scheme, opened by the module named for it."""

from __future__ import annotations

import importlib

import pytest

from edgeperf.boards.profile import LINK_TYPES, BoardError, BoardProfile
from edgeperf.links import OPENERS, LocalLink, open_link
from edgeperf.links.base import Link


def test_every_link_type_a_profile_accepts_has_an_opener():
    assert set(OPENERS) == set(LINK_TYPES)
    for scheme, where in OPENERS.items():
        module, _, name = where.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), scheme


def test_local_scheme_opens_a_local_link_to_the_agent():
    from edgeperf.run.client import AgentClient

    link = open_link(BoardProfile(name="local", link_type="local"))
    try:
        assert isinstance(link, LocalLink) and isinstance(link, Link)
        client = AgentClient(link)
        assert client.hello()["agent_version"]
        client.bye()
    finally:
        link.close()


def test_unknown_link_type_is_refused_with_the_board_name():
    with pytest.raises(BoardError, match=r"board odd: link type 'carrier-pigeon' is not "
                                         r"supported"):
        open_link(BoardProfile(name="odd", link_type="carrier-pigeon"))
