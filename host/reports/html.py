"""One self-contained HTML page of recorded runs: a table per board and model, each run's
latency distribution (from the store's raw latencies), power trace (the run directory's
power_trace.npz, when there is one) and energy, and the comparison with a previous set of
runs, by ``edgeperf.store.compare`` (its statistics and verdicts, not redone here).

Nothing is fetched to view it: no scripts, no stylesheets, no images by address; the plots
are inline SVG drawn here. Every string from the store is escaped.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf import __version__
from edgeperf.errors import UsageError
from edgeperf.reports import svg
from edgeperf.store import compare
from edgeperf.store.db import Store
from edgeperf.store.query import get_latencies, pairs, select_runs

# the run table's columns: (store column, heading, how it is shown)
COLUMNS = [("id", "run", "int"), ("scenario", "scenario", "text"), ("result", "result", "text"),
           ("metric_value", "scored figure", "metric"), ("p50_ns", "p50", "ns"),
           ("p90_ns", "p90", "ns"), ("p99_ns", "p99", "ns"), ("qps", "QPS", "num"),
           ("energy_j", "energy (J)", "num"), ("avg_watts", "avg power (W)", "num"),
           ("uj_per_inference", "energy/query (uJ)", "num"), ("cv", "stability: CV", "num")]
_CSS = """body{font-family:sans-serif;margin:24px;color:#222;background:#fff}
table{border-collapse:collapse;margin:8px 0 18px}td,th{border:1px solid #bbb;padding:3px 8px}
th{background:#e8ecf5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.flagged{color:#b00;font-weight:bold}.ok{color:#070}.note{color:#555;font-size:90%}
.plots{display:flex;flex-wrap:wrap;gap:10px}h2{border-bottom:2px solid #4a7bd0}"""


def fmt_ns(v: float | None, signed: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    sign = "+" if signed else ""
    return f"{v / 1e6:{sign}.3f} ms" if abs(v) >= 1e7 else f"{v / 1e3:{sign}.2f} us"


def fmt_num(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.6g}"


def fmt_cell(kind: str, value: Any, row: dict[str, Any]) -> str:
    """The text a table cell shows for ``value`` (the store's)."""
    if value is None:
        return "-"
    if kind == "ns":
        return fmt_ns(value)
    if kind == "num":
        return fmt_num(value)
    if kind == "metric":
        unit = row.get("metric_unit") or ""
        shown = fmt_ns(value) if unit == "ns" else f"{fmt_num(value)} {unit}".strip()
        return f"{row.get('metric_name') or ''}: {shown}"
    return str(value)


def _value(fig_unit: str, v: float | None) -> str:
    return fmt_ns(v) if fig_unit == "ns" else fmt_num(v)


def _stability(row: dict[str, Any], lat: tuple[np.ndarray, int] | None) -> float | None:
    if lat is None or not len(lat[0]):
        return None
    values = compare.offline_intervals(*lat) if row.get("scenario") == "Offline" else lat[0]
    return compare.stability(values).cv


class Report:
    """The page's parts, gathered from a store, then ``html()``."""

    def __init__(self, st: Store, title: str, **compare_kw: Any) -> None:
        self.st, self.title, self.compare_kw = st, title, compare_kw
        self.runs: list[tuple[str, dict[str, Any]]] = []  # (which set, row)
        self.latencies: dict[int, tuple[np.ndarray, int] | None] = {}
        self.comparisons: list[tuple[dict[str, Any], dict[str, Any], Any]] = []
        self.notes: list[str] = []
        self.against = ""

    def lat(self, run_id: int) -> tuple[np.ndarray, int] | None:
        if run_id not in self.latencies:
            self.latencies[run_id] = get_latencies(self.st, run_id)
        return self.latencies[run_id]

    def add_runs(self, label: str, rows: list[dict[str, Any]]) -> None:
        seen = {r["id"] for _, r in self.runs}
        self.runs += [(label, r) for r in rows if r["id"] not in seen]

    def compare(self, a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]]) -> None:
        matched, lonely = pairs(a_rows, b_rows)
        self.notes += lonely
        for a, b in matched:
            if a["kind"] != "loadgen" or b["kind"] != "loadgen":
                self.notes.append(f"runs {a['id']} and {b['id']}: MLPerf Tiny runs are not "
                                  "compared")
            elif a["scenario"] != b["scenario"]:
                self.notes.append(f"run {a['id']} is {a['scenario']} and run {b['id']} "
                                  f"{b['scenario']}: not compared")
            else:
                self.comparisons.append((a, b, compare.compare_runs(
                    a, b, self.lat(a["id"]), self.lat(b["id"]), **self.compare_kw)))

    # ------------------------------------------------------------ the page
    def html(self) -> str:
        flagged = sum(c.flagged for _, _, c in self.comparisons)
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{escape(self.title)}</title><style>{_CSS}</style></head><body>",
                 f"<h1>{escape(self.title)}</h1>",
                 f'<p class="note">{len(self.runs)} runs from results store '
                 f"{escape(str(self.st.where))}; made {when} by edgeperf {escape(__version__)}."
                 + (f" {len(self.comparisons)} compared with {escape(self.against)}, "
                    f"{flagged} flagged." if self.against else "") + "</p>"]
        if self.comparisons or self.notes:
            parts.append(self._comparison_html())
        groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        for label, r in self.runs:
            groups.setdefault((r.get("board") or "-", r.get("task") or r.get("model") or "-"),
                              []).append((label, r))
        for (board, model), runs in groups.items():
            parts.append(self._group_html(board, model, runs))
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def _group_html(self, board: str, model: str, runs: list[tuple[str, dict[str, Any]]]
                    ) -> str:
        gid = f"{board} / {model}"
        out = [f'<section class="cell" data-board="{escape(board)}" data-model="{escape(model)}">',
               f"<h2>Board {escape(board)} &middot; model {escape(model)}</h2>",
               '<table class="runs"><tr><th>set</th>'
               + "".join(f"<th>{escape(h)}</th>" for _, h, _ in COLUMNS) + "</tr>"]
        plots = []
        for label, r in runs:
            lat = self.lat(r["id"])
            values = {**r, "cv": _stability(r, lat)}
            cells = [f"<td>{escape(label)}</td>"]
            for key, _, kind in COLUMNS:
                v = values.get(key)
                cls = ' class="n"' if kind in ("int", "ns", "num") else ""
                raw = "" if v is None else repr(v) if isinstance(v, float) else str(v)
                cells.append(f'<td{cls} data-key="{key}" data-value="{escape(raw)}">'
                             f"{escape(fmt_cell(kind, v, r))}</td>")
            out.append(f'<tr data-run="{r["id"]}">' + "".join(cells) + "</tr>")
            plots += self._plots(r, lat, f"run {r['id']} ({r.get('scenario') or r.get('mode')})")
        out.append("</table>")
        energy = [r for _, r in runs if r.get("energy_j") is not None]
        if not energy:
            out.append(f'<p class="note">No power meter on {escape(gid)}: no energy measured.'
                       "</p>")
        out.append('<div class="plots">' + "".join(plots) + "</div></section>")
        return "\n".join(out)

    def _plots(self, r: dict[str, Any], lat: tuple[np.ndarray, int] | None, what: str
               ) -> list[str]:
        out = []
        if lat is not None and len(lat[0]):
            marks = {f"p{p}": r[f"p{p}_ns"] for p in (50, 90, 99) if r.get(f"p{p}_ns")}
            kept = "" if lat[1] <= len(lat[0]) else f", {len(lat[0])} of {lat[1]} kept"
            out.append(svg.latency_histogram(lat[0], f"latency distribution, {what}{kept}",
                                             marks=marks))
        trace = _power_trace(Path(r.get("run_dir") or ""))
        if trace is not None:
            out.append(svg.power_trace(*trace, title=f"power trace, {what}"))
        return out

    def _comparison_html(self) -> str:
        out = [f"<section class=\"comparison\"><h2>Comparison with {escape(self.against)}</h2>"]
        for note in self.notes:
            out.append(f'<p class="note">{escape(note)}</p>')
        for a, b, c in self.comparisons:
            head = (f"{a.get('board')} / {a.get('task') or a.get('model')} vs "
                    f"{b.get('task') or b.get('model')} / {c.scenario}: run {c.a_id} (A) "
                    f"against run {c.b_id} (B)")
            out.append(f"<h3>{escape(head)}" + (' <span class="flagged">FLAGGED</span>'
                                                 if c.flagged else "") + "</h3>")
            out.append('<table class="compare"><tr><th>figure</th><th>A</th><th>B</th>'
                       f"<th>change</th><th>test</th><th>p</th><th>{escape(c.ci_label)} of "
                       "B-A</th><th>verdict</th></tr>")
            for f in c.figures:
                ch = "-" if f.change is None else f"{f.change * 100:+.2f}%"
                p = "-" if f.p is None else ("<1e-300" if f.p == 0 else f"{f.p:.3g}")
                ci = "-" if f.ci is None else (f"[{_value(f.unit, f.ci[0])}, "
                                               f"{_value(f.unit, f.ci[1])}]")
                cls = "flagged" if f.verdict.startswith("FLAGGED") else "ok" if f.verdict else ""
                name = f.name + (" (scored)" if f.scored else "")
                out.append(
                    f"<tr><td>{escape(name)}</td><td class=\"n\">{escape(_value(f.unit, f.a))}"
                    f"</td><td class=\"n\">{escape(_value(f.unit, f.b))}</td><td class=\"n\">"
                    f"{ch}</td><td>{escape(f.test or '-')}</td><td class=\"n\">{p}</td>"
                    f"<td>{escape(ci)}</td><td class=\"{cls}\">{escape(f.verdict or '')}</td>"
                    "</tr>")
            out.append("</table>")
            out += [f'<p class="note">{escape(n)}</p>' for n in c.notes]
        out.append("</section>")
        return "\n".join(out)


def _power_trace(run_dir: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None
                                         ] | None:
    """(t_ns, watts, measured window) of the run's testing phase, or None."""
    path = run_dir / "power_trace.npz"
    if not str(run_dir) or not path.is_file():
        return None
    try:
        with np.load(path) as z:
            if "testing_t_ns" not in z.files or "testing_watts" not in z.files:
                return None
            t, w = z["testing_t_ns"], z["testing_watts"]
        win = None
        res = run_dir / "result.json"
        if res.is_file():
            w_rec = (json.loads(res.read_text()).get("power") or {}).get("window") or {}
            if "host_start_ns" in w_rec and "host_end_ns" in w_rec:
                win = (float(w_rec["host_start_ns"]), float(w_rec["host_end_ns"]))
    except (OSError, ValueError):
        return None
    return (t, w, win) if len(t) else None


def campaign_report(st: Store, campaign: str, against: str | None = None,
                    **compare_kw: Any) -> str:
    """A campaign's page (its latest run of each board/model/scenario), compared with the
    campaign ``against`` when given."""
    rep = Report(st, f"edgeperf report: campaign {campaign}", **compare_kw)
    rows = select_runs(st, f"campaign={campaign}")
    rep.add_runs(f"campaign {campaign}", rows)
    if against:
        rep.against = f"campaign {against}"
        rep.compare(select_runs(st, f"campaign={against}"), rows)
    return rep.html()


def compare_report(st: Store, a: str, b: str, **compare_kw: Any) -> str:
    """``edgeperf compare A B``'s page: both sides' runs and B against A."""
    rep = Report(st, f"edgeperf report: {b} against {a}", **compare_kw)
    a_rows, b_rows = select_runs(st, a), select_runs(st, b)
    rep.add_runs(f"A ({a})", a_rows)
    rep.add_runs(f"B ({b})", b_rows)
    rep.against = f"A ({a})"
    rep.compare(a_rows, b_rows)
    if not rep.comparisons and not rep.notes:
        raise UsageError(f"A ({a}) and B ({b}) have nothing to compare")
    return rep.html()
