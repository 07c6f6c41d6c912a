"""The format reward: is the answer where the prompt asked for it? Scored in our process (string scanning only).

Two checks, each passed or not:

- **answer**: an answer is found by a final-answer *marker* of ``evaluate``'s extraction (not by a
  fallback such as "the last number"): by default any marker (``\\boxed{}``, ``<answer>...</answer>``,
  "The answer is ...", a "Final Answer" line, ``#### N``) — the same test as the metric
  ``format_adherence``; ``require="boxed"`` / ``"tag"`` / ... accepts only that marker.
- **reasoning** (only when ``reasoning_tags`` are given, e.g. ``("<think>", "</think>")``): the completion
  opens with the reasoning tag (after white space) and closes it exactly once; the answer counts only
  after the closing tag (in a completion with no reasoning tags at all, anywhere; in one cut off inside
  its reasoning, nowhere).

The score is 1.0 when every check passes, else 0.0; with ``partial=True`` it is the share of checks passed
(0.5 for a closed reasoning section without a marked answer after it).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from nemo_eval.errors import UserError
from nemo_eval.evaluation.answer_extraction import MARKERS, ExtractionConfig, extract_answer
from nemo_eval.rewards.common import MAX_CHARS, TOO_LONG, GradingStats, completion_text, warn_ungraded


class FormatReward:
    """TRL-style format reward: ``reward(prompts=None, completions=[...]) -> [1.0, 0.0, ...]``.

    Args:
        require: ``any`` (every marker) or one marker name (``boxed``, ``tag``, ``answer_is``, ``answer_line``, ``hash``).
        answer_tags: the pair the ``tag`` marker looks for.
        reasoning_tags: the reasoning section's tags, or None for no reasoning check.
        partial: score the share of checks passed instead of all-or-nothing.
        max_chars: longer completions score 0 (counted as too long, with a warning).
        name: the function name trainers log (``__name__``).
    """

    def __init__(self, require: str = "any", answer_tags: Sequence[str] = ("<answer>", "</answer>"),
                 reasoning_tags: Optional[Sequence[str]] = None, partial: bool = False,
                 max_chars: int = MAX_CHARS, name: str = "format_reward") -> None:
        if require != "any" and require not in MARKERS:
            raise UserError(f"format reward: require must be 'any' or one of {', '.join(MARKERS)} (got {require!r})")
        self.config = ExtractionConfig(strategies=list(MARKERS) if require == "any" else [require],
                                       answer_tags=list(answer_tags), reasoning_tags=None)
        self.reasoning_tags = tuple(reasoning_tags) if reasoning_tags else None
        self.partial, self.max_chars = partial, max_chars
        self.stats = GradingStats()
        self.__name__ = name

    def check(self, text: str) -> list[bool]:
        """The checks' results for one completion: ``[answer]`` or ``[reasoning, answer]``."""
        if self.reasoning_tags is None:
            return [extract_answer(text, self.config)[1] is not None]
        opening, closing = self.reasoning_tags
        stripped = text.lstrip()
        reasoning = stripped.startswith(opening) and text.count(opening) == 1 and text.count(closing) == 1 \
            and text.index(closing) > text.index(opening)
        after = text.rsplit(closing, 1)[1] if closing in text else ("" if opening in text else text)
        return [reasoning, extract_answer(after, self.config)[1] is not None]

    def _value(self, text: str) -> Optional[float]:
        if len(text) > self.max_chars:
            return None
        try:
            checks = self.check(text)
        except Exception:  # noqa: BLE001 - one bad item must not stop a training step
            return None
        if self.partial:
            return sum(checks) / len(checks)
        return 1.0 if all(checks) else 0.0

    def score(self, completion: Any, answer: Any = None) -> float:
        """Plain ``fn(completion) -> float`` (``answer`` is accepted and ignored)."""
        return self(completions=[completion])[0]

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float]:
        values = [self._value(completion_text(completion)) for completion in completions]
        too_long = sum(value is None for value in values)   # (or, never seen, a check that raised)
        warn_ungraded(self.__name__, len(values), {TOO_LONG: too_long} if too_long else {}, self.stats)
        return [value or 0.0 for value in values]
