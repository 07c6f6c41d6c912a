"""Reward functions for training loops, built on the graders of ``nemo-eval evaluate`` (docs/training.md).

A reward of 1 means ``evaluate`` would count the completion correct: the same answer extraction and
equivalence (``nemo_eval.evaluation``), decided in isolation (the sandbox, or local isolated workers
that stay alive across calls), never in the trainer's process.

Ready-made functions (stable names):

- ``math_reward(prompts=None, completions=..., answer=...)`` — TRL ``GRPOTrainer`` style; the gold comes
  from the first of the columns ``answer``, ``expected_answer``, ``solution`` passed;
- ``format_reward(prompts=None, completions=...)`` — 1.0 when the answer is marked where prompts ask;
- ``code_reward(prompts=None, completions=..., test_list=... | test=..., entry_point=...)`` — share of tests passed;
- ``compute_score(data_source, solution_str, ground_truth, extra_info=None)`` — veRL style;
- ``score(completion, answer) -> float`` — plain, one math completion;
- ``weighted_sum((fn, weight), ...)`` — a combinator.

Each ready-made function is an instance with default settings (local isolated workers, 10 s per
item) whose worker processes start on first use; build your own with :class:`MathReward`,
:class:`FormatReward`, :class:`CodeReward` and :func:`make_compute_score` for other settings (a sandbox
address, a benchmark's extraction settings, reasoning tags, partial format credit).
"""

from __future__ import annotations

from typing import Any

from nemo_eval.rewards.code_rewards import CodeReward
from nemo_eval.rewards.combine import make_compute_score, weighted_sum
from nemo_eval.rewards.common import RewardWarning
from nemo_eval.rewards.format_rewards import FormatReward
from nemo_eval.rewards.math_rewards import MathReward

__all__ = ["CodeReward", "FormatReward", "MathReward", "RewardWarning", "code_reward", "compute_score", "format_reward",
           "make_compute_score", "math_reward", "score", "weighted_sum"]

math_reward = MathReward()
format_reward = FormatReward()
code_reward = CodeReward()
compute_score = make_compute_score()


def score(completion: Any, answer: Any) -> float:
    """Plain ``fn(completion, answer) -> float``: 1.0 when the math completion's answer equals ``answer``."""
    return math_reward.score(completion, answer)
