"""Checkpoint sweeps end to end: ``eval --model A,B,C`` against one OpenAI-compatible test server that
answers with a known accuracy per model name, the sweep table, CSV, Markdown and chart, the gates'
exit codes, resuming, ``--model @file`` and ``--watch``."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
import xml.dom.minidom
from pathlib import Path

import pytest

from helpers import cli_env, openai_test_server, run_cli, single_error_line
from openai_test_server import is_correct

pytestmark = pytest.mark.bwrap   # every eval starts its sandbox
ITEMS = 20
RATES = {"model-a": 0.0, "model-b": 0.5, "model-c": 1.0}


def expected_accuracy(prepared_data: Path, rate: float) -> float:
    problems = [json.loads(line)["problem"] for line in (prepared_data / "gsm8k" / "test.jsonl").read_text().splitlines()]
    return round(100 * sum(is_correct(p, None, rate) for p in problems[:ITEMS]) / ITEMS, 2)


@pytest.fixture(scope="module")
def sweep_server(prepared_data):
    rates = [arg for name, rate in RATES.items() for arg in ("--model-correct-rate", f"{name}={rate}")]
    steps = [arg for step in (1, 2, 3) for arg in ("--model-correct-rate", f"step_{step}={step / 4}")]
    with openai_test_server("--answers-jsonl", str(prepared_data / "gsm8k" / "test.jsonl"), *rates, *steps) as url:
        yield url


def eval_sweep(url: str, out: Path, models: str, prepared_data: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("eval", "--server-address", url, "--model", models, "--benchmarks", "gsm8k:0", "--output-dir",
                   str(out), f"++max_samples={ITEMS}", *extra, env=cli_env(prepared_data), timeout=600)


def test_sweep_table_chart_and_gates(tmp_path, prepared_data, sweep_server):
    out = tmp_path / "sweep"
    result = eval_sweep(sweep_server, out, "model-a,model-b,model-c", prepared_data)
    assert result.returncode == 0, result.stderr
    expected = {name: expected_accuracy(prepared_data, rate) for name, rate in RATES.items()}
    assert expected["model-a"] == 0 and expected["model-c"] == 100 and 0 < expected["model-b"] < 100
    for name, accuracy in expected.items():   # each checkpoint: its own outputs and metrics.json
        assert json.loads((out / name / "metrics.json").read_text())["gsm8k"]["greedy"]["accuracy"] == accuracy
        assert (out / name / "gsm8k" / "output-greedy.jsonl").is_file() and (out / name / "logs").is_dir()
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["checkpoint"], float(r["gsm8k.greedy.accuracy"]), r["best"]) for r in rows] == [
        ("model-a", 0.0, "0"), ("model-b", expected["model-b"], "0"), ("model-c", 100.0, "1")]
    markdown = (out / "sweep.md").read_text()
    assert "| model-c (best) | **100 [" in markdown and "| model-a | 0 [0, " in markdown
    chart = (out / "charts" / "gsm8k.greedy.accuracy.svg").read_text()
    document = xml.dom.minidom.parseString(chart)
    assert len(document.getElementsByTagName("circle")) == 3 and "model-b" in chart and "best: 100" in chart
    order = [e["name"] for e in json.loads((out / "sweep.json").read_text())["checkpoints"]]
    assert order == ["model-a", "model-b", "model-c"]

    # gates: every checkpoint significantly better than the baseline (model-a: 0%) -> 0
    passed = run_cli("summarize-results", str(out), "--baseline", "model-a", "--require-better")
    assert passed.returncode == 0, passed.stderr
    assert "model-c | gsm8k | greedy | +100.00 | p=" in passed.stdout
    # model-a is worse than model-b: not significantly better -> 3 and one line naming it
    failed = run_cli("summarize-results", str(out), "--baseline", "model-b", "--require-better")
    assert failed.returncode == 3
    line = single_error_line(failed.stderr.split("\n", 1)[1])   # after the "best checkpoint" note
    assert line.startswith("nemo-eval summarize-results: gate failed: model-a is not significantly better than model-b")
    assert "model-c" not in line
    below = run_cli("summarize-results", str(out), "--fail-under", "gsm8k.greedy.accuracy=50")
    assert below.returncode == 3
    assert "model-a: gsm8k.greedy.accuracy = 0 < 50" in below.stderr
    assert ("model-b" in below.stderr) == (expected["model-b"] < 50)
    # a baseline outside the sweep (another output dir) works too
    outside = run_cli("summarize-results", str(out), "--baseline", str(out / "model-c"), "--require-better")
    assert outside.returncode == 3 and "model-a is not significantly better than model-c" in outside.stderr
    for args, message in ((["--require-better"], "--require-better needs --baseline"),
                          (["--baseline", "nope"], "--baseline 'nope' is neither a checkpoint"),
                          (["--best-by", "gsm8k.greedy.nope"], "--best-by: no metric")):
        bad = run_cli("summarize-results", str(out), *args)
        assert bad.returncode == 2 and message in single_error_line(bad.stderr)

    # resumable per model: the same command again generates and grades nothing
    again = eval_sweep(sweep_server, out, "model-a,model-b,model-c", prepared_data)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("nothing left to generate for gsm8k-greedy") == 3


def test_models_from_a_file_and_bad_lists(tmp_path, prepared_data, sweep_server):
    listing = tmp_path / "models.txt"
    listing.write_text("# checkpoints\nmodel-c\n\nmodel-a  # the base\n")
    out = tmp_path / "sweep"
    result = eval_sweep(sweep_server, out, f"@{listing}", prepared_data)
    assert result.returncode == 0, result.stderr
    assert [e["name"] for e in json.loads((out / "sweep.json").read_text())["checkpoints"]] == ["model-c", "model-a"]
    for models, message in (("a,a", "names a model twice"), (f"@{tmp_path / 'missing'}", "cannot read"),
                            ("x/y,x_y", "would share the result dir x_y")):
        bad = eval_sweep(sweep_server, tmp_path / "bad", models, prepared_data)
        assert bad.returncode == 2 and message in single_error_line(bad.stderr)


def test_one_failing_checkpoint_does_not_stop_the_others(tmp_path, prepared_data, sweep_server):
    out = tmp_path / "sweep"
    result = eval_sweep(sweep_server, out, "model-a,no-such-model,model-c", prepared_data)
    assert result.returncode == 1
    assert "1 of 3 checkpoints failed: no-such-model" in result.stderr
    statuses = {e["name"]: e["status"] for e in json.loads((out / "sweep.json").read_text())["checkpoints"]}
    assert statuses == {"model-a": "done", "no-such-model": "failed", "model-c": "done"}
    assert (out / "sweep.csv").is_file()   # the summary of what finished


def _wait_for(predicate, what: str, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert proc.poll() is None, f"the watcher exited while waiting for {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _done(out: Path) -> list[str]:
    try:
        return [e["name"] for e in json.loads((out / "sweep.json").read_text())["checkpoints"] if e["status"] == "done"]
    except (OSError, ValueError):
        return []


def _entry(out: Path, name: str) -> dict:
    try:
        return next((e for e in json.loads((out / "sweep.json").read_text())["checkpoints"] if e["name"] == name), {})
    except (OSError, ValueError):
        return {}


def test_watch_evaluates_new_checkpoints_once(tmp_path, prepared_data, sweep_server):
    checkpoints, out = tmp_path / "run", tmp_path / "sweep"
    (checkpoints / "step_1").mkdir(parents=True)
    (checkpoints / "step_2").mkdir()
    (checkpoints / "broken").mkdir()   # the server does not serve it: fails, tried 3 times in all
    command = [sys.executable, "-m", "nemo_eval", "eval", "--server-address", sweep_server, "--watch", str(checkpoints),
               "--watch-interval", "0.3", "--benchmarks", "gsm8k:0", "--output-dir", str(out), "++max_samples=5"]
    proc = subprocess.Popen(command, env=cli_env(prepared_data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: set(_done(out)) == {"step_1", "step_2"}, "step_1 and step_2", proc)
        _wait_for(lambda: _entry(out, "broken").get("attempts") == 3 and _entry(out, "broken")["status"] == "failed",
                  "three attempts at the broken checkpoint", proc)
        (checkpoints / "step_3").mkdir()
        _wait_for(lambda: set(_done(out)) == {"step_1", "step_2", "step_3"}, "step_3", proc)
        _wait_for(lambda: (out / "charts" / "gsm8k.greedy.accuracy.svg").is_file() and
                  "step_3" in (out / "charts" / "gsm8k.greedy.accuracy.svg").read_text(), "the chart", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped watching" in stderr
    before = (out / "sweep.json").read_text()
    # a new watcher over the same dirs evaluates nothing again
    again = subprocess.Popen(command, env=cli_env(prepared_data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    again.send_signal(signal.SIGINT)
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0 and "checkpoint step_" not in stderr, stderr
    assert (out / "sweep.json").read_text() == before
    assert all(e["attempts"] == 1 for e in json.loads(before)["checkpoints"] if e["name"] != "broken")
