"""What of a run's QueryLog goes to the host, and when: the run's event sender.

``querylog`` (the run request's field) is

* ``full``: every row travels, as QueryLog stretches (raw or compact, ``querylog_encoding``);
* ``summary``: only the first ``head_rows`` rows travel (for the trace); the reply carries
  every latency, sorted (exact for LoadGen's scoring), and the log stays here for ``results``;
* ``auto``: full, unless the line would not carry the log while the run lasts. On a paced
  line (a serial port: the serving loop sets ``Agent.line_rate``) the sender projects from
  what the run has produced so far: when the log offered so far would need more line time
  than LINE_SHARE of the run's time so far plus GRACE_S (a log that grows faster than the
  line carries it, and is not small), the run goes on in summary mode (the rows already
  sent, at least ``head_rows``, are its head). A whole log thus needs at most LINE_SHARE
  of the run's length plus GRACE_S of line time, most of it while the run lasts; a longer
  one is summarised. On a pipe (stdio, SSH) the choice is always full. The reply says
  what was chosen and why (``querylog_mode``).

The sender never waits: a line that is behind declines a stretch (the sink returns False),
the runner keeps the rows and offers them again (scenarios.py). This module must run on
Python 3.9.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import qlcodec
from .dispatch import AgentError, Call
from .querylog import CHUNK, QueryLog

MODES = ("full", "summary", "auto")
# the QueryLog may take at most this share of the line while the run lasts, so that the
# line keeps room for the run's other traffic and its retransmissions
LINE_SHARE = 0.5
# payload bytes the reliable layer carries per line byte (measured 94-98%, docs/PERFORMANCE.md)
LINE_EFFICIENCY = 0.9
# seconds of line time a log may take beyond LINE_SHARE of the run: a short run's log of a
# few kilobytes goes whole, however fast it was produced
GRACE_S = 5.0
STRETCH_HEADER_BYTES = 192  # a compact stretch's event header and frame (170 measured)


class LogSender:
    """The run's event sink: ``sender(event, header, body)``; False when the line declined
    the offer. ``started_ns()`` is the run's start (0 before it) on ``time.perf_counter_ns``."""

    def __init__(self, call: Call, line_rate: Optional[float], started_ns: Any) -> None:
        req = call.header
        self.call = call
        self.encoding = req.get("querylog_encoding") or "raw"
        if self.encoding != "raw" and self.encoding not in qlcodec.ENCODINGS:
            raise AgentError("querylog_encoding %r: this agent knows raw, %s"
                             % (self.encoding, ", ".join(qlcodec.ENCODINGS)))
        self.requested = req.get("querylog") or "full"
        if self.requested not in MODES:
            raise AgentError("querylog %r: choose %s" % (self.requested, ", ".join(MODES)))
        self.head_rows = int(req.get("head_rows", 10000))
        self.started_ns = started_ns
        self.capacity = line_rate * LINE_EFFICIENCY if line_rate else None
        self.head: Optional[int] = self.head_rows if self.requested == "summary" else None
        self.reason = "requested"
        if self.requested == "auto":
            self.reason = ("the link is not a paced line: the whole log goes"
                           if self.capacity is None else "")
        self.bytes = 0  # QueryLog bytes offered, as they would cross the line
        self.declined = 0

    @property
    def summary(self) -> bool:
        return self.head is not None

    def mode(self) -> Dict[str, Any]:
        used = "summary" if self.summary else "full"
        reason = self.reason or ("the QueryLog took at most %d%% of the line's %.0f B/s "
                                 "(and %.0f s more)" % (LINE_SHARE * 100, self.capacity or 0,
                                                         GRACE_S))
        return {"requested": self.requested, "used": used, "reason": reason,
                "head_rows": self.head, "declined_offers": self.declined}

    def _project(self, first: int) -> None:
        """Auto mode, before offering a stretch: would the line carry the log in time?"""
        start = self.started_ns()
        elapsed = (time.perf_counter_ns() - start) / 1e9 if start else 0.0
        if elapsed <= 0 or self.capacity is None:
            return
        if self.bytes / self.capacity > LINE_SHARE * elapsed + GRACE_S:
            self.head = max(first, self.head_rows)
            self.reason = ("the QueryLog grew at %.0f B/s, more than %d%% of the line's "
                           "%.0f B/s: every latency goes, sorted (exact for scoring), and "
                           "the first %d rows in full; --querylog full forces the whole log"
                           % (self.bytes / elapsed, LINE_SHARE * 100, self.capacity,
                              self.head))

    def __call__(self, event: str, header: Dict[str, Any], body: bytes) -> bool:
        if event != "querylog":
            return self.call.emit(event, header, body)
        if self.head is None and self.requested == "auto" and not self.reason:
            wire_h, wire_b = self._encode(header, body)
            cost = len(wire_b) + STRETCH_HEADER_BYTES
            self.bytes += cost
            self._project(header["first"])
            if self.head is None:
                if self.call.emit(event, wire_h, wire_b):
                    return True
                self.bytes -= cost  # it is offered again later
                self.declined += 1
                return False
        if self.head is not None:
            if header["first"] >= self.head:
                return True  # summary mode: the rest stays on the device
            header, body = qlcodec.head_of(header, body, self.head - header["first"])
        if self.call.emit(event, *self._encode(header, body)):
            return True
        self.declined += 1
        return False

    def _encode(self, header: Dict[str, Any], body: bytes) -> Tuple[Dict[str, Any], bytes]:
        return (header, body) if self.encoding == "raw" else qlcodec.encode_stretch(header, body)


def latency_summary(log: QueryLog) -> Tuple[Dict[str, Any], bytes]:
    """What LoadGen's scoring reads, exactly: every latency (sorted, packed) and the last
    issue and completion times; the per-query log stays on the device for ``results``.
    The latencies are taken chunk by chunk into one array (8 bytes a row, sorted in place),
    not from a copy of the whole log."""
    n = log.rows
    lat = np.empty(n, np.int64)
    last_issue = last_done = log.start_ns
    for c, off, k in log._pieces(0, n):
        issue = np.frombuffer(log.issue[c], np.int64, k, 8 * off)
        done = np.frombuffer(log.done[c], np.int64, k, 8 * off)
        at = c * CHUNK + off
        np.subtract(done, issue, out=lat[at:at + k])
        last_issue, last_done = int(issue[-1]), max(last_done, int(done.max()))
    lat.sort()
    h, packed = qlcodec.encode_sorted_latencies(lat)
    return {"latency_summary": dict(
        h, final_issue_ns=last_issue - log.start_ns if n else 0,
        final_done_ns=last_done - log.start_ns if n else 0)}, packed
