"""Malformed and hostile output dirs: no page fails (500), hangs or reads outside the served folders.

Cases found by an adversarial review of the viewer: empty code markers, fields of every wrong type,
odd folder names, a file swapped for a symlink after a scan, a rerun retrying failed lines next to
the finished file, duplicate ids, odd metric values, deep nesting, a served folder that is a run
holding a run of its own name.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

from test_viewer_http import get, link
from viewer_runs import graded_line, serve, wait_for, write_run

PAGES = ("/", "/run?id={run}", "/samples?run={run}&benchmark=gsm8k", "/sample?run={run}&benchmark=gsm8k&id=q0",
         "/trend?group=", "/compare?a={run}&b=good", "/compare/item?a={run}&b=good&benchmark=gsm8k&id=q0")


def _meta(folder: Path, **meta) -> None:
    (folder / "output-greedy.jsonl.meta.json").write_text(json.dumps(meta))


def _hostile_tree(root: Path) -> list[str]:
    write_run(root / "good", "gsm8k", ["correct", "wrong"], summarize=False)
    runs = []
    for name, meta in {
        "empty-markers": {"prompt_record": {"config": "x", "system": "", "user": "{problem}", "examples": "",
                                            "stop": [], "template": None,
                                            "code_execution": {"code_begin": "", "code_end": "", "output_begin": "",
                                                               "output_end": ""}}},
        "settings-str": {"settings": "x", "server": "abc", "prompt_record": [1]},
        "request-str": {"settings": {"request": "temperature"}, "prompt_record": {"user": "{problem:>999999999}"}},
        "request-list": {"settings": {"request": [1, 2]}, "resolved_model": {"a": 1}},
    }.items():
        write_run(root / name, "gsm8k", ["correct", "wrong"], summarize=False)
        _meta(root / name / "gsm8k", **meta)
        runs.append(name)
    odd = root / "odd-fields" / "gsm8k"
    odd.mkdir(parents=True)
    lines = [{"id": "q0", "generation": ["a", "list"], "predicted_answer": {"x": 1}, "is_correct": "yes",
              "reasoning": 5, "finish_reason": 7, "num_generated_tokens": "many"},
             {"id": 1, "generation": 12}, {"id": None}, [1, 2], "text", {"id": "q0", "generation": "dup"}]
    (odd / "output-greedy.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n" + "[" * 100000 + "\n")
    runs.append("odd-fields")
    for name, value in {"nan-metrics": float("nan"), "big-metrics": 150.0, "neg-metrics": -20.0}.items():
        write_run(root / "metrics-sweep" / name, "gsm8k", ["correct"], summarize=False)
        (root / "metrics-sweep" / name / "metrics.json").write_text(json.dumps(
            {"gsm8k": {"greedy": {"accuracy": value, "num_entries": 5}, "pass@²": {"accuracy": 1}}}))
    (root / "deep" / "gsm8k").mkdir(parents=True)
    (root / "deep" / "metrics.json").write_text("[" * 200000)
    runs.append("deep")
    write_run(root / "step1²", "gsm8k", ["correct"], summarize=False)
    runs.append("step1²")
    bad_name = os.fsencode(str(root)) + b"/caf\xe9"
    os.makedirs(bad_name + b"/gsm8k")
    with open(bad_name + b"/gsm8k/output-greedy.jsonl", "wb") as handle:
        handle.write(json.dumps(graded_line(0, "correct")).encode() + b"\n")
    return runs


def test_no_page_fails_on_malformed_runs(tmp_path):
    root = tmp_path / "served"
    runs = _hostile_tree(root)
    with serve(root) as url:
        for run in runs + ["metrics-sweep/nan-metrics"]:
            for page in PAGES:
                address = url + page.format(run=urllib.parse.quote(run))
                status, body, _ = get(address)
                assert status in (200, 404), (address, status, body[-300:])
        assert get(url + "/trend?group=metrics-sweep")[0] == 200
        page = get(url + "/sample?run=empty-markers&benchmark=gsm8k&id=q1")[1]           # no endless loop
        assert "Adding 1 and 1" in page
        assert "malformed" in get(url + "/sample?run=request-str&benchmark=gsm8k&id=q0")[1]
        dup = get(url + "/samples?run=odd-fields&benchmark=gsm8k")[1]
        assert "repeat the id of an earlier line" in dup and "are not JSON objects" in dup
        second = get(url + "/sample?run=odd-fields&benchmark=gsm8k&id=q0&n=3")[1]
        assert ">dup<" in second                                                           # the second q0 opens


def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_read(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"id": "q0", "problem": "SECRET-OUTSIDE", "generation": "SECRET"}) + "\n")
    root = tmp_path / "served"
    write_run(root / "r", "gsm8k", ["correct"], summarize=False)
    with serve(root) as url:
        assert get(url + "/")[0] == 200                                                   # scanned
        target = root / "r" / "gsm8k" / "output-greedy.jsonl"
        target.unlink()
        os.symlink(outside, target)
        for page in ("/samples?run=r&benchmark=gsm8k", "/sample?run=r&benchmark=gsm8k&id=q0", "/run?id=r"):
            status, body, _ = get(url + page)
            assert "SECRET" not in body and status in (200, 404), page


def test_a_rerun_retrying_failed_lines_shows_the_retried_lines(tmp_path):
    root = tmp_path / "served"
    write_run(root / "retry", "gsm8k", ["correct", "error", "error"], summarize=False)
    partial = root / "retry" / "gsm8k" / "output-greedy.jsonl.partial"
    first_try = {**graded_line(1, "error"), "_index": 1, "error": "HTTP 500 again"}
    retried = {**graded_line(1, "correct"), "_index": 1, "generation": "RETRIED and \\boxed{2}"}
    partial.write_text(json.dumps(first_try) + "\n" + json.dumps(retried) + "\n")
    with serve(root) as url:
        rows = get(link(url, "/samples", run="retry", benchmark="gsm8k"))[1]
        assert "3 matching" in rows and "in progress" in rows
        assert "RETRIED" in get(url + "/sample?run=retry&benchmark=gsm8k&id=q1")[1]       # the latest line wins
        assert "generation error (1)" in rows                                            # q2 still failed
        with open(partial, "a") as handle:                                                # the rerun goes on
            handle.write(json.dumps({**graded_line(2, "wrong"), "_index": 2}) + "\n")
        assert wait_for(lambda: "generation error" not in get(link(url, "/samples", run="retry", benchmark="gsm8k"))[1])


def test_many_runs_without_metrics_json_answer_at_once(tmp_path):
    root = tmp_path / "served"
    for step in range(60):
        write_run(root / "sweep" / f"step_{step}", "gsm8k", ["correct", "wrong"] * 50, summarize=False)
    with serve(root) as url:
        first = get(url + "/")[1]
        assert first.count('class="run"') == 60
        assert wait_for(lambda: "computing metrics" not in get(url + "/")[1], timeout=120)
        assert get(url + "/")[1].count("greedy <strong>50.00</strong>") == 60


def test_a_served_run_holding_a_run_of_its_name_shows_both(tmp_path):
    root = tmp_path / "res"
    write_run(root, "gsm8k", ["correct"], summarize=False)
    write_run(root / "res", "gsm8k", ["wrong"], summarize=False)
    with serve(root) as url:
        page = get(url + "/")[1]
        assert 'data-run="res"' in page and 'data-run="res~2"' in page
