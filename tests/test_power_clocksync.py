"""ClockSync: the bound it states must hold, against clocks whose true relation is known.

The local board's agent stamps its clock with ``time.perf_counter_ns`` and the host clock is
``time.monotonic_ns``; on Linux both read CLOCK_MONOTONIC, so the true offset between them
is zero. A deliberate offset (and drift) is put on the host side, through the host clock
ClockSync is given: the truth is then exactly that offset.
"""

from __future__ import annotations

import sys
import time

import pytest

from edgeperf.links.local import LocalLink
from edgeperf.power.clocksync import ClockMap, ClockSync, Exchange, SyncPoint, estimate
from edgeperf.run.client import AgentClient
from edgeperf.testing.emulators.uart_link import UartRateLink

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_MONOTONIC identity")


def _same_clock() -> None:
    """The premise of these tests, checked rather than assumed."""
    a, b = time.get_clock_info("perf_counter"), time.get_clock_info("monotonic")
    assert a.implementation == b.implementation == "clock_gettime(CLOCK_MONOTONIC)"


@pytest.fixture
def agent(local_client):
    _same_clock()
    return local_client


def test_estimate_intersects_the_kept_exchanges():
    # device reads at 1000 + true offset 50; exchanges with different delays either side
    xs = [Exchange(h0=1000 + 50 - a, h1=1000 + 50 + b, device=1000)
          for a, b in [(30, 5), (4, 40), (10, 10), (500, 500), (7, 3)]]
    sp = estimate(xs, keep=4, resolution_ns=0)
    assert sp.method == "intersection" and sp.kept == 4 and sp.rtt_min_ns == 10
    # intersection of [h0-d, h1-d]: lo = max(20, 46, 40, 43) = 46, hi = min(55, 90, 60, 53)
    assert (sp.offset_ns, sp.uncertainty_ns) == ((46 + 53) // 2, (53 - 46 + 1) // 2)
    assert abs(sp.offset_ns - 50) <= sp.uncertainty_ns


def test_wire_time_narrows_the_bound_on_a_slow_link():
    # 11.52 bytes/ms (115200 baud): 40 request bytes and 90 reply bytes take 3.47 + 7.81 ms
    rate = 11520.0
    x = Exchange(h0=0, h1=12_000_000, device=5_000_000, req_bytes=40, reply_bytes=90)
    plain = estimate([x], keep=1, resolution_ns=0)
    narrow = estimate([x], keep=1, link_bytes_per_s=rate, resolution_ns=0)
    assert plain.uncertainty_ns == 6_000_000
    assert narrow.uncertainty_ns < 400_000 and narrow.wire_ns == 3_472_222 + 7_812_500
    # the device read its clock 3.5 ms after h0, as the wire forces: still inside the bound
    assert abs(narrow.offset_ns - (3_500_000 - 5_000_000)) <= narrow.uncertainty_ns
    # a stated rate the link beats (replies faster than the wire allows) is not trusted
    fast = Exchange(h0=0, h1=1_000_000, device=0, req_bytes=40, reply_bytes=90)
    assert estimate([fast], keep=1, link_bytes_per_s=rate, resolution_ns=0).wire_ns == 0


def test_inconsistent_exchanges_fall_back_to_the_shortest():
    xs = [Exchange(0, 10, 0), Exchange(1000, 1010, 0)]  # a clock stepped between them
    sp = estimate(xs, keep=2, resolution_ns=0)
    assert sp.method == "min-rtt" and sp.uncertainty_ns == 5


def test_clock_map_interpolates_offset_and_bound():
    a = SyncPoint(1_000_000_000, 100, 20, 40, 40, 8, 4, "intersection")
    b = SyncPoint(3_000_000_000, 2_100, 40, 80, 80, 8, 4, "intersection")
    cm = ClockMap(a, b)
    assert cm.drift_ppm == pytest.approx(1.0)
    assert cm.to_host(2_000_000_000) == 2_000_000_000 + 1_100
    assert cm.uncertainty_ns(2_000_000_000) == 30
    assert cm.uncertainty_ns(4_000_000_000) == 40 + 30  # the slope's bound, 1 s beyond
    single = ClockMap(a)
    assert single.to_host(2_000_000_000) == 2_000_000_100
    assert single.uncertainty_ns(2_000_000_000) == 20 + 200_000  # 200 ppm over 1 s


def test_offset_recovered_within_the_stated_bound(agent):
    offset = 123_456_789_012  # a deliberate 123 s offset, put on the host's side
    cs = ClockSync(agent, host_clock=lambda: time.monotonic_ns() + offset)
    for _ in range(3):
        sp = cs.sync()
        assert abs(sp.offset_ns - offset) <= sp.uncertainty_ns, sp
        assert sp.uncertainty_ns <= 1_000_000  # the goal: 1 ms on a local/SSH link
        assert sp.kept == 8 and sp.exchanges == 32


def test_drift_recovered_and_mapping_holds_between_syncs(agent):
    ppm = 1000.0  # exaggerated drift, so the estimate is tested, not swamped by noise
    base = time.monotonic_ns()

    def host():
        t = time.monotonic_ns()
        return t + int((t - base) * ppm * 1e-6) + 5_000_000

    cs = ClockSync(agent, host_clock=host)
    before = cs.sync()
    time.sleep(0.5)
    after = cs.sync()
    cm = ClockMap(before, after)
    span = after.device_ns - before.device_ns
    assert abs(cm.drift_ppm - ppm) * 1e-6 * span <= before.uncertainty_ns + after.uncertainty_ns
    for d in (before.device_ns, (before.device_ns + after.device_ns) // 2, after.device_ns):
        true_host = d + int((d - base) * ppm * 1e-6) + 5_000_000
        assert abs(cm.to_host(d) - true_host) <= cm.uncertainty_ns(d) + 1


def test_serial_rate_link_meets_2ms_with_wire_time():
    _same_clock()
    link = UartRateLink(LocalLink(), 115200)
    client = AgentClient(link)
    client.hello()
    try:
        offset = -7_000_000_000
        cs = ClockSync(client, exchanges=16, keep=6, link_bytes_per_s=link.bytes_per_s,
                       host_clock=lambda: time.monotonic_ns() + offset)
        sp = cs.sync()
        assert sp.rtt_min_ns > 9_000_000  # ~130 bytes at 11.5 bytes/ms
        assert sp.wire_ns > 9_000_000
        assert abs(sp.offset_ns - offset) <= sp.uncertainty_ns <= 2_000_000
    finally:
        client.bye()
        link.close()
