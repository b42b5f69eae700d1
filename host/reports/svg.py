"""Inline SVG plots drawn in Python (no JS, no network): a latency histogram with its CDF,
and a power trace. Every string that enters the markup is escaped."""

from __future__ import annotations

from html import escape

import numpy as np

W, H = 560, 220
_L, _R, _T, _B = 56, 48, 22, 36  # margins: left, right, top, bottom


def _frame(title: str, body: list[str], x_label: str, y_label: str) -> str:
    pw, ph = W - _L - _R, H - _T - _B
    return (f'<svg width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>'
            f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>'
            f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="#f7f7fb" '
            f'stroke="#888"/>' + "".join(body) +
            f'<text x="{_L + pw / 2}" y="{H - 6}" font-size="11" text-anchor="middle">'
            f'{escape(x_label)}</text>'
            f'<text x="12" y="{_T + ph / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {_T + ph / 2})">{escape(y_label)}</text>'
            f'<text x="{_L}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>'
            "</svg>")


def _ticks(lo: float, hi: float, at_x: bool, scale) -> list[str]:
    out = []
    ph = H - _T - _B
    for v in np.linspace(lo, hi, 5):
        pos = scale(v)
        label = escape(f"{v:.4g}")
        if at_x:
            out.append(f'<line x1="{pos:.1f}" y1="{_T + ph}" x2="{pos:.1f}" y2="{_T + ph + 4}" '
                       f'stroke="#444"/><text x="{pos:.1f}" y="{_T + ph + 15}" font-size="10" '
                       f'text-anchor="middle">{label}</text>')
        else:
            out.append(f'<line x1="{_L - 4}" y1="{pos:.1f}" x2="{_L}" y2="{pos:.1f}" '
                       f'stroke="#444"/><text x="{_L - 6}" y="{pos + 3:.1f}" font-size="10" '
                       f'text-anchor="end">{label}</text>')
    return out


def latency_histogram(latencies_ns: np.ndarray, title: str, bins: int = 40,
                      marks: dict[str, float] | None = None) -> str:
    """A histogram of the latencies (in us; those above the 99th percentile in the last bin,
    so that a few outliers do not squash the rest) with the CDF
    (right axis, 0-1) over it and vertical lines at ``marks`` (label -> ns)."""
    v = np.sort(np.asarray(latencies_ns, np.float64)) / 1e3
    if not len(v):
        return _frame(title, [], "latency (us)", "queries")
    lo, hi = float(v[0]), float(v[min(len(v) - 1, int(len(v) * 0.99))])
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    pw, ph = W - _L - _R, H - _T - _B
    top = max(1, int(counts.max()))
    sx = lambda x: _L + (x - lo) / (hi - lo) * pw  # noqa: E731
    sy = lambda y: _T + ph - y / top * ph  # noqa: E731
    body = []
    for c, e0, e1 in zip(counts, edges[:-1], edges[1:], strict=True):
        if c:
            bw = max(0.5, sx(e1) - sx(e0) - 0.5)
            body.append(f'<rect x="{sx(e0):.1f}" y="{sy(c):.1f}" width="{bw:.1f}" '
                        f'height="{ph * c / top:.1f}" fill="#4a7bd0"/>')
    cdf_x = np.clip(v, lo, hi)
    pick = np.unique(np.linspace(0, len(v) - 1, min(len(v), 200)).astype(int))
    pts = " ".join(f"{sx(cdf_x[i]):.1f},{_T + ph - (i + 1) / len(v) * ph:.1f}" for i in pick)
    body.append(f'<polyline points="{pts}" fill="none" stroke="#d0442a" stroke-width="1.5"/>')
    for label, ns in (marks or {}).items():
        x = ns / 1e3
        if lo <= x <= hi:
            body.append(f'<line x1="{sx(x):.1f}" y1="{_T}" x2="{sx(x):.1f}" y2="{_T + ph}" '
                        f'stroke="#222" stroke-dasharray="3,2"/><text x="{sx(x) + 2:.1f}" '
                        f'y="{_T + 10}" font-size="10">{escape(label)}</text>')
    body += _ticks(lo, hi, True, sx) + _ticks(0, top, False, sy)
    body.append(f'<text x="{W - _R + 4}" y="{_T + 8}" font-size="10" fill="#d0442a">CDF 1</text>'
                f'<text x="{W - _R + 4}" y="{_T + ph}" font-size="10" fill="#d0442a">0</text>')
    return _frame(title, body, "latency (us); those above p99 in the last bin", "queries")


def power_trace(t_ns: np.ndarray, watts: np.ndarray, title: str,
                window: tuple[float, float] | None = None) -> str:
    """The meter's readings, W against s from the first (``window``: the measured span, in
    ns on the same clock, shaded)."""
    t, w = np.asarray(t_ns, np.float64), np.asarray(watts, np.float64)
    if not len(t) or len(t) != len(w):
        return _frame(title, [], "time (s)", "power (W)")
    t0 = float(t[0])
    x = (t - t0) / 1e9
    x_hi = float(x[-1]) or 1.0
    w_lo, w_hi = float(w.min()), float(w.max())
    if w_hi <= w_lo:
        w_lo, w_hi = w_lo - 0.5, w_hi + 0.5
    pw, ph = W - _L - _R, H - _T - _B
    sx = lambda v: _L + v / x_hi * pw  # noqa: E731
    sy = lambda v: _T + ph - (v - w_lo) / (w_hi - w_lo) * ph  # noqa: E731
    body = []
    if window is not None:
        a, b = ((window[0] - t0) / 1e9, (window[1] - t0) / 1e9)
        a, b = max(0.0, a), min(x_hi, b)
        if b > a:
            body.append(f'<rect x="{sx(a):.1f}" y="{_T}" width="{sx(b) - sx(a):.1f}" '
                        f'height="{ph}" fill="#5fbf6a" opacity="0.2"/>')
    pick = np.unique(np.linspace(0, len(x) - 1, min(len(x), 1000)).astype(int))
    pts = " ".join(f"{sx(x[i]):.1f},{sy(w[i]):.1f}" for i in pick)
    body.append(f'<polyline points="{pts}" fill="none" stroke="#4a7bd0" stroke-width="1.2"/>')
    body += _ticks(0, x_hi, True, sx) + _ticks(w_lo, w_hi, False, sy)
    return _frame(title, body, "time (s)", "power (W)")
