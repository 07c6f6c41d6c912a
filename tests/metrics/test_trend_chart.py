"""The trend chart (a standalone SVG, every text escaped) and summarize-results over a sweep of graded
files written here (no server, no sandbox: the quick tier)."""

from __future__ import annotations

import csv
import inspect
import json
import xml.dom.minidom
from pathlib import Path

from helpers import run_cli, single_error_line
from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg


def test_the_api_is_as_documented():
    assert [f for f in TrendPoint.__dataclass_fields__] == ["label", "value", "ci_low", "ci_high", "marked"]
    parameters = inspect.signature(render_trend_svg).parameters
    assert list(parameters) == ["title", "points", "y_label", "width", "height"]
    assert parameters["y_label"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["width"].default == 640
    assert parameters["height"].default == 320


def test_svg_is_standalone_escaped_and_marks_the_best_point():
    points = [TrendPoint("step<1>&", 10.0, 5.0, 15.0), TrendPoint("step_2", 50.0, 40.0, 60.0, marked=True),
              TrendPoint('"quoted"', 30.0), TrendPoint("missing", float("nan"))]
    svg = render_trend_svg("acc <of> & 'x'", points, y_label="% & more", width=500, height=300)
    document = xml.dom.minidom.parseString(svg)   # well-formed XML
    root = document.documentElement
    assert root.tagName == "svg" and root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
    assert root.getAttribute("width") == "500" and root.getAttribute("height") == "300"
    assert "step&lt;1&gt;&amp;" in svg and "<of>" not in svg
    circles = document.getElementsByTagName("circle")
    assert len(circles) == 3 and sum(c.getAttribute("r") == "6" for c in circles) == 1   # NaN: no point
    assert "best: 50" in svg and len(document.getElementsByTagName("polyline")) == 1


def test_one_point_and_flat_values_still_draw():
    for points in ([TrendPoint("only", 42.0)], [TrendPoint("a", 1.0), TrendPoint("b", 1.0)], []):
        xml.dom.minidom.parseString(render_trend_svg("t", points))


def write_run(out: Path, verdicts: list[bool]) -> None:
    path = out / "gsm8k" / "output-greedy.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"id": str(i), "expected_answer": "1", "generation": "x", "predicted_answer": "1",
                                        "is_correct": ok}) + "\n" for i, ok in enumerate(verdicts)))


def test_summarize_a_sweep_of_graded_files(tmp_path):
    sweep = tmp_path / "sweep"
    write_run(sweep / "step_10", [False] * 30)
    write_run(sweep / "step_2", [True] * 10 + [False] * 20)
    write_run(sweep / "step_100", [True] * 30)
    result = run_cli("summarize-results", str(sweep), "--baseline", "step_2")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((sweep / "sweep.csv").open()))
    # no sweep.json: checkpoints in natural order of their names
    assert [(r["checkpoint"], r["gsm8k.greedy.accuracy"], r["best"]) for r in rows] == [
        ("step_2", "33.33", "0"), ("step_10", "0.0", "0"), ("step_100", "100.0", "1")]
    assert (sweep / "step_10" / "metrics.json").is_file()
    assert "step_10 | gsm8k | greedy | -33.33 | p=" in result.stdout
    gate = run_cli("summarize-results", str(sweep), "--baseline", "step_2", "--require-better", "--alpha", "0.01")
    assert gate.returncode == 3
    assert gate.stderr.strip().splitlines()[-1] == (
        "nemo-eval summarize-results: gate failed: step_10 is not significantly better than step_2: "
        "gsm8k greedy -33.33 (p=0.001953)")
    single = run_cli("summarize-results", str(sweep / "step_2"), "--baseline", "x")
    assert single.returncode == 2 and "--baseline, --best-by and --metrics are for sweeps" in single_error_line(single.stderr)
    more = run_cli("summarize-results", str(sweep), "--metrics", "accuracy,no_answer")
    assert more.returncode == 0, more.stderr
    header = (sweep / "sweep.csv").read_text().splitlines()[0]
    assert header == "checkpoint,best,gsm8k.greedy.accuracy,gsm8k.greedy.no_answer"
    assert (sweep / "charts" / "gsm8k.greedy.no_answer.svg").is_file()
    bad = run_cli("summarize-results", str(sweep), "--metrics", "accuracy,nope")
    assert bad.returncode == 2 and "--metrics: no checkpoint has nope" in single_error_line(bad.stderr)
