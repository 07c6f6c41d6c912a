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
import dataclasses
import functools
import json
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, List, Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.datasets.spec import BENCHMARKS
from nemo_eval.errors import UserError, reject_unknown_keys, run_main
from nemo_eval.eval_types import EVAL_TYPES, EvalType, guess_eval_type
from nemo_eval.jsonl import check_readable_file, read_jsonl, write_jsonl_atomic
from nemo_eval.overrides import help_lines, parse_overrides
from nemo_eval.registry import resolve
from nemo_eval.run_layout import meta_path

PROG = "nemo-eval evaluate"


@dataclass
class EvaluateConfig:
    """Settings of the evaluation step every eval type shares (:func:`evaluate_config_class` adds theirs)."""

    prediction_jsonl_files: List[str] = field(default_factory=list, metadata={
        "help": "generation files to grade in place, e.g. '[a.jsonl,b.jsonl]'"})
    benchmark: Optional[str] = field(default=None, metadata={
        "help": "benchmark whose evaluation defaults apply (default: from the file's .meta.json or folder)"})
    eval_type: Optional[str] = field(default=None, metadata={
        "help": "how to grade (default: the benchmark's; else the eval type whose fields the lines have)"})
    sandbox_address: str = field(default="http://127.0.0.1:6000", metadata={"help": "the sandbox service"})
    timeout: float = field(default=10.0, metadata={"help": "seconds per program (code) or per answer comparison (math)"})
    max_concurrency: int = field(default=16, metadata={"help": "sandbox executions at once"})
    regrade: bool = field(default=False, metadata={"help": "grade lines that already have is_correct again"})


@functools.lru_cache(maxsize=None)
def evaluate_config_class() -> type:
    """The evaluation step's config: the shared settings plus every registered eval type's own settings."""
    names = [f.name for f in fields(EvaluateConfig)]
    owner = dict.fromkeys(names, "the evaluation step")
    added: list[tuple[str, Any, Any]] = [(
        "eval_type", Optional[str], field(default=None, metadata={
            "help": f"{' or '.join(EVAL_TYPES.names())} (default: the benchmark's; else the eval type whose "
                    "fields the lines have)"}))]
    for name, kind in EVAL_TYPES.items():
        if kind.settings is None:
            continue
        settings = resolve(kind.settings)
        hints = typing.get_type_hints(settings)
        for f in fields(settings):
            if f.name in owner:
                raise UserError(f"eval type {name}: setting {f.name!r} is already {owner[f.name]}'s; rename it")
            owner[f.name] = f"eval type {name}"
            added.append((f.name, hints[f.name], field(default=f.default, default_factory=f.default_factory,
                                                       metadata=f.metadata)))
    return dataclasses.make_dataclass("EvaluateConfig", added, bases=(EvaluateConfig,))


def parse_settings(overrides: Sequence[str]) -> Any:
    """``++key=value`` settings into the evaluation config (shared settings + every eval type's)."""
    return parse_overrides(evaluate_config_class(), list(overrides))


def file_benchmark(path: Path, explicit: Optional[str]) -> Optional[str]:
    """The benchmark a prediction file belongs to, or None when it cannot be told."""
    if explicit:
        return BENCHMARKS.get(explicit).name
    meta = meta_path(path)
    try:
        name = json.loads(meta.read_text(encoding="utf-8"))["settings"]["input"]["benchmark"]
    except (OSError, ValueError, KeyError, TypeError):
        name = path.parent.name
    return name if name in BENCHMARKS else None


def prompt_lm_eval_task(path: Path) -> Optional[str]:
    """The lm-eval task named by the prompt config that generated ``path`` (its .meta.json), if any."""
    from nemo_eval.prompts.config import load_prompt_config

    try:
        name = json.loads(meta_path(path).read_text(encoding="utf-8"))["settings"]["prompt"]["config"]
        return load_prompt_config(name).lm_eval_task or None
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def _apply_benchmark_section(kind: EvalType, spec: Any, resolved: Any, overridden: set[str]) -> None:
    where = f"{spec.folder / 'benchmark.yaml'} evaluation"
    if not spec.evaluation:
        return
    if kind.benchmark_section is None:
        raise UserError(f"{where}: eval type {kind.name} takes no evaluation settings; remove the section")
    section = getattr(resolved, kind.benchmark_section)
    reject_unknown_keys(where, spec.evaluation, {f.name for f in fields(section)})
    for key, value in spec.evaluation.items():
        if f"{kind.benchmark_section}.{key}" not in overridden:
            setattr(section, key, value)


def config_for_file(path: Path, config: Any, overridden: set[str],
                    first_line: Optional[dict] = None) -> tuple[Any, EvalType]:
    """The config for one file with its benchmark's defaults applied, and its eval type."""
    benchmark = file_benchmark(path, config.benchmark)
    resolved = copy.deepcopy(config)
    spec = BENCHMARKS.get(benchmark) if benchmark else None
    name = config.eval_type or (spec.defaults.eval_type if spec else None) or guess_eval_type(first_line or {})
    if name is None:
        raise UserError(f"{path}: cannot tell how to grade it (no known benchmark, and its lines lack the fields of "
                        f"every eval type); set ++eval_type to one of {', '.join(EVAL_TYPES.names())}")
    kind = EVAL_TYPES.get(name)
    if spec is not None and spec.defaults.eval_type == kind.name:  # the section is for the benchmark's own eval type
        _apply_benchmark_section(kind, spec, resolved, overridden)
    extraction = getattr(resolved, "extraction", None)
    if extraction is not None and extraction.lm_eval_task is None:
        extraction.lm_eval_task = prompt_lm_eval_task(path)
    if getattr(resolved, "lm_eval_task", "") is None:  # the code grader's (mbpp, humaneval)
        resolved.lm_eval_task = prompt_lm_eval_task(path)
    problem = resolve(kind.check)(resolved) if kind.check else None
    if problem:
        raise UserError(problem)
    return resolved, kind


NOT_GRADED = ("sandbox error",)  # grading_error: the sandbox could not run the line's check (retried next time)


def could_not_grade(line: dict) -> bool:
    """The line was recorded but not decided (the sandbox failed to run it); the next run grades it again."""
    return line.get("grading_error") in NOT_GRADED


def evaluate_file(path: Path, config: Any,
                  overridden: frozenset[str] = frozenset()) -> tuple[int, int, int, int]:
    """Grade one file; returns (lines, newly graded, correct, could not be graded)."""
    lines = list(read_jsonl(path))
    for number, line in enumerate(lines, start=1):
        if "generation" not in line:
            raise UserError(f"{path}:{number} has no 'generation' field: grade files written by nemo-eval generate "
                            "(is this the input data?); nothing was changed")
    config, kind = config_for_file(path, config, set(overridden), lines[0] if lines else None)
    grader = resolve(kind.grader)  # imported here: the launcher imports this module only to check settings
    todo = [i for i, line in enumerate(lines) if config.regrade or "is_correct" not in line or could_not_grade(line)]
    if todo:
        graded = grader([lines[i] for i in todo], config)
        for index, line in zip(todo, graded):
            lines[index] = line
        write_jsonl_atomic(path, lines)
    return (len(lines), len(todo), sum(bool(line.get("is_correct")) for line in lines),
            sum(could_not_grade(line) for line in lines))


def check_settings(config: Any) -> None:
    """One-line errors for settings out of range (also checked by the launcher before it starts)."""
    if config.max_concurrency < 1 or config.timeout <= 0:
        raise UserError("++max_concurrency must be >= 1 and ++timeout > 0")
    if config.eval_type is not None:
        EVAL_TYPES.get(config.eval_type)
    for _, kind in EVAL_TYPES.items():
        problem = resolve(kind.check)(config) if kind.check else None
        if problem:
            raise UserError(problem)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade generations in place with the eval type of their benchmark (the sandbox does the "
                    "checking: start it with nemo-eval sandbox start); adds is_correct and the grader's own fields. "
                    "Files are rewritten atomically; already graded lines are kept, so running again is a no-op.",
        epilog="eval types:\n" + "\n".join(f"  {name}: {kind.description}" for name, kind in EVAL_TYPES.items())
               + "\n\nsettings (Hydra overrides):\n" + "\n".join(help_lines(evaluate_config_class())))
    _, overrides = parser.parse_known_args(argv)
    config = parse_settings(overrides)
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
