"""The metrics registry: a benchmark's ``metrics_type`` names the family that summarises its results.

Every run is summarised with the values all families share (:data:`COMMON_COLUMNS`, computed by
:mod:`nemo_eval.metrics.compute`) plus the family's own: a :class:`MetricsFamily` declares its
columns and computes them from one run's graded lines. The declared columns are what metrics.json
holds for it and what the summary tables and CSV show, so a family added here (or by a plugin) shows
up everywhere without editing any other file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

from nemo_eval.registry import Registry, resolve

# values every family's rows can have, in table order; grading_errors comes last
COMMON_COLUMNS = ("num_entries", "accuracy", "accuracy_std", "ci95_low", "ci95_high", "no_answer", "avg_tokens",
                  # present when the lines were judged (nemo-eval judge; metrics/judge_metrics.py)
                  "judge_accuracy", "judge_invalid", "judge_agreement", "accuracy_any", "accuracy_both")
LAST_COLUMNS = ("grading_errors",)

Summarize = Callable[[list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class MetricsFamily:
    """One metrics family.

    Attributes:
        name: Registry name (a benchmark's ``defaults.metrics_type``).
        description: One line for help texts.
        columns: The values ``summarize`` adds, in the order tables show them.
        summarize: ``summarize(lines) -> {column: value}`` for one run's graded lines (only declared columns;
            a column may be left out when it does not apply), or ``"module:function"`` naming it.
        group_by: A line field (e.g. ``subject``); when set, the greedy run also gets one row per value,
            ``greedy[<value>]``, with the same columns.
        verdicts: Columns that are the accuracy of another boolean line field, as ``(column, field)`` pairs
            (e.g. ``("accuracy_lm_eval", "is_correct_lm_eval")``), computed here for each run (list them in
            ``columns`` too, for their place in tables); sampled runs also get them as they get ``accuracy``
            (the mean over seeds in ``pass@1[avg-of-k]``, and ``pass@j``) when every line carries the field.
    """

    name: str
    description: str
    columns: tuple[str, ...] = ()
    summarize: Union[str, Summarize, None] = None
    group_by: str | None = None
    verdicts: tuple[tuple[str, str], ...] = ()

    def values(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """The family's own values for one run (nothing for a family without columns): its ``summarize``
        values, and each ``verdicts`` column as the share of lines whose field is true (only when some
        line carries the field)."""
        values = dict(resolve(self.summarize)(lines)) if self.summarize is not None else {}
        for column, verdict in self.verdicts:
            if lines and any(verdict in line for line in lines):
                values[column] = round(100 * sum(bool(line.get(verdict)) for line in lines) / len(lines), 2)
        return {column: values[column] for column in self.columns if column in values}


METRICS: Registry[MetricsFamily] = Registry(
    "metrics type", hint="Register one with nemo_eval.metrics.families.METRICS.register (docs/architecture.md).")
DEFAULT_FAMILY = "math"  # for files of benchmarks nemo-eval does not know

METRICS.register("math", MetricsFamily(
    name="math", description="answer-format adherence, reasoning format, lm-eval's own scores (gsm8k strict/flexible, "
                             "minerva_math exact_match/math_verify)",
    columns=("accuracy_strict", "accuracy_flexible", "accuracy_exact_match", "accuracy_math_verify", "format_adherence",
             "reasoning_format"),
    summarize="nemo_eval.metrics.math_metrics:summarize"))
METRICS.register("code", MetricsFamily(
    name="code", description="lm-evaluation-harness's own pass@1 next to ours (lm-eval prompts)",
    columns=("accuracy_lm_eval",), verdicts=(("accuracy_lm_eval", "is_correct_lm_eval"),)))
METRICS.register("multiple_choice", MetricsFamily(
    name="multiple_choice", description="simple-evals' strict accuracy (first 'Answer: X'); a row per subject",
    columns=("accuracy_strict",), summarize="nemo_eval.metrics.choice_metrics:summarize", group_by="subject"))
METRICS.register("ifeval", MetricsFamily(
    name="ifeval", description="IFEval prompt- and instruction-level accuracy, strict and loose (lm-eval's names)",
    columns=("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"),
    summarize="nemo_eval.metrics.ifeval_metrics:summarize"))


def ordered_columns(families: Iterable[MetricsFamily]) -> list[str]:
    """The table columns of results summarised by ``families``: shared ones, then each family's, in order."""
    columns = list(COMMON_COLUMNS)
    for family in families:
        columns += [c for c in family.columns if c not in columns and c not in LAST_COLUMNS]
    return columns + list(LAST_COLUMNS)


def family_for(benchmark: str | None) -> MetricsFamily:
    """The family of a benchmark's ``metrics_type`` (:data:`DEFAULT_FAMILY` for unknown benchmarks)."""
    from nemo_eval.datasets.spec import BENCHMARKS

    if benchmark and benchmark in BENCHMARKS:
        return METRICS.get(BENCHMARKS.get(benchmark).defaults.metrics_type)
    return METRICS.get(DEFAULT_FAMILY)
