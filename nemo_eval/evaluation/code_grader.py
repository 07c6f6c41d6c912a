"""Grading code benchmarks (HumanEval, MBPP): extract the program, run its tests in the sandbox.

Extraction: the last fenced code block that defines the entry point (else the last fenced block;
an unclosed fence at the end counts, since generations get cut off); with no fence at all, the
generation is taken as the completion continuing the prompt.

Test program:
- HumanEval (items with a ``prompt``): prompt + code + test + ``check(entry_point)``. When the code
  holds the whole function it redefines the prompt's stub, and the prompt still supplies imports and
  helper functions; when it is only a body, it completes the prompt.
- MBPP: code + test (test imports, setup code, the asserts).

``is_correct`` is true when the program ran to its end with exit code 0 within the timeout *and*
printed, after the tests, a random nonce chosen at grading time. The nonce catches programs that
exit before the tests run (``sys.exit(0)`` or ``os._exit(0)`` at the end of a script, common in
generated code), which an exit-code check counts as passing. It is not a defence against code
written to fool the grader: the tests run in the candidate's own process, which can read its
source file (and with it the nonce). That is true of every harness that runs tests in-process.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.sandbox import SandboxClient

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
CODE_LANGUAGES = {"", "python", "py", "python3"}


def extract_code(generation: Optional[str], entry_point: str = "") -> str:
    """The program in a generation (see the module docstring for the rule)."""
    if not generation:
        return ""
    blocks = [body for language, body in FENCE.findall(generation) if language.lower() in CODE_LANGUAGES]
    if not blocks:
        return generation
    if entry_point:
        defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
        if defining:
            return defining[-1]
    return blocks[-1]


def new_nonce() -> str:
    return "nemo-eval-tests-passed-" + secrets.token_hex(16)


def build_test_program(item: dict[str, Any], code: str, nonce: str) -> str:
    """The program that prints ``nonce`` last only if ``code`` passes ``item``'s tests."""
    entry_point = item.get("entry_point", "")
    if "prompt" in item:  # HumanEval layout
        program = f"{item['prompt']}{code}\n\n{item['test']}\n\ncheck({entry_point})\n"
    else:
        program = f"{code}\n\n{item['test']}\n"
    return program + f"\nimport os as _nemo_eval_os\n_nemo_eval_os.write(1, b'\\n{nonce}\\n')\n"


def text_for_sandbox(program: str) -> str:
    """``program`` as Unicode text: lone surrogates (which no UTF-8 file can hold) become ``?``."""
    try:
        program.encode("utf-8")
        return program
    except UnicodeEncodeError:
        return program.encode("utf-8", "replace").decode("utf-8")


def grade_result(result: dict[str, Any], nonce: str) -> dict[str, Any]:
    """Fields added to a line from one sandbox result.

    ``execution_status`` is the sandbox's ``process_status``: ``completed``, ``timeout``,
    ``memory_limit``, ``disk_limit`` (all graded: only a completed run can pass) or ``error`` (the
    sandbox could not run the program: the line also gets ``grading_error: "sandbox error"`` and counts
    as not graded).
    """
    status = result.get("process_status", "error")
    passed = (status == "completed" and result.get("return_code") == 0
              and (result.get("stdout") or "").rstrip().endswith(nonce))
    fields: dict[str, Any] = {"is_correct": passed, "execution_status": status}
    if not passed:
        stderr = (result.get("stderr") or "").strip()
        fields["execution_error"] = stderr.splitlines()[-1][:300] if stderr else f"{status}, return code {result.get('return_code')}"
    if status == "error":
        fields["grading_error"] = "sandbox error"
    return fields


def grade_code(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """The ``code`` eval type's grader: run every line's tests in the sandbox, concurrently.

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
