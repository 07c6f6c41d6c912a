"""The Qwen2.5-Math sets from the mirror (minerva_math, olympiadbench, college_math, gaokao2023en):
prepare-data counts and schema, answers as published, and generate + evaluate against the test server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cli_env, mirror_dir, openai_test_server, run_cli

COUNTS = {"minerva_math": 272, "olympiadbench": 675, "college_math": 2818, "gaokao2023en": 385}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def math_sets(tmp_path_factory) -> Path:
    if not mirror_dir():
        pytest.skip("needs the data mirror (NEMO_EVAL_DATA_MIRROR)")
    data_dir = tmp_path_factory.mktemp("math-sets")
    result = run_cli("prepare-data", *COUNTS, env=cli_env(data_dir))
    assert result.returncode == 0, result.stderr
    for name, count in COUNTS.items():
        assert f"{name}: prepared (test {count})" in result.stdout
    return data_dir


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_and_schema(math_sets, name):
    items = rows(math_sets / name / "test.jsonl")
    assert len(items) == COUNTS[name]
    assert len({item["id"] for item in items}) == len(items)
    for item in items:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item["problem"], str) and item["problem"].strip()
        assert isinstance(item["expected_answer"], str)
    empty = [item["id"] for item in items if not item["expected_answer"].strip()]
    # gaokao2023en ships two items whose answer is inside the question text ("...answers: $\frac{3}{10}$")
    assert empty == (["167", "192"] if name == "gaokao2023en" else [])


def test_answers_as_published(math_sets):
    minerva = rows(math_sets / "minerva_math" / "test.jsonl")
    assert [m["expected_answer"] for m in minerva[:3]] == ["1.6", "4.5e33", "41.8"]   # last \boxed{} of the solution
    assert minerva[0]["subject"].startswith("Introduction to Astronomy")
    olympiad = {o["id"]: o for o in rows(math_sets / "olympiadbench" / "test.jsonl")}
    assert olympiad["1606"]["expected_answer"] == "2" and olympiad["1606"]["answer_type"] == "Numerical"
    assert sum(bool(o["unit"]) for o in olympiad.values()) == 8
    college = rows(math_sets / "college_math" / "test.jsonl")
    assert college[0]["expected_answer"] == "10-4 n" and college[0]["subject"] == "algebra"   # one $...$ pair removed
    assert "$" in next(c["expected_answer"] for c in college if c["expected_answer"].startswith("No solution"))
    gaokao = rows(math_sets / "gaokao2023en" / "test.jsonl")
    assert gaokao[0]["expected_answer"] == "\\{x|-2\\leq x < 1\\}"


def test_generate_and_evaluate_each(math_sets, sandbox_url, tmp_path):
    """A few items of each set through generate and evaluate; the verdicts match what the server answered."""
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(item) + "\n" for name in COUNTS
                               for item in rows(math_sets / name / "test.jsonl")[:4]), encoding="utf-8")
    env = cli_env(math_sets)
    verdicts = []
    with openai_test_server("--answers-jsonl", str(answers), "--correct-rate", "0.5") as url:
        for name in COUNTS:
            out = tmp_path / name / "output-greedy.jsonl"
            result = run_cli("generate", f"++benchmark={name}", f"++output_file={out}", f"++server.base_url={url}",
                             "++max_samples=4", env=env)
            assert result.returncode == 0, result.stderr
            result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}", env=env)
            assert result.returncode == 0, result.stderr
            lines = rows(out)
            assert len(lines) == 4
            for line in lines:
                told_right = f"\\boxed{{{line['expected_answer']}}}" in line["generation"]
                assert line["is_correct"] == told_right, (name, line["id"], line["generation"], line["expected_answer"])
                verdicts.append(line["is_correct"])
    assert True in verdicts and False in verdicts
