"""Reward combinators and the veRL and plain signatures on top of the reward classes.

- :func:`weighted_sum`: one TRL-style function from several, ``sum(weight * reward)`` per completion.
- :func:`make_compute_score`: veRL's ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``,
  as its naive reward manager calls it, and as its batch reward manager does
  (``compute_score(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=...)`` -> a list).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Sequence

from nemo_eval.rewards.code_rewards import CodeReward
from nemo_eval.rewards.math_rewards import MathReward

CODE_SOURCES = ("humaneval", "mbpp", "code", "livecodebench", "apps")


def weighted_sum(*weighted: tuple[Callable[..., list[float]], float], name: str = "weighted_reward") -> Callable[..., list[float]]:
    """One TRL-style reward from ``(reward_function, weight)`` pairs: the weighted sum per completion.

    Every function is called with the same arguments (``prompts``, ``completions``, the columns).
    """
    if not weighted:
        raise ValueError("weighted_sum needs at least one (reward_function, weight) pair")

    def combined(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float]:
        completions = list(completions)
        totals = [0.0] * len(completions)
        for function, weight in weighted:
            for index, value in enumerate(function(prompts=prompts, completions=completions, **columns)):
                totals[index] += weight * float(value or 0.0)
        return totals

    combined.__name__ = name
    return combined


def _is_sequence(value: Any) -> bool:
    """A list, tuple or array of per-item values (not a string, a dict or a single value)."""
    return hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, (str, bytes, dict))


def _benchmark_name(data_source: Any) -> Optional[str]:
    """The nemo-eval benchmark a veRL ``data_source`` names (``openai/gsm8k`` -> ``gsm8k``), or None."""
    from nemo_eval.datasets.spec import BENCHMARKS

    candidate = str(data_source or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return candidate if candidate in BENCHMARKS.names() else None


def _is_code(data_source: Any) -> bool:
    text = str(data_source or "").lower()
    return any(name in text for name in CODE_SOURCES)


def _code_row(ground_truth: Any, extra_info: Optional[dict]) -> dict[str, Any]:
    """Test columns from veRL's ``ground_truth`` (a test string, a list of asserts, or a dict / its JSON) and ``extra_info``."""
    row: dict[str, Any] = {}
    if isinstance(ground_truth, str):
        try:
            ground_truth = json.loads(ground_truth)
        except ValueError:
            pass
    if isinstance(ground_truth, dict):
        row.update(ground_truth)
    elif isinstance(ground_truth, (list, tuple)):
        row["test_list"] = list(ground_truth)
    else:
        row["test"] = str(ground_truth)
    for key in ("test_list", "test", "entry_point", "code_prompt", "prompt"):
        if extra_info and key in extra_info and key not in row:
            row[key] = extra_info[key]
    return row


def make_compute_score(sandbox: Optional[str] = None, timeout: float = 10.0) -> Callable[..., Any]:
    """A veRL ``compute_score`` whose math and code rewards use ``sandbox`` (None: local isolated workers).

    Math rows are graded with the extraction settings of the benchmark ``data_source`` names, when it
    names one. A code ``data_source`` (``humaneval``, ``mbpp``, ...) gives the code reward; its
    ``ground_truth`` is the tests (see :func:`_code_row`).
    """
    maths: dict[Optional[str], MathReward] = {}
    code = CodeReward(sandbox=sandbox, timeout=timeout)

    def math_for(source: Any) -> MathReward:
        benchmark = _benchmark_name(source)
        if benchmark not in maths:
            maths[benchmark] = MathReward(benchmark=benchmark, sandbox=sandbox, timeout=timeout)
        return maths[benchmark]

    def compute_score(data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                      extra_info: Any = None, *, data_sources: Any = None, solution_strs: Any = None,
                      ground_truths: Any = None, extra_infos: Any = None, **_: Any) -> Any:
        if solution_strs is not None:   # veRL's batch reward manager: plural names, sequences (numpy arrays too)
            return batch(data_sources, solution_strs, ground_truths, extra_infos)
        if _is_sequence(solution_str):   # the singular names with lists
            return batch(data_source, solution_str, ground_truth, extra_info)
        return batch([data_source], [solution_str], [ground_truth], [extra_info])[0]

    def batch(sources: Any, solutions: Any, truths: Any, infos: Any) -> list[float]:
        solutions = list(solutions)
        count = len(solutions)
        truths = list(truths) if _is_sequence(truths) else [truths] * count
        sources = list(sources) if _is_sequence(sources) else [sources] * count
        infos = list(infos) if _is_sequence(infos) else [infos] * count
        scores: list[float] = [0.0] * count
        groups: dict[Any, list[int]] = {}
        for index, source in enumerate(sources):
            key = "code" if _is_code(source) else _benchmark_name(source)
            groups.setdefault(key, []).append(index)
        for key, indexes in groups.items():
            texts = [str(solutions[i] or "") for i in indexes]
            if key == "code":
                values = code.score_rows(texts, [_code_row(truths[i], infos[i]) for i in indexes])
            else:
                values = math_for(sources[indexes[0]]).score_batch(texts, [str(truths[i]) for i in indexes])
            for i, value in zip(indexes, values):
                scores[i] = value
        return scores

    compute_score.__name__ = "compute_score"
    return compute_score
