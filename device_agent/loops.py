"""The scenario loops' inner loops: the hot path.

Each loop runs queries [lo, hi) of one storage chunk and returns the index after the last
query it ran. Inside: the clock reads, the query's work (set inputs, invoke, read outputs),
the stores into preallocated arrays and one comparison with the next check time; nothing
else. The controller (scenarios.py) applies the stopping rules and sends finished
stretches between calls, never inside a scored interval.
"""

from __future__ import annotations

import time

clock = time.perf_counter_ns

def loop_single(invoke, order, issue, done, lo: int, hi: int, check_ns: int) -> int:
    pc = clock
    for j in range(lo, hi):
        s = order[j]
        t0 = pc()
        invoke(s)
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def loop_multi(calls, order, issue, done, lo: int, hi: int, check_ns: int, n: int) -> int:
    """``calls``: (invoker, k) for the query's n samples in order; one invoker for all of
    them, or (a run that logs outputs) one per sample, each keeping its own outputs."""
    pc = clock
    for j in range(lo, hi):
        base = j * n
        t0 = pc()
        for invoke, k in calls:
            invoke(order[base + k])
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def loop_batched(order, issue, done, lo: int, hi: int, check_ns: int, n: int,
                  parts) -> int:
    """MultiStream on a batched model: the query's n distinct samples in batches
    (``parts``: (gather invoker, offset, count) of each invoke; a partial batch is padded by
    the backend)."""
    pc = clock
    for j in range(lo, hi):
        base = j * n
        t0 = pc()
        for gather, off, cnt in parts:
            gather(order, base + off, cnt)
        t1 = pc()
        issue[j] = t0
        done[j] = t1
        if t1 >= check_ns:
            return j + 1
    return hi


def loop_server(invoke, order, sched, done, lo: int, hi: int, start: int, check_ns: int,
                 gap_ns: int, hard_ns: int) -> int:
    """``sched`` holds each query's scheduled offset from ``start``; an issued query's entry
    becomes its absolute scheduled time (its issue time in the QueryLog). Past ``check`` the
    loop returns only in an idle gap of at least ``gap_ns`` before the next arrival (or at
    ``hard``), so whatever the controller does then delays no arrival."""
    pc = clock
    sleep = time.sleep
    for j in range(lo, hi):
        at = start + sched[j]
        now = pc()
        if now < at:
            if at - now > 2_000_000:
                sleep((at - now - 1_000_000) / 1e9)
            while pc() < at:
                pass
        invoke(order[j])
        t1 = pc()
        sched[j] = at
        done[j] = t1
        if t1 >= check_ns and (t1 >= hard_ns or j + 1 == hi
                               or start + sched[j + 1] - t1 >= gap_ns):
            return j + 1
    return hi


def loop_server_batched(gather, order, sched, done, lo: int, hi: int, start: int,
                         check_ns: int, gap_ns: int, hard_ns: int, batch: int,
                         ret_at: int) -> int:
    """Server on a batched model: the queries already due when the device is free (up to a
    batch, each a distinct sample) go in one invoke and complete together. Returns also
    after the batch that reaches ``ret_at`` (a query whose outputs are to be logged)."""
    pc = clock
    sleep = time.sleep
    j = lo
    while j < hi:
        at = start + sched[j]
        now = pc()
        if now < at:
            if at - now > 2_000_000:
                sleep((at - now - 1_000_000) / 1e9)
            while now < at:
                now = pc()
        m = 1
        lim = min(hi - j, batch)
        while m < lim and start + sched[j + m] <= now:
            m += 1
        gather(order, j, m)
        t1 = pc()
        for k in range(j, j + m):
            sched[k] = start + sched[k]
            done[k] = t1
        j += m
        if j >= ret_at or (t1 >= check_ns and (t1 >= hard_ns or j == hi
                                               or start + sched[j] - t1 >= gap_ns)):
            return j
    return hi


def loop_offline(invoke, order, done, lo: int, m: int, stop_ns: int) -> int:
    pc = clock
    for k in range(lo, m):
        invoke(order[k])
        t = done[k] = pc()
        if t >= stop_ns:
            return k + 1
    return m


def loop_offline_batched(gather, order, done, m: int, stop_ns: int, batch: int,
                          first: int) -> int:
    """Offline on a batched model: whole batches of distinct samples from ``first`` on;
    returns where the last whole batch of this chunk ends (the caller joins a batch that
    straddles two chunks)."""
    pc = clock
    k = first
    last = m - batch
    while k <= last:
        gather(order, k, batch)
        t = pc()
        for r in range(k, k + batch):
            done[r] = t
        k += batch
        if t >= stop_ns:
            return -k
    return k
