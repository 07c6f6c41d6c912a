"""A metric across runs (checkpoints of one training run, say) as a standalone SVG line chart.

Each run is a point with its 95% interval drawn as an error bar; one point can be marked (the
best checkpoint). Standard library only; every text is XML-escaped, so run names from disk are
safe to embed in an HTML page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional
from xml.sax.saxutils import escape

ENTITIES = {'"': "&quot;", "'": "&apos;"}


@dataclass
class TrendPoint:
    """One run's value of the metric (0-100), with its interval when known."""

    label: str
    value: float
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    marked: bool = False


def _text(value: str) -> str:
    return escape(value, ENTITIES)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 6) for i in range(int((high - first) / step + 1e-9) + 1)]


def render_trend_svg(title: str, points: list[TrendPoint], *, y_label: str = "", width: int = 640,
                     height: int = 320) -> str:
    """The chart as an ``<svg>`` element (a complete SVG document when written to a file).

    Args:
        title: Shown above the plot.
        points: In x order (left to right).
        y_label: Shown along the y axis.
        width: Pixels.
        height: Pixels.
    """
    left, right, top, bottom = 56, 16, 32, 72
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for p in points for v in (p.value, p.ci_low, p.ci_high) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 100.0)
    pad = max((high - low) * 0.1, 1.0)
    low, high = max(0.0, low - pad), min(100.0, high + pad) if high <= 100 else high + pad
    if high <= low:
        high = low + 1
    y = lambda v: top + plot_h * (1 - (v - low) / (high - low))
    x = lambda i: left + (plot_w * (i + 0.5) / len(points) if points else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}" font-family="sans-serif" '
           f'font-size="11">',
           f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="13">{_text(title)}</text>']
    for tick in _ticks(low, high):
        ty = y(tick)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick:g}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#888"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>')
    if y_label:
        out.append(f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
                   f'{_text(y_label)}</text>')
    if len(points) > 1:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
        out.append(f'<path d="{path}" fill="none" stroke="#3b6ea8" stroke-width="1.5"/>')
    for i, point in enumerate(points):
        px, py = x(i), y(point.value)
        if point.ci_low is not None and point.ci_high is not None:
            y1, y2 = y(point.ci_low), y(point.ci_high)
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#3b6ea8"/>')
            for cap in (y1, y2):
                out.append(f'<line x1="{px - 4:.1f}" x2="{px + 4:.1f}" y1="{cap:.1f}" y2="{cap:.1f}" stroke="#3b6ea8"/>')
        colour = "#d9822b" if point.marked else "#3b6ea8"
        radius = 5 if point.marked else 3.5
        interval = (f" [{point.ci_low:g}, {point.ci_high:g}]" if point.ci_low is not None and point.ci_high is not None
                    else "")
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{radius}" fill="{colour}">'
                   f'<title>{_text(point.label)}: {point.value:g}{interval}</title></circle>')
        label = point.label if len(point.label) <= 18 else point.label[:17] + "…"
        out.append(f'<text transform="translate({px:.1f} {top + plot_h + 12}) rotate(30)" '
                   f'font-weight="{"bold" if point.marked else "normal"}">{_text(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
