"""The math accuracy reward: 1.0 when ``nemo-eval evaluate`` would count the completion correct, else 0.0.

The answer is found with the same extraction as ``evaluate`` (``answer_extraction.extract_for_gold``,
with a benchmark's ``evaluation:`` settings when ``benchmark=`` names one) and the gold with
``gold_answer``; equivalence is decided in isolation, never in the trainer's process: in the sandbox
service at ``sandbox`` or in local isolated workers (``nemo_eval.evaluation.local_worker.WorkerPool``,
the same processes as ``math_equal_batch(pairs, sandbox=None)``). The workers start on first use and
stay alive across calls, so each batch pays no start-up. A batch is pipelined: answers are found a
chunk at a time here while the workers decide the previous chunk. Identical (answer, gold) pairs are
decided once per batch, and decided verdicts are remembered (a bounded cache) across batches.

Isolation, strongest first: the sandbox service (when ``sandbox`` is given and answers); local workers
in a bubblewrap jail; when no jail can be made here (unprivileged containers), plain worker processes
with an address-space limit, their own session and a hard deadline per comparison. Each fallback is
announced once by a warning, never taken silently.
"""

from __future__ import annotations

import atexit
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Optional, Sequence

from nemo_eval.errors import UserError
from nemo_eval.evaluation.answer_extraction import ExtractionConfig, extract_for_gold, gold_answer, validate
from nemo_eval.evaluation.local_worker import WorkerPool
from nemo_eval.evaluation.math_grader import GRADING_ERRORS, decide_pairs
from nemo_eval.rewards.common import GOLD_COLUMNS, MAX_CHARS, TOO_LONG, GradingStats, Once, column, completion_text, warn_ungraded

PIPELINE_FIRST, PIPELINE_CHUNK = 128, 256  # completions per chunk: a small first one gets the workers going


def benchmark_extraction(benchmark: Optional[str]) -> ExtractionConfig:
    """The extraction settings ``evaluate`` uses for ``benchmark`` (its ``benchmark.yaml`` ``evaluation:``)."""
    config = ExtractionConfig()
    if not benchmark:
        return config
    from nemo_eval.datasets.spec import BENCHMARKS

    spec = BENCHMARKS.get(benchmark)
    for key, value in (spec.evaluation or {}).items():
        if not hasattr(config, key):
            raise UserError(f"{benchmark}'s benchmark.yaml evaluation.{key} is not an extraction setting")
        setattr(config, key, value)
    return config


class MathDecider:
    """Decides (answer, gold) pairs in isolation: the sandbox, else local workers; verdicts 1/0/T/E/U.

    Args:
        sandbox: a sandbox service address (``http://127.0.0.1:6000``), or None for local workers.
        timeout: seconds per comparison (``evaluate``'s ``++timeout``, 10 by default).
        workers: local worker processes (0: up to 4, one per core).
    """

    def __init__(self, sandbox: Optional[str] = None, timeout: float = 10.0, workers: int = 0) -> None:
        self.sandbox, self.timeout, self.workers = sandbox, timeout, workers
        self.pool: Optional[WorkerPool] = None
        self.lock = threading.Lock()
        self.no_sandbox, self.no_jail = Once(), Once()
        atexit.register(self.close)

    def isolation(self) -> str:
        """``sandbox``, ``bwrap`` (local jailed workers) or ``process`` (plain worker processes)."""
        if self.sandbox:
            return "sandbox"
        return "bwrap" if self._pool().workers[0].jail else "process"

    def _pool(self) -> WorkerPool:
        with self.lock:
            if self.pool is None:
                self.pool = WorkerPool(self.workers, timeout=self.timeout)
                if not self.pool.workers[0].jail:
                    self.no_jail.warn("nemo-eval rewards: no bubblewrap jail can be made here, so math answers are "
                                      "checked in plain worker processes (address-space limit, own session, hard "
                                      "timeout; no network or file-system isolation); see docs/training.md")
            return self.pool

    def decide(self, pairs: list[tuple[str, str]]) -> list[str]:
        if not pairs:
            return []
        if self.sandbox:
            config = SimpleNamespace(sandbox_address=self.sandbox, timeout=self.timeout, max_concurrency=16,
                                     math_batch_size=1000)
            try:
                return decide_pairs(pairs, config)
            except UserError as error:   # the service cannot be reached (or run the program): local workers
                self.no_sandbox.warn(f"nemo-eval rewards: the sandbox at {self.sandbox} cannot grade ({error}); "
                                     "checking math answers in local isolated workers instead")
        return self._pool().decide(pairs)

    def close(self) -> None:
        with self.lock:
            if self.pool is not None:
                self.pool.close()
                self.pool = None


class MathReward:
    """TRL-style math accuracy reward: ``reward(prompts=None, completions=[...], answer=[...]) -> [1.0, 0.0, ...]``.

    The gold answer comes from the first of the columns ``answer``, ``expected_answer``, ``solution`` that is
    passed (a worked solution is fine: its final answer is taken, as ``evaluate`` does). A row whose gold is
    None (a multi-task dataset's rows of another kind) gets None, which TRL reads as "does not apply". A
    ``finish_reason`` column (``length`` = cut off) is honoured as ``evaluate`` honours it.

    Args:
        benchmark: use this benchmark's extraction settings (its ``benchmark.yaml`` ``evaluation:``).
        extraction: explicit extraction settings (beat ``benchmark``'s).
        sandbox: a sandbox service address; None: local isolated workers.
        timeout: seconds per comparison; one that runs out scores 0 and is counted.
        workers: local worker processes (0: one per core, up to 4).
        cache_size: decided verdicts remembered across calls (0: none).
        max_chars: longer completions are not graded (they score 0 and are counted as too long), since
            answers are found in the trainer's process (linear, but megabytes take seconds).
        name: the function name trainers log (``__name__``).
    """

    def __init__(self, benchmark: Optional[str] = None, extraction: Optional[ExtractionConfig] = None,
                 sandbox: Optional[str] = None, timeout: float = 10.0, workers: int = 0, cache_size: int = 200_000,
                 max_chars: int = MAX_CHARS, name: str = "math_reward") -> None:
        self.extraction = extraction or benchmark_extraction(benchmark)
        problem = validate(self.extraction)
        if problem:
            raise UserError(problem)
        self.decider = MathDecider(sandbox, timeout, workers)
        self.cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.cache_size, self.max_chars = cache_size, max_chars
        self.cache_lock = threading.Lock()
        self.sender = ThreadPoolExecutor(1, thread_name_prefix="nemo-eval-math-reward")
        self.stats = GradingStats()
        self.__name__ = name

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[Optional[float]]:
        completions = list(completions)
        golds = column(columns, GOLD_COLUMNS, len(completions), "gold answer")
        reasons = columns.get("finish_reason")
        finished = [True] * len(completions) if reasons is None else \
            [reason != "length" for reason in column(columns, ["finish_reason"], len(completions), "finish_reason")]
        rows = [i for i, gold in enumerate(golds) if gold is not None]   # a row without a gold: not this reward's
        scores: list[Optional[float]] = [None] * len(completions)
        values = self.score_batch([completion_text(completions[i]) for i in rows], [str(golds[i]) for i in rows],
                                  [finished[i] for i in rows])
        for index, value in zip(rows, values):
            scores[index] = value
        return scores

    def score(self, completion: Any, answer: Any) -> float:
        """Plain ``fn(completion, answer) -> float`` for one completion."""
        return self.score_batch([completion_text(completion)], [str(answer)])[0]

    def _key(self, text: str, gold: str, done: bool, gold_of: dict[str, str]) -> Any:
        """``(answer, gold)``, None (no answer), or the verdict of an item that is not sent (``L``, ``X``)."""
        if len(text) > self.max_chars:
            return "L"
        try:
            if gold not in gold_of:
                gold_of[gold] = gold_answer(gold)
            predicted = extract_for_gold(text, gold_of[gold], self.extraction, finished=done)[0]
        except Exception:  # noqa: BLE001 - one bad item must not stop a training step
            return "X"
        return (predicted, gold_of[gold]) if predicted is not None else None

    def verdicts(self, texts: Sequence[str], golds: Sequence[str],
                 finished: Optional[Sequence[bool]] = None) -> list[Optional[str]]:
        """Raw verdicts per completion: ``1``, ``0``, None (no answer found), or not graded: ``T`` (timed out),
        ``E`` (grader error), ``U`` (the sandbox could not run it), ``L`` (too long), ``X`` (extraction failed).

        Pipelined: answers are found chunk by chunk here while the isolated workers decide the previous
        chunk's new pairs (one background thread sends them), so both cores work at once.
        """
        finished = finished or [True] * len(texts)
        keys: list[Any] = []
        gold_of: dict[str, str] = {}
        known: dict[tuple[str, str], str] = {}
        sent: dict[tuple[str, str], tuple[Future, int]] = {}
        start, size = 0, PIPELINE_FIRST
        while start < len(texts):
            end = min(len(texts), start + size)
            chunk = [self._key(texts[i], golds[i], finished[i], gold_of) for i in range(start, end)]
            keys += chunk
            pairs = [k for k in chunk if isinstance(k, tuple) and k not in known and k not in sent]
            if self.cache_size:
                with self.cache_lock:
                    known.update((k, self.cache[k]) for k in pairs if k in self.cache)
            new = list(dict.fromkeys(k for k in pairs if k not in known))
            if new:
                future = self.sender.submit(self.decider.decide, new)
                sent.update((pair, (future, position)) for position, pair in enumerate(new))
            start, size = end, PIPELINE_CHUNK
        decided = {pair: future.result()[position] for pair, (future, position) in sent.items()}
        if self.cache_size:
            with self.cache_lock:
                for key, verdict in decided.items():
                    if verdict in ("1", "0"):
                        self.cache[key] = verdict
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        verdict_of = {**known, **decided}
        return [verdict_of[key] if isinstance(key, tuple) else key for key in keys]

    def score_batch(self, texts: Sequence[str], golds: Sequence[str],
                    finished: Optional[Sequence[bool]] = None) -> list[float]:
        """Scores of completions (plain strings) against gold answers."""
        verdicts = self.verdicts(texts, golds, finished)
        ungraded: dict[str, int] = {}
        reasons = {**GRADING_ERRORS, "L": TOO_LONG, "X": "extraction error"}
        for verdict in verdicts:
            if verdict in reasons:
                ungraded[reasons[verdict]] = ungraded.get(reasons[verdict], 0) + 1
        warn_ungraded(self.__name__, len(verdicts), ungraded, self.stats)
        return [1.0 if verdict == "1" else 0.0 for verdict in verdicts]

    def close(self) -> None:
        """Stop the local workers (they also stop when Python exits)."""
        self.decider.close()
