"""The stable public API of grading: answer extraction and math equivalence, for scripts and training loops.

    from nemo_eval.evaluation.api import extract_answer, math_equal_batch

    extract_answer("... so the answer is $\\\\boxed{\\\\frac{1}{2}}$.")               # '\\\\frac{1}{2}'
    extract_answer("#### 1,234", mode="gsm8k")                                  # '1,234'
    extract_answer("The correct option is (B).", mode="multiple_choice")        # 'B'
    math_equal_batch([("The answer is $0.5$.", "\\\\frac12"), ("2000.1", "2000")])  # [True, False]

``math_equal_batch`` takes ``(prediction, gold)`` strings; either may be a whole response or a worked
solution: the answer is extracted from each first (``extract_answer`` / ``gold_answer``; a bare
answer is taken whole). Equivalence is then decided in isolation: in the sandbox service at
``sandbox`` (an address such as ``http://127.0.0.1:6000``), or, with ``sandbox=None``, in local
isolated worker processes started on first use and reused (``close()`` stops them). A comparison
that times out or fails counts as not equal.
"""

from __future__ import annotations

import atexit
import threading
from types import SimpleNamespace
from typing import Iterable, Mapping, Optional, Sequence, Union

from nemo_eval.errors import UserError
from nemo_eval.evaluation import answer_extraction as chain
from nemo_eval.evaluation.answer_modes import (extract_answer_line, extract_choice, extract_gsm8k, lm_eval_gsm8k)
from nemo_eval.evaluation.local_worker import WorkerPool
from nemo_eval.evaluation.math_grader import VERDICTS, decide_pairs

__all__ = ["MODES", "close", "extract_answer", "math_equal_batch", "math_verdicts"]

MODES = chain.MODES
_default_pool: Optional[WorkerPool] = None
_pool_lock = threading.Lock()


def extract_answer(text: Optional[str], mode: str = "math",
                   choices: Union[Sequence[str], Mapping[str, str], None] = None) -> Optional[str]:
    """The final answer in ``text``, or None.

    Args:
        text: a model's response (or any text holding an answer).
        mode: ``math`` (the documented chain: final-answer markers, the last one wins; a bare answer
            whole; then the last stated expression or number), ``gsm8k``, ``gsm8k_strict`` and
            ``gsm8k_flexible`` (lm-evaluation-harness's filters), ``multiple_choice`` (a letter),
            ``answer_line`` ("Answer: X").
        choices: for ``multiple_choice``, the choice texts in order (or ``{letter: text}``), so a
            response that quotes a choice maps back to its letter.
    """
    if mode == "math":
        return chain.extract_answer(text, chain.ExtractionConfig())[0]
    if mode == "gsm8k":
        return extract_gsm8k(text)
    if mode in ("gsm8k_strict", "gsm8k_flexible"):
        return lm_eval_gsm8k(text)[0 if mode == "gsm8k_strict" else 1]
    if mode == "multiple_choice":
        return extract_choice(text, choices)
    if mode == "answer_line":
        return extract_answer_line(text)
    raise UserError(f"unknown extraction mode {mode!r}: use one of {', '.join(MODES)}")


def _pool(timeout: float) -> WorkerPool:
    global _default_pool
    with _pool_lock:
        if _default_pool is None or _default_pool.workers[0].timeout != timeout:
            if _default_pool is not None:
                _default_pool.close()
            _default_pool = WorkerPool(timeout=timeout)
        return _default_pool


def math_verdicts(pairs: Iterable[tuple[str, str]], sandbox: Optional[str] = None, timeout: float = 10.0,
                  extract: bool = True) -> list[str]:
    """Like :func:`math_equal_batch`, with the raw verdicts: ``1``, ``0``, ``T`` (timed out), ``E`` (error)."""
    items = [(str(prediction) if prediction is not None else None, str(gold)) for prediction, gold in pairs]
    answers = []
    for prediction, gold in items:
        if extract:
            gold = chain.gold_answer(gold)
            prediction = chain.extract_for_gold(prediction, gold, chain.ExtractionConfig())[0]
        answers.append((prediction, gold))
    unique = list(dict.fromkeys(pair for pair in answers if pair[0] is not None))
    if sandbox is None:
        decided = _pool(timeout).decide(unique)
    else:
        config = SimpleNamespace(sandbox_address=sandbox, timeout=timeout, max_concurrency=16, math_batch_size=1000)
        decided = decide_pairs(unique, config)
    verdict_of = dict(zip(unique, decided))
    return [verdict_of[pair] if pair[0] is not None else "0" for pair in answers]


def math_equal_batch(pairs: Iterable[tuple[str, str]], sandbox: Optional[str] = None,
                     timeout: float = 10.0) -> list[bool]:
    """Whether each prediction is equivalent to its gold answer (see the module docstring).

    Args:
        pairs: ``(prediction, gold)`` strings; whole responses and worked solutions are fine.
        sandbox: a sandbox service address, or None for local isolated workers.
        timeout: seconds allowed per comparison; a comparison that runs out counts as not equal.
    """
    return [VERDICTS[verdict] for verdict in math_verdicts(pairs, sandbox, timeout)]


def close() -> None:
    """Stop the local workers started by :func:`math_equal_batch` (they also stop when Python exits)."""
    global _default_pool
    with _pool_lock:
        if _default_pool is not None:
            _default_pool.close()
            _default_pool = None


atexit.register(close)
