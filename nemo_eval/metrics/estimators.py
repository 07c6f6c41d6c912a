"""Statistics behind the metrics: pass@k, majority voting, confidence intervals. Pure functions."""

from __future__ import annotations

import math
from collections import Counter
from typing import Optional, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. 2021: 1 - C(n-c, k) / C(n, k), for n samples with c correct.

    Computed as a product so it stays exact-ish for large n (no huge binomials).
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def majority_credit(answers: Sequence[Optional[str]], correct: Sequence[bool]) -> float:
    """Credit of the majority vote over one item's samples.

    Samples without an answer do not vote. The most frequent answer wins; when several tie, the
    credit is the share of the tied answers that are correct (fractional credit), so a tie between a
    right and a wrong answer scores 0.5. No votes at all score 0.
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [answer for answer, count in votes.items() if count == top]
    correct_answers = {a for a, ok in zip(answers, correct) if a is not None and ok}
    return sum(answer in correct_answers for answer in winners) / len(winners)


def wilson_interval(successes: float, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (better than the normal one near 0 and 1)."""
    if total <= 0:
        return 0.0, 0.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
