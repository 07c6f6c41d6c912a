"""Answer extraction (string scanning in our process): each strategy, priorities, reasoning, lm-eval filters."""

from __future__ import annotations

import pytest

from nemo_eval.evaluation.answer_extraction import (ExtractionConfig, extract_answer, has_reasoning, lm_eval_gsm8k,
                                                    lm_eval_match, validate)


@pytest.mark.parametrize("text,answer,strategy", [
    ("so \\boxed{5} or rather \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),                 # the last box
    ("\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "boxed"),
    ("$\\boxed{x^{2}+\\frac{1}{2}}$.", "x^{2}+\\frac{1}{2}", "boxed"),                            # nested braces
    ("\\fbox{7}", "7", "boxed"),
    ("The answer is \\boxed 42.", "42", "boxed"),                                                  # \boxed X form
    ("\\boxed{12 and never closed", "12", "last_number"),                                           # unclosed box
    ("<answer> 17 </answer> then 3", "17", "tag"),
    ("Thus, the final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "answer_is"),
    ("The answer is: 3.5\nmore text 9", "3.5", "answer_is"),                                       # keeps decimals
    ("The answer is 18. Therefore 19", "18", "answer_is"),                                          # ends at sentence
    ("step\n#### 1,234", "1,234", "hash"),
    ("we get 16 - 3 = 13 eggs, so 26 dollars", "26", "last_number"),
    ("total: -1,234.50 units", "-1234.50", "last_number"),
    ("The final answer is **42**.", "42", "answer_is"),                                          # markdown bold
    ("the answer is 5, since x>0.", "5", "answer_is"),                                             # trailing clause
    ("so \\boxed{12}. (Format: \\boxed{} with 2 decimals)", "12", "boxed"),                       # empty box skipped
    ("no digits here", None, None),
    ("", None, None),
    (None, None, None),
])
def test_strategies(text, answer, strategy):
    assert extract_answer(text, ExtractionConfig()) == (answer, strategy)


def test_priority_follows_the_configured_order():
    text = "#### 4\nThe answer is 5. \\boxed{6}"
    assert extract_answer(text, ExtractionConfig())[0] == "6"
    assert extract_answer(text, ExtractionConfig(strategies=["hash", "boxed"]))[0] == "4"
    assert extract_answer("just 7", ExtractionConfig(strategies=["boxed"])) == (None, None)   # no fallback asked for


def test_custom_tags_and_reasoning_section():
    config = ExtractionConfig(answer_tags=["<SOLUTION>", "</SOLUTION>"], reasoning_tags=["<think>", "</think>"])
    assert extract_answer("<think>maybe \\boxed{1}</think><SOLUTION>2</SOLUTION>", config) == ("2", "tag")
    assert extract_answer("<think>maybe \\boxed{1} and still thinking", config) == (None, None)   # cut off
    assert extract_answer("no reasoning at all: \\boxed{3}", config) == ("3", "boxed")
    assert has_reasoning({"generation": "<think>a</think>b"}, config) is True
    assert has_reasoning({"generation": "<think>a"}, config) is False
    assert has_reasoning({"generation": "b", "reasoning": "a"}, config) is True               # server-parsed
    assert has_reasoning({"generation": "b"}, ExtractionConfig()) is None


def test_validate_names_the_bad_setting():
    assert validate(ExtractionConfig()) is None
    assert "extraction.strategies" in validate(ExtractionConfig(strategies=["boxed", "guess"]))
    assert "extraction.answer_tags" in validate(ExtractionConfig(answer_tags=["<a>"]))


@pytest.mark.parametrize("text,strict,flexible", [
    ("3 + 4 = 7\n#### 7", "7", "7"),
    ("costs $1,200.\n#### 1,200", "1,200", "1,200"),
    ("The answer is 12.", None, "12."),                        # flexible keeps the period; the match drops it
    ("so \\boxed{3}$.", None, "$."),                           # what lm-eval's regex really picks
    ("#### 5 and later 6", "5", "6"),
    ("nothing", None, None),
])
def test_lm_eval_gsm8k_filters(text, strict, flexible):
    assert lm_eval_gsm8k(text) == (strict, flexible)


def test_lm_eval_exact_match_normalisation():
    assert lm_eval_match("12.", "12") and lm_eval_match("$1,200", "1200") and lm_eval_match("#### 5", "5")
    assert not lm_eval_match("12.0", "12") and not lm_eval_match(None, "12") and not lm_eval_match("$.", "3")


def test_many_unclosed_boxes_are_scanned_in_one_pass():
    # a cut-off generation repeating "\\boxed{" 14k times: the brace table makes this linear
    assert extract_answer("\\boxed{" * 14285 + " 7", ExtractionConfig()) == ("7", "last_number")
