"""``python -m nemo_eval.evaluation.evaluate`` (also ``nemo-eval evaluate``): grade generations in place.

    python -m nemo_eval.evaluation.evaluate ++prediction_jsonl_files='[results/humaneval/output-greedy.jsonl]' \\
        ++eval_type=code ++sandbox_address=http://127.0.0.1:6000

Adds ``is_correct`` (and the grader's fields) to every line; each file is rewritten atomically
(temporary file + rename). Lines already graded are kept as they are, so running again is a no-op.
A line the sandbox could not decide (``grading_error: sandbox error``) is
recorded as wrong, counted in the summary, graded again by the next run, and makes the exit code 1.

The benchmark of a file (``++benchmark``, else the one its ``.meta.json`` names, else its folder
name) supplies the eval type and the answer-extraction defaults of its ``benchmark.yaml``
(``evaluation:`` section); ``++extraction.*`` overrides win over those.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import List, Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.datasets.spec import BENCHMARKS
from nemo_eval.errors import UserError, reject_unknown_keys, run_main
from nemo_eval.evaluation.answer_extraction import ExtractionConfig, validate
from nemo_eval.jsonl import check_readable_file, read_jsonl, write_jsonl_atomic
from nemo_eval.overrides import help_lines, parse_overrides

PROG = "nemo-eval evaluate"


@dataclass
class EvaluateConfig:
    """Configuration of the evaluation step."""

    prediction_jsonl_files: List[str] = field(default_factory=list, metadata={
        "help": "generation files to grade in place, e.g. '[a.jsonl,b.jsonl]'"})
    benchmark: Optional[str] = field(default=None, metadata={
        "help": "benchmark whose evaluation defaults apply (default: from the file's .meta.json or folder)"})
    eval_type: Optional[str] = field(default=None, metadata={
        "help": "code or math (default: the benchmark's; else code when lines have tests)"})
    sandbox_address: str = field(default="http://127.0.0.1:6000", metadata={"help": "the sandbox service"})
    timeout: float = field(default=10.0, metadata={"help": "seconds per program (code) or per answer comparison (math)"})
    max_concurrency: int = field(default=16, metadata={"help": "sandbox executions at once"})
    math_batch_size: int = field(default=1000, metadata={
        "help": "at most this many answer comparisons per sandbox execution (math); pairs are split into one "
                "batch per sandbox worker"})
    regrade: bool = field(default=False, metadata={"help": "grade lines that already have is_correct again"})
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)


def file_benchmark(path: Path, explicit: Optional[str]) -> Optional[str]:
    """The benchmark a prediction file belongs to, or None when it cannot be told."""
    if explicit:
        return BENCHMARKS.get(explicit).name
    meta = path.with_name(path.name + ".meta.json")
    try:
        name = json.loads(meta.read_text(encoding="utf-8"))["settings"]["input"]["benchmark"]
    except (OSError, ValueError, KeyError, TypeError):
        name = path.parent.name
    return name if name in BENCHMARKS else None


def config_for_file(path: Path, config: EvaluateConfig, overridden: set[str]) -> tuple[EvaluateConfig, str]:
    """The config for one file with its benchmark's defaults applied, and its eval type."""
    benchmark = file_benchmark(path, config.benchmark)
    resolved = copy.deepcopy(config)
    eval_type = config.eval_type
    if benchmark:
        spec = BENCHMARKS.get(benchmark)
        eval_type = eval_type or spec.defaults.eval_type
        reject_unknown_keys(f"{spec.folder / 'benchmark.yaml'} evaluation", spec.evaluation,
                            {f.name for f in fields(ExtractionConfig)})
        for key, value in spec.evaluation.items():
            if f"extraction.{key}" not in overridden:
                setattr(resolved.extraction, key, value)
    problem = validate(resolved.extraction)
    if problem:
        raise UserError(problem)
    return resolved, eval_type or ""


NOT_GRADED = ("sandbox error",)  # grading_error: the sandbox could not run the line's check (retried next time)


def could_not_grade(line: dict) -> bool:
    """The line was recorded but not decided (the sandbox failed to run it); the next run grades it again."""
    return line.get("grading_error") in NOT_GRADED


def evaluate_file(path: Path, config: EvaluateConfig,
                  overridden: frozenset[str] = frozenset()) -> tuple[int, int, int, int]:
    """Grade one file; returns (lines, newly graded, correct, could not be graded)."""
    lines = list(read_jsonl(path))
    for number, line in enumerate(lines, start=1):
        if "generation" not in line:
            raise UserError(f"{path}:{number} has no 'generation' field: grade files written by nemo-eval generate "
                            "(is this the input data?); nothing was changed")
    config, eval_type = config_for_file(path, config, set(overridden))
    eval_type = eval_type or ("code" if lines and "entry_point" in lines[0] else "math")
    from nemo_eval.evaluation.graders import GRADERS  # here: the launcher imports this module to check settings
    grader = GRADERS.get(eval_type)
    todo = [i for i, line in enumerate(lines) if config.regrade or "is_correct" not in line or could_not_grade(line)]
    if todo:
        graded = grader([lines[i] for i in todo], config)
        for index, line in zip(todo, graded):
            lines[index] = line
        write_jsonl_atomic(path, lines)
    return (len(lines), len(todo), sum(bool(line.get("is_correct")) for line in lines),
            sum(could_not_grade(line) for line in lines))


def check_settings(config: EvaluateConfig) -> None:
    """One-line errors for settings out of range (also checked by the launcher before it starts)."""
    if config.math_batch_size < 1 or config.max_concurrency < 1 or config.timeout <= 0:
        raise UserError("++math_batch_size and ++max_concurrency must be >= 1 and ++timeout > 0")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade generations in place: extract each answer and check it. eval_type=code runs each "
                    "benchmark's tests in the sandbox (start it with: nemo-eval sandbox start); adds is_correct, "
                    "execution_status and, on failure, execution_error. eval_type=math extracts the final answer "
                    "(predicted_answer, extraction_strategy) and decides equivalence with the expected answer in "
                    "the sandbox. Files are rewritten atomically; already "
                    "graded lines are kept, so running again is a no-op.",
        epilog="settings (Hydra overrides):\n" + "\n".join(help_lines(EvaluateConfig)))
    _, overrides = parser.parse_known_args(argv)
    config = parse_overrides(EvaluateConfig, overrides)
    overridden = frozenset(raw.lstrip("+~").split("=", 1)[0].strip() for raw in overrides)
    check_settings(config)
    if not config.prediction_jsonl_files:
        raise UserError("no files to grade: ++prediction_jsonl_files='[path/output-greedy.jsonl]'")
    paths = [Path(p).expanduser() for p in config.prediction_jsonl_files]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"prediction file(s) not found: {', '.join(missing)}")
    not_graded = 0
    for path in paths:
        check_readable_file(path, "prediction file")
    for path in paths:
        total, graded, correct, failed = evaluate_file(path, config, overridden)
        not_graded += failed
        print(f"{path}: graded {graded} of {total} lines; {correct} correct ({100 * correct / max(total, 1):.1f}%)"
              + (f"; {failed} could not be graded (grading_error; run again to retry them)" if failed else ""),
              file=sys.stderr)
    return 1 if not_graded else 0


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
