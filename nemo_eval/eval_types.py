"""The eval-type registry: what a benchmark's ``eval_type`` means, for every stage that needs it.

An :class:`EvalType` says which fields every prepared item must have (checked by ``prepare-data``),
which grader the evaluation step runs, and which settings that grader adds to the evaluation step's
``++settings``. It lives outside the stages because both ``datasets`` (required fields) and
``evaluation`` (grader, settings) read it; the built-in entries name their code in ``evaluation`` as
``"module:attribute"`` strings (resolved with :func:`nemo_eval.registry.resolve` when grading), so no
upstream stage imports a downstream one. Plugins may pass the objects themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from nemo_eval.registry import Registry

# grade(lines, config) -> the lines with is_correct (and the grader's own fields) added
Grader = Callable[[list[dict[str, Any]], Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvalType:
    """One way of grading generations.

    Attributes:
        name: Registry name (a benchmark's ``defaults.eval_type``, ``++eval_type``).
        description: One line for help texts.
        grader: The grader, or ``"module:function"`` naming it.
        required_fields: Fields every prepared item must have, as strings (``id`` and ``problem`` always).
        may_be_empty: Required fields that may be empty strings.
        settings: A dataclass (or ``"module:Class"``) whose fields join the evaluation step's settings
            as top-level ``++name=value`` keys; None when the grader has none of its own.
        benchmark_section: The settings field (a nested dataclass) that a benchmark.yaml's ``evaluation:``
            section fills; None when benchmarks of this type take no such section.
        check: ``check(config) -> problem or None`` for its settings, or ``"module:function"``.
    """

    name: str
    description: str
    grader: Union[str, Grader]
    required_fields: tuple[str, ...] = ("id", "problem")
    may_be_empty: tuple[str, ...] = ()
    settings: Union[str, type, None] = None
    benchmark_section: Optional[str] = None
    check: Union[str, Callable[[Any], Optional[str]], None] = None


EVAL_TYPES: Registry[EvalType] = Registry(
    "eval type", hint="Register one with nemo_eval.eval_types.EVAL_TYPES.register (docs/architecture.md).")

EVAL_TYPES.register("math", EvalType(
    name="math", description="extract the final answer and decide its equivalence with expected_answer in the sandbox",
    grader="nemo_eval.evaluation.math_grader:grade_math_lines",
    required_fields=("id", "problem", "expected_answer"), may_be_empty=("expected_answer",),
    settings="nemo_eval.evaluation.math_settings:MathSettings", benchmark_section="extraction",
    check="nemo_eval.evaluation.math_settings:check"))
EVAL_TYPES.register("code", EvalType(
    name="code", description="run the benchmark's tests against the generated program in the sandbox",
    grader="nemo_eval.evaluation.code_grader:grade_code", required_fields=("id", "problem", "test", "entry_point"),
    settings="nemo_eval.evaluation.code_grader:CodeSettings", check="nemo_eval.evaluation.code_grader:check"))
EVAL_TYPES.register("multiple_choice", EvalType(
    name="multiple_choice", description="find the chosen letter (A-J) and compare it with expected_answer",
    grader="nemo_eval.evaluation.choice_grader:grade_choices",
    required_fields=("id", "problem", "expected_answer", "options_text")))
EVAL_TYPES.register("ifeval", EvalType(
    name="ifeval", description="check each IFEval instruction (25 types) against the response, strict and loose",
    grader="nemo_eval.evaluation.ifeval_grader:grade_ifeval",
    settings="nemo_eval.evaluation.ifeval_grader:IfevalSettings", check="nemo_eval.evaluation.ifeval_grader:check"))


def get_eval_type(name: str) -> EvalType:
    """The eval type ``name``; UserError listing the known ones otherwise."""
    return EVAL_TYPES.get(name)


def guess_eval_type(line: dict[str, Any]) -> Optional[str]:
    """The eval type whose own required fields (beyond ``id`` and ``problem``, which input files may
    lack) ``line`` has, the most specific one; None when none fits."""
    fitting = []
    for name, kind in EVAL_TYPES.items():
        own = [key for key in kind.required_fields if key not in ("id", "problem")]
        if own and all(key in line for key in own):
            fitting.append((len(own), name))
    return max(fitting)[1] if fitting else None
