"""Multiple choice: GPQA Diamond and MMLU-Pro definitions read from small fixtures served as a local
mirror (their real files are not mirrored here), GPQA's seeded shuffle, the letter grader with
simple-evals' strict rule beside ours, and per-subject rows, through prepare-data, generate, evaluate
and compute-metrics."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from helpers import REPO, cli_env, openai_test_server, run_cli
from nemo_eval.evaluation.choice_grader import grade_choices

GPQA_ROWS = [
    {"Record ID": f"rec{i}", "Question": f"Question {i}: which is right?", "Correct Answer": f"right {i}",
     "Incorrect Answer 1": f"wrong {i}a", "Incorrect Answer 2": f"wrong {i}b", "Incorrect Answer 3": f" wrong {i}c ",
     "High-level domain": ["Physics", "Chemistry", "Biology"][i % 3], "Subdomain": "Sub", "Explanation": "because"}
    for i in range(9)
]


GPQA_SHA256 = "41d1213cd7a4998605a26c2798500652572007161b3a92817ba46b35befcd305"
MMLU_PRO_SHA256 = "0e24a191921c2f453518a537a8b2117bd137e7714d4ef1565e9ba06c1ecb9ad8"


def write_gpqa(mirror: Path, name: str = "gpqa-diamond") -> Path:
    (mirror / name).mkdir(parents=True)
    path = mirror / name / "gpqa_diamond.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(GPQA_ROWS[0]))
        writer.writeheader()
        writer.writerows(GPQA_ROWS)
    return path


def fixture_copy(tmp_path: Path, name: str, raw: Path, real_sha256: str) -> Path:
    """A copy of datasets/<name> named <name>-fixture whose pinned sha256 is that of ``raw``; its parent folder."""
    folder = tmp_path / "benchmarks" / f"{name}-fixture"
    shutil.copytree(REPO / "datasets" / name, folder)
    definition = (folder / "benchmark.yaml").read_text()
    assert real_sha256 in definition
    (folder / "benchmark.yaml").write_text(definition.replace(real_sha256, hashlib.sha256(raw.read_bytes()).hexdigest()))
    return folder.parent


def mmlu_pro_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of datasets/mmlu-pro named mmlu-pro-fixture whose sha256 is the fixture's, and its mirror."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"question_id": 70 + i, "question": f"Q{i}?", "options": [f"opt {j}" for j in range(10 if i % 2 else 4)],
             "answer": "ABCD"[i % 4], "answer_index": i % 4, "cot_content": "", "category": ["law", "math"][i % 2],
             "src": "ori_mmlu"} for i in range(8)]
    mirror = tmp_path / "mirror" / "mmlu-pro-fixture"
    mirror.mkdir(parents=True)
    parquet = mirror / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    return fixture_copy(tmp_path, "mmlu-pro", parquet, MMLU_PRO_SHA256), mirror.parent


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_gpqa_is_pinned_and_other_bytes_are_refused(tmp_path):
    write_gpqa(tmp_path / "mirror")
    result = run_cli("prepare-data", "gpqa-diamond", env=cli_env(tmp_path / "data", mirror=str(tmp_path / "mirror")))
    assert result.returncode != 0
    assert "checksum mismatch for gpqa-diamond/gpqa_diamond.csv" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "gpqa-diamond" / "test.jsonl").exists()


def test_gpqa_choices_shuffled_with_the_recorded_seed(tmp_path):
    raw = write_gpqa(tmp_path / "mirror", "gpqa-diamond-fixture")
    extra = fixture_copy(tmp_path, "gpqa-diamond", raw, GPQA_SHA256)
    env = cli_env(tmp_path / "data", mirror=str(tmp_path / "mirror"), NEMO_EVAL_EXTRA_BENCHMARKS=str(extra))
    result = run_cli("prepare-data", "gpqa-diamond-fixture", env=env)
    assert result.returncode == 0, result.stderr
    assert "gpqa-diamond-fixture: prepared (test 9)" in result.stdout
    items = read(tmp_path / "data" / "gpqa-diamond-fixture" / "test.jsonl")
    rng = random.Random(0)                             # simple-evals' order: one generator, file order
    for row, item in zip(GPQA_ROWS, items):
        permutation = rng.sample(range(4), 4)
        assert item["permutation"] == permutation and item["shuffle_seed"] == 0
        assert item["choices"][ord(item["expected_answer"]) - ord("A")] == row["Correct Answer"]
        assert sorted(item["choices"]) == sorted(a.strip() for k, a in row.items() if "Answer" in k)
        assert item["options_text"].splitlines()[0] == f"A) {item['choices'][0]}" and item["letters"] == "ABCD"
        assert item["subject"] == row["High-level domain"] and item["id"] == row["Record ID"]
    assert len({item["expected_answer"] for item in items}) > 1, "the right answer is not always in one place"
    shown = run_cli("show-prompt", "gpqa-diamond-fixture", env=env)
    assert shown.returncode == 0
    assert "where LETTER is one of ABCD. Think step by step" in shown.stdout
    assert f"Question 0: which is right?\n\n{items[0]['options_text']}" in shown.stdout


def test_letter_grading_ours_and_simple_evals_strict():
    base = {"letters": "ABCD", "choices": ["12", "15", "seven", "9"], "expected_answer": "C"}
    cases = {
        "Some reasoning.\nAnswer: C": (True, True),
        "Answer: $C$": (True, True),
        "answer: c": (False, False),                   # ours reads capital letters only ("a" is a word); simple-evals
        "Answer: $c$": (False, False),                 # keeps the letter as written, and "c" is not "C"
        "I think it is (C).": (True, False),           # ours finds it; simple-evals needs "Answer:"
        "The answer is \\boxed{C}": (True, False),
        "Answer: A\n\nWait, no. Answer: C": (True, False),   # ours: the last statement; simple-evals: the first
        "The answer is seven.": (True, False),          # a choice's own text
        "Answer: E": (False, False),                   # not one of the letters
        "": (False, False),
    }
    lines = grade_choices([{**base, "generation": text} for text in cases], None)
    assert [(line["is_correct"], line["is_correct_strict"]) for line in lines] == list(cases.values())
    assert lines[-2]["predicted_answer"] is None


def test_mmlu_pro_end_to_end_with_subject_rows(tmp_path):
    extra, mirror = mmlu_pro_fixture(tmp_path)
    env = cli_env(tmp_path / "data", mirror=str(mirror), NEMO_EVAL_EXTRA_BENCHMARKS=str(extra))
    result = run_cli("prepare-data", "mmlu-pro-fixture", env=env)
    assert result.returncode == 0, result.stderr
    items = read(tmp_path / "data" / "mmlu-pro-fixture" / "test.jsonl")
    assert len(items) == 8 and items[1]["letters"] == "ABCDEFGHIJ" and items[0]["letters"] == "ABCD"
    assert items[1]["options_text"].splitlines()[-1] == "J) opt 9"
    assert [item["expected_answer"] for item in items[:4]] == ["A", "B", "C", "D"]
    out = tmp_path / "mmlu-pro-fixture" / "output-greedy.jsonl"
    with openai_test_server("--answers-jsonl", str(tmp_path / "data" / "mmlu-pro-fixture" / "test.jsonl"),
                            "--correct-rate", "0.5") as url:
        result = run_cli("generate", "++benchmark=mmlu-pro-fixture", f"++output_file={out}", f"++server.base_url={url}",
                         env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", env=env)
    assert result.returncode == 0, result.stderr
    lines = read(out)
    right = [f"\\boxed{{{line['expected_answer']}}}" in line["generation"] for line in lines]
    assert [line["is_correct"] for line in lines] == right and 0 < sum(right) < 8
    metrics = run_cli("compute-metrics", "--prediction_jsonl_files", str(out), "--benchmark", "mmlu-pro-fixture", env=env)
    assert metrics.returncode == 0, metrics.stderr
    rows = json.loads(metrics.stdout[metrics.stdout.index("{"):])["mmlu-pro-fixture"]
    assert rows["greedy"]["accuracy"] == round(100 * sum(right) / 8, 2)
    assert rows["greedy"]["accuracy_strict"] == 0.0       # the test server never writes "Answer: X"
    for subject in ("law", "math"):
        mine = [r for r, line in zip(right, lines) if line["subject"] == subject]
        assert rows[f"greedy[{subject}]"]["num_entries"] == 4
        assert rows[f"greedy[{subject}]"]["accuracy"] == round(100 * sum(mine) / 4, 2)
    assert "greedy[law]" in metrics.stdout


def test_real_definitions_load():
    listed = run_cli("list-benchmarks", "--json")
    assert listed.returncode == 0
    specs = json.loads(listed.stdout)
    for name in ("gpqa-diamond", "mmlu-pro"):
        assert specs[name]["defaults"]["eval_type"] == "multiple_choice"
        assert specs[name]["defaults"]["metrics_type"] == "multiple_choice"
