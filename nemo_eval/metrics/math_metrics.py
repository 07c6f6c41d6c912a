"""The ``math`` metrics family: how well answers follow the requested format, and lm-eval's variants.

``format_adherence``: answers found by a final-answer marker (``\\boxed{}``, tags, "the answer is",
``####``; not by a fallback); ``reasoning_format``: closed reasoning sections (when reasoning tags
were configured); ``accuracy_strict`` / ``accuracy_flexible``: lm-evaluation-harness's GSM8K filters;
``accuracy_exact_match`` / ``accuracy_math_verify``: its two ``minerva_math`` scores.
Each appears only when the graded lines carry the fields it is computed from.
"""

from __future__ import annotations

from typing import Any

from nemo_eval.evaluation.answer_extraction import MARKERS


def _percent(count: float, total: int) -> float:
    return round(100 * count / total, 2) if total else 0.0


def summarize(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The math family's values for one run's graded lines."""
    total = len(lines)
    row: dict[str, Any] = {}
    if any("extraction_strategy" in line for line in lines):
        row["format_adherence"] = _percent(sum(line.get("extraction_strategy") in MARKERS for line in lines), total)
    if any("has_reasoning" in line for line in lines):
        row["reasoning_format"] = _percent(sum(bool(line.get("has_reasoning")) for line in lines), total)
    for variant in ("strict", "flexible", "exact_match", "math_verify"):
        if any(f"is_correct_{variant}" in line for line in lines):
            row[f"accuracy_{variant}"] = _percent(sum(bool(line.get(f"is_correct_{variant}")) for line in lines), total)
    return row
