"""The CSV importer, and the Joulescope driver against a fake at the joulescope package's API."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from edgeperf.power.drivers.csv_file import CsvMeter, parse_time
from edgeperf.power.energy import integrate
from edgeperf.power.meter import MeterError, open_meter

T0 = 1_700_000_000  # epoch seconds


def _meter(path, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    m = open_meter(f"csv:{path}" + (f"?{q}" if q else ""))
    assert isinstance(m, CsvMeter)
    m.start("m")
    m.stop()
    return m


def test_watts_column_with_epoch_seconds(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("timestamp,power_w\n" + "".join(f"{T0 + i * 0.5},{2 + i}\n" for i in range(5)))
    tr = _meter(f).trace()
    assert tr.watts.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0] and tr.interval_ns == 0
    assert (tr.wall_ns() - T0 * 10**9).tolist() == [0, 500_000_000, 10**9, 1_500_000_000,
                                                    2 * 10**9]
    t0 = int(tr.t_ns[0])
    assert integrate(tr, t0, t0 + 2 * 10**9).energy_j == pytest.approx(8.0)  # trapezoid


def test_volts_and_amps_in_milliamps_with_iso_times(tmp_path):
    f = tmp_path / "va.csv"
    f.write_text("Time,Voltage,current_mA\n"
                 "2023-11-14T22:13:20Z,5.0,400\n"
                 "2023-11-14T22:13:21.250000,5.0,600\n")
    tr = _meter(f).trace()
    assert tr.watts.tolist() == [2.0, 3.0] and tr.amps.tolist() == [0.4, 0.6]
    assert (tr.wall_ns()[1] - tr.wall_ns()[0]) == 1_250_000_000  # naive ISO = UTC, as Z


def test_named_columns_offset_and_averaging(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("t_ms,chan_a,chan_b\n"
                 f"{T0 * 1000},1.5,9\n{T0 * 1000 + 100},2.5,9\n")
    tr = _meter(f, time="t_ms", watts="chan_a", offset_s="0.25", interval_ms="100").trace()
    assert tr.watts.tolist() == [1.5, 2.5] and tr.interval_ns == 100_000_000
    assert tr.wall_ns()[0] == T0 * 10**9 + 250_000_000


def test_spl_file_is_read_as_is(tmp_path):
    f = tmp_path / "spl.txt"
    f.write_text("Time,11-14-2023 22:13:20.000,Watts,4.000000,Volts,230.000000,Amps,0.017391,"
                 "PF,1.000000,Mark,x\n"
                 "Time,11-14-2023 22:13:21.000,Watts,6.000000,Volts,230.000000,Amps,0.026087,"
                 "PF,1.000000,Mark,x\n")
    tr = _meter(f, interval_ms="1000").trace()
    assert tr.watts.tolist() == [4.0, 6.0] and tr.interval_ns == 1_000_000_000
    assert tr.wall_ns()[0] == T0 * 10**9


def test_time_parsing_units():
    assert parse_time("1700000000", "time") == T0 * 10**9
    assert parse_time("1700000000123", "time") == T0 * 10**9 + 123_000_000
    assert parse_time("1700000000123456", "time") == T0 * 10**9 + 123_456_000
    assert parse_time("1700000000123456789", "time") == T0 * 10**9 + 123_456_789
    assert parse_time("12.5", "t_s") == 12_500_000_000
    with pytest.raises(ValueError, match="cannot read the time 'noon'"):
        parse_time("noon", "time")


def test_csv_errors_name_the_fix(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("when,what\n1,2\n3,4\n")
    with pytest.raises(MeterError, match=r"no time column among when, what; name it with "
                                         r"\?time=COLUMN"):
        _meter(f).trace()
    f.write_text("time,volts\n1,2\n3,4\n")
    with pytest.raises(MeterError, match="need a watts column, or volts and amps"):
        _meter(f).trace()
    m = open_meter(f"csv:{tmp_path / 'missing.csv'}")
    m.start("x")
    with pytest.raises(MeterError, match="does not exist; copy the meter's log there"):
        m.stop()


# ---------------------------------------------------------------- Joulescope


class FakeJoulescope:
    """What the driver uses of a joulescope Device: open, parameter_set, read, close.
    It draws 12 mA at 3.3 V; read blocks for the duration asked, as the real one does."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.params: dict[str, object] = {}
        self.opened = self.closed = False
        self.reads = 0
        self.fail_after = fail_after

    def __str__(self) -> str:
        return "Joulescope:001234"

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def parameter_set(self, name: str, value: object) -> None:
        self.params[name] = value

    def read(self, contiguous_duration: float) -> np.ndarray:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise OSError("USB device disconnected")
        time.sleep(contiguous_duration)
        n = int(round(contiguous_duration * self.params["sampling_frequency"]))
        return np.column_stack([np.full(n, 0.012), np.full(n, 3.3)])


@pytest.fixture
def fake_joulescope(monkeypatch):
    dev = FakeJoulescope()
    mod = types.ModuleType("joulescope")
    mod.scan_require_one = lambda config="auto": dev
    mod.scan = lambda config="auto": [dev]
    monkeypatch.setitem(sys.modules, "joulescope", mod)
    return dev


def test_joulescope_trace_from_chunks(fake_joulescope):
    m = open_meter("joulescope?freq=2000&chunk_s=0.1")
    assert fake_joulescope.opened and fake_joulescope.params == {"sampling_frequency": 2000}
    m.start("j")
    time.sleep(0.45)
    m.stop()
    tr = m.trace()
    m.close()
    assert fake_joulescope.closed
    assert len(tr) == 200 * fake_joulescope.reads
    assert np.allclose(tr.watts, 0.012 * 3.3) and np.allclose(tr.volts, 3.3)
    steps = np.diff(tr.t_ns)
    assert (steps[steps < 2_000_000] == 500_000).mean() > 0.9  # 2 kHz inside each chunk
    assert m.describe() == "joulescope?freq=2000&chunk_s=0.1"


def test_joulescope_by_serial_and_failure(monkeypatch, fake_joulescope):
    m = open_meter("joulescope:001234?chunk_s=0.05")
    fake_joulescope.fail_after = 2
    m.start("j")
    time.sleep(0.3)
    with pytest.raises(MeterError, match="failed during the measurement: OSError: USB device "
                                         "disconnected"):
        m.stop()
    assert len(m.trace()) == 2 * 50
    with pytest.raises(MeterError, match="no Joulescope with serial 999"):
        open_meter("joulescope:999")


def test_joulescope_package_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "joulescope", None)
    with pytest.raises(MeterError, match=r"pip install 'edgeperf\[joulescope\]'"):
        open_meter("joulescope")
