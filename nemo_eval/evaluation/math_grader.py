"""Grading math benchmarks: answers are extracted here, equivalence is decided in the sandbox.

Extraction (``answer_extraction``) only scans strings, so it runs in our process. Deciding
equivalence parses model-written math with sympy, which can execute code and hang, so it runs in
the sandbox: the program is ``math_equivalence.py`` with ``math_normalize.py`` inlined. Identical
(predicted, expected) pairs are decided once; pairs go in batches (``math_batch_size``) so the
cost of starting Python and importing sympy is paid once per batch, and batches run concurrently
on the sandbox's workers.

Every pair has a soft time limit inside the batch (``timeout``, a timer signal). A pair stuck in
C code ignores that signal; the sandbox then kills the batch at its hard limit, the verdicts
printed so far are kept, the pair that was running is recorded as timed out (wrong), and the rest
of the batch is sent again, so a hanging input never stalls the others.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.evaluation.answer_extraction import (ExtractionConfig, extract_answer, has_reasoning, lm_eval_gsm8k,
                                                    lm_eval_match)
from nemo_eval.sandbox import SandboxClient

_INLINE = "from nemo_eval.evaluation.math_normalize import *"
_VERDICTS = {"1": True, "0": False, "T": False, "E": False}


def grading_program() -> str:
    """The standalone program run in the sandbox (standard library + sympy)."""
    here = Path(__file__).parent
    normalize = (here / "math_normalize.py").read_text(encoding="utf-8")
    equivalence = (here / "math_equivalence.py").read_text(encoding="utf-8")
    future = "from __future__ import annotations\n"
    inline_at = equivalence.index(_INLINE)
    line_end = equivalence.index("\n", inline_at)
    body = equivalence[:inline_at] + normalize.replace(future, "") + equivalence[line_end:]
    return future + body.replace(future, "")


class _Batcher:
    """Decides pairs in the sandbox, batch by batch, retrying the rest of a batch that was killed."""

    def __init__(self, client: SandboxClient, timeout: float, max_timeout: float) -> None:
        self.client, self.timeout, self.max_timeout = client, timeout, max_timeout
        self.program = grading_program()

    def decide(self, pairs: list[tuple[str, str]]) -> list[str]:
        verdicts: dict[int, str] = {}
        remaining = list(range(len(pairs)))
        while remaining:
            nonce = secrets.token_hex(8)
            hard_limit = min(self.max_timeout, 2 * self.timeout + 10 + 0.5 * len(remaining))
            payload = json.dumps({"nonce": nonce, "timeout": self.timeout, "pairs": [pairs[i] for i in remaining]})
            result = self.client.execute(self.program, timeout=hard_limit, std_input=payload)
            found = self._parse(result.get("stdout") or "", nonce, remaining)
            verdicts.update(found)
            left = [i for i in remaining if i not in found]
            status = result.get("process_status")
            if status != "timeout" and "Traceback (most recent call last)" in (result.get("stderr") or ""):
                self._raise_for(result)  # pairs' own errors are caught in the program: this one is systemic
            if left:
                # the first undecided pair was running when the batch was killed (hard timeout, memory)
                verdicts[left[0]] = "T" if status == "timeout" else "E"
                left = left[1:]
            remaining = left
        return [verdicts[i] for i in range(len(pairs))]

    @staticmethod
    def _parse(stdout: str, nonce: str, remaining: list[int]) -> dict[int, str]:
        found = {}
        for match in re.finditer(rf"^{nonce} (\d+) ([10TE])$", stdout, re.M):
            position = int(match.group(1))
            if position < len(remaining):
                found[remaining[position]] = match.group(2)
        return found

    @staticmethod
    def _raise_for(result: dict[str, Any]) -> None:
        stderr = (result.get("stderr") or "").strip()
        if "No module named 'sympy'" in stderr:
            raise UserError("the sandbox's Python has no sympy, which math grading needs: install python3-sympy where "
                            "the sandbox runs (bwrap mode: apt-get install python3-sympy; docker mode: "
                            "nemo-eval sandbox build --make-base)")
        last = stderr.splitlines()[-1] if stderr else f"exit code {result.get('return_code')}"
        raise UserError(f"the math grading program failed in the sandbox: {last[:300]}")


def decide_pairs(pairs: list[tuple[str, str]], config: Any) -> list[str]:
    """Verdicts (``1``/``0``/``T``/``E``) for unique pairs, using the sandbox at ``config.sandbox_address``."""
    if not pairs:
        return []
    client = SandboxClient(config.sandbox_address, max_concurrency=config.max_concurrency)
    try:
        max_timeout = float(client.health().get("max_timeout", 120))
        batcher = _Batcher(client, min(config.timeout, max_timeout), max_timeout)
        size = max(1, min(config.math_batch_size, math.ceil(len(pairs) / config.max_concurrency)))
        batches = [pairs[start:start + size] for start in range(0, len(pairs), size)]
        with ThreadPoolExecutor(config.max_concurrency) as pool:
            return [verdict for batch in pool.map(batcher.decide, batches) for verdict in batch]
    finally:
        client.close()


def grade_math_lines(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """Add ``predicted_answer``, ``extraction_strategy``, ``is_correct`` (and the variants) to each line."""
    extraction: ExtractionConfig = config.extraction
    for number, line in enumerate(lines, start=1):
        if "expected_answer" not in line:
            raise UserError(f"line {number} has no 'expected_answer': not a math benchmark's output "
                            "(use the matching ++eval_type)")
    graded, pairs, pair_index = [], [], {}
    for line in lines:
        predicted, strategy = extract_answer(line.get("generation"), extraction)
        line = {**line, "predicted_answer": predicted, "extraction_strategy": strategy}
        line.pop("grading_error", None)
        if predicted is not None:
            key = (predicted, str(line["expected_answer"]))
            pair_index.setdefault(key, len(pairs))
            if len(pairs) == pair_index[key]:
                pairs.append(key)
        reasoning = has_reasoning(line, extraction)
        if reasoning is not None:
            line["has_reasoning"] = reasoning
        if extraction.lm_eval_variants:
            strict, flexible = lm_eval_gsm8k(line.get("generation"))
            line.update(predicted_answer_strict=strict, is_correct_strict=lm_eval_match(strict, line["expected_answer"]),
                        predicted_answer_flexible=flexible,
                        is_correct_flexible=lm_eval_match(flexible, line["expected_answer"]))
        graded.append(line)
    verdicts = decide_pairs(pairs, config)
    for line in graded:
        verdict: Optional[str] = None
        if line["predicted_answer"] is not None:
            verdict = verdicts[pair_index[(line["predicted_answer"], str(line["expected_answer"]))]]
        line["is_correct"] = _VERDICTS.get(verdict, False)
        if verdict in ("T", "E"):
            line["grading_error"] = "timeout" if verdict == "T" else "grader error"
    return graded
