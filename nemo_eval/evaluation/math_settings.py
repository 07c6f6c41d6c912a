"""The math grader's own settings, added to the evaluation step's ``++settings`` by the ``math`` eval type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from nemo_eval.evaluation.answer_extraction import ExtractionConfig, validate


@dataclass
class MathSettings:
    """How math answers are found and how many comparisons one sandbox execution decides."""

    math_batch_size: int = field(default=1000, metadata={
        "help": "at most this many answer comparisons per sandbox execution (math); pairs are split into one "
                "batch per sandbox worker"})
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)


def check(config: Any) -> Optional[str]:
    """What is wrong with the math settings of an evaluation config, or None."""
    if config.math_batch_size < 1:
        return "++math_batch_size must be >= 1"
    return validate(config.extraction)
