"""A session: one link, one agent, its hello, kept for as many runs as its caller makes.

A lab running 200 runs on a board pays the connection, the agent's shipping and its start
once. A session whose agent died (or whose run was interrupted mid-scenario) is closed, and
the next run on it raises AgentDied rather than talking to nothing: connect again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeperf.boards.profile import BoardProfile
from edgeperf.errors import AgentDied, AgentError, LinkError, RunError, UsageError
from edgeperf.links.base import Link
from edgeperf.links.registry import open_link
from edgeperf.run.client import AgentClient
from edgeperf.run.spec import Reporter


class Session:
    """Open with :meth:`open`; close with :meth:`close` (``with`` does it)."""

    def __init__(self, profile: BoardProfile, link: Link, client: AgentClient,
                 info: dict[str, Any]) -> None:
        self.profile, self.link, self.client, self.info = profile, link, client, info
        self.runs = 0  # runs started on this session
        self.dead: str | None = None  # why the agent is gone, once it is
        self.closed = False
        self._line_mark: dict[str, int] | None = None  # serial line counters at the last run's end

    @classmethod
    def open(cls, profile: BoardProfile, report: Reporter | None = None, *,
             needs_runtime: bool = False) -> Session:
        """Open the link, start the agent and say hello. LinkError when the link cannot be
        opened; RunError when the agent does not answer as it should."""
        say = report or (lambda ev, data: None)
        link = open_link(profile, report=say, needs_runtime=needs_runtime)
        client = AgentClient(link)
        try:
            say("connect", {"board": profile.name, "link": link.describe()})
            info = client.hello()
            say("hello", info)
        except AgentError as exc:
            link.close()
            raise RunError(f"{profile.name}: {exc}") from None
        except BaseException:
            link.close()
            raise
        return cls(profile, link, client, info)

    @property
    def deploy(self) -> Any:
        """An SSH board's Deployment (where the agent is, what was uploaded), else None."""
        return getattr(self.link, "deploy", None)

    def check_usable(self) -> None:
        """Raise, naming the cause, when no run can start on this session."""
        if self.closed and self.dead is None:
            raise UsageError(f"board {self.profile.name}: this connection is closed; "
                             "connect again")
        if self.dead is not None:
            raise AgentDied(f"board {self.profile.name}: the agent of this connection is gone "
                            f"({self.dead}); connect again", "Died")

    def check_runtime(self) -> None:
        """A .tflite model needs a runtime on the device: say so, with the install command,
        before anything is pushed (SSH boards know what their device has)."""
        dep = self.deploy
        if dep is None:
            return
        from edgeperf.links.ssh.deploy import DeviceNotReady, install_advice

        problems = install_advice(dep.check, dep.python, True)
        if problems:
            raise RunError(str(DeviceNotReady(f"{self.profile.name}: the device is not ready "
                                              "for the agent: " + "; ".join(problems))))

    def mark_dead(self, why: str) -> None:
        """The agent cannot be talked to any more (died, timed out, interrupted mid-run)."""
        if self.dead is None:
            self.dead = why
        self._close_link()

    def line_stats(self) -> dict[str, int] | None:
        """A serial line's own account since the previous run on this session."""
        stats = getattr(self.link, "stats", None)
        if stats is None:
            return None
        now = dataclasses.asdict(stats)
        mark, self._line_mark = self._line_mark, now
        if mark is None:
            return now
        return {k: v - mark.get(k, 0) if isinstance(v, int) else v for k, v in now.items()}

    def close(self) -> None:
        """Say goodbye to the agent (it exits) and close the link; idempotent."""
        if self.closed:
            return
        if self.dead is None:
            try:
                self.client.bye()
            except (AgentError, LinkError):
                pass
        self._close_link()

    def _close_link(self) -> None:
        if not self.closed:
            self.closed = True
            self.link.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
