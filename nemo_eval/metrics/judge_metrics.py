"""Metrics over judge verdicts (``nemo-eval judge``), next to the symbolic grader's.

For lines carrying ``judge_correct`` (true / false / null = invalid):

- ``judge_accuracy``: share judged correct (invalid counts as wrong);
- ``judge_invalid``: share whose judgement had no verdict;
- ``judge_agreement``: among lines the judge was asked about and gave a verdict on, the share where it
  agrees with the symbolic ``is_correct``;
- ``accuracy_any`` / ``accuracy_both``: correct by either grader / by both (NeMo-Skills' "any" and "both").

Sampled runs add ``judge_accuracy`` to their ``pass@k`` and ``majority@k`` rows, computed as those rows
are but over judge verdicts.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("judge_accuracy", "judge_invalid", "judge_agreement", "accuracy_any", "accuracy_both")


def _percent(count: float, total: int) -> float:
    return round(100 * count / total, 2) if total else 0.0


def has_judgements(lines: list[dict[str, Any]]) -> bool:
    return bool(lines) and all("judge_correct" in line for line in lines)


def judge_values(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The judge columns for one run's lines ({} unless every line was judged)."""
    if not has_judgements(lines):
        return {}
    total = len(lines)
    judge = [line["judge_correct"] is True for line in lines]
    symbolic = [bool(line.get("is_correct")) for line in lines]
    asked = [line for line in lines if line.get("judgement") is not None and line["judge_correct"] is not None]
    return {
        "judge_accuracy": _percent(sum(judge), total),
        "judge_invalid": _percent(sum(line["judge_correct"] is None for line in lines), total),
        "judge_agreement": _percent(sum(line["judge_correct"] == bool(line.get("is_correct")) for line in asked),
                                    len(asked)) if asked else None,
        "accuracy_any": _percent(sum(a or b for a, b in zip(judge, symbolic)), total),
        "accuracy_both": _percent(sum(a and b for a, b in zip(judge, symbolic)), total),
    }
