"""What the sample page makes of a line: the extracted answer's place, code blocks, the majority vote."""

from __future__ import annotations

from nemo_eval.viewer.render import generation_pieces, majority_vote
from nemo_eval.viewer.samples import status_tags

MARKERS = {"code_begin": "```python\n", "code_end": "```\n", "output_begin": "```output\n", "output_end": "```\n"}


def test_answer_is_marked_at_its_last_occurrence_outside_code():
    text = "We try.\n```python\nprint(12)\n```\n```output\n12\n```\nSo it is 12, i.e. \\boxed{12}. Later text 1"
    pieces, marked = generation_pieces(text, "12", MARKERS)
    kinds = [p.kind for p in pieces]
    assert marked and kinds == ["text", "code", "output", "text", "answer", "text"]
    answer_at = kinds.index("answer")
    assert pieces[answer_at - 1].text.endswith("\\boxed{") and pieces[answer_at + 1].text.startswith("}.")
    assert "".join(p.text for p in pieces) == text.replace("```python\n", "").replace("```output\n", "").replace(
        "```\n", "")


def test_a_normalised_answer_is_found_or_reported_as_not_verbatim():
    assert generation_pieces("she pays 1,000 dollars", "1000")[1] is False
    pieces, marked = generation_pieces("so x = 1,000", "1,000")
    assert marked and pieces[-1].text == "1,000"
    assert generation_pieces(None, "3") == ([], False)


def test_majority_vote_groups_equal_values_and_reports_ties():
    rows = [{"predicted_answer": "0.5", "is_correct": True}, {"predicted_answer": "\\frac{1}{2}", "is_correct": True},
            {"predicted_answer": "3", "is_correct": False}]
    assert majority_vote(rows) == {"answer": "0.5", "votes": 2, "total": 3, "is_correct": True, "tied": False}
    tied = majority_vote(rows[:1] + rows[2:])
    assert tied["tied"] and tied["votes"] == 1
    assert majority_vote([{"generation": "x"}]) is None


def test_status_tags():
    assert status_tags({"is_correct": True, "predicted_answer": "1", "finish_reason": "stop"}) == ("correct",)
    assert status_tags({"is_correct": False, "predicted_answer": None, "finish_reason": "length"}) == (
        "wrong", "no_answer", "truncated")
    assert status_tags({"generation": None, "finish_reason": "error", "error": "500"}) == (
        "error", "ungraded", "no_answer")
    assert "grading_error" in status_tags({"is_correct": False, "predicted_answer": "2", "grading_error": "timeout"})
    assert status_tags({"is_correct": False, "generation": "def f(): pass"}) == ("wrong",)   # code: no answer field
