"""Is the difference between two runs on the same items real? Paired tests.

- :func:`mcnemar_exact`: exact McNemar test for paired binary outcomes (greedy accuracy). Only the
  discordant items count: ``b`` right in A only, ``c`` right in B only; under "no difference" each
  discordant item goes either way with probability 1/2, so the two-sided p-value is
  ``min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])``.
- :func:`paired_bootstrap`: percentile confidence interval of the mean per-item difference,
  resampling items with replacement (for sampled metrics, whose per-item scores are fractions).
"""

from __future__ import annotations

import random
from math import comb
from typing import Sequence


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """``(mean difference b - a, low, high)``: the percentile bootstrap interval over items."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two non-empty sequences of equal length")
    differences = [y - x for x, y in zip(a, b)]
    n = len(differences)
    generator = random.Random(seed)
    means = sorted(sum(generator.choices(differences, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[int(tail * (resamples - 1))]
    high = means[int((1 - tail) * (resamples - 1))]
    return sum(differences) / n, low, high
