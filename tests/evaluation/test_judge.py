"""``nemo-eval judge`` against the test server acting as a judge (``--script judge``): cheap and full modes,
invalid verdicts, unasked lines, resuming from the partial file, and the judge metrics next to the symbolic ones."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import openai_test_server, run_cli, server_stats, single_error_line
from nemo_eval.evaluation.judge import parse_verdict

# (expected, predicted, symbolic is_correct): what the judge (equal as text or number) will say
CASES = [("12", "12", True), ("12", "12.0", False), ("7", "8", False), ("3", None, False), ("5", "5 UNSURE", False),
         ("0.5", "0.50", False), ("9", "9", True)]


def _write(path: Path, cases=CASES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"id": f"q{i}", "problem": f"Problem {i}", "expected_answer": e, "predicted_answer": p,
              "generation": f"... \\boxed{{{p}}}", "is_correct": ok} for i, (e, p, ok) in enumerate(cases)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_verdicts_are_read_from_the_last_judgement_line():
    assert parse_verdict("Both are 4.\nJudgement: Yes") is True
    assert parse_verdict("Judgement: Yes ... on reflection\n**Judgment:** no") is False
    assert parse_verdict("they match") is None and parse_verdict(None) is None


def test_cheap_then_all_modes_and_metrics(tmp_path):
    path = _write(tmp_path / "run" / "math" / "output-greedy.jsonl")
    with openai_test_server("--script", "judge") as url:
        cheap = run_cli("judge", f"++prediction_jsonl_files=[{path}]", f"++server.base_url={url}", "++mode=cheap")
        assert cheap.returncode == 0, cheap.stderr
        asked = sum(server_stats(url)["completed"].values())
        assert asked == 4                                  # the symbolic-wrong lines with an answer
        lines = _lines(path)
        assert [line["judge_correct"] for line in lines] == [True, True, False, False, None, True, True]
        assert lines[0]["judgement"] is None and "Judgement: Yes" in lines[1]["judgement"]
        full = run_cli("judge", f"++prediction_jsonl_files=[{path}]", f"++server.base_url={url}", "++mode=all")
        assert full.returncode == 0, full.stderr
        assert sum(server_stats(url)["completed"].values()) == asked + 2     # the two unasked correct ones now
        again = run_cli("judge", f"++prediction_jsonl_files=[{path}]", f"++server.base_url={url}")
        assert sum(server_stats(url)["completed"].values()) == asked + 2 and again.returncode == 0   # a no-op
    metrics = run_cli("compute-metrics", "--prediction-jsonl-files", str(path))
    assert metrics.returncode == 0, metrics.stderr
    assert "judge_accuracy" in metrics.stdout and "accuracy_any" in metrics.stdout
    summary = run_cli("summarize-results", str(tmp_path / "run"))
    greedy = json.loads((tmp_path / "run" / "metrics.json").read_text())["math"]["greedy"]
    assert summary.returncode == 0
    assert greedy["accuracy"] == round(100 * 2 / 7, 2) and greedy["judge_accuracy"] == round(100 * 4 / 7, 2)
    assert greedy["judge_invalid"] == round(100 / 7, 2) and greedy["accuracy_both"] == round(100 * 2 / 7, 2)
    # asked and with a verdict: q0 q1 q2 q5 q6; agrees with the symbolic grader on q0, q2, q6
    assert greedy["judge_agreement"] == 60.0


def test_sampled_runs_get_pass_at_k_and_majority_over_judge_verdicts(tmp_path):
    out = tmp_path / "run" / "math"
    _write(out / "output-rs0.jsonl")
    _write(out / "output-rs1.jsonl", [(e, "wrong" if i % 2 else p, ok) for i, (e, p, ok) in enumerate(CASES)])
    with openai_test_server("--script", "judge") as url:
        for name in ("output-rs0.jsonl", "output-rs1.jsonl"):
            result = run_cli("judge", f"++prediction_jsonl_files=[{out / name}]", f"++server.base_url={url}")
            assert result.returncode == 0, result.stderr
    assert run_cli("summarize-results", str(tmp_path / "run")).returncode == 0
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["math"]
    assert {"judge_accuracy"} <= set(rows["pass@2"]) and {"judge_accuracy"} <= set(rows["majority@2"])
    assert rows["pass@2"]["judge_accuracy"] >= rows["pass@1"]["judge_accuracy"]


def test_a_killed_judge_run_continues_from_its_partial_file(tmp_path):
    path = _write(tmp_path / "math" / "output-greedy.jsonl")
    partial = path.with_name(path.name + ".judge.partial")
    partial.write_text(json.dumps({"index": 1, "judgement": "Judgement: No", "judge_correct": False}) + "\n{torn")
    with openai_test_server("--script", "judge") as url:
        result = run_cli("judge", f"++prediction_jsonl_files=[{path}]", f"++server.base_url={url}")
        assert result.returncode == 0, result.stderr
        assert sum(server_stats(url)["completed"].values()) == 5       # 6 with an answer; q1 came from the partial file
    assert _lines(path)[1]["judgement"] == "Judgement: No" and not partial.exists()


def test_bad_input_is_one_line(tmp_path):
    path = _write(tmp_path / "x.jsonl")
    no_server = run_cli("judge", f"++prediction_jsonl_files=[{path}]")
    assert no_server.returncode == 2 and "++server.base_url" in single_error_line(no_server.stderr)
    mode = run_cli("judge", f"++prediction_jsonl_files=[{path}]", "++server.base_url=http://127.0.0.1:9/v1", "++mode=x")
    assert mode.returncode == 2 and "++mode" in single_error_line(mode.stderr)
    ungraded = tmp_path / "u.jsonl"
    ungraded.write_text(json.dumps({"id": "a", "generation": "x"}) + "\n")
    with openai_test_server("--script", "judge") as url:
        result = run_cli("judge", f"++prediction_jsonl_files=[{ungraded}]", f"++server.base_url={url}")
    assert result.returncode == 2 and "evaluate" in single_error_line(result.stderr)
