"""The ``multiple_choice`` eval type: find the letter a response settles on and compare it with the answer's.

Our letter (``predicted_answer``) comes from :func:`nemo_eval.evaluation.answer_modes.extract_choice`
(``\\boxed{B}``, "the answer is (B)", "Answer: B", a line starting ``B.``, or a choice's own text),
restricted to the item's ``letters``; ``is_correct`` compares it with ``expected_answer``.
Next to it, ``is_correct_strict`` applies OpenAI simple-evals' rule: the first ``Answer: X``
(case-insensitive, ``$`` around the letter allowed), so published simple-evals numbers can be compared.
Letter matching is pure string scanning, so it runs in this process.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.evaluation.answer_modes import extract_choice


def strict_choice(generation: Optional[str], letters: str) -> Optional[str]:
    """simple-evals' multiple-choice answer: the first ``Answer: X`` with X among ``letters``.

    As in simple-evals, the pattern ignores case but the letter is kept as written, so ``Answer: b``
    never equals ``B`` (its GPQA score compares the two as they are).
    """
    match = re.search(rf"(?i)Answer[ \t]*:[ \t]*\$?([{re.escape(letters)}])\$?", generation or "")
    return match.group(1) if match else None


def grade_choice_line(line: dict[str, Any]) -> dict[str, Any]:
    """``line`` with ``predicted_answer``, ``is_correct``, ``predicted_answer_strict`` and ``is_correct_strict``."""
    letters = line.get("letters") or "ABCDEFGHIJ"[:len(line.get("choices") or "ABCD")]
    expected = str(line["expected_answer"]).strip().upper()
    predicted = extract_choice(line.get("generation"), line.get("choices") or None)
    if predicted is not None and predicted not in letters:
        predicted = None
    strict = strict_choice(line.get("generation"), letters)
    return {**line, "predicted_answer": predicted, "is_correct": predicted == expected,
            "predicted_answer_strict": strict, "is_correct_strict": strict == expected}


def grade_choices(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """The ``multiple_choice`` eval type's grader."""
    for number, line in enumerate(lines, start=1):
        if not re.fullmatch(r"[A-Ja-j]", str(line.get("expected_answer", "")).strip()):
            raise UserError(f"line {number}: expected_answer must be one letter A-J, got {line.get('expected_answer')!r}: "
                            "not a multiple-choice benchmark's output (use the matching ++eval_type)")
    return [grade_choice_line(line) for line in lines]
