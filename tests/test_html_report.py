"""``edgeperf report --campaign/--compare`` (also ``html-report``): real recorded runs of
busy:100 and busy:130 as one self-contained HTML page, its table's numbers those of the
store, and the page rendered by a real headless browser (Debian's chromium): a screenshot
and the rendered text."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgeperf.cli.main import main
from edgeperf.reports import svg
from edgeperf.reports.html import COLUMNS, fmt_cell
from edgeperf.store import compare, db, record
from edgeperf.store.query import get_latencies, get_run

RUN = ["run", "--preset", "smoke", "--min-queries", "300", "--min-duration", "0.1",
       "--target-latency-ms", "0.05", "--quiet", "--scenario", "SingleStream"]
SIZE = (1280, 2000)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    url = str(tmp_path / "results.sqlite")
    monkeypatch.setenv("EDGEPERF_STORE", url)
    return url


def _run(tmp_path: Path, name: str, model: str, campaign: str) -> Path:
    out = tmp_path / name
    assert main([*RUN, "--model", model, "--out", str(out)]) == 0
    assert record.set_campaign(out, campaign) == 1
    return out


class _Cells(HTMLParser):
    """The run tables' cells: {run id: {key: (data-value, shown text)}}."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[int, dict[str, tuple[str, str]]] = {}
        self._run: int | None = None
        self._cell: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-run" in a:
            self._run = int(a["data-run"])
            self.runs[self._run] = {}
        elif tag == "td" and "data-key" in a and self._run is not None:
            self._cell, self._text = (a["data-key"], a["data-value"]), ""

    def handle_data(self, data):
        if self._cell is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.runs[self._run][self._cell[0]] = (self._cell[1], self._text)
            self._cell = None
        elif tag == "tr":
            self._run = None


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page, re.I)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", page, re.I)
    assert not re.search(r"<(img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"url\(|@import", page, re.I)


def _assert_table_is_the_store(page: str, store: str, ids: list[int]) -> None:
    cells = _Cells()
    cells.feed(page)
    assert sorted(cells.runs) == sorted(ids)
    with db.open_store(store) as st:
        for rid in ids:
            row = get_run(st, rid)
            lat = get_latencies(st, rid)
            row["cv"] = compare.stability(lat[0]).cv
            for key, _, kind in COLUMNS:
                raw, shown = cells.runs[rid][key]
                v = row[key]
                if v is None:
                    assert (raw, shown) == ("", "-"), key
                elif isinstance(v, float):
                    assert float(raw) == v, key
                else:
                    assert raw == str(v), key
                assert shown == fmt_cell(kind, v, row), key
            assert row["p90_ns"] is not None and row["scenario"] == "SingleStream"


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: apt-get install chromium (scripts/test.sh "
                    "installs it)")
    return exe


def _browser(tmp_path: Path, page: Path, *what: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         f"--window-size={SIZE[0]},{SIZE[1]}", *what, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, cwd=tmp_path)


def _screenshot(tmp_path: Path, page: Path, png: Path) -> bytes:
    r = _browser(tmp_path, page, f"--screenshot={png}")
    assert png.is_file(), r.stderr[-2000:]
    return png.read_bytes()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_campaign_and_compare_reports_render_in_a_real_browser(store, tmp_path, capsys):
    _run(tmp_path, "prev", "synthetic:busy:100", "night-1")       # run 1
    _run(tmp_path, "fast", "synthetic:busy:100", "night-2")       # run 2
    _run(tmp_path, "slow", "synthetic:busy:130", "night-2")       # run 3

    camp = tmp_path / "campaign.html"
    assert main(["report", "--campaign", "night-2", "--against", "night-1",
                 "--out", str(camp)]) == 0
    page = camp.read_text()
    _assert_self_contained(page)
    _assert_table_is_the_store(page, store, [2, 3])
    assert "Comparison with campaign night-1" in page and "run 1 (A) against run 2 (B)" in page
    assert "run 3 (local synthetic:busy:130 SingleStream) of B has no partner" in page

    cmp_page = tmp_path / "compare.html"
    assert main(["html-report", "--compare", "1", "3", "--out", str(cmp_page)]) == 0
    text = cmp_page.read_text()
    _assert_self_contained(text)
    _assert_table_is_the_store(text, store, [1, 3])
    assert text.count("<svg") >= 2  # a latency distribution a run

    png = _screenshot(tmp_path, cmp_page, tmp_path / "shot.png")
    assert _png_size(png) == SIZE
    blank_html = tmp_path / "blank.html"
    blank_html.write_text("<!DOCTYPE html><html><body></body></html>")
    blank = _screenshot(tmp_path, blank_html, tmp_path / "blank.png")
    assert _png_size(blank) == SIZE
    assert len(png) > 4 * len(blank)  # not one colour: tables, text and plots drawn

    r = _browser(tmp_path, cmp_page, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = re.sub(r"<[^>]+>", " ", r.stdout)
    assert "Board local" in dom
    assert "synthetic:busy:100" in dom and "synthetic:busy:130" in dom
    (scored,) = re.findall(r"p90 latency \(scored\).*?</tr>", r.stdout, re.S)
    assert "FLAGGED (slower)" in scored
    assert "latency distribution, run 1" in dom and "latency distribution, run 3" in dom


def test_plots_escape_their_strings_and_draw_a_power_trace():
    rng = np.random.default_rng(1)
    hist = svg.latency_histogram(rng.normal(1e5, 1e4, 500), "a <b> & \"c\"",
                                 marks={"p90": 1.1e5})
    assert "a &lt;b&gt; &amp; &quot;c&quot;" in hist and "<b>" not in hist
    assert hist.count("<rect") > 10 and "<polyline" in hist and ">p90<" in hist
    t = np.arange(0, 2_000_000_000, 10_000_000)
    trace = svg.power_trace(t, 3 + np.sin(t / 1e8), "power", window=(5e8, 1.5e9))
    assert "<polyline" in trace and 'opacity="0.2"' in trace
    assert "http" not in hist + trace
    assert "<polyline" not in svg.power_trace(np.array([]), np.array([]), "empty")
