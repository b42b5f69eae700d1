"""Performance regression tests of a model, as a team writes them with edgeperf's plugin."""

from __future__ import annotations

BUSY_US = 100  # synthetic:busy:100 spins 100 us an inference: the floor of every latency


def test_busy_model_latency(edgeperf_run):
    r = edgeperf_run(model=f"synthetic:busy:{BUSY_US}", scenario="SingleStream")
    s = r.summary
    assert s.result == "VALID", s.invalid_reasons
    p90_ns = s.samples.percentiles["90.00"]  # the 90th percentile of the sample latencies
    assert BUSY_US * 1_000 <= p90_ns < BUSY_US * 1_000 * 100  # generous: a shared CI host
    assert s.metric >= p90_ns  # SingleStream's metric: the early-stopping p90 estimate, ns
    assert (r.out_dir / "mlperf_log_summary.txt").exists()


def test_settings_given_by_the_test(edgeperf_run):
    r = edgeperf_run(model="synthetic:null", min_query_count=200, min_duration_ms=0)
    assert r.summary.query_count >= 200


def test_board_profile(edgeperf_device, request):
    assert edgeperf_device.profile.name == request.node.callspec.id


def test_needs_no_board(request):
    """A test that asks for no board: the plugin neither parametrizes it nor gives it a
    fixture of its own (nothing autouse)."""
    assert not any(name.startswith("edgeperf") for name in request.fixturenames)
    assert not hasattr(request.node, "callspec")
