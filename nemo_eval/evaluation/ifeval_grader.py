"""The ``ifeval`` eval type: check every instruction of a prompt against the response, strictly and loosely.

As the IFEval paper defines the two scores:

- **strict**: each instruction's checker on the response as it is;
- **loose**: an instruction counts as followed when its checker passes on any of eight variants of
  the response: as it is, without its first line, without its last line, without both, and each of
  those four with every ``*`` removed (markdown emphasis).

An empty (or blank) response, or variant, follows nothing. Fields added to each line:
``follow_instruction_list`` and ``follow_instruction_list_loose`` (one verdict per instruction),
``is_correct`` (all followed, strict: the prompt-level strict score) and ``is_correct_loose``.

The checkers are plain string scans (:mod:`nemo_eval.evaluation.ifeval_checks`), linear in the
response, so they run in this process. A response longer than ``ifeval_max_chars`` is not checked:
it follows nothing and gets ``grading_error: "response too long"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.evaluation.ifeval_checks import CHECKERS
from nemo_eval.evaluation.ifeval_text import require_libraries

TOO_LONG = "response too long"


@dataclass
class IfevalSettings:
    """How long a response the IFEval checkers look at."""

    ifeval_max_chars: int = field(default=200_000, metadata={
        "help": "ifeval: responses longer than this many characters follow no instruction (grading_error)"})


def check(config: Any) -> Optional[str]:
    """What is wrong with the IFEval settings of an evaluation config, or None."""
    return "++ifeval_max_chars must be >= 1" if config.ifeval_max_chars < 1 else None


def loose_variants(response: str) -> list[str]:
    """The eight responses the loose score tries (see the module docstring), in the reference's order."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), without_first, without_last, without_both,
            without_first.replace("*", ""), without_last.replace("*", ""), without_both.replace("*", "")]


def follows(instruction_id: str, kwargs: dict[str, Any], responses: list[str]) -> bool:
    """Whether any of ``responses`` (not blank) follows the instruction."""
    checker = CHECKERS[instruction_id]
    return any(text.strip() and checker(text, kwargs) for text in responses)


def validate_line(line: dict[str, Any], number: int) -> None:
    ids, kwargs = line.get("instruction_id_list"), line.get("kwargs")
    if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
        raise UserError(f"line {number} has no 'instruction_id_list' and matching 'kwargs' lists: not an IFEval "
                        "output (use the matching ++eval_type)")
    unknown = [name for name in ids if name not in CHECKERS]
    if unknown:
        raise UserError(f"line {number}: unknown IFEval instruction(s) {', '.join(map(str, unknown))}; known: "
                        f"{', '.join(sorted(CHECKERS))}")


def grade_line(line: dict[str, Any], max_chars: int = 200_000) -> dict[str, Any]:
    """``line`` with the strict and loose verdicts added."""
    response = line.get("generation") or ""
    graded = dict(line)
    graded.pop("grading_error", None)
    pairs = list(zip(line["instruction_id_list"], line["kwargs"]))
    if len(response) > max_chars:
        strict = loose = [False] * len(pairs)
        graded["grading_error"] = TOO_LONG
    else:
        variants = loose_variants(response)
        strict = [follows(name, kwargs or {}, [response]) for name, kwargs in pairs]
        loose = [s or follows(name, kwargs or {}, variants[1:]) for s, (name, kwargs) in zip(strict, pairs)]
    graded.update(follow_instruction_list=strict, follow_instruction_list_loose=loose,
                  is_correct=all(strict), is_correct_loose=all(loose))
    return graded


def grade_ifeval(lines: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """The ``ifeval`` eval type's grader."""
    require_libraries()
    for number, line in enumerate(lines, start=1):
        validate_line(line, number)
    max_chars = getattr(config, "ifeval_max_chars", 200_000)
    return [grade_line(line, max_chars) for line in lines]
