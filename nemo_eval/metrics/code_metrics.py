"""The ``code`` metrics family: lm-evaluation-harness's own pass@1 next to ours.

``accuracy_lm_eval`` is the share of lines with ``is_correct_lm_eval`` (lm-eval 0.4.13's ``mbpp`` /
``humaneval`` rule, :mod:`nemo_eval.evaluation.code_grader`); it appears only when the graded lines
carry that field (files generated with the ``lm-eval/mbpp`` or ``lm-eval/humaneval`` prompt).
"""

from __future__ import annotations

from typing import Any


def summarize(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The code family's values for one run's graded lines."""
    if not lines or not any("is_correct_lm_eval" in line for line in lines):
        return {}
    return {"accuracy_lm_eval": round(100 * sum(bool(line.get("is_correct_lm_eval")) for line in lines) / len(lines), 2)}
