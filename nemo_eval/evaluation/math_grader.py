"""Grading math benchmarks: answers are extracted here, equivalence is decided in isolation.

Extraction (``answer_extraction``) only scans strings, so it runs in our process. Deciding
equivalence parses model-written math with sympy, which can hang and eat memory, so it runs in the
sandbox (``evaluate``) or in a local isolated worker (``local_worker``, the API's default): the
program is ``math_equivalence.py`` with its helper modules inlined (:func:`grading_program`).

Identical (predicted, expected) pairs are decided once. The pairs are cut into one batch per
sandbox worker that can run at once (the sandbox's ``/health`` tells its workers and CPUs; at most
``math_batch_size`` pairs and what fits its output cap), so the cost of starting Python and
importing sympy is paid once per worker, and the batches run at the same time.

Every pair has a soft time limit inside the batch (``timeout``, a timer signal). A batch stops by
itself before the sandbox's hard limit and hands the rest back (``yield``), which is sent again; a
pair stuck in C code ignores the timer, so the sandbox kills the batch at its hard limit: the
verdicts printed so far are kept, that pair is recorded as timed out (wrong), and the rest of the
batch is sent again, so a hanging input never stalls the others.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.evaluation.answer_extraction import ExtractionConfig, extract_for_gold, gold_answer, has_reasoning
from nemo_eval.evaluation.answer_modes import lm_eval_gsm8k, lm_eval_match
from nemo_eval.sandbox import SandboxClient
from nemo_eval.sandbox.client import SandboxUnavailable

PROGRAM_MODULES = ("braces", "math_normalize", "math_structure", "math_latex", "math_values", "math_sets", "math_equivalence")
VERDICTS = {"1": True, "0": False, "T": False, "E": False, "U": False}
UNAVAILABLE = "unavailable"
# T and E are decided (counted wrong): the comparison timed out or failed on that input; U was never
# decided (the sandbox could not run its batch) and is graded again on the next run
GRADING_ERRORS = {"T": "timeout", "E": "grader error", "U": "sandbox error"}


def grading_program() -> str:
    """The standalone program (standard library + sympy): the grading modules, inlined in order."""
    here = Path(__file__).parent
    parts = []
    for name in PROGRAM_MODULES:
        source = (here / f"{name}.py").read_text(encoding="utf-8")
        source = re.sub(r"^from nemo_eval\.evaluation\.\w+ import .*$", "", source, flags=re.M)
        parts.append(source.replace("from __future__ import annotations\n", ""))
    return "from __future__ import annotations\n" + "\n".join(parts)


def parse_verdicts(stdout: str, nonce: str, count: int) -> tuple[dict[int, str], bool]:
    """``({position: verdict}, yielded)`` from a batch's output (lines without the nonce are ignored)."""
    found = {}
    for match in re.finditer(rf"^{nonce} (\d+) ([10TE])$", stdout, re.M):
        position = int(match.group(1))
        if position < count:
            found[position] = match.group(2)
    return found, bool(re.search(rf"^{nonce} yield$", stdout, re.M))


def decide_in_batches(pairs: list, run: Callable[[list, str], tuple[dict[int, str], bool, Optional[str]]]) -> list[str]:
    """Verdicts for ``pairs`` through ``run(pairs, nonce) -> (verdicts, yielded, failure)``, resending the rest.

    ``failure`` is ``"timeout"`` when the batch was killed at its hard limit (the pair that was running
    timed out), :data:`UNAVAILABLE` when the isolation could not run it (every pair left is ``U``,
    undecided), another string when it died otherwise (that pair is a grader error), None when it ended.
    """
    verdicts: dict[int, str] = {}
    remaining = list(range(len(pairs)))
    while remaining:
        found, yielded, failure = run([pairs[i] for i in remaining], secrets.token_hex(8))
        verdicts.update({remaining[position]: verdict for position, verdict in found.items()})
        left = [i for i in remaining if i not in verdicts]
        if failure == UNAVAILABLE:
            verdicts.update({i: "U" for i in left})
            break
        if left and not yielded:
            verdicts[left[0]] = "T" if failure == "timeout" else "E"   # it was running when the batch ended
            left = left[1:]
        remaining = left
    return [verdicts[i] for i in range(len(pairs))]


class SandboxBatcher:
    """Decides pairs in the sandbox service, one execution per batch."""

    def __init__(self, client: SandboxClient, timeout: float, max_timeout: float) -> None:
        self.client, self.timeout, self.max_timeout = client, timeout, max_timeout
        self.program = grading_program()

    def decide(self, pairs: list) -> list[str]:
        return decide_in_batches(pairs, self._run)

    def _run(self, pairs: list, nonce: str) -> tuple[dict[int, str], bool, Optional[str]]:
        hard_limit = min(self.max_timeout, 2 * self.timeout + 10 + 0.5 * len(pairs))
        budget = max(1.0, hard_limit - 2 * self.timeout - 5)
        payload = json.dumps({"nonce": nonce, "timeout": self.timeout, "budget": budget, "pairs": pairs})
        try:
            result = self.client.execute(self.program, timeout=hard_limit, std_input=payload)
        except SandboxUnavailable:   # after the client's retries: these pairs are recorded, the file goes on
            return {}, False, UNAVAILABLE
        found, yielded = parse_verdicts(result.get("stdout") or "", nonce, len(pairs))
        yielded = yielded or bool(result.get("stdout_truncated"))   # lines lost in the middle: send those again
        status = result.get("process_status")
        if status == "completed" and not found and "Traceback (most recent call last)" in (result.get("stderr") or ""):
            self._raise_for(result)  # nothing decided and a traceback: the program itself cannot run here
        return found, yielded, "timeout" if status == "timeout" else (None if status == "completed" else str(status))

    @staticmethod
    def _raise_for(result: dict[str, Any]) -> None:
        stderr = (result.get("stderr") or "").strip()
        if "No module named 'sympy'" in stderr:
            raise UserError("the sandbox's Python has no sympy, which math grading needs: install python3-sympy where "
                            "the sandbox runs (bwrap mode: apt-get install python3-sympy; docker mode: "
                            "nemo-eval sandbox build --make-base)")
        last = stderr.splitlines()[-1] if stderr else f"exit code {result.get('return_code')}"
        raise UserError(f"the math grading program failed in the sandbox: {last[:300]}")


def largest_batch(max_output_chars: int, configured: int) -> int:
    """The most pairs whose verdict lines fit the sandbox's output cap (``<nonce> <index> <v>`` each)."""
    return max(1, min(configured, int(0.9 * max_output_chars) // (len(secrets.token_hex(8)) + 10)))


def batches(pairs: list, workers: int, max_size: int) -> list[list]:
    """One batch per worker (sympy is imported once per batch), none larger than ``max_size``."""
    size = max(1, min(max_size, math.ceil(len(pairs) / max(1, workers))))
    return [pairs[start:start + size] for start in range(0, len(pairs), size)]


def decide_pairs(pairs: list[tuple[str, str]], config: Any) -> list[str]:
    """Verdicts (``1``/``0``/``T``/``E``) for unique pairs, using the sandbox at ``config.sandbox_address``."""
    if not pairs:
        return []
    client = SandboxClient(config.sandbox_address, max_concurrency=config.max_concurrency)
    try:
        health = client.health()
        max_timeout = float(health.get("max_timeout", 120))
        workers = max(1, min(config.max_concurrency, int(health.get("workers") or config.max_concurrency),
                             int(health.get("cpus") or config.max_concurrency)))
        batcher = SandboxBatcher(client, min(config.timeout, max_timeout), max_timeout)
        size = largest_batch(int(health.get("max_output_chars", 20000)), config.math_batch_size)
        with ThreadPoolExecutor(workers) as pool:
            decided = pool.map(batcher.decide, batches(pairs, workers, size))
            return [verdict for batch in decided for verdict in batch]
    finally:
        client.close()


def grade_math_lines(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """Add ``predicted_answer``, ``extraction_strategy``, ``is_correct`` (and lm-eval's scores, see
    ``extraction.lm_eval_task``) to each line."""
    extraction: ExtractionConfig = config.extraction
    for number, line in enumerate(lines, start=1):
        if "expected_answer" not in line:
            raise UserError(f"line {number} has no 'expected_answer': not a math benchmark's output "
                            "(use the matching ++eval_type)")
    graded, pairs, pair_index = [], [], {}
    for line in lines:
        predicted, strategy = extract_for_gold(line.get("generation"), gold_answer(line["expected_answer"]),
                                               extraction, finished=line.get("finish_reason") != "length")
        line = {**line, "predicted_answer": predicted, "extraction_strategy": strategy}
        line.pop("grading_error", None)
        if predicted is not None:
            key = (predicted, gold_answer(line["expected_answer"]))
            pair_index.setdefault(key, len(pairs))
            if len(pairs) == pair_index[key]:
                pairs.append(key)
        reasoning = has_reasoning(line, extraction)
        if reasoning is not None:
            line["has_reasoning"] = reasoning
        if extraction.lm_eval_variants and extraction.lm_eval_task != "minerva_math":
            strict, flexible = lm_eval_gsm8k(line.get("generation"), extraction.lm_eval_task or "gsm8k")
            line.update(predicted_answer_strict=strict, is_correct_strict=lm_eval_match(strict, line["expected_answer"]),
                        predicted_answer_flexible=flexible,
                        is_correct_flexible=lm_eval_match(flexible, line["expected_answer"]))
        graded.append(line)
    verdicts = decide_pairs(pairs, config)
    for line in graded:
        verdict: Optional[str] = None
        if line["predicted_answer"] is not None:
            verdict = verdicts[pair_index[(line["predicted_answer"], gold_answer(line["expected_answer"]))]]
        line["is_correct"] = VERDICTS.get(verdict, False)
        if verdict in GRADING_ERRORS:
            line["grading_error"] = GRADING_ERRORS[verdict]
    if extraction.lm_eval_task == "minerva_math":
        # imported here: the local workers it runs import this module's batch protocol
        from nemo_eval.evaluation.lm_eval_math import add_minerva_scores

        add_minerva_scores(graded, extraction.lm_eval_python)
    return graded
