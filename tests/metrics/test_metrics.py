"""Metrics: estimators against brute force and hand-checked cases; golden summaries; the CLI gate."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.metrics.compute import compute_metrics
from nemo_eval.metrics.estimators import majority_credit, pass_at_k, wilson_interval

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("n", range(1, 7))
def test_pass_at_k_equals_brute_force_over_all_k_subsets(n):
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


@pytest.mark.parametrize("answers,correct,credit", [
    (["4", "4", "5"], [True, True, False], 1.0),              # clear majority, right
    (["5", "5", "4"], [False, False, True], 0.0),              # clear majority, wrong
    (["4", "5"], [True, False], 0.5),                          # tie: half credit
    (["4", "5", "6"], [True, False, False], 1 / 3),            # three-way tie
    (["4", "4", "5", "5", "6"], [True, True, False, False, False], 0.5),
    ([None, None, "5"], [False, False, False], 0.0),           # no-answers do not vote: "5" wins
    ([None, None, "4"], [False, False, True], 1.0),
    ([None, None], [False, False], 0.0),                       # nobody voted
])
def test_majority_vote_tie_rules(answers, correct, credit):
    assert majority_credit(answers, correct) == pytest.approx(credit)


def test_wilson_interval_known_values():
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def _line(item_id, answer, correct, tokens=10):
    return {"id": item_id, "problem": f"p{item_id}", "expected_answer": "1", "generation": f"... {answer}",
            "predicted_answer": answer, "is_correct": correct, "num_generated_tokens": tokens}


def make_run(out: Path) -> Path:
    """A hand-checked run: gsm8k with 4 items, greedy + 3 seeds."""
    bench = out / "gsm8k"
    bench.mkdir(parents=True)
    files = {
        "output-greedy.jsonl": [_line("a", "1", True, 10), _line("b", "2", False, 20), _line("c", None, False, 30),
                                _line("d", "1", True, 40)],
        # item a: 3/3 right; b: 1/3 right ("1" once, "2" twice); c: answers 1, None, 3 -> tie 1 vs 3; d: 0/3
        "output-rs0.jsonl": [_line("a", "1", True), _line("b", "1", True), _line("c", "1", True), _line("d", "7", False)],
        "output-rs1.jsonl": [_line("a", "1", True), _line("b", "2", False), _line("c", None, False), _line("d", "8", False)],
        "output-rs2.jsonl": [_line("a", "1", True), _line("b", "2", False), _line("c", "3", False), _line("d", None, False)],
    }
    for name, rows in files.items():
        (bench / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_metrics_match_the_hand_computed_golden_file(tmp_path):
    out = make_run(tmp_path)
    metrics = compute_metrics(sorted((out / "gsm8k").glob("output-*.jsonl")))
    golden = json.loads((GOLDEN / "metrics.json").read_text())
    assert metrics == golden["gsm8k"]
    # the hand computation, spelled out:
    assert metrics["greedy"]["accuracy"] == 50.0 and metrics["greedy"]["no_answer"] == 25.0
    assert metrics["pass@1[avg-of-3]"]["accuracy"] == pytest.approx((75 + 25 + 25) / 3, abs=0.01)
    assert metrics["majority@3"]["accuracy"] == 37.5          # a: 1, b: 0, c: tie 1 vs 3 -> 0.5, d: tie 7 vs 8 (None does not vote) -> 0
    assert metrics["pass@3"]["accuracy"] == 75.0              # a, b, c have a right sample; d has none
    assert metrics["pass@1"]["accuracy"] == pytest.approx(100 * (1 + 1 / 3 + 1 / 3 + 0) / 4, abs=0.01)


def test_summarize_results_table_json_csv_and_gate(tmp_path):
    out = make_run(tmp_path / "run")
    result = run_cli("summarize-results", str(out), "--csv", str(tmp_path / "m.csv"), "--per-example",
                     str(tmp_path / "items.csv"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (GOLDEN / "summary.txt").read_text().strip()
    assert json.loads((out / "metrics.json").read_text()) == json.loads((GOLDEN / "metrics.json").read_text())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text())))
    assert {(r["benchmark"], r["row"]) for r in rows} >= {("gsm8k", "greedy"), ("gsm8k", "majority@3"), ("gsm8k", "pass@3")}
    items = list(csv.DictReader(io.StringIO((tmp_path / "items.csv").read_text())))
    assert len(items) == 16 and items[0]["id"] == "a" and items[0]["is_correct"] == "True"

    passing = run_cli("summarize-results", str(out), "--fail-under", "gsm8k.greedy.accuracy=50")
    assert passing.returncode == 0
    failing = run_cli("summarize-results", str(out), "--fail-under", "gsm8k.greedy.accuracy=80",
                      "--fail-under", "gsm8k.pass@3.accuracy=70", "--fail-under", "gsm8k.majority@3.accuracy=40")
    assert failing.returncode == 3
    last = failing.stderr.strip().splitlines()[-1]
    assert "gsm8k.greedy.accuracy = 50 < 80" in last and "gsm8k.majority@3.accuracy = 37.5 < 40" in last
    assert "pass@3" not in last


@pytest.mark.parametrize("args,message", [
    (["--fail-under", "gsm8k.greedy.accuracy"], "must look like"),
    (["--fail-under", "accuracy=3"], "benchmark.row.metric"),
    (["--fail-under", "gsm8k.pass@9.accuracy=3"], "no metric 'gsm8k.pass@9.accuracy'"),
])
def test_summarize_errors(tmp_path, args, message):
    out = make_run(tmp_path / "run")
    result = run_cli("summarize-results", str(out), *args)
    assert result.returncode == 2 and message in single_error_line(result.stderr)


def test_ungraded_and_mismatched_files_are_refused(tmp_path):
    out = make_run(tmp_path / "run")
    path = out / "gsm8k" / "output-rs2.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "is_correct"}) + "\n" for r in rows))
    result = run_cli("summarize-results", str(out))
    assert result.returncode == 2 and "is not graded" in single_error_line(result.stderr)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    result = run_cli("summarize-results", str(out))
    assert result.returncode == 2 and "does not hold the same items" in single_error_line(result.stderr)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("summarize-results", str(empty))
    assert result.returncode == 2 and "no <benchmark>/output-greedy.jsonl" in single_error_line(result.stderr)


def test_code_benchmark_end_to_end_generate_evaluate_summarize(prepared_data, sandbox_url, tmp_path):
    """HumanEval lines graded in the real sandbox, then compute-metrics and summarize-results."""
    items = [json.loads(line) for line in (prepared_data / "humaneval" / "test.jsonl").read_text().splitlines()[:10]]
    out = tmp_path / "run" / "humaneval"
    out.mkdir(parents=True)
    rows = [{**r, "generation": r["canonical_solution"] if i < 7 else "    return None\n", "num_generated_tokens": 5}
            for i, r in enumerate(items)]
    (out / "output-greedy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    graded = run_cli("evaluate", f"++prediction_jsonl_files=[{out / 'output-greedy.jsonl'}]",
                     f"++sandbox_address={sandbox_url}")
    assert graded.returncode == 0, graded.stderr
    single = run_cli("compute-metrics", "--prediction_jsonl_files", str(out / "output-greedy.jsonl"))
    assert single.returncode == 0 and '"accuracy": 70.0' in single.stdout
    summary = run_cli("summarize-results", str(tmp_path / "run"), "--fail-under", "humaneval.greedy.accuracy=60")
    assert summary.returncode == 0, summary.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["humaneval"]["greedy"]["accuracy"] == 70.0


def test_majority_votes_group_answers_by_normalised_form():
    from nemo_eval.metrics.compute import vote_key
    from nemo_eval.metrics.estimators import majority_credit

    answers = ["\\dfrac12", "$\\frac{1}{2}$", "3", None]
    assert vote_key(answers[0]) == vote_key(answers[1]) == vote_key("0.5") == vote_key("1/2") and vote_key(None) is None
    assert vote_key("0.333") != vote_key("\\frac13") and vote_key("50\\%") != vote_key("50")
    assert majority_credit([vote_key(a) for a in answers], [True, True, False, False]) == 1.0


def test_summarize_only_the_runs_named(tmp_path):
    """Leftover files of an earlier run with more seeds are not mixed into this run's metrics."""
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    for name in ("output-greedy.jsonl", "output-rs0.jsonl", "output-rs1.jsonl"):
        (folder / name).write_text(json.dumps({"id": "a", "is_correct": True, "predicted_answer": "1"}) + "\n")
    result = run_cli("summarize-results", str(tmp_path), "--benchmarks", "gsm8k:1")
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "metrics.json").read_text())["gsm8k"]
    assert "greedy" in rows and "pass@1[avg-of-1]" in rows and "pass@2" not in rows
