"""The trend chart is well-formed SVG with every text escaped, one point per run, the best marked."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_chart_is_valid_svg_with_escaped_labels_and_error_bars():
    points = [TrendPoint("step_100", 41.5, 38.0, 45.1), TrendPoint('<script>alert("x")</script>', 47.25, 43.6, 50.9),
              TrendPoint("step_300 & more", 46.0, None, None, marked=True)]
    svg = render_trend_svg('gsm8k "greedy" <accuracy>', points, y_label="accuracy (%)")
    root = ElementTree.fromstring(svg)                      # parses: nothing unescaped
    assert root.tag == SVG + "svg" and "<script>" not in svg
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 3 and circles[2].get("fill") != circles[0].get("fill")      # the marked one stands out
    assert circles[1].find(f"{SVG}title").text == '<script>alert("x")</script>: 47.25 [43.6, 50.9]'
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert 'gsm8k "greedy" <accuracy>' in texts and "step_300 & more" in texts
    # an error bar (and two caps) for each point that has an interval
    assert len(root.findall(f"{SVG}line")) >= 2 * 3 + 2


def test_single_point_and_equal_values_still_render():
    assert "<circle" in render_trend_svg("one", [TrendPoint("a", 50.0)])
    ElementTree.fromstring(render_trend_svg("flat", [TrendPoint("a", 0.0), TrendPoint("b", 0.0)]))
