"""--querylog summary keeps the per-query log on the device and sends the first stretch of it
and every latency: what is derived from the run's span must come from the run's own end, not
from the stretch. A full-length run found LoadGen's power_begin/power_end (and with a meter
the power window) spanning the stretch only: 0.085 s of a 600 s run."""

from __future__ import annotations

import json

import pytest

from edgeperf.cli.main import main
from edgeperf.outputs.detail import parse_detail
from edgeperf.power.spl import parse_time

# more queries than the 10,000 rows summary mode sends, however fast the machine runs them:
# at least 12,000 (--min-queries) and at least 0.5 s
RUN = ["run", "--model", "synthetic:busy:20", "--scenario", "SingleStream", "--preset", "smoke",
       "--min-duration", "0.5", "--min-queries", "12000", "--target-latency-ms", "0.01",
       "--quiet"]


def _window_ms(out) -> float:
    d = {e["key"]: e["value"] for e in parse_detail(out / "mlperf_log_detail.txt")
         if isinstance(e, dict) and "key" in e}
    return (parse_time(d["power_end"], "mdy") - parse_time(d["power_begin"], "mdy")) / 1e6


@pytest.mark.parametrize("querylog", ["full", "summary"])
def test_power_begin_to_end_spans_the_whole_run(tmp_path, querylog) -> None:
    out = tmp_path / querylog
    assert main([*RUN, "--querylog", querylog, "--out", str(out)]) == 0
    rec = json.loads((out / "result.json").read_text())
    assert rec["run"]["rows"] > 10_000  # more than the stretch summary mode sends
    assert _window_ms(out) >= 500  # the last query was issued at or after 0.5 s


def test_a_meter_in_summary_mode_measures_the_whole_run(tmp_path, monkeypatch) -> None:
    hw = tmp_path / "sysfs" / "class" / "hwmon" / "hwmon1"
    hw.mkdir(parents=True)
    for name, text in (("name", "ina219"), ("power1_input", "3250000"),
                       ("curr1_input", "650"), ("in1_input", "5000")):
        (hw / name).write_text(text + "\n")
    out = tmp_path / "run"
    monkeypatch.setenv("EDGEPERF_SYSFS_ROOT", str(tmp_path / "sysfs"))  # the local agent's
    code = main([*RUN, "--querylog", "summary", "--out", str(out), "--meter",
                 "sysfs:ina219?interval_ms=10"])
    power = json.loads((out / "result.json").read_text())["power"]
    # a loaded machine may delay the sampler past its interval: the power result is then
    # INVALID, naming the gap (a real gap), and the window still spans the run
    assert code == 0 or (code == 3 and power["invalid_reasons"] and all(
        "have a gap of" in why for why in power["invalid_reasons"])), power["invalid_reasons"]
    w = power["window"]
    assert (w["device_end_ns"] - w["device_start_ns"]) / 1e9 >= 0.5
    assert power["energy_j"] == pytest.approx(3.25 * power["window"]["seconds"], rel=0.05) \
        if "seconds" in w else power["energy_j"] >= 3.25 * 0.5 * 0.95
    assert _window_ms(out) >= 500


def test_a_summary_too_big_for_one_frame_is_paged_and_checked(local_client) -> None:
    """A 600 s Offline run's 72.6 M sorted latencies packed to 98 MB, over the 64 MB frame
    limit, and the run was lost. Past max_reply_bytes the reply carries only the header and
    the host pages the bytes in (sha256 checked): the same latencies as one frame gives."""
    client = local_client
    client.load_model("synthetic", kind="busy:5")
    settings = {"scenario": "SingleStream", "min_duration_ns": 0, "min_query_count": 30_000,
                "max_query_count": 30_000, "warmup_queries": 0}
    whole = client.run(settings, samples=None, sample_count=64, on_event=None,
                       querylog="summary")
    paged = client.run(settings, samples=None, sample_count=64, on_event=None,
                       querylog="summary", max_reply_bytes=1)
    assert "paged" not in whole["latency_summary"]
    h = paged["latency_summary"]
    assert h["paged"] is True and h["body_bytes"] > 1  # any packed body is paged past 1 byte
    assert len(paged["latencies_sorted_ns"]) == len(whole["latencies_sorted_ns"]) == 30_000
    assert (paged["latencies_sorted_ns"][1:] >= paged["latencies_sorted_ns"][:-1]).all()
