"""Metrics of one benchmark from its graded prediction files.

Files are ``output-greedy.jsonl`` (one greedy run) and ``output-rs<seed>.jsonl`` (sampled runs);
each line must have ``is_correct`` (run ``evaluate`` first). Items are matched across files by ``id``.

Rows of the result (all percentages 0-100):
- ``greedy``: accuracy, its 95% Wilson interval, no-answer rate, mean generated tokens;
- with k sampled files: ``pass@1[avg-of-k]`` (mean and std across seeds), ``pass@j`` for every
  j <= k (Chen et al. unbiased estimator), and ``majority@k`` when lines carry ``predicted_answer``.

A line "has an answer" when its ``predicted_answer`` is not null (math) or, for lines without that
field (code), when its generation is not empty. ``grading_errors`` counts lines whose check timed out
or failed (counted wrong).

Each greedy and per-seed row also holds the values of the benchmark's metrics family (its
``metrics_type``, :mod:`nemo_eval.metrics.families`); a family with ``group_by`` adds a
``greedy[<value>]`` row per value of that line field (e.g. per subject), and its ``verdicts`` columns (another
verdict's accuracy) join ``pass@1[avg-of-k]`` and ``pass@j`` as accuracy does. Majority votes group answers by their canonical form
(``math_normalize.vote_key``: plain numbers by exact value, so ``0.5`` and ``\\frac{1}{2}`` are one vote).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.evaluation.math_normalize import vote_key as canonical_vote
from nemo_eval.jsonl import read_jsonl
from nemo_eval.metrics.estimators import majority_credit, mean_and_std, pass_at_k, wilson_interval
from nemo_eval.metrics.families import DEFAULT_FAMILY, METRICS, MetricsFamily
from nemo_eval.metrics.judge_metrics import has_judgements, judge_values
from nemo_eval.run_layout import GREEDY_NAME, sampled_seed


def _has_answer(line: dict[str, Any]) -> bool:
    if "predicted_answer" in line:
        return line["predicted_answer"] is not None
    return bool((line.get("generation") or "").strip())


def load_graded(path: Path) -> list[dict[str, Any]]:
    lines = list(read_jsonl(path))
    for number, line in enumerate(lines, start=1):
        if "is_correct" not in line:
            raise UserError(f"{path}:{number} is not graded (no is_correct); run: nemo-eval evaluate "
                            f"++prediction_jsonl_files='[{path}]'")
    return lines


def _percent(count: float, total: int) -> float:
    return round(100 * count / total, 2) if total else 0.0


def _summary(lines: list[dict[str, Any]], family: MetricsFamily) -> dict[str, Any]:
    total = len(lines)
    correct = sum(bool(line["is_correct"]) for line in lines)
    low, high = wilson_interval(correct, total)
    tokens = [line["num_generated_tokens"] for line in lines if isinstance(line.get("num_generated_tokens"), (int, float))]
    row = {
        "num_entries": total,
        "accuracy": _percent(correct, total),
        "ci95_low": round(100 * low, 2),
        "ci95_high": round(100 * high, 2),
        "no_answer": _percent(sum(not _has_answer(line) for line in lines), total),
        "avg_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
    }
    row.update(family.values(lines))
    row.update({k: v for k, v in judge_values(lines).items() if v is not None})
    errors = sum("grading_error" in line for line in lines)
    if errors:
        row["grading_errors"] = errors
    return row


def vote_key(answer: Any) -> Any:
    """The form majority voting groups answers by (None stays None: no answer, no vote)."""
    return None if answer is None else canonical_vote(str(answer))


def graded_by_id(path: Path) -> dict[str, dict[str, Any]]:
    """The graded lines of ``path`` by ``id`` (their position when they have none); ids must be unique."""
    rows = {}
    for index, line in enumerate(load_graded(path)):
        key = str(line.get("id", index))
        if key in rows:
            raise UserError(f"{path}: id {key!r} appears twice; each item must be generated once (regenerate the file "
                            "from an input with unique ids)")
        rows[key] = line
    return rows


def compute_metrics(files: list[Path], metrics_type: str = DEFAULT_FAMILY) -> dict[str, dict[str, Any]]:
    """Metrics rows for one benchmark's prediction files, with the values of family ``metrics_type``."""
    family = METRICS.get(metrics_type)
    greedy = [p for p in files if p.name == GREEDY_NAME]
    sampled = sorted((p for p in files if sampled_seed(p) is not None), key=lambda p: sampled_seed(p) or 0)
    others = [p for p in files if p not in greedy and p not in sampled]
    if len(greedy) > 1:
        raise UserError("several output-greedy.jsonl files given for one benchmark")
    greedy += others  # a single file with another name is treated as a greedy run
    if len(greedy) > 1:
        raise UserError(f"cannot tell which file is the greedy run among {', '.join(str(p) for p in greedy)}; "
                        "name them output-greedy.jsonl / output-rs<seed>.jsonl")
    result: dict[str, dict[str, Any]] = {}
    if greedy:
        lines = list(graded_by_id(greedy[0]).values())   # an id twice would count twice
        result["greedy"] = _summary(lines, family)
        if family.group_by:
            groups: dict[str, list[dict[str, Any]]] = {}
            for line in lines:
                if line.get(family.group_by) not in (None, ""):
                    groups.setdefault(str(line[family.group_by]), []).append(line)
            for value in sorted(groups):
                result[f"greedy[{value}]"] = _summary(groups[value], family)
    if sampled:
        result.update(_sampled_metrics(sampled, family))
    if not result:
        raise UserError("no prediction files given")
    return result


def _sampled_metrics(paths: list[Path], family: MetricsFamily) -> dict[str, dict[str, Any]]:
    runs = [graded_by_id(p) for p in paths]
    ids = set(runs[0])
    for path, run in zip(paths[1:], runs[1:]):
        if set(run) != ids:
            raise UserError(f"{path} does not hold the same items as {paths[0]} (different ids); "
                            "generate every seed with the same settings and max_samples")
    k = len(runs)
    order = sorted(ids)
    per_seed = [_summary([run[i] for i in order], family) for run in runs]
    mean, std = mean_and_std([s["accuracy"] for s in per_seed])
    rows: dict[str, dict[str, Any]] = {
        f"pass@1[avg-of-{k}]": {"num_entries": len(order), "accuracy": round(mean, 2), "accuracy_std": round(std, 2),
                                "no_answer": round(sum(s["no_answer"] for s in per_seed) / k, 2),
                                "avg_tokens": per_seed[0]["avg_tokens"] and round(
                                    sum(s["avg_tokens"] or 0 for s in per_seed) / k, 1)}}
    if all("predicted_answer" in run[i] for run in runs for i in order):
        credit = [majority_credit([vote_key(run[i]["predicted_answer"]) for run in runs],
                                  [bool(run[i]["is_correct"]) for run in runs])
                  for i in order]
        no_answer = sum(all(run[i]["predicted_answer"] is None for run in runs) for i in order)
        rows[f"majority@{k}"] = {"num_entries": len(order), "accuracy": round(100 * sum(credit) / len(order), 2),
                                 "no_answer": round(100 * no_answer / len(order), 2)}
    counts = [sum(bool(run[i]["is_correct"]) for run in runs) for i in order]
    no_answer = sum(not any(_has_answer(run[i]) for run in runs) for i in order)
    judged = all(has_judgements([run[i] for i in order]) for run in runs)
    judge_counts = [sum(run[i]["judge_correct"] is True for run in runs) for i in order] if judged else []
    for j in range(1, k + 1):
        value = sum(pass_at_k(k, c, j) for c in counts) / len(order)
        rows[f"pass@{j}"] = {"num_entries": len(order), "accuracy": round(100 * value, 2),
                             "no_answer": round(100 * no_answer / len(order), 2)}
        if judged:
            judge_value = sum(pass_at_k(k, c, j) for c in judge_counts) / len(order)
            rows[f"pass@{j}"]["judge_accuracy"] = round(100 * judge_value, 2)
    for column, verdict in family.verdicts:  # another verdict's accuracy (lm-eval's), treated like ours
        if all(verdict in run[i] for run in runs for i in order):
            verdict_counts = [sum(bool(run[i][verdict]) for run in runs) for i in order]
            rows[f"pass@1[avg-of-{k}]"][column] = round(100 * sum(verdict_counts) / (k * len(order)), 2)
            for j in range(1, k + 1):
                rows[f"pass@{j}"][column] = round(100 * sum(pass_at_k(k, c, j) for c in verdict_counts) / len(order), 2)
    majority = rows.get(f"majority@{k}")
    if judged and majority is not None:
        credit = [majority_credit([vote_key(run[i]["predicted_answer"]) for run in runs],
                                  [run[i]["judge_correct"] is True for run in runs]) for i in order]
        majority["judge_accuracy"] = round(100 * sum(credit) / len(order), 2)
    if judged:
        rows[f"pass@1[avg-of-{k}]"]["judge_accuracy"] = round(
            sum(100 * sum(run[i]["judge_correct"] is True for i in order) / len(order) for run in runs) / k, 2)
    return rows


def metric_value(metrics: dict[str, Any], dotted: str) -> Optional[float]:
    """``gsm8k.greedy.accuracy`` -> the number, or None when absent."""
    benchmark, _, rest = dotted.partition(".")
    row, _, key = rest.rpartition(".")
    value = metrics.get(benchmark, {}).get(row, {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None
