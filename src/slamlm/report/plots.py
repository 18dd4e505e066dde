"""Line plots for the HTML report, drawn by matplotlib and embedded as inline SVG.

Text stays text (``svg.fonttype: none``), so the page is small and searchable; the legend sits
below the axes (it never covers data) and the layout is constrained (labels are not clipped);
step axes get integer ticks; reference lines (e.g. the loss of a uniform guess) are dashed and
named in the legend. The root ``<svg>`` carries ``class="plot"`` and every data series a group
with ``class="series"`` (what the report's render check counts).

Example:
    >>> svg = line_plot_svg({"train": ([0, 1, 2], [3.0, 2.0, 1.5])}, title="loss", xlabel="step")
    >>> svg.startswith("<svg") and 'class="plot"' in svg and svg.count('class="series"')
    1
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Mapping, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _finite_points(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
    pts = []
    for x, y in zip(xs, ys):
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            continue
        if math.isfinite(fx) and math.isfinite(fy):
            pts.append((fx, fy))
    return sorted(pts)


def _figure(width: int, height: int):  # noqa: ANN202 - matplotlib Figure
    from matplotlib.figure import Figure

    return Figure(figsize=(width / 96, height / 96), dpi=96, layout="constrained")


def _draw(ax, pts: dict[str, list[tuple[float, float]]], uid: str,  # noqa: ANN001
          hlines: Mapping[str, float]) -> None:
    for i, (name, p) in enumerate(pts.items()):
        xs, ys = zip(*p)
        ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], lw=1.6, label=name,
                marker="o" if len(p) <= 30 else None, ms=3, gid=f"series-{uid}-{i}")
    for j, (name, y) in enumerate(hlines.items()):
        ax.axhline(y, color="#666", ls=(0, (4, 3)), lw=1.1, label=name, gid=f"ref-{uid}-{j}")


def _svg_text(fig, uid: str, width: int, height: int, title: str) -> str:  # noqa: ANN001
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": uid}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                 rf'<svg\1 width="{width}" height="{height}"', svg, count=1)
    label = title.replace('"', "&quot;").replace("<", "&lt;")
    svg = svg.replace("<svg", f'<svg class="plot" role="img" aria-label="{label}"', 1)
    return re.sub(r'<g id="(series-[^"]+)">', r'<g id="\1" class="series">', svg)


def _placeholder(title: str, width: int, height: int) -> str:
    """What the report shows where a plot would be when matplotlib is not installed."""
    import html

    t = html.escape(title)
    return (f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" role="img" aria-label="{t}"><rect width="100%" height="100%" '
            f'fill="#fafafa" stroke="#ccc"/><text x="50%" y="45%" text-anchor="middle">{t}</text>'
            f'<text x="50%" y="55%" text-anchor="middle" fill="#888" font-size="12">install '
            f"matplotlib to draw this plot: pip install 'slamlm[report]'</text></svg>")


def line_plot_svg(series: Series, title: str = "", xlabel: str = "", ylabel: str = "",
                  width: int = 520, height: int = 320, hlines: Mapping[str, float] | None = None,
                  integer_x: bool | None = None) -> str:
    """Named (xs, ys) series as an SVG line chart (axes, ticks, grid, legend below).

    Non-finite points are dropped; an empty input gives a chart that says "no data".
    ``hlines`` are dashed reference lines ({label: y}); ``integer_x`` (default: when the
    x label is "step") keeps x ticks on whole numbers.
    """
    try:
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return _placeholder(title, width, height)
    pts = {k: v for k, (xs, ys) in series.items() if (v := _finite_points(xs, ys))}
    uid = hashlib.sha1(f"{title}|{sorted(series)}".encode()).hexdigest()[:8]
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, fontweight="bold")
    if not pts:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", color="#888",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return _svg_text(fig, uid, width, height, title)
    _draw(ax, pts, uid, dict(hlines or {}))
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#eee", lw=0.8)
    if integer_x if integer_x is not None else xlabel == "step":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)
    n = len(pts) + len(hlines or {})
    fig.legend(loc="outside lower center", ncols=min(n, 3), fontsize=8, frameon=False)
    return _svg_text(fig, uid, width, height, title)
