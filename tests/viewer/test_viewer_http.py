"""``nemo-eval view`` as a real process over real output dirs, read through HTTP: every view, filters,
search, paging, escaping, live updates, and that it reads nothing outside and writes nothing inside."""

from __future__ import annotations

import html
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import run_cli, single_error_line
from viewer_runs import ODD_ID, XSS, graded_line, serve, wait_for, write_run

OUTCOMES_A = ["correct", "wrong", "none", "length", "error", "xss", "correct", "wrong"] + ["correct"] * 52
OUTCOMES_B = ["correct", "correct", "correct", "length", "error", "wrong", "wrong", "correct"] + ["correct"] * 52


def get(url: str, host: str | None = None) -> tuple[int, str, dict]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def link(base: str, path: str, **params) -> str:
    return f"{base}{path}?{urllib.parse.urlencode(params)}"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "sweep" / "step_100", "gsm8k", OUTCOMES_A, seeds=[OUTCOMES_A, OUTCOMES_B, OUTCOMES_B])
    write_run(root / "sweep" / "step_200", "gsm8k", OUTCOMES_B, seeds=[OUTCOMES_B] * 3)
    write_run(root / "sweep" / "step_1000", "gsm8k", ["correct"] * 60, seeds=[["correct"] * 60] * 3)
    before = snapshot(root)
    with serve(root) as url:
        yield root, url, before


def test_runs_page_lists_every_run_with_metrics_model_and_sampling(served):
    root, url, _ = served
    status, body, headers = get(url + "/")
    assert status == 200
    for run in ("sweep/step_100", "sweep/step_200", "sweep/step_1000"):
        assert f'data-run="{run}"' in body
    metrics = json.loads((root / "sweep" / "step_100" / "metrics.json").read_text())["gsm8k"]["greedy"]
    assert f"greedy <strong>{metrics['accuracy']:.2f}</strong> [{metrics['ci95_low']:.2f}, {metrics['ci95_high']:.2f}]" in body
    assert "majority@3" in body and "pass@1[avg-of-3]" in body
    assert "test-model" in body and "temperature=0.7" in body and "openai" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert 'href="/trend?group=sweep"' in body  # the three runs in one folder make a trend


def test_samples_filter_search_and_paging(served):
    _, url, _ = served
    base = dict(run="sweep/step_100", benchmark="gsm8k", file="output-greedy.jsonl")
    status, body, _ = get(link(url, "/samples", **base))
    assert status == 200 and "60 matching" in body and "page 1 of 2" in body
    wrong = get(link(url, "/samples", **base, status="wrong"))[1]
    ids = [html.unescape(i) for i in __import__("re").findall(r'<tr class="sample" data-id="([^"]*)"', wrong)]
    assert ids == ["q1", "q2", "q3", "q4", "q5", ODD_ID]        # wrong includes no-answer, truncated, error
    for status_name, expected in (("no_answer", ["q2", "q3", "q4"]), ("truncated", ["q3"]), ("error", ["q4"]),
                                  ("correct", None)):
        page = get(link(url, "/samples", **base, status=status_name, per_page=100))[1]
        found = [html.unescape(i) for i in __import__("re").findall(r'data-id="([^"]*)"', page)]
        if expected is not None:
            assert found == expected, status_name
        else:
            assert len(found) == 54 and "q0" in found
    searched = get(link(url, "/samples", **base, q="what is 7 + 7"))[1]
    assert "1 matching" in searched and ODD_ID in html.unescape(searched) and ODD_ID not in searched
    second = get(link(url, "/samples", **base, page=2))[1]
    assert "page 2 of 2" in second and 'data-id="q50"' in second and 'data-id="q0"' not in second
    assert get(link(url, "/samples", **base, status="bogus"))[0] == 400


def test_one_sample_shows_prompt_highlighted_answer_seeds_and_vote(served):
    _, url, _ = served
    status, body, _ = get(link(url, "/sample", run="sweep/step_100", benchmark="gsm8k", id="q1"))
    assert status == 200
    assert '<mark class="extracted">3</mark>' in body                     # wrong answer 3 highlighted in place
    assert 'id="expected">2<' in body and 'class="verdict wrong"' in body
    assert "Solve: What is 1 + 1?\nPut the answer in \\boxed{}." in html.unescape(body)   # the prompt as sent
    assert "majority vote over 3 samples" in body and "rs2" in body
    odd = get(link(url, "/sample", run="sweep/step_100", benchmark="gsm8k", id=ODD_ID))
    assert odd[0] == 200 and ODD_ID in html.unescape(odd[1])


def test_model_output_is_escaped_never_markup(served):
    _, url, _ = served
    body = get(link(url, "/sample", run="sweep/step_100", benchmark="gsm8k", id="q5"))[1]
    assert XSS not in body and "<script>window" not in body and "<img src=x" not in body
    assert XSS in html.unescape(body)                                      # shown, as text


def test_compare_lists_deltas_tests_and_flips(served):
    _, url, _ = served
    page = link(url, "/compare", a="sweep/step_100", b="sweep/step_200")
    first = get(page)[1]                             # the tests run in the background; the page says so meanwhile
    assert "exact McNemar" in first or ("computing the paired tests" in first and 'http-equiv="refresh"' in first)
    assert wait_for(lambda: "exact McNemar" in get(page)[1])
    status, body, _ = get(page)
    assert status == 200 and "exact McNemar" in body and "paired bootstrap" in body
    improved = body.split('class="flips improved"')[1].split("</p>")[0]
    regressed = body.split('class="flips regressed"')[1].split("</p>")[0]
    assert ">q1<" in improved and ">q2<" in improved and ">q6<" in regressed
    flip = html.unescape(improved.split('href="')[1].split('"')[0])
    side = get(url + flip)[1]
    assert "A: " in side and "B: " in side and side.count('class="generation"') == 2


def test_trend_charts_every_metric_in_natural_order(served):
    _, url, _ = served
    status, body, _ = get(url + "/trend?group=sweep")
    assert status == 200 and body.count("<svg") >= 3
    assert body.index(">step_100<") < body.index(">step_200<") < body.index(">step_1000<")
    assert "step_1000 (best)" in body


def test_paths_outside_and_other_methods_are_refused(served, tmp_path):
    root, url, _ = served
    for bad in ("/run?id=../../etc", "/run?id=/etc", "/static/../../../../etc/passwd",
                "/samples?run=sweep/step_100&benchmark=../../../etc&file=passwd"):
        assert get(url + bad)[0] in (400, 404), bad
    request = urllib.request.Request(url + "/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert get(url + "/", host="evil.example:80")[0] == 400              # DNS rebinding: foreign Host refused


def test_symlinked_file_outside_the_served_dirs_is_not_read(tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"id": "s", "problem": "TOPSECRET", "is_correct": True}) + "\n")
    run = tmp_path / "served" / "r"
    write_run(run, "gsm8k", ["correct"], summarize=False)
    (run / "math").mkdir()
    os.symlink(secret, run / "math" / "output-greedy.jsonl")
    with serve(tmp_path / "served") as url:
        assert "TOPSECRET" not in get(url + "/")[1]
        assert get(link(url, "/samples", run="r", benchmark="math"))[0] == 404


def test_new_runs_and_lines_appear_without_restart_and_nothing_is_written(served, tmp_path):
    root, url, before = served
    live = tmp_path / "live"
    with serve(live.parent) as live_url:
        folder = live / "gsm8k"
        folder.mkdir(parents=True)
        partial = folder / "output-greedy.jsonl.partial"
        partial.write_text("".join(json.dumps({**graded_line(i, "correct"), "_index": i}) + "\n" for i in (2, 0)))
        assert wait_for(lambda: 'data-run="live"' in get(live_url + "/")[1])
        page = get(live_url + "/")[1]
        assert "in progress: 2 lines" in page
        rows = get(link(live_url, "/samples", run="live", benchmark="gsm8k"))[1]
        assert "2 matching" in rows and rows.index('data-id="q0"') < rows.index('data-id="q2"')
        with open(partial, "a") as handle:
            handle.write(json.dumps({**graded_line(1, "wrong"), "_index": 1}) + "\n")
        assert wait_for(lambda: "3 matching" in get(link(live_url, "/samples", run="live", benchmark="gsm8k"))[1])
    for path in ("/", "/trend?group=sweep", "/compare?a=sweep/step_100&b=sweep/step_200"):
        get(url + path)
    assert snapshot(root) == before


def test_bad_input_is_one_line(tmp_path):
    missing = run_cli("view", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in single_error_line(missing.stderr)
    port = run_cli("view", str(tmp_path), "--port", "70000")
    assert port.returncode == 2 and "--port 70000" in single_error_line(port.stderr)
