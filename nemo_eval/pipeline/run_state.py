"""What is left to do in an output dir, and the steps the launcher runs in its own process.

The launcher asks before starting anything long-lived: a run whose output is complete needs no
server, a run whose output is also graded needs no sandbox, so a rerun with nothing left to do
starts neither. Preparing data, grading (extraction here, equivalence and tests in the sandbox)
and summarizing run in the launcher's process: each would otherwise cost an interpreter start-up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.run_layout import output_path
from nemo_eval.pipeline.steps import EvalJob

PLACEHOLDER_URL = "http://127.0.0.1:1/v1"  # generation settings do not depend on the server's address


def _override_keys(overrides: list[str]) -> dict[str, str]:
    return {raw.lstrip("+~").split("=", 1)[0].strip(): raw.split("=", 1)[1].strip() for raw in overrides if "=" in raw}


def fully_graded(path: Path, evaluation_overrides: list[str]) -> bool:
    """Whether ``path`` is a finished generation file whose every line is graded (and no regrade was asked)."""
    if _override_keys(evaluation_overrides).get("regrade", "false").lower() in ("true", "1", "yes"):
        return False
    if not path.is_file() or path.with_name(path.name + ".partial").exists():
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            from nemo_eval.evaluation.evaluate import could_not_grade

            return all("is_correct" in row and not could_not_grade(row)
                       for row in (json.loads(line) for line in handle if line.strip()))
    except (OSError, ValueError):
        return False  # the grading step says what is wrong with it


def generation_pending(job: EvalJob, benchmark: str, seed: Optional[int]) -> bool:
    """Whether the generation step of this run has anything to do (the step's own planning, here).

    Raises:
        UserError: The run cannot go on as configured (changed settings, another model, ...).
    """
    path = output_path(job.output_dir, benchmark, seed)
    if not path.is_file():
        return True
    from nemo_eval.inference.config import GenerateConfig
    from nemo_eval.inference.runner import pending_indices, plan_run
    from nemo_eval.overrides import parse_overrides

    command = job.generate_command(benchmark, seed, PLACEHOLDER_URL, "")
    config = parse_overrides(GenerateConfig, command[len(job.python) + 1:])
    if config.overwrite:
        return True
    plan = plan_run(config)
    rows = plan.output.load(plan.items)
    return bool(pending_indices(plan, rows)) or plan.output.partial_path.exists()


def cost_estimate(job: EvalJob, runs: list[tuple[str, Optional[int]]]) -> Optional[str]:
    """What generating ``runs`` is about to cost, when prices are given (``++server.price_per_million_*``):
    the items left to send, their prompt tokens (estimated) and the cost range; None without prices."""
    from nemo_eval.inference.accounting import estimate_text
    from nemo_eval.inference.config import GenerateConfig
    from nemo_eval.inference.runner import pending_indices, plan_run, prices_of, prompt_sizes
    from nemo_eval.overrides import parse_overrides

    items: list[dict] = []
    chars: list[int] = []
    most_tokens = 0
    prices = None
    for benchmark, seed in runs:
        command = job.generate_command(benchmark, seed, PLACEHOLDER_URL, "")
        config = parse_overrides(GenerateConfig, command[len(job.python) + 1:])
        prices = prices_of(config)
        if not prices.known:
            return None
        plan = plan_run(config)
        pending = pending_indices(plan, plan.output.load(plan.items)) if not config.overwrite else range(len(plan.items))
        items += [plan.items[index] for index in pending]
        chars += prompt_sizes(plan, pending)
        most_tokens = max(most_tokens, int(plan.request_params.get("max_tokens") or 0))
    if prices is None or not items:
        return None
    return estimate_text(items, chars, most_tokens, prices)


def prepare_here(benchmarks: list[str]) -> str:
    """``prepare-data`` for ``benchmarks`` in this process; the lines it would print."""
    from nemo_eval.datasets.prepare import prepare_benchmark

    lines = []
    for name in benchmarks:
        result = prepare_benchmark(name)
        counts = ", ".join(f"{split} {count}" for split, count in result.counts.items())
        lines.append(f"{result.name}: {'up to date' if result.up_to_date else 'prepared'} ({counts}) -> {result.folder}")
    return "\n".join(lines)


def grader(job: EvalJob) -> Callable[[Path, str], str]:
    """``grade(file, sandbox address)`` with the job's evaluation settings, parsed once here (Hydra's
    composition is not thread-safe; grading runs in the runs' threads)."""
    from nemo_eval.evaluation.evaluate import check_settings, evaluate_file, parse_settings

    base = parse_settings(job.evaluation_overrides)
    check_settings(base)
    overridden = frozenset(_override_keys(job.evaluation_overrides))
    if "max_concurrency" not in overridden:
        # as many executions at once as the launcher's sandbox serves: more only queue there, and small
        # inputs would be cut into more (math) batches than it can run at once
        from nemo_eval.sandbox.service import SandboxSettings

        base.max_concurrency = SandboxSettings().workers

    def grade(path: Path, sandbox: str) -> str:
        config = dataclasses.replace(base, prediction_jsonl_files=[str(path)],
                                     sandbox_address=sandbox or base.sandbox_address)
        total, graded, correct, failed = evaluate_file(path, config, overridden)
        if failed:
            raise UserError(f"{path}: {failed} of {total} lines could not be graded (grading_error); run the same "
                            "command again to retry them")
        return f"{path}: graded {graded} of {total} lines; {correct} correct ({100 * correct / max(total, 1):.1f}%)"

    return grade


def summarize_here(job: EvalJob) -> str:
    """``summarize-results`` of the job's runs in this process: writes metrics.json, returns the tables."""
    from nemo_eval.metrics import summarize_results

    tables = io.StringIO()
    with contextlib.redirect_stdout(tables):
        summarize_results.main([str(job.output_dir), "--benchmarks", job.benchmarks_spec()])
    return tables.getvalue().rstrip()
