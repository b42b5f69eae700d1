"""The errors a user of ``edgeperf`` catches: one base, a few kinds, never SystemExit.

Every error edgeperf raises derives from :class:`EdgeperfError`, and each module's own
error derives from the kind below that says what went wrong (``BoardError`` and
``SettingsError`` are UsageErrors, ``SshLink``'s ``HostKeyError`` is a LinkError, ...), so
a lab script can catch as broadly or as narrowly as it needs. Messages name the thing and
the fix.
"""

from __future__ import annotations


class EdgeperfError(Exception):
    """Anything edgeperf refuses or fails at."""


class UsageError(EdgeperfError, ValueError):
    """Bad arguments, settings, profiles or input files: nothing was run; fix the call."""


class LinkError(EdgeperfError):
    """The link to a device cannot be opened or used (SSH, serial, a local process)."""


class RunError(EdgeperfError):
    """A run could not start (a model that cannot be run, a device that refused its setup);
    nothing was measured."""


class AgentError(EdgeperfError):
    """The device's agent refused a request; ``kind`` is its error class, ``op`` the request."""

    def __init__(self, message: str, kind: str = "", op: str = "") -> None:
        super().__init__(message)
        self.kind, self.op = kind, op


class AgentTimeout(AgentError):
    """The agent said nothing for the request's idle timeout."""


class AgentDied(AgentError):
    """The link closed while a request was outstanding (or a connected device's agent died
    before: connect again)."""


class MeterError(EdgeperfError):
    """A power meter failed or refused; the message names the meter, what it said and the fix."""


class TaskError(EdgeperfError):
    """A task, its dataset, its reference model or its output audit cannot be used."""


__all__ = ["AgentDied", "AgentError", "AgentTimeout", "EdgeperfError", "LinkError", "MeterError",
           "RunError", "TaskError", "UsageError"]
