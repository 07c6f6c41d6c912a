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


def test_majority_vote_scores_as_majority_at_k_does():
    rows = [{"predicted_answer": "0.5", "is_correct": True}, {"predicted_answer": "\\frac{1}{2}", "is_correct": True},
            {"predicted_answer": "3", "is_correct": False}]
    assert majority_vote(rows) == {"answers": ["0.5"], "votes": 2, "total": 3, "credit": 1.0}
    tied = majority_vote([{"predicted_answer": "5", "is_correct": False}, {"predicted_answer": "4", "is_correct": True}])
    assert tied == {"answers": ["5", "4"], "votes": 1, "total": 2, "credit": 0.5}        # as majority@2 credits it
    assert majority_vote([{"predicted_answer": None}, {"predicted_answer": None}])["credit"] == 0.0
    assert majority_vote([{"generation": "x"}]) is None


def test_answer_inside_a_longer_number_is_not_highlighted_there():
    pieces, marked = generation_pieces("so \\boxed{5}. That leaves 25 apples.", "5")
    assert marked and [p.text for p in pieces] == ["so \\boxed{", "5", "}. That leaves 25 apples."]
    pieces, _ = generation_pieces("x is 5. Later 25 and 3.5 and 15", "5")
    assert [p.text for p in pieces if p.kind == "answer"] == ["5"] and pieces[0].text == "x is "


def test_unusable_markers_and_field_types_never_hang_or_crash():
    empty = {"code_begin": "", "code_end": "", "output_begin": "", "output_end": ""}
    assert generation_pieces("print(1) text", "1", empty)[0][0].kind == "text"          # treated as no markers
    assert generation_pieces("a b c", "b", "not a dict")[1]
    assert generation_pieces(["a", "list"], "a")[0]                                      # shown as JSON text
    assert generation_pieces(12, 12)[1]


def test_prompt_records_are_filled_only_with_plain_fields():
    from nemo_eval.viewer.render import prompt_as_sent

    record = {"config": "x", "system": "", "user": "Q: {problem}", "examples": "", "stop": [], "template": None}
    assert prompt_as_sent({"prompt_record": record}, {"problem": "1+1"})[0]["messages"][-1]["content"] == "Q: 1+1"
    for user in ("{problem:>200000000}", "{problem.__class__}", "{problem!r}", "{problem[0]}"):
        prompt, note = prompt_as_sent({"prompt_record": {**record, "user": user}}, {"problem": "1+1"})
        assert prompt is None and "malformed" in note, user
    assert prompt_as_sent({"prompt_record": [1]}, {})[0] is None
    assert "before nemo-eval kept" in prompt_as_sent({}, {})[1]


def test_status_tags():
    assert status_tags({"is_correct": True, "predicted_answer": "1", "finish_reason": "stop"}) == ("correct",)
    assert status_tags({"is_correct": False, "predicted_answer": None, "finish_reason": "length"}) == (
        "wrong", "no_answer", "truncated")
    assert status_tags({"generation": None, "finish_reason": "error", "error": "500"}) == (
        "error", "ungraded", "no_answer")
    assert "grading_error" in status_tags({"is_correct": False, "predicted_answer": "2", "grading_error": "timeout"})
    assert status_tags({"is_correct": False, "generation": "def f(): pass"}) == ("wrong",)   # code: no answer field
    assert status_tags({"is_correct": False, "predicted_answer": ""}) == ("wrong",)   # as compute-metrics counts it
