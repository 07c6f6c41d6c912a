"""The ``multiple_choice`` metrics family: simple-evals' strict accuracy next to ours; rows per subject.

``accuracy_strict`` is the share of lines whose first ``Answer: X`` is right (OpenAI simple-evals'
rule, :mod:`nemo_eval.evaluation.choice_grader`). The family groups by ``subject`` (GPQA's domain,
MMLU-Pro's category): :mod:`nemo_eval.metrics.compute` adds a ``greedy[<subject>]`` row for each.
"""

from __future__ import annotations

from typing import Any


def summarize(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The family's values for one run's graded lines."""
    if not lines or not any("is_correct_strict" in line for line in lines):
        return {}
    return {"accuracy_strict": round(100 * sum(bool(line.get("is_correct_strict")) for line in lines) / len(lines), 2)}
