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

lm-evaluation-harness's own pass@1 (0.4.13, ``mbpp`` and ``humaneval`` tasks) is computed next to ours
as ``is_correct_lm_eval`` when the prompt config that generated the file names the task
(``lm_eval_task``; ``++lm_eval_task`` forces it). Its program, exactly what its ``code_eval`` metric
executes (:func:`lm_eval_program`), runs in the same sandbox batch under lm-eval's rule: it passes when
``exec`` of it finishes without an exception within ``++lm_eval_timeout`` seconds (3.0, code_eval's
default; a SIGALRM timer as in code_eval, and the sandbox stops it one second later).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.sandbox import SandboxClient

LM_EVAL_STOPS = {"mbpp": ("[DONE]",), "humaneval": ("\nclass", "\ndef", "\n#", "\nif", "\nprint")}
NO_LM_EVAL = ("", "none")


@dataclass
class CodeSettings:
    """The code grader's own settings (added to the evaluation step's ``++settings``)."""

    lm_eval_task: Optional[str] = field(default=None, metadata={
        "help": "code: also compute lm-evaluation-harness's pass@1 of this task (mbpp or humaneval) as "
                "is_correct_lm_eval; none: do not (default: the task the prompt config names, if any)"})
    lm_eval_timeout: float = field(default=3.0, metadata={
        "help": "code: seconds each lm-eval program may run (lm-eval's code_eval default)"})


def check(config: Any) -> Optional[str]:
    """What is wrong with the code settings of an evaluation config, or None."""
    if config.lm_eval_task not in (None, *NO_LM_EVAL, *LM_EVAL_STOPS):
        return f"++lm_eval_task must be mbpp, humaneval or none (got {config.lm_eval_task!r})"
    if config.lm_eval_timeout <= 0:
        return "++lm_eval_timeout must be > 0"
    return None


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


def lm_eval_program(item: dict[str, Any], generation: Optional[str], task: str) -> str:
    """The program lm-eval 0.4.13's ``code_eval`` runs for ``generation``: candidate + "\\n" + reference.

    The generation is cut at the task's stop strings (as lm-eval does; a no-op when the server already
    stopped there) and used as it is, with no code-fence extraction. mbpp: candidate = the generation,
    reference = its three ``test_list`` asserts (no setup code, no challenge tests). humaneval (its
    ``create_test`` filter): candidate = prompt + generation, reference = test + ``check(entry_point)``.
    """
    text = generation or ""
    for stop in LM_EVAL_STOPS[task]:
        text = text.split(stop)[0]
    if task == "mbpp":
        return text + "\n" + "\n".join(item["test_list"][:3])
    return f"{item['prompt']}{text}\n{item['test']}\ncheck({item['entry_point']})"


def build_lm_eval_program(program: str, nonce: str, timeout: float) -> str:
    """A script that prints ``nonce`` only if ``exec(program, {})`` finishes without an exception within
    ``timeout`` seconds, as code_eval decides "passed" (there ``__name__`` is not ``"__main__"`` either)."""
    return ("import os as _os, signal as _signal\n"
            "class TimeoutException(Exception):\n    pass\n"   # code_eval's (not an OSError, unlike TimeoutError)
            "def _timed_out(*_):\n    raise TimeoutException('Timed out!')\n"
            "_signal.signal(_signal.SIGALRM, _timed_out)\n"
            f"_signal.setitimer(_signal.ITIMER_REAL, {float(timeout)!r})\n"
            f"exec(compile({program!r}, '<lm-eval>', 'exec'), {{}})\n"
            "_signal.setitimer(_signal.ITIMER_REAL, 0)\n"
            f"_os.write(1, b'\\n{nonce}\\n')\n")


def lm_eval_task(lines: list[dict[str, Any]], config: Any) -> Optional[str]:
    """The lm-eval task whose pass@1 to compute for ``lines``, or None."""
    task = getattr(config, "lm_eval_task", None)
    if task in (None, *NO_LM_EVAL):
        return None
    needed = "test_list" if task == "mbpp" else "prompt"
    for number, line in enumerate(lines, start=1):
        if needed not in line:
            raise UserError(f"line {number} has no {needed!r} field: lm-eval's {task} cannot be computed for it "
                            "(++lm_eval_task=none to skip it)")
    return task


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
    task = lm_eval_task(lines, config)
    nonce = new_nonce()
    client = SandboxClient(config.sandbox_address, max_concurrency=config.max_concurrency)
    try:
        client.health()  # unreachable: SandboxUnavailable now, before any item is tried
        jobs = [{"code": text_for_sandbox(build_test_program(line, extract_code(line.get("generation"),
                                                                                 line["entry_point"]), nonce)),
                 "timeout": config.timeout} for line in lines]
        if task:  # lm-eval's programs in the same batch; its own timer decides, the sandbox's is a backstop
            jobs += [{"code": text_for_sandbox(build_lm_eval_program(
                          lm_eval_program(line, line.get("generation"), task), nonce, config.lm_eval_timeout)),
                      "timeout": config.lm_eval_timeout + 1} for line in lines]
        results = client.execute_many(jobs, errors_as_results=True)
    finally:
        client.close()
    graded = [{**line, **grade_result(result, nonce)} for line, result in zip(lines, results)]
    for line, result in zip(graded, results[len(lines):]):
        line["is_correct_lm_eval"] = grade_result(result, nonce)["is_correct"]
        if result.get("process_status", "error") == "error":
            line["grading_error"] = "sandbox error"
    return graded
