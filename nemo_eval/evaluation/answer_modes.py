"""Answer extraction modes other than the math chain: GSM8K numbers, lm-eval's filters, letters, answer lines.

- ``gsm8k``: the math chain's markers (``####``, "the answer is", ``\\boxed{}``; the last one wins),
  reduced to the number they state; else the last number.
- ``gsm8k_strict`` / ``gsm8k_flexible``: lm-evaluation-harness's two GSM8K filters and its
  exact-match normalisation, exactly (:func:`lm_eval_gsm8k`, :func:`lm_eval_match`), so numbers are
  comparable with published lm-eval ones.
- ``multiple_choice``: a letter A-J (:func:`extract_choice`), optionally mapping a quoted choice text
  back to its letter.
- ``answer_line``: the text after the last "Answer:" / "Final answer:" label.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence, Union

from nemo_eval.evaluation.answer_extraction import MARKERS, ExtractionConfig, _NUMBER, _last_match, clean, extract_answer
from nemo_eval.evaluation.braces import boxes
from nemo_eval.evaluation.math_normalize import normalize_answer

Choices = Union[Sequence[str], Mapping[str, str], None]

# lm-evaluation-harness gsm8k: filters "strict-match" and "flexible-extract", then exact_match with
# ignore_case and regexes_to_ignore [",", "\$", "(?s).*#### ", "\.$"].
LM_EVAL_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
# the strict filter of each lm-eval GSM8K task (gsm8k_cot's exemplars end "The answer is N.")
LM_EVAL_STRICT_BY_TASK = {"gsm8k": LM_EVAL_STRICT, "gsm8k_cot": re.compile(r"The answer is (\-?[0-9\.\,]+).")}
LM_EVAL_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
LM_EVAL_IGNORE = [re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$")]


def lm_eval_normalize(text: str) -> str:
    for pattern in LM_EVAL_IGNORE:
        text = pattern.sub("", text)
    return text.strip().lower()


def lm_eval_gsm8k(generation: Optional[str], task: str = "gsm8k") -> tuple[Optional[str], Optional[str]]:
    """``(strict, flexible)`` answers as the filters of lm-eval's ``task`` (gsm8k, gsm8k_cot) pick them
    (None: "[invalid]")."""
    text = generation or ""
    strict = LM_EVAL_STRICT_BY_TASK[task].search(text)
    flexible = LM_EVAL_FLEXIBLE.findall(text)
    last = next((group for group in flexible[-1] if group), None) if flexible else None
    return (strict.group(1) if strict else None), last


def lm_eval_match(answer: Optional[str], expected: object) -> bool:
    return answer is not None and lm_eval_normalize(answer) == lm_eval_normalize(str(expected))


def extract_gsm8k(text: Optional[str]) -> Optional[str]:
    """The number a GSM8K answer states (markers first, the last one wins; else the last number)."""
    if not text:
        return None
    answer, strategy = extract_answer(text, ExtractionConfig(strategies=list(MARKERS)))
    source = answer if answer is not None else text
    number = _last_match(_NUMBER, source)
    return number.group(0).replace(" ", "") if number else None


_LETTER = r"\(?([A-J])\)?"
_CHOICE_STATEMENTS = re.compile(
    rf"(?:answer|option|choice)\s*(?:is|:|=)?\s*(?:option\s+|choice\s+)?\**\s*\$?{_LETTER}(?![A-Za-z])"
    rf"|(?:option|choice)\s+{_LETTER}\s+is\s+(?:the\s+)?correct", re.I)
_LETTER_LINE = re.compile(rf"^[\s*#>]*{_LETTER}(?:[.):]|\s*$)", re.M)


def _letter_of(text: str, choices: Choices) -> Optional[str]:
    """The letter an answer names: ``B``, ``(B)``, ``\\text{(B)}``, ``B) 12``, or a choice's own text."""
    cleaned = clean(re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", text))
    match = re.fullmatch(rf"{_LETTER}(?:[.):]\s*.*)?", cleaned, re.S)
    if match:
        return match.group(1)
    if choices:
        items = choices.items() if isinstance(choices, Mapping) else zip("ABCDEFGHIJ", choices)
        wanted = normalize_answer(cleaned).lower()
        for letter, choice in items:
            if wanted and normalize_answer(str(choice)).lower() == wanted:
                return letter
    return None


def extract_choice(text: Optional[str], choices: Choices = None) -> Optional[str]:
    """The letter a multiple-choice response settles on (the last statement wins).

    Finds ``\\boxed{B}`` / ``\\boxed{\\text{(B)}}``, "the answer is (B)", "Answer: B", "the correct option
    is B", "option B is correct", a line that starts with ``B.``/``(B)``; with ``choices`` (texts in
    order, or ``{letter: text}``), a stated answer equal to a choice's text gives that choice's letter.
    """
    if not text:
        return None
    found = []
    for start, _, content in boxes(text):
        letter = _letter_of(content, choices)
        if letter:
            found.append((start, letter))
    for match in _CHOICE_STATEMENTS.finditer(text):
        found.append((match.start(), match.group(1) or match.group(2)))
    line = _last_match(_LETTER_LINE, text)
    if line:
        found.append((line.start(), line.group(1)))
    if choices:  # a final statement naming a choice by its text ("the answer is seven"); letters were found above
        answer, strategy = extract_answer(text, ExtractionConfig(strategies=list(MARKERS)))
        names_letter = answer is not None and re.match(rf"{_LETTER}(?:[.):]|\s*$)", clean(answer))
        letter = _letter_of(answer, choices) if answer and not names_letter else None
        if letter:
            found.append((len(text), letter))
    if found:
        return max(found, key=lambda item: item[0])[1]
    last = _last_match(re.compile(r"\(([A-J])\)"), text)
    return last.group(1) if last else None


_ANSWER_LABEL = re.compile(r"^[\s*#>]*(?:final\s+)?answer\s*[:：]\**\s*(.+)$", re.I | re.M)


def extract_answer_line(text: Optional[str]) -> Optional[str]:
    """The text after the last "Answer:" / "Final answer:" label (None when there is none)."""
    match = _last_match(_ANSWER_LABEL, text or "")
    return (clean(match.group(1)) or None) if match else None
