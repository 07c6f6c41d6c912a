"""The grader registry: ``eval_type`` -> a function grading a list of lines in place.

A grader takes the lines of one prediction file and the evaluation config and returns the lines
with ``is_correct`` (and its own fields) added. Adding an evaluation type is registering one here.
"""

from __future__ import annotations

from typing import Any, Callable

from nemo_eval.errors import UserError
from nemo_eval.evaluation.code_grader import build_test_program, extract_code, grade_result, new_nonce, text_for_sandbox
from nemo_eval.evaluation.math_grader import grade_math_lines
from nemo_eval.registry import Registry
from nemo_eval.sandbox import SandboxClient

Grader = Callable[[list[dict[str, Any]], Any], list[dict[str, Any]]]
GRADERS: Registry[Grader] = Registry("eval type")


@GRADERS.register("code")
def grade_code(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """Run every line's tests in the sandbox, concurrently.

    A line whose program the sandbox could not run (or refused) is recorded with
    ``execution_status: "error"`` and ``grading_error: "sandbox error"``; the others are graded
    regardless. Only a sandbox that cannot be reached at all stops the step (one line, exit 2).
    """
    for number, line in enumerate(lines, start=1):
        if "test" not in line or "entry_point" not in line:
            raise UserError(f"line {number} has no 'test'/'entry_point' fields: not a code benchmark's output "
                            "(use the matching ++eval_type)")
    nonce = new_nonce()
    client = SandboxClient(config.sandbox_address, max_concurrency=config.max_concurrency)
    try:
        client.health()  # unreachable: SandboxUnavailable now, before any item is tried
        jobs = [{"code": text_for_sandbox(build_test_program(line, extract_code(line.get("generation"),
                                                                                 line["entry_point"]), nonce)),
                 "timeout": config.timeout} for line in lines]
        results = client.execute_many(jobs, errors_as_results=True)
    finally:
        client.close()
    return [{**line, **grade_result(result, nonce)} for line, result in zip(lines, results)]


GRADERS.register("math", grade_math_lines)
