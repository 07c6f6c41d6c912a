"""The ``ifeval`` metrics family: IFEval's four scores, named as lm-evaluation-harness names them.

Prompt level: the share of prompts whose instructions are all followed; instruction level: the share
of all instructions (over every prompt) followed; each strict and loose
(:mod:`nemo_eval.evaluation.ifeval_grader`). Percentages 0-100. The shared ``accuracy`` of an IFEval
run is the prompt-level strict score.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def _percent(count: float, total: int) -> float:
    return round(100 * count / total, 2) if total else 0.0


def summarize(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The four IFEval scores of one run's graded lines (lines without verdicts count as not followed)."""
    row: dict[str, Any] = {}
    for variant, suffix in (("strict", ""), ("loose", "_loose")):
        prompts = [bool(line.get(f"is_correct{suffix}")) for line in lines]
        instructions = [bool(v) for line in lines for v in line.get(f"follow_instruction_list{suffix}") or
                        [False] * len(line.get("instruction_id_list") or ())]
        row[f"prompt_level_{variant}_acc"] = _percent(sum(prompts), len(prompts))
        row[f"inst_level_{variant}_acc"] = _percent(sum(instructions), len(instructions))
    return row
