"""The one registry mechanism: unknown and broken names, ``module:attribute`` references; the eval-type
guess; the run layout every stage names files with."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_eval.errors import UserError
from nemo_eval.eval_types import EVAL_TYPES, guess_eval_type
from nemo_eval.metrics.families import METRICS, ordered_columns
from nemo_eval.registry import Broken, Registry, resolve
from nemo_eval.run_layout import find_benchmark_files, output_path, run_label, sampled_seed


def test_unknown_and_broken_names_are_one_line_errors(capsys):
    things = Registry("thing", discover=lambda: {"good": 1, "bad": Broken("/x/bad: eval_type 'mcq' is not registered")},
                      hint="Add one somewhere.")
    assert things.names() == ["good"] and "bad" not in things and things.get("good") == 1
    assert capsys.readouterr().err == "nemo-eval: warning: thing bad skipped: /x/bad: eval_type 'mcq' is not registered\n"
    with pytest.raises(UserError, match=r"^thing bad cannot be used: /x/bad: eval_type 'mcq' is not registered$"):
        things.get("bad")
    with pytest.raises(UserError, match=r"^unknown thing 'goo'. Did you mean 'good'\? Known: good. Add one somewhere.$"):
        things.get("goo")
    with pytest.raises(ValueError, match="registered twice"):
        things.register("good", 2)


def test_references_are_resolved_when_used():
    assert resolve("nemo_eval.run_layout:output_name")(3) == "output-rs3.jsonl"
    assert resolve(len) is len
    for _, kind in EVAL_TYPES.items():
        assert callable(resolve(kind.grader))
    for _, family in METRICS.items():
        assert family.values([]) == {} or set(family.values([])) <= set(family.columns)


def test_the_eval_type_of_lines_without_a_benchmark():
    assert guess_eval_type({"expected_answer": "4", "generation": "4"}) == "math"
    assert guess_eval_type({"id": "1", "test": "assert f()", "entry_point": "f"}) == "code"
    assert guess_eval_type({"generation": "hi"}) is None


def test_columns_are_the_shared_ones_then_each_familys():
    columns = ordered_columns([METRICS.get("code"), METRICS.get("math")])
    assert columns[:2] == ["num_entries", "accuracy"] and columns[-1] == "grading_errors"
    assert columns.index("avg_tokens") < columns.index("accuracy_strict")


def test_run_layout(tmp_path: Path):
    assert output_path(tmp_path, "gsm8k", None) == tmp_path / "gsm8k" / "output-greedy.jsonl"
    assert sampled_seed(output_path(tmp_path, "gsm8k", 12)) == 12 and sampled_seed(Path("output-greedy.jsonl")) is None
    assert run_label("gsm8k", 3) == "gsm8k-rs3" and run_label("gsm8k", None) == "gsm8k-greedy"
    for name in ("output-greedy.jsonl", "output-rs0.jsonl", "output-rsx.jsonl", "output-greedy.jsonl.meta.json"):
        (tmp_path / "b" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "b" / name).write_text("")
    assert [p.name for p in find_benchmark_files(tmp_path)["b"]] == ["output-greedy.jsonl", "output-rs0.jsonl"]
