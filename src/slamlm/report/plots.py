"""Dependency-free SVG line plots for the HTML report.

Example:
    >>> svg = line_plot_svg({"train": ([0, 1, 2], [3.0, 2.0, 1.5])}, title="loss", xlabel="step")
    >>> svg.startswith("<svg") and "polyline" in svg
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 0.5 and len(ticks) < 20:
        if t >= lo - step * 0.5:
            ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def line_plot_svg(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    width: int = 520,
    height: int = 300,
) -> str:
    """Render named (xs, ys) series as an SVG line chart with axes, ticks and a legend.

    Non-finite points are dropped; an empty input gives a chart that says "no data".
    """
    pts = {
        name: [(float(x), float(y)) for x, y in zip(xs, ys)
               if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
        for name, (xs, ys) in series.items()
    }
    pts = {k: v for k, v in pts.items() if v}
    left, right, top, bottom = 74, 16, 30, 44
    pw, ph = width - left - right, height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" '
           f'font-weight="bold">{html.escape(title)}</text>']
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888">no data</text></svg>')
        return "\n".join(out)
    xs_all = [p[0] for v in pts.values() for p in v]
    ys_all = [p[1] for v in pts.values() for p in v]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1), y1 + 0.5 * (abs(y1) or 1)
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    for t in _nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                       f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" font-size="11">{_fmt(t)}</text>')
    for t in _nice_ticks(x0, x1):
        if x0 <= t <= x1:
            out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#444"/>'
                       f'<text x="{sx(t):.1f}" y="{top + ph + 17}" text-anchor="middle" font-size="11">{_fmt(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" font-size="12">{html.escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{top + ph / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 12 {top + ph / 2})">{html.escape(ylabel)}</text>')
    for i, (name, p) in enumerate(pts.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(p))
        out.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="1.8" points="{coords}"/>')
        if len(p) == 1:
            x, y = p[0]
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 14 + 16 * i
        out.append(f'<line x1="{left + pw - 130}" x2="{left + pw - 112}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="3"/><text x="{left + pw - 106}" y="{ly}" '
                   f'font-size="11">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
