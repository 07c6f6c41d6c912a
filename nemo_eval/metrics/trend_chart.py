"""A trend chart of one metric over checkpoints, as a standalone SVG (standard library only).

    from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg

    svg = render_trend_svg("gsm8k greedy accuracy", [TrendPoint("step_100", 41.0, 38.2, 43.9),
                                                     TrendPoint("step_200", 47.5, 44.6, 50.4, marked=True)],
                           y_label="accuracy (%)")

One point per checkpoint, in the order given, joined by a line; a vertical bar shows a point's
confidence interval when it has one; a ``marked`` point (the best checkpoint) is drawn larger, in
another colour, with its value written beside it. Long labels show their end (whole in a tooltip).
Every text is XML-escaped, so labels may hold any
characters. Used by ``summarize-results`` over a sweep and by the results viewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional
from xml.sax.saxutils import escape

LINE, MARK, GRID, TEXT = "#1f77b4", "#d62728", "#dddddd", "#333333"
LABEL_CHARS = 16   # longer checkpoint labels are shown by their end ("…checkpoint-500"), whole in a tooltip


@dataclass
class TrendPoint:
    """One checkpoint's value (and confidence interval) of the charted metric."""

    label: str
    value: float
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    marked: bool = False


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = high - low
    raw = span / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(index * step, 10) for index in range(first, last + 1)]


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{TEXT}"{extra}>'
            f"{escape(content)}</text>")


def render_trend_svg(title: str, points: list[TrendPoint], *, y_label: str = "", width: int = 640,
                     height: int = 320) -> str:
    """The chart as a standalone ``<svg>`` document string (see the module docstring)."""
    left, right, top, bottom = 64, 24, 36, 72
    plot_w, plot_h = max(1, width - left - right), max(1, height - top - bottom)
    finite = [p for p in points if p.value is not None and math.isfinite(p.value)]
    values = [v for p in finite for v in (p.value, p.ci_low, p.ci_high) if v is not None and math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    ticks = _ticks(low - pad, high + pad)
    low, high = ticks[0], ticks[-1]

    def x_of(index: int) -> float:   # each point in the middle of its own band: nothing sits on an edge
        return left + plot_w * (index + 0.5) / max(1, len(points))

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             f"<title>{escape(title)}</title>",
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             _text(width / 2, 20, title, size=14, extra=' font-weight="bold"')]
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, _fmt(tick), anchor="end", size=10))
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{TEXT}"/>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{TEXT}"/>')
    if y_label:
        parts.append(_text(14, top + plot_h / 2, y_label, size=11,
                           extra=f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"'))
    line = [(x_of(i), y_of(p.value)) for i, p in enumerate(points) if p.value is not None and math.isfinite(p.value)]
    if len(line) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    slant = len(points) > 6
    for index, point in enumerate(points):
        x = x_of(index)
        label_extra = f' transform="rotate(-30 {x:.1f} {top + plot_h + 16:.1f})"' if slant else ""
        shown = point.label if len(point.label) <= LABEL_CHARS else "\u2026" + point.label[-(LABEL_CHARS - 1):]
        parts.append(_text(x, top + plot_h + 16, shown, anchor="end" if slant else "middle", size=10,
                           extra=label_extra)[:-len("</text>")] + f"<title>{escape(point.label)}</title></text>")
        if point.value is None or not math.isfinite(point.value):
            continue
        colour = MARK if point.marked else LINE
        if point.ci_low is not None and point.ci_high is not None:
            y1, y2 = y_of(point.ci_low), y_of(point.ci_high)
            parts.append(f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="1.5"/>')
            for y in (y1, y2):
                parts.append(f'<line x1="{x - 4:.1f}" y1="{y:.1f}" x2="{x + 4:.1f}" y2="{y:.1f}" stroke="{colour}"/>')
        y = y_of(point.value)
        tip = f"{point.label}: {_fmt(point.value)}"
        if point.ci_low is not None and point.ci_high is not None:
            tip += f" [{_fmt(point.ci_low)}, {_fmt(point.ci_high)}]"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if point.marked else 4}" fill="{colour}">'
                     f"<title>{escape(tip)}</title></circle>")
        if point.marked:
            parts.append(_text(x + 8, y - 8, f"best: {_fmt(point.value)}", anchor="start", size=10,
                               extra=f' fill-opacity="1" style="fill:{MARK}"'))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
